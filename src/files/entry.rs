//! One cached representation of one file: the facts a response is decided from (size,
//! modification time, strong ETag, content type) and its bytes, in memory or behind an open fd.
//!
//! Nothing here writes HTTP. An entry is made once, on a cache miss, and then only read. What
//! every response for it shares (its header lines and, for a file kept in memory, the head of its
//! complete `200`) is made at that moment by the response layer, through the `prepare` function
//! the cache is handed: `Facts` in, `Prepared` out. So whatever depends on the entry alone (the
//! validators, a per-path header rule, later a Content-Encoding) is worked out once per entry, and a
//! hit formats nothing.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;

use super::open::{fstat, read_all};
use crate::http::date::HTTP_DATE_LEN;

/// What identifies one version of a file: if any of these change, the cached entry is stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Version {
    pub(super) fn of(st: &libc::stat) -> Version {
        Version {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size as u64,
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
        }
    }

    /// Last modification, (seconds, nanoseconds).
    pub(super) fn mtime(&self) -> (i64, i64) {
        self.mtime
    }
}

/// Which representation of a path an entry holds; part of the cache key. `Identity` is the
/// file's own bytes; each content coding is an entry of its own, with its own size, ETag and
/// bytes, made from a precompressed sibling (`X.br`, `X.zst`, `X.gz`) or by compressing the file
/// (`files::variant`), and `prepare` gives it its Content-Encoding line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Coding {
    Identity,
    Br,
    Zstd,
    Gzip,
}

impl Coding {
    /// How many codings there are (the cache keeps one map for each).
    pub const COUNT: usize = 4;

    /// The content codings, in the server's order of preference among equal client weights:
    /// brotli makes the smallest text, zstd decodes fastest, gzip is understood everywhere.
    pub const CODED: [Coding; 3] = [Coding::Br, Coding::Zstd, Coding::Gzip];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The Content-Encoding token.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Identity => "identity",
            Coding::Br => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    /// The precompressed sibling's suffix (`X` -> `X.br`).
    pub fn suffix(self) -> &'static str {
        match self {
            Coding::Identity => "",
            Coding::Br => ".br",
            Coding::Zstd => ".zst",
            Coding::Gzip => ".gz",
        }
    }
}

/// What `prepare` may depend on: the entry's key and the facts of the file version just opened.
pub struct Facts<'a> {
    /// The normalized request path (ending in `/` for a directory's index.html).
    pub path: &'a [u8],
    pub coding: Coding,
    pub size: u64,
    /// Last modification, whole seconds.
    pub mtime: i64,
    /// `mtime` is a strong validator: the file was looked at after its second was over, so no
    /// other version can have the same date. Otherwise no Last-Modified is sent for it.
    pub lm_strong: bool,
    /// The strong ETag, quoted.
    pub etag: &'a [u8],
    pub content_type: &'static str,
    /// The bytes are kept in memory, behind `Prepared::head`.
    pub resident: bool,
}

/// What the response layer makes for a new entry, once.
#[derive(Default)]
pub struct Prepared {
    /// Header lines every 2xx and 304 for the entry carries, CRLF-terminated (kept as
    /// `FileEntry::lines`).
    pub lines: Box<[u8]>,
    /// For a resident entry: the head of its complete response, placed in front of its bytes
    /// (ignored otherwise).
    pub head: Vec<u8>,
    /// Where in `head` the 29 bytes of the Date value are, refreshed once a second.
    pub date_at: Option<usize>,
}

/// One version of one file, as the cache holds it.
pub struct FileEntry {
    pub size: u64,
    /// Last modification, whole seconds (what Last-Modified and If-Modified-Since can express).
    pub mtime: i64,
    /// The file was looked at after `mtime`'s second was over: the date names this version
    /// alone (RFC 9110 8.8.2.2), and responses carry it as Last-Modified.
    pub lm_strong: bool,
    /// Strong validator, quoted: see `etag`.
    pub etag: Box<[u8]>,
    pub content_type: &'static str,
    /// The content type is worth a content coding (`mime::is_compressible`).
    pub compressible: bool,
    /// The header lines the response layer made for this entry (`Prepared::lines`).
    pub lines: Box<[u8]>,
    pub body: Body,
    pub(super) version: Version,
}

pub enum Body {
    /// Small files: the bytes in memory, behind their prepared head (the fd is closed after
    /// reading).
    Memory(Resident),
    /// Large files: the open fd, sent with sendfile(2).
    Fd(Rc<OwnedFd>),
}

