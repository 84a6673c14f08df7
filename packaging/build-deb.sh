#!/bin/sh
# Builds the Debian package: ringstatic_<version>_<arch>.deb, holding the binary
# (/usr/bin/ringstatic), the systemd units, the logrotate snippet, a default
# config (/etc/ringstatic/ringstatic.conf) and the docs the units name.
#
#   packaging/build-deb.sh                      # cargo build --release, then package
#   packaging/build-deb.sh --binary PATH --out DIR   # package a binary built already
#
# It uses dpkg-deb, which every Debian system has, rather than cargo-deb, which
# Debian does not package and would have to be compiled from crates.io first:
# the package is a handful of files and three maintainer scripts, all below.
set -eu
cd "$(dirname "$0")/.."

bin=""
out="${CARGO_TARGET_DIR:-target}/debian"
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) bin="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) echo "build-deb.sh: unknown argument: $1 (known: --binary PATH, --out DIR)" >&2; exit 2 ;;
    esac
done
command -v dpkg-deb >/dev/null || { echo "build-deb.sh: dpkg-deb not found (Debian: dpkg)" >&2; exit 1; }
if [ -z "$bin" ]; then
    cargo build --release --locked
    bin="${CARGO_TARGET_DIR:-target}/release/ringstatic"
fi
[ -x "$bin" ] || { echo "build-deb.sh: no executable at $bin" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"

# The units and the snippet name the installed paths of a manual install
# (/usr/local); the package installs under /usr.
paths='s|/usr/local/bin/ringstatic|/usr/bin/ringstatic|g; s|/usr/local/share/doc/ringstatic/|/usr/share/doc/ringstatic/|g'
install -D -m 0755 "$bin" "$stage/usr/bin/ringstatic"
install -d "$stage/lib/systemd/system" "$stage/etc/logrotate.d" "$stage/usr/share/doc/ringstatic"
sed "$paths" systemd/ringstatic.service > "$stage/lib/systemd/system/ringstatic.service"
sed "$paths" systemd/ringstatic.socket > "$stage/lib/systemd/system/ringstatic.socket"
sed "$paths" systemd/logrotate.ringstatic > "$stage/etc/logrotate.d/ringstatic"
install -D -m 0644 systemd/ringstatic.conf.example "$stage/etc/ringstatic/ringstatic.conf"
install -m 0644 README.md "$stage/usr/share/doc/ringstatic/README.md"
install -m 0644 systemd/README.md "$stage/usr/share/doc/ringstatic/README.systemd.md"
install -m 0644 docs/design.md "$stage/usr/share/doc/ringstatic/design.md"
printf 'ringstatic\nLicense: MIT OR Apache-2.0\n' > "$stage/usr/share/doc/ringstatic/copyright"
chmod 0644 "$stage"/lib/systemd/system/* "$stage/etc/logrotate.d/ringstatic"

install -d "$stage/DEBIAN"
cat > "$stage/DEBIAN/control" <<CONTROL
Package: ringstatic
Version: $version
Architecture: $arch
Maintainer: ringstatic <dev@ringstatic>
Depends: libc6
Recommends: logrotate
Section: httpd
Priority: optional
Installed-Size: $(du -sk "$stage" | cut -f1)
Description: static-file HTTP/1.1 server with io_uring workers
 A master process supervises one pinned io_uring worker per CPU; graceful
 reload, binary upgrade, a hardened systemd unit, sandboxed workers.
CONTROL
printf '/etc/ringstatic/ringstatic.conf\n/etc/logrotate.d/ringstatic\n' > "$stage/DEBIAN/conffiles"
# After install: what `ringstatic -t` needs before the first start (the default
# root, and the log directory, which systemd's LogsDirectory= would otherwise
# create only at the first start), then systemd told about the units. The
# service is not started: enable it (or the socket unit) when the site is there.
cat > "$stage/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    [ -e /srv/www ] || install -d -m 0755 /srv/www
    [ -e /var/log/ringstatic ] || install -d -m 0750 /var/log/ringstatic
    if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
fi
exit 0
SCRIPT
cat > "$stage/DEBIAN/prerm" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl stop ringstatic.socket ringstatic.service || true
fi
exit 0
SCRIPT
cat > "$stage/DEBIAN/postrm" <<'SCRIPT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
exit 0
SCRIPT
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"

mkdir -p "$out"
deb="$out/ringstatic_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
