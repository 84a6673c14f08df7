//! Deciding a response and writing it as chunks: the request path from a parsed head to bytes.
//!
//! Order of decisions (as nginx's filters apply them): method -> target -> dotfiles -> cache lookup
//! (404/403/301) -> preconditions (412/304) -> Range (206/416) -> 200.

use std::collections::VecDeque;
use std::rc::Rc;

use crate::config::ServeConfig;
use crate::files::body::Chunk;
use crate::files::cache::{FileCache, Key, Lookup};
use crate::files::entry::{Body, Coding, Facts, FileEntry, Prepared};
use crate::files::open::Root;
use crate::http::conditional::{evaluate, if_range_allows_range, Precondition, Validators};
use crate::http::date::HTTP_DATE_LEN;
use crate::http::head::{entity_lines, file_lines, finish_head, header_line, status_line_into};
use crate::http::range::{
    decide_range, write_content_range, write_unsatisfied_range, ByteRange, RangeDecision,
};
use crate::http::request::{Method, Request, Version};
use crate::http::status::error_body;
use crate::http::target::{is_hidden, resolve_target, write_redirect_location};
use crate::http::token::push_u64;

/// Bodies up to this size are copied behind their header so the response leaves in one plain send;
/// larger cached bodies go as a second iovec of a sendmsg, without the copy.
const COPY_BODY_MAX: usize = 4096;

/// What the response path needs from its worker.
pub struct Ctx<'a> {
    pub cache: &'a mut FileCache,
    pub root: &'a Root,
    pub cfg: &'a ServeConfig,
    /// Current IMF-fixdate, refreshed once per second by the worker, and its second.
    pub date: &'a [u8],
    pub date_secs: i64,
    pub now_ms: u64,
    /// The worker is stopping: every response says `Connection: close`.
    pub draining: bool,
    /// Multipart boundary, fixed per worker.
    pub boundary: &'a str,
}

/// What was decided for one request: the status and body bytes queued (for the access log and
/// counters) and whether the connection stays open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body_bytes: u64,
    pub disposition: Disposition,
}

/// Whether the connection stays open after this response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    KeepAlive,
    Close,
}

/// Answers one parsed request by appending its chunks to `out`.
pub fn respond(req: &Request, ctx: &mut Ctx, out: &mut VecDeque<Chunk>) -> Reply {
    let keep = req.keep_alive && !ctx.draining;
    let head_only = req.method == Method::Head;
    if req.method == Method::Other {
        // The body of a request we do not read would be parsed as the next request: close.
        let keep = keep && !req.has_body;
        return error(
            405,
            b"Allow: GET, HEAD\r\n",
            keep,
            req.version,
            false,
            ctx,
            out,
        );
    }
    let Ok(target) = resolve_target(req.target) else {
        return error(400, b"", false, req.version, head_only, ctx, out);
    };
    if !ctx.cfg.serve_dotfiles && is_hidden(&target.path) {
        return error(404, b"", keep, req.version, head_only, ctx, out);
    }
    let key = Key {
        path: &target.path,
        coding: Coding::Identity,
    };
    let cfg = ctx.cfg;
    match ctx
        .cache
        .lookup(ctx.root, key, ctx.now_ms, |facts| prepare(cfg, facts))
    {
        Lookup::Status(code) => error(code, b"", keep, req.version, head_only, ctx, out),
        Lookup::Directory => {
            let mut loc = Vec::with_capacity(target.path.len() + 32);
            loc.extend_from_slice(b"Location: ");
            write_redirect_location(&target.path, target.query.as_deref(), &mut loc);
            loc.extend_from_slice(b"\r\n");
            error(301, &loc, keep, req.version, head_only, ctx, out)
        }
        Lookup::File(f) => file(req, &f, keep, head_only, ctx, out),
    }
}