impl FileEntry {
    /// The entry for an open regular file: its bytes are read if `keep_bytes` (and stay the same
    /// while being read), its facts worked out, and `prepare` makes the response layer's part.
    /// A precompressed sibling is loaded with its `origin`, the identity entry of the file it was
    /// made from: it takes the original's Content-Type and Last-Modified, and an ETag of its own
    /// that names its coding.
    pub(super) fn load(
        fd: OwnedFd,
        mut st: libc::stat,
        path: &[u8],
        coding: Coding,
        keep_bytes: bool,
        origin: Option<&FileEntry>,
        prepare: impl FnOnce(&Facts) -> Prepared,
    ) -> io::Result<FileEntry> {
        let mut bytes = None;
        if keep_bytes {
            // Read, then check the file did not change while we read, so a response never mixes
            // two versions. A file rewritten in place continuously gets a few tries, then is
            // streamed from its fd (sendfile stops at the end it finds).
            for _ in 0..3 {
                let b = match read_all(fd.as_raw_fd(), st.st_size as usize) {
                    Ok(b) => b,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        st = fstat(fd.as_raw_fd())?;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let after = fstat(fd.as_raw_fd())?;
                if Version::of(&after) == Version::of(&st) {
                    bytes = Some(b);
                    break;
                }
                st = after;
            }
        }
        let etag = etag(st.st_mtime, st.st_size as u64, coding);
        // Looked at (the last fstat) before now; a change after now gets a later mtime. A
        // sibling's date is its original's, and so is whether that date is strong.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let (content_type, mtime, lm_strong) = match origin {
            Some(o) => (o.content_type, o.mtime, o.lm_strong),
            None => (content_type(path), st.st_mtime, now > st.st_mtime),
        };
        let prepared = prepare(&Facts {
            path,
            coding,
            size: st.st_size as u64,
            mtime,
            lm_strong,
            etag: &etag,
            content_type,
            resident: bytes.is_some(),
        });
        let body = match bytes {
            Some(b) => Body::Memory(Resident::new(prepared.head, prepared.date_at, &b)),
            None => Body::Fd(Rc::new(fd)),
        };
        Ok(FileEntry {
            size: st.st_size as u64,
            mtime,
            lm_strong,
            etag: etag.into(),
            content_type,
            compressible: crate::mime::is_compressible(content_type),
            lines: prepared.lines,
            body,
            version: Version::of(&st),
        })
    }

    /// The entry of `origin` compressed into `coding` (`bytes`), kept in memory: the original's
    /// facts, with its ETag suffixed by the coding, so each representation has its own validator.
    pub(super) fn compressed(
        bytes: &[u8],
        path: &[u8],
        coding: Coding,
        origin: &FileEntry,
        prepare: impl FnOnce(&Facts) -> Prepared,
    ) -> FileEntry {
        let mut etag = origin.etag.to_vec();
        etag.pop(); // the closing quote
        etag_end(&mut etag, coding);
        let prepared = prepare(&Facts {
            path,
            coding,
            size: bytes.len() as u64,
            mtime: origin.mtime,
            lm_strong: origin.lm_strong,
            etag: &etag,
            content_type: origin.content_type,
            resident: true,
        });
        FileEntry {
            size: bytes.len() as u64,
            mtime: origin.mtime,
            lm_strong: origin.lm_strong,
            etag: etag.into(),
            content_type: origin.content_type,
            compressible: origin.compressible,
            lines: prepared.lines,
            body: Body::Memory(Resident::new(prepared.head, prepared.date_at, bytes)),
            version: origin.version,
        }
    }

    /// An entry for tests elsewhere: `bytes` (in memory if `resident`, else from an fd of
    /// /dev/null, which is never read here), made the way `load` makes one.
    #[cfg(test)]
    pub(crate) fn for_tests(
        path: &[u8],
        bytes: &[u8],
        mtime: i64,
        etag: &[u8],
        resident: bool,
        prepare: impl FnOnce(&Facts) -> Prepared,
    ) -> FileEntry {
        let content_type = content_type(path);
        let prepared = prepare(&Facts {
            path,
            coding: Coding::Identity,
            size: bytes.len() as u64,
            mtime,
            lm_strong: true,
            etag,
            content_type,
            resident,
        });
        let body = if resident {
            Body::Memory(Resident::new(prepared.head, prepared.date_at, bytes))
        } else {
            Body::Fd(Rc::new(std::fs::File::open("/dev/null").unwrap().into()))
        };
        FileEntry {
            size: bytes.len() as u64,
            mtime,
            lm_strong: true,
            etag: etag.into(),
            content_type,
            compressible: crate::mime::is_compressible(content_type),
            lines: prepared.lines,
            body,
            version: Version {
                dev: 0,
                ino: 0,
                size: bytes.len() as u64,
                mtime: (mtime, 0),
                ctime: (mtime, 0),
            },
        }
    }
}

/// Ends an unterminated quoted ETag: `-br` (the coding's token) for a coded representation, so
/// the validators of a file's representations never match each other, then the closing quote.
fn etag_end(etag: &mut Vec<u8>, coding: Coding) {
    if coding != Coding::Identity {
        etag.push(b'-');
        etag.extend_from_slice(coding.token().as_bytes());
    }
    etag.push(b'"');
}

