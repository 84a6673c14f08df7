//! Timeouts, worker processes, crash recovery, graceful shutdown.
mod common;
use common::*;
use std::io::Read;
use std::time::{Duration, Instant};

fn site() -> TempDir {
    let d = TempDir::new("process");
    d.write("a.txt", b"hello a\n");
    d
}

#[test]
fn header_timeout_closes_a_client_that_stalls_mid_head() {
    let d = site();
    let s = Server::start(d.path(), &["--header-timeout", "1"]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n");
    let t0 = Instant::now();
    let end = c.read_until_close(Duration::from_secs(10));
    let el = t0.elapsed();
    assert_ne!(end, End::Timeout, "stalled client not closed within 10 s");
    assert!(
        el >= Duration::from_millis(500),
        "closed after only {:?}: before the 1 s header timeout",
        el
    );
    assert!(el <= Duration::from_secs(6), "closed only after {:?}", el);
    if !c.buf.is_empty() {
        // A 408 before closing is acceptable; nothing else is.
        match parse_response(&c.buf, false, true) {
            Ok(Parsed::Done(r, _)) => assert_eq!(r.status, 408, "{}", r.describe()),
            _ => panic!(
                "garbage before close: {:?}",
                String::from_utf8_lossy(&c.buf)
            ),
        }
    }
    // The server is fine afterwards.
    assert_eq!(get(s.addr, "/a.txt").status, 200);
}

/// Accepts are deferred (TCP_DEFER_ACCEPT, 1 s) by default: a client that connects and says
/// nothing is handed over once the kernel gives up waiting for its bytes, and then meets the
/// header timeout like any other silent client.
#[test]
fn a_client_that_connects_and_sends_nothing_is_closed() {
    let d = site();
    for defer in ["on", "off"] {
        let s = Server::start(
            d.path(),
            &["--header-timeout", "1", "--defer-accept", defer],
        );
        let mut c = Conn::open(s.addr);
        let t0 = Instant::now();
        let end = c.read_until_close(Duration::from_secs(20));
        assert_ne!(
            end,
            End::Timeout,
            "silent client not closed within 20 s (defer-accept {defer})"
        );
        assert!(
            t0.elapsed() >= Duration::from_millis(500),
            "closed after only {:?} (defer-accept {defer})",
            t0.elapsed()
        );
        assert_eq!(get(s.addr, "/a.txt").status, 200);
    }
}

/// A request that arrives after the defer period (the kernel then hands the connection over
/// without data) is still read and answered, with deferring on and off.
#[test]
fn a_request_sent_well_after_connecting_is_served() {
    let d = site();
    for defer in ["on", "off"] {
        let s = Server::start(d.path(), &["--defer-accept", defer]);
        let mut early = Conn::open(s.addr);
        let mut late = Conn::open(s.addr);
        std::thread::sleep(Duration::from_millis(300));
        early.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = early.read_response(false);
        assert_eq!(r.status, 200, "defer-accept {defer}: {}", r.describe());
        std::thread::sleep(Duration::from_millis(1700));
        late.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = late.read_response(false);
        assert_eq!(r.status, 200, "defer-accept {defer}: {}", r.describe());
        assert_eq!(r.body, b"hello a\n");
        // Keep-alive goes on after the first read (a single-shot recv) on both.
        for c in [&mut early, &mut late] {
            c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let r = c.read_response(false);
            assert_eq!(r.status, 200, "defer-accept {defer}: {}", r.describe());
            assert_eq!(
                c.read_until_close(Duration::from_secs(5)),
                End::Eof,
                "defer-accept {defer}: no clean close after Connection: close"
            );
        }
    }
}

#[test]
fn head_sent_in_fragments_within_timeout_is_served() {
    let d = site();
    let s = Server::start(d.path(), &["--header-timeout", "2"]);
    let mut c = Conn::open(s.addr);
    for part in [
        &b"GE"[..],
        b"T /a.t",
        b"xt HTTP/1.1\r",
        b"\nHost: x\r\n",
        b"\r\n",
    ] {
        c.send(part);
        std::thread::sleep(Duration::from_millis(150));
    }
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"hello a\n");
}

