//! What a worker holds and for how long: mapped small files (a truncated one ends one response,
//! not the worker), cache entries released after deletion or inactivity, and `--max-connections`
//! as an exact limit on the sockets a worker holds.
mod common;
use common::*;
use std::time::{Duration, Instant};

/// One worker, so /proc of that one process shows everything the server holds.
fn one_worker(root: &std::path::Path, extra: &[&str]) -> (Server, i32) {
    let mut args: Vec<String> = ["--listen", "127.0.0.1:0", "--workers", "1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(root.to_str().unwrap().to_string());
    let s = Server::spawn(&args, 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let [w] = children_of(s.pid)[..] {
            return (s, w);
        }
        assert!(Instant::now() < deadline, "no worker: {}", s.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The targets of the process's fd links (`socket:[..]`, `/path (deleted)`...).
fn fd_links(pid: i32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

fn maps(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default()
}

/// Polls `cond` every 50 ms for at most `limit`.
fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn small_files_are_mapped_not_copied_and_arrive_whole() {
    let d = TempDir::new("mapped");
    let data = pattern_bytes(40 * 1024, 0x11);
    d.write("m.bin", &data);
    let (s, w) = one_worker(d.path(), &[]);
    let mut c = Conn::open(s.addr);
    for _ in 0..3 {
        c.send(&build_req("GET", "/m.bin", &[], false));
        let r = c.read_response(false);
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_bytes_eq(&r.body, &data, "mapped body");
    }
    // Ranges of a mapped file come from the mapping too.
    c.send(&build_req(
        "GET",
        "/m.bin",
        &["Range: bytes=10-19,100-100"],
        false,
    ));
    let r = c.read_response(false);
    assert_eq!(r.status, 206, "{}", r.describe());
    assert!(contains(&r.body, &data[10..20]) && contains(&r.body, &data[100..101]));
    assert!(
        maps(w).contains("/m.bin"),
        "the worker maps the file: {}",
        maps(w)
    );
}

#[test]
fn a_mapped_file_truncated_while_cached_ends_one_response_and_the_worker_survives() {
    let d = TempDir::new("truncated");
    let data = pattern_bytes(48 * 1024, 0x22);
    let path = d.write("t.bin", &data);
    d.write("other.txt", b"still here");
    // Trusted for a minute: the truncated file is sent from the same mapping.
    let (s, w) = one_worker(d.path(), &["--cache-valid", "60"]);
    let r = get(s.addr, "/t.bin");
    assert_eq!(r.status, 200);
    assert_bytes_eq(&r.body, &data, "before truncation");
    assert!(maps(w).contains("/t.bin"));

    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    let mut c = Conn::open(s.addr);
    c.send(&get_req("/t.bin", &[]));
    let end = c.read_until_close(Duration::from_secs(10));
    assert_ne!(end, End::Timeout, "the connection must end, not hang");
    let got = c.buf.len();
    // The head and the first body bytes are copied in one go, so the failed copy usually takes
    // the head with it: the client sees the connection close with nothing, or a part.
    assert!(
        got < data.len(),
        "the response ends early ({got} bytes arrived): the kernel's copy failed"
    );
    // The same worker goes on serving.
    assert_eq!(children_of(s.pid), vec![w], "{}", s.log());
    let r = get(s.addr, "/other.txt");
    assert_eq!((r.status, r.body_str().as_str()), (200, "still here"));
}

#[test]
fn a_deleted_file_is_released_on_the_tick_without_being_asked_for() {
    let d = TempDir::new("deleted");
    let big = pattern_bytes(200 * 1024, 0x33);
    d.write("big.bin", &big);
    d.write("small.txt", b"small");
    d.write("idle.txt", b"idle");
    let (s, w) = one_worker(d.path(), &["--cache-valid", "1", "--cache-inactive", "3"]);
    for p in ["/big.bin", "/small.txt"] {
        assert_eq!(get(s.addr, p).status, 200);
    }
    let held = |name: &str| fd_links(w).iter().any(|l| l.contains(name)) || maps(w).contains(name);
    assert!(held("big.bin") && held("small.txt"));
    std::fs::remove_file(d.join("big.bin")).unwrap();
    // small.txt replaced by an atomic rename: the old version is released too.
    d.write("small.new", b"SMALL");
    std::fs::rename(d.join("small.new"), d.join("small.txt")).unwrap();
    assert!(
        eventually(Duration::from_secs(4), || {
            !fd_links(w).iter().any(|l| l.contains("(deleted)"))
                && !maps(w)
                    .lines()
                    .any(|l| l.contains("(deleted)") && !l.contains("memfd:"))
        }),
        "still held: {:?}\n{}",
        fd_links(w),
        maps(w)
    );
    assert_eq!(get(s.addr, "/small.txt").body_str(), "SMALL");

    // Unused for --cache-inactive: closed by the tick.
    assert_eq!(get(s.addr, "/idle.txt").status, 200);
    assert!(held("idle.txt"));
    assert!(
        eventually(Duration::from_secs(8), || !held("idle.txt")),
        "an inactive entry stays open: {:?}",
        fd_links(w)
    );
}

#[test]
fn max_connections_is_an_exact_limit() {
    let d = TempDir::new("maxconn");
    d.write("a.txt", b"a");
    // Accepted at once (no deferred accept), and never closed for silence during the test.
    let (s, w) = one_worker(
        d.path(),
        &[
            "--max-connections",
            "100",
            "--defer-accept",
            "off",
            "--header-timeout",
            "60",
        ],
    );
    let sockets = || {
        fd_links(w)
            .iter()
            .filter(|l| l.starts_with("socket:"))
            .count()
    };
    let listening = sockets();
    let mut clients: Vec<_> = (0..300).map(|_| connect(s.addr)).collect();
    assert!(
        eventually(Duration::from_secs(5), || sockets() == listening + 100),
        "{} sockets",
        sockets()
    );
    // However long they wait, the worker takes no more.
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(sockets(), listening + 100);
    // Close 50 of the accepted ones: 50 waiting in the backlog take their places, no more.
    clients.drain(..50);
    assert!(
        eventually(Duration::from_secs(5), || sockets() == listening + 100),
        "{} sockets",
        sockets()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sockets(), listening + 100);
    drop(clients);
    // Everyone gone: a request is answered.
    assert_eq!(get(s.addr, "/a.txt").status, 200);
}
