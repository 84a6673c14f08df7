//! The per-worker open-file cache: request path -> what to answer.
//!
//! A hit costs one hash lookup; nothing is shared with other workers, so nothing is locked.
//! Entries are trusted for `--cache-valid` and then checked with one stat(2) by path: a file changed
//! in place or replaced by an atomic rename shows a new inode/size/mtime/ctime and is reopened.
//! Misses (404/403) are cached for the same time so a flood of requests for a missing file costs
//! hash lookups, not path walks. The cache is bounded by entry count and by the bytes of small-file
//! contents held in memory; the least recently used entry goes first. A file's fd lives in an `Rc`:
//! a transfer in flight holds its own reference, so eviction never closes an fd under a sendfile.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;

use super::open::{fstat, read_all, status_for_errno, Root};
use crate::http::date::{format_http_date, HTTP_DATE_LEN};
use crate::http::head::{entity_lines, finish_head, status_line_into};
use crate::http::request::Version as HttpVersion;

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
    fn of(st: &libc::stat) -> Version {
        Version {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size as u64,
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
        }
    }
}

/// One version of one regular file, with everything a response needs prepared once.
pub struct FileEntry {
    pub size: u64,
    /// Last modification, whole seconds (what Last-Modified and If-Modified-Since can express).
    pub mtime: i64,
    /// Strong validator, quoted: "inode-size-mtime_ns" in hex.
    pub etag: Box<[u8]>,
    pub content_type: &'static str,
    /// The header lines every 2xx/304 for this file carries, CRLF-terminated:
    /// Last-Modified, ETag, Accept-Ranges and, if configured, Cache-Control.
    pub validators: Box<[u8]>,
    pub body: Body,
    version: Version,
}

pub enum Body {
    /// Small files: a complete `200` response, head and bytes (the fd is closed after reading).
    Memory(Prebuilt),
    /// Large files: the open fd, sent with sendfile(2).
    Fd(Rc<OwnedFd>),
}

/// Room a prebuilt head takes at most (its header lines are bounded: a Cache-Control value is
/// a command-line string, the rest have fixed sizes).
const PREBUILT_HEAD_MAX: u64 = 512;

/// A small file's whole `200 OK` response for the common case (HTTP/1.1, keep-alive, GET),
/// head and body in one buffer, so a hit is one send of one slice with nothing to format. Only
/// the Date changes: it is patched in place once a second (or the buffer copied, if a send in
/// flight still holds it). Other responses (ranges, HEAD, HTTP/1.0, closing) use `body()`.
pub struct Prebuilt {
    buf: std::cell::RefCell<Rc<[u8]>>,
    /// Where the body starts.
    head_len: usize,
    /// Where the 29 bytes of the Date value are.
    date_at: usize,
    /// The second the Date in `buf` says.
    date_secs: std::cell::Cell<i64>,
}

impl Prebuilt {
    fn new(head: Vec<u8>, date_at: usize, bytes: &[u8]) -> Prebuilt {
        let head_len = head.len();
        let mut v = head;
        v.extend_from_slice(bytes);
        Prebuilt {
            buf: std::cell::RefCell::new(Rc::from(v)),
            head_len,
            date_at,
            date_secs: std::cell::Cell::new(i64::MIN),
        }
    }

