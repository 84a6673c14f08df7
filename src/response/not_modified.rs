//! Preconditions (RFC 9110 13.2.2), nginx's not_modified filter: checked once the file is found
//! and before Range, so a 304 or 412 never carries part of a body. A failed If-Match or
//! If-Unmodified-Since is 412 (an error, written by `error`); a matching If-None-Match, or an
//! If-Modified-Since the file has not changed since, is 304, written here.

use std::collections::VecDeque;

use super::{status_line, Framing, Reply};
use crate::files::body::Chunk;
use crate::files::entry::FileEntry;
use crate::http::conditional::{Precondition, Validators};
use crate::http::request::Request;

/// What the request's preconditions say about the representation with validators `v`.
pub(super) fn evaluate(req: &Request, v: &Validators) -> Precondition {
    crate::http::conditional::evaluate(
        req.if_match,
        req.if_unmodified_since,
        req.if_none_match,
        req.if_modified_since,
        v,
    )
}

/// 304: the status line and the entry's lines (its validators), no Content-Type or Length.
pub(super) fn write(f: &FileEntry, fr: Framing, date: &[u8], out: &mut VecDeque<Chunk>) -> Reply {
    let mut h = status_line(304, date);
    h.extend_from_slice(f.lines());
    fr.finish(&mut h);
    out.push_back(Chunk::Owned { buf: h, pos: 0 });
    fr.reply(304, 0)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{entry, framing, request, wire, DATE};
    use super::*;
    use crate::http::request::Version;

    #[test]
    fn the_request_headers_are_the_ones_read() {
        let v = Validators {
            etag: b"\"e\"",
            last_modified: 0,
            last_modified_strong: true,
        };
        let eval = |head: &[u8]| evaluate(&request(head), &v);
        assert_eq!(eval(b""), Precondition::Proceed);
        assert_eq!(eval(b"If-None-Match: \"e\"\r\n"), Precondition::NotModified);
        assert_eq!(
            eval(b"If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n"),
            Precondition::NotModified
        );
        assert_eq!(
            eval(b"If-None-Match: \"e\"\r\nIf-Match: \"x\"\r\n"),
            Precondition::Failed
        );
        assert_eq!(
            eval(b"If-Unmodified-Since: Wed, 31 Dec 1969 23:59:59 GMT\r\n"),
            Precondition::Failed
        );
    }

    #[test]
    fn a_304_has_the_validators_and_no_body() {
        for resident in [true, false] {
            let f = entry(b"/a.txt", b"hello", resident);
            let mut out = VecDeque::new();
            let fr = framing(true, Version::Http11, false);
            assert_eq!(write(&f, fr, DATE, &mut out), fr.reply(304, 0));
            assert_eq!(
                wire(&out),
                "HTTP/1.1 304 Not Modified\r\nServer: ringstatic\r\n\
                 Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
                 Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nETag: \"e\"\r\n\
                 Accept-Ranges: bytes\r\n\r\n"
            );
        }
        let f = entry(b"/a.txt", b"hello", true);
        let mut out = VecDeque::new();
        write(&f, framing(false, Version::Http10, true), DATE, &mut out);
        assert!(wire(&out).ends_with("Accept-Ranges: bytes\r\nConnection: close\r\n\r\n"));
    }
}
