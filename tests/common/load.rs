//! A keep-alive load generator: client threads that fetch files back to back and verify every
//! byte, used to prove that reloads, upgrades and worker deaths lose no request.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::{parse_response, try_connect, Parsed, Response};
use super::IO_TIMEOUT;

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
        Ok(LoadConn {
            stream: try_connect(addr, Duration::from_secs(5))?,
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
