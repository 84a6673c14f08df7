//! Shared harness for the ringstatic integration tests.
//!
//! Everything here talks to the real binary over real 127.0.0.1 sockets and
//! real files in temporary directories. Only std and libc are used.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const BIN: &str = env!("CARGO_BIN_EXE_ringstatic");

/// Default I/O timeout on every test socket: nothing may hang forever.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Temporary directories
// ---------------------------------------------------------------------------

static TMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A uniquely named directory under `std::env::temp_dir()`, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let n = TMP_COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!(
            "ringstatic-test-{}-{}-{}-{}",
            tag,
            std::process::id(),
            n,
            nanos
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join<P: AsRef<Path>>(&self, p: P) -> PathBuf {
        self.path.join(p)
    }

    /// Write `content` to `rel` (parent directories are created).
    pub fn write<P: AsRef<Path>>(&self, rel: P, content: &[u8]) -> PathBuf {
        let p = self.path.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent dirs");
        }
        std::fs::write(&p, content).expect("write test file");
        p
    }

    pub fn mkdir<P: AsRef<Path>>(&self, rel: P) -> PathBuf {
        let p = self.path.join(rel);
        std::fs::create_dir_all(&p).expect("mkdir");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Restore permissions that a test may have removed, then delete.
        fn fix_perms(p: &Path) {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(md) = std::fs::symlink_metadata(p) {
                if md.file_type().is_symlink() {
                    return;
                }
                let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755));
                if md.is_dir() {
                    if let Ok(rd) = std::fs::read_dir(p) {
                        for e in rd.flatten() {
                            fix_perms(&e.path());
                        }
                    }
                }
            }
        }
        fix_perms(&self.path);
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------
// Deterministic data
// ---------------------------------------------------------------------------

/// Deterministic pseudo-random bytes (xorshift64*), different per seed.
pub fn pattern_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut x: u64 = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Compare two byte strings without dumping megabytes on failure.
#[track_caller]
pub fn assert_bytes_eq(got: &[u8], expected: &[u8], what: &str) {
    if got == expected {
        return;
    }
    let first = got
        .iter()
        .zip(expected.iter())
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(expected.len()));
    let show = |b: &[u8]| {
        let end = (first + 32).min(b.len());
        let start = first.min(end);
        format!("{:?}", String::from_utf8_lossy(&b[start..end]))
    };
    panic!(
        "{}: bytes differ: got {} bytes, expected {} bytes, first difference at offset {} (got {} / expected {})",
        what,
        got.len(),
        expected.len(),
        first,
        show(got),
        show(expected)
    );
}

// ---------------------------------------------------------------------------
// Server process
// ---------------------------------------------------------------------------

pub struct Server {
    child: Option<Child>,
    pub pid: i32,
    /// First address the server reported as listening.
    pub addr: SocketAddr,
    /// Every `listening on http://...` address seen so far.
    pub listening: Arc<Mutex<Vec<SocketAddr>>>,
    /// Combined stdout/stderr of the server, for failure diagnostics.
    pub log: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
}

fn parse_listening_line(line: &str) -> Option<SocketAddr> {
    let idx = line.find("listening on http://")?;
    let rest = &line[idx + "listening on http://".len()..];
    let rest = rest.trim().trim_end_matches('/');
    rest.parse().ok()
}

impl Server {
    /// Start `ringstatic --listen 127.0.0.1:0 --workers 2 [$RINGSTATIC_TEST_ARGS] [extra] ROOT`.
    /// RINGSTATIC_TEST_ARGS runs the same suite under another setting, e.g.
    /// `RINGSTATIC_TEST_ARGS='--large-body splice' cargo test` or `--inline-max 0`.
    pub fn start(root: &Path, extra: &[&str]) -> Server {
        let mut args: Vec<String> = vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--workers".into(),
            "2".into(),
        ];
        if let Ok(more) = std::env::var("RINGSTATIC_TEST_ARGS") {
            args.extend(more.split_whitespace().map(str::to_string));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(root.to_str().expect("utf-8 temp path").to_string());
        Server::spawn(&args, 1)
    }

