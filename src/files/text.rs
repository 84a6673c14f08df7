//! An entry's text: the bytes every response for one cache entry shares, held in one
//! exactly-sized allocation per entry.
//!
//! A worker caches tens of thousands of entries, and an entry's text is most of what it costs:
//! its prebuilt head, its header lines and its ETag. They overlap (the lines are part of the head,
//! the ETag part of the lines), so they are kept as windows of one buffer, and what is not found
//! inside the head is appended to it; nothing is held twice, and the buffer is exactly as long
//! as its bytes. The head holds no status line, Server or Date: those are the same for every
//! `200` and are shared by the whole worker (`worker::clock`), sent as the iovec before it.

use std::rc::Rc;

use super::body::Chunk;

pub struct Text {
    bytes: Rc<[u8]>,
    /// `bytes[..head_len]` is the prebuilt head (empty for an entry sent from its fd).
    head_len: u32,
    /// `bytes[lines_at..lines_end]` are the header lines (`Prepared::lines`); the lines an error
    /// page sends begin at `meta_at`.
    lines_at: u32,
    meta_at: u32,
    lines_end: u32,
    /// `bytes[etag_at..etag_at + etag_len]` is the ETag (ours are at most 60 bytes).
    etag_at: u32,
    etag_len: u8,
}

/// An offset into a text. A text is a few hundred bytes (a head's lines come from the
/// configuration and the file's facts); one past 4 GiB saturates, and then the windows it
/// bounds read as empty rather than wrong.
fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Where `needle` is in `hay`, if it is (empty needles are found nowhere: they need no window).
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Text {
    /// The text of an entry with this `head` (empty if it has none), header `lines` (of which
    /// `lines[meta_at..]` are what an error page sends) and `etag`.
    pub fn new(head: &[u8], lines: &[u8], meta_at: usize, etag: &[u8]) -> Text {
        debug_assert!(etag.len() <= u8::MAX as usize, "an ETag of ours is short");
        let mut bytes = Vec::with_capacity(head.len() + lines.len() + etag.len());
        bytes.extend_from_slice(head);
        let lines_at = match find(head, lines) {
            Some(at) => at,
            None => {
                bytes.extend_from_slice(lines);
                head.len()
            }
        };
        let etag_at = match find(&bytes, etag) {
            Some(at) => at,
            None => {
                bytes.extend_from_slice(etag);
                bytes.len() - etag.len()
            }
        };
        Text {
            head_len: offset(head.len()),
            lines_at: offset(lines_at),
            meta_at: offset(lines_at + meta_at.min(lines.len())),
            lines_end: offset(lines_at + lines.len()),
            etag_at: offset(etag_at),
            etag_len: etag.len().try_into().unwrap_or(0),
            // Exactly as long as its bytes (a `Vec`'s spare capacity would stay with the entry).
            bytes: Rc::from(bytes),
        }
    }

    fn window(&self, at: u32, end: u32) -> &[u8] {
        self.bytes
            .get(at as usize..end as usize)
            .unwrap_or_default()
    }

    /// The prebuilt head as a chunk to send, if there is one.
    pub fn head(&self) -> Option<Chunk> {
        let end = (self.head_len as usize).min(self.bytes.len());
        (end > 0).then(|| Chunk::Shared {
            buf: self.bytes.clone(),
            pos: 0,
            end,
        })
    }

    /// The header lines every 2xx and 304 for the entry carries.
    pub fn lines(&self) -> &[u8] {
        self.window(self.lines_at, self.lines_end)
    }

    /// The lines about the representation itself, which an error page sends.
    pub fn meta_lines(&self) -> &[u8] {
        self.window(self.meta_at, self.lines_end)
    }

    pub fn etag(&self) -> &[u8] {
        let end = self.etag_at.saturating_add(self.etag_len as u32);
        self.window(self.etag_at, end)
    }

    /// The bytes held.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_of_one_buffer_nothing_twice() {
        let head = b"Content-Length: 5\r\nETag: \"e\"\r\nX: y\r\n\r\n";
        let lines = b"ETag: \"e\"\r\nX: y\r\n";
        let t = Text::new(head, lines, 11, b"\"e\"");
        assert_eq!(t.len(), head.len(), "the lines and the ETag are the head's");
        assert_eq!(t.lines(), lines);
        assert_eq!(t.meta_lines(), b"X: y\r\n");
        assert_eq!(t.etag(), b"\"e\"");
        let Some(Chunk::Shared { buf, pos: 0, end }) = t.head() else {
            panic!("a head")
        };
        assert_eq!(&buf[..end], head);

        // No head (a file sent from its fd): the lines, holding the ETag.
        let t = Text::new(b"", lines, 0, b"\"e\"");
        assert_eq!(
            (t.len(), t.lines(), t.etag()),
            (lines.len(), &lines[..], &b"\"e\""[..])
        );
        assert!(t.head().is_none());
        assert_eq!(t.meta_lines(), lines);

        // Lines the head does not hold, an ETag they do not hold: appended, once each.
        let t = Text::new(b"H\r\n\r\n", b"A: b\r\n", 99, b"\"x\"");
        assert_eq!(t.len(), 5 + 6 + 3);
        assert_eq!((t.lines(), t.etag()), (&b"A: b\r\n"[..], &b"\"x\""[..]));
        assert_eq!(t.meta_lines(), b"", "meta_at past the lines: none");
        let Some(Chunk::Shared { end, .. }) = t.head() else {
            panic!()
        };
        assert_eq!(end, 5);
    }
}
