//! The pieces a response is sent as, and how they are sent.
//!
//! A response is a queue of chunks: header bytes we own, a small file's shared head, slices of a
//! small file's mapping, and ranges of a large file's fd. Memory chunks leave through the ring (one send or sendmsg for
//! several); file ranges leave through sendfile(2) called directly on the non-blocking socket, with
//! the ring waiting for writability (a POLLOUT poll) when the socket buffer is full.
//!
//! Which path for which size, as measured with bench/ (2-core VM, one worker, 64 keep-alive
//! connections, 2026-11-26; CPU µs per request, and the ratio to nginx in the same run):
//!
//! | file  | from memory, one send | sendfile(2)        | splice file->pipe->socket |
//! |-------|-----------------------|--------------------|---------------------------|
//! | 16 KiB| 6.64 (0.73)           | 9.00 (0.99)        | 7.54 (0.83)               |
//! | 1 MiB | -                     | 97.4 (0.61)        | 180 (1.08)                |
//!
//! So files up to `--inline-max` (64 KiB) leave from memory with their header, and larger ones
//! with sendfile, the default of `--large-body`. Splice loses because it is the same in-kernel
//! work as sendfile (which splices through the task's internal pipe) in two system calls instead
//! of one, plus a pipe to manage; through io_uring it would be worse still, since a file->pipe
//! splice submitted to the ring is always punted to an io-wq thread (2.6 µs per round trip
//! against 0.42 µs for a direct splice(2)). It stays available as `--large-body splice` so the
//! choice can be measured again on other kernels and machines.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use super::entry::Mapping;

pub enum Chunk {
    /// Bytes this connection owns (headers, error pages, small bodies copied after their header).
    Owned { buf: Vec<u8>, pos: usize },
    /// A slice of a shared buffer (a cached file's prebuilt head); the `Rc` keeps it alive while
    /// the kernel reads it.
    Shared {
        buf: Rc<[u8]>,
        pos: usize,
        end: usize,
    },
    /// `pos..end` of a small file's mapping; the `Rc` keeps it mapped while the kernel reads it.
    /// Its bytes are never read here, only handed to the kernel (see `entry::Mapping`).
    Mapped {
        map: Rc<Mapping>,
        pos: usize,
        end: usize,
    },
    /// `offset..end` of a file; the `Rc` keeps the fd open even if the cache evicts it meanwhile.
    File {
        fd: Rc<OwnedFd>,
        offset: u64,
        end: u64,
    },
}

impl Chunk {
    /// The bytes still to send as an iovec, for memory chunks (owned, shared or mapped).
    pub fn remaining_iov(&self) -> Option<libc::iovec> {
        let iov = |m: &[u8]| libc::iovec {
            iov_base: m.as_ptr() as *mut libc::c_void,
            iov_len: m.len(),
        };
        match self {
            Chunk::Owned { buf, pos } => Some(iov(&buf[*pos..])),
            Chunk::Shared { buf, pos, end } => Some(iov(&buf[*pos..*end])),
            Chunk::Mapped { map, pos, end } => Some(map.iov(*pos, *end)),
            Chunk::File { .. } => None,
        }
    }

    /// The bytes still to send, for tests (a mapped chunk's bytes are copied out).
    #[cfg(test)]
    pub fn remaining_bytes(&self) -> Option<Vec<u8>> {
        match self {
            Chunk::Owned { buf, pos } => Some(buf[*pos..].to_vec()),
            Chunk::Shared { buf, pos, end } => Some(buf[*pos..*end].to_vec()),
            Chunk::Mapped { map, pos, end } => Some(map.bytes_for_tests()[*pos..*end].to_vec()),
            Chunk::File { .. } => None,
        }
    }

    pub fn remaining(&self) -> u64 {
        match self {
            Chunk::Owned { buf, pos } => (buf.len() - pos) as u64,
            Chunk::Shared { pos, end, .. } | Chunk::Mapped { pos, end, .. } => (end - pos) as u64,
            Chunk::File { offset, end, .. } => end - offset,
        }
    }

    /// Marks `n` bytes (at most `remaining()`) as sent.
    pub fn advance(&mut self, n: u64) {
        match self {
            Chunk::Owned { pos, .. } | Chunk::Shared { pos, .. } | Chunk::Mapped { pos, .. } => {
                *pos += n as usize
            }
            Chunk::File { offset, .. } => *offset += n,
        }
    }
}

