//! A few counters each worker publishes to the master through shared memory (a memfd both map):
//! whether it is accepting, a heartbeat that advances on every timer tick, and its connection and
//! request counts. Each worker writes only its own cache line; the master only reads. This is how
//! the master knows when every worker is accepting (READY=1), whether each one still makes
//! progress (the watchdog), and what to put in STATUS=.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

pub const STARTING: u32 = 0;
pub const ACCEPTING: u32 = 1;
pub const DRAINING: u32 = 2;

#[repr(C, align(64))]
pub struct Slot {
    pub pid: AtomicU32,
    pub state: AtomicU32,
    pub heartbeat: AtomicU64,
    pub connections: AtomicU64,
    pub requests: AtomicU64,
    /// The worker's counters as of its last tick (`metrics` names them).
    pub counters: [AtomicU64; crate::metrics::COUNT],
}

/// The master's view: `len` slots.
pub struct Scoreboard {
    ptr: *mut Slot,
    len: usize,
    fd: OwnedFd,
}

impl Scoreboard {
    pub fn create(len: usize) -> io::Result<Scoreboard> {
        // SAFETY: memfd_create with a static NUL-terminated name; checked below.
        let fd = unsafe { libc::memfd_create(c"ringstatic-scoreboard".as_ptr(), 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd owned by nobody else. Not CLOEXEC: workers inherit it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let bytes = len * std::mem::size_of::<Slot>();
        // SAFETY: resizing our own memfd.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), bytes as libc::off_t) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let ptr = map(fd.as_raw_fd(), bytes)?;
        Ok(Scoreboard { ptr, len, fd })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn slot(&self, i: usize) -> &Slot {
        assert!(i < self.len);
        // SAFETY: i < len, inside the mapping, which lives as long as self; Slot is all atomics,
        // so shared access from several processes is sound.
        unsafe { &*self.ptr.add(i) }
    }

    /// Clears a slot before a new worker takes it.
    pub fn reset(&self, i: usize) {
        let s = self.slot(i);
        s.pid.store(0, Ordering::Relaxed);
        s.state.store(STARTING, Ordering::Relaxed);
        s.heartbeat.store(0, Ordering::Relaxed);
        s.connections.store(0, Ordering::Relaxed);
        s.requests.store(0, Ordering::Relaxed);
        for c in &s.counters {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// A second mapping of the same slots, for a thread of the master that only reads them (the
    /// status listener).
    pub fn reader(&self) -> io::Result<BoardReader> {
        let bytes = self.len * std::mem::size_of::<Slot>();
        let ptr = map(self.fd.as_raw_fd(), bytes)?;
        Ok(BoardReader { ptr, len: self.len })
    }
}

/// A read-only user of the scoreboard in another thread of the master.
pub struct BoardReader {
    ptr: *mut Slot,
    len: usize,
}

// SAFETY: the mapping is shared memory of atomics only, valid until drop; moving the owner to
// another thread changes nothing about who may touch it.
unsafe impl Send for BoardReader {}

impl BoardReader {
    pub fn slot(&self, i: usize) -> &Slot {
        assert!(i < self.len);
        // SAFETY: i < len, inside the mapping, which lives as long as self; all atomics.
        unsafe { &*self.ptr.add(i) }
    }
}

impl Drop for BoardReader {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping of this length.
        unsafe {
            libc::munmap(
                self.ptr as *mut libc::c_void,
                self.len * std::mem::size_of::<Slot>(),
            )
        };
    }
}

impl Drop for Scoreboard {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping of this length.
        unsafe {
            libc::munmap(
                self.ptr as *mut libc::c_void,
                self.len * std::mem::size_of::<Slot>(),
            )
        };
    }
}

/// A worker's own slot.
pub struct WorkerSlot {
    ptr: *mut Slot,
    map_len: usize,
    index: usize,
}

impl WorkerSlot {
    /// Maps the inherited scoreboard fd and takes slot `index`; None if that fails (the worker
    /// still serves, the master just sees no progress from it).
    pub fn attach(fd: RawFd, index: usize) -> Option<WorkerSlot> {
        // SAFETY: fstat on an inherited fd.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut st) } < 0 {
            return None;
        }
        let map_len = st.st_size as usize;
        if (index + 1) * std::mem::size_of::<Slot>() > map_len {
            return None;
        }
        let ptr = map(fd, map_len).ok()?;
        // SAFETY: the mapping is ours now; the fd is no longer needed.
        unsafe { libc::close(fd) };
        let s = WorkerSlot {
            ptr,
            map_len,
            index,
        };
        s.get().pid.store(std::process::id(), Ordering::Relaxed);
        Some(s)
    }

    pub fn get(&self) -> &Slot {
        // SAFETY: index was bounds-checked against the mapping in attach.
        unsafe { &*self.ptr.add(self.index) }
    }
}

impl Drop for WorkerSlot {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping of this length.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.map_len) };
    }
}

fn map(fd: RawFd, len: usize) -> io::Result<*mut Slot> {
    // SAFETY: a shared mapping of our memfd; checked for MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(p as *mut Slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_writes_master_reads() {
        let sb = Scoreboard::create(4).unwrap();
        // SAFETY: dup of our own fd, handed to attach which closes it.
        let dup = unsafe { libc::dup(sb.fd()) };
        let w = WorkerSlot::attach(dup, 2).unwrap();
        w.get().state.store(ACCEPTING, Ordering::Relaxed);
        w.get().heartbeat.fetch_add(1, Ordering::Relaxed);
        assert_eq!(sb.slot(2).state.load(Ordering::Relaxed), ACCEPTING);
        assert_eq!(sb.slot(2).heartbeat.load(Ordering::Relaxed), 1);
        assert_eq!(sb.slot(2).pid.load(Ordering::Relaxed), std::process::id());
        assert_eq!(sb.slot(1).state.load(Ordering::Relaxed), STARTING);
        // SAFETY: as above.
        assert!(
            WorkerSlot::attach(unsafe { libc::dup(sb.fd()) }, 4).is_none(),
            "out of range"
        );
    }
}
