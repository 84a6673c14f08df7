//! The status listener (`--status-listen`): `/metrics`, `/healthz` and `/readyz`, served by one
//! thread of the master.
//!
//! Why the master and not a worker: the master is the one process that sees every worker (their
//! scoreboard slots, restarts, reloads) and that knows when a stop begins, and it keeps
//! answering while workers restart or drain, which is exactly when a load balancer asks. A
//! worker would add a third kind of socket to its ring and lose the answer when it restarts.
//! Why a thread: the master's loop sleeps on signals and due times, and a slow scraper must
//! never delay a signal; the thread does blocking I/O, one connection at a time with short
//! timeouts, and touches nothing the loop owns: it reads the scoreboard through its own mapping
//! and a `View` the loop refreshes after every turn.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::exposition;
use crate::scoreboard::{BoardReader, ACCEPTING};

/// A request head larger than this is refused (scrapers and probes send a few hundred bytes).
const HEAD_MAX: usize = 8192;
/// How long one client may take to send its request or read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// One worker process as the master's loop last saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerView {
    pub index: usize,
    pub slot: usize,
    pub running: bool,
    pub retiring: bool,
}

/// What the status thread needs from the master's loop, refreshed after every turn.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub workers: Vec<WorkerView>,
    /// Worker indexes the running configuration has (0..serving).
    pub serving: usize,
    /// A stop (or its drain delay) has begun: /readyz says 503 from now on.
    pub stopping: bool,
    pub restarts: u64,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
}

/// The master's side: where it publishes its `View`.
pub struct Status {
    view: Arc<Mutex<View>>,
    pub addr: SocketAddr,
    /// A second descriptor of the listening socket, to shut it down from here (`close`).
    socket: Option<OwnedFd>,
    closing: Arc<AtomicBool>,
}

impl Status {
    /// Binds `addr` and starts the thread. `retry`: the address may still be held by the old
    /// master of a binary upgrade; keep trying in the thread instead of failing.
    pub fn start(addr: SocketAddr, board: BoardReader, retry: bool) -> Result<Status, String> {
        let view = Arc::new(Mutex::new(View::default()));
        let shared = view.clone();
        let started = (Instant::now(), SystemTime::now());
        let listener = match TcpListener::bind(addr) {
            Ok(l) => Some(l),
            Err(e) if retry && e.kind() == std::io::ErrorKind::AddrInUse => None,
            Err(e) => {
                return Err(format!(
                    "cannot listen on status address {addr}: {}",
                    crate::config::plain(&e)
                ))
            }
        };
        let bound = match &listener {
            Some(l) => l.local_addr().unwrap_or(addr),
            None => addr,
        };
        let socket = listener
            .as_ref()
            .and_then(|l| l.as_fd().try_clone_to_owned().ok());
        let closing = Arc::new(AtomicBool::new(false));
        let stop = closing.clone();
        std::thread::Builder::new()
            .name("status".into())
            .spawn(move || {
                let listener = listener.unwrap_or_else(|| bind_when_free(addr));
                serve(listener, board, shared, started, stop)
            })
            .map_err(|e| format!("cannot start the status listener thread: {e}"))?;
        Ok(Status {
            view,
            addr: bound,
            socket,
            closing,
        })
    }

    /// Closes the listener, so that the new master of a binary upgrade can take the address
    /// over (it keeps trying) while this one finishes its responses. The thread ends.
    pub fn close(self) {
        self.closing.store(true, Ordering::SeqCst);
        if let Some(s) = &self.socket {
            // SAFETY: shutdown(2) on our own descriptor of the socket: a blocked accept in the
            // thread returns an error, the thread sees `closing` and drops its descriptor.
            unsafe { libc::shutdown(s.as_raw_fd(), libc::SHUT_RDWR) };
        }
    }

    /// Publishes the loop's view (one lock, once per turn of the master's loop).
    pub fn publish(&self, v: View) {
        if let Ok(mut g) = self.view.lock() {
            *g = v;
        }
    }
}

