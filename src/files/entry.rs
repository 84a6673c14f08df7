//! One cached representation of one file: the facts a response is decided from (size,
//! modification time, strong ETag, content type) and its bytes, mapped from the page cache or
//! behind an open fd.
//!
//! Nothing here writes HTTP. An entry is made once, on a cache miss, and then only read. What
//! every response for it shares (its header lines and, for a mapped file, the head of its
//! complete `200`) is made at that moment by the response layer, through the `prepare` function
//! the cache is handed: `Facts` in, `Prepared` out. So whatever depends on the entry alone (the
//! validators, a per-path header rule, later a Content-Encoding) is worked out once per entry, and a
//! hit formats nothing.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use super::open::fstat;
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
}

/// Which representation of a path an entry holds; part of the cache key. Only the file's own
/// bytes today. A precompressed sibling (`.br`, `.zst`, `.gz`) would be one more variant: an entry
/// of its own, with its own size, ETag and bytes, and a Content-Encoding line from `prepare`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Coding {
    Identity,
}

impl Coding {
    /// How many codings there are (the cache keeps one map for each).
    pub const COUNT: usize = 1;

    pub fn index(self) -> usize {
        self as usize
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
    /// Strong validator, quoted: "inode-size-mtime_ns" in hex.
    pub etag: Box<[u8]>,
    pub content_type: &'static str,
    /// The header lines the response layer made for this entry (`Prepared::lines`), unless they
    /// are found inside a mapped entry's head (then empty: `lines()` reads them from there, and
    /// an entry does not hold them twice).
    lines: Box<[u8]>,
    pub body: Body,
    pub(super) version: Version,
}

pub enum Body {
    /// Small files: mapped read-only from the page cache (one copy per machine, shared by every
    /// worker), sent behind their prepared head.
    Mapped(Resident),
    /// Large files (and small ones past the mapping bound): the open fd, sent with sendfile(2).
    Fd(Rc<OwnedFd>),
}

impl FileEntry {
    /// The entry for an open regular file: it is mapped if `map_it` (and its version is the same
    /// after mapping as before), its facts worked out, and `prepare` makes the response layer's
    /// part.
    pub(super) fn load(
        fd: OwnedFd,
        mut st: libc::stat,
        path: &[u8],
        coding: Coding,
        map_it: bool,
        prepare: impl FnOnce(&Facts) -> Prepared,
    ) -> io::Result<FileEntry> {
        let mut map = None;
        if map_it {
            // Map, then check the file's version did not change meanwhile, so the facts describe
            // the bytes mapped. A file rewritten in place continuously gets a few tries, then is
            // streamed from its fd (sendfile stops at the end it finds). A failed mmap (out of
            // address space or mappings) falls back to the fd too.
            for _ in 0..3 {
                let Ok(m) = Mapping::of(fd.as_raw_fd(), st.st_size as usize) else {
                    break;
                };
                let after = fstat(fd.as_raw_fd())?;
                if Version::of(&after) == Version::of(&st) {
                    map = Some(m);
                    break;
                }
                st = after;
            }
        }
        let mtime_ns = (st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128) as u64;
        let etag = format!("\"{:x}-{:x}-{:x}\"", st.st_ino, st.st_size, mtime_ns).into_bytes();
        let content_type = content_type(path);
        let prepared = prepare(&Facts {
            path,
            coding,
            size: st.st_size as u64,
            mtime: st.st_mtime,
            etag: &etag,
            content_type,
            resident: map.is_some(),
        });
        let mut lines = prepared.lines;
        let body = match map {
            Some(m) => {
                let r = Resident::new(prepared.head, prepared.date_at, m, fd);
                if r.find_lines(&lines) {
                    lines = Box::default();
                }
                Body::Mapped(r)
            }
            None => Body::Fd(Rc::new(fd)),
        };
        Ok(FileEntry {
            size: st.st_size as u64,
            mtime: st.st_mtime,
            etag: etag.into(),
            content_type,
            lines,
            body,
            version: Version::of(&st),
        })
    }

    /// An entry for tests elsewhere: `bytes` (mapped from a temporary file if `resident`, else
    /// from an fd of /dev/null, which is never read here), made the way `load` makes one.
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
            etag,
            content_type,
            resident,
        });
        let body = if resident {
            let fd = test_file(bytes);
            let m = Mapping::of(fd.as_raw_fd(), bytes.len()).unwrap();
            Body::Mapped(Resident::new(prepared.head, prepared.date_at, m, fd))
        } else {
            Body::Fd(Rc::new(std::fs::File::open("/dev/null").unwrap().into()))
        };
        FileEntry {
            size: bytes.len() as u64,
            mtime,
            etag: etag.into(),
            content_type,
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

/// The Content-Type of a path, by the name of the file it opens (`dir/` opens `dir/index.html`).
fn content_type(path: &[u8]) -> &'static str {
    if path.ends_with(b"/") {
        crate::mime::content_type(&[path, b"index.html"].concat())
    } else {
        crate::mime::content_type(path)
    }
}