    /// Spawn the binary with exactly `args`; wait until `n_listening`
    /// distinct `listening on` lines were printed (10 s at most).
    pub fn spawn(args: &[String], n_listening: usize) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        Server::spawn_command(cmd, &format!("{:?}", args), n_listening)
    }

    /// Like `spawn`, with extra environment variables set and others removed.
    pub fn spawn_env(
        args: &[String],
        env: &[(&str, &str)],
        env_remove: &[&str],
        n_listening: usize,
    ) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        for k in env_remove {
            cmd.env_remove(k);
        }
        Server::spawn_command(cmd, &format!("{:?} with env {:?}", args, env), n_listening)
    }

    /// Spawn an arbitrary prepared command (the binary itself, or a wrapper that execs it, such
    /// as systemd-socket-activate) with piped stdout/stderr; wait until `n_listening`
    /// `listening on` lines were printed (10 s at most). `args` only labels failure messages.
    pub fn spawn_command(mut cmd: Command, args: &str, n_listening: usize) -> Server {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ringstatic");
        let pid = child.id() as i32;
        let log = Arc::new(Mutex::new(String::new()));
        let stderr_buf = Arc::new(Mutex::new(String::new()));
        let listening = Arc::new(Mutex::new(Vec::new()));

        {
            let log = log.clone();
            let listening = listening.clone();
            on_each_line(child.stdout.take().unwrap(), move |s| {
                if let Some(a) = parse_listening_line(&s) {
                    listening.lock().unwrap().push(a);
                }
                log.lock().unwrap().push_str(&format!("[stdout] {}", s));
            });
        }
        {
            let log = log.clone();
            let stderr_buf = stderr_buf.clone();
            on_each_line(child.stderr.take().unwrap(), move |s| {
                stderr_buf.lock().unwrap().push_str(&s);
                log.lock().unwrap().push_str(&format!("[stderr] {}", s));
            });
        }

        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if listening.lock().unwrap().len() >= n_listening {
                break;
            }
            if let Ok(Some(st)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "ringstatic {} exited ({}) before listening; output:\n{}",
                    args,
                    st,
                    log.lock().unwrap()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "ringstatic {} printed no `listening on http://ADDR` line within 10 s; output:\n{}",
                    args,
                    log.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let addr = listening.lock().unwrap()[0];
        Server {
            child: Some(child),
            pid,
            addr,
            listening,
            log,
            stderr: stderr_buf,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn signal(&self, sig: i32) {
        if self.child.is_some() {
            unsafe {
                libc::kill(self.pid, sig);
            }
        }
    }

    /// Wait (bounded) for the master to exit; returns None on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            match child.try_wait() {
                Ok(Some(st)) => {
                    self.child = None;
                    return Some(st);
                }
                Ok(None) => {}
                Err(_) => return None,
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// PIDs of the master's child processes (the workers).
    pub fn worker_pids(&self) -> Vec<i32> {
        children_of(self.pid)
    }

    /// Wait (bounded) until the master has exactly `n` children.
    pub fn wait_workers(&self, n: usize, timeout: Duration) -> Vec<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            let w = self.worker_pids();
            if w.len() == n {
                return w;
            }
            if Instant::now() >= deadline {
                panic!(
                    "expected {} worker processes, have {:?}; server output:\n{}",
                    n,
                    w,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe {
                libc::kill(self.pid, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    _ => {
                        // Kill the whole family: workers first, then master.
                        for w in children_of(self.pid) {
                            unsafe {
                                libc::kill(w, libc::SIGKILL);
                            }
                        }
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        if std::thread::panicking() {
            eprintln!("---- ringstatic output ----\n{}---- end ----", self.log());
        }
    }
}

/// Child PIDs of `pid`, from /proc/<pid>/task/*/children.
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let tasks = match std::fs::read_dir(format!("/proc/{}/task", pid)) {
        Ok(t) => t,
        Err(_) => return out,
    };
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            for p in s.split_whitespace() {
                if let Ok(p) = p.parse::<i32>() {
                    // Ignore zombies (already dead, not yet reaped).
                    let state = std::fs::read_to_string(format!("/proc/{}/stat", p))
                        .ok()
                        .and_then(|st| {
                            st.rfind(')')
                                .map(|i| st[i + 1..].trim_start().chars().next().unwrap_or('?'))
                        });
                    if matches!(state, Some('Z') | Some('X') | None) {
                        continue;
                    }
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
            }
        }
    }
    out.sort();
    out
}

/// Run the binary to completion (bounded), returning (status, stdout, stderr).
pub fn run_binary(args: &[&str], timeout: Duration) -> (ExitStatus, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringstatic");
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t2 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() >= deadline {
            for w in children_of(child.id() as i32) {
                unsafe {
                    libc::kill(w, libc::SIGKILL);
                }
            }
            let _ = child.kill();
            let _ = child.wait();
            let out = String::from_utf8_lossy(&t1.join().unwrap()).to_string();
            let err = String::from_utf8_lossy(&t2.join().unwrap()).to_string();
            panic!(
                "ringstatic {:?} did not exit within {:?}\nstdout:\n{}\nstderr:\n{}",
                args, timeout, out, err
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = String::from_utf8_lossy(&t1.join().unwrap()).to_string();
    let err = String::from_utf8_lossy(&t2.join().unwrap()).to_string();
    (status, out, err)
}

// ---------------------------------------------------------------------------
// HTTP client side
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub version: String,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Length of the head (status line + headers + blank line) in bytes.
    pub head_len: usize,
}

impl Response {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[track_caller]
    pub fn must_header(&self, name: &str) -> &str {
        match self.header(name) {
            Some(v) => v,
            None => panic!("response has no `{}` header: {}", name, self.describe()),
        }
    }

    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("bad Content-Length {:?}", v))
        })
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    /// Short human-readable summary for assertion messages.
    pub fn describe(&self) -> String {
        let mut s = format!("{} {} {}\n", self.version, self.status, self.reason);
        for (k, v) in &self.headers {
            s.push_str(&format!("{}: {}\n", k, v));
        }
        let n = self.body.len().min(300);
        s.push_str(&format!(
            "[body {} bytes] {:?}",
            self.body.len(),
            String::from_utf8_lossy(&self.body[..n])
        ));
        s
    }
}

/// Outcome of trying to parse one response from a buffer.
pub enum Parsed {
    /// A complete response and the number of bytes it used.
    Done(Response, usize),
    /// More bytes are needed.
    Partial,
}

fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    // Returns (index of header block end, length of terminator).
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if i + 1 < buf.len() && buf[i + 1] == b'\n' {
                return Some((i, 2));
            }
            if i + 2 < buf.len() && buf[i + 1] == b'\r' && buf[i + 2] == b'\n' {
                return Some((i, 3));
            }
        }
        i += 1;
    }
    None
}

