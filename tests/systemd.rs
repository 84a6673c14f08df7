//! The systemd integration: the unit files in systemd/ checked by systemd's own tools, and run by
//! a real systemd booted in a `systemd-nspawn` container.
//!
//! A test that cannot run here (no systemd-analyze, not root, no systemd-nspawn, a machine that
//! cannot boot a container) prints `skipped: <test>: <reason>` on stderr (not captured by cargo)
//! and returns without asserting anything: a skip is never evidence that the units work.
//!
//! Debian packages: systemd (systemd-analyze), systemd-container (systemd-nspawn), util-linux
//! (nsenter).

mod common;
mod systemd_support;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use systemd_support::*;

/// Containers boot one at a time (they share the host's two cores with everything else).
static CONTAINER: Mutex<()> = Mutex::new(());

fn analyze() -> Option<std::path::PathBuf> {
    which("systemd-analyze")
}

// ---------------------------------------------------------------------------
// Static checks with systemd-analyze
// ---------------------------------------------------------------------------

#[test]
fn unit_files_verify_clean() {
    let Some(sa) = analyze() else {
        return skip(
            "unit_files_verify_clean",
            "systemd-analyze is not installed",
        );
    };
    let tmp = TempDir::new("verify");
    let root = match analyze_root(&tmp) {
        Ok(r) => r,
        Err(e) => return skip("unit_files_verify_clean", &e),
    };
    // `--root=` makes verify resolve everything inside the root: the Exec*= binaries (installed
    // there at /usr/local/bin/ringstatic) and the units they depend on.
    let out = run(
        Command::new(&sa)
            .arg("verify")
            .arg(format!("--root={}", root.display()))
            .arg("ringstatic.service")
            .arg("ringstatic.socket")
            .env("SYSTEMD_LOG_COLOR", "0"),
        Duration::from_secs(60),
    );
    assert!(
        out.ok(),
        "systemd-analyze verify failed:\n{}",
        out.describe()
    );
    assert!(
        out.both().trim().is_empty(),
        "systemd-analyze verify printed warnings (it must print nothing):\n{}",
        out.describe()
    );

    // The verification itself must be able to fail: without the binary, verify complains.
    std::fs::remove_file(root.join("usr/local/bin/ringstatic")).unwrap();
    let out = run(
        Command::new(&sa)
            .arg("verify")
            .arg(format!("--root={}", root.display()))
            .arg("ringstatic.service"),
        Duration::from_secs(60),
    );
    assert!(
        out.both().contains("/usr/local/bin/ringstatic"),
        "verify did not notice a missing ExecStart binary, so the check above proves nothing:\n{}",
        out.describe()
    );
}

#[test]
fn security_exposure_at_most_2_0() {
    let Some(sa) = analyze() else {
        return skip(
            "security_exposure_at_most_2_0",
            "systemd-analyze is not installed",
        );
    };
    let unit = systemd_dir().join("ringstatic.service");
    let out = run(
        Command::new(&sa)
            .arg("security")
            .arg("--offline=yes")
            .arg("--no-pager")
            .arg(&unit)
            .env("SYSTEMD_COLORS", "0"),
        Duration::from_secs(60),
    );
    assert!(
        out.ok(),
        "systemd-analyze security failed:\n{}",
        out.describe()
    );
    // "→ Overall exposure level for ringstatic.service: 1.7 OK 🙂"
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no 'Overall exposure level' line:\n{}", out.describe()));
    let score: f64 = line
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse the exposure level from {line:?}"));
    assert!(
        score <= 2.0,
        "exposure level {score} > 2.0:\n{}",
        out.stdout
    );
}

#[test]
fn logrotate_snippet_parses() {
    let Some(lr) = which("logrotate") else {
        return skip("logrotate_snippet_parses", "logrotate is not installed");
    };
    let tmp = TempDir::new("logrotate");
    let out = run(
        Command::new(lr)
            .arg("--debug")
            .arg("--state")
            .arg(tmp.join("state"))
            .arg(systemd_dir().join("logrotate.ringstatic")),
        Duration::from_secs(30),
    );
    assert!(out.ok(), "logrotate --debug failed:\n{}", out.describe());
    let all = out.both();
    assert!(!all.contains("error:"), "logrotate reported errors:\n{all}");
    assert!(
        all.contains("/var/log/ringstatic/*.log") && all.contains("14 rotations"),
        "unexpected:\n{all}"
    );
}

