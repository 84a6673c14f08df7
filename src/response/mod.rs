//! Deciding a response and writing it as chunks: the request path from a parsed head to bytes.
//!
//! `respond` is the pipeline, one decision per step, in the order nginx's filters apply them:
//! method -> target -> https redirect (`https_redirect`) -> dotfiles -> lookup (404/403/301, the fallback: `find`) -> content coding
//! (`negotiate`) -> preconditions (412/304,
//! `not_modified`) -> Range (206/416, `range` and `multipart`) -> 200. Each step either answers or
//! hands on; errors and redirects all leave through `error`, so a configured error page has one
//! place to go. The steps write bytes; none of them keeps state.
//!
//! What all responses for one cache entry share (its validators, configured lines, the prebuilt
//! `200` of a file kept in memory) is made once, when the cache creates the entry, by `prepare`:
//! a per-path header rule or a content coding is resolved there, and costs nothing on a hit. The
//! hot path, a small file on HTTP/1.1 keep-alive GET, is one hash lookup and two shared slices:
//! the worker's status line, Server and Date (patched once a second) and the entry's prebuilt
//! head.

mod boundary;
mod error;
mod find;
pub mod headers;
mod https_redirect;
mod multipart;
mod negotiate;
mod not_modified;
mod prepare;
mod range;

use std::collections::VecDeque;
use std::rc::Rc;

use crate::config::ServeConfig;
use crate::files::body::Chunk;
use crate::files::cache::FileCache;
use crate::files::entry::{Body, Coding, FileEntry};
use crate::files::open::Root;
use crate::http::conditional::{Precondition, Validators};
use crate::http::head::{entity_lines, finish_head, status_line_into};
use crate::http::range::RangeDecision;
use crate::http::request::{Method, Request, Version};
use crate::http::target::{is_hidden, resolve_target};

pub use boundary::Boundaries;
use error::error;
pub use error::write_error;
use find::{find, Found};
pub(crate) use prepare::prepare;

/// What the response path needs from its worker (inputs only; what was decided is the `Reply`).
pub struct Ctx<'a> {
    pub cache: &'a mut FileCache,
    pub root: &'a Root,
    pub cfg: &'a ServeConfig,
    /// Current IMF-fixdate, refreshed once per second by the worker.
    pub date: &'a [u8],
    /// The status line, Server and Date of a `200` (the worker's, with the same date), sent
    /// before a cached file's prebuilt head.
    pub ok_200: &'a Rc<[u8]>,
    pub now_ms: u64,
    /// The worker is stopping: every response says `Connection: close`.
    pub draining: bool,
    /// Where each multipart response's boundary comes from (one source per worker).
    pub boundaries: &'a mut Boundaries,
    /// The connection came in on a plain listener with `--redirect-https`.
    pub redirect_https: bool,
}

/// What was decided for one request: the status and body bytes queued (for the access log and
/// counters) and whether the connection stays open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body_bytes: u64,
    pub disposition: Disposition,
    /// The representation answered about (identity unless a coded one was selected).
    pub coding: Coding,
}

/// Whether the connection stays open after this response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    KeepAlive,
    Close,
}

/// Answers one parsed request by appending its chunks to `out`.
pub fn respond(req: &Request, ctx: &mut Ctx, out: &mut VecDeque<Chunk>) -> Reply {
    let fr = Framing {
        keep: req.keep_alive && !ctx.draining,
        version: req.version,
        head_only: req.method == Method::Head,
    };
    // Method: GET and HEAD only; another one we know is 405, one we do not is 501 (RFC 9110
    // 15.5.6, 15.6.2).
    if let Method::NotAllowed | Method::Unknown = req.method {
        // The body of a request we do not read would be parsed as the next request: close.
        let fr = Framing {
            keep: fr.keep && !req.has_body,
            ..fr
        };
        return match req.method {
            Method::NotAllowed => error(405, b"Allow: GET, HEAD\r\n", fr, req, ctx, out),
            _ => error(501, b"", fr, req, ctx, out),
        };
    }
    // Target: decoded and normalized, or 400 (and close: we cannot tell what was meant).
    let Ok(target) = resolve_target(req.target) else {
        return error(400, b"", Framing { keep: false, ..fr }, req, ctx, out);
    };
    // --redirect-https on a plain listener: everything but ACME challenges goes to https.
    if ctx.redirect_https && !target.path.starts_with(https_redirect::ACME_CHALLENGE) {
        return match https_redirect::location(req, ctx.cfg.https_port) {
            Some(loc) => error(308, &loc, fr, req, ctx, out),
            None => error(400, b"", Framing { keep: false, ..fr }, req, ctx, out),
        };
    }
    // Dotfiles: hidden unless configured.
    if !ctx.cfg.serve_dotfiles && is_hidden(&target.path) {
        return error(404, b"", fr, req, ctx, out);
    }
    // Lookup: the entry (or the --fallback file), or 404/403/503, or a 301 (a directory's slash,
    // a clean URL).
    let (f, path) = match find(ctx, &target) {
        Found::File(f) => (f, &target.path[..]),
        Found::Fallback(f) => (f, ctx.cfg.fallback.as_deref().unwrap_or_default()),
        Found::Status(code) => return error(code, b"", fr, req, ctx, out),
        Found::Redirect(loc) => return error(301, &loc, fr, req, ctx, out),
    };
    // Content coding: the representation the client prefers among those that exist (the
    // fallback file's are cached under its own path, not once per route).
    let (f, coding) = negotiate::select(req, ctx, path, f);
    let mut reply = representation(req, ctx, &f, fr, out);
    if matches!(reply.status, 200 | 206 | 304) {
        reply.coding = coding;
    }
    reply
}