/// Parse one response from `buf`. `head_request`: the request was HEAD, so
/// no body follows whatever the headers say. `at_eof`: no more bytes will come
/// (a response without Content-Length then ends at EOF).
pub fn parse_response(buf: &[u8], head_request: bool, at_eof: bool) -> Result<Parsed, String> {
    let (end, term) = match find_head_end(buf) {
        Some(x) => x,
        None => return Ok(Parsed::Partial),
    };
    let head_len = end + term;
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| {
        format!(
            "response head is not UTF-8: {:?}",
            String::from_utf8_lossy(&buf[..end])
        )
    })?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("").to_string();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("bad status line {:?}", status_line));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {:?}", status_line))?;
    let reason = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    for l in lines {
        if l.is_empty() {
            continue;
        }
        let colon = l
            .find(':')
            .ok_or_else(|| format!("bad header line {:?}", l))?;
        headers.push((
            l[..colon].trim().to_string(),
            l[colon + 1..].trim().to_string(),
        ));
    }
    let mut resp = Response {
        status,
        version,
        reason,
        headers,
        body: Vec::new(),
        head_len,
    };
    let no_body = head_request || status == 304 || status == 204 || (100..200).contains(&status);
    if no_body {
        return Ok(Parsed::Done(resp, head_len));
    }
    if resp
        .header("transfer-encoding")
        .map(|v| v.to_ascii_lowercase().contains("chunked"))
        .unwrap_or(false)
    {
        return Err("unexpected chunked response (the server must use Content-Length)".into());
    }
    match resp.content_length() {
        Some(cl) => {
            let cl = cl as usize;
            if buf.len() - head_len >= cl {
                resp.body = buf[head_len..head_len + cl].to_vec();
                Ok(Parsed::Done(resp, head_len + cl))
            } else {
                Ok(Parsed::Partial)
            }
        }
        None => {
            if at_eof {
                resp.body = buf[head_len..].to_vec();
                Ok(Parsed::Done(resp, buf.len()))
            } else {
                Ok(Parsed::Partial)
            }
        }
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {}: {}", addr, e));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let _ = s.set_nodelay(true);
    s
}