#[test]
fn example_config_passes_the_config_test() {
    // `-t` with the example config, its root replaced by a directory that exists here (the
    // command line wins over the file): the file may only use options the binary knows.
    let tmp = TempDir::new("example-conf");
    let www = tmp.mkdir("www");
    // Same for the log files: /var/log/ringstatic exists only where the unit runs.
    let out = run(
        Command::new(BIN)
            .arg("-t")
            .arg("--config")
            .arg(systemd_dir().join("ringstatic.conf.example"))
            .arg("--root")
            .arg(&www)
            .arg("--access-log")
            .arg(tmp.join("access.log"))
            .arg("--error-log")
            .arg(tmp.join("error.log")),
        Duration::from_secs(30),
    );
    assert!(
        out.ok(),
        "ringstatic -t rejected systemd/ringstatic.conf.example:\n{}",
        out.describe()
    );
}

// ---------------------------------------------------------------------------
// A real systemd
// ---------------------------------------------------------------------------

/// Boots a container (or says why it cannot). Returns None after printing the skip line.
fn boot(test: &str, tag: &str, prepare: impl FnOnce(&Container)) -> Option<Container> {
    let mut c = match Container::prepare(tag) {
        Ok(c) => c,
        Err(CannotBoot(why)) => {
            skip(test, &why);
            return None;
        }
    };
    prepare(&c);
    let t = Instant::now();
    match c.boot(Duration::from_secs(60)) {
        Ok(()) => {
            say(&format!(
                "{test}: container {} booted in {:.1?} (host pid of its systemd: {})",
                c.name,
                t.elapsed(),
                c.pid1
            ));
            Some(c)
        }
        Err(CannotBoot(why)) => {
            c.kill();
            skip(
                test,
                &format!("this machine cannot boot a container: {why}"),
            );
            None
        }
    }
}

/// Proves the container mechanics alone, with a trivial Type=notify unit: if this fails and
/// units_in_a_real_systemd fails too, look at the harness (or the machine) first.
#[test]
fn container_mechanics_with_a_trivial_notify_unit() {
    const T: &str = "container_mechanics_with_a_trivial_notify_unit";
    let _one = CONTAINER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut c) = boot(T, "trivial", |_| {}) else {
        return;
    };
    c.dir.write_mode(
        "etc/systemd/system/trivial.service",
        b"[Service]\nType=notify\nNotifyAccess=all\n\
          ExecStart=/bin/sh -c 'sleep 1; systemd-notify --ready --status=ready-now; exec sleep 1000'\n",
        0o644,
    );
    let mut checks = Checks::default();
    let out = c.systemctl(&["daemon-reload"]);
    checks.check("daemon-reload", ensure(out.ok(), || out.describe()));
    let t = Instant::now();
    let out = c.systemctl(&["start", "trivial.service"]);
    let took = t.elapsed();
    checks.check("start", ensure(out.ok(), || out.describe()));
    checks.check(
        "start waited for READY=1 (>= 1 s)",
        ensure(took >= Duration::from_millis(900), || format!("{took:?}")),
    );
    let p = c.show("trivial.service", &["ActiveState", "StatusText", "MainPID"]);
    checks.check(
        "active with the notified status",
        ensure(
            p["ActiveState"] == "active" && p["StatusText"] == "ready-now",
            || format!("{p:?}"),
        ),
    );
    let main: i32 = p.get("MainPID").and_then(|v| v.parse().ok()).unwrap_or(0);
    checks.check(
        "MainPID maps to a host process",
        ensure(c.host_pid(main).is_some_and(alive), || {
            format!("MainPID {main}")
        }),
    );
    let out = c.systemctl(&["stop", "trivial.service"]);
    let p = c.show("trivial.service", &["ActiveState", "Result"]);
    checks.check(
        "stop",
        ensure(out.ok() && p["ActiveState"] == "inactive", || {
            format!("{p:?} {}", out.describe())
        }),
    );
    let st = c.poweroff(Duration::from_secs(30));
    checks.check(
        "powers off",
        ensure(st.is_some(), || {
            "did not power off within 30 s (killed)".into()
        }),
    );
    let log = c.log_tail();
    checks.finish(|| log);
}

