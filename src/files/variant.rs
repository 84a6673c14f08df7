//! Where a coded representation of a file comes from: a precompressed sibling (`X.br`, `X.zst`,
//! `X.gz` beside `X`) when one is usable, or else the file compressed here, once per file
//! version, into the worker's cache. The cache (`files::cache`) keeps what this finds as an entry
//! of its own under (path, coding), "nothing" included, and asks `unchanged` before trusting it
//! again after `--cache-valid`.
//!
//! A sibling is usable when it is a regular file whose modification time is not older than the
//! original's: an older one is left over from a previous deploy and describes other bytes (nginx's
//! gzip_static would send it). `ringstatic compress` gives siblings the original's mtime.
//!
//! Compressing runs on the worker's loop, so its cost is bounded by what it is given: files from
//! `COMPRESS_MIN` to `COMPRESS_MAX` bytes, at `codec::Level::Fast`. Measured on a 2-CPU VM (best
//! of 5, release build): real JavaScript of 1 MiB takes brotli 4 21 ms, gzip 6 14 ms, zstd 3
//! 3.5 ms; of 512 KiB, brotli 4 7.9 ms, gzip 6 ~7 ms, zstd 3 1.9 ms (twice that while the machine
//! was busy). So the limit is 512 KiB: the largest stall one request can cause is about 8 ms,
//! and one request compresses at most one coding; every later request for that file version
//! is a cache hit. Larger files are sent as they are unless a sibling exists.

use std::os::fd::{AsRawFd, OwnedFd};

use super::cache::Key;
use super::codec::{compress, Level};
use super::entry::{Body, Coding, FileEntry, Version};
use super::open::{fstat, read_all, Root};

/// Smaller files are sent as they are: a coding's framing would eat most of what it saves.
pub const COMPRESS_MIN: u64 = 1024;

/// Larger files are compressed only ahead of time (a sibling): this bounds the worker's stall.
pub const COMPRESS_MAX: u64 = 512 << 10;

/// Which sources a coding may come from (`--precompressed`, `--compress`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sources {
    pub sibling: bool,
    pub compress: bool,
}

/// What a variant entry was made from: the original's version and the sibling's (None when there
/// was none). While both are unchanged, what was found still holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Deps {
    origin: Version,
    sibling: Option<Version>,
}

/// What was found for one coding of one file.
pub(super) enum Found {
    /// A usable sibling, open.
    Sibling(OwnedFd, libc::stat),
    /// The original compressed here; smaller than it.
    Compressed(Vec<u8>),
    /// No representation in this coding: the identity one is sent.
    Nothing,
    /// The original changed while it was being read: nothing now, and nothing to remember.
    Transient,
}

/// The sibling's name beneath the root, after the original's (`origin`, a path from the root as
/// `FileEntry::name`): `/dir/index.html` -> `dir/index.html.br`.
fn sibling_name(origin: &[u8], coding: Coding) -> Vec<u8> {
    let mut rel = origin.strip_prefix(b"/").unwrap_or(origin).to_vec();
    rel.extend_from_slice(coding.suffix().as_bytes());
    rel
}

fn stat_version(root: &Root, rel: &[u8]) -> Option<Version> {
    root.stat(rel)
        .ok()
        .filter(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
        .map(|st| Version::of(&st))
}

/// Whether the original (`origin_rel`, its file beneath the root) and the sibling are the
/// versions `deps` saw (two stats).
pub(super) fn unchanged(
    root: &Root,
    origin_rel: &[u8],
    coding: Coding,
    sources: Sources,
    deps: &Deps,
) -> bool {
    stat_version(root, origin_rel) == Some(deps.origin)
        && (!sources.sibling
            || stat_version(root, &sibling_name(origin_rel, coding)) == deps.sibling)
}

/// Finds `key.coding`'s representation of `origin` (the identity entry of `key.path`).
/// `max_compressed` is the most bytes a compressed variant may hold (the cache's budget).
pub(super) fn find(
    root: &Root,
    key: Key,
    origin: &FileEntry,
    sources: Sources,
    max_compressed: u64,
) -> (Found, Deps) {
    let mut deps = Deps {
        origin: origin.version,
        sibling: None,
    };
    if sources.sibling && !origin.name.is_empty() {
        if let Ok(fd) = root.open_beneath(&sibling_name(&origin.name, key.coding)) {
            if let Ok(st) = fstat(fd.as_raw_fd()) {
                if st.st_mode & libc::S_IFMT == libc::S_IFREG {
                    deps.sibling = Some(Version::of(&st));
                    if (st.st_mtime, st.st_mtime_nsec) >= origin.version.mtime() {
                        return (Found::Sibling(fd, st), deps);
                    }
                }
            }
        }
    }
    if !sources.compress || !(COMPRESS_MIN..=COMPRESS_MAX).contains(&origin.size) {
        return (Found::Nothing, deps);
    }
    let read;
    // A mapped original is read from its fd, never from its mapping (see `entry::Mapping`).
    let heap = match &origin.body {
        Body::Memory(m) => m.heap_bytes().cloned(),
        _ => None,
    };
    let bytes: &[u8] = match (heap, origin.fd()) {
        (Some(b), _) => {
            read = b;
            &read[..]
        }
        (None, Some(fd)) => match read_all(fd, origin.size as usize) {
            Ok(b) if fstat(fd).is_ok_and(|st| Version::of(&st) == origin.version) => {
                read = b.into();
                &read[..]
            }
            _ => return (Found::Transient, deps),
        },
        (None, None) => return (Found::Transient, deps),
    };
    match compress(key.coding, bytes, Level::Fast) {
        Ok(c) if (c.len() as u64) < origin.size && (c.len() as u64) <= max_compressed => {
            (Found::Compressed(c), deps)
        }
        Ok(_) => (Found::Nothing, deps),
        Err(_) => (Found::Transient, deps),
    }
}