/// How a read loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Eof,
    Reset,
    Timeout,
}

/// One client connection with a read buffer, for keep-alive / pipelining.
pub struct Conn {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
    pub eof: bool,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        Conn {
            stream: connect(addr),
            buf: Vec::new(),
            eof: false,
        }
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.stream
            .write_all(raw)
            .unwrap_or_else(|e| panic!("write request: {}", e));
    }

    /// Try to send; errors (e.g. the server already closed) are returned.
    pub fn try_send(&mut self, raw: &[u8]) -> io::Result<()> {
        self.stream.write_all(raw)
    }

    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Read once into the buffer. Returns the number of bytes, or the end kind.
    fn fill(&mut self) -> Result<usize, End> {
        let mut tmp = vec![0u8; 256 * 1024];
        match self.stream.read(&mut tmp) {
            Ok(0) => {
                self.eof = true;
                Err(End::Eof)
            }
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                Ok(n)
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                Err(End::Timeout)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(_) => {
                self.eof = true;
                Err(End::Reset)
            }
        }
    }

    /// Read exactly one response (panics on timeout / premature close).
    #[track_caller]
    pub fn read_response(&mut self, head_request: bool) -> Response {
        match self.try_read_response(head_request) {
            Ok(r) => r,
            Err(e) => panic!("{}", e),
        }
    }

    pub fn try_read_response(&mut self, head_request: bool) -> Result<Response, String> {
        loop {
            match parse_response(&self.buf, head_request, self.eof)? {
                Parsed::Done(r, used) => {
                    self.buf.drain(..used);
                    return Ok(r);
                }
                Parsed::Partial => {}
            }
            if self.eof {
                return Err(format!(
                    "connection closed before a complete response; had {} bytes: {:?}",
                    self.buf.len(),
                    String::from_utf8_lossy(&self.buf[..self.buf.len().min(400)])
                ));
            }
            if let Err(end) = self.fill() {
                if end == End::Timeout {
                    return Err(format!(
                        "timed out waiting for a response; had {} bytes: {:?}",
                        self.buf.len(),
                        String::from_utf8_lossy(&self.buf[..self.buf.len().min(400)])
                    ));
                }
            }
        }
    }

    /// Read until EOF / reset / `timeout`, appending to the buffer.
    /// Returns how it ended.
    pub fn read_until_close(&mut self, timeout: Duration) -> End {
        if self.eof {
            return End::Eof;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return End::Timeout;
            }
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.fill() {
                Ok(_) => {}
                Err(End::Timeout) => {
                    if Instant::now() >= deadline {
                        self.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                        return End::Timeout;
                    }
                }
                Err(e) => {
                    self.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                    return e;
                }
            }
        }
    }

    /// Assert the server closes the connection (EOF or reset) within
    /// `timeout` without sending anything more.
    #[track_caller]
    pub fn expect_closed(&mut self, timeout: Duration, ctx: &str) {
        let before = self.buf.len();
        let end = self.read_until_close(timeout);
        assert!(
            end != End::Timeout,
            "{}: server did not close the connection within {:?}",
            ctx,
            timeout
        );
        assert_eq!(
            self.buf.len(),
            before,
            "{}: unexpected extra bytes after the response: {:?}",
            ctx,
            String::from_utf8_lossy(&self.buf[before..])
        );
    }
}

