//! Errors and redirects: a status, a short HTML page, and the extra header lines a status needs
//! (Allow, Location, Content-Range). Every answer other than 2xx and 304 leaves through `error`,
//! which gets the whole `Ctx`: the error page configured per status (`--error-page`, by default
//! `/404.html` for 404), a file under the root found through the cache, is sent from here with
//! the original status, or the built-in page when there is none. `write_error` answers heads that never parsed.

use std::collections::VecDeque;

use super::find::lookup;
use super::{push_with_body, status_line, Ctx, Framing, Reply};
use crate::files::body::Chunk;
use crate::files::cache::Lookup;
use crate::http::head::{entity_lines, finish_head, status_line_into};
use crate::http::request::{Request, Version};
use crate::http::status::error_body;
use crate::http::token::push_u64;

/// An error or redirect for a parsed request: status, a short HTML page, any extra header lines.
pub(super) fn error(
    code: u16,
    extra: &[u8],
    fr: Framing,
    req: &Request,
    ctx: &mut Ctx,
    out: &mut VecDeque<Chunk>,
) -> Reply {
    let cfg = ctx.cfg;
    if let Some(page) = cfg.error_page(code) {
        if let Lookup::File(f) = lookup(ctx, page) {
            // In the coding the client prefers, as the page itself would be sent.
            let (f, _) = super::negotiate::select(req, ctx, page, f);
            // The page with the original status: its own type, coding and configured headers,
            // none of its validators (a precondition or range on the request was not about it).
            let mut h = status_line(code, ctx.date);
            entity_lines(&mut h, f.content_type, f.meta_lines(), f.size);
            h.extend_from_slice(extra);
            fr.finish(&mut h);
            push_with_body(out, h, &f, 0, f.size, fr.head_only);
            return fr.reply(code, if fr.head_only { 0 } else { f.size });
        }
    }
    let body_bytes = write_error(
        code,
        extra,
        fr.keep,
        fr.version,
        fr.head_only,
        ctx.date,
        out,
    );
    fr.reply(code, body_bytes)
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

#[cfg(test)]
mod tests {
    use super::super::testing::{wire, DATE};
    use super::*;

    const PAGE_404: &str = "<html><head><title>404 Not Found</title></head><body>\
        <h1>404 Not Found</h1><hr><center>ringstatic</center></body></html>\n";

    #[test]
    fn an_error_page() {
        let mut out = VecDeque::new();
        let n = write_error(404, b"", true, Version::Http11, false, DATE, &mut out);
        assert_eq!(n, PAGE_404.len() as u64);
        assert_eq!(
            wire(&out),
            format!(
                "HTTP/1.1 404 Not Found\r\nServer: ringstatic\r\n\
                 Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
                 Content-Type: text/html; charset=utf-8\r\nContent-Length: 121\r\n\r\n{PAGE_404}"
            )
        );
        assert_eq!(out.len(), 1, "head and page leave in one send");
    }

    #[test]
    fn extra_lines_head_and_connection() {
        let mut out = VecDeque::new();
        let n = write_error(
            405,
            b"Allow: GET, HEAD\r\n",
            true,
            Version::Http10,
            true,
            DATE,
            &mut out,
        );
        assert_eq!(n, 0);
        assert_eq!(
            wire(&out),
            "HTTP/1.1 405 Method Not Allowed\r\nServer: ringstatic\r\n\
             Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/html; charset=utf-8\r\nContent-Length: 139\r\n\
             Allow: GET, HEAD\r\nConnection: keep-alive\r\n\r\n"
        );
        out.clear();
        write_error(400, b"", false, Version::Http11, true, DATE, &mut out);
        assert!(wire(&out).ends_with("Content-Length: 125\r\nConnection: close\r\n\r\n"));
    }
}