/// The strong ETag of a file version: nginx's format, the modification time in whole seconds
/// and the size, both in lowercase hex (`"65a1b2c3-1f4"`), then the coding for a coded
/// representation read from a precompressed sibling (`"65a1b2c4-9a-br"`: the sibling's own time
/// and size). Only what survives a copy goes in (`cp -a`, `rsync -a`, an image layer, a second
/// backend synced from the same source), never the inode or device, so every copy of a file
/// answers with the same validator and a revalidation against any backend can end in a 304; and
/// a site moved between nginx and ringstatic keeps its validators. Like Last-Modified, it cannot
/// tell apart two versions of the same size written within the same second. (A representation
/// compressed here takes its original's ETag with the coding, `compressed`.)
pub fn etag(mtime_secs: i64, size: u64, coding: Coding) -> Vec<u8> {
    let mut etag = format!("\"{:x}-{size:x}", mtime_secs as u64).into_bytes();
    etag_end(&mut etag, coding);
    etag
}

/// The Content-Type of a path, by the name of the file it opens (`dir/` opens `dir/index.html`).
fn content_type(path: &[u8]) -> &'static str {
    if path.ends_with(b"/") {
        crate::mime::content_type(&[path, b"index.html"].concat())
    } else {
        crate::mime::content_type(path)
    }
}

/// A small file's bytes in one buffer behind the head `prepare` made for them, so the common
/// response (HTTP/1.1, keep-alive, GET) is one send of one slice with nothing to format. Only the
/// head's Date changes: it is patched in place once a second (or the buffer copied, if a send in
/// flight still holds it). Other responses (ranges, HEAD, HTTP/1.0, closing) use `body()`.
pub struct Resident {
    buf: RefCell<Rc<[u8]>>,
    /// Where the file's bytes start: the length of the head in front of them.
    head_len: usize,
    /// Where the 29 bytes of the Date value are, if the head has one.
    date_at: Option<usize>,
    /// The second the Date in `buf` says.
    date_secs: Cell<i64>,
}

impl Resident {
    pub fn new(head: Vec<u8>, date_at: Option<usize>, bytes: &[u8]) -> Resident {
        let head_len = head.len();
        let date_at = date_at.filter(|&at| at + HTTP_DATE_LEN <= head_len);
        let mut v = head;
        v.extend_from_slice(bytes);
        Resident {
            buf: RefCell::new(Rc::from(v)),
            head_len,
            date_at,
            date_secs: Cell::new(i64::MIN),
        }
    }

    /// The head and bytes with today's Date; `(buffer, head length)`.
    pub fn response(&self, date_secs: i64, date: &[u8]) -> (Rc<[u8]>, usize) {
        if self.date_secs.get() != date_secs && date.len() == HTTP_DATE_LEN {
            if let Some(at) = self.date_at {
                let mut b = self.buf.borrow_mut();
                let range = at..at + HTTP_DATE_LEN;
                match Rc::get_mut(&mut b) {
                    Some(bytes) => bytes[range].copy_from_slice(date),
                    None => {
                        // A send in flight still reads the old buffer: it keeps it; we take a copy.
                        let mut v = b.to_vec();
                        v[range].copy_from_slice(date);
                        *b = Rc::from(v);
                    }
                }
            }
            self.date_secs.set(date_secs);
        }
        (self.buf.borrow().clone(), self.head_len)
    }

    /// The file's bytes: `(buffer, offset of the first byte)`.
    pub fn body(&self) -> (Rc<[u8]>, usize) {
        (self.buf.borrow().clone(), self.head_len)
    }

    /// Bytes held: the head and the file's bytes.
    pub fn len(&self) -> usize {
        self.buf.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_is_mtime_and_size_in_hex() {
        assert_eq!(etag(784111777, 500, Coding::Identity), b"\"2ebc98a1-1f4\"");
        assert_eq!(etag(0, 0, Coding::Identity), b"\"0-0\"");
        assert_eq!(etag(784111777, 500, Coding::Br), b"\"2ebc98a1-1f4-br\"");
    }

    #[test]
    fn resident_patches_only_its_date_window() {
        let date = b"Sun, 06 Nov 1994 08:49:37 GMT";
        let mut head = b"Date: ".to_vec();
        head.extend_from_slice(&[b' '; HTTP_DATE_LEN]);
        head.extend_from_slice(b"\r\n\r\n");
        let m = Resident::new(head, Some(6), b"body");
        let (buf, at) = m.response(1, date);
        assert_eq!(&buf[..], b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\nbody");
        assert_eq!(&buf[at..], b"body");
        // No head, or a window that does not fit in it: the bytes are never touched.
        for (head, at) in [(Vec::new(), None), (b"Date: x\r\n".to_vec(), Some(6))] {
            let m = Resident::new(head.clone(), at, b"0123456789012345678901234567890123");
            let (buf, len) = m.response(1, date);
            assert_eq!(len, head.len());
            assert_eq!(&buf[len..], b"0123456789012345678901234567890123");
        }
    }
}
