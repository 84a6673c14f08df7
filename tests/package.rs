//! The Debian package: built by `packaging/build-deb.sh` (around the binary under test), then
//! installed with `dpkg -i` in a real systemd booted in a `systemd-nspawn` container where /usr
//! and dpkg's database are throwaway overlays of this machine's. After the install alone `ringstatic -t` passes
//! and `systemd-analyze verify` is clean; then start, a page, reload, stop.
//!
//! Skipped, saying why, where the container cannot run (see tests/systemd.rs) or dpkg-deb is
//! missing.

mod common;
mod systemd_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use systemd_support::*;

const PAGE: &[u8] = b"<h1>ringstatic from its package</h1>\n";
const CONF: &str = "/etc/ringstatic/ringstatic.conf";

#[test]
fn package_installs_and_serves_under_systemd() {
    const T: &str = "package_installs_and_serves_under_systemd";
    if which("dpkg-deb").is_none() {
        skip(T, "dpkg-deb is not installed (Debian: dpkg)");
        return;
    }
    let mut c = match Container::prepare("pkg") {
        Ok(c) => c,
        Err(CannotBoot(why)) => {
            skip(T, &why);
            return;
        }
    };
    // The package is built from this tree around the binary under test (no release build).
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/build-deb.sh");
    let out = run(
        Command::new(&script)
            .arg("--binary")
            .arg(BIN)
            .arg("--out")
            .arg(c.dir.join("bin")),
        Duration::from_secs(120),
    );
    assert!(out.ok(), "build-deb.sh failed:\n{}", out.describe());
    let deb_name = Path::new(out.stdout.trim())
        .file_name()
        .expect("build-deb.sh prints the package's path")
        .to_string_lossy()
        .to_string();
    c.dir.write_mode("www/index.html", PAGE, 0o644);
    // The container's /etc is the test's own: dpkg needs the system's users and groups (its
    // statoverrides name them), and `-t` run as root checks what `nobody` can read.
    for f in ["passwd", "group"] {
        let text = std::fs::read(format!("/etc/{f}")).expect("read the host's users");
        c.dir.write_mode(format!("etc/{f}"), &text, 0o644);
    }
    c.writable = vec!["/usr", "/var"];
    if let Err(CannotBoot(why)) = c.boot(Duration::from_secs(60)) {
        c.kill();
        skip(T, &format!("this machine cannot boot a container: {why}"));
        return;
    }
    let started = Instant::now();
    let mut checks = Checks::default();
    let deb = format!("/usr/local/bin/{deb_name}");

    let out = c.exec(&["dpkg", "-i", &deb]);
    checks.check(
        "dpkg -i installs the package",
        ensure(out.ok(), || out.describe()),
    );
    let out = c.exec(&["dpkg", "-s", "ringstatic"]);
    checks.check(
        "dpkg knows it installed",
        ensure(out.stdout.contains("Status: install ok installed"), || {
            out.describe()
        }),
    );
    let out = c.exec(&["/usr/bin/ringstatic", "-t", "--config", CONF]);
    checks.check(
        "ringstatic -t passes before the first start",
        ensure(out.ok() && out.stdout.contains("configuration ok"), || {
            out.describe()
        }),
    );
    let out = c.exec(&[
        "systemd-analyze",
        "verify",
        "/lib/systemd/system/ringstatic.service",
        "/lib/systemd/system/ringstatic.socket",
    ]);
    checks.check(
        "systemd-analyze verify is clean on the installed units",
        ensure(out.ok() && out.both().trim().is_empty(), || out.describe()),
    );
    let out = c.exec(&["test", "-f", "/usr/share/doc/ringstatic/README.md"]);
    checks.check(
        "the docs the units' Documentation= names are installed",
        ensure(out.ok(), || out.describe()),
    );

    if which("logrotate").is_some() {
        let out = c.exec(&["logrotate", "-d", "/etc/logrotate.d/ringstatic"]);
        checks.check(
            "the installed logrotate snippet parses and names the installed binary",
            ensure(
                out.ok()
                    && !out.both().contains("error")
                    && c.exec(&[
                        "grep",
                        "-q",
                        "/usr/bin/ringstatic -s reopen",
                        "/etc/logrotate.d/ringstatic",
                    ])
                    .ok(),
                || out.describe(),
            ),
        );
    } else {
        say(&format!(
            "{T}: logrotate snippet not checked: logrotate is not installed"
        ));
    }

    let svc = "ringstatic.service";
    let out = c.systemctl(&["start", svc]);
    checks.check("systemctl start", ensure(out.ok(), || out.describe()));
    let r = c.get("127.0.0.1:80", "/");
    checks.check(
        "serves the page on port 80",
        ensure(
            r.as_ref().is_ok_and(|r| r.status == 200 && r.body == PAGE),
            || format!("{r:?}"),
        ),
    );
    let out = c.systemctl(&["reload", svc]);
    checks.check("systemctl reload", ensure(out.ok(), || out.describe()));
    let r = c.get("127.0.0.1:80", "/");
    checks.check(
        "serves after the reload",
        ensure(r.as_ref().is_ok_and(|r| r.status == 200), || {
            format!("{r:?}")
        }),
    );
    let journal = c.journal(&[svc]);
    // The default config sends the server's own messages to its error log.
    let errors = c.exec(&["cat", "/var/log/ringstatic/error.log"]).stdout;
    let line = errors
        .lines()
        .find_map(|l| l.find("sandbox: ").map(|i| l[i..].to_string()))
        .unwrap_or_default();
    say(&format!("{T}: under the unit: {line}"));
    checks.check(
        "the workers sandbox themselves under the unit too",
        ensure(line.contains("seccomp on, ring restricted"), || {
            errors.clone()
        }),
    );
    // systemd-nspawn's own seccomp filter (systemd 252) refuses Landlock to everything the
    // container's systemd starts; where a bare service can use it, the workers must too.
    let probe = c.exec(&[
        "systemd-run",
        "--wait",
        "--pipe",
        "-q",
        "python3",
        "-c",
        "import ctypes; print(ctypes.CDLL(None).syscall(444, None, 0, 1))",
    ]);
    let container_has_landlock = probe.stdout.trim().parse::<i64>().is_ok_and(|v| v >= 1);
    if container_has_landlock {
        checks.check(
            "Landlock on under the unit",
            ensure(line.contains("landlock on"), || errors.clone()),
        );
    } else {
        say(&format!(
            "{T}: Landlock under the unit not checked: this container refuses it to every service ({})",
            probe.both().trim()
        ));
    }
    let out = c.systemctl(&["stop", svc]);
    let p = c.show(svc, &["ActiveState", "Result"]);
    checks.check(
        "systemctl stop",
        ensure(out.ok() && p["ActiveState"] == "inactive", || {
            format!("{p:?} {}", out.describe())
        }),
    );
    let st = c.poweroff(Duration::from_secs(30));
    checks.check(
        "container powers off",
        ensure(st.is_some(), || {
            "did not power off within 30 s (killed)".into()
        }),
    );
    say(&format!("{T}: checks took {:.1?}", started.elapsed()));
    let log = c.log_tail();
    checks.finish(|| format!("--- journal ---\n{journal}\n--- nspawn log (tail) ---\n{log}"));
}