/// What every response for a new cache entry shares, made once when the cache creates it: the
/// entry's header lines and, for a file kept in memory, the head of its complete `200` for
/// HTTP/1.1 keep-alive.
pub(crate) fn prepare(cfg: &ServeConfig, facts: &Facts) -> Prepared {
    let mut lines = Vec::with_capacity(128);
    file_lines(&mut lines, facts.mtime, facts.etag);
    match facts.coding {
        // A coded representation adds its Content-Encoding here.
        Coding::Identity => {}
    }
    if let Some(cc) = &cfg.cache_control {
        header_line(&mut lines, "Cache-Control", cc);
    }
    let (head, date_at) = if facts.resident {
        // The head `file` writes for a 200 on HTTP/1.1 keep-alive, with the Date left blank;
        // room for the bytes behind it, which go in the same buffer.
        let mut h = Vec::with_capacity(256 + facts.size as usize);
        let date_at = status_line_into(&mut h, 200, &[b' '; HTTP_DATE_LEN]);
        entity_lines(&mut h, facts.content_type, &lines, facts.size);
        finish_head(&mut h, true, Version::Http11);
        (h, Some(date_at))
    } else {
        (Vec::new(), None)
    };
    Prepared {
        lines: lines.into(),
        head,
        date_at,
    }
}

fn file(
    req: &Request,
    f: &Rc<FileEntry>,
    keep: bool,
    head_only: bool,
    ctx: &mut Ctx,
    out: &mut VecDeque<Chunk>,
) -> Reply {
    let v = Validators {
        etag: &f.etag,
        last_modified: f.mtime,
    };
    match evaluate(
        req.if_match,
        req.if_unmodified_since,
        req.if_none_match,
        req.if_modified_since,
        &v,
    ) {
        Precondition::Failed => return error(412, b"", keep, req.version, head_only, ctx, out),
        Precondition::NotModified => {
            let mut h = status_line(304, ctx);
            h.extend_from_slice(&f.lines);
            finish_head(&mut h, keep, req.version);
            out.push_back(Chunk::Owned { buf: h, pos: 0 });
            return reply(304, 0, keep);
        }
        Precondition::Proceed => {}
    }
    let ranges = match req.range {
        Some(r)
            if req
                .if_range
                .map_or(true, |ir| if_range_allows_range(ir, &v)) =>
        {
            decide_range(r, f.size)
        }
        _ => RangeDecision::Full,
    };
    let (status, body_bytes) = match ranges {
        RangeDecision::Full => {
            if let (true, Version::Http11, Body::Memory(m)) = (keep, req.version, &f.body) {
                // The hot path: a prebuilt response, one slice, nothing to format.
                let (buf, head_len) = m.response(ctx.date_secs, ctx.date);
                let end = if head_only { head_len } else { buf.len() };
                out.push_back(Chunk::Shared { buf, pos: 0, end });
            } else {
                let mut h = status_line(200, ctx);
                entity_lines(&mut h, f.content_type, &f.lines, f.size);
                finish_head(&mut h, keep, req.version);
                push_with_body(out, h, f, 0, f.size, head_only);
            }
            (200, if head_only { 0 } else { f.size })
        }
        RangeDecision::Single(r) => {
            let mut h = status_line(206, ctx);
            entity_lines(&mut h, f.content_type, &f.lines, r.len());
            h.extend_from_slice(b"Content-Range: ");
            write_content_range(r, f.size, &mut h);
            h.extend_from_slice(b"\r\n");
            finish_head(&mut h, keep, req.version);
            push_with_body(out, h, f, r.start, r.end + 1, head_only);
            (206, if head_only { 0 } else { r.len() })
        }
        RangeDecision::Multi(rs) => (
            206,
            multipart(&rs, f, keep, req.version, head_only, ctx, out),
        ),
        RangeDecision::Unsatisfiable => {
            let mut extra = b"Content-Range: ".to_vec();
            write_unsatisfied_range(f.size, &mut extra);
            extra.extend_from_slice(b"\r\n");
            return error(416, &extra, keep, req.version, head_only, ctx, out);
        }
    };
    reply(status, body_bytes, keep)
}