    /// The response with today's Date; `(buffer, head length)`.
    pub fn response(&self, date_secs: i64, date: &[u8]) -> (Rc<[u8]>, usize) {
        if self.date_secs.get() != date_secs && date.len() == HTTP_DATE_LEN {
            let mut b = self.buf.borrow_mut();
            let range = self.date_at..self.date_at + HTTP_DATE_LEN;
            match Rc::get_mut(&mut b) {
                Some(bytes) => bytes[range].copy_from_slice(date),
                None => {
                    // A send in flight still reads the old buffer: it keeps it; we take a copy.
                    let mut v = b.to_vec();
                    v[range].copy_from_slice(date);
                    *b = Rc::from(v);
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

    pub fn len(&self) -> usize {
        self.buf.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The outcome of looking a path up.
#[derive(Clone)]
pub enum Lookup {
    File(Rc<FileEntry>),
    /// A directory requested without its trailing slash: redirect to add it.
    Directory,
    /// 403, 404, 500, 503.
    Status(u16),
}

struct Node {
    key: Box<[u8]>,
    value: Lookup,
    /// When the value was last known to match the file system; trusted for `valid_ms` after.
    checked_at_ms: u64,
    prev: u32,
    next: u32,
}

const NIL: u32 = u32::MAX;

pub struct FileCache {
    map: HashMap<Box<[u8]>, u32, BuildHasherDefault<FxHasher>>,
    nodes: Vec<Node>,
    free: Vec<u32>,
    /// Most recently used.
    head: u32,
    /// Least recently used: evicted first.
    tail: u32,
    max_entries: usize,
    max_bytes: u64,
    bytes: u64,
    /// Files up to this size are kept in memory (`--inline-max`); see README.md for the figures.
    inline_max: u64,
    valid_ms: u64,
    cache_control: Option<Box<[u8]>>,
}

impl FileCache {
    pub fn new(
        max_entries: usize,
        max_bytes: u64,
        inline_max: u64,
        valid_ms: u64,
        cache_control: Option<&str>,
    ) -> FileCache {
        FileCache {
            map: HashMap::with_capacity_and_hasher(max_entries.min(65536), Default::default()),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            max_entries: max_entries.max(1),
            max_bytes,
            bytes: 0,
            inline_max,
            valid_ms,
            cache_control: cache_control
                .map(|v| format!("Cache-Control: {v}\r\n").into_bytes().into()),
        }
    }

    /// Looks up a normalized path (starts with `/`; a trailing `/` means its index.html).
    pub fn lookup(&mut self, root: &Root, path: &[u8], now_ms: u64) -> Lookup {
        if let Some(&idx) = self.map.get(path) {
            let node = &self.nodes[idx as usize];
            if now_ms.saturating_sub(node.checked_at_ms) < self.valid_ms {
                let v = node.value.clone();
                self.touch(idx);
                return v;
            }
            // Stale: a file whose version is unchanged is kept; anything else is looked up anew.
            if let Lookup::File(f) = &node.value {
                if let Ok(st) = root.stat(&rel_path(path)) {
                    if Version::of(&st) == f.version {
                        let v = node.value.clone();
                        self.nodes[idx as usize].checked_at_ms = now_ms;
                        self.touch(idx);
                        return v;
                    }
                }
            }
            self.remove(idx);
        }
        let value = self.resolve(root, path);
        if let Lookup::Status(500 | 503) = value {
            return value; // transient: don't cache
        }
        self.insert(path, value.clone(), now_ms);
        value
    }

    fn resolve(&mut self, root: &Root, path: &[u8]) -> Lookup {
        let rel = rel_path(path);
        let fd = match root.open_beneath(&rel) {
            Ok(fd) => fd,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
                // Out of fds: give some back by evicting cached files, then try once more.
                self.evict_some();
                match root.open_beneath(&rel) {
                    Ok(fd) => fd,
                    Err(e) => return Lookup::Status(status_for_errno(&e)),
                }
            }
            Err(e) => return Lookup::Status(status_for_errno(&e)),
        };
        let st = match fstat(fd.as_raw_fd()) {
            Ok(st) => st,
            Err(e) => return Lookup::Status(status_for_errno(&e)),
        };
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => {}
            libc::S_IFDIR if !path.ends_with(b"/") => return Lookup::Directory,
            // A directory named index.html, a FIFO, a device, a socket: nothing to serve.
            _ => return Lookup::Status(404),
        }
        match self.file_entry(fd, st, path) {
            Ok(f) => Lookup::File(Rc::new(f)),
            Err(e) => Lookup::Status(status_for_errno(&e)),
        }
    }

    fn file_entry(
        &mut self,
        fd: OwnedFd,
        mut st: libc::stat,
        path: &[u8],
    ) -> io::Result<FileEntry> {
        let mut body = None;
        // Only while the memory budget has room: once it is full, further files are sent from the
        // page cache with sendfile instead of evicting (and later re-reading) other files' bytes,
        // which a working set larger than the budget would otherwise do on every miss.
        let size = st.st_size as u64;
        // (The prebuilt head adds a few hundred bytes to each.)
        if size <= self.inline_max && self.bytes + size + PREBUILT_HEAD_MAX <= self.max_bytes {
            // Read, then check the file did not change while we read, so a response never mixes
            // two versions. A file rewritten in place continuously gets a few tries, then is
            // streamed from its fd (sendfile stops at the end it finds).
            for _ in 0..3 {
                let bytes = match read_all(fd.as_raw_fd(), st.st_size as usize) {
                    Ok(b) => b,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        st = fstat(fd.as_raw_fd())?;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let after = fstat(fd.as_raw_fd())?;
                if Version::of(&after) == Version::of(&st) {
                    body = Some(bytes);
                    break;
                }
                st = after;
            }
        }
        let version = Version::of(&st);
        let mtime_ns = (st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128) as u64;
        let etag = format!("\"{:x}-{:x}-{:x}\"", st.st_ino, st.st_size, mtime_ns).into_bytes();
        let lm: [u8; HTTP_DATE_LEN] = format_http_date(st.st_mtime);
        let mut v = Vec::with_capacity(128);
        v.extend_from_slice(b"Last-Modified: ");
        v.extend_from_slice(&lm);
        v.extend_from_slice(b"\r\nETag: ");
        v.extend_from_slice(&etag);
        v.extend_from_slice(b"\r\nAccept-Ranges: bytes\r\n");
        if let Some(cc) = &self.cache_control {
            v.extend_from_slice(cc);
        }
        let index_path;
        let named = if path.ends_with(b"/") {
            index_path = [path, b"index.html"].concat();
            &index_path[..]
        } else {
            path
        };
        let content_type = crate::mime::content_type(named);
        let body = match body {
            Some(bytes) => {
                // The same head the response path writes for a 200, with the Date left blank.
                let mut h = Vec::with_capacity(256 + bytes.len());
                let date_at = status_line_into(&mut h, 200, &[b' '; HTTP_DATE_LEN]);
                entity_lines(&mut h, content_type, &v, bytes.len() as u64);
                finish_head(&mut h, true, HttpVersion::Http11);
                Body::Memory(Prebuilt::new(h, date_at, &bytes))
            }
            None => Body::Fd(Rc::new(fd)),
        };
        Ok(FileEntry {
            size: st.st_size as u64,
            mtime: st.st_mtime,
            etag: etag.into(),
            content_type,
            validators: v.into(),
            body,
            version,
        })
    }

    fn insert(&mut self, key: &[u8], value: Lookup, now_ms: u64) {
        let bytes = entry_bytes(&value);
        while self.map.len() >= self.max_entries || self.bytes + bytes > self.max_bytes {
            if self.tail == NIL {
                break;
            }
            self.remove(self.tail);
        }
        let node = Node {
            key: key.into(),
            value,
            checked_at_ms: now_ms,
            prev: NIL,
            next: NIL,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.bytes += bytes;
        self.map.insert(key.into(), idx);
        self.link_front(idx);
    }

    fn remove(&mut self, idx: u32) {
        self.unlink(idx);
        let node = &mut self.nodes[idx as usize];
        let key = std::mem::take(&mut node.key);
        let value = std::mem::replace(&mut node.value, Lookup::Status(404));
        self.bytes -= entry_bytes(&value);
        self.map.remove(&key);
        self.free.push(idx);
        // `value` drops here: the fd closes unless a transfer still holds it.
    }

    fn evict_some(&mut self) {
        let n = (self.map.len() / 8).max(1);
        for _ in 0..n {
            if self.tail == NIL {
                break;
            }
            self.remove(self.tail);
        }
    }

    fn touch(&mut self, idx: u32) {
        if self.head != idx {
            self.unlink(idx);
            self.link_front(idx);
        }
    }

    fn link_front(&mut self, idx: u32) {
        let old = self.head;
        {
            let n = &mut self.nodes[idx as usize];
            n.prev = NIL;
            n.next = old;
        }
        if old != NIL {
            self.nodes[old as usize].prev = idx;
        } else {
            self.tail = idx;
        }
        self.head = idx;
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let n = &self.nodes[idx as usize];
            (n.prev, n.next)
        };
        if prev != NIL {
            self.nodes[prev as usize].next = next;
        } else if self.head == idx {
            self.head = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        } else if self.tail == idx {
            self.tail = prev;
        }
        let n = &mut self.nodes[idx as usize];
        n.prev = NIL;
        n.next = NIL;
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn memory_bytes(&self) -> u64 {
        self.bytes
    }
}

fn entry_bytes(v: &Lookup) -> u64 {
    match v {
        Lookup::File(f) => match &f.body {
            Body::Memory(b) => b.len() as u64,
            Body::Fd(_) => 0,
        },
        _ => 0,
    }
}

/// The path to open beneath the root: no leading slash, `dir/` -> `dir/index.html`, `/` -> `index.html`.
pub fn rel_path(path: &[u8]) -> Vec<u8> {
    let p = path.strip_prefix(b"/").unwrap_or(path);
    let mut rel = Vec::with_capacity(p.len() + 10);
    rel.extend_from_slice(p);
    if rel.is_empty() || rel.ends_with(b"/") {
        rel.extend_from_slice(b"index.html");
    }
    rel
}

/// The Fx hash (from rustc): paths are short and not attacker-chosen in a way that matters here,
/// since the table is bounded by --cache-entries; SipHash would cost more than the lookup itself.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let v = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.hash = (self.hash.rotate_left(5) ^ v).wrapping_mul(SEED);
        }
        for &b in chunks.remainder() {
            self.hash = (self.hash.rotate_left(5) ^ b as u64).wrapping_mul(SEED);
        }
    }
    fn write_usize(&mut self, i: usize) {
        self.hash = (self.hash.rotate_left(5) ^ i as u64).wrapping_mul(SEED);
    }
    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("ringstatic-cache-{}-{}", name, std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn rel_paths() {
        assert_eq!(rel_path(b"/"), b"index.html");
        assert_eq!(rel_path(b"/a/"), b"a/index.html");
        assert_eq!(rel_path(b"/a/b.txt"), b"a/b.txt");
    }

    #[test]
    fn lookup_hit_miss_dir_and_lru_bound() {
        let d = tmpdir("lru");
        std::fs::write(d.join("a.txt"), b"aaa").unwrap();
        std::fs::write(d.join("b.txt"), b"bb").unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        let root = Root::open(&d).unwrap();
        let mut c = FileCache::new(2, 1 << 20, 64 << 10, 1000, None);
        match c.lookup(&root, b"/a.txt", 0) {
            Lookup::File(f) => {
                assert_eq!(f.size, 3);
                let Body::Memory(m) = &f.body else {
                    panic!("small files live in memory")
                };
                let (buf, at) = m.body();
                assert_eq!(&buf[at..], b"aaa");
                let (resp, _) = m.response(784111777, b"Sun, 06 Nov 1994 08:49:37 GMT");
                let text = String::from_utf8_lossy(&resp).into_owned();
                assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
                assert!(
                    text.contains("\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"),
                    "{text}"
                );
                assert!(text.contains("\r\nContent-Length: 3\r\n"), "{text}");
                assert!(text.ends_with("\r\n\r\naaa"), "{text}");
                // A send in flight keeps its buffer; the next second gets a fresh copy.
                let (held, _) = m.response(784111778, b"Sun, 06 Nov 1994 08:49:38 GMT");
                let (next, _) = m.response(784111779, b"Sun, 06 Nov 1994 08:49:39 GMT");
                assert!(String::from_utf8_lossy(&held).contains("08:49:38"));
                assert!(String::from_utf8_lossy(&next).contains("08:49:39"));
            }
            _ => panic!("expected a file"),
        }
        assert!(matches!(c.lookup(&root, b"/sub", 0), Lookup::Directory));
        assert!(matches!(c.lookup(&root, b"/nope", 0), Lookup::Status(404)));
        assert_eq!(c.len(), 2, "bounded by entry count");
        assert!(matches!(c.lookup(&root, b"/b.txt", 0), Lookup::File(_)));
        // Two small files in memory (their prebuilt heads included); the evicted one no longer counts.
        assert!(c.memory_bytes() < 2 * 512, "{}", c.memory_bytes());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn replaced_file_is_seen_after_validity() {
        let d = tmpdir("fresh");
        std::fs::write(d.join("f"), b"old").unwrap();
        let root = Root::open(&d).unwrap();
        let mut c = FileCache::new(10, 1 << 20, 64 << 10, 100, None);
        let Lookup::File(a) = c.lookup(&root, b"/f", 0) else {
            panic!()
        };
        std::fs::write(d.join("f.new"), b"newer").unwrap();
        std::fs::rename(d.join("f.new"), d.join("f")).unwrap();
        let Lookup::File(b) = c.lookup(&root, b"/f", 50) else {
            panic!()
        };
        assert_eq!(b.size, 3, "still trusted within validity");
        let Lookup::File(b) = c.lookup(&root, b"/f", 150) else {
            panic!()
        };
        assert_eq!(b.size, 5);
        assert_ne!(a.etag, b.etag);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn symlink_out_of_root_is_refused() {
        let d = tmpdir("sym");
        let outside = tmpdir("sym-outside");
        std::fs::write(outside.join("secret"), b"secret").unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), d.join("link")).unwrap();
        std::os::unix::fs::symlink("../", d.join("up")).unwrap();
        let root = Root::open(&d).unwrap();
        let mut c = FileCache::new(10, 1 << 20, 64 << 10, 100, None);
        assert!(matches!(c.lookup(&root, b"/link", 0), Lookup::Status(403)));
        assert!(matches!(
            c.lookup(&root, b"/up/x", 0),
            Lookup::Status(403 | 404)
        ));
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_dir_all(&outside);
    }

    #[test]
    fn byte_budget_bounds_memory_without_thrashing() {
        let d = tmpdir("bytes");
        std::fs::write(d.join("a"), vec![1u8; 600]).unwrap();
        std::fs::write(d.join("b"), vec![2u8; 600]).unwrap();
        std::fs::write(d.join("big"), vec![3u8; 5000]).unwrap();
        let root = Root::open(&d).unwrap();
        let mut c = FileCache::new(100, 1500, 4096, 1000, None);
        let Lookup::File(a) = c.lookup(&root, b"/a", 0) else {
            panic!()
        };
        assert!(matches!(a.body, Body::Memory(_)));
        // The budget is full: b is served from its fd, and a stays cached in memory.
        let Lookup::File(b) = c.lookup(&root, b"/b", 0) else {
            panic!()
        };
        assert!(matches!(b.body, Body::Fd(_)));
        let Body::Memory(m) = &a.body else { panic!() };
        assert_eq!(c.memory_bytes(), m.len() as u64);
        assert_eq!(c.len(), 2);
        // Above --inline-max: always from the fd.
        let Lookup::File(big) = c.lookup(&root, b"/big", 0) else {
            panic!()
        };
        assert!(matches!(big.body, Body::Fd(_)));
        let _ = std::fs::remove_dir_all(&d);
    }
}
