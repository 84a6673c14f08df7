//! Signals and control commands against a running master, mostly under load: reload (SIGHUP,
//! `-s reload`), log reopening (SIGUSR1, `-s reopen`), binary upgrade (SIGUSR2), graceful stop
//! (SIGQUIT), a worker killed with SIGKILL, and `-t` / `-s` error handling.
//!
//! The load tests share one lock so that two of them never compete for the (possibly two) CPUs.
mod common;
use common::*;
use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Serialises the load tests (16 client threads each) with one another.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

const SMALL_LEN: usize = 117;
const BIG_LEN: usize = 256 * 1024;
const CLIENTS: usize = 16;

/// A root with a small and a 256 KiB file, and the load targets for them.
fn site(tag: &str) -> (TempDir, Vec<LoadTarget>) {
    let d = TempDir::new(tag);
    let small = pattern_bytes(SMALL_LEN, 11);
    let big = pattern_bytes(BIG_LEN, 12);
    d.write("www/small.txt", &small);
    d.write("www/big.bin", &big);
    let targets = vec![
        LoadTarget {
            path: "/small.txt".into(),
            body: Arc::new(small),
        },
        LoadTarget {
            path: "/big.bin".into(),
            body: Arc::new(big),
        },
    ];
    (d, targets)
}