#[test]
fn header_timeout_is_for_the_whole_head_not_per_read() {
    let d = site();
    let s = Server::start(d.path(), &["--header-timeout", "1"]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    let t0 = Instant::now();
    // Trickle one byte every 100 ms; the server must still cut us off.
    let mut closed = false;
    while t0.elapsed() < Duration::from_secs(8) {
        if c.try_send(b"a").is_err() {
            closed = true;
            break;
        }
        if c.read_until_close(Duration::from_millis(100)) != End::Timeout {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a client trickling a header byte by byte was never cut off"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(500),
        "closed after {:?}",
        t0.elapsed()
    );
}

#[test]
fn send_timeout_closes_connection_of_client_that_stops_reading() {
    let d = site();
    let len = 48 * 1024 * 1024;
    let data = pattern_bytes(len, 0x51);
    d.write("big.bin", &data);
    let s = Server::start(d.path(), &["--send-timeout", "1"]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    // Read nothing for 4 s: no progress for longer than the send timeout.
    std::thread::sleep(Duration::from_secs(4));
    let end = c.read_until_close(Duration::from_secs(20));
    assert_ne!(end, End::Timeout, "connection neither finished nor closed");
    let got = c.buf.len();
    assert!(
        got < len,
        "the whole {} bytes arrived: the stalled client was not dropped after --send-timeout 1",
        got
    );
    // The server is fine afterwards.
    assert_eq!(get(s.addr, "/a.txt").status, 200);
}

/// The last response of a `Connection: close` request, sent from memory, leaves with the
/// close linked behind it in the ring: a client that stops reading must still meet the send
/// timeout, and one that reads must get every byte, then a clean end.
#[test]
fn last_response_from_memory_times_out_or_arrives_whole() {
    let d = site();
    let len = 8 * 1024 * 1024;
    let data = pattern_bytes(len, 0x3c);
    d.write("mem.bin", &data);
    let s = Server::start(
        d.path(),
        &[
            "--send-timeout",
            "1",
            "--inline-max",
            "16M",
            "--cache-bytes",
            "64M",
        ],
    );
    let req = b"GET /mem.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut stalled = Conn::open(s.addr);
    stalled.send(req);
    std::thread::sleep(Duration::from_secs(4));
    let end = stalled.read_until_close(Duration::from_secs(20));
    assert_ne!(
        end,
        End::Timeout,
        "stalled client neither served nor closed"
    );
    assert!(
        stalled.buf.len() < len,
        "the whole file reached a client that read nothing for 4 s with --send-timeout 1"
    );
    for _ in 0..3 {
        let mut c = Conn::open(s.addr);
        c.send(req);
        assert_eq!(c.read_until_close(Duration::from_secs(20)), End::Eof);
        match parse_response(&c.buf, false, true) {
            Ok(Parsed::Done(r, _)) => {
                assert_eq!(r.status, 200, "{}", r.describe());
                assert!(r.body == data, "body differs ({} bytes)", r.body.len());
            }
            _ => panic!("incomplete response: {} bytes", c.buf.len()),
        }
    }
}

#[test]
fn send_timeout_does_not_cut_a_slow_but_progressing_reader() {
    let d = site();
    let len = 12 * 1024 * 1024;
    let data = pattern_bytes(len, 0x53);
    d.write("big.bin", &data);
    let s = Server::start(d.path(), &["--send-timeout", "1"]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    // Head only (parsed as if HEAD: the body stays in the buffer).
    let r = c.read_response(true);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.content_length(), Some(len as u64));
    let mut body = std::mem::take(&mut c.buf);
    // About 2.5 MB/s: always progressing, but the whole transfer takes
    // several times the send timeout.
    let mut tmp = vec![0u8; 512 * 1024];
    let t0 = Instant::now();
    while body.len() < len {
        let mut got = 0;
        let want = tmp.len().min(len - body.len());
        while got < want {
            match c.stream.read(&mut tmp[got..want]) {
                Ok(0) => panic!(
                    "connection closed after {} body bytes in {:?}: slow reader cut off",
                    body.len() + got,
                    t0.elapsed()
                ),
                Ok(n) => got += n,
                Err(e) => panic!("read error after {} bytes: {}", body.len() + got, e),
            }
        }
        body.extend_from_slice(&tmp[..got]);
        std::thread::sleep(Duration::from_millis(200));
        assert!(t0.elapsed() < Duration::from_secs(30));
    }
    assert_bytes_eq(&body, &data, "slow download");
    assert!(
        t0.elapsed() > Duration::from_secs(2),
        "transfer was not slow: {:?}",
        t0.elapsed()
    );
}

#[test]
fn shutdown_timeout_bounds_a_graceful_stop_with_a_stalled_client() {
    let d = site();
    let data = pattern_bytes(48 * 1024 * 1024, 0x52);
    d.write("big.bin", &data);
    let mut s = Server::start(
        d.path(),
        &["--shutdown-timeout", "1", "--send-timeout", "60"],
    );
    let mut c = Conn::open(s.addr);
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut tmp = vec![0u8; 64 * 1024];
    let n = c.stream.read(&mut tmp).expect("read");
    assert!(n > 0);
    // Stop reading, then ask the server to stop.
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    s.signal(libc::SIGTERM);
    let st = s.wait_exit(Duration::from_secs(8));
    assert!(
        st.is_some(),
        "master still running 8 s after SIGTERM with --shutdown-timeout 1\n{}",
        s.log()
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(500),
        "stopped at once: {:?}",
        t0.elapsed()
    );
    drop(c);
}

#[test]
fn keepalive_timeout_closes_idle_connection() {
    let d = site();
    let s = Server::start(d.path(), &["--keepalive-timeout", "1"]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200);
    let t0 = Instant::now();
    c.expect_closed(Duration::from_secs(10), "idle keep-alive connection");
    let el = t0.elapsed();
    assert!(
        el >= Duration::from_millis(500),
        "closed after only {:?}",
        el
    );
    assert!(el <= Duration::from_secs(6), "closed only after {:?}", el);
}

#[test]
fn workers_flag_sets_number_of_worker_processes() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let w = s.wait_workers(2, Duration::from_secs(5));
    assert!(!w.contains(&s.pid));
    drop(s);
    let s = Server::spawn(
        &[
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--workers".into(),
            "3".into(),
            d.path().to_str().unwrap().into(),
        ],
        1,
    );
    s.wait_workers(3, Duration::from_secs(5));
    assert_eq!(get(s.addr, "/a.txt").status, 200);
}

#[test]
fn killed_worker_is_replaced_and_port_keeps_answering() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let before = s.wait_workers(2, Duration::from_secs(5));
    let victim = before[0];
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(victim, libc::SIGKILL);
    }
    // Wait until the kill has taken effect (the victim is a zombie or reaped). A connection that
    // arrives while the dying worker's ring is being torn down can still be accepted by it and
    // is then lost with it: that is one of "that worker's connections in flight", which the
    // master cannot save. Every connection after that must be answered.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let state = std::fs::read_to_string(format!("/proc/{victim}/stat"))
            .ok()
            .and_then(|st| {
                st.rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().next())
                    .map(str::to_string)
            });
        if state.as_deref().map_or(true, |s| s == "Z" || s == "X") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "worker {victim} did not die after SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // Right after: 10 sequential fresh connections all succeed, while the master restarts it.
    for i in 0..10 {
        let mut c = Conn::open(s.addr);
        c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let r = c
            .try_read_response(false)
            .unwrap_or_else(|e| panic!("connection {} after killing worker {}: {}", i, victim, e));
        assert_eq!(r.status, 200, "connection {}: {}", i, r.describe());
        assert_eq!(r.body, b"hello a\n");
    }
    // Within a few seconds the master has 2 children again, one of them new.
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let now = s.worker_pids();
        if now.len() == 2 && !now.contains(&victim) && now.iter().any(|p| !before.contains(p)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "worker not replaced: before {:?}, killed {}, now {:?}\n{}",
            before,
            victim,
            now,
            s.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..10 {
        assert_eq!(get(s.addr, "/a.txt").status, 200);
    }
}

