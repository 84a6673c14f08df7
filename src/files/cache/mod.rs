//! The per-worker open-file cache: (path, coding) -> what to answer.
//!
//! A hit costs one hash lookup; nothing is shared with other workers, so nothing is locked.
//! Entries are trusted for `--cache-valid` and then checked with one stat(2) by path: a file changed
//! in place or replaced by an atomic rename shows a new inode/size/mtime/ctime and is reopened.
//! Misses (404/403) are cached for the same time so a flood of requests for a missing file costs
//! hash lookups, not path walks. The cache is bounded by entry count, by the private bytes its
//! prebuilt heads take, and by how many files it maps (`vm.max_map_count` is per process); the
//! least recently used entry goes first. A file's fd and mapping live in `Rc`s: a transfer in
//! flight holds its own reference, so eviction never closes an fd or unmaps bytes under a send.
//!
//! The worker's tick sweeps it (`sweep`): an entry unused for `--cache-inactive` is dropped, and
//! open entries not checked for `--cache-valid` are checked with one fstat(2) of their fd, so a
//! file deleted or renamed over (`st_nlink == 0`) is released even if nobody asks for it again.
//!
//! Which file answers a path is decided here on a miss and kept with the entry: `dir/` is its
//! first `--index` name that exists (or, with `--autoindex`, the directory's `listing`), `x` is
//! `x` or, with `--clean-urls`, `x.html`. The entry is revalidated through that file, and looked
//! up anew if a file it would prefer has appeared.
//!
//! The cache holds file facts and bytes (`entry`), and knows no header: what every response for an
//! entry shares is made by the response layer's `prepare`, handed to `lookup` and called only
//! when an entry is created.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;

use crate::files::entry::{Body, Coding, Facts, FileEntry, Of, Prepared, Version};
use crate::files::listing;
use crate::files::open::{fstat, status_for_errno, Root};
use crate::files::variant::{self, Deps, Found, Sources};

mod fxhash;
mod names;

pub use fxhash::FxHasher;
use names::is_reg;
pub use names::Names;

/// What an entry is found by: a normalized path and which representation of it.
#[derive(Clone, Copy, Debug)]
pub struct Key<'a> {
    pub path: &'a [u8],
    pub coding: Coding,
}

/// Room the response layer's head in front of a resident file's bytes is assumed to take when
/// deciding whether the bytes fit the budget (its lines are bounded: a Cache-Control value is a
/// command-line string, the rest have fixed sizes); the budget then counts what it really takes.
const PREBUILT_HEAD_MAX: u64 = 512;

/// The outcome of looking a path up.
#[derive(Clone)]
pub enum Lookup {
    File(Rc<FileEntry>),
    /// A directory requested without its trailing slash: redirect to add it.
    Directory,
    /// 403, 404, 500, 503.
    Status(u16),
}

/// One entry. A path is held once: the node's key is the map's key too, and the entry's name and
/// `file` are the same allocation whenever the file that answers has the request's path (most
/// do), so an entry costs one small allocation for its path, not four copies of it.
struct Node {
    key: Rc<[u8]>,
    /// The file (or listed directory) beneath the root that answered, as a path from the root
    /// (`/dir/index.html`), stat'ed to revalidate (see `rel`).
    file: Rc<[u8]>,
    coding: Coding,
    value: Lookup,
    /// A coded variant's sources (`variant::find`): revalidated by them, not by its own stat.
    /// Boxed: two file versions, which only variant entries have, would double every node.
    deps: Option<Box<Deps>>,
    /// When the value was last known to match the file system; trusted for `valid_ms` after.
    checked_at_ms: u64,
    /// When the entry was last looked up (expires `inactive_ms` after).
    used_at_ms: u64,
    prev: u32,
    next: u32,
}

const NIL: u32 = u32::MAX;

type Map = HashMap<Rc<[u8]>, u32, BuildHasherDefault<FxHasher>>;

/// A path from the root as `Node::file` holds it (`/dir/x`), as the file system is asked for it
/// beneath the root's fd (`dir/x`).
fn rel(file: &[u8]) -> &[u8] {
    file.strip_prefix(b"/").unwrap_or(file)
}