/// Send `raw` on a fresh connection and read one response.
#[track_caller]
pub fn request(addr: SocketAddr, raw: &[u8]) -> Response {
    let head = raw.starts_with(b"HEAD ");
    let mut c = Conn::open(addr);
    c.send(raw);
    c.read_response(head)
}

/// Send `raw` on a fresh connection, read until the server closes
/// (bounded), and return every byte received.
#[track_caller]
pub fn request_raw_until_close(addr: SocketAddr, raw: &[u8]) -> Vec<u8> {
    let mut c = Conn::open(addr);
    c.send(raw);
    let end = c.read_until_close(IO_TIMEOUT);
    assert!(
        end != End::Timeout,
        "server did not close the connection within {:?} for request {:?}; got {:?}",
        IO_TIMEOUT,
        String::from_utf8_lossy(raw),
        String::from_utf8_lossy(&c.buf[..c.buf.len().min(400)])
    );
    c.buf
}

/// Send `raw` (which should make the server close: `Connection: close` or an
/// error), read to EOF, parse exactly one response and check that nothing
/// follows it — so the Content-Length is exactly the number of body bytes.
#[track_caller]
pub fn request_close(addr: SocketAddr, raw: &[u8]) -> Response {
    let head = raw.starts_with(b"HEAD ");
    let all = request_raw_until_close(addr, raw);
    match parse_response(&all, head, true) {
        Ok(Parsed::Done(r, used)) => {
            assert_eq!(
                used,
                all.len(),
                "bytes after the response (Content-Length/body mismatch?) for {:?}: response {}\nextra: {:?}",
                String::from_utf8_lossy(raw),
                r.describe(),
                String::from_utf8_lossy(&all[used..all.len().min(used + 300)])
            );
            if !head && r.status != 304 {
                assert!(
                    r.content_length().is_some(),
                    "response without Content-Length: {}",
                    r.describe()
                );
            }
            r
        }
        Ok(Parsed::Partial) => panic!(
            "incomplete response before close for {:?}: {:?}",
            String::from_utf8_lossy(raw),
            String::from_utf8_lossy(&all[..all.len().min(400)])
        ),
        Err(e) => panic!("{} for {:?}", e, String::from_utf8_lossy(raw)),
    }
}

/// `GET <target> HTTP/1.1` with Host and `Connection: close`, plus extra
/// header lines (each without CRLF).
pub fn get_req(target: &str, extra: &[&str]) -> Vec<u8> {
    build_req("GET", target, extra, true)
}

pub fn head_req(target: &str, extra: &[&str]) -> Vec<u8> {
    build_req("HEAD", target, extra, true)
}

pub fn build_req(method: &str, target: &str, extra: &[&str], close: bool) -> Vec<u8> {
    let mut s = format!("{} {} HTTP/1.1\r\nHost: localhost\r\n", method, target);
    for h in extra {
        s.push_str(h);
        s.push_str("\r\n");
    }
    if close {
        s.push_str("Connection: close\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// GET `target` on a fresh connection with `Connection: close`; full checks.
#[track_caller]
pub fn get(addr: SocketAddr, target: &str) -> Response {
    request_close(addr, &get_req(target, &[]))
}

#[track_caller]
pub fn get_with(addr: SocketAddr, target: &str, extra: &[&str]) -> Response {
    request_close(addr, &get_req(target, extra))
}

/// Check an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn is_imf_fixdate(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 29 {
        return false;
    }
    let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let digit = |i: usize| b[i].is_ascii_digit();
    days.contains(&&s[0..3])
        && &s[3..5] == ", "
        && digit(5)
        && digit(6)
        && b[7] == b' '
        && months.contains(&&s[8..11])
        && b[11] == b' '
        && (12..16).all(digit)
        && b[16] == b' '
        && digit(17)
        && digit(18)
        && b[19] == b':'
        && digit(20)
        && digit(21)
        && b[22] == b':'
        && digit(23)
        && digit(24)
        && &s[25..] == " GMT"
}

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Whether `hay` contains `needle`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------
// Processes by pid
// ---------------------------------------------------------------------------

/// Whether `pid` is gone: no /proc entry, or a zombie nobody reaped yet.
pub fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid)) {
        Err(_) => true,
        Ok(st) => {
            let state = st
                .rfind(')')
                .and_then(|i| st[i + 1..].trim_start().chars().next());
            matches!(state, Some('Z') | Some('X') | None)
        }
    }
}

