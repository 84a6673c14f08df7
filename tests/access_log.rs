//! The access log tells the truth: a line is written when its response ends, with the body
//! bytes that actually left (nginx's `$body_bytes_sent`), whether the client read everything or
//! went away; pipelined responses keep their order; `--access-log-format json` writes one valid
//! JSON object per line whatever bytes a client sends.
mod common;
use common::*;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BIG: usize = 24 << 20;

/// Waits (10 s at most) until the log holds `n` lines; returns them.
#[track_caller]
fn lines(path: &Path, n: usize, srv: &Server) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read(path).unwrap_or_default();
        let l: Vec<String> = String::from_utf8_lossy(&text)
            .lines()
            .map(str::to_string)
            .collect();
        if l.len() >= n {
            assert_eq!(l.len(), n, "more lines than responses: {l:#?}");
            return l;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} log lines, have {l:#?}\nserver: {}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The combined line's status and body bytes.
fn status_and_bytes(line: &str) -> (u16, u64) {
    // ... "GET /x HTTP/1.1" 200 1234 "-" "-"
    let after = &line[line.find("\" ").expect("request quoted") + 2..];
    let mut f = after.split(' ');
    (
        f.next().unwrap().parse().unwrap(),
        f.next().unwrap().parse().unwrap(),
    )
}

/// A client with a small, fixed receive buffer, so the server cannot push much more than the
/// client reads before the client leaves.
fn small_window_client(addr: SocketAddr) -> TcpStream {
    // SAFETY: a plain socket; wrapped in a TcpStream below (or closed on failure).
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0);
    let size: libc::c_int = 64 * 1024;
    // SAFETY: a c_int option of the stated size on our socket.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    // SAFETY: fd is a fresh socket we own; TcpStream takes it over.
    let s = unsafe { TcpStream::from_raw_fd(fd) };
    let SocketAddr::V4(a) = addr else {
        panic!("IPv4 expected")
    };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a.ip().octets()),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: connecting our socket to an initialised sockaddr_in of the stated size.
    let r = unsafe {
        libc::connect(
            fd,
            &sin as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "connect: {}", std::io::Error::last_os_error());
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

#[test]
fn a_client_that_leaves_early_is_logged_with_what_it_got() {
    let d = TempDir::new("alogleave");
    d.write("www/big.bin", &pattern_bytes(BIG, 3));
    let log = d.join("access.log");
    let s = Server::start(&d.join("www"), &["--access-log", log.to_str().unwrap()]);
    let mut c = small_window_client(s.addr);
    c.write_all(&get_req("/big.bin", &[])).unwrap();
    let mut got = 0usize;
    let mut buf = vec![0u8; 16 * 1024];
    let mut head_len = None;
    let mut head = Vec::new();
    while got < 200 * 1024 {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed early");
        if head_len.is_none() {
            head.extend_from_slice(&buf[..n]);
            head_len = head
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|p| p + 4);
        }
        got += n;
    }
    drop(c); // unread bytes: the kernel answers with a reset
    let l = lines(&log, 1, &s);
    eprintln!("the client read {got} bytes; logged: {}", l[0]);
    let (status, bytes) = status_and_bytes(&l[0]);
    assert_eq!(status, 200, "{}", l[0]);
    let read_body = (got - head_len.expect("head read")) as u64;
    assert!(
        bytes >= read_body,
        "logged {bytes} body bytes, the client read {read_body}: {}",
        l[0]
    );
    assert!(
        bytes < (BIG / 2) as u64,
        "logged {bytes} of a {BIG}-byte file the client left after 200 KB: {}",
        l[0]
    );
}

#[test]
fn complete_responses_log_their_body_sizes_in_order() {
    let d = TempDir::new("alogfull");
    d.write("www/small.txt", b"hello\n");
    let big = pattern_bytes(300_000, 9);
    d.write("www/big.bin", &big);
    let log = d.join("access.log");
    let s = Server::start(&d.join("www"), &["--access-log", log.to_str().unwrap()]);
    let mut c = Conn::open(s.addr);
    // Pipelined: a large body, a small one, a HEAD, a 404.
    let mut all = build_req("GET", "/big.bin", &[], false);
    all.extend(build_req("GET", "/small.txt", &[], false));
    all.extend(build_req("HEAD", "/big.bin", &[], false));
    all.extend(build_req("GET", "/missing", &[], false));
    c.send(&all);
    let r1 = c.read_response(false);
    assert_eq!(r1.body.len(), big.len());
    let r2 = c.read_response(false);
    assert_eq!(r2.body, b"hello\n");
    let r3 = c.read_response(true);
    assert_eq!(r3.status, 200);
    let r4 = c.read_response(false);
    assert_eq!(r4.status, 404);
    // A 304.
    let etag = r2.must_header("etag").to_string();
    c.send(&build_req(
        "GET",
        "/small.txt",
        &[&format!("If-None-Match: {etag}")],
        false,
    ));
    assert_eq!(c.read_response(false).status, 304);
    let l = lines(&log, 5, &s);
    let got: Vec<(String, u16, u64)> = l
        .iter()
        .map(|x| {
            let req = x.split('"').nth(1).unwrap().to_string();
            let (st, b) = status_and_bytes(x);
            (req, st, b)
        })
        .collect();
    assert_eq!(
        got,
        [
            ("GET /big.bin HTTP/1.1".to_string(), 200, big.len() as u64),
            ("GET /small.txt HTTP/1.1".to_string(), 200, 6),
            ("HEAD /big.bin HTTP/1.1".to_string(), 200, 0),
            (
                "GET /missing HTTP/1.1".to_string(),
                404,
                r4.body.len() as u64
            ),
            ("GET /small.txt HTTP/1.1".to_string(), 304, 0),
        ]
    );
    assert!(l[0].starts_with("127.0.0.1 - - ["), "{}", l[0]);
}