pub struct FileCache {
    /// One map per coding, each by path: a lookup hashes the path once and builds no key. (Content
    /// negotiation that tries several codings would do one lookup each; should that show in a
    /// profile, one map from path to a slot per coding makes it one.)
    maps: [Map; Coding::COUNT],
    nodes: Vec<Node>,
    free: Vec<u32>,
    /// Most recently used.
    head: u32,
    /// Least recently used: evicted first.
    tail: u32,
    max_entries: usize,
    max_bytes: u64,
    bytes: u64,
    /// Files up to this size are mapped (`--inline-max`); see README.md for the figures.
    inline_max: u64,
    valid_ms: u64,
    names: Names,
    inactive_ms: u64,
    /// Files mapped now, and the most that may be (half of `vm.max_map_count`, the per-process
    /// limit on mappings, leaving the rest to the allocator and the ring). Past the bound, small
    /// files are sent from their fd with sendfile, as large ones are.
    mapped: usize,
    max_mapped: usize,
    /// Where the tick's revalidation walk resumes (an index into `nodes`).
    sweep_at: usize,
    /// The path a free node holds (one allocation shared by all of them).
    no_path: Rc<[u8]>,
    /// Counted for the metrics (plain fields: the worker publishes them on its tick).
    pub stats: CacheStats,
}

/// What the cache did, for the metrics.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Entries dropped to make room (not stale ones replaced).
    pub evictions: u64,
    /// Entries that hold a file descriptor open now.
    pub open_fds: u64,
    /// Representations compressed on the fly.
    pub compressions: u64,
}

/// Open entries the tick checks at most, per tick (an fstat each): with the 250 ms tick, 8,192 a
/// second. A cache holding more open entries than `--cache-valid` times that is checked over
/// several periods instead of one.
const SWEEP_CHECKS: usize = 2048;

/// `vm.max_map_count`, or its default when it cannot be read.
fn max_map_count() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65530)
}

impl FileCache {
    pub fn new(
        max_entries: usize,
        max_bytes: u64,
        inline_max: u64,
        valid_ms: u64,
        inactive_ms: u64,
    ) -> FileCache {
        FileCache {
            maps: std::array::from_fn(|_| {
                HashMap::with_capacity_and_hasher(max_entries.min(1024), Default::default())
            }),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            max_entries: max_entries.max(1),
            max_bytes,
            bytes: 0,
            inline_max,
            valid_ms,
            names: Names::default(),
            inactive_ms,
            mapped: 0,
            max_mapped: max_map_count() / 2,
            sweep_at: 0,
            no_path: Rc::from(&b""[..]),
            stats: CacheStats::default(),
        }
    }

    /// The same cache with index names, clean URLs and listings as configured.
    pub fn with_names(mut self, names: Names) -> FileCache {
        self.names = names;
        self
    }

    /// Bounds how many files may be mapped at once (tests use a small bound).
    pub fn set_max_mapped(&mut self, n: usize) {
        self.max_mapped = n;
    }

    /// Looks up a normalized path (starts with `/`; a trailing `/` means its index file) in the
    /// representation `key.coding`. `prepare` is called only if a new entry is made.
    pub fn lookup(
        &mut self,
        root: &Root,
        key: Key,
        now_ms: u64,
        prepare: impl FnOnce(&Facts) -> Prepared,
    ) -> Lookup {
        if let Some(&idx) = self.maps[key.coding.index()].get(key.path) {
            let node = &self.nodes[idx as usize];
            if now_ms.saturating_sub(node.checked_at_ms) < self.valid_ms {
                let v = node.value.clone();
                self.nodes[idx as usize].used_at_ms = now_ms;
                self.touch(idx);
                self.stats.hits += 1;
                return v;
            }
            // Stale: a file whose version is unchanged is kept; anything else is looked up anew,
            // and so is an entry made during its file's last-modified second, so that it gets
            // the Last-Modified it could not have then (see `FileEntry::lm_strong`).
            if let Lookup::File(f) = &node.value {
                if let Ok(st) = root.stat(rel(&node.file)) {
                    if Version::of(&st) == f.version
                        && f.lm_strong
                        && !self.preferred_exists(root, key, idx)
                    {
                        let v = node.value.clone();
                        self.nodes[idx as usize].checked_at_ms = now_ms;
                        self.nodes[idx as usize].used_at_ms = now_ms;
                        self.touch(idx);
                        self.stats.hits += 1;
                        return v;
                    }
                }
            }
            self.remove(idx);
        }
        self.stats.misses += 1;
        let (value, file) = self.resolve(root, key, prepare);
        if let Lookup::Status(500 | 503) = value {
            return value; // transient: don't cache
        }
        self.insert(key, file, value.clone(), None, now_ms);
        value
    }