/// Wait (bounded) until `pid` is gone; true if it went.
pub fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if process_gone(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Live processes whose command line contains `needle` (e.g. a test's unique temp root), so a
/// test can find every ringstatic process it started, re-parented ones included, and nothing
/// started by anybody else.
pub fn pids_with_cmdline_containing(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let me = std::process::id() as i32;
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let pid: i32 = match e.file_name().to_str().and_then(|s| s.parse().ok()) {
                Some(p) => p,
                None => continue,
            };
            if pid == me {
                continue;
            }
            if let Ok(cmd) = std::fs::read(format!("/proc/{}/cmdline", pid)) {
                if contains(&cmd, needle.as_bytes()) && !process_gone(pid) {
                    out.push(pid);
                }
            }
        }
    }
    out.sort();
    out
}

/// SIGKILLs every live process whose command line contains `needle` (cleanup after a failed
/// test, for processes that are not our children). Returns the pids signalled.
pub fn kill_processes_mentioning(needle: &str) -> Vec<i32> {
    let pids = pids_with_cmdline_containing(needle);
    for &p in &pids {
        unsafe {
            libc::kill(p, libc::SIGKILL);
        }
    }
    pids
}

/// A free TCP port on 127.0.0.1 (bound and released; another process could take it in between,
/// which is improbable enough for tests).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------
// Keep-alive load generator
// ---------------------------------------------------------------------------

/// One file the load fetches, with the bytes it must contain.
#[derive(Clone)]
pub struct LoadTarget {
    pub path: String,
    pub body: Arc<Vec<u8>>,
}

/// What a load run saw.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    /// Complete, verified 200 responses.
    pub ok: u64,
    /// Requests that did not get a complete, correct response (after the one permitted retry).
    pub failures: u64,
    /// The first failures, described, with milliseconds since the load started.
    pub failure_log: Vec<(u128, String)>,
    /// Failed connection attempts (included in `failures`).
    pub connect_errors: u64,
    /// Responses that carried `Connection: close` (the client then reconnected).
    pub connection_close: u64,
    /// Reused connections found closed by the server before a request was sent.
    pub idle_closed: u64,
    /// Requests sent on a reused keep-alive connection that got no byte at all before the
    /// server closed it (the keep-alive race), retried once on a new connection.
    pub race_retries: u64,
    /// Connections opened.
    pub connects: u64,
}

impl LoadReport {
    pub fn describe(&self) -> String {
        let mut s = format!(
            "ok {}, failures {}, connect errors {}, Connection: close {}, idle closed {}, keep-alive race retries {}, connects {}",
            self.ok,
            self.failures,
            self.connect_errors,
            self.connection_close,
            self.idle_closed,
            self.race_retries,
            self.connects
        );
        for (t, f) in &self.failure_log {
            s.push_str(&format!("\n  at {} ms: {}", t, f));
        }
        s
    }
}

/// Client threads, each with its own keep-alive connection, doing back-to-back GETs of the
/// targets in turn and checking every response (status 200, Content-Length, every byte).
///
/// The client behaves like real HTTP clients with keep-alive:
/// - a response with `Connection: close` ends the connection; the next request opens a new one;
/// - before reusing a connection it checks, without blocking, whether the server has closed it
///   while idle (as curl does); if so it opens a new one;
/// - a request that gets no byte at all on a *reused* connection (the server closed it at the
///   moment the request went out: the inherent keep-alive race) is retried once on a new
///   connection, as browsers and curl do for idempotent requests. Those are counted in
///   `race_retries`, not as failures.
///
/// Failures: a connect error; a connection closed or reset in the middle of a response; no
/// response on a new connection (or on the retry); a wrong status, length or byte; a timeout.
pub struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    ok: Arc<std::sync::atomic::AtomicU64>,
    failures: Arc<std::sync::atomic::AtomicU64>,
    report: Arc<Mutex<LoadReport>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    started: Instant,
}