/// The test's configuration: port 81 (below 1024, so the ambient CAP_NET_BIND_SERVICE is put to
/// use) and not the socket unit's 80, so that serving on 80 proves the socket unit's sockets are
/// the ones served.
fn test_config(cache_control: &str) -> String {
    format!(
        "# written by tests/systemd.rs\nlisten 127.0.0.1:81\nroot /srv/www\nworkers 2\n\
         access-log /var/log/ringstatic/access.log\ncache-control {cache_control}\n"
    )
}

const WORKERS: usize = 2;
const PAGE: &[u8] = b"<h1>ringstatic under systemd</h1>\n";

#[test]
fn units_in_a_real_systemd() {
    const T: &str = "units_in_a_real_systemd";
    let _one = CONTAINER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut c) = boot(T, "units", |c| {
        install(Path::new(BIN), &c.dir.join("bin/ringstatic"), 0o755);
        c.dir.write_mode("www/index.html", PAGE, 0o644);
    }) else {
        return;
    };
    let started = Instant::now();
    let mut checks = Checks::default();
    run_checks(&c, &mut checks);
    let journal = c.journal(&["ringstatic.service", "ringstatic.socket"]);
    let st = c.poweroff(Duration::from_secs(30));
    checks.check(
        "container powers off",
        ensure(st.is_some(), || {
            "did not power off within 30 s (killed)".into()
        }),
    );
    say(&format!("{T}: checks took {:.1?}", started.elapsed()));
    let log = c.log_tail();
    checks.finish(|| {
        format!(
            "--- journal of the ringstatic units ---\n{journal}\n--- nspawn log (tail) ---\n{log}"
        )
    });
}

/// Host pids of the master's children (the workers).
fn workers(host_main: i32) -> Vec<i32> {
    children_of(host_main)
        .into_iter()
        .filter(|&p| alive(p))
        .collect()
}