    /// Looks up `key.coding`'s representation of `origin`, the identity entry of `key.path` just
    /// looked up: a sibling or a compressed copy (`variant`), or `Status(404)` when there is none
    /// (and then the identity entry is what to send). What is found, "none" included, is cached
    /// under (path, coding) and trusted for `valid_ms`; then it is kept only while the original
    /// and the sibling are the versions it was made from.
    pub fn lookup_variant(
        &mut self,
        root: &Root,
        key: Key,
        now_ms: u64,
        origin: &FileEntry,
        sources: Sources,
        prepare: impl FnOnce(&Facts) -> Prepared,
    ) -> Lookup {
        if let Some(&idx) = self.maps[key.coding.index()].get(key.path) {
            let node = &self.nodes[idx as usize];
            let fresh = now_ms.saturating_sub(node.checked_at_ms) < self.valid_ms
                || node.deps.as_ref().is_some_and(|d| {
                    variant::unchanged(root, rel(&node.file), key.coding, sources, d)
                });
            if fresh {
                let v = node.value.clone();
                if now_ms.saturating_sub(node.checked_at_ms) >= self.valid_ms {
                    self.nodes[idx as usize].checked_at_ms = now_ms;
                }
                self.touch(idx);
                return v;
            }
            self.remove(idx);
        }
        let room = self.max_bytes.saturating_sub(PREBUILT_HEAD_MAX);
        let (found, deps) = variant::find(root, key, origin, sources, room);
        let value = match found {
            Found::Sibling(fd, st) => {
                let size = st.st_size as u64;
                let keep_bytes = size <= self.inline_max
                    && self.bytes + size + PREBUILT_HEAD_MAX <= self.max_bytes;
                match FileEntry::load(
                    fd,
                    st,
                    key.path,
                    key.coding,
                    keep_bytes,
                    Of::SiblingOf(origin),
                    prepare,
                ) {
                    Ok(f) => Lookup::File(Rc::new(f)),
                    Err(e) => return Lookup::Status(status_for_errno(&e)),
                }
            }
            Found::Compressed(bytes) => {
                self.stats.compressions += 1;
                Lookup::File(Rc::new(FileEntry::compressed(
                    &bytes, key.path, key.coding, origin, prepare,
                )))
            }
            Found::Nothing => Lookup::Status(404),
            Found::Transient => return Lookup::Status(503),
        };
        // Revalidated through the original's file (`variant::unchanged`).
        let file = origin.name.clone();
        self.insert(key, file, value.clone(), Some(Box::new(deps)), now_ms);
        value
    }

