//! The HTTP/1.1 client side: a strict response parser (Content-Length framing only, nothing may
//! follow a response on a closing connection), raw connections for keep-alive and pipelining,
//! and one-shot request helpers. Every socket has a bounded timeout.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::IO_TIMEOUT;

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

/// A connection to `addr` with IO_TIMEOUT on every read and write, Nagle off; panics if the
/// connection fails.
pub fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr)
        .and_then(with_timeouts)
        .unwrap_or_else(|e| panic!("connect {}: {}", addr, e))
}

/// Like `connect`, with the handshake bounded by `limit` and failures returned.
pub fn try_connect(addr: SocketAddr, limit: Duration) -> io::Result<TcpStream> {
    TcpStream::connect_timeout(&addr, limit).and_then(with_timeouts)
}

fn with_timeouts(s: TcpStream) -> io::Result<TcpStream> {
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let _ = s.set_nodelay(true);
    Ok(s)
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
        Conn::on(connect(addr))
    }

    /// A Conn on an already connected stream.
    pub fn on(stream: TcpStream) -> Conn {
        Conn {
            stream,
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

/// `get` for callers that collect failures instead of panicking (tests/systemd.rs, whose checks
/// all run and are reported together, some on a thread inside a container's network
/// namespace): every failure (connect, send, a response that is not complete within
/// IO_TIMEOUT) is returned. The response is read by its Content-Length, or to EOF without one.
pub fn try_get(addr: SocketAddr, target: &str) -> Result<Response, String> {
    let stream = try_connect(addr, IO_TIMEOUT).map_err(|e| format!("connect {addr}: {e}"))?;
    let mut c = Conn::on(stream);
    c.try_send(&get_req(target, &[]))
        .map_err(|e| format!("send to {addr}: {e}"))?;
    c.try_read_response(false)
        .map_err(|e| format!("{addr}: {e}"))
}

#[track_caller]
pub fn get_with(addr: SocketAddr, target: &str, extra: &[&str]) -> Response {
    request_close(addr, &get_req(target, extra))
}
