#!/usr/bin/env bash
# bench/run.sh - the one command that measures ringstatic against nginx with wrk.
#
#   bench/run.sh            full run: every scenario, 3 rounds of 10 s per server
#   bench/run.sh --quick    smoke run: 1 round of 2 s, scenarios 1k 16k 1m 1k-close
#   bench/run.sh --tls      over HTTPS: 1k 16k 1m 1k-close 1k-close-full, and handshakes per
#                           second and per CPU-second (with --quick: the same, 1 round of 2 s)
#   bench/run.sh --soak MINUTES   mixed, checked traffic for MINUTES (bench/soak.py);
#                           needs only python3: no nginx or wrk
#
# It installs what is missing (Debian packages nginx-light, wrk, python3; with
# --peers all also h2o and lighttpd; with --tls openssl, and gcc and libc6-dev when
# there is no C compiler, for bench/wrk-no-resume.c), builds ringstatic with `cargo build --release`
# (and, with --peers floor or all, the floor: `cargo build --release --example floor`)
# at the repository root, then hands every argument to bench/bench.py (Python
# standard library only). See bench/README.md for every option.
#
# Options handled here and not passed on:
#   --no-install   never call apt-get; fail later if a tool is missing
#   --no-build     do not run cargo; use the binary that is already there
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

say() { printf 'bench: %s\n' "$*" >&2; }

install=1
build=1
peers=""
help=0
custom_server=0
soak=0
tls=0
args=()
expect_peers=0
for a in "$@"; do
    if [[ $expect_peers == 1 ]]; then peers="$a"; expect_peers=0; fi
    case "$a" in
        --no-install) install=0; continue ;;
        --no-build) build=0; continue ;;
        --peers) expect_peers=1 ;;
        --peers=*) peers="${a#--peers=}" ;;
        -h|--help) help=1 ;;
        --soak|--soak=*) soak=1 ;;
        --tls) tls=1 ;;
        --server-cmd|--server-cmd=*|--ringstatic|--ringstatic=*) custom_server=1 ;;
    esac
    args+=("$a")
done

if [[ $soak == 1 ]]; then
    if [[ $build == 1 ]]; then
        say "building ringstatic (cargo build --release)"
        (cd "$repo" && cargo build --release)
    fi
    export RINGSTATIC_BIN="${RINGSTATIC_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/ringstatic}"
    exec python3 "$here/soak.py" "${args[@]}"
fi

if [[ $help == 1 ]]; then
    exec python3 "$here/bench.py" --help
fi

# --- packages -----------------------------------------------------------------
# Tools live in /usr/sbin on Debian; a non-login root shell may not have it in PATH.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

missing=()
command -v python3 >/dev/null || missing+=(python3)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v wrk >/dev/null || missing+=(wrk)
command -v taskset >/dev/null || missing+=(util-linux)
# the site scenario decodes brotli bodies to check them
command -v brotli >/dev/null || missing+=(brotli)
case ",$peers," in
    *,all,*|*,h2o,*) command -v h2o >/dev/null || missing+=(h2o) ;;
esac
case ",$peers," in
    *,all,*|*,lighttpd,*) command -v lighttpd >/dev/null || missing+=(lighttpd) ;;
esac
# --tls: openssl makes the certificate and asks what each server negotiates; a C compiler
# builds the wrk preload for full handshakes (bench/wrk-no-resume.c)
if [[ $tls == 1 ]]; then
    command -v openssl >/dev/null || missing+=(openssl)
    command -v cc >/dev/null || missing+=(gcc libc6-dev)
fi

if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ $install == 0 ]]; then
        say "missing Debian packages: ${missing[*]} (and --no-install was given)"
        exit 1
    fi
    sudo=()
    if [[ $(id -u) != 0 ]]; then
        if command -v sudo >/dev/null; then sudo=(sudo); else
            say "missing Debian packages: ${missing[*]}; run as root or install them"; exit 1
        fi
    fi
    say "installing Debian packages: ${missing[*]}"
    # The packages' own services (nginx on port 80, lighttpd, h2o) must not start:
    # the benchmark starts its own instances and must leave nothing running. A
    # policy-rc.d that answers 101 is the Debian way to say so; add one only for
    # the duration of the install, and only if there is none already.
    policy=/usr/sbin/policy-rc.d
    added_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# temporary, from ringstatic bench/run.sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod 755 "$policy"
        added_policy=1
        trap '"${sudo[@]}" rm -f "$policy"' EXIT
    fi
    if ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then
        "${sudo[@]}" apt-get update
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    if [[ $added_policy == 1 ]]; then
        "${sudo[@]}" rm -f "$policy"
        trap - EXIT
    fi
fi

# --- ringstatic -------------------------------------------------------------------
if [[ $custom_server == 1 ]]; then
    say "not building ringstatic: --server-cmd/--ringstatic names the server to measure"
elif [[ $build == 1 ]]; then
    command -v cargo >/dev/null || { say "cargo not found: install Rust (https://rustup.rs) or pass --no-build"; exit 1; }
    say "building ringstatic (cargo build --release)"
    (cd "$repo" && cargo build --release)
fi
export RINGSTATIC_BIN="${RINGSTATIC_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/ringstatic}"

# --- the floor (--peers floor or all): a bare io_uring loop, examples/floor.rs ----------
case ",$peers," in
    *,all,*|*,floor,*)
        if [[ $build == 1 ]]; then
            command -v cargo >/dev/null || { say "cargo not found: install Rust (https://rustup.rs) or pass --no-build"; exit 1; }
            say "building the floor (cargo build --release --example floor)"
            (cd "$repo" && cargo build --release --example floor)
        fi ;;
esac
export FLOOR_BIN="${FLOOR_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/examples/floor}"

# the command line as typed, for the report's header
quote() {
    if [[ $1 =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then printf '%s' "$1"
    else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}
BENCH_COMMAND="$(quote "$0")"
for a in "$@"; do BENCH_COMMAND+=" $(quote "$a")"; done
export BENCH_COMMAND

# exec: Ctrl-C goes straight to bench.py, which stops every server it started.
exec python3 "$here/bench.py" "${args[@]+"${args[@]}"}"