    /// Opens `rel`, giving fds back by evicting cached files once if the process is out of them.
    fn open(&mut self, root: &Root, rel: &[u8]) -> Result<(OwnedFd, libc::stat), io::Error> {
        let fd = match root.open_beneath(rel) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
                self.evict_some();
                root.open_beneath(rel)?
            }
            r => r?,
        };
        let st = fstat(fd.as_raw_fd())?;
        Ok((fd, st))
    }

    /// What answers `key`, and the file beneath the root it came from: the file itself; for
    /// `dir/` the first index name that exists (or a listing); for a clean URL `x`, `x.html`.
    fn resolve(
        &mut self,
        root: &Root,
        key: Key,
        prepare: impl FnOnce(&Facts) -> Prepared,
    ) -> (Lookup, Rc<[u8]>) {
        let rel = rel(key.path);
        let mut found = None;
        for name in self.candidates(key) {
            match self.open(root, &name) {
                // A directory named like an index, a FIFO, a device: not an index; try the next.
                Ok((_, st)) if key.path.ends_with(b"/") && !is_reg(&st) => continue,
                Ok(ok) => {
                    found = Some((ok, name));
                    break;
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return (Lookup::Status(status_for_errno(&e)), served(key, &name)),
            }
        }
        let Some(((fd, st), name)) = found else {
            return self.no_file(root, key, rel, prepare);
        };
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => {}
            libc::S_IFDIR if !key.path.ends_with(b"/") => {
                return (Lookup::Directory, served(key, &name))
            }
            // A FIFO, a device, a socket: nothing to serve.
            _ => return (Lookup::Status(404), served(key, &name)),
        }
        // Small files are mapped only while the budgets have room (the heads' private bytes, and
        // the number of mappings): once either is full, further files are sent from the page
        // cache with sendfile instead of evicting (and later re-mapping) other files, which a
        // working set larger than the budget would otherwise do on every miss.
        let size = st.st_size as u64;
        let map_it = size <= self.inline_max
            && self.mapped < self.max_mapped
            && self.bytes + PREBUILT_HEAD_MAX <= self.max_bytes;
        let served = served(key, &name);
        let value = match FileEntry::load(
            fd,
            st,
            key.path,
            key.coding,
            map_it,
            Of::File(served.clone()),
            prepare,
        ) {
            Ok(f) => Lookup::File(Rc::new(f)),
            Err(e) => Lookup::Status(status_for_errno(&e)),
        };
        (value, served)
    }

    fn insert(
        &mut self,
        key: Key,
        file: Rc<[u8]>,
        value: Lookup,
        deps: Option<Box<Deps>>,
        now_ms: u64,
    ) {
        let bytes = entry_bytes(&value);
        let maps = is_mapped(&value);
        while self.len() >= self.max_entries
            || self.bytes + bytes > self.max_bytes
            || (maps && self.mapped >= self.max_mapped)
        {
            if self.tail == NIL {
                break;
            }
            self.remove(self.tail);
            self.stats.evictions += 1;
        }
        // The path is held once: the file's when it is the request's (most are), else a copy.
        let path = if *file == *key.path {
            file.clone()
        } else {
            Rc::from(key.path)
        };
        let node = Node {
            key: path.clone(),
            file,
            coding: key.coding,
            value,
            deps,
            checked_at_ms: now_ms,
            used_at_ms: now_ms,
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
        self.mapped += maps as usize;
        self.stats.open_fds += holds_fd(&self.nodes[idx as usize].value) as u64;
        self.maps[key.coding.index()].insert(path, idx);
        self.link_front(idx);
    }

    fn remove(&mut self, idx: u32) {
        self.unlink(idx);
        let node = &mut self.nodes[idx as usize];
        let key = std::mem::replace(&mut node.key, self.no_path.clone());
        node.file = self.no_path.clone();
        node.deps = None;
        let value = std::mem::replace(&mut node.value, Lookup::Status(404));
        self.bytes -= entry_bytes(&value);
        self.mapped -= is_mapped(&value) as usize;
        self.stats.open_fds -= holds_fd(&value) as u64;
        self.maps[node.coding.index()].remove(&key[..]);
        self.free.push(idx);
        // `value` drops here: the fd closes unless a transfer still holds it.
    }

    /// The tick's sweep: drops entries unused for `inactive_ms` (from the least recently used
    /// end, where they are), then checks up to `SWEEP_CHECKS` open entries whose validity has
    /// run out, with one fstat(2) of their fd each: a file deleted or renamed over
    /// (`st_nlink == 0`), or changed, is released now rather than when next asked for. Its fd and
    /// mapping close at once unless a transfer in flight still holds them. Returns how many
    /// entries were dropped.
    pub fn sweep(&mut self, now_ms: u64) -> usize {
        let mut dropped = 0;
        while self.tail != NIL
            && now_ms.saturating_sub(self.nodes[self.tail as usize].used_at_ms) >= self.inactive_ms
        {
            self.remove(self.tail);
            dropped += 1;
        }
        let n = self.nodes.len();
        let mut checks = 0;
        for _ in 0..n {
            if checks >= SWEEP_CHECKS {
                break;
            }
            if self.sweep_at >= n {
                self.sweep_at = 0;
            }
            let idx = self.sweep_at;
            self.sweep_at += 1;
            let node = &self.nodes[idx];
            let Lookup::File(f) = &node.value else {
                continue; // a free slot, a miss or a directory: nothing held open
            };
            if node.key.is_empty() || now_ms.saturating_sub(node.checked_at_ms) < self.valid_ms {
                continue;
            }
            checks += 1;
            if f.outdated() {
                self.remove(idx as u32);
                dropped += 1;
            } else {
                self.nodes[idx].checked_at_ms = now_ms;
            }
        }
        dropped
    }

    /// Files mapped now.
    pub fn mapped(&self) -> usize {
        self.mapped
    }

    fn evict_some(&mut self) {
        let n = (self.len() / 8).max(1);
        for _ in 0..n {
            if self.tail == NIL {
                break;
            }
            self.remove(self.tail);
            self.stats.evictions += 1;
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

    /// Entries held, of every coding.
    pub fn len(&self) -> usize {
        self.nodes.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn memory_bytes(&self) -> u64 {
        self.bytes
    }
}

/// The file `name` (a path beneath the root, `dir/x`) as a path from the root (`/dir/x`): the
/// request's own path when it is that file (no copy), else a new one.
fn served(key: Key, name: &[u8]) -> Rc<[u8]> {
    if rel(key.path) == name && key.path.starts_with(b"/") {
        Rc::from(key.path)
    } else {
        Rc::from([&b"/"[..], name].concat())
    }
}

fn holds_fd(v: &Lookup) -> bool {
    matches!(v, Lookup::File(f) if matches!(f.body, Body::Fd(_)))
}

/// The private bytes an entry holds (a mapped file's text; the mapped bytes are the page cache's).
fn entry_bytes(v: &Lookup) -> u64 {
    match v {
        Lookup::File(f) => f.private_bytes() as u64,
        _ => 0,
    }
}

fn is_mapped(v: &Lookup) -> bool {
    matches!(v, Lookup::File(f) if matches!(f.body, Body::Mapped(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lookup as the response layer makes it, with no Cache-Control configured.
    fn lookup(c: &mut FileCache, root: &Root, path: &[u8], now_ms: u64) -> Lookup {
        use clap::Parser;
        let cfg = crate::config::ServeConfig::from(&crate::config::Cli::parse_from(["ringstatic"]));
        let key = Key {
            path,
            coding: Coding::Identity,
        };
        c.lookup(root, key, now_ms, |facts| {
            crate::response::prepare(&cfg, facts)
        })
    }

    fn tmpdir(name: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("ringstatic-cache-{}-{}", name, std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn index_names_and_clean_urls() {
        let d = tmpdir("names");
        std::fs::create_dir_all(d.join("a")).unwrap();
        std::fs::create_dir_all(d.join("b/index.html")).unwrap();
        std::fs::write(d.join("a/index.htm"), b"htm").unwrap();
        std::fs::write(d.join("b/default.html"), b"default").unwrap();
        std::fs::write(d.join("about.html"), b"about").unwrap();
        let root = Root::open(&d).unwrap();
        let names = Names {
            index: vec![
                b"index.html".to_vec(),
                b"index.htm".to_vec(),
                b"default.html".to_vec(),
            ],
            clean_urls: true,
            ..Names::default()
        };
        let mut c = FileCache::new(10, 1 << 20, 64 << 10, 0, 60_000).with_names(names);
        let size = |l: Lookup| match l {
            Lookup::File(f) => (f.size, f.content_type),
            _ => (0, ""),
        };
        assert_eq!(
            size(lookup(&mut c, &root, b"/a/", 0)),
            (3, "text/html; charset=utf-8")
        );
        assert_eq!(
            size(lookup(&mut c, &root, b"/b/", 0)).0,
            7,
            "a directory is no index"
        );
        assert_eq!(
            size(lookup(&mut c, &root, b"/about", 0)),
            (5, "text/html; charset=utf-8")
        );
        // Revalidated through the file that answered (valid_ms is 0: every lookup checks), and
        // a preferred file that appears since is seen.
        assert_eq!(size(lookup(&mut c, &root, b"/about", 1)).0, 5);
        std::fs::write(d.join("about"), b"plain about").unwrap();
        assert_eq!(size(lookup(&mut c, &root, b"/about", 2)).0, 11);
        std::fs::write(d.join("a/index.html"), b"html!").unwrap();
        assert_eq!(size(lookup(&mut c, &root, b"/a/", 2)).0, 5);
        assert!(matches!(
            lookup(&mut c, &root, b"/", 0),
            Lookup::Status(404)
        ));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn lookup_hit_miss_dir_and_lru_bound() {
        let d = tmpdir("lru");
        std::fs::write(d.join("a.txt"), b"aaa").unwrap();
        std::fs::write(d.join("b.txt"), b"bb").unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        let root = Root::open(&d).unwrap();
        let mut c = FileCache::new(2, 1 << 20, 64 << 10, 1000, 60_000);
        match lookup(&mut c, &root, b"/a.txt", 0) {
            Lookup::File(f) => {
                assert_eq!(f.size, 3);
                let Body::Mapped(m) = &f.body else {
                    panic!("small files are mapped")
                };
                assert_eq!(m.bytes_for_tests(), b"aaa");
                // The header lines and the ETag are read from the head, not held twice.
                let Some(head) = f.head().and_then(|h| h.remaining_bytes()) else {
                    panic!("a mapped file has a prebuilt head")
                };
                assert_eq!(f.text_len(), head.len());
                assert!(f.lines().windows(6).any(|w| w == b"ETag: "));
                assert!(f.lines().ends_with(b"Vary: Accept-Encoding\r\n"));
                assert!(f.etag().starts_with(b"\"") && f.etag().ends_with(b"-3\""));
                let text = String::from_utf8_lossy(&head).into_owned();
                assert!(text.starts_with("Content-Type: text/plain"), "{text}");
                assert!(text.contains("\r\nContent-Length: 3\r\n"), "{text}");
                assert!(text.ends_with("\r\n\r\n"), "{text}");
            }
            _ => panic!("expected a file"),
        }
        assert!(matches!(
            lookup(&mut c, &root, b"/sub", 0),
            Lookup::Directory
        ));
        assert!(matches!(
            lookup(&mut c, &root, b"/nope", 0),
            Lookup::Status(404)
        ));
        assert_eq!(c.len(), 2, "bounded by entry count");
        assert!(matches!(
            lookup(&mut c, &root, b"/b.txt", 0),
            Lookup::File(_)
        ));
        // Two small files' heads; the evicted one no longer counts.
        assert!(c.memory_bytes() < 2 * 512, "{}", c.memory_bytes());
        assert_eq!(c.mapped(), 1, "one file mapped: b (a was evicted)");
        // Four lookups opened something, none was answered from the cache, and two entries
        // went to make room (the limit is 2).
        assert_eq!(
            c.stats,
            CacheStats {
                hits: 0,
                misses: 4,
                evictions: 2,
                open_fds: 0,
                compressions: 0
            }
        );
        assert!(matches!(
            lookup(&mut c, &root, b"/b.txt", 1),
            Lookup::File(_)
        ));
        assert_eq!(c.stats.hits, 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_path_is_held_once() {
        let d = tmpdir("once");
        std::fs::create_dir(d.join("dir")).unwrap();
        std::fs::write(d.join("dir/index.html"), b"index").unwrap();
        std::fs::write(d.join("a.js"), "let a = 1;\n".repeat(200)).unwrap();
        let root = Root::open(&d).unwrap();
        let mut c = FileCache::new(10, 1 << 20, 64 << 10, 1000, 60_000);
        let node = |c: &FileCache, coding: Coding, path: &[u8]| {
            let (k, &idx) = c.maps[coding.index()].get_key_value(path).unwrap();
            let n = &c.nodes[idx as usize];
            assert!(Rc::ptr_eq(k, &n.key), "the map's key is the node's");
            (n.key.clone(), n.file.clone())
        };
        // The file has the request's path: key, file and name are one allocation.
        let Lookup::File(a) = lookup(&mut c, &root, b"/a.js", 0) else {
            panic!()
        };
        let (key, file) = node(&c, Coding::Identity, b"/a.js");
        assert!(Rc::ptr_eq(&key, &a.name) && Rc::ptr_eq(&file, &a.name));
        // A variant shares its original's name, and the path.
        let both = Sources {
            sibling: true,
            compress: true,
        };
        let Lookup::File(br) = variant(&mut c, &root, b"/a.js", Coding::Br, both, 0) else {
            panic!()
        };
        let (key, file) = node(&c, Coding::Br, b"/a.js");
        assert!(Rc::ptr_eq(&br.name, &a.name) && Rc::ptr_eq(&key, &a.name));
        assert!(Rc::ptr_eq(&file, &a.name));
        // An index file answers its directory's path: two paths, each held once.
        let Lookup::File(i) = lookup(&mut c, &root, b"/dir/", 0) else {
            panic!()
        };
        assert_eq!(&i.name[..], b"/dir/index.html");
        let (key, file) = node(&c, Coding::Identity, b"/dir/");
        assert_eq!(&key[..], b"/dir/");
        assert!(Rc::ptr_eq(&file, &i.name));
        // A miss holds its path once too.
        assert!(matches!(
            lookup(&mut c, &root, b"/nope", 0),
            Lookup::Status(404)
        ));
        let (key, file) = node(&c, Coding::Identity, b"/nope");
        assert!(Rc::ptr_eq(&key, &file));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn open_fds_count_the_files_sent_from_their_descriptor() {
        let d = tmpdir("fds");
        std::fs::write(d.join("big"), vec![7u8; 100]).unwrap();
        std::fs::write(d.join("small"), b"s").unwrap();
        let root = Root::open(&d).unwrap();
        // Inline up to 10 bytes: "big" keeps its descriptor, "small" its bytes.
        let mut c = FileCache::new(1, 1 << 20, 10, 1000, 60_000);
        assert!(matches!(lookup(&mut c, &root, b"/big", 0), Lookup::File(_)));
        assert_eq!(c.stats.open_fds, 1);
        assert!(matches!(
            lookup(&mut c, &root, b"/small", 0),
            Lookup::File(_)
        ));
        assert_eq!((c.stats.open_fds, c.stats.evictions), (0, 1));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn replaced_file_is_seen_after_validity() {
        let d = tmpdir("fresh");
        std::fs::write(d.join("f"), b"old").unwrap();
        let root = Root::open(&d).unwrap();
        let mut c = FileCache::new(10, 1 << 20, 64 << 10, 100, 60_000);
        let Lookup::File(a) = lookup(&mut c, &root, b"/f", 0) else {
            panic!()
        };
        std::fs::write(d.join("f.new"), b"newer").unwrap();
        std::fs::rename(d.join("f.new"), d.join("f")).unwrap();
        let Lookup::File(b) = lookup(&mut c, &root, b"/f", 50) else {
            panic!()
        };
        assert_eq!(b.size, 3, "still trusted within validity");
        let Lookup::File(b) = lookup(&mut c, &root, b"/f", 150) else {
            panic!()
        };
        assert_eq!(b.size, 5);
        assert_ne!(a.etag(), b.etag());
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
        let mut c = FileCache::new(10, 1 << 20, 64 << 10, 100, 60_000);
        assert!(matches!(
            lookup(&mut c, &root, b"/link", 0),
            Lookup::Status(403)
        ));
        assert!(matches!(
            lookup(&mut c, &root, b"/up/x", 0),
            Lookup::Status(403 | 404)
        ));
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_dir_all(&outside);
    }

    #[test]
    fn mapping_bounds_without_thrashing() {
        let d = tmpdir("bytes");
        std::fs::write(d.join("a"), vec![1u8; 600]).unwrap();
        std::fs::write(d.join("b"), vec![2u8; 600]).unwrap();
        std::fs::write(d.join("c"), vec![2u8; 600]).unwrap();
        std::fs::write(d.join("big"), vec![3u8; 5000]).unwrap();
        let root = Root::open(&d).unwrap();
        let mut c = FileCache::new(100, 1 << 20, 4096, 1000, 60_000);
        c.set_max_mapped(1);
        let Lookup::File(a) = lookup(&mut c, &root, b"/a", 0) else {
            panic!()
        };
        assert!(matches!(a.body, Body::Mapped(_)));
        // The mapping bound is reached: b is served from its fd, and a stays mapped.
        let Lookup::File(b) = lookup(&mut c, &root, b"/b", 0) else {
            panic!()
        };
        assert!(matches!(b.body, Body::Fd(_)));
        assert_eq!((c.mapped(), c.len()), (1, 2));
        // The head budget too: with no room for another head, c is streamed.
        assert_eq!(
            c.memory_bytes(),
            a.text_len() as u64,
            "only the head is private"
        );
        c.set_max_mapped(10);
        c.max_bytes = c.memory_bytes() + 100;
        let Lookup::File(cc) = lookup(&mut c, &root, b"/c", 0) else {
            panic!()
        };
        assert!(matches!(cc.body, Body::Fd(_)));
        // Above --inline-max: always from the fd.
        let Lookup::File(big) = lookup(&mut c, &root, b"/big", 0) else {
            panic!()
        };
        assert!(matches!(big.body, Body::Fd(_)));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn sweep_expires_inactive_and_releases_deleted_files() {
        let d = tmpdir("sweep");
        for f in ["keep", "gone", "idle"] {
            std::fs::write(d.join(f), f.repeat(100)).unwrap();
        }
        std::fs::write(d.join("big"), "big".repeat(1000)).unwrap();
        let root = Root::open(&d).unwrap();
        let mut c = FileCache::new(100, 1 << 20, 1000, 1000, 10_000);
        for f in [&b"/keep"[..], b"/gone", b"/idle", b"/big"] {
            assert!(matches!(lookup(&mut c, &root, f, 0), Lookup::File(_)));
        }
        assert_eq!(c.mapped(), 3, "big is over --inline-max");
        // Within validity nothing is checked; after it, a deleted file (mapped or streamed) goes.
        std::fs::remove_file(d.join("gone")).unwrap();
        std::fs::write(d.join("big.new"), b"new").unwrap();
        std::fs::rename(d.join("big.new"), d.join("big")).unwrap();
        assert_eq!(c.sweep(500), 0);
        for f in [&b"/keep"[..], b"/idle"] {
            assert!(matches!(lookup(&mut c, &root, f, 500), Lookup::File(_)));
        }
        assert_eq!(c.sweep(1500), 2, "the deleted and the renamed-over file");
        assert_eq!((c.len(), c.mapped()), (2, 2));
        assert!(matches!(
            lookup(&mut c, &root, b"/keep", 9_000),
            Lookup::File(_)
        ));
        // idle was last used at 500: inactive from 10,500; keep stays.
        assert_eq!(c.sweep(10_499), 0);
        assert_eq!(c.sweep(10_500), 1);
        assert_eq!((c.len(), c.mapped()), (1, 1));
        assert!(c.maps[0].contains_key(&b"/keep"[..]));
        let _ = std::fs::remove_dir_all(&d);
    }

    /// `coding`'s representation of `path`, as the response layer asks for it.
    fn variant(
        c: &mut FileCache,
        root: &Root,
        path: &[u8],
        coding: Coding,
        sources: Sources,
        now_ms: u64,
    ) -> Lookup {
        use clap::Parser;
        let cfg = crate::config::ServeConfig::from(&crate::config::Cli::parse_from(["ringstatic"]));
        let Lookup::File(origin) = lookup(c, root, path, now_ms) else {
            panic!("no original")
        };
        let key = Key { path, coding };
        c.lookup_variant(root, key, now_ms, &origin, sources, |facts| {
            crate::response::prepare(&cfg, facts)
        })
    }

    fn set_mtime(p: &std::path::Path, secs: u64) {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        let f = std::fs::File::options().write(true).open(p).unwrap();
        f.set_times(std::fs::FileTimes::new().set_modified(t))
            .unwrap();
    }

    #[test]
    fn variants_fresh_stale_compressed_and_none() {
        let d = tmpdir("variants");
        let text: Vec<u8> = (0..400)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        std::fs::write(d.join("a.js"), &text).unwrap();
        std::fs::write(d.join("a.js.gz"), b"sibling bytes").unwrap();
        set_mtime(&d.join("a.js"), 1_000_000);
        set_mtime(&d.join("a.js.gz"), 1_000_000);
        let root = Root::open(&d).unwrap();
        let both = Sources {
            sibling: true,
            compress: true,
        };
        let mut c = FileCache::new(100, 1 << 20, 64 << 10, 100, 60_000);
        // A sibling as new as the original: its bytes, the original's type and mtime.
        let Lookup::File(gz) = variant(&mut c, &root, b"/a.js", Coding::Gzip, both, 0) else {
            panic!("the sibling")
        };
        assert_eq!(gz.size, 13);
        assert_eq!(gz.mtime, 1_000_000);
        assert!(gz.etag().ends_with(b"-gzip\""), "{:?}", gz.etag());
        assert!(gz.content_type.starts_with("text/javascript"));
        assert!(gz
            .lines()
            .windows(22)
            .any(|w| w == b"Content-Encoding: gzip"));
        // No sibling for br: compressed here, smaller than the file.
        let Lookup::File(br) = variant(&mut c, &root, b"/a.js", Coding::Br, both, 0) else {
            panic!("compressed")
        };
        assert!(br.size < text.len() as u64 && matches!(br.body, Body::Memory(_)));
        // Nothing for zstd when compression is off and no sibling exists.
        let sibling_only = Sources {
            sibling: true,
            compress: false,
        };
        assert!(matches!(
            variant(&mut c, &root, b"/a.js", Coding::Zstd, sibling_only, 0),
            Lookup::Status(404)
        ));
        // The sibling made stale: after the validity it is dropped for a compressed copy.
        set_mtime(&d.join("a.js.gz"), 999_999);
        let Lookup::File(g) = variant(&mut c, &root, b"/a.js", Coding::Gzip, both, 50) else {
            panic!()
        };
        assert_eq!(g.size, 13, "trusted within validity");
        let Lookup::File(g) = variant(&mut c, &root, b"/a.js", Coding::Gzip, both, 200) else {
            panic!()
        };
        assert_ne!(g.size, 13, "a stale sibling is never used");
        assert!(g.etag().ends_with(b"-gzip\""));
        // Unchanged sources keep the entry (the same Rc) past the validity.
        let Lookup::File(g2) = variant(&mut c, &root, b"/a.js", Coding::Gzip, both, 400) else {
            panic!()
        };
        assert!(Rc::ptr_eq(&g, &g2));
        let _ = std::fs::remove_dir_all(&d);
    }
}