/// Preconditions and ranges on the representation selected, and its response.
fn representation(
    req: &Request,
    ctx: &mut Ctx,
    f: &FileEntry,
    fr: Framing,
    out: &mut VecDeque<Chunk>,
) -> Reply {
    // Preconditions: 412 or 304.
    let v = Validators {
        etag: f.etag(),
        last_modified: f.mtime,
        last_modified_strong: f.lm_strong,
    };
    match not_modified::evaluate(req, &v) {
        Precondition::Proceed => {}
        Precondition::Failed => return error(412, b"", fr, req, ctx, out),
        Precondition::NotModified => return not_modified::write(f, fr, ctx.date, out),
    }
    // Range: 206 or 416; otherwise 200, the whole file.
    match range::decide(req, &v, f.size) {
        RangeDecision::Full => full(f, fr, ctx.date, ctx.ok_200, out),
        RangeDecision::Single(r) => range::write(f, r, fr, ctx.date, out),
        RangeDecision::Multi(rs) => multipart::write(f, &rs, fr, ctx.date, ctx.boundaries, out),
        RangeDecision::Unsatisfiable => {
            error(416, &range::unsatisfied_line(f.size), fr, req, ctx, out)
        }
    }
}

/// 200 with the whole file. On HTTP/1.1 keep-alive, a mapped file leaves as the worker's status
/// line, Server and Date, its prebuilt head and its mapping: three iovecs of one sendmsg,
/// nothing formatted.
fn full(
    f: &FileEntry,
    fr: Framing,
    date: &[u8],
    ok_200: &Rc<[u8]>,
    out: &mut VecDeque<Chunk>,
) -> Reply {
    let prebuilt = (fr.keep && fr.version == Version::Http11)
        .then(|| f.head())
        .flatten();
    if let (Some(head), Body::Mapped(m) | Body::Memory(m)) = (prebuilt, &f.body) {
        out.push_back(Chunk::Shared {
            buf: ok_200.clone(),
            pos: 0,
            end: ok_200.len(),
        });
        out.push_back(head);
        let len = m.body_len();
        if !fr.head_only && len > 0 {
            out.push_back(m.body_chunk(0, len));
        }
    } else {
        let mut h = status_line(200, date);
        entity_lines(&mut h, f.content_type, f.lines(), f.size);
        fr.finish(&mut h);
        push_with_body(out, h, f, 0, f.size, fr.head_only);
    }
    fr.reply(200, if fr.head_only { 0 } else { f.size })
}

/// How every response to one request is framed: the end of its head and whether a body follows.
#[derive(Clone, Copy, Debug)]
struct Framing {
    /// The connection stays open; otherwise the head says `Connection: close`.
    keep: bool,
    version: Version,
    /// HEAD: the head only, with the Content-Length a GET would have.
    head_only: bool,
}

impl Framing {
    /// The Connection header this response needs, and the blank line.
    fn finish(self, h: &mut Vec<u8>) {
        finish_head(h, self.keep, self.version);
    }

    fn reply(self, status: u16, body_bytes: u64) -> Reply {
        Reply {
            status,
            body_bytes,
            coding: Coding::Identity,
            disposition: if self.keep {
                Disposition::KeepAlive
            } else {
                Disposition::Close
            },
        }
    }
}