#[test]
fn sigterm_when_idle_exits_with_status_0() {
    let d = site();
    let mut s = Server::start(d.path(), &[]);
    assert_eq!(get(s.addr, "/a.txt").status, 200);
    s.signal(libc::SIGTERM);
    let st = s
        .wait_exit(Duration::from_secs(15))
        .expect("master did not exit after SIGTERM");
    assert_eq!(st.code(), Some(0), "exit status {:?}\n{}", st, s.log());
    // Workers are gone too.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        std::net::TcpStream::connect_timeout(&s.addr, Duration::from_secs(2)).is_err(),
        "still accepting connections after exit"
    );
}

#[test]
fn sigterm_during_large_download_completes_it_and_exits_0() {
    let d = site();
    let len = 100 * 1024 * 1024;
    let data = pattern_bytes(len, 0x5EED);
    d.write("big.bin", &data);
    let mut s = Server::start(d.path(), &[]);

    let mut c = Conn::open(s.addr);
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut tmp = vec![0u8; 256 * 1024];
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.buf.len() < 4 * 1024 * 1024 {
        let n = c.stream.read(&mut tmp).expect("read first MiBs");
        assert!(n > 0, "closed early after {} bytes", c.buf.len());
        c.buf.extend_from_slice(&tmp[..n]);
        assert!(Instant::now() < deadline);
    }
    s.signal(libc::SIGTERM);
    let r = c
        .try_read_response(false)
        .unwrap_or_else(|e| panic!("download interrupted by SIGTERM: {}", e));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.content_length(), Some(len as u64));
    assert_bytes_eq(&r.body, &data, "100 MiB body across SIGTERM");
    drop(r);
    // The connection is then closed, and the master exits 0.
    let end = c.read_until_close(Duration::from_secs(15));
    assert_ne!(end, End::Timeout, "connection kept open during shutdown");
    let st = s
        .wait_exit(Duration::from_secs(15))
        .expect("master did not exit after SIGTERM");
    assert_eq!(st.code(), Some(0), "exit status {:?}\n{}", st, s.log());
}