fn s(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// `ringstatic -s <what> --pid-file <pf>`: (exit code, stdout, stderr).
fn ctl(what: &str, pf: &std::path::Path) -> (Option<i32>, String, String) {
    let (st, out, err) = run_binary(&["-s", what, "--pid-file", s(pf)], Duration::from_secs(30));
    (st.code(), out, err)
}

/// Kills, on drop, every process whose command line mentions this test's unique root: the
/// cleanup for processes that are not our children (a binary upgrade's new master).
struct KillMentioning(String);

impl Drop for KillMentioning {
    fn drop(&mut self) {
        let killed = kill_processes_mentioning(&self.0);
        if !killed.is_empty() {
            eprintln!("cleanup: killed leftover processes {:?}", killed);
        }
    }
}

/// Waits (bounded) until the server's combined output contains `needle`.
fn wait_log(srv: &Server, needle: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if srv.log().contains(needle) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sleeps `d` while recording every worker pid seen.
fn sleep_watching(srv: &Server, d: Duration, seen: &mut Vec<i32>) {
    let end = Instant::now() + d;
    loop {
        for p in srv.worker_pids() {
            if !seen.contains(&p) {
                seen.push(p);
            }
        }
        if Instant::now() >= end {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

// ---------------------------------------------------------------------------------------------

#[test]
fn hup_under_load_drops_nothing() {
    let _g = heavy();
    let (d, targets) = site("hup-load");
    let pf = d.join("rs.pid");
    let mut srv = Server::start(&d.join("www"), &["--pid-file", s(&pf)]);
    let first = srv.wait_workers(2, Duration::from_secs(5));
    let mut seen = first.clone();

    let load = Load::start(srv.addr, CLIENTS, targets, Duration::from_secs(30));
    assert!(
        load.wait_ok(200, Duration::from_secs(10)),
        "load did not get going: {} responses",
        load.ok_so_far()
    );

    // Three reloads about 0.5 s apart: `-s reload` (synchronous), a plain SIGHUP, `-s reload`.
    let (code, _, err) = ctl("reload", &pf);
    assert_eq!(
        code,
        Some(0),
        "`-s reload` #1 failed: {}\n{}",
        err,
        srv.log()
    );
    sleep_watching(&srv, Duration::from_millis(500), &mut seen);
    srv.signal(libc::SIGHUP);
    sleep_watching(&srv, Duration::from_millis(500), &mut seen);
    let (code, _, err) = ctl("reload", &pf);
    assert_eq!(
        code,
        Some(0),
        "`-s reload` #3 failed: {}\n{}",
        err,
        srv.log()
    );
    let ok_after_last_reload = load.ok_so_far();

    // Keep the load on until ~3 s in total, and at least 0.5 s after the last reload.
    let until = Duration::from_secs(3).max(load.elapsed() + Duration::from_millis(500));
    while load.elapsed() < until {
        sleep_watching(&srv, Duration::from_millis(50), &mut seen);
    }
    // Every worker from before or during the reloads, except the two current ones, exits.
    let deadline = Instant::now() + Duration::from_secs(15);
    let current = loop {
        let now = srv.worker_pids();
        let stale: Vec<i32> = seen
            .iter()
            .copied()
            .filter(|p| !now.contains(p) && !process_gone(*p))
            .collect();
        if now.len() == 2 && now.iter().all(|p| !first.contains(p)) && stale.is_empty() {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "after 3 reloads: workers now {:?} (first {:?}), old workers still alive {:?}\n{}",
            now,
            first,
            stale,
            srv.log()
        );
        sleep_watching(&srv, Duration::from_millis(50), &mut seen);
    };
    let rep = load.stop();
    eprintln!(
        "hup_under_load: {}; workers seen {:?}, now {:?}",
        rep.describe(),
        seen,
        current
    );
    assert_eq!(
        rep.failures,
        0,
        "requests failed across reloads: {}\n{}",
        rep.describe(),
        srv.log()
    );
    assert_eq!(rep.connect_errors, 0, "{}", rep.describe());
    assert!(
        rep.ok > ok_after_last_reload + 50,
        "load stalled after the last reload: {} ok then, {} at the end",
        ok_after_last_reload,
        rep.ok
    );
    for p in &first {
        assert!(
            process_gone(*p),
            "first-generation worker {} still alive",
            p
        );
    }
    // Served by the new workers, and the master still stops cleanly.
    assert_eq!(get(srv.addr, "/small.txt").status, 200);
    srv.signal(libc::SIGTERM);
    let st = srv
        .wait_exit(Duration::from_secs(15))
        .expect("master did not exit after SIGTERM");
    assert_eq!(st.code(), Some(0), "{}", srv.log());
}

#[test]
fn hup_with_broken_config_keeps_old() {
    let (d, _) = site("hup-broken");
    let pf = d.join("rs.pid");
    let conf = d.join("rs.conf");
    std::fs::write(&conf, "# test config\ncache-control max-age=100\n").unwrap();
    let srv = Server::start(
        &d.join("www"),
        &["--config", s(&conf), "--pid-file", s(&pf)],
    );
    let first = srv.wait_workers(2, Duration::from_secs(5));
    let cc = |want: &str, ctx: &str| {
        // Fresh connections, so both workers answer some of them.
        for i in 0..8 {
            let mut c = Conn::open(srv.addr);
            c.send(&get_req("/small.txt", &[]));
            let r = c.try_read_response(false).unwrap_or_else(|e| {
                let w: Vec<String> = srv
                    .worker_pids()
                    .iter()
                    .map(|p| {
                        let st = std::fs::read_to_string(format!("/proc/{}/stat", p))
                            .unwrap_or_default();
                        format!(
                            "{} [{}]",
                            p,
                            st.rsplit(')')
                                .next()
                                .unwrap_or("")
                                .split_whitespace()
                                .next()
                                .unwrap_or("?")
                        )
                    })
                    .collect();
                panic!(
                    "{} (request {}): {}; workers now {:?}\n{}",
                    ctx,
                    i,
                    e,
                    w,
                    srv.log()
                )
            });
            assert_eq!(r.status, 200, "{}: {}", ctx, r.describe());
            assert_eq!(
                r.header("cache-control"),
                Some(want),
                "{} (request {}): {}\n{}",
                ctx,
                i,
                r.describe(),
                srv.log()
            );
        }
    };
    cc("max-age=100", "at start");

    // An unknown option: the reload fails, the old settings stay.
    std::fs::write(&conf, "cache-control max-age=200\nno-such-option 1\n").unwrap();
    let (code, out, err) = ctl("reload", &pf);
    assert_eq!(
        code,
        Some(1),
        "`-s reload` with a broken config: stdout {:?} stderr {:?}",
        out,
        err
    );
    assert!(err.contains("reload failed"), "`-s reload` said: {:?}", err);
    assert!(
        wait_log(
            &srv,
            "reload failed, keeping the running configuration",
            Duration::from_secs(10)
        ),
        "no `reload failed` line from the master:\n{}",
        srv.log()
    );
    assert!(
        srv.log().contains("no-such-option"),
        "the failure does not name the bad option:\n{}",
        srv.log()
    );
    assert_eq!(
        srv.worker_pids(),
        first,
        "workers changed on a failed reload"
    );
    cc("max-age=100", "after a failed reload (unknown option)");

    // The config file gone: fails the same way.
    std::fs::remove_file(&conf).unwrap();
    let (code, _, err) = ctl("reload", &pf);
    assert_eq!(
        code,
        Some(1),
        "`-s reload` with the config file missing: {:?}",
        err
    );
    cc("max-age=100", "after a failed reload (config file missing)");

    // A header rule for a header the server writes: refused like a bad root, old settings kept.
    std::fs::write(
        &conf,
        "cache-control max-age=200\nheader /** Content-Length: 1\n",
    )
    .unwrap();
    let (code, _, err) = ctl("reload", &pf);
    assert_eq!(code, Some(1), "`-s reload` with an owned header: {:?}", err);
    assert!(
        wait_log(
            &srv,
            "header Content-Length is set by the server",
            Duration::from_secs(10)
        ),
        "the failure does not name the header:\n{}",
        srv.log()
    );
    cc("max-age=100", "after a failed reload (owned header)");

    // Fixed with a new value: the reload succeeds and the new value is served.
    std::fs::write(&conf, "cache-control max-age=300\n").unwrap();
    let (code, _, err) = ctl("reload", &pf);
    assert_eq!(
        code,
        Some(0),
        "`-s reload` with a fixed config: {:?}\n{}",
        err,
        srv.log()
    );
    // Old workers may still be finishing an accept that raced the reload; wait for them to go.
    for p in &first {
        assert!(
            wait_gone(*p, Duration::from_secs(10)),
            "old worker {} did not exit after the reload",
            p
        );
    }
    cc("max-age=300", "after the fixed reload");
}

#[test]
fn usr1_after_moving_log_reopens() {
    let (d, _) = site("usr1");
    let pf = d.join("rs.pid");
    let log = d.join("logs/access.log");
    std::fs::create_dir_all(d.join("logs")).unwrap();
    let rotated = d.join("logs/access.log.1");
    let mut srv = Server::start(
        &d.join("www"),
        &["--access-log", s(&log), "--pid-file", s(&pf)],
    );
    srv.wait_workers(2, Duration::from_secs(5));
    const N: usize = 20;
    let lines = |p: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let wait_lines = |p: &std::path::Path, n: usize, ctx: &str| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let have = lines(p).len();
            if have >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {} has {} lines, expected {}",
                ctx,
                p.display(),
                have,
                n
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let send = |phase: usize| {
        for i in 0..N {
            let r = get_with(
                srv.addr,
                &format!("/small.txt?phase={}&n={}", phase, i),
                &["User-Agent: rs-test/1.0"],
            );
            assert_eq!(r.status, 200, "{}", r.describe());
        }
    };

    send(1);
    let t0 = Instant::now();
    wait_lines(&log, N, "before the move");
    // Lines are flushed at least every 250 ms; allow generous scheduling slack.
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "access log lines took {:?} to appear",
        t0.elapsed()
    );

    std::fs::rename(&log, &rotated).unwrap();
    let (code, _, err) = ctl("reopen", &pf);
    assert_eq!(code, Some(0), "`-s reopen`: {:?}", err);
    // The master forwards USR1 to the workers; the first to reopen recreates the file.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !log.exists() {
        assert!(
            Instant::now() < deadline,
            "access.log not recreated after `-s reopen`\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let the other worker reopen too before the next requests.
    std::thread::sleep(Duration::from_millis(300));
    send(2);
    wait_lines(&log, N, "after the reopen");

    // A graceful stop flushes everything; then check both files line by line.
    srv.signal(libc::SIGTERM);
    let st = srv
        .wait_exit(Duration::from_secs(15))
        .expect("no exit after SIGTERM");
    assert_eq!(st.code(), Some(0));
    for (path, phase) in [(&rotated, 1), (&log, 2)] {
        let got = lines(path);
        assert_eq!(
            got.len(),
            N,
            "{} has {} lines, expected {}:\n{}",
            path.display(),
            got.len(),
            N,
            got.join("\n")
        );
        let mut seen = [false; N];
        for l in &got {
            assert!(
                l.starts_with("127.0.0.1 - - [")
                    && l.contains(" +0000] \"GET /small.txt?phase=")
                    && l.ends_with(&format!(" 200 {} \"-\" \"rs-test/1.0\"", SMALL_LEN)),
                "not a combined-format line for our request: {:?}",
                l
            );
            let q = l.split("?phase=").nth(1).unwrap();
            let (p, rest) = q.split_once("&n=").unwrap();
            let n: usize = rest.split(' ').next().unwrap().parse().unwrap();
            assert_eq!(
                p.parse::<usize>().unwrap(),
                phase,
                "line in the wrong file {}: {:?}",
                path.display(),
                l
            );
            assert!(!seen[n], "duplicate line {:?}", l);
            seen[n] = true;
        }
    }
}

#[test]
fn usr2_upgrade_under_load() {
    let _g = heavy();
    let (d, targets) = site("usr2");
    let root = d.join("www");
    let root_s = s(&root).to_string();
    let _cleanup = KillMentioning(root_s.clone());
    let pf = d.join("rs.pid");
    let oldbin = d.join("rs.pid.oldbin");
    let mut srv = Server::start(&root, &["--pid-file", s(&pf)]);
    let old_pid = srv.pid;
    let old_workers = srv.wait_workers(2, Duration::from_secs(5));
    assert_eq!(
        std::fs::read_to_string(&pf).unwrap().trim(),
        old_pid.to_string()
    );

    let load = Load::start(srv.addr, CLIENTS, targets, Duration::from_secs(40));
    assert!(
        load.wait_ok(200, Duration::from_secs(10)),
        "load did not get going"
    );
    std::thread::sleep(Duration::from_millis(500));
    srv.signal(libc::SIGUSR2);

    // The pid file changes to the new master (F.oldbin may be seen meanwhile; not required).
    let mut saw_oldbin = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_pid = loop {
        saw_oldbin |= oldbin.exists();
        if let Ok(t) = std::fs::read_to_string(&pf) {
            if let Ok(p) = t.trim().parse::<i32>() {
                if p != old_pid {
                    break p;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "pid file never named a new master\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(
        !process_gone(new_pid),
        "the pid file names {} which is not running",
        new_pid
    );
    let cmd = std::fs::read(format!("/proc/{}/cmdline", new_pid)).unwrap_or_default();
    assert!(
        contains(&cmd, root_s.as_bytes()),
        "pid {} is not our new master: {:?}",
        new_pid,
        String::from_utf8_lossy(&cmd)
    );

    // The old master (our child) drains and exits 0.
    let st = srv
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("old master did not exit\n{}", srv.log()));
    assert_eq!(st.code(), Some(0), "old master: {:?}\n{}", st, srv.log());
    for w in &old_workers {
        assert!(
            wait_gone(*w, Duration::from_secs(5)),
            "old worker {} outlived its master",
            w
        );
    }
    assert!(
        !oldbin.exists(),
        "{} left behind after the old master exited",
        oldbin.display()
    );
    assert_eq!(
        std::fs::read_to_string(&pf).unwrap().trim(),
        new_pid.to_string()
    );

    // The new master alone keeps serving the load.
    let ok_then = load.ok_so_far();
    let more = load.wait_ok(ok_then + 100, Duration::from_secs(10));
    let rep = load.stop();
    eprintln!(
        "usr2_upgrade: {}; saw .oldbin: {}",
        rep.describe(),
        saw_oldbin
    );
    assert!(
        more,
        "no progress after the old master exited: {}",
        rep.describe()
    );
    assert_eq!(
        rep.failures,
        0,
        "requests failed across the upgrade: {}\n{}",
        rep.describe(),
        srv.log()
    );
    assert_eq!(rep.connect_errors, 0, "{}", rep.describe());

    let deadline = Instant::now() + Duration::from_secs(10);
    let new_workers = loop {
        let w = children_of(new_pid);
        if w.len() == 2 {
            break w;
        }
        assert!(
            Instant::now() < deadline,
            "new master {} has workers {:?}",
            new_pid,
            w
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let r = get(srv.addr, "/big.bin");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), BIG_LEN);
    // The new master printed its own listening line (its stdout is inherited): same address.
    assert!(
        wait_log(&srv, "binary upgrade: new master", Duration::from_secs(5)),
        "no handover line:\n{}",
        srv.log()
    );
    {
        let l = srv.listening.lock().unwrap().clone();
        assert!(l.iter().all(|a| *a == srv.addr), "listening lines {:?}", l);
    }

    // Stop the new master (not our child: poll /proc), and leave nothing behind.
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(new_pid, libc::SIGTERM);
    }
    assert!(
        wait_gone(new_pid, Duration::from_secs(15)),
        "new master {} did not exit after SIGTERM",
        new_pid
    );
    for w in &new_workers {
        assert!(
            wait_gone(*w, Duration::from_secs(5)),
            "new worker {} outlived its master",
            w
        );
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = pids_with_cmdline_containing(&root_s);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ringstatic processes of this test still running: {:?}",
            left
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !pf.exists(),
        "pid file left behind by the new master's exit"
    );
}

#[test]
fn quit_during_large_download_completes() {
    let d = TempDir::new("quit");
    let len = 64 * 1024 * 1024;
    let data = pattern_bytes(len, 0xC0FFEE);
    d.write("www/big.bin", &data);
    let mut srv = Server::start(&d.join("www"), &[]);

    let mut c = Conn::open(srv.addr);
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut tmp = vec![0u8; 256 * 1024];
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.buf.len() < 4 * 1024 * 1024 {
        let n = c.stream.read(&mut tmp).expect("read the first MiBs");
        assert!(n > 0, "closed early after {} bytes", c.buf.len());
        c.buf.extend_from_slice(&tmp[..n]);
        assert!(Instant::now() < deadline, "first MiBs too slow");
    }
    srv.signal(libc::SIGQUIT);
    let r = c
        .try_read_response(false)
        .unwrap_or_else(|e| panic!("download interrupted by SIGQUIT: {}\n{}", e, srv.log()));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.content_length(), Some(len as u64));
    assert_bytes_eq(&r.body, &data, "64 MiB body across SIGQUIT");
    drop(r);
    let end = c.read_until_close(Duration::from_secs(15));
    assert_ne!(
        end,
        End::Timeout,
        "connection kept open during the graceful stop"
    );
    assert!(
        c.buf.is_empty(),
        "bytes after the response: {:?}",
        String::from_utf8_lossy(&c.buf[..c.buf.len().min(200)])
    );
    let st = srv
        .wait_exit(Duration::from_secs(15))
        .expect("master did not exit after SIGQUIT");
    assert_eq!(st.code(), Some(0), "{:?}\n{}", st, srv.log());
}

#[test]
fn worker_sigkill_under_load() {
    let _g = heavy();
    let (d, targets) = site("kill");
    let srv = Server::start(&d.join("www"), &[]);
    let before = srv.wait_workers(2, Duration::from_secs(5));
    let small = targets[0].body.clone();
    let load = Load::start(srv.addr, CLIENTS, targets, Duration::from_secs(30));
    assert!(
        load.wait_ok(300, Duration::from_secs(10)),
        "load did not get going"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(load.failures_so_far(), 0, "failures before any kill");

    let victim = before[0];
    let kill_ms = load.elapsed().as_millis();
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(victim, libc::SIGKILL);
    }
    assert!(
        wait_gone(victim, Duration::from_secs(5)),
        "worker {} did not die",
        victim
    );

    // New connections keep succeeding throughout: while the master restarts the worker and after.
    let mut probes = 0;
    let mut replaced_at: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = Conn::open(srv.addr);
        c.send(b"GET /small.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let r = c.try_read_response(false).unwrap_or_else(|e| {
            panic!(
                "new connection {} after killing worker {}: {}\n{}",
                probes,
                victim,
                e,
                srv.log()
            )
        });
        assert_eq!(r.status, 200, "probe {}: {}", probes, r.describe());
        assert_eq!(r.body, *small);
        probes += 1;
        let now = srv.worker_pids();
        if replaced_at.is_none() && now.len() == 2 && !now.contains(&victim) {
            replaced_at = Some(Instant::now());
        }
        if replaced_at.is_some_and(|t| t.elapsed() >= Duration::from_millis(500)) && probes >= 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "worker not replaced within 10 s: before {:?}, killed {}, now {:?}\n{}",
            before,
            victim,
            now,
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let ok_then = load.ok_so_far();
    let more = load.wait_ok(ok_then + 100, Duration::from_secs(10));
    let rep = load.stop();
    eprintln!("worker_sigkill: {}; {} probes", rep.describe(), probes);
    assert!(
        more,
        "load made no progress after the worker came back: {}",
        rep.describe()
    );
    assert_eq!(rep.connect_errors, 0, "{}", rep.describe());
    // Only requests in flight on the killed worker's connections may fail: at most one per
    // client connection (each client thread holds one at a time), all after the kill, and only
    // by being cut off, never by wrong data.
    assert!(
        rep.failures as usize <= CLIENTS,
        "{} failures for one killed worker (at most {} connections): {}",
        rep.failures,
        CLIENTS,
        rep.describe()
    );
    for (t, f) in &rep.failure_log {
        assert!(
            *t >= kill_ms,
            "failure before the kill (at {} ms, kill at {} ms): {}",
            t,
            kill_ms,
            f
        );
        assert!(
            f.contains("in the middle of a response") || f.contains("no response"),
            "a failure that is not a cut-off connection: {}",
            f
        );
    }
    let now = srv.wait_workers(2, Duration::from_secs(5));
    assert!(
        now.contains(&before[1]),
        "the other worker was replaced too: {:?} -> {:?}",
        before,
        now
    );
}

#[test]
fn config_test_flag() {
    let (d, _) = site("config-test");
    let root = d.join("www");
    let good = d.join("good.conf");
    std::fs::write(
        &good,
        "# ok\ncache-control max-age=60\nlisten 127.0.0.1:0\n",
    )
    .unwrap();
    let bad = d.join("bad.conf");
    std::fs::write(&bad, "cache-control max-age=60\nfrobnicate yes\n").unwrap();
    let one_line = |out: &str, err: &str| -> String {
        let all: Vec<&str> = out
            .lines()
            .chain(err.lines())
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            all.len(),
            1,
            "expected exactly one line, got stdout {:?} stderr {:?}",
            out,
            err
        );
        all[0].to_string()
    };

    // -t with a good config file.
    let (st, out, err) = run_binary(
        &["-t", "--config", s(&good), s(&root)],
        Duration::from_secs(10),
    );
    assert_eq!(st.code(), Some(0), "stdout {:?} stderr {:?}", out, err);
    let l = one_line(&out, &err);
    assert!(l.starts_with("ringstatic: configuration ok: "), "{:?}", l);
    assert!(
        out.contains("configuration ok"),
        "the ok line belongs on stdout: {:?}",
        out
    );

    // -t without a config file.
    let (st, out, err) = run_binary(&["-t", s(&root)], Duration::from_secs(10));
    assert_eq!(st.code(), Some(0), "stdout {:?} stderr {:?}", out, err);
    assert!(one_line(&out, &err).starts_with("ringstatic: configuration ok: "));

    // -t with a root that does not exist.
    let missing = d.join("no-such-root");
    let (st, out, err) = run_binary(&["-t", s(&missing)], Duration::from_secs(10));
    let l = one_line(&out, &err);
    assert_eq!(st.code(), Some(1), "-t with a missing root: {:?}", l);
    assert!(l.contains(s(&missing)), "does not name the root: {:?}", l);

    // -t with a config file naming an unknown option: exit 1, one line naming the problem.
    let (st, out, err) = run_binary(
        &["-t", "--config", s(&bad), s(&root)],
        Duration::from_secs(10),
    );
    let l = one_line(&out, &err);
    assert!(
        l.contains("frobnicate"),
        "does not name the unknown option: {:?}",
        l
    );
    assert!(l.contains("line 2"), "does not name the line: {:?}", l);
    assert_eq!(
        st.code(),
        Some(1),
        "-t with a broken config file must exit 1; said {:?}",
        l
    );

    // -s reload without --pid-file: exit 1, one clear line.
    let (st, out, err) = run_binary(&["-s", "reload"], Duration::from_secs(10));
    let l = one_line(&out, &err);
    assert_eq!(st.code(), Some(1), "{:?}", l);
    assert!(
        l.contains("--pid-file"),
        "does not say what is missing: {:?}",
        l
    );

    // -s stop with a pid file naming no process: exit 1.
    let mut c = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let dead = c.id() as i32;
    c.wait().unwrap();
    assert!(process_gone(dead));
    let pf = d.join("stale.pid");
    std::fs::write(&pf, format!("{}\n", dead)).unwrap();
    for what in ["stop", "reload", "reopen"] {
        let (code, out, err) = ctl(what, &pf);
        let l = one_line(&out, &err);
        assert_eq!(code, Some(1), "-s {} with a stale pid file: {:?}", what, l);
        assert!(
            l.contains(&dead.to_string()),
            "-s {}: does not name the pid: {:?}",
            what,
            l
        );
    }
    // ... and a pid file that does not exist.
    let (code, out, err) = ctl("stop", &d.join("absent.pid"));
    let l = one_line(&out, &err);
    assert_eq!(code, Some(1), "{:?}", l);
    assert!(l.contains("absent.pid"), "{:?}", l);
}

/// The first request after each reload is answered at once. A connection's wakeup could go to
/// the retiring worker's accept just as the drain cancelled it; nobody else was woken, and the
/// request waited in the backlog until another connection came (about 1 in 150 reloads here,
/// so 40 of them made this fail about one run in four before the fix; the draining worker now
/// takes its listener's backlog before letting go of it).
#[test]
fn first_request_after_each_reload_is_answered() {
    let _g = heavy();
    let (d, _) = site("reload-first");
    let pf = d.join("rs.pid");
    let srv = Server::start(&d.join("www"), &["--workers", "1", "--pid-file", s(&pf)]);
    for round in 0..40 {
        let (code, _, err) = ctl("reload", &pf);
        assert_eq!(code, Some(0), "reload {round}: {err}");
        let stream = connect(srv.addr);
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut c = Conn::on(stream);
        c.send(&get_req("/small.txt", &["Connection: close"]));
        let r = c
            .try_read_response(false)
            .unwrap_or_else(|e| panic!("reload {round}: the first request after it: {e}"));
        assert_eq!(r.status, 200, "reload {round}");
    }
}