/// The descriptor the cache keeps for an entry: a mapped file's or a streamed file's. The tick
/// asks it whether the file was deleted meanwhile (`st_nlink == 0`).
impl FileEntry {
    /// The header lines every 2xx and 304 for the entry carries (`Prepared::lines`).
    pub fn lines(&self) -> Lines<'_> {
        match &self.body {
            Body::Mapped(r) if self.lines.is_empty() => {
                if let Some((at, len)) = r.lines_at.get() {
                    return Lines::InHead(r.head.borrow().clone(), at, len);
                }
                Lines::Own(&self.lines)
            }
            _ => Lines::Own(&self.lines),
        }
    }

    pub fn fd(&self) -> RawFd {
        match &self.body {
            Body::Mapped(r) => r.fd.as_raw_fd(),
            Body::Fd(fd) => fd.as_raw_fd(),
        }
    }

    /// Whether the file this entry holds was deleted or changed since it was opened.
    pub fn outdated(&self) -> bool {
        match fstat(self.fd()) {
            Ok(st) => st.st_nlink == 0 || Version::of(&st) != self.version,
            Err(_) => true,
        }
    }
}

/// An entry's header lines: its own, or a window of its mapped head (which holds them already).
pub enum Lines<'a> {
    Own(&'a [u8]),
    InHead(Rc<[u8]>, usize, usize),
}

impl std::ops::Deref for Lines<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Lines::Own(b) => b,
            Lines::InHead(h, at, len) => &h[*at..*at + *len],
        }
    }
}

/// A small file's response: the head `prepare` made for it, in a buffer of its own, and the
/// file's bytes mapped from the page cache, so the common response (HTTP/1.1, keep-alive, GET) is
/// one sendmsg of two iovecs with nothing to format and no file byte copied in user space. Only
/// the head's Date changes: it is patched in place once a second (or the head copied, if a send in
/// flight still holds it). Other responses (ranges, HEAD, HTTP/1.0, closing) use `map()`.
pub struct Resident {
    head: RefCell<Rc<[u8]>>,
    /// Where the 29 bytes of the Date value are, if the head has one.
    date_at: Option<usize>,
    /// The second the Date in `head` says.
    date_secs: Cell<i64>,
    /// Where the entry's header lines are inside `head`, if they are.
    lines_at: Cell<Option<(usize, usize)>>,
    map: Rc<Mapping>,
    /// Kept open so the tick can tell a deleted file from a live one with one fstat.
    fd: OwnedFd,
}

impl Resident {
    pub fn new(head: Vec<u8>, date_at: Option<usize>, map: Mapping, fd: OwnedFd) -> Resident {
        let date_at = date_at.filter(|&at| at + HTTP_DATE_LEN <= head.len());
        Resident {
            head: RefCell::new(Rc::from(head)),
            date_at,
            date_secs: Cell::new(i64::MIN),
            lines_at: Cell::new(None),
            map: Rc::new(map),
            fd,
        }
    }

    /// Looks for `lines` inside the head (outside its Date); remembers where if found.
    fn find_lines(&self, lines: &[u8]) -> bool {
        let head = self.head.borrow();
        let date = self.date_at.map(|at| at..at + HTTP_DATE_LEN);
        let found = (!lines.is_empty())
            .then(|| head.windows(lines.len()).position(|w| w == lines))
            .flatten()
            .filter(|&at| match &date {
                Some(d) => at + lines.len() <= d.start || at >= d.end,
                None => true,
            });
        self.lines_at.set(found.map(|at| (at, lines.len())));
        found.is_some()
    }

    /// The head with today's Date.
    pub fn response(&self, date_secs: i64, date: &[u8]) -> Rc<[u8]> {
        if self.date_secs.get() != date_secs && date.len() == HTTP_DATE_LEN {
            if let Some(at) = self.date_at {
                let mut b = self.head.borrow_mut();
                let range = at..at + HTTP_DATE_LEN;
                match Rc::get_mut(&mut b) {
                    Some(bytes) => bytes[range].copy_from_slice(date),
                    None => {
                        // A send in flight still reads the old head: it keeps it; we take a copy.
                        let mut v = b.to_vec();
                        v[range].copy_from_slice(date);
                        *b = Rc::from(v);
                    }
                }
            }
            self.date_secs.set(date_secs);
        }
        self.head.borrow().clone()
    }

