//! The systemd side without systemd: the sd_notify protocol read from a Unix datagram socket of
//! our own (READY, FDSTORE with fds, WATCHDOG, RELOADING, STOPPING), and socket activation through
//! `systemd-socket-activate`.
mod common;
use common::*;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One passed fd, inspected on arrival and then closed.
#[derive(Debug, Clone)]
struct FdInfo {
    listening: bool,
    stream: bool,
    port: Option<u16>,
}

#[derive(Debug, Clone)]
struct Msg {
    at: Instant,
    text: String,
    fds: Vec<FdInfo>,
}

impl Msg {
    fn has_line(&self, l: &str) -> bool {
        self.text.lines().any(|x| x == l)
    }
    fn value(&self, key: &str) -> Option<&str> {
        self.text
            .lines()
            .find_map(|x| x.strip_prefix(key)?.strip_prefix('='))
    }
}

/// A notify socket of our own, read by a thread that records every datagram.
struct NotifySocket {
    msgs: Arc<Mutex<Vec<Msg>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn sockopt_int(fd: RawFd, opt: i32) -> Option<i32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `v`, a live c_int of that size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            &mut v as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    (r == 0).then_some(v)
}

fn inspect(fd: &OwnedFd) -> FdInfo {
    let raw = fd.as_raw_fd();
    // SAFETY: sockaddr_storage is plain integers, for which all-zero bytes are a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getsockname writes at most `len` bytes into `ss`, which fits any socket address.
    let port =
        if unsafe { libc::getsockname(raw, &mut ss as *mut _ as *mut libc::sockaddr, &mut len) }
            == 0
            && ss.ss_family as i32 == libc::AF_INET
        {
            // SAFETY: the kernel wrote a sockaddr_in (AF_INET): smaller, no more aligned than `ss`.
            let sin = unsafe { *(&ss as *const _ as *const libc::sockaddr_in) };
            Some(u16::from_be(sin.sin_port))
        } else {
            None
        };
    FdInfo {
        listening: sockopt_int(raw, libc::SO_ACCEPTCONN) == Some(1),
        stream: sockopt_int(raw, libc::SO_TYPE) == Some(libc::SOCK_STREAM),
        port,
    }
}