enum Exchange {
    Done(Response),
    /// Closed/reset/refused before any response byte.
    NoBytes(String),
    /// Anything else that is not a complete response.
    Broken(String),
}

struct LoadConn {
    stream: TcpStream,
    buf: Vec<u8>,
    used: u64,
}

impl LoadConn {
    fn open(addr: SocketAddr) -> io::Result<LoadConn> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        let _ = s.set_nodelay(true);
        Ok(LoadConn {
            stream: s,
            buf: Vec::new(),
            used: 0,
        })
    }

    /// Whether the server has closed (or reset) this idle connection.
    fn closed_while_idle(&mut self) -> bool {
        if self.stream.set_nonblocking(true).is_err() {
            return true;
        }
        let mut b = [0u8; 1];
        let closed = match self.stream.peek(&mut b) {
            Ok(_) => true, // EOF, or unsolicited bytes: either way not reusable
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(_) => true,
        };
        let _ = self.stream.set_nonblocking(false);
        closed
    }

    fn exchange(&mut self, req: &[u8]) -> Exchange {
        if let Err(e) = self.stream.write_all(req) {
            return Exchange::NoBytes(format!("write: {}", e));
        }
        let mut tmp = vec![0u8; 64 * 1024];
        let mut eof = false;
        loop {
            match parse_response(&self.buf, false, eof) {
                Ok(Parsed::Done(r, used)) => {
                    self.buf.drain(..used);
                    if !self.buf.is_empty() {
                        return Exchange::Broken(format!(
                            "{} unexpected bytes after the response: {:?}",
                            self.buf.len(),
                            String::from_utf8_lossy(&self.buf[..self.buf.len().min(100)])
                        ));
                    }
                    return Exchange::Done(r);
                }
                Ok(Parsed::Partial) => {}
                Err(e) => return Exchange::Broken(e),
            }
            if eof {
                return Exchange::Broken(format!(
                    "closed in the middle of a response after {} bytes: {:?}",
                    self.buf.len(),
                    String::from_utf8_lossy(&self.buf[..self.buf.len().min(200)])
                ));
            }
            match self.stream.read(&mut tmp) {
                Ok(0) if self.buf.is_empty() => {
                    return Exchange::NoBytes("closed before any response byte".to_string())
                }
                Ok(0) => eof = true,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return Exchange::Broken(format!(
                        "no complete response within {:?}; had {} bytes",
                        IO_TIMEOUT,
                        self.buf.len()
                    ))
                }
                Err(e) if self.buf.is_empty() => {
                    return Exchange::NoBytes(format!("{} before any response byte", e))
                }
                Err(e) => {
                    return Exchange::Broken(format!(
                        "read error ({}) in the middle of a response after {} bytes",
                        e,
                        self.buf.len()
                    ))
                }
            }
        }
    }
}