fn bind_when_free(addr: SocketAddr) -> TcpListener {
    loop {
        match TcpListener::bind(addr) {
            Ok(l) => return l,
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn serve(
    listener: TcpListener,
    board: BoardReader,
    view: Arc<Mutex<View>>,
    started: (Instant, SystemTime),
    closing: Arc<AtomicBool>,
) {
    for conn in listener.incoming() {
        if closing.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut conn) = conn else {
            // EMFILE and the like: wait a little rather than spin.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
        let _ = conn.set_write_timeout(Some(IO_TIMEOUT));
        let v = view.lock().map(|g| g.clone()).unwrap_or_default();
        answer(&mut conn, &board, &v, started);
    }
}

/// Reads one request head and answers it; the connection then closes.
fn answer(conn: &mut TcpStream, board: &BoardReader, v: &View, started: (Instant, SystemTime)) {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    // The whole head within IO_TIMEOUT, not each read: a client trickling bytes cannot hold
    // the thread.
    let deadline = Instant::now() + IO_TIMEOUT;
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() > HEAD_MAX {
            return reply(conn, 431, "text/plain", b"request head too large\n", false);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || conn.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or(b"");
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    let (Some(method), Some(target), Some(version)) = (method, target, version) else {
        return reply(conn, 400, "text/plain", b"bad request\n", false);
    };
    if !version.starts_with("HTTP/1.") {
        return reply(conn, 400, "text/plain", b"bad request\n", false);
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return reply(conn, 405, "text/plain", b"only GET and HEAD\n", false),
    };
    let path = target.split('?').next().unwrap_or("");
    let health = Health::of(board, v);
    match path {
        "/metrics" => {
            let mut body = String::with_capacity(16 * 1024);
            exposition::render(&mut body, board, v, &health, started);
            reply(
                conn,
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                body.as_bytes(),
                head_only,
            )
        }
        "/healthz" if health.healthy => reply(conn, 200, "text/plain", b"ok\n", head_only),
        "/healthz" => reply(conn, 503, "text/plain", b"no worker accepting\n", head_only),
        "/readyz" if health.ready => reply(conn, 200, "text/plain", b"ready\n", head_only),
        "/readyz" if v.stopping => reply(conn, 503, "text/plain", b"stopping\n", head_only),
        "/readyz" => reply(
            conn,
            503,
            "text/plain",
            b"not every worker accepts\n",
            head_only,
        ),
        _ => reply(conn, 404, "text/plain", b"not found\n", head_only),
    }
}

/// What /healthz and /readyz say.
pub struct Health {
    /// At least one worker accepts (each worker accepts on every listener).
    pub healthy: bool,
    /// Not stopping, and every worker index of the running configuration has a process that
    /// accepts (during a reload, the old one or its successor).
    pub ready: bool,
}

impl Health {
    pub fn of(board: &BoardReader, v: &View) -> Health {
        let accepting = |w: &WorkerView| {
            w.running && board.slot(w.slot).state.load(Ordering::Acquire) == ACCEPTING
        };
        let healthy = v.workers.iter().any(accepting);
        let every = (0..v.serving).all(|i| v.workers.iter().any(|w| w.index == i && accepting(w)));
        Health {
            healthy,
            ready: healthy && every && !v.stopping,
        }
    }
}

fn reply(conn: &mut TcpStream, status: u16, ctype: &str, body: &[u8], head_only: bool) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let allow = if status == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    if !head_only {
        let _ = conn.write_all(body);
    }
    let _ = conn.shutdown(std::net::Shutdown::Write);
    // Read what the client may still send, for a moment and a few KiB at most, so that closing
    // does not reset the connection under its unread answer.
    let deadline = Instant::now() + Duration::from_millis(500);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
    let (mut sink, mut read) = ([0u8; 512], 0);
    while Instant::now() < deadline && read < 16 * 1024 {
        match conn.read(&mut sink) {
            Ok(n) if n > 0 => read += n,
            _ => break,
        }
    }
}