/// Each line of `path` parsed by Python's json module (strict: no raw control characters, valid
/// UTF-8), written back with sorted keys and ASCII escapes; None (and a loud skip) without python3.
fn parsed_by_python(path: &Path) -> Option<Vec<String>> {
    let script = "import json,sys\n\
        for raw in open(sys.argv[1], 'rb'):\n\
        \x20   print(json.dumps(json.loads(raw), sort_keys=True, ensure_ascii=True))\n";
    let out = run(
        Command::new("python3").arg("-c").arg(script).arg(path),
        Duration::from_secs(20),
    );
    if out.status.is_none() && out.stderr.contains("cannot run") {
        eprintln!("skipped: python3 is not installed, JSON lines not checked with a parser");
        return None;
    }
    assert!(
        out.ok(),
        "python's json rejects the log: {}",
        out.describe()
    );
    Some(out.stdout.lines().map(str::to_string).collect())
}

#[test]
fn json_lines_are_valid_json_whatever_the_client_sends() {
    let d = TempDir::new("alogjson");
    d.write("www/a.txt", b"abc\n");
    let log = d.join("access.json");
    let s = Server::start(
        &d.join("www"),
        &[
            "--access-log",
            log.to_str().unwrap(),
            "--access-log-format",
            "json",
        ],
    );
    // A user agent with a quote, a backslash, a tab, invalid UTF-8 and valid UTF-8.
    let mut req = b"GET /a.txt HTTP/1.1\r\nHost: x\r\nReferer: http://r/\"q\"\r\nUser-Agent: a\"b\\c\td\xff\xc3(\xc3\xa9\r\n\r\n".to_vec();
    let r = request(s.addr, &req);
    assert_eq!(r.status, 200, "{}", r.describe());
    // A request line with a control byte and a quote: refused, and logged as sent.
    req = b"GET /\x01\"\\ HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    let raw = request_raw_until_close(s.addr, &req);
    assert!(
        raw.starts_with(b"HTTP/1.1 400"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    let text = lines(&log, 2, &s);
    for l in &text {
        assert!(l.starts_with("{\"time\":\"") && l.ends_with('}'), "{l}");
    }
    let Some(parsed) = parsed_by_python(&log) else {
        return;
    };
    assert_eq!(parsed.len(), 2);
    // Two connections, maybe two workers: either line may come first.
    let (first, second) = if parsed[0].contains(r#""status": 200"#) {
        (&parsed[0], &parsed[1])
    } else {
        (&parsed[1], &parsed[0])
    };
    for want in [
        r#""body_bytes_sent": 4"#,
        r#""status": 200"#,
        r#""remote_addr": "127.0.0.1""#,
        r#""request": "GET /a.txt HTTP/1.1""#,
        r#""referer": "http://r/\"q\"""#,
        r#""user_agent": "a\"b\\c\td\u00ff\u00c3(\u00e9""#,
    ] {
        assert!(first.contains(want), "{want} not in {first}");
    }
    assert!(first.contains(r#""request_time": "#), "{first}");
    assert!(first.contains(r#""time": "20"#), "{first}");
    for want in [
        r#""status": 400"#,
        r#""request": "GET /\u0001\"\\ HTTP/1.1""#,
        r#""user_agent": null"#,
        r#""referer": null"#,
    ] {
        assert!(second.contains(want), "{want} not in {second}");
    }
}

#[test]
fn a_bad_log_format_is_refused_naming_the_option() {
    let d = TempDir::new("alogbad");
    let (st, _, err) = run_binary(
        &["--access-log-format", "yaml", d.path().to_str().unwrap()],
        Duration::from_secs(10),
    );
    assert_eq!(st.code(), Some(2), "{err}");
    assert!(err.contains("--access-log-format"), "{err}");
}
