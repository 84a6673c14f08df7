//! Least privilege: started as root, the workers switch to `--user` and enter their sandbox
//! (no_new_privs, Landlock, seccomp, a restricted ring), the master stays root and does the
//! rest; and everything the server does keeps working: serving, ranges, USR1 log reopening,
//! reload, a worker restart, a binary upgrade. `-t` refuses a root the user cannot read.
//!
//! What is checked is what the kernel reports: /proc/PID/status of each worker.
mod common;
use common::*;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

fn s(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Workers switch users only when started as root; without root these tests cannot run.
fn needs_root(test: &str) -> bool {
    if !is_root() {
        eprintln!("skipped: {test} needs root (workers switch users only when started as root)");
        return false;
    }
    true
}

/// `nobody`'s uid and primary gid from /etc/passwd.
fn nobody() -> (u32, u32) {
    let pw = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    for l in pw.lines() {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() > 3 && f[0] == "nobody" {
            return (f[2].parse().unwrap(), f[3].parse().unwrap());
        }
    }
    panic!("no user nobody in /etc/passwd");
}

/// Whether this kernel offers Landlock (then the start-up line must say it is on).
fn kernel_has_landlock() -> bool {
    // SAFETY: the version query of landlock_create_ruleset takes no struct.
    unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        ) >= 1
    }
}