fn multipart(
    rs: &[ByteRange],
    f: &Rc<FileEntry>,
    keep: bool,
    version: Version,
    head_only: bool,
    ctx: &mut Ctx,
    out: &mut VecDeque<Chunk>,
) -> u64 {
    // Each part: CRLF "--" boundary CRLF, its headers, CRLF, the bytes; then CRLF "--" boundary "--" CRLF.
    let mut part_heads = Vec::with_capacity(rs.len());
    let mut total = 0u64;
    for r in rs {
        let mut p = Vec::with_capacity(96);
        p.extend_from_slice(b"\r\n--");
        p.extend_from_slice(ctx.boundary.as_bytes());
        p.extend_from_slice(b"\r\nContent-Type: ");
        p.extend_from_slice(f.content_type.as_bytes());
        p.extend_from_slice(b"\r\nContent-Range: ");
        write_content_range(*r, f.size, &mut p);
        p.extend_from_slice(b"\r\n\r\n");
        total += p.len() as u64 + r.len();
        part_heads.push(p);
    }
    let mut tail = b"\r\n--".to_vec();
    tail.extend_from_slice(ctx.boundary.as_bytes());
    tail.extend_from_slice(b"--\r\n");
    total += tail.len() as u64;

    let mut h = status_line(206, ctx);
    h.extend_from_slice(b"Content-Type: multipart/byteranges; boundary=");
    h.extend_from_slice(ctx.boundary.as_bytes());
    h.extend_from_slice(b"\r\nContent-Length: ");
    push_u64(&mut h, total);
    h.extend_from_slice(b"\r\n");
    h.extend_from_slice(&f.lines);
    finish_head(&mut h, keep, version);
    if head_only {
        out.push_back(Chunk::Owned { buf: h, pos: 0 });
        return 0;
    }
    out.push_back(Chunk::Owned { buf: h, pos: 0 });
    for (r, p) in rs.iter().zip(part_heads) {
        push_with_body(out, p, f, r.start, r.end + 1, false);
    }
    out.push_back(Chunk::Owned { buf: tail, pos: 0 });
    total
}

/// Queues `head` followed by bytes `start..end` of the file.
fn push_with_body(
    out: &mut VecDeque<Chunk>,
    mut head: Vec<u8>,
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
        Body::Memory(m) => {
            let (bytes, at) = m.body();
            let (s, e) = (at + start as usize, (at + end as usize).min(bytes.len()));
            if e - s <= COPY_BODY_MAX {
                head.extend_from_slice(&bytes[s..e]);
                out.push_back(Chunk::Owned { buf: head, pos: 0 });
            } else {
                out.push_back(Chunk::Owned { buf: head, pos: 0 });
                out.push_back(Chunk::Shared {
                    buf: bytes.clone(),
                    pos: s,
                    end: e,
                });
            }
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

/// An error or redirect: status, a short HTML page, any extra header lines.
pub fn error(
    code: u16,
    extra: &[u8],
    keep: bool,
    version: Version,
    head_only: bool,
    ctx: &mut Ctx,
    out: &mut VecDeque<Chunk>,
) -> Reply {
    let body_bytes = write_error(code, extra, keep, version, head_only, ctx.date, out);
    reply(code, body_bytes, keep)
}

/// The same as `error`, for heads that never parsed (so no Ctx/version is known yet). Returns the
/// body bytes queued.
pub fn write_error(
    code: u16,
    extra: &[u8],
    keep: bool,
    version: Version,
    head_only: bool,
    date: &[u8],
    out: &mut VecDeque<Chunk>,
) -> u64 {
    let body = error_body(code);
    let mut h = Vec::with_capacity(256 + body.len());
    status_line_into(&mut h, code, date);
    h.extend_from_slice(b"Content-Type: text/html; charset=utf-8\r\nContent-Length: ");
    push_u64(&mut h, body.len() as u64);
    h.extend_from_slice(b"\r\n");
    h.extend_from_slice(extra);
    finish_head(&mut h, keep, version);
    out.push_back(Chunk::Owned { buf: h, pos: 0 });
    if head_only {
        return 0;
    }
    if let Some(Chunk::Owned { buf, .. }) = out.back_mut() {
        buf.extend_from_slice(body);
    }
    body.len() as u64
}

fn status_line(code: u16, ctx: &Ctx) -> Vec<u8> {
    let mut h = Vec::with_capacity(384);
    status_line_into(&mut h, code, ctx.date);
    h
}

fn reply(status: u16, body_bytes: u64, keep: bool) -> Reply {
    Reply {
        status,
        body_bytes,
        disposition: if keep {
            Disposition::KeepAlive
        } else {
            Disposition::Close
        },
    }
}