#[test]
fn max_connections_limits_open_connections_per_worker() {
    let d = site();
    let s = Server::spawn(
        &[
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--workers".into(),
            "1".into(),
            "--max-connections".into(),
            "2".into(),
            d.path().to_str().unwrap().into(),
        ],
        1,
    );
    let mut held: Vec<Conn> = (0..2).map(|_| Conn::open(s.addr)).collect();
    for c in held.iter_mut() {
        c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(c.read_response(false).status, 200);
    }
    // A third connection is not served while two are open...
    let mut third = Conn::open(s.addr);
    third.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    let end = third.read_until_close(Duration::from_millis(1000));
    assert!(
        third.buf.is_empty(),
        "a third connection was served with --max-connections 2 and --workers 1: {:?}",
        String::from_utf8_lossy(&third.buf)
    );
    // ...and is served once one of them closes (unless it was refused).
    if end == End::Timeout {
        held.pop();
        third
            .stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let r = third.read_response(false);
        assert_eq!(r.status, 200, "{}", r.describe());
    }
}

#[test]
fn max_connections_flag_is_accepted_and_serves() {
    let d = site();
    let s = Server::start(d.path(), &["--max-connections", "64"]);
    let mut conns: Vec<Conn> = (0..8).map(|_| Conn::open(s.addr)).collect();
    for c in conns.iter_mut() {
        c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    for c in conns.iter_mut() {
        let r = c.read_response(false);
        assert_eq!(r.status, 200);
    }
}

/// EMFILE on accept: with a tiny open-file limit, a flood of connections runs a worker out of
/// descriptors. It must back off (and say so), keep the connections it has, and serve again
/// once they close - never die or spin.
#[test]
fn accept_out_of_fds_backs_off_and_recovers() {
    use std::os::unix::process::CommandExt;
    let d = site();
    let mut cmd = std::process::Command::new(BIN);
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--workers",
        "1",
        d.path().to_str().unwrap(),
    ]);
    // SAFETY: setrlimit between fork and exec, async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let s = Server::spawn_command(cmd, "--workers 1 with RLIMIT_NOFILE 64", 1);
    let before = s.wait_workers(1, Duration::from_secs(5));
    // More connections than the worker can hold fds for; the surplus waits in the backlog.
    let mut conns = Vec::new();
    for _ in 0..120 {
        match std::net::TcpStream::connect_timeout(&s.addr, Duration::from_secs(2)) {
            Ok(c) => conns.push(c),
            Err(_) => break,
        }
    }
    assert!(
        conns.len() > 64,
        "only {} connections could be opened",
        conns.len()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s.log().contains("pausing accepts") {
        assert!(
            Instant::now() < deadline,
            "no back-off logged:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(conns);
    // Once the descriptors are back, the same worker serves again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = Conn::open(s.addr);
        c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        if let Ok(r) = c.try_read_response(false) {
            assert_eq!(r.status, 200, "{}", r.describe());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no answer after the flood:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        s.worker_pids(),
        before,
        "the worker died (or was replaced) during the flood:\n{}",
        s.log()
    );
}