fn status_field(pid: i32, name: &str) -> String {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    st.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The kernel's word on a worker: ids (real, effective, saved, fs), no groups, no_new_privs,
/// a seccomp filter.
fn assert_sandboxed(pid: i32, uid: u32, gid: u32, ctx: &str) {
    let ids = |n| format!("{n} {n} {n} {n}");
    assert_eq!(
        status_field(pid, "Uid"),
        ids(uid),
        "{ctx}: worker {pid} Uid"
    );
    assert_eq!(
        status_field(pid, "Gid"),
        ids(gid),
        "{ctx}: worker {pid} Gid"
    );
    assert_eq!(
        status_field(pid, "Groups"),
        "",
        "{ctx}: worker {pid} Groups"
    );
    assert_eq!(
        status_field(pid, "NoNewPrivs"),
        "1",
        "{ctx}: worker {pid} NoNewPrivs"
    );
    assert_eq!(
        status_field(pid, "Seccomp"),
        "2",
        "{ctx}: worker {pid} Seccomp"
    );
}

fn wait_log(srv: &Server, needle: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while !srv.log().contains(needle) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// The start-up line, once worker 0 has printed it.
fn sandbox_line(srv: &Server) -> String {
    assert!(
        wait_log(srv, "sandbox: ", Duration::from_secs(10)),
        "no sandbox line\n{}",
        srv.log()
    );
    let log = srv.log();
    let l = log.lines().find(|l| l.contains("sandbox: ")).unwrap();
    l[l.find("sandbox: ").unwrap()..].to_string()
}

/// Waits until the master has two workers, none of them in `old`.
fn wait_new_workers(srv_pid: i32, old: &[i32], ctx: &str) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let w = children_of(srv_pid);
        if w.len() == 2 && w.iter().all(|p| !old.contains(p)) {
            // Give them a moment to finish setting up (they are children before they serve).
            std::thread::sleep(Duration::from_millis(200));
            return w;
        }
        assert!(
            Instant::now() < deadline,
            "{ctx}: workers {w:?}, old {old:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Site {
    d: TempDir,
    small: Vec<u8>,
    big: Vec<u8>,
}

fn site(tag: &str) -> Site {
    let d = TempDir::new(tag);
    let small = pattern_bytes(300, 3);
    let big = pattern_bytes(300 * 1024, 4);
    d.write("www/index.html", b"<p>hello</p>\n");
    d.write("www/small.txt", &small);
    d.write("www/big.bin", &big);
    d.write("www/sub/index.html", b"sub\n");
    d.write("secret.txt", b"outside the root\n");
    std::fs::create_dir_all(d.join("logs")).unwrap();
    Site { d, small, big }
}

/// Every kind of response a worker makes, through every body path.
fn serves(addr: std::net::SocketAddr, site: &Site, ctx: &str) {
    let r = get(addr, "/small.txt");
    assert_eq!(r.status, 200, "{ctx}: {}", r.describe());
    assert_bytes_eq(&r.body, &site.small, ctx);
    let r = get(addr, "/big.bin");
    assert_eq!(r.status, 200, "{ctx}: {}", r.describe());
    assert_bytes_eq(&r.body, &site.big, ctx);
    let r = get_with(addr, "/big.bin", &["Range: bytes=100000-100099"]);
    assert_eq!(r.status, 206, "{ctx}: {}", r.describe());
    assert_bytes_eq(&r.body, &site.big[100000..100100], ctx);
    let r = get_with(addr, "/small.txt", &["Range: bytes=0-1,10-11"]);
    assert_eq!(r.status, 206, "{ctx}: {}", r.describe());
    assert!(r
        .must_header("Content-Type")
        .starts_with("multipart/byteranges"));
    assert_eq!(get(addr, "/sub").status, 301, "{ctx}");
    assert_eq!(get(addr, "/sub/").body, b"sub\n", "{ctx}");
    assert_eq!(get(addr, "/missing").status, 404, "{ctx}");
    assert_eq!(get(addr, "/../secret.txt").status, 400, "{ctx}");
}

/// Kills, on drop, every process whose command line mentions this test's root (the new
/// master of a binary upgrade is not our child).
struct KillMentioning(String);

impl Drop for KillMentioning {
    fn drop(&mut self) {
        kill_processes_mentioning(&self.0);
    }
}

fn ctl(what: &str, pf: &std::path::Path) {
    let (st, out, err) = run_binary(&["-s", what, "--pid-file", s(pf)], Duration::from_secs(30));
    assert_eq!(st.code(), Some(0), "-s {what}: {out} {err}");
}

fn lines(p: &std::path::Path) -> usize {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .count()
}

fn wait_lines(p: &std::path::Path, n: usize, ctx: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while lines(p) < n {
        assert!(
            Instant::now() < deadline,
            "{ctx}: {} has {} lines, expected {n}",
            p.display(),
            lines(p)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn root_started_workers_run_as_nobody_in_their_sandbox_through_reopen_reload_restart_upgrade() {
    if !needs_root("root_started_workers_run_as_nobody_...") {
        return;
    }
    let (uid, gid) = nobody();
    let site = site("sandbox-life");
    let root = site.d.join("www");
    let _cleanup = KillMentioning(s(&root).to_string());
    let pf = site.d.join("rs.pid");
    let log = site.d.join("logs/access.log");
    let mut srv = Server::start(
        &root,
        &[
            "--user",
            "nobody",
            "--access-log",
            s(&log),
            "--pid-file",
            s(&pf),
        ],
    );
    let workers = srv.wait_workers(2, Duration::from_secs(5));

    // The start-up line lists every layer, each on where this kernel has it.
    let line = sandbox_line(&srv);
    assert!(
        line.starts_with("sandbox: user nobody, landlock "),
        "{line}"
    );
    assert!(line.contains(", seccomp on, ring restricted"), "{line}");
    if kernel_has_landlock() {
        assert!(line.contains("landlock on (ABI "), "{line}");
    }
    assert_eq!(
        srv.log().matches("sandbox: ").count(),
        1,
        "one line, not one per worker"
    );

    // The kernel's view: workers are nobody, sandboxed; the master stays root, unfiltered.
    serves(srv.addr, &site, "first start");
    for &w in &workers {
        assert_sandboxed(w, uid, gid, "first start");
    }
    assert_eq!(status_field(srv.pid, "Uid"), "0 0 0 0");
    assert_eq!(status_field(srv.pid, "Seccomp"), "0");

    // USR1 after logrotate moved the log: the master recreates it for nobody, the workers
    // reopen it (Landlock lets them write existing files in the log's directory only).
    wait_lines(&log, 8, "before the move");
    std::thread::sleep(Duration::from_millis(600)); // past a flush tick: every line is out
    let n_before = lines(&log);
    let rotated = site.d.join("logs/access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    ctl("reopen", &pf);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !log.exists() {
        assert!(
            Instant::now() < deadline,
            "log not recreated\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        std::fs::metadata(&log).unwrap().uid(),
        uid,
        "new log's owner"
    );
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..10 {
        assert_eq!(get(srv.addr, "/small.txt").status, 200);
    }
    wait_lines(&log, 10, "after the reopen");
    assert_eq!(
        lines(&rotated),
        n_before,
        "lines after the reopen went to the old file"
    );
    assert!(
        !srv.log().contains("cannot reopen"),
        "a worker could not reopen its logs\n{}",
        srv.log()
    );

    // Reload: the new workers are sandboxed too.
    ctl("reload", &pf);
    let reloaded = wait_new_workers(srv.pid, &workers, "after reload");
    for &w in &reloaded {
        assert_sandboxed(w, uid, gid, "after reload");
    }
    serves(srv.addr, &site, "after reload");

    // A worker killed is restarted, sandboxed.
    // SAFETY: kill(2) on a worker pid of our own server.
    unsafe { libc::kill(reloaded[0], libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(15);
    let restarted = loop {
        let w = children_of(srv.pid);
        if w.len() == 2 && !w.contains(&reloaded[0]) {
            break w.into_iter().find(|p| *p != reloaded[1]).unwrap();
        }
        assert!(Instant::now() < deadline, "no restart\n{}", srv.log());
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(200));
    assert_sandboxed(restarted, uid, gid, "restarted worker");
    serves(srv.addr, &site, "after a restart");

    // USR2: the new master (root) starts sandboxed workers and serves alone.
    srv.signal(libc::SIGUSR2);
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_master = loop {
        if let Ok(p) = std::fs::read_to_string(&pf)
            .unwrap_or_default()
            .trim()
            .parse::<i32>()
        {
            if p != srv.pid {
                break p;
            }
        }
        assert!(Instant::now() < deadline, "no new master\n{}", srv.log());
        std::thread::sleep(Duration::from_millis(10));
    };
    let st = srv
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("old master did not exit\n{}", srv.log()));
    assert_eq!(st.code(), Some(0), "{}", srv.log());
    let upgraded = wait_new_workers(new_master, &[], "after upgrade");
    for &w in &upgraded {
        assert_sandboxed(w, uid, gid, "after upgrade");
    }
    serves(srv.addr, &site, "after upgrade");
    // SAFETY: kill(2) on the new master we started through the upgrade.
    unsafe { libc::kill(new_master, libc::SIGTERM) };
    assert!(wait_gone(new_master, Duration::from_secs(15)));
}

#[test]
fn config_test_refuses_a_root_the_user_cannot_read_and_names_it() {
    if !needs_root("config_test_refuses_a_root_the_user_cannot_read") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let site = site("sandbox-t");
    let root = site.d.join("www");
    let t = |user: &str| run_binary(&["-t", "--user", user, s(&root)], Duration::from_secs(10));
    let chmod = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };

    let (st, out, err) = t("nobody");
    assert_eq!(st.code(), Some(0), "{out} {err}");

    chmod(&root, 0o700);
    let (st, _, err) = t("nobody");
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{} is not readable by user nobody",
            root.display()
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // The master refuses the same root at start, before any worker.
    let (st, _, err) = run_binary(
        &["--listen", "127.0.0.1:0", "--user", "nobody", s(&root)],
        Duration::from_secs(10),
    );
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("is not readable by user nobody"), "{err}");
    chmod(&root, 0o755);

    let index = root.join("index.html");
    chmod(&index, 0o600);
    let (st, _, err) = t("nobody");
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{} is not readable by user nobody",
            index.display()
        )),
        "{err}"
    );
    // Root can read it, so `--user root` passes (nothing is switched then).
    let (st, _, err) = t("root");
    assert_eq!(st.code(), Some(0), "{err}");
    chmod(&index, 0o644);

    let (st, _, err) = t("no-such-user-here");
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("no user `no-such-user-here`"), "{err}");
    let (st, _, err) = t("a b");
    assert_ne!(st.code(), Some(0), "{err}");
    assert!(err.contains("USER:GROUP"), "{err}");
}

#[test]
fn strict_sandbox_serves_where_the_kernel_has_every_layer() {
    if !kernel_has_landlock() {
        eprintln!(
            "skipped: strict_sandbox_serves_...: this kernel has no Landlock, strict would refuse"
        );
        return;
    }
    let site = site("sandbox-strict");
    let srv = Server::start(&site.d.join("www"), &["--sandbox", "strict"]);
    let line = sandbox_line(&srv);
    assert!(line.contains("landlock on (ABI "), "{line}");
    assert!(line.contains("seccomp on, ring restricted"), "{line}");
    serves(srv.addr, &site, "strict");
    for w in srv.wait_workers(2, Duration::from_secs(5)) {
        assert_eq!(status_field(w, "Seccomp"), "2");
    }
}

#[test]
fn sandbox_off_says_so_and_applies_no_filter() {
    let site = site("sandbox-off");
    let srv = Server::start(&site.d.join("www"), &["--sandbox", "off"]);
    let line = sandbox_line(&srv);
    assert!(line.ends_with("off (--sandbox off)"), "{line}");
    serves(srv.addr, &site, "off");
    for w in srv.wait_workers(2, Duration::from_secs(5)) {
        assert_eq!(status_field(w, "Seccomp"), "0");
        assert_eq!(status_field(w, "NoNewPrivs"), "0");
    }
}

#[test]
fn started_as_another_user_nothing_is_switched_and_the_sandbox_still_applies() {
    if !needs_root("started_as_another_user_...") {
        return;
    }
    let (uid, gid) = nobody();
    let site = site("sandbox-nonroot");
    let root = site.d.join("www");
    let mut cmd = std::process::Command::new(BIN);
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--workers",
        "2",
        "--user",
        "root",
        s(&root),
    ]);
    // std clears the supplementary groups too when a root parent sets the uid.
    cmd.uid(uid).gid(gid);
    let srv = Server::spawn_command(cmd, "as nobody", 1);
    let line = sandbox_line(&srv);
    assert!(
        line.starts_with(&format!(
            "sandbox: user uid {uid} (not started as root, unchanged)"
        )),
        "{line}"
    );
    serves(srv.addr, &site, "as nobody");
    for w in srv.wait_workers(2, Duration::from_secs(5)) {
        assert_sandboxed(w, uid, gid, "as nobody");
    }
}