/// A head under way: the status line with Server and Date.
fn status_line(code: u16, date: &[u8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(384);
    status_line_into(&mut h, code, date);
    h
}

/// Queues `head` followed by bytes `start..end` of the file.
fn push_with_body(
    out: &mut VecDeque<Chunk>,
    head: Vec<u8>,
    f: &FileEntry,
    start: u64,
    end: u64,
    head_only: bool,
) {
    if head_only || start >= end {
        out.push_back(Chunk::Owned { buf: head, pos: 0 });
        return;
    }
    match &f.body {
        // Never copied behind the head: that would read mapped bytes in user space (see
        // `Mapping`); the kernel gathers both iovecs instead.
        Body::Mapped(m) | Body::Memory(m) => {
            out.push_back(Chunk::Owned { buf: head, pos: 0 });
            out.push_back(m.body_chunk(start as usize, end as usize));
        }
        Body::Fd(fd) => {
            out.push_back(Chunk::Owned { buf: head, pos: 0 });
            out.push_back(Chunk::File {
                fd: fd.clone(),
                offset: start,
                end,
            });
        }
    }
}

/// Helpers for the steps' tests: a response's bytes as a client would read them.
#[cfg(test)]
mod testing {
    use super::*;

    pub const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    /// The worker's status line, Server and Date of a 200, on `DATE`.
    pub fn ok_200() -> Rc<[u8]> {
        let mut h = Vec::new();
        status_line_into(&mut h, 200, DATE);
        Rc::from(h)
    }

    pub fn framing(keep: bool, version: Version, head_only: bool) -> Framing {
        Framing {
            keep,
            version,
            head_only,
        }
    }

    /// A GET of /a.txt over HTTP/1.1 with these header lines (each ending in CRLF).
    pub fn request(lines: &[u8]) -> Request<'static> {
        let head = [b"GET /a.txt HTTP/1.1\r\nHost: x\r\n", lines, b"\r\n"].concat();
        match crate::http::request::parse_head(head.leak()) {
            Ok(crate::http::request::Parsed::Complete(req, _)) => req,
            _ => panic!("not a complete head"),
        }
    }

    /// The queued bytes; a file range shows as `<file a..b>`.
    pub fn wire(out: &VecDeque<Chunk>) -> String {
        let mut s = String::new();
        for c in out {
            match c {
                Chunk::File { offset, end, .. } => s.push_str(&format!("<file {offset}..{end}>")),
                c => s.push_str(&String::from_utf8_lossy(&c.remaining_bytes().unwrap())),
            }
        }
        s
    }

    /// An entry for `path` holding `bytes`, prepared as the server prepares one (no Cache-Control,
    /// no content codings: `prepare`'s own tests cover the lines those add).
    pub fn entry(path: &[u8], bytes: &[u8], resident: bool) -> FileEntry {
        use clap::Parser;
        let cfg = ServeConfig::from(&crate::config::Cli::parse_from([
            "ringstatic",
            "--precompressed=off",
            "--compress=off",
        ]));
        FileEntry::for_tests(path, bytes, 784111777, b"\"e\"", resident, |facts| {
            prepare(&cfg, facts)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn the_whole_file() {
        let mut out = VecDeque::new();
        let f = entry(b"/a.txt", b"hello", false);
        let fr = framing(false, Version::Http11, false);
        let reply = full(&f, fr, DATE, &ok_200(), &mut out);
        assert_eq!(
            wire(&out),
            "HTTP/1.1 200 OK\r\nServer: ringstatic\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\
             Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nETag: \"e\"\r\nAccept-Ranges: bytes\r\n\
             Connection: close\r\n\r\n<file 0..5>"
        );
        assert_eq!(reply, fr.reply(200, 5));
        assert_eq!(reply.disposition, Disposition::Close);

        // Mapped, HTTP/1.1 keep-alive: the shared status line, Server and Date, the prebuilt
        // head, then the mapping; the same bytes.
        out.clear();
        let f = entry(b"/a.txt", b"hello", true);
        let fr = framing(true, Version::Http11, false);
        let reply = full(&f, fr, DATE, &ok_200(), &mut out);
        assert!(matches!(out[0], Chunk::Shared { .. }) && out.len() == 3);
        assert!(matches!(out[1], Chunk::Shared { .. }));
        assert!(matches!(out[2], Chunk::Mapped { .. }));
        assert_eq!(
            wire(&out),
            "HTTP/1.1 200 OK\r\nServer: ringstatic\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\
             Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nETag: \"e\"\r\nAccept-Ranges: bytes\r\n\
             \r\nhello"
        );
        assert_eq!(reply, fr.reply(200, 5));

        // HEAD on HTTP/1.0 keep-alive: formatted, no body.
        out.clear();
        let fr = framing(true, Version::Http10, true);
        let reply = full(&f, fr, DATE, &ok_200(), &mut out);
        assert!(wire(&out).ends_with("Accept-Ranges: bytes\r\nConnection: keep-alive\r\n\r\n"));
        assert_eq!(reply, fr.reply(200, 0));
    }

    #[test]
    fn mapped_bodies_are_never_copied_behind_heads() {
        let big = vec![b'x'; 5000];
        let f = entry(b"/big.bin", &big, true);
        let mut out = VecDeque::new();
        push_with_body(&mut out, b"H".to_vec(), &f, 0, 10, false);
        assert!(matches!(out[1], Chunk::Mapped { .. }) && out.len() == 2);
        assert_eq!(wire(&out), "Hxxxxxxxxxx");
        out.clear();
        push_with_body(&mut out, b"H".to_vec(), &f, 0, big.len() as u64, false);
        assert!(matches!(out[1], Chunk::Mapped { .. }) && out.len() == 2);
        assert_eq!(out[1].remaining(), big.len() as u64);
    }
}
