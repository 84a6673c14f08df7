//! Writing response heads: the status line with Server and Date, a file's lines (validators and
//! entity lines), and the end of the head with the Connection header each version needs. Every
//! head the server sends is put together from these, the prebuilt `200` of a file kept in memory
//! included, so all of them say exactly the same thing.

use super::date::format_http_date;
use super::request::Version;
use super::status::reason;
use super::token::push_u64;

/// `HTTP/1.1 CODE REASON`, `Server`, `Date`. Returns where the Date value starts, so a prebuilt
/// head can have it patched later.
pub fn status_line_into(h: &mut Vec<u8>, code: u16, date: &[u8]) -> usize {
    h.extend_from_slice(b"HTTP/1.1 ");
    push_u64(h, code as u64);
    h.push(b' ');
    h.extend_from_slice(reason(code).as_bytes());
    h.extend_from_slice(b"\r\nServer: ringstatic\r\nDate: ");
    let date_at = h.len();
    h.extend_from_slice(date);
    h.extend_from_slice(b"\r\n");
    date_at
}

/// `Last-Modified`, `ETag` and `Accept-Ranges`: what every 2xx and 304 for a file says about it.
pub fn file_lines(h: &mut Vec<u8>, mtime: Option<i64>, etag: &[u8]) {
    if let Some(mtime) = mtime {
        h.extend_from_slice(b"Last-Modified: ");
        h.extend_from_slice(&format_http_date(mtime));
        h.extend_from_slice(b"\r\n");
    }
    h.extend_from_slice(b"ETag: ");
    h.extend_from_slice(etag);
    h.extend_from_slice(b"\r\nAccept-Ranges: bytes\r\n");
}

/// One `Name: value` line.
pub fn header_line(h: &mut Vec<u8>, name: &str, value: &str) {
    h.extend_from_slice(name.as_bytes());
    h.extend_from_slice(b": ");
    h.extend_from_slice(value.as_bytes());
    h.extend_from_slice(b"\r\n");
}

/// `Content-Type`, `Content-Length`, then the entry's own lines (`file_lines` and any
/// configured ones, already CRLF-terminated).
pub fn entity_lines(h: &mut Vec<u8>, content_type: &str, lines: &[u8], len: u64) {
    h.extend_from_slice(b"Content-Type: ");
    h.extend_from_slice(content_type.as_bytes());
    h.extend_from_slice(b"\r\nContent-Length: ");
    push_u64(h, len);
    h.extend_from_slice(b"\r\n");
    h.extend_from_slice(lines);
}

/// The Connection header the response needs (none for HTTP/1.1 keep-alive), and the blank line.
pub fn finish_head(h: &mut Vec<u8>, keep: bool, version: Version) {
    if !keep {
        h.extend_from_slice(b"Connection: close\r\n");
    } else if version == Version::Http10 {
        h.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    h.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_head() {
        let mut h = Vec::new();
        let at = status_line_into(&mut h, 200, b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&h[at..at + 29], b"Sun, 06 Nov 1994 08:49:37 GMT");
        entity_lines(&mut h, "text/plain", b"ETag: \"x\"\r\n", 5);
        finish_head(&mut h, false, Version::Http11);
        assert_eq!(
            String::from_utf8(h).unwrap(),
            "HTTP/1.1 200 OK\r\nServer: ringstatic\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/plain\r\nContent-Length: 5\r\nETag: \"x\"\r\nConnection: close\r\n\r\n"
        );
        let mut h = Vec::new();
        finish_head(&mut h, true, Version::Http10);
        assert_eq!(h, b"Connection: keep-alive\r\n\r\n");
    }

    #[test]
    fn a_files_lines() {
        let mut h = Vec::new();
        file_lines(&mut h, Some(784111777), b"\"1-2-3\"");
        header_line(&mut h, "Cache-Control", "max-age=60");
        assert_eq!(
            h,
            b"Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nETag: \"1-2-3\"\r\n\
              Accept-Ranges: bytes\r\nCache-Control: max-age=60\r\n"
        );
    }
}