#[test]
fn usr1_hands_both_rotated_logs_to_workers_running_as_nobody() {
    if !needs_root("usr1_hands_both_rotated_logs_to_workers_running_as_nobody") {
        return;
    }
    let (uid, _) = nobody();
    let site = site("sandbox-logs");
    let pf = site.d.join("rs.pid");
    let access = site.d.join("logs/access.log");
    let errors = site.d.join("logs/error.log");
    let srv = Server::start(
        &site.d.join("www"),
        &[
            "--access-log",
            s(&access),
            "--error-log",
            s(&errors),
            "--pid-file",
            s(&pf),
        ],
    );
    srv.wait_workers(2, Duration::from_secs(5));
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !read(&errors).contains("sandbox: user nobody") {
        assert!(
            Instant::now() < deadline,
            "no sandbox line in the error log"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(get(srv.addr, "/small.txt").status, 200);

    let (access1, errors1) = (site.d.join("logs/a.1"), site.d.join("logs/e.1"));
    std::fs::rename(&access, &access1).unwrap();
    std::fs::rename(&errors, &errors1).unwrap();
    ctl("reopen", &pf);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(access.exists() && errors.exists()) {
        assert!(Instant::now() < deadline, "logs not recreated");
        std::thread::sleep(Duration::from_millis(10));
    }
    for p in [&access, &errors] {
        assert_eq!(std::fs::metadata(p).unwrap().uid(), uid, "{}", p.display());
    }
    // A worker that could not reopen a log says so on its old error log.
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        assert_eq!(get(srv.addr, "/small.txt").status, 200);
    }
    wait_lines(&access, 5, "access log after the reopen");
    let all = read(&errors1) + &read(&errors);
    assert!(!all.contains("cannot"), "a reopen failed:\n{all}");
    assert!(read(&errors).contains("reopening log files") || read(&errors1).contains("reopening"));
}
