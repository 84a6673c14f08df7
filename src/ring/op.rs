//! One constructor per io_uring operation ringstatic submits, each carrying its typed key.
//!
//! Building an entry is safe: it only records numbers and addresses. What makes a submission
//! sound is that those addresses stay valid until the completion arrives, and that is the
//! contract of [`Submitter::push`](super::submit::Submitter::push), where the entry is handed to
//! the kernel. Each constructor names what it points at, so a caller knows what to keep alive.

use std::os::fd::RawFd;

use io_uring::{opcode, squeue::Entry, squeue::Flags, types};

use super::key::{Key, Op};

/// One accept on a listening socket: one completion, one connection (or an error). Points at
/// nothing (the peer's address is not asked for).
pub fn accept(listener: RawFd, key: Key) -> Entry {
    opcode::Accept::new(
        types::Fd(listener),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    )
    .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
    .build()
    .user_data(key.encode())
}

/// A multishot accept: one completion per connection until it is cancelled or fails. Points at
/// nothing.
pub fn accept_multi(listener: RawFd, key: Key) -> Entry {
    opcode::AcceptMulti::new(types::Fd(listener))
        .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
        .build()
        .user_data(key.encode())
}

/// Multishot recv into buffers of provided-buffer group `group`; a buffer is taken only when
/// bytes arrive. Points at nothing of ours (the buffer ring is registered with the kernel).
pub fn recv_multi(fd: RawFd, group: u16, key: Key) -> Entry {
    opcode::RecvMulti::new(types::Fd(fd), group)
        .build()
        .user_data(key.encode())
}

/// A single-shot recv of at most `len` bytes into a buffer of `group` that waits for data
/// before trying (IORING_RECVSEND_POLL_FIRST): a connection just accepted from a listener that
/// does not defer accepts usually has nothing to read yet. Points at nothing of ours.
pub fn recv_first(fd: RawFd, group: u16, len: u32, key: Key) -> Entry {
    let sqe = opcode::Recv::new(types::Fd(fd), std::ptr::null_mut(), len)
        .buf_group(group)
        .build()
        .flags(Flags::BUFFER_SELECT)
        .user_data(key.encode());
    poll_first(sqe)
}

/// A send of `len` bytes at `buf`. Points at `buf` until its completion.
pub fn send(fd: RawFd, buf: *const u8, len: u32, flags: i32, key: Key) -> Entry {
    opcode::Send::new(types::Fd(fd), buf, len)
        .flags(flags)
        .build()
        .user_data(key.encode())
}

/// A sendmsg. Points at `msg`, its iovec array and every buffer those iovecs name, until its
/// completion.
pub fn sendmsg(fd: RawFd, msg: *const libc::msghdr, flags: i32, key: Key) -> Entry {
    opcode::SendMsg::new(types::Fd(fd), msg)
        .flags(flags as u32)
        .build()
        .user_data(key.encode())
}

/// A one-shot poll for `events` (POLLIN, POLLOUT). Points at nothing.
pub fn poll(fd: RawFd, events: i16, key: Key) -> Entry {
    opcode::PollAdd::new(types::Fd(fd), events as u32)
        .build()
        .user_data(key.encode())
}

/// A timeout that completes after `ts`. Points at `ts` until its completion.
pub fn timeout(ts: *const types::Timespec, key: Key) -> Entry {
    opcode::Timeout::new(ts).build().user_data(key.encode())
}

/// Cancels the operation submitted with `target`. Points at nothing; its own completion carries
/// nothing we need (the target's completion reports the outcome).
pub fn cancel(target: Key) -> Entry {
    opcode::AsyncCancel::new(target.encode())
        .build()
        .user_data(Key::new(Op::Cancel, target.slot, 0).encode())
}

/// Closes `fd` (a connection's socket, slot `slot`), submitted and forgotten. Points at nothing;
/// the fd number stays taken until it runs, so no new socket can be confused with it.
pub fn close(fd: RawFd, slot: u32) -> Entry {
    opcode::Close::new(types::Fd(fd))
        .build()
        .user_data(Key::new(Op::Teardown, slot, 0).encode())
}

/// Appends `len` bytes at `buf` to `fd` (an O_APPEND file: offset -1 means its position).
/// Points at `buf` until its completion.
pub fn append(fd: RawFd, buf: *const u8, len: u32, key: Key) -> Entry {
    opcode::Write::new(types::Fd(fd), buf, len)
        .offset(u64::MAX)
        .build()
        .user_data(key.encode())
}

/// Sets IORING_RECVSEND_POLL_FIRST on a recv (the io-uring crate has no setter for it).
fn poll_first(sqe: Entry) -> Entry {
    const IORING_RECVSEND_POLL_FIRST: u16 = 1;
    // SAFETY: Entry is #[repr(C)] around the kernel's 64-byte io_uring_sqe, whose u16 ioprio sits
    // at byte offset 2 (kernel ABI); we only OR a flag into it.
    unsafe {
        let mut raw: [u8; 64] = std::mem::transmute(sqe);
        let prio = u16::from_ne_bytes([raw[2], raw[3]]) | IORING_RECVSEND_POLL_FIRST;
        raw[2..4].copy_from_slice(&prio.to_ne_bytes());
        std::mem::transmute(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(e: &Entry) -> [u8; 64] {
        // SAFETY: Entry is the kernel's 64-byte io_uring_sqe (repr(C)); reading it as bytes is
        // a plain copy.
        unsafe { std::mem::transmute_copy(e) }
    }

    #[test]
    fn keys_ride_in_user_data() {
        let k = Key::new(Op::Recv, 7, 3);
        assert_eq!(recv_multi(5, 1, k).get_user_data(), k.encode());
        let c = cancel(k);
        assert_eq!(
            Key::decode(c.get_user_data()),
            Some(Key::new(Op::Cancel, 7, 0))
        );
        assert_eq!(
            Key::decode(close(9, 4).get_user_data()),
            Some(Key::new(Op::Teardown, 4, 0))
        );
    }

    #[test]
    fn first_recv_polls_first_and_selects_a_buffer() {
        let e = recv_first(5, 1, 4096, Key::new(Op::Recv, 1, 1));
        let b = raw(&e);
        assert_eq!(
            u16::from_ne_bytes([b[2], b[3]]) & 1,
            1,
            "POLL_FIRST in ioprio"
        );
        let plain = recv_multi(5, 1, Key::new(Op::Recv, 1, 1));
        assert_eq!(u16::from_ne_bytes([raw(&plain)[2], raw(&plain)[3]]) & 1, 0);
    }
}
