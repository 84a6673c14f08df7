//! The provided-buffer ring that multishot recv reads into.
//!
//! The kernel picks a buffer from this ring only when data arrives, so an idle keep-alive
//! connection holds no read buffer at all. A buffer given to a completion belongs to the worker
//! until `give_back` puts it back in the ring.

use std::io;

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

pub struct BufRing {
    ring: *mut BufRingEntry,
    ring_bytes: usize,
    entries: u16,
    mask: u16,
    /// Local copy of the tail we publish to the kernel.
    tail: u16,
    buf_size: usize,
    /// The buffers themselves, in a mapping of their own: the kernel writes into them behind
    /// Rust's back, so they are only ever reached through this raw pointer.
    bufs: *mut u8,
    bufs_bytes: usize,
    pub group: u16,
}

impl BufRing {
    /// Maps and registers a ring of `entries` buffers (a power of two) of `buf_size` bytes each.
    pub fn new(uring: &IoUring, group: u16, entries: u16, buf_size: usize) -> io::Result<BufRing> {
        assert!(entries.is_power_of_two());
        let ring_bytes = entries as usize * std::mem::size_of::<BufRingEntry>();
        let bufs_bytes = entries as usize * buf_size;
        let ptr = map_anonymous(ring_bytes)?;
        let bufs = match map_anonymous(bufs_bytes) {
            Ok(b) => b,
            Err(e) => {
                // SAFETY: `ptr` was just mapped with this length and nothing refers to it.
                unsafe { libc::munmap(ptr as *mut libc::c_void, ring_bytes) };
                return Err(e);
            }
        };
        let mut br = BufRing {
            ring: ptr as *mut BufRingEntry,
            ring_bytes,
            entries,
            mask: entries - 1,
            tail: 0,
            buf_size,
            bufs,
            bufs_bytes,
            group,
        };
        // SAFETY: the mapping is page aligned, `ring_bytes` long and lives as long as `br`, which
        // unregisters it in Drop before unmapping.
        unsafe {
            uring
                .submitter()
                .register_buf_ring_with_flags(ptr as u64, entries, group, 0)?
        };
        for bid in 0..entries {
            br.push(bid);
        }
        br.publish();
        Ok(br)
    }

    fn push(&mut self, bid: u16) {
        let idx = (self.tail & self.mask) as usize;
        // SAFETY: idx < entries, inside the mapping; the kernel reads only entries below the
        // published tail, and this one is not yet published.
        let e = unsafe { &mut *self.ring.add(idx) };
        e.set_addr(self.bufs as u64 + (bid as usize * self.buf_size) as u64);
        e.set_len(self.buf_size as u32);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field lives in the mapping's first entry; a release store makes the
        // entries written above visible to the kernel before the new tail.
        unsafe {
            let tail = BufRingEntry::tail(self.ring) as *const std::sync::atomic::AtomicU16;
            (*tail).store(self.tail, std::sync::atomic::Ordering::Release);
        }
    }

    /// The bytes the kernel wrote into buffer `bid`.
    /// Valid until `give_back(bid)`; the caller must not hold it across that call.
    pub fn data(&self, bid: u16, len: usize) -> &[u8] {
        if bid >= self.entries {
            return &[];
        }
        // SAFETY: buffer `bid` lies inside the mapping; the kernel handed it to us with this
        // completion and will not write it again until we give it back.
        unsafe {
            std::slice::from_raw_parts(
                self.bufs.add(bid as usize * self.buf_size),
                len.min(self.buf_size),
            )
        }
    }

    /// Returns buffer `bid` to the kernel.
    pub fn give_back(&mut self, bid: u16) {
        if bid < self.entries {
            self.push(bid);
            self.publish();
        }
    }

    pub fn unregister(&self, uring: &IoUring) {
        let _ = uring.submitter().unregister_buf_ring(self.group);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: the mapping was created in `new` with this length; the owner unregisters the
        // ring (or drops the IoUring) before this runs, so the kernel no longer reads it.
        unsafe {
            libc::munmap(self.ring as *mut libc::c_void, self.ring_bytes);
            libc::munmap(self.bufs as *mut libc::c_void, self.bufs_bytes);
        }
    }
}

fn map_anonymous(len: usize) -> io::Result<*mut u8> {
    // SAFETY: an anonymous private mapping with no address hint touches no existing memory.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(ptr as *mut u8)
}
