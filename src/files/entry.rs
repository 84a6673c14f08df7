//! One cached representation of one file: the facts a response is decided from (size,
//! modification time, strong ETag, content type) and its bytes, mapped from the page cache or
//! behind an open fd.
//!
//! Nothing here writes HTTP. An entry is made once, on a cache miss, and then only read. What
//! every response for it shares (its header lines and, for a mapped file, the head of its
//! complete `200`) is made at that moment by the response layer, through the `prepare` function
//! the cache is handed: `Facts` in, `Prepared` out. So whatever depends on the entry alone (the
//! validators, a per-path header rule, later a Content-Encoding) is worked out once per entry, and a
//! hit formats nothing. That text is kept in one buffer per entry (`text::Text`).
//!
//! An entry is what a worker's cache holds tens of thousands of, so its fields are kept small:
//! 176 bytes, a 192-byte allocation with its `Rc` (see `an_entry_fits_its_size_class`).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use super::body::Chunk;
use super::open::fstat;
use super::text::Text;

/// What identifies one version of a file: if any of these change, the cached entry is stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    ctime: i64,
    /// The nanoseconds of `mtime` and `ctime` (below 10^9: they fit 32 bits, and an entry is 8
    /// bytes smaller).
    mtime_ns: u32,
    ctime_ns: u32,
}

impl Version {
    pub(super) fn of(st: &libc::stat) -> Version {
        Version {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size as u64,
            mtime: st.st_mtime,
            ctime: st.st_ctime,
            mtime_ns: st.st_mtime_nsec as u32,
            ctime_ns: st.st_ctime_nsec as u32,
        }
    }

