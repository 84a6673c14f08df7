//! The worker's request-path state apart from connections and the ring: the open-file cache,
//! the root, the multipart boundaries' source, the access log and the request counter. Wired to a
//! connection's session as its [`Handler`] for the duration of one `feed`. An answered request
//! leaves a record of its log line in its session; the line is written by `log_ended` once the
//! response has ended, with the body bytes that left.

use std::collections::VecDeque;

use super::clock::Clock;
use crate::accesslog::{line, AccessLog};
use crate::config::ServeConfig;
use crate::conn::Conn;
use crate::files::body::Chunk;
use crate::files::cache::FileCache;
use crate::files::open::Root;
use crate::http::request::{Request, Version};
use crate::metrics::Counters;
use crate::response::{respond, write_error, Boundaries, Ctx, Reply};
use crate::session::{Handler, Intake};

pub struct Site {
    cache: FileCache,
    root: Root,
    boundaries: Boundaries,
    access_log: Option<AccessLog>,
    requests: u64,
    /// The worker's counters (the request path's and the worker's own), published on the tick.
    pub counters: Counters,
}

impl Site {
    pub fn new(cache: FileCache, root: Root, access_log: Option<AccessLog>) -> Site {
        Site {
            cache,
            root,
            boundaries: Boundaries::new(),
            access_log,
            requests: 0,
            counters: Counters::default(),
        }
    }

    /// The tick's cache sweep: inactive entries expire, deleted files are released.
    pub fn sweep_cache(&mut self, now_ms: u64) {
        self.cache.sweep(now_ms);
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Whether the access log is on (connections then keep their peer's address).
    pub fn logs(&self) -> bool {
        self.access_log.is_some()
    }

    pub fn log_mut(&mut self) -> Option<&mut AccessLog> {
        self.access_log.as_mut()
    }

    pub fn reopen_log(&mut self) {
        if let Some(l) = &mut self.access_log {
            l.reopen();
        }
    }

    /// Writes the access-log lines of a connection's responses that ended: all of them sent, or
    /// (`gone`) the connection ends now and they end with what left of them.
    pub fn log_ended(&mut self, c: &mut Conn, gone: bool, clock: &Clock) {
        let Some(l) = self.access_log.as_mut() else {
            return;
        };
        c.session.take_ended(gone, |record, body_bytes| {
            l.finish(record, clock.date_secs, clock.now_ms, body_bytes)
        });
    }

    /// Gives a connection's newly received bytes to its session.
    pub fn feed(
        &mut self,
        c: &mut Conn,
        data: &[u8],
        cfg: &ServeConfig,
        clock: &Clock,
        draining: bool,
    ) -> Intake {
        self.with_session(c, cfg, clock, draining, |s, h| s.feed(data, h))
    }

    /// The header timeout ran out: a half-sent head gets 408; returns whether one was queued.
    pub fn time_out(
        &mut self,
        c: &mut Conn,
        cfg: &ServeConfig,
        clock: &Clock,
        draining: bool,
    ) -> bool {
        self.with_session(c, cfg, clock, draining, |s, h| s.time_out(h))
    }

    /// Answers the requests a session held back while its output was full.
    pub fn resume(
        &mut self,
        c: &mut Conn,
        cfg: &ServeConfig,
        clock: &Clock,
        draining: bool,
    ) -> bool {
        self.with_session(c, cfg, clock, draining, |s, h| s.resume(h))
    }

    /// Runs one session step with this site as its handler, then tells the connection how many
    /// requests that step answered (their timing starts now).
    fn with_session<R>(
        &mut self,
        c: &mut Conn,
        cfg: &ServeConfig,
        clock: &Clock,
        draining: bool,
        step: impl FnOnce(&mut crate::session::Session, &mut Requests) -> R,
    ) -> R {
        let before = self.requests;
        let mut h = self.handler(c.peer.as_deref(), cfg, clock, draining);
        h.ctx.redirect_https = c.redirect_https;
        let r = step(&mut c.session, &mut h);
        c.queued(self.requests - before, clock.now_ms);
        r
    }

    /// The cache's counts, for the tick to publish with the rest.
    pub fn cache_stats(&self) -> (crate::files::cache::CacheStats, usize) {
        (self.cache.stats, self.cache.len())
    }

    fn handler<'a>(
        &'a mut self,
        peer: Option<&'a [u8]>,
        cfg: &'a ServeConfig,
        clock: &'a Clock,
        draining: bool,
    ) -> Requests<'a> {
        Requests {
            ctx: Ctx {
                cache: &mut self.cache,
                root: &self.root,
                cfg,
                date: &clock.date,
                ok_200: clock.ok_200(),
                now_ms: clock.now_ms,
                draining,
                boundaries: &mut self.boundaries,
                redirect_https: false,
            },
            log: self.access_log.as_mut(),
            requests: &mut self.requests,
            counters: &mut self.counters,
            peer,
        }
    }
}

/// One connection's view of the site while its bytes are fed: the response path and the log.
struct Requests<'a> {
    ctx: Ctx<'a>,
    log: Option<&'a mut AccessLog>,
    requests: &'a mut u64,
    counters: &'a mut Counters,
    peer: Option<&'a [u8]>,
}

impl Handler for Requests<'_> {
    fn respond(&mut self, req: &Request, out: &mut VecDeque<Chunk>) -> Reply {
        let r = respond(req, &mut self.ctx, out);
        self.counters.coded(r.coding);
        r
    }

    fn refuse(&mut self, status: u16, out: &mut VecDeque<Chunk>) -> u64 {
        write_error(
            status,
            b"",
            false,
            Version::Http11,
            false,
            self.ctx.date,
            out,
        )
    }

    fn answered(
        &mut self,
        head: &[u8],
        req: Option<&Request>,
        status: u16,
        body_bytes: u64,
        record: &mut Vec<u8>,
    ) -> bool {
        *self.requests += 1;
        self.counters
            .answered(status, req.map(|r| r.method), body_bytes);
        let Some(l) = self.log.as_deref() else {
            return false;
        };
        l.begin(
            record,
            self.ctx.now_ms,
            &line::Request {
                remote: self.peer.unwrap_or(b"-"),
                request_line: request_line(head),
                status,
                referer: req.and_then(|r| r.referer),
                user_agent: req.and_then(|r| r.user_agent),
            },
        );
        true
    }
}

/// The request line of a head (leading empty lines skipped, line ending removed).
fn request_line(head: &[u8]) -> &[u8] {
    let start = head
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(head.len());
    let rest = &head[start..];
    let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
    let line = &rest[..end];
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::request_line;

    #[test]
    fn request_line_skips_leading_blank_lines_and_the_line_ending() {
        assert_eq!(
            request_line(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            b"GET / HTTP/1.1"
        );
        assert_eq!(
            request_line(b"\r\n\nGET /a HTTP/1.0\n\n"),
            b"GET /a HTTP/1.0"
        );
        assert_eq!(request_line(b"GET /partial"), b"GET /partial");
        assert_eq!(request_line(b""), b"");
    }
}
