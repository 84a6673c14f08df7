//! One instance per address: a second ringstatic on an address that is already served (by
//! another ringstatic or by anything else) is refused with one line and exit 1 before any worker
//! starts, instead of joining the first one's SO_REUSEPORT group and splitting its traffic; and a
//! second instance given the same pid file is refused without touching it.
mod common;
use common::*;

use std::time::Duration;

fn site(tag: &str, body: &[u8]) -> TempDir {
    let d = TempDir::new(tag);
    d.write("who.txt", body);
    d
}

/// Runs a second instance that must be refused: (its stderr's lines).
#[track_caller]
fn refused(args: &[&str]) -> Vec<String> {
    let (st, out, err) = run_binary(args, Duration::from_secs(20));
    assert_eq!(
        st.code(),
        Some(1),
        "{args:?}: stdout {out:?} stderr {err:?}"
    );
    assert!(
        !out.contains("listening on"),
        "{args:?}: a refused instance printed {out:?}"
    );
    let lines: Vec<String> = err
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 1, "{args:?}: one line expected, got {err:?}");
    lines
}

/// Waits until none of `old` is among the master's workers and `n` workers run: a reload's
/// overlap of old and new workers is over. (Requests are checked after it: this file tests which
/// sockets serve an address, not the overlap itself, which tests/signals.rs covers.)
#[track_caller]
fn wait_replaced(srv: &Server, old: &[i32], n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = srv.worker_pids();
        if now.len() == n && !now.iter().any(|p| old.contains(p)) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "old workers {old:?} still there: {now:?}\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every request on `addr` is answered by the instance serving `body`.
#[track_caller]
fn all_answered_by(addr: std::net::SocketAddr, body: &[u8]) {
    for i in 0..12 {
        let r = get(addr, "/who.txt");
        assert_eq!(r.status, 200, "request {i}: {}", r.describe());
        assert_eq!(r.body, body, "request {i} answered by another instance");
    }
}

#[test]
fn a_second_instance_on_a_served_address_is_refused() {
    let (one, two) = (site("inst1", b"first\n"), site("inst2", b"second\n"));
    let first = Server::start(one.path(), &[]);
    let addr = first.addr.to_string();
    let lines = refused(&[
        "--listen",
        &addr,
        "--workers",
        "2",
        two.path().to_str().unwrap(),
    ]);
    assert!(
        lines[0].contains(&addr) && lines[0].contains("already in use"),
        "the line must name the address: {lines:?}"
    );
    // Also when it asks for the wildcard address of the same port.
    let wild = format!("0.0.0.0:{}", first.addr.port());
    let lines = refused(&[
        "--listen",
        &wild,
        "--workers",
        "1",
        two.path().to_str().unwrap(),
    ]);
    assert!(lines[0].contains(&wild), "{lines:?}");
    // Nothing was split: the first instance answers everything.
    all_answered_by(first.addr, b"first\n");
    // Once the first one is gone, the address is free again.
    drop(first);
    let again = Server::spawn(
        &[
            "--listen".into(),
            addr.clone(),
            "--workers".into(),
            "2".into(),
            two.path().to_str().unwrap().into(),
        ],
        1,
    );
    all_answered_by(again.addr, b"second\n");
}

#[test]
fn an_address_another_program_listens_on_is_refused() {
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = other.local_addr().unwrap().to_string();
    let d = site("instother", b"x\n");
    let lines = refused(&[
        "--listen",
        &addr,
        "--workers",
        "1",
        d.path().to_str().unwrap(),
    ]);
    assert!(lines[0].contains(&addr), "{lines:?}");
    // The other program's socket still gets the connections.
    let _c = connect(other.local_addr().unwrap());
    other.set_nonblocking(false).unwrap();
    assert!(other.accept().is_ok());
}

#[test]
fn a_second_instance_with_the_same_pid_file_is_refused() {
    let d = TempDir::new("instpid");
    let (one, two) = (site("instpid1", b"first\n"), site("instpid2", b"second\n"));
    let pf = d.join("ringstatic.pid");
    let pfs = pf.to_str().unwrap();
    let first = Server::start(one.path(), &["--pid-file", pfs]);
    let pid_before = std::fs::read_to_string(&pf).unwrap();
    assert_eq!(pid_before.trim(), first.pid.to_string());
    let lines = refused(&[
        "--listen",
        "127.0.0.1:0",
        "--workers",
        "1",
        "--pid-file",
        pfs,
        two.path().to_str().unwrap(),
    ]);
    assert!(
        lines[0].contains(pfs) && lines[0].contains(&first.pid.to_string()),
        "the line must name the pid file and its owner: {lines:?}"
    );
    assert_eq!(std::fs::read_to_string(&pf).unwrap(), pid_before);
    // -s stop still reaches the first instance.
    let (st, _, err) = run_binary(&["-s", "stop", "--pid-file", pfs], Duration::from_secs(20));
    assert!(st.success(), "{err}");
    assert!(wait_gone(first.pid, Duration::from_secs(10)));
    assert!(!pf.exists(), "the pid file is removed at exit");
}

#[test]
fn a_reload_adding_a_served_address_fails_and_keeps_serving() {
    let d = TempDir::new("instreload");
    let www = site("instreloadwww", b"mine\n");
    let (pf, conf) = (d.join("rs.pid"), d.join("rs.conf"));
    let port = free_port();
    std::fs::write(&conf, format!("listen 127.0.0.1:{port}\nworkers 2\n")).unwrap();
    let srv = Server::spawn(
        &[
            "--config".into(),
            conf.to_str().unwrap().into(),
            "--pid-file".into(),
            pf.to_str().unwrap().into(),
            www.path().to_str().unwrap().into(),
        ],
        1,
    );
    let first = srv.wait_workers(2, Duration::from_secs(10));
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = other.local_addr().unwrap();
    std::fs::write(
        &conf,
        format!("listen 127.0.0.1:{port}\nlisten {busy}\nworkers 2\n"),
    )
    .unwrap();
    let (st, _, err) = run_binary(
        &["-s", "reload", "--pid-file", pf.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert_ne!(st.code(), Some(0), "the reload must be refused: {err}");
    assert!(
        srv.log().contains(&busy.to_string()),
        "the server must say which address: {}",
        srv.log()
    );
    // The address it had is still served, by its own workers only.
    all_answered_by(srv.addr, b"mine\n");
    // And a later reload without the busy address works.
    std::fs::write(&conf, format!("listen 127.0.0.1:{port}\nworkers 2\n")).unwrap();
    let (st, _, err) = run_binary(
        &["-s", "reload", "--pid-file", pf.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert_eq!(st.code(), Some(0), "{err}\n{}", srv.log());
    wait_replaced(&srv, &first, 2);
    all_answered_by(srv.addr, b"mine\n");
}

#[test]
fn a_reload_that_brings_back_an_address_still_draining_serves_it_again() {
    let d = TempDir::new("instback");
    let www = site("instbackwww", b"back\n");
    std::fs::write(www.join("big.bin"), pattern_bytes(24 << 20, 5)).unwrap();
    let (pf, conf) = (d.join("rs.pid"), d.join("rs.conf"));
    let (pa, pb) = (free_port(), free_port());
    let both =
        format!("listen 127.0.0.1:{pa}\nlisten 127.0.0.1:{pb}\nworkers 1\nshutdown-timeout 30\n");
    std::fs::write(&conf, &both).unwrap();
    let srv = Server::spawn(
        &[
            "--config".into(),
            conf.to_str().unwrap().into(),
            "--pid-file".into(),
            pf.to_str().unwrap().into(),
            www.path().to_str().unwrap().into(),
        ],
        2,
    );
    let gen0 = srv.wait_workers(1, Duration::from_secs(10));
    let b: std::net::SocketAddr = format!("127.0.0.1:{pb}").parse().unwrap();
    // A download nobody reads keeps the first worker draining after the next reload.
    let mut stuck = Conn::open(b);
    stuck.send(&get_req("/big.bin", &[]));
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut stuck.stream, &mut first).unwrap();
    assert!(first.starts_with(b"HTTP/1.1 200"));
    let reload = || {
        run_binary(
            &["-s", "reload", "--pid-file", pf.to_str().unwrap()],
            Duration::from_secs(30),
        )
    };
    std::fs::write(
        &conf,
        format!("listen 127.0.0.1:{pa}\nworkers 1\nshutdown-timeout 30\n"),
    )
    .unwrap();
    let (st, _, err) = reload();
    assert_eq!(st.code(), Some(0), "{err}\n{}", srv.log());
    // B comes back while its old worker still drains: its own sockets serve it again.
    std::fs::write(&conf, &both).unwrap();
    let (st, _, err) = reload();
    assert_eq!(st.code(), Some(0), "{err}\n{}", srv.log());
    drop(stuck);
    wait_replaced(&srv, &gen0, 1);
    all_answered_by(b, b"back\n");
}