fn run_checks(c: &Container, checks: &mut Checks) {
    let svc = "ringstatic.service";
    // --- install, as systemd/README.md says -----------------------------------------------
    for (from, to) in [
        (
            "ringstatic.service",
            "etc/systemd/system/ringstatic.service",
        ),
        ("ringstatic.socket", "etc/systemd/system/ringstatic.socket"),
    ] {
        install(&systemd_dir().join(from), &c.dir.join(to), 0o644);
    }
    c.dir.write_mode(
        "etc/ringstatic/ringstatic.conf",
        test_config("max-age=101").as_bytes(),
        0o644,
    );
    // LimitNOFILE=1048576 needs CAP_SYS_RESOURCE in the container's systemd when its hard limit
    // is lower. This machine's container manager may lack it (a sandboxed host): then, and only
    // then, lower it to what the container's systemd has, and say so.
    if let Some(hard) = nofile_hard_limit_we_cannot_raise(c.pid1) {
        say(&format!(
            "{}: note: the container's systemd has no CAP_SYS_RESOURCE and a hard open-file limit of {hard}; \
             adding a drop-in LimitNOFILE={hard} (an environment limit, not a unit change)",
            "units_in_a_real_systemd"
        ));
        c.dir.write_mode(
            "etc/systemd/system/ringstatic.service.d/10-test-nofile.conf",
            format!("# tests/systemd.rs: this container cannot raise RLIMIT_NOFILE\n[Service]\nLimitNOFILE={hard}\n")
                .as_bytes(),
            0o644,
        );
    }
    let out = c.systemctl(&["daemon-reload"]);
    checks.check("daemon-reload", ensure(out.ok(), || out.describe()));
    let p = c.show(svc, &["LoadState", "Type", "NotifyAccess", "DynamicUser"]);
    checks.check(
        "unit loaded as Type=notify, NotifyAccess=main, DynamicUser=yes",
        ensure(
            p["LoadState"] == "loaded"
                && p["Type"] == "notify"
                && p["NotifyAccess"] == "main"
                && p["DynamicUser"] == "yes",
            || format!("{p:?}"),
        ),
    );

    // --- start: active only once READY=1 came, and serving at that moment -------------------
    let t = Instant::now();
    let out = c.systemctl(&["start", svc]);
    let start_took = t.elapsed();
    say(&format!("  systemctl start took {start_took:.1?}"));
    if !checks.check(
        "systemctl start ringstatic.service",
        ensure(out.ok(), || out.describe()),
    ) {
        return;
    }
    let props = [
        "ActiveState",
        "SubState",
        "StatusText",
        "MainPID",
        "ExecMainPID",
        "NRestarts",
        "Result",
        "NFileDescriptorStore",
        "WatchdogUSec",
    ];
    let p0 = c.show(svc, &props);
    checks.check(
        "active (running) when start returns",
        ensure(
            p0["ActiveState"] == "active" && p0["SubState"] == "running",
            || format!("{p0:?}"),
        ),
    );
    // No retry: Type=notify means systemd waited for READY=1, which the server sends only once
    // every worker accepts.
    let r = c.get("127.0.0.1:81", "/index.html");
    checks.check(
        "serves on the first try right after start returns",
        match &r {
            Ok(r) => ensure(r.status == 200 && r.body == PAGE, || {
                format!(
                    "status {} body {:?}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                )
            }),
            Err(e) => Err(e.clone()),
        },
    );
    checks.check(
        "STATUS= text is set",
        ensure(!p0["StatusText"].is_empty(), || format!("{p0:?}")),
    );
    // (WatchdogUSec reads "infinity" until the service runs: systemd 252 reports the armed value.)
    checks.check(
        "watchdog armed at 10 s",
        ensure(p0["WatchdogUSec"] == "10s", || format!("{p0:?}")),
    );
    checks.check(
        "listening sockets in the fd store (FDSTORE=1)",
        ensure(
            p0["NFileDescriptorStore"].parse::<u32>().unwrap_or(0) >= 1,
            || format!("{p0:?}"),
        ),
    );
    let main: i32 = p0["MainPID"].parse().unwrap_or(0);
    let Some(host_main) = c.host_pid(main) else {
        checks.check(
            "MainPID is a live process",
            Err(format!("MainPID {main} not found")),
        );
        return;
    };
    let w0 = workers(host_main);
    checks.check(
        &format!("{WORKERS} workers at READY"),
        ensure(w0.len() == WORKERS, || format!("children {w0:?}")),
    );
    // DynamicUser= allocates a uid from systemd's dynamic range (61184-65519); the name is only
    // resolvable where nss-systemd is configured, so the uid is what is checked.
    let uid = c.exec(&["ps", "-o", "uid=", "-p", &main.to_string()]);
    checks.check(
        "runs as a dynamic user (a uid in 61184-65519, not root)",
        ensure(
            uid.stdout
                .trim()
                .parse::<u32>()
                .is_ok_and(|u| (61184..=65519).contains(&u)),
            || format!("uid {:?}", uid.stdout.trim()),
        ),
    );

    // --- reload: synchronous, same master, new workers, new config ----------------------------
    c.dir.write_mode(
        "etc/ringstatic/ringstatic.conf",
        test_config("max-age=202").as_bytes(),
        0o644,
    );
    let out = c.systemctl(&["reload", svc]);
    let p1 = c.show(svc, &props);
    let w1_now = workers(host_main);
    let r = c.get("127.0.0.1:81", "/index.html");
    checks.check(
        "systemctl reload succeeds",
        ensure(out.ok(), || out.describe()),
    );
    // StatusText is a live status (the master rewrites it with counters every few seconds), so
    // it is not compared with the one before; it must just not still say the reload is going on
    // or has failed.
    checks.check(
        "after reload returns: active (not reloading), same MainPID/ExecMainPID, status not 'reloading'",
        ensure(
            p1["ActiveState"] == "active"
                && p1["SubState"] == "running"
                && p1["MainPID"] == p0["MainPID"]
                && p1["ExecMainPID"] == p0["ExecMainPID"]
                && !p1["StatusText"].is_empty()
                && !p1["StatusText"].contains("reloading")
                && !p1["StatusText"].contains("fail"),
            || format!("before {p0:?}\nafter {p1:?}"),
        ),
    );
    checks.check(
        "after reload returns: the new config is served (Cache-Control max-age=202)",
        match &r {
            Ok(r) => ensure(
                r.status == 200 && r.header("cache-control") == Some("max-age=202"),
                || {
                    format!(
                        "status {} Cache-Control {:?}",
                        r.status,
                        r.header("cache-control")
                    )
                },
            ),
            Err(e) => Err(e.clone()),
        },
    );
    let new_now = w1_now.iter().filter(|p| !w0.contains(p)).count();
    checks.check(
        "after reload returns: new workers are running",
        ensure(new_now >= WORKERS, || format!("old {w0:?}, now {w1_now:?}")),
    );
    let w1 = poll(Duration::from_secs(15), || {
        let w = workers(host_main);
        (w.len() == WORKERS && w.iter().all(|p| !w0.contains(p))).then_some(w)
    });
    checks.check(
        "old workers retired: exactly the new ones remain",
        ensure(w1.is_some(), || {
            format!("old {w0:?}, now {:?}", workers(host_main))
        }),
    );
    let w1 = w1.unwrap_or_else(|| workers(host_main));

    // --- a rejected reload keeps everything as it was -----------------------------------------
    c.dir.write_mode(
        "etc/ringstatic/ringstatic.conf",
        b"no-such-option 1\n",
        0o644,
    );
    let out = c.systemctl(&["reload", svc]);
    let p2 = c.show(svc, &props);
    let r = c.get("127.0.0.1:81", "/index.html");
    checks.check(
        "systemctl reload with a broken config fails",
        ensure(!out.ok(), || out.describe()),
    );
    checks.check(
        "after a failed reload: the status says so",
        ensure(p2["StatusText"].contains("fail"), || {
            format!("StatusText {:?}", p2["StatusText"])
        }),
    );
    checks.check(
        "after a failed reload: still active, same master, same workers, old config",
        ensure(
            p2["ActiveState"] == "active"
                && p2["MainPID"] == p0["MainPID"]
                && workers(host_main) == w1
                && r.as_ref().is_ok_and(|r| {
                    r.status == 200 && r.header("cache-control") == Some("max-age=202")
                }),
            || {
                format!(
                    "{p2:?}, workers {:?} (were {w1:?}), response {:?}",
                    workers(host_main),
                    r.as_ref()
                        .map(|r| (r.status, r.header("cache-control").map(str::to_string)))
                )
            },
        ),
    );
    c.dir.write_mode(
        "etc/ringstatic/ringstatic.conf",
        test_config("max-age=202").as_bytes(),
        0o644,
    );

    // --- a killed worker comes back, the unit does not notice ---------------------------------
    if let Some(&victim) = w1.first() {
        // SAFETY: kill(2) with a pid we just read as a worker of the service.
        unsafe { libc::kill(victim, libc::SIGKILL) };
        let back = poll(Duration::from_secs(15), || {
            let w = workers(host_main);
            (w.len() == WORKERS && !w.contains(&victim)).then_some(w)
        });
        checks.check(
            "a SIGKILLed worker is replaced",
            ensure(back.is_some(), || {
                format!("killed {victim}, workers now {:?}", workers(host_main))
            }),
        );
        let p3 = c.show(svc, &props);
        checks.check(
            "... without restarting the unit",
            ensure(
                p3["ActiveState"] == "active"
                    && p3["MainPID"] == p0["MainPID"]
                    && p3["NRestarts"] == "0",
                || format!("{p3:?}"),
            ),
        );
        let r = c.get("127.0.0.1:81", "/index.html");
        checks.check(
            "... and it still serves",
            ensure(r.as_ref().is_ok_and(|r| r.status == 200), || {
                format!("{:?}", r.err())
            }),
        );
    }

    // --- the watchdog is fed (WatchdogSec=10: a ping at least every 5 s) -----------------------
    // The baseline is taken now, after the reload (whose READY=1 is not a ping).
    let wd0: u64 = c.show(svc, &["WatchdogTimestampMonotonic"])["WatchdogTimestampMonotonic"]
        .parse()
        .unwrap_or(0);
    let fed = poll(Duration::from_secs(8), || {
        let p = c.show(svc, &["WatchdogTimestampMonotonic"]);
        let wd: u64 = p["WatchdogTimestampMonotonic"].parse().unwrap_or(0);
        (wd > wd0).then_some(wd)
    });
    checks.check(
        "WATCHDOG=1 pings arrive",
        ensure(fed.is_some(), || {
            format!("WatchdogTimestampMonotonic stayed {wd0}")
        }),
    );

    // --- a clean stop -----------------------------------------------------------------------------
    stop_cleanly(c, checks, "plain");
    let log = c.exec(&["cat", "/var/log/ringstatic/access.log"]);
    checks.check(
        "the access log was written to the LogsDirectory",
        ensure(log.ok() && log.stdout.contains("GET /index.html"), || {
            log.describe()
        }),
    );

    // --- binary upgrade (SIGUSR2): a new master takes over, systemd follows MAINPID= -------------
    // (A run of its own, after the plain one, so that its stop is judged on its own.)
    let out = c.systemctl(&["start", svc]);
    if !checks.check(
        "start again for the binary upgrade",
        ensure(out.ok(), || out.describe()),
    ) {
        return;
    }
    let p0 = c.show(svc, &props);
    let Some(host_main) = p0["MainPID"].parse().ok().and_then(|m| c.host_pid(m)) else {
        checks.check("MainPID is a live process", Err(format!("{p0:?}")));
        return;
    };
    let out = c.systemctl(&["kill", "--kill-who=main", "--signal=SIGUSR2", svc]);
    checks.check(
        "systemctl kill -s USR2 (binary upgrade)",
        ensure(out.ok(), || out.describe()),
    );
    let t = Instant::now();
    let upgraded = poll(Duration::from_secs(15), || {
        let p = c.show(svc, &props);
        let new_main: i32 = p["MainPID"].parse().unwrap_or(0);
        let old_gone = !alive(host_main);
        (p["ActiveState"] == "active" && new_main != 0 && p["MainPID"] != p0["MainPID"] && old_gone)
            .then_some(p)
    });
    let p5 = upgraded.clone().unwrap_or_else(|| c.show(svc, &props));
    checks.check(
        &format!(
            "after USR2: a new MainPID, the old master gone, unit active, no restart (took {:.1?})",
            t.elapsed()
        ),
        ensure(upgraded.is_some() && p5["NRestarts"] == "0", || {
            format!("{p5:?}, old master alive: {}", alive(host_main))
        }),
    );
    let r = c.get("127.0.0.1:81", "/index.html");
    checks.check(
        "after USR2: serves",
        ensure(r.as_ref().is_ok_and(|r| r.status == 200), || {
            format!("{:?}", r.err())
        }),
    );
    if upgraded.is_some() {
        // The pid file now names the new master: reload goes to it.
        let out = c.systemctl(&["reload", svc]);
        let p6 = c.show(svc, &props);
        checks.check(
            "after USR2: systemctl reload reaches the new master",
            ensure(
                out.ok() && p6["MainPID"] == p5["MainPID"] && p6["ActiveState"] == "active",
                || format!("{p6:?}\n{}", out.describe()),
            ),
        );
    }

    // systemd must still stop the new master gracefully (SIGTERM, wait), not SIGKILL it.
    stop_cleanly(c, checks, "after USR2");
    let _ = c.systemctl(&["reset-failed", svc]);

    // --- socket activation ----------------------------------------------------------------------
    let out = c.systemctl(&["start", "ringstatic.socket"]);
    if !checks.check(
        "systemctl start ringstatic.socket",
        ensure(out.ok(), || out.describe()),
    ) {
        return;
    }
    let p = c.show(svc, &["ActiveState"]);
    checks.check(
        "the service waits for the first connection",
        ensure(p["ActiveState"] == "inactive", || format!("{p:?}")),
    );
    let r4 = c.get("127.0.0.1:80", "/index.html");
    checks.check(
        "socket-activated: serves on 0.0.0.0:80 (first connection starts it)",
        ensure(
            r4.as_ref().is_ok_and(|r| r.status == 200 && r.body == PAGE),
            || format!("{:?}", r4.as_ref().map(|r| r.status)),
        ),
    );
    let r6 = c.get("[::1]:80", "/index.html");
    checks.check(
        "socket-activated: serves on [::]:80",
        ensure(
            r6.as_ref().is_ok_and(|r| r.status == 200 && r.body == PAGE),
            || format!("{:?}", r6.as_ref().map(|r| r.status)),
        ),
    );
    // A request can be answered before READY=1 (the first worker may accept before the last is
    // up), so the unit gets a bounded moment to turn active.
    let t = Instant::now();
    let active = poll(Duration::from_secs(10), || {
        let p = c.show(svc, &["ActiveState", "SubState"]);
        (p["ActiveState"] == "active" && p["SubState"] == "running").then_some(())
    });
    let p = c.show(svc, &["ActiveState", "SubState", "MainPID", "StatusText"]);
    checks.check(
        &format!(
            "socket-activated: the service turns active (READY=1) within 10 s (took {:.1?})",
            t.elapsed()
        ),
        ensure(active.is_some(), || format!("{p:?}")),
    );
    checks.check(
        "socket-activated: the passed sockets replace the config's listen (nothing on :81)",
        ensure(!c.connects("127.0.0.1:81"), || {
            "127.0.0.1:81 accepts connections".into()
        }),
    );
    stop_cleanly(c, checks, "socket-activated");
    let out = c.systemctl(&["stop", "ringstatic.socket"]);
    checks.check(
        "systemctl stop ringstatic.socket",
        ensure(out.ok(), || out.describe()),
    );
}

fn stop_cleanly(c: &Container, checks: &mut Checks, how: &str) {
    let svc = "ringstatic.service";
    let t = Instant::now();
    let out = c.systemctl(&["stop", svc]);
    let took = t.elapsed();
    let p = c.show(svc, &["ActiveState", "Result", "MainPID"]);
    checks.check(
        &format!("{how}: systemctl stop succeeds"),
        ensure(out.ok(), || out.describe()),
    );
    checks.check(
        &format!("{how}: inactive with Result=success after {took:.1?} (no SIGKILL escalation)"),
        ensure(
            p["ActiveState"] == "inactive"
                && p["Result"] == "success"
                && took < Duration::from_secs(25),
            || format!("{p:?}"),
        ),
    );
    let left = c.processes_named("ringstatic");
    checks.check(
        &format!("{how}: no ringstatic process left"),
        ensure(left.is_empty(), || format!("host pids {left:?}")),
    );
}

/// Some(hard limit) when the container's systemd cannot give a service LimitNOFILE=1048576.
fn nofile_hard_limit_we_cannot_raise(pid1: i32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid1}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let hard: u64 = line.split_whitespace().nth(4)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid1}/status")).ok()?;
    let cap_eff = u64::from_str_radix(
        status
            .lines()
            .find(|l| l.starts_with("CapEff:"))?
            .split_whitespace()
            .nth(1)?,
        16,
    )
    .ok()?;
    const CAP_SYS_RESOURCE: u32 = 24;
    (hard < 1_048_576 && cap_eff & (1 << CAP_SYS_RESOURCE) == 0).then_some(hard)
}