    /// Last modification, (seconds, nanoseconds).
    pub(super) fn mtime(&self) -> (i64, i64) {
        (self.mtime, self.mtime_ns as i64)
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
    /// The normalized request path (ending in `/` for a directory's index file).
    pub path: &'a [u8],
    /// The file that answers it, as a path from the root (`/dir/index.html` for `/dir/`,
    /// `/about.html` for a clean URL `/about`); the same as `path` for most.
    pub name: &'a [u8],
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
    pub lines: Vec<u8>,
    /// Where in `lines` the validators (Last-Modified, ETag, Accept-Ranges) end and the lines
    /// about the representation itself (configured headers, a Content-Encoding) begin: an error
    /// page sends only those.
    pub meta_at: usize,
    /// For a resident entry: the head of its complete response after the status line, Server
    /// and Date (which the worker shares between all entries and sends first), placed in front
    /// of its bytes (ignored otherwise).
    pub head: Vec<u8>,
}

impl Prepared {
    /// The entry's text: the head (if its bytes are resident), the lines and the ETag, once.
    fn text(&self, resident: bool, etag: &[u8]) -> Text {
        let head: &[u8] = if resident { &self.head } else { b"" };
        Text::new(head, &self.lines, self.meta_at, etag)
    }
}

/// What a loaded file is: the identity file itself, at a path from the root (`Facts::name`), or
/// a precompressed sibling of an identity entry (`origin`).
pub(super) enum Of<'a> {
    File(Rc<[u8]>),
    SiblingOf(&'a FileEntry),
}

/// One version of one file, as the cache holds it.
pub struct FileEntry {
    pub size: u64,
    /// Last modification, whole seconds (what Last-Modified and If-Modified-Since can express).
    pub mtime: i64,
    /// The file was looked at after `mtime`'s second was over: the date names this version
    /// alone (RFC 9110 8.8.2.2), and responses carry it as Last-Modified.
    pub lm_strong: bool,
    pub content_type: &'static str,
    /// The content type is worth a content coding (`mime::is_compressible`).
    pub compressible: bool,
    /// The file beneath the root that holds the identity bytes, as a path from the root
    /// (`Facts::name`): a coded variant is named after it (`/about.html` -> `about.html.br`).
    /// Empty for a generated entry (a listing). Shared with the cache's key for the path and
    /// with the file's coded variants.
    pub name: Rc<[u8]>,
    /// The prebuilt head of a resident entry, the header lines the response layer made for it
    /// (`Prepared`) and its strong ETag (see `etag`), in one buffer.
    text: Text,
    pub body: Body,
    pub(super) version: Version,
}

pub enum Body {
    /// Small files: mapped read-only from the page cache (one copy per machine, shared by every
    /// worker), sent behind their prepared head.
    Mapped(Resident),
    /// Bytes made here (a representation compressed on the fly): in memory, behind their head.
    Memory(Resident),
    /// Large files (and small ones past the mapping bound): the open fd, sent with sendfile(2).
    Fd(Rc<OwnedFd>),
}

impl FileEntry {
    /// The entry for an open regular file: it is mapped if `map_it` (and its version is the same
    /// after mapping as before), its facts worked out, and `prepare` makes the response layer's
    /// part. A precompressed sibling is loaded with its `origin`, the identity entry of the file
    /// it was made from: it takes the original's Content-Type and Last-Modified, and an ETag of
    /// its own that names its coding.
    pub(super) fn load(
        fd: OwnedFd,
        mut st: libc::stat,
        path: &[u8],
        coding: Coding,
        map_it: bool,
        of: Of,
        prepare: impl FnOnce(&Facts) -> Prepared,
    ) -> io::Result<FileEntry> {
        let (name, origin) = match of {
            Of::File(name) => (name, None),
            Of::SiblingOf(o) => (o.name.clone(), Some(o)),
        };
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
        let etag = etag(st.st_mtime, st.st_size as u64, coding);
        // Looked at (the last fstat) before now; a change after now gets a later mtime. A
        // sibling's date is its original's, and so is whether that date is strong.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let (content_type, mtime, lm_strong) = match origin {
            Some(o) => (o.content_type, o.mtime, o.lm_strong),
            None => (
                crate::mime::content_type(&name),
                st.st_mtime,
                now > st.st_mtime,
            ),
        };
        let prepared = prepare(&Facts {
            path,
            name: &name,
            coding,
            size: st.st_size as u64,
            mtime,
            lm_strong,
            etag: &etag,
            content_type,
            resident: map.is_some(),
        });
        let text = prepared.text(map.is_some(), &etag);
        drop(prepared);
        let body = match map {
            Some(m) => Body::Mapped(Resident::new(Held::Map(Rc::new(m)), Some(fd))),
            None => Body::Fd(Rc::new(fd)),
        };
        Ok(FileEntry {
            size: st.st_size as u64,
            mtime,
            lm_strong,
            content_type,
            compressible: crate::mime::is_compressible(content_type),
            name,
            text,
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
        let mut etag = origin.etag().to_vec();
        etag.pop(); // the closing quote
        etag_end(&mut etag, coding);
        let prepared = prepare(&Facts {
            path,
            name: &origin.name,
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
            content_type: origin.content_type,
            compressible: origin.compressible,
            name: origin.name.clone(),
            text: prepared.text(true, &etag),
            body: Body::Memory(Resident::new(Held::Heap(Rc::from(bytes)), None)),
            version: origin.version,
        }
    }

    /// Whether both entries were made from the same version of the same file (device and inode
    /// included: two files can share a size and a modification second, and so an ETag).
    pub fn same_file(&self, other: &FileEntry) -> bool {
        self.version == other.version
    }

    /// An entry whose bytes were made here rather than read (a directory listing): kept in
    /// memory, valid for as long as `st` (the directory's) stays the same, and never coded (it
    /// has no file a sibling could be named after).
    pub(super) fn generated(
        bytes: Vec<u8>,
        st: &libc::stat,
        path: &[u8],
        content_type: &'static str,
        prepare: impl FnOnce(&Facts) -> Prepared,
    ) -> FileEntry {
        let mtime_ns = (st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128) as u64;
        let etag = format!("\"d{:x}-{:x}-{:x}\"", st.st_ino, bytes.len(), mtime_ns).into_bytes();
        // The directory's date is strong once its second is over (as a file's, in `load`).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let lm_strong = now > st.st_mtime;
        let prepared = prepare(&Facts {
            path,
            name: path,
            coding: Coding::Identity,
            size: bytes.len() as u64,
            mtime: st.st_mtime,
            lm_strong,
            etag: &etag,
            content_type,
            resident: true,
        });
        FileEntry {
            size: bytes.len() as u64,
            mtime: st.st_mtime,
            content_type,
            compressible: false,
            lm_strong,
            name: Rc::from(&b""[..]),
            text: prepared.text(true, &etag),
            body: Body::Memory(Resident::new(Held::Heap(Rc::from(bytes)), None)),
            version: Version::of(st),
        }
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
        let name = [
            path,
            if path.ends_with(b"/") {
                &b"index.html"[..]
            } else {
                b""
            },
        ]
        .concat();
        let prepared = prepare(&Facts {
            path,
            name: &name,
            coding: Coding::Identity,
            size: bytes.len() as u64,
            mtime,
            lm_strong: true,
            etag,
            content_type,
            resident,
        });
        let body = if resident {
            let fd = test_file(bytes);
            let m = Mapping::of(fd.as_raw_fd(), bytes.len()).unwrap();
            Body::Mapped(Resident::new(Held::Map(Rc::new(m)), Some(fd)))
        } else {
            Body::Fd(Rc::new(std::fs::File::open("/dev/null").unwrap().into()))
        };
        FileEntry {
            size: bytes.len() as u64,
            mtime,
            lm_strong: true,
            content_type,
            compressible: crate::mime::is_compressible(content_type),
            name: name.clone().into(),
            text: prepared.text(resident, etag),
            body,
            version: Version {
                dev: 0,
                ino: 0,
                size: bytes.len() as u64,
                mtime,
                ctime: mtime,
                mtime_ns: 0,
                ctime_ns: 0,
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

/// The Content-Type of a path in tests, by the name of the file it opens (`dir/` opens
/// `dir/index.html`).
#[cfg(test)]
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
    pub fn lines(&self) -> &[u8] {
        self.text.lines()
    }

    /// The lines an error page sent with this entry carries (`Prepared::meta_at`).
    pub fn meta_lines(&self) -> &[u8] {
        self.text.meta_lines()
    }

    /// The strong validator, quoted: see `etag`.
    pub fn etag(&self) -> &[u8] {
        self.text.etag()
    }

    /// A resident entry's prebuilt head, the part of its complete `200` for HTTP/1.1 keep-alive
    /// that follows the status line, Server and Date, as a chunk to send.
    pub fn head(&self) -> Option<Chunk> {
        match self.body {
            Body::Mapped(_) | Body::Memory(_) => self.text.head(),
            Body::Fd(_) => None,
        }
    }

    /// The private bytes the entry holds for its responses: a resident entry's text and bytes
    /// made here (a mapping's bytes are the page cache's). An entry sent from its fd counts
    /// nothing: the cache bounds those by number.
    pub fn private_bytes(&self) -> usize {
        match &self.body {
            Body::Mapped(r) | Body::Memory(r) => self.text.len() + r.heap_len(),
            Body::Fd(_) => 0,
        }
    }

    /// The text's length, for tests: its lines and ETag are inside its head when it has one.
    #[cfg(test)]
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// None for bytes made here (a representation compressed on the fly holds no file).
    pub fn fd(&self) -> Option<RawFd> {
        match &self.body {
            Body::Mapped(r) | Body::Memory(r) => r.fd.as_ref().map(|fd| fd.as_raw_fd()),
            Body::Fd(fd) => Some(fd.as_raw_fd()),
        }
    }

    /// Whether the file this entry holds open was deleted or changed since it was opened (an
    /// entry holding no file never is: its sources revalidate it).
    pub fn outdated(&self) -> bool {
        let Some(fd) = self.fd() else {
            return false;
        };
        match fstat(fd) {
            Ok(st) => st.st_nlink == 0 || Version::of(&st) != self.version,
            Err(_) => true,
        }
    }
}

/// Where a resident entry's bytes are: a read-only mapping of its file, or memory of ours (bytes
/// compressed on the fly).
pub enum Held {
    Map(Rc<Mapping>),
    Heap(Rc<[u8]>),
}

/// A small file's bytes, mapped from the page cache (or held, for bytes made here), sent
/// behind the entry's prebuilt head, so the common response (HTTP/1.1, keep-alive, GET) is one
/// sendmsg with nothing to format and no file byte copied in user space. Other responses
/// (ranges, HEAD, HTTP/1.0, closing) format their head and send the same bytes.
pub struct Resident {
    bytes: Held,
    /// A mapped file's fd, kept open so the tick can tell a deleted file from a live one with
    /// one fstat.
    fd: Option<OwnedFd>,
}

impl Resident {
    pub fn new(bytes: Held, fd: Option<OwnedFd>) -> Resident {
        Resident { bytes, fd }
    }

    /// How many bytes the body has.
    pub fn body_len(&self) -> usize {
        match &self.bytes {
            Held::Map(m) => m.len(),
            Held::Heap(b) => b.len(),
        }
    }

    /// Bytes `pos..end` of the body (clamped to it) as a chunk to send.
    pub fn body_chunk(&self, pos: usize, end: usize) -> Chunk {
        let end = end.min(self.body_len());
        let pos = pos.min(end);
        match &self.bytes {
            Held::Map(map) => Chunk::Mapped {
                map: map.clone(),
                pos,
                end,
            },
            Held::Heap(buf) => Chunk::Shared {
                buf: buf.clone(),
                pos,
                end,
            },
        }
    }

    /// Bytes made here, which may be read (never a mapping's, see `Mapping`).
    pub fn heap_bytes(&self) -> Option<&Rc<[u8]>> {
        match &self.bytes {
            Held::Heap(b) => Some(b),
            Held::Map(_) => None,
        }
    }

    /// The body's bytes, for tests only.
    #[cfg(test)]
    pub fn bytes_for_tests(&self) -> Vec<u8> {
        match &self.bytes {
            Held::Map(m) => m.bytes_for_tests(),
            Held::Heap(b) => b.to_vec(),
        }
    }

    /// Private bytes held: bytes made here (mapped bytes are the page cache's).
    fn heap_len(&self) -> usize {
        self.heap_bytes().map_or(0, |b| b.len())
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

    /// Appends `n` bytes from `pos` to `dst`, copied by the kernel (process_vm_readv on our own
    /// process), never read here: a page beyond a truncated file's end fails the copy with
    /// EFAULT instead of raising SIGBUS. For the bytes TLS must seal in user space.
    pub fn copy_to(&self, pos: usize, n: usize, dst: &mut Vec<u8>) -> io::Result<()> {
        if !matches!(pos.checked_add(n), Some(end) if end <= self.len) {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        let start = dst.len();
        dst.reserve(n);
        let local = libc::iovec {
            // SAFETY: `reserve` made room for `n` bytes past `start`.
            iov_base: unsafe { dst.as_mut_ptr().add(start) }.cast(),
            iov_len: n,
        };
        let remote = self.iov(pos, pos + n);
        // SAFETY: the kernel writes at most `n` bytes into the reserved spare capacity and reads
        // our own mapping, which this `&self` keeps mapped.
        let r = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
        if r != n as isize {
            return Err(if r < 0 {
                io::Error::last_os_error()
            } else {
                io::ErrorKind::UnexpectedEof.into()
            });
        }
        // SAFETY: the kernel initialised exactly these `n` bytes.
        unsafe { dst.set_len(start + n) };
        Ok(())
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
    fn etag_is_mtime_and_size_in_hex() {
        assert_eq!(etag(784111777, 500, Coding::Identity), b"\"2ebc98a1-1f4\"");
        assert_eq!(etag(0, 0, Coding::Identity), b"\"0-0\"");
        assert_eq!(etag(784111777, 500, Coding::Br), b"\"2ebc98a1-1f4-br\"");
    }

    #[test]
    fn an_entry_fits_its_size_class() {
        // A worker holds tens of thousands of entries, each in an `Rc` (16 bytes of counts in
        // front): 176 bytes make a 192-byte allocation, a size class of the allocator's; one
        // more field would cost the next class, 32 bytes more per entry.
        assert!(
            std::mem::size_of::<FileEntry>() <= 176,
            "FileEntry is {} bytes",
            std::mem::size_of::<FileEntry>()
        );
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