    /// The file's bytes, mapped.
    pub fn map(&self) -> &Rc<Mapping> {
        &self.map
    }

    /// Private bytes held: the head (the mapped bytes are the page cache's).
    pub fn len(&self) -> usize {
        self.head.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A file mapped read-only and shared (`MAP_SHARED`, `PROT_READ`): its pages are the page
/// cache's, one copy per machine whatever the number of workers. The bytes are never read in
/// user space: they are only handed to the kernel as an iovec. A file truncated while mapped
/// would raise SIGBUS on a user-space read; the kernel's copy in sendmsg gets EFAULT instead,
/// which ends that one response (the connection closes; the worker goes on).
pub struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    /// Maps the first `len` bytes of `fd`; an empty file maps nothing.
    pub fn of(fd: RawFd, len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Ok(Mapping {
                ptr: std::ptr::null_mut(),
                len: 0,
            });
        }
        // MAP_POPULATE: the page-table entries are made now, in one go, for pages the page cache
        // holds (at most 16 for a 64 KiB file), rather than by one fault each on the first sends.
        // SAFETY: a fresh read-only shared mapping of an open fd; the kernel picks the address,
        // so nothing of ours is replaced; the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { ptr, len })
    }

    /// The address of byte `pos` and how many bytes follow it up to `end`, for an iovec.
    pub fn iov(&self, pos: usize, end: usize) -> libc::iovec {
        let end = end.min(self.len);
        let pos = pos.min(end);
        libc::iovec {
            // SAFETY: `pos <= len`, so the pointer stays within (or one past) the mapping.
            iov_base: unsafe { (self.ptr as *mut u8).add(pos) } as *mut libc::c_void,
            iov_len: end - pos,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes, for tests only (a server never reads mapped bytes itself).
    #[cfg(test)]
    pub fn bytes_for_tests(&self) -> Vec<u8> {
        if self.len == 0 {
            return Vec::new();
        }
        // SAFETY: tests map files nobody truncates while they read them.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }.to_vec()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmaps exactly what `of` mapped; the last `Rc` is gone, so no iovec of a
            // send in flight points at it any more.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}

/// A temporary file holding `bytes`, already unlinked, for tests' mapped entries.
#[cfg(test)]
pub(crate) fn test_file(bytes: &[u8]) -> OwnedFd {
    use std::io::Write;
    let p = std::env::temp_dir().join(format!(
        "ringstatic-map-{}-{:?}-{}",
        std::process::id(),
        std::thread::current().id(),
        bytes.len()
    ));
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(bytes).unwrap();
    let f = std::fs::File::open(&p).unwrap();
    std::fs::remove_file(&p).unwrap();
    f.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_patches_only_its_date_window() {
        let date = b"Sun, 06 Nov 1994 08:49:37 GMT";
        let mut head = b"Date: ".to_vec();
        head.extend_from_slice(&[b' '; HTTP_DATE_LEN]);
        head.extend_from_slice(b"\r\n\r\n");
        let fd = test_file(b"body");
        let map = Mapping::of(fd.as_raw_fd(), 4).unwrap();
        let m = Resident::new(head, Some(6), map, fd);
        let h = m.response(1, date);
        assert_eq!(&h[..], b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n");
        assert_eq!(m.map().bytes_for_tests(), b"body");
        // A send in flight keeps its head; the next second gets a fresh copy.
        let held = m.response(2, b"Sun, 06 Nov 1994 08:49:38 GMT");
        let next = m.response(3, b"Sun, 06 Nov 1994 08:49:39 GMT");
        assert!(String::from_utf8_lossy(&held).contains("08:49:38"));
        assert!(String::from_utf8_lossy(&next).contains("08:49:39"));
        // A window that does not fit in the head: nothing is patched.
        let fd = test_file(b"x");
        let map = Mapping::of(fd.as_raw_fd(), 1).unwrap();
        let m = Resident::new(b"Date: x\r\n".to_vec(), Some(6), map, fd);
        assert_eq!(&m.response(1, date)[..], b"Date: x\r\n");
    }

    #[test]
    fn mapping_iovecs_stay_inside() {
        let fd = test_file(b"0123456789");
        let m = Mapping::of(fd.as_raw_fd(), 10).unwrap();
        assert_eq!(m.iov(2, 5).iov_len, 3);
        assert_eq!(m.iov(2, 50).iov_len, 8);
        assert_eq!(m.iov(20, 50).iov_len, 0);
        let empty = Mapping::of(fd.as_raw_fd(), 0).unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.iov(0, 0).iov_len, 0);
    }
}