impl Load {
    /// Start `threads` client threads against `addr`. Every thread stops by itself after
    /// `max_run` even if `stop` is never called.
    pub fn start(
        addr: SocketAddr,
        threads: usize,
        targets: Vec<LoadTarget>,
        max_run: Duration,
    ) -> Load {
        use std::sync::atomic::{AtomicBool, AtomicU64};
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(AtomicU64::new(0));
        let report = Arc::new(Mutex::new(LoadReport::default()));
        let started = Instant::now();
        let mut handles = Vec::new();
        for t in 0..threads {
            let stop = stop.clone();
            let ok = ok.clone();
            let failures = failures.clone();
            let report = report.clone();
            let targets = targets.clone();
            handles.push(std::thread::spawn(move || {
                let fail = |what: String| {
                    failures.fetch_add(1, Ordering::SeqCst);
                    let mut r = report.lock().unwrap();
                    r.failures += 1;
                    if r.failure_log.len() < 40 {
                        r.failure_log.push((
                            started.elapsed().as_millis(),
                            format!("thread {}: {}", t, what),
                        ));
                    }
                };
                let count = |f: &dyn Fn(&mut LoadReport)| f(&mut report.lock().unwrap());
                let connect = |why: &str| -> Option<LoadConn> {
                    count(&|r| r.connects += 1);
                    match LoadConn::open(addr) {
                        Ok(c) => Some(c),
                        Err(e) => {
                            count(&|r| r.connect_errors += 1);
                            fail(format!("connect ({}): {}", why, e));
                            None
                        }
                    }
                };
                let mut conn: Option<LoadConn> = None;
                let mut i = t; // threads start on different targets
                while !stop.load(Ordering::SeqCst) && started.elapsed() < max_run {
                    let target = &targets[i % targets.len()];
                    i += 1;
                    let req = format!(
                        "GET {} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: load-{}\r\n\r\n",
                        target.path, t
                    );
                    if conn.as_mut().is_some_and(|c| c.closed_while_idle()) {
                        count(&|r| r.idle_closed += 1);
                        conn = None;
                    }
                    if conn.is_none() {
                        conn = connect("new connection");
                        if conn.is_none() {
                            std::thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                    }
                    let c = conn.as_mut().unwrap();
                    let reused = c.used > 0;
                    let mut outcome = c.exchange(req.as_bytes());
                    if let (Exchange::NoBytes(_), true) = (&outcome, reused) {
                        // The keep-alive race: retry once on a new connection.
                        count(&|r| r.race_retries += 1);
                        conn = connect("retry after keep-alive race");
                        outcome = match conn.as_mut() {
                            Some(c) => c.exchange(req.as_bytes()),
                            None => continue, // already counted as a failure
                        };
                    }
                    let c = conn.as_mut().unwrap();
                    c.used += 1;
                    match outcome {
                        Exchange::Done(r) => {
                            let mut bad = None;
                            if r.status != 200 {
                                bad = Some(format!("status {}", r.status));
                            } else if r.content_length() != Some(target.body.len() as u64) {
                                bad = Some(format!(
                                    "Content-Length {:?}, expected {}",
                                    r.content_length(),
                                    target.body.len()
                                ));
                            } else if r.body != *target.body {
                                bad = Some("body bytes differ".to_string());
                            }
                            match bad {
                                Some(b) => {
                                    fail(format!("GET {}: {}: {}", target.path, b, r.describe()));
                                    conn = None;
                                }
                                None => {
                                    ok.fetch_add(1, Ordering::SeqCst);
                                    let close = r
                                        .header("connection")
                                        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
                                    if close {
                                        count(&|r| r.connection_close += 1);
                                        conn = None;
                                    }
                                }
                            }
                        }
                        Exchange::NoBytes(e) => {
                            fail(format!(
                                "GET {} on a new connection: no response: {}",
                                target.path, e
                            ));
                            conn = None;
                        }
                        Exchange::Broken(e) => {
                            fail(format!(
                                "GET {} (request {} on its connection): {}",
                                target.path, c.used, e
                            ));
                            conn = None;
                        }
                    }
                }
            }));
        }
        Load {
            stop,
            ok,
            failures,
            report,
            threads: handles,
            started,
        }
    }

    /// Verified responses so far.
    pub fn ok_so_far(&self) -> u64 {
        self.ok.load(Ordering::SeqCst)
    }

    pub fn failures_so_far(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Wait (bounded) until at least `n` responses were verified; false on timeout.
    pub fn wait_ok(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.ok_so_far() < n {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Stop every thread (each finishes the request it is in, bounded by the I/O timeout) and
    /// return what they saw.
    pub fn stop(mut self) -> LoadReport {
        self.stop_threads();
        let mut r = self.report.lock().unwrap().clone();
        r.ok = self.ok_so_far();
        r
    }

    fn stop_threads(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

/// Reads `r` line by line on its own thread until it ends, handing each line (with its newline,
/// invalid UTF-8 replaced) to `f`.
fn on_each_line<R: Read + Send + 'static>(r: R, mut f: impl FnMut(String) + Send + 'static) {
    std::thread::spawn(move || {
        let mut r = BufReader::new(r);
        let mut line = Vec::new();
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => f(String::from_utf8_lossy(&line).to_string()),
            }
        }
    });
}
