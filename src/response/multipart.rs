//! 206 with several parts (RFC 9110 14.6, `multipart/byteranges`), the rest of nginx's range
//! filter: each part is a boundary, its Content-Type and Content-Range, and its bytes; the body's
//! length is known before anything is queued, so the head carries a Content-Length.

use std::collections::VecDeque;

use super::boundary::Boundaries;
use super::{push_with_body, status_line, Framing, Reply};
use crate::files::body::Chunk;
use crate::files::entry::{Body, FileEntry};
use crate::http::range::{write_content_range, ByteRange};
use crate::http::token::push_u64;

/// 206 with the parts `rs` of the file, in request order, separated by a boundary of this
/// response's own (see `boundary`): for a body in memory, one its parts do not contain.
pub(super) fn write(
    f: &FileEntry,
    rs: &[ByteRange],
    fr: Framing,
    date: &[u8],
    boundaries: &mut Boundaries,
    out: &mut VecDeque<Chunk>,
) -> Reply {
    // Bytes of ours may be searched; a mapped file's never are (see `entry::Mapping`): it gets a
    // fresh boundary, as a file sent from its fd does.
    let heap = match &f.body {
        Body::Memory(m) => m.heap_bytes(),
        Body::Mapped(_) | Body::Fd(_) => None,
    };
    let boundary = match heap {
        Some(bytes) => {
            let part = |r: &ByteRange| {
                let end = (r.end as usize + 1).min(bytes.len());
                bytes.get(r.start as usize..end).unwrap_or_default()
            };
            let parts: Vec<&[u8]> = rs.iter().map(part).collect();
            boundaries.next_absent_from(&parts)
        }
        None => boundaries.fresh(),
    };
    write_with(f, rs, fr, date, &boundary, out)
}

/// `write` with a given boundary.
fn write_with(
    f: &FileEntry,
    rs: &[ByteRange],
    fr: Framing,
    date: &[u8],
    boundary: &[u8],
    out: &mut VecDeque<Chunk>,
) -> Reply {
    // Each part: CRLF "--" boundary CRLF, its headers, CRLF, the bytes; then CRLF "--" boundary "--" CRLF.
    let mut part_heads = Vec::with_capacity(rs.len());
    let mut total = 0u64;
    for r in rs {
        let mut p = Vec::with_capacity(96);
        p.extend_from_slice(b"\r\n--");
        p.extend_from_slice(boundary);
        p.extend_from_slice(b"\r\nContent-Type: ");
        p.extend_from_slice(f.content_type.as_bytes());
        p.extend_from_slice(b"\r\nContent-Range: ");
        write_content_range(*r, f.size, &mut p);
        p.extend_from_slice(b"\r\n\r\n");
        total += p.len() as u64 + r.len();
        part_heads.push(p);
    }
    let mut tail = b"\r\n--".to_vec();
    tail.extend_from_slice(boundary);
    tail.extend_from_slice(b"--\r\n");
    total += tail.len() as u64;

    let mut h = status_line(206, date);
    h.extend_from_slice(b"Content-Type: multipart/byteranges; boundary=");
    h.extend_from_slice(boundary);
    h.extend_from_slice(b"\r\nContent-Length: ");
    push_u64(&mut h, total);
    h.extend_from_slice(b"\r\n");
    h.extend_from_slice(f.lines());
    fr.finish(&mut h);
    out.push_back(Chunk::Owned { buf: h, pos: 0 });
    if fr.head_only {
        return fr.reply(206, 0);
    }
    for (r, p) in rs.iter().zip(part_heads) {
        push_with_body(out, p, f, r.start, r.end + 1, false);
    }
    out.push_back(Chunk::Owned { buf: tail, pos: 0 });
    fr.reply(206, total)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{entry, framing, wire, DATE};
    use super::*;
    use crate::http::request::Version;

    const HEAD: &str = "HTTP/1.1 206 Partial Content\r\nServer: ringstatic\r\n\
        Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
        Content-Type: multipart/byteranges; boundary=B0\r\nContent-Length: 173\r\n\
        Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nETag: \"e\"\r\nAccept-Ranges: bytes\r\n";

    const BODY: &str = "\r\n--B0\r\nContent-Type: text/plain; charset=utf-8\r\n\
        Content-Range: bytes 7-8/10\r\n\r\n78\
        \r\n--B0\r\nContent-Type: text/plain; charset=utf-8\r\n\
        Content-Range: bytes 0-0/10\r\n\r\n0\
        \r\n--B0--\r\n";

    #[test]
    fn parts_in_request_order() {
        let rs = [
            ByteRange { start: 7, end: 8 },
            ByteRange { start: 0, end: 0 },
        ];
        let f = entry(b"/a.txt", b"0123456789", true);
        let mut out = VecDeque::new();
        let fr = framing(true, Version::Http11, false);
        assert_eq!(BODY.len(), 173);
        assert_eq!(
            write_with(&f, &rs, fr, DATE, b"B0", &mut out),
            fr.reply(206, 173)
        );
        assert_eq!(wire(&out), format!("{HEAD}\r\n{BODY}"));

        // From an fd: the same bytes, the parts as file ranges; a HEAD: the head alone.
        let f = entry(b"/a.txt", b"0123456789", false);
        out.clear();
        write_with(&f, &rs, fr, DATE, b"B0", &mut out);
        assert_eq!(
            wire(&out),
            format!(
                "{HEAD}\r\n{}",
                BODY.replace("78", "<file 7..9>")
                    .replace("\r\n0\r\n", "\r\n<file 0..1>\r\n")
            )
        );
        out.clear();
        let fr = framing(false, Version::Http11, true);
        assert_eq!(
            write_with(&f, &rs, fr, DATE, b"B0", &mut out),
            fr.reply(206, 0)
        );
        assert_eq!(wire(&out), format!("{HEAD}Connection: close\r\n\r\n"));
    }

    #[test]
    fn each_response_has_its_own_boundary() {
        let rs = [
            ByteRange { start: 0, end: 1 },
            ByteRange { start: 3, end: 4 },
        ];
        let f = entry(b"/a.txt", b"0123456789", true);
        let fr = framing(true, Version::Http11, false);
        let mut boundaries = Boundaries::new();
        let mut seen = Vec::new();
        for _ in 0..3 {
            let mut out = VecDeque::new();
            write(&f, &rs, fr, DATE, &mut boundaries, &mut out);
            let w = wire(&out);
            let at = w.find("boundary=").unwrap() + "boundary=".len();
            let b = w[at..at + 32].to_string();
            assert_eq!(w.matches(&format!("--{b}\r\n")).count(), 2);
            assert!(w.ends_with(&format!("\r\n--{b}--\r\n")));
            assert!(!seen.contains(&b));
            seen.push(b);
        }
    }
}
