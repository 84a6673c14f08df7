//! Range (RFC 9110 14), nginx's range filter: after the preconditions, a Range the If-Range
//! validator allows is a 206 of one part (written here) or of several (`multipart`); one that no
//! byte of the representation satisfies is 416 (an error) with the length it has. Anything else,
//! an ignored or absent Range included, is the whole file.

use std::collections::VecDeque;

use super::{push_with_body, status_line, Framing, Reply};
use crate::files::body::Chunk;
use crate::files::entry::FileEntry;
use crate::http::conditional::{if_range_allows_range, Validators};
use crate::http::head::entity_lines;
use crate::http::range::{
    decide_range, write_content_range, write_unsatisfied_range, ByteRange, RangeDecision,
};
use crate::http::request::Request;

/// What the request's Range and If-Range ask of a representation of `size` bytes with
/// validators `v`.
pub(super) fn decide(req: &Request, v: &Validators, size: u64) -> RangeDecision {
    match req.range {
        Some(r) if req.if_range.map_or(true, |ir| if_range_allows_range(ir, v)) => {
            decide_range(r, size)
        }
        _ => RangeDecision::Full,
    }
}

/// 206 with one part: the entity lines for the part's length, and its Content-Range.
pub(super) fn write(
    f: &FileEntry,
    r: ByteRange,
    fr: Framing,
    date: &[u8],
    out: &mut VecDeque<Chunk>,
) -> Reply {
    let mut h = status_line(206, date);
    entity_lines(&mut h, f.content_type, f.lines(), r.len());
    h.extend_from_slice(b"Content-Range: ");
    write_content_range(r, f.size, &mut h);
    h.extend_from_slice(b"\r\n");
    fr.finish(&mut h);
    push_with_body(out, h, f, r.start, r.end + 1, fr.head_only);
    fr.reply(206, if fr.head_only { 0 } else { r.len() })
}

/// The extra line of a 416: `Content-Range: bytes */size`.
pub(super) fn unsatisfied_line(size: u64) -> Vec<u8> {
    let mut line = b"Content-Range: ".to_vec();
    write_unsatisfied_range(size, &mut line);
    line.extend_from_slice(b"\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::super::testing::{entry, framing, request, wire, DATE};
    use super::*;
    use crate::http::request::Version;

    #[test]
    fn if_range_decides_whether_range_counts() {
        let v = Validators {
            etag: b"\"e\"",
            last_modified: 0,
            last_modified_strong: true,
        };
        let decide = |lines: &[u8]| decide(&request(lines), &v, 10);
        let one = RangeDecision::Single(ByteRange { start: 2, end: 4 });
        assert_eq!(decide(b""), RangeDecision::Full);
        assert_eq!(decide(b"Range: bytes=2-4\r\n"), one);
        assert_eq!(decide(b"Range: bytes=2-4\r\nIf-Range: \"e\"\r\n"), one);
        assert_eq!(
            decide(b"Range: bytes=2-4\r\nIf-Range: \"old\"\r\n"),
            RangeDecision::Full
        );
        assert_eq!(
            decide(b"Range: bytes=20-\r\n"),
            RangeDecision::Unsatisfiable
        );
    }

    #[test]
    fn one_part() {
        let f = entry(b"/a.txt", b"0123456789", true);
        let mut out = VecDeque::new();
        let fr = framing(true, Version::Http11, false);
        let r = ByteRange { start: 2, end: 4 };
        assert_eq!(write(&f, r, fr, DATE, &mut out), fr.reply(206, 3));
        assert_eq!(
            wire(&out),
            "HTTP/1.1 206 Partial Content\r\nServer: ringstatic\r\n\
             Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n\
             Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nETag: \"e\"\r\n\
             Accept-Ranges: bytes\r\nContent-Range: bytes 2-4/10\r\n\r\n234"
        );
        // From an fd, a HEAD, closing.
        let f = entry(b"/a.txt", b"0123456789", false);
        out.clear();
        let fr = framing(false, Version::Http11, false);
        write(&f, r, fr, DATE, &mut out);
        assert!(wire(&out).ends_with("bytes 2-4/10\r\nConnection: close\r\n\r\n<file 2..5>"));
        out.clear();
        let fr = framing(true, Version::Http11, true);
        assert_eq!(write(&f, r, fr, DATE, &mut out), fr.reply(206, 0));
        assert!(wire(&out).ends_with("bytes 2-4/10\r\n\r\n"));
    }

    #[test]
    fn the_416_line() {
        assert_eq!(unsatisfied_line(10), b"Content-Range: bytes */10\r\n");
    }
}