/// recvmsg with room for fds (SCM_RIGHTS), close-on-exec so no other test's child inherits them.
fn recv_with_fds(sock: &UnixDatagram) -> std::io::Result<(String, Vec<OwnedFd>)> {
    let mut buf = vec![0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let mut cbuf = [0u64; 64];
    // SAFETY: msghdr is integers and raw pointers, for which all-zero (null) is a valid value.
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    mh.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: `mh` points at `iov` (into `buf`) and `cbuf`, both alive, with their true lengths.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut mh, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut fds = Vec::new();
    // SAFETY: the CMSG_* walk stays in what recvmsg filled; SCM_RIGHTS fds are new, ours alone.
    unsafe {
        let mut cm = libc::CMSG_FIRSTHDR(&mh);
        while !cm.is_null() {
            if (*cm).cmsg_level == libc::SOL_SOCKET && (*cm).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cm) as *const RawFd;
                let count = ((*cm).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cm = libc::CMSG_NXTHDR(&mh, cm);
        }
    }
    assert_eq!(mh.msg_flags & libc::MSG_CTRUNC, 0, "control data truncated");
    Ok((
        String::from_utf8_lossy(&buf[..n as usize]).into_owned(),
        fds,
    ))
}

impl NotifySocket {
    fn new(sock: UnixDatagram) -> NotifySocket {
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let msgs = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, st) = (msgs.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(60);
            while !st.load(Ordering::SeqCst) && Instant::now() < end {
                match recv_with_fds(&sock) {
                    Ok((text, fds)) => {
                        let at = Instant::now();
                        let fds = fds.iter().map(inspect).collect();
                        m.lock().unwrap().push(Msg { at, text, fds });
                    }
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => panic!("recvmsg on the notify socket: {}", e),
                }
            }
        });
        NotifySocket {
            msgs,
            stop,
            thread: Some(thread),
        }
    }

    fn all(&self) -> Vec<Msg> {
        self.msgs.lock().unwrap().clone()
    }

    fn len(&self) -> usize {
        self.msgs.lock().unwrap().len()
    }

    /// The first message at index >= `from` matching `pred`, waiting up to `timeout`.
    fn wait(
        &self,
        from: usize,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Msg) -> bool,
    ) -> (usize, Msg) {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let m = self.msgs.lock().unwrap();
                if let Some(i) = (from..m.len()).find(|&i| pred(&m[i])) {
                    return (i, m[i].clone());
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "no {} notification within {:?}; got {:#?}",
                    what,
                    timeout,
                    self.all()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn site(tag: &str) -> TempDir {
    let d = TempDir::new(tag);
    d.write("www/a.txt", b"hello notify\n");
    d
}

fn args(root: &std::path::Path) -> Vec<String> {
    vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--workers".into(),
        "2".into(),
        root.to_str().unwrap().into(),
    ]
}

fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`, a live local of that type.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// A GET on a fresh connection that must be answered within `within` (not merely queued).
fn quick_get(addr: std::net::SocketAddr, within: Duration) -> Result<Response, String> {
    let mut c = Conn::open(addr);
    c.stream.set_read_timeout(Some(within)).unwrap();
    c.send(&get_req("/a.txt", &[]));
    c.try_read_response(false)
}

#[test]
fn notify_protocol() {
    let d = site("notify");
    let path = d.join("notify.sock");
    let ns = NotifySocket::new(UnixDatagram::bind(&path).expect("bind notify socket"));
    let mut srv = Server::spawn_env(
        &args(&d.join("www")),
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", "2000000"),
        ],
        &["WATCHDOG_PID", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"],
        1,
    );

    // READY=1 once every worker accepts: right after it, fresh connections are answered at once.
    let (ready_i, ready) = ns.wait(0, Duration::from_secs(15), "READY=1", |m| {
        m.has_line("READY=1")
    });
    for i in 0..8 {
        let r = quick_get(srv.addr, Duration::from_secs(3))
            .unwrap_or_else(|e| panic!("GET {} right after READY=1: {}\n{}", i, e, srv.log()));
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello notify\n");
    }
    assert!(
        ready.value("STATUS").is_some_and(|s| !s.is_empty()),
        "READY without STATUS=: {:?}",
        ready.text
    );
    assert_eq!(
        ready.value("MAINPID"),
        Some(srv.pid.to_string().as_str()),
        "READY: {:?}",
        ready.text
    );
    let before_ready = &ns.all()[..ready_i];
    assert!(
        !before_ready.iter().any(|m| m.has_line("READY=1")),
        "more than one READY=1 at start"
    );

    // FDSTORE=1 for each listening socket, each with the socket attached.
    let deadline = Instant::now() + Duration::from_secs(5);
    let stores = loop {
        let s: Vec<Msg> = ns
            .all()
            .into_iter()
            .filter(|m| m.has_line("FDSTORE=1"))
            .collect();
        if s.len() >= 2 || Instant::now() >= deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut names: Vec<String> = stores
        .iter()
        .filter_map(|m| m.value("FDNAME").map(str::to_string))
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "rs.listen.127.0.0.1_0.0".to_string(),
            "rs.listen.127.0.0.1_0.1".to_string()
        ],
        "FDSTORE messages: {:#?}",
        stores
    );
    for m in &stores {
        assert_eq!(m.fds.len(), 1, "FDSTORE without exactly one fd: {:?}", m);
        let f = &m.fds[0];
        assert!(
            f.listening && f.stream,
            "stored fd is not a listening TCP socket: {:?}",
            m
        );
        assert_eq!(
            f.port,
            Some(srv.addr.port()),
            "stored fd on another port: {:?}",
            m
        );
    }
    assert!(
        ns.all()
            .iter()
            .filter(|m| !m.fds.is_empty())
            .all(|m| m.has_line("FDSTORE=1")),
        "fds attached to a message that is not FDSTORE=1"
    );

    // WATCHDOG=1 at half of WATCHDOG_USEC (2 s): within ~2 s, then about every second.
    let start = ns.all()[0].at;
    let (w1_i, w1) = ns.wait(0, Duration::from_secs(4), "WATCHDOG=1", |m| {
        m.has_line("WATCHDOG=1")
    });
    assert!(
        w1.at.duration_since(start) <= Duration::from_millis(2500),
        "first WATCHDOG=1 only {:?} after the first notification",
        w1.at.duration_since(start)
    );
    let (_, w2) = ns.wait(
        w1_i + 1,
        Duration::from_secs(4),
        "a second WATCHDOG=1",
        |m| m.has_line("WATCHDOG=1"),
    );
    let gap = w2.at.duration_since(w1.at);
    assert!(
        gap >= Duration::from_millis(400) && gap <= Duration::from_millis(1900),
        "WATCHDOG=1 pings {:?} apart with WATCHDOG_USEC=2000000 (expected about 1 s)",
        gap
    );

    // SIGHUP: RELOADING=1 with MONOTONIC_USEC=, then READY=1.
    let from = ns.len();
    let t_before = monotonic_usec();
    srv.signal(libc::SIGHUP);
    let (rel_i, rel) = ns.wait(from, Duration::from_secs(5), "RELOADING=1", |m| {
        m.has_line("RELOADING=1")
    });
    let t_after = monotonic_usec();
    let mono: u64 = rel
        .value("MONOTONIC_USEC")
        .unwrap_or_else(|| panic!("RELOADING=1 without MONOTONIC_USEC=: {:?}", rel.text))
        .parse()
        .unwrap_or_else(|_| panic!("MONOTONIC_USEC not a number: {:?}", rel.text));
    assert!(
        mono >= t_before && mono <= t_after,
        "MONOTONIC_USEC={} is not CLOCK_MONOTONIC at the reload ({}..{})",
        mono,
        t_before,
        t_after
    );
    ns.wait(
        rel_i + 1,
        Duration::from_secs(15),
        "READY=1 after RELOADING=1",
        |m| m.has_line("READY=1"),
    );
    let r = quick_get(srv.addr, Duration::from_secs(3))
        .unwrap_or_else(|e| panic!("GET after reload: {}", e));
    assert_eq!(r.status, 200);

    // SIGTERM: STOPPING=1, exit 0.
    let from = ns.len();
    srv.signal(libc::SIGTERM);
    ns.wait(from, Duration::from_secs(5), "STOPPING=1", |m| {
        m.has_line("STOPPING=1")
    });
    let st = srv
        .wait_exit(Duration::from_secs(15))
        .expect("no exit after SIGTERM");
    assert_eq!(st.code(), Some(0), "{}", srv.log());
}

#[test]
fn notify_abstract_socket() {
    use std::os::linux::net::SocketAddrExt;
    let d = site("notify-abstract");
    let name = format!(
        "ringstatic-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let ns =
        NotifySocket::new(UnixDatagram::bind_addr(&addr).expect("bind abstract notify socket"));
    let env_val = format!("@{}", name);
    let mut srv = Server::spawn_env(
        &args(&d.join("www")),
        &[("NOTIFY_SOCKET", env_val.as_str())],
        &[
            "WATCHDOG_USEC",
            "WATCHDOG_PID",
            "LISTEN_PID",
            "LISTEN_FDS",
            "LISTEN_FDNAMES",
        ],
        1,
    );
    let (_, ready) = ns.wait(0, Duration::from_secs(15), "READY=1", |m| {
        m.has_line("READY=1")
    });
    assert_eq!(ready.value("MAINPID"), Some(srv.pid.to_string().as_str()));
    let r = quick_get(srv.addr, Duration::from_secs(3))
        .unwrap_or_else(|e| panic!("GET after READY: {}", e));
    assert_eq!(r.status, 200);
    let from = ns.len();
    srv.signal(libc::SIGTERM);
    ns.wait(from, Duration::from_secs(5), "STOPPING=1", |m| {
        m.has_line("STOPPING=1")
    });
    let st = srv
        .wait_exit(Duration::from_secs(15))
        .expect("no exit after SIGTERM");
    assert_eq!(st.code(), Some(0));
    // No watchdog was asked for, so none is sent.
    assert!(
        !ns.all().iter().any(|m| m.has_line("WATCHDOG=1")),
        "WATCHDOG=1 without WATCHDOG_USEC"
    );
}

#[test]
fn socket_activation_with_systemd_socket_activate() {
    let tool = [
        "/usr/bin/systemd-socket-activate",
        "/lib/systemd/systemd-socket-activate",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists());
    let Some(tool) = tool else {
        println!("skipped: systemd-socket-activate not found (Debian package systemd)");
        return;
    };
    let d = site("activate");
    let port = free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", port).parse().unwrap();
    let mut cmd = std::process::Command::new(tool);
    cmd.args(["-l", &addr.to_string(), "--fdname=http", BIN])
        // --listen is ignored when sockets are passed.
        .args([
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "2",
            d.join("www").to_str().unwrap(),
        ])
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_FDNAMES");

    // systemd-socket-activate execs the server only when a first connection arrives: make one
    // (retrying until the tool listens) while waiting for the listening line.
    let first = std::thread::spawn(move || -> Result<Vec<u8>, String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    let mut c = Conn {
                        stream: s,
                        buf: Vec::new(),
                        eof: false,
                    };
                    c.try_send(&get_req("/a.txt", &[]))
                        .map_err(|e| e.to_string())?;
                    if c.read_until_close(Duration::from_secs(10)) == End::Timeout {
                        return Err(format!(
                            "no close; got {:?}",
                            String::from_utf8_lossy(&c.buf)
                        ));
                    }
                    return Ok(c.buf);
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("connect {}: {}", addr, e))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    let mut srv = Server::spawn_command(cmd, &format!("{} -l {} ... ringstatic", tool, addr), 1);
    let bytes = first
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("first request: {}\n{}", e, srv.log()));
    match parse_response(&bytes, false, true) {
        Ok(Parsed::Done(r, _)) => {
            assert_eq!(r.status, 200, "{}", r.describe());
            assert_eq!(r.body, b"hello notify\n");
        }
        _ => panic!("bad first response {:?}", String::from_utf8_lossy(&bytes)),
    }
    assert_eq!(
        srv.addr,
        addr,
        "listening line does not show the activated address\n{}",
        srv.log()
    );
    for i in 0..8 {
        let r = get(addr, "/a.txt");
        assert_eq!(r.status, 200, "request {}: {}", i, r.describe());
    }
    assert!(
        srv.log()
            .contains("serving sockets passed by systemd (http)"),
        "no note about the passed socket:\n{}",
        srv.log()
    );
    let listening = srv.listening.lock().unwrap().clone();
    assert_eq!(
        listening,
        vec![addr],
        "--listen 127.0.0.1:0 was not ignored\n{}",
        srv.log()
    );
    srv.signal(libc::SIGTERM);
    let st = srv
        .wait_exit(Duration::from_secs(15))
        .expect("no exit after SIGTERM");
    assert_eq!(st.code(), Some(0), "{}", srv.log());
}

#[test]
fn notify_says_draining_during_a_drain_delay() {
    let d = site("notify-drain");
    let path = d.join("notify.sock");
    let ns = NotifySocket::new(UnixDatagram::bind(&path).expect("bind notify socket"));
    let mut a = args(&d.join("www"));
    a.splice(0..0, ["--drain-delay".to_string(), "3".to_string()]);
    let mut srv = Server::spawn_env(
        &a,
        &[("NOTIFY_SOCKET", path.to_str().unwrap())],
        &[
            "WATCHDOG_USEC",
            "WATCHDOG_PID",
            "LISTEN_PID",
            "LISTEN_FDS",
            "LISTEN_FDNAMES",
        ],
        1,
    );
    ns.wait(0, Duration::from_secs(15), "READY=1", |m| {
        m.has_line("READY=1")
    });
    let from = ns.len();
    srv.signal(libc::SIGTERM);
    let (i, drain) = ns.wait(from, Duration::from_secs(5), "STOPPING=1", |m| {
        m.has_line("STOPPING=1")
    });
    let status = drain.value("STATUS").unwrap_or_default().to_string();
    assert!(status.starts_with("draining: not ready"), "{status:?}");
    // Served during the delay, then the graceful stop says so too.
    assert_eq!(
        quick_get(srv.addr, Duration::from_secs(3)).map(|r| r.status),
        Ok(200)
    );
    ns.wait(
        i + 1,
        Duration::from_secs(10),
        "the graceful stop's STATUS",
        |m| {
            m.value("STATUS")
                .is_some_and(|s| s.starts_with("stopping: finishing responses"))
        },
    );
    let st = srv
        .wait_exit(Duration::from_secs(15))
        .expect("no exit after the delay");
    assert_eq!(st.code(), Some(0), "{}", srv.log());
}