/// What one sendfile(2) attempt achieved.
pub enum SendfileOutcome {
    Sent(u64),
    /// The socket buffer is full: wait for POLLOUT.
    WouldBlock,
    /// The file ended before the range did: it shrank during the transfer.
    FileShrank,
    Failed(io::Error),
}

pub fn sendfile(sock: RawFd, fd: &OwnedFd, offset: u64, len: u64) -> SendfileOutcome {
    let mut off = offset as libc::off_t;
    // One call moves at most this much; fairness between connections comes from the caller's budget.
    let count = len.min(1 << 21) as usize;
    loop {
        // SAFETY: both fds are open for this call (the `Rc` in the chunk keeps the file open);
        // `off` is a valid in/out offset.
        let n = unsafe { libc::sendfile(sock, fd.as_raw_fd(), &mut off, count) };
        if n > 0 {
            return SendfileOutcome::Sent(n as u64);
        }
        if n == 0 {
            return SendfileOutcome::FileShrank;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return SendfileOutcome::WouldBlock,
            _ => return SendfileOutcome::Failed(e),
        }
    }
}

/// A pipe for splice(2) file -> pipe -> socket, held by a connection only while a transfer is in
/// flight. `filled` bytes were taken from the file but not yet sent: such a pipe is never reused
/// by another connection (it is closed instead).
pub struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
    pub filled: usize,
    size: usize,
}

/// The worker's idle pipes (never one pipe per connection).
pub struct PipePool {
    idle: Vec<Pipe>,
    size: usize,
}

/// Idle pipes kept for reuse; more are closed.
const MAX_IDLE_PIPES: usize = 32;

impl PipePool {
    pub fn new(size: usize) -> PipePool {
        PipePool {
            idle: Vec::new(),
            size,
        }
    }

    pub fn take(&mut self) -> io::Result<Pipe> {
        if let Some(p) = self.idle.pop() {
            return Ok(p);
        }
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 fills the two-element array; the fds are wrapped at once.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh fds owned by nobody else.
        let (r, w) = unsafe {
            (
                <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[0]),
                <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[1]),
            )
        };
        // SAFETY: F_SETPIPE_SZ on our pipe; the kernel rounds up or refuses (then the default stays).
        let got =
            unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, self.size as libc::c_int) };
        let size = if got > 0 { got as usize } else { 65536 };
        Ok(Pipe {
            r,
            w,
            filled: 0,
            size,
        })
    }

    pub fn give(&mut self, p: Pipe) {
        if p.filled == 0 && self.idle.len() < MAX_IDLE_PIPES {
            self.idle.push(p);
        }
    }
}

/// What one splice step achieved.
pub enum SpliceOutcome {
    /// `n` bytes went from the pipe to the socket.
    Delivered(u64),
    /// `n` bytes went from the file into the pipe.
    Pulled(u64),
    WouldBlock,
    FileShrank,
    Failed(io::Error),
}

/// One step of file -> pipe -> socket: drain the pipe if it holds anything, else refill it from
/// the file at `offset` (at most `len` bytes). Never sends a count it did not get: a short
/// file -> pipe splice just leaves less in the pipe.
pub fn splice_step(
    sock: RawFd,
    pipe: &mut Pipe,
    fd: &OwnedFd,
    offset: u64,
    len: u64,
) -> SpliceOutcome {
    let flags = libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE;
    loop {
        let n = if pipe.filled > 0 {
            // SAFETY: splice between two fds we own; no user memory is touched.
            unsafe {
                libc::splice(
                    pipe.r.as_raw_fd(),
                    std::ptr::null_mut(),
                    sock,
                    std::ptr::null_mut(),
                    pipe.filled,
                    flags | libc::SPLICE_F_MORE,
                )
            }
        } else {
            let mut off = offset as libc::loff_t;
            let want = (len as usize).min(pipe.size);
            // SAFETY: as above; `off` is a valid in/out offset.
            unsafe {
                libc::splice(
                    fd.as_raw_fd(),
                    &mut off,
                    pipe.w.as_raw_fd(),
                    std::ptr::null_mut(),
                    want,
                    flags,
                )
            }
        };
        if n > 0 {
            return if pipe.filled > 0 {
                pipe.filled -= n as usize;
                SpliceOutcome::Delivered(n as u64)
            } else {
                pipe.filled = n as usize;
                SpliceOutcome::Pulled(n as u64)
            };
        }
        if n == 0 {
            return if pipe.filled > 0 {
                SpliceOutcome::WouldBlock
            } else {
                SpliceOutcome::FileShrank
            };
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return SpliceOutcome::WouldBlock,
            _ => return SpliceOutcome::Failed(e),
        }
    }
}
