//! One client connection's state. The worker changes it only through the named transitions in
//! worker.rs (`begin_close`, `start_linger`, ...); this file holds the data and the pure parts.

use std::collections::VecDeque;
use std::os::fd::RawFd;

use crate::files::body::{Chunk, Pipe};

/// Most memory chunks gathered into one sendmsg.
pub const MAX_IOV: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reading requests and writing responses.
    Open,
    /// Our last response is sent and our side is shut down (FIN sent); reading and discarding
    /// until the client closes too, so unread request bytes never turn our close into a reset
    /// that destroys the response in the client's receive buffer.
    Lingering,
    /// Shut down both ways; waiting for the last completions before the fd is closed.
    Closing,
}

pub struct Conn {
    pub fd: RawFd,
    /// The slot's generation when this connection took it (keys carry it).
    pub gen: u32,
    pub phase: Phase,
    /// Bytes of requests not yet answered: a partial head, or pipelined heads held back while
    /// the output queue is full. Empty (and unallocated) for an idle connection.
    pub inbuf: Vec<u8>,
    /// Responses not yet sent, in order.
    pub out: VecDeque<Chunk>,
    pub recv_armed: bool,
    /// Complete requests wait in `inbuf` because the output queue was full.
    pub held_back: bool,
    /// We stopped receiving because too many requests are waiting for their responses.
    pub recv_paused: bool,
    /// A cancel for the armed recv is on its way (sent once per pause).
    pub recv_cancel_sent: bool,
    pub send_inflight: bool,
    pub poll_inflight: bool,
    /// The response being written is the last one on this connection.
    pub close_after_write: bool,
    /// After that last response, wait for the client's FIN before closing (a refused request's
    /// unread bytes would otherwise turn the close into a reset).
    pub must_linger: bool,
    /// The client shut down its side (recv returned 0).
    pub peer_eof: bool,
    /// Its close is already submitted (`close_now`); the fd number may belong to a new socket.
    pub close_queued: bool,
    /// A close is linked behind the send in flight (the last response of a `Connection: close`
    /// request, all of `out`): it runs only once that send has written every byte, and is
    /// cancelled by the kernel if the send fails. Until the send completes the fd is ours.
    pub close_linked: bool,
    /// When the current timeout (head, keep-alive, send or linger) expires, monotonic ms.
    pub deadline_ms: u64,
    /// A partial head is buffered; its timeout runs from its first byte and is not extended.
    pub head_started: bool,
    /// When the connection last became idle (everything answered, nothing buffered).
    pub idle_since_ms: u64,
    /// The client's address as text, kept only when the access log is on.
    pub peer: Option<Box<[u8]>>,
    /// The pipe of a splice transfer in flight (`--large-body splice`), from the worker's pool.
    pub pipe: Option<Pipe>,
    /// Kept here so their address is stable while a sendmsg is in flight (the Conn is boxed).
    pub iov: [libc::iovec; MAX_IOV],
    pub msg: libc::msghdr,
}

impl Conn {
    pub fn new(fd: RawFd, gen: u32, deadline_ms: u64) -> Conn {
        Conn {
            fd,
            gen,
            phase: Phase::Open,
            inbuf: Vec::new(),
            out: VecDeque::new(),
            recv_armed: false,
            held_back: false,
            recv_paused: false,
            recv_cancel_sent: false,
            send_inflight: false,
            poll_inflight: false,
            close_after_write: false,
            must_linger: false,
            peer_eof: false,
            close_queued: false,
            close_linked: false,
            deadline_ms,
            head_started: false,
            idle_since_ms: 0,
            peer: None,
            pipe: None,
            iov: [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; MAX_IOV],
            // SAFETY: msghdr is a plain C struct for which all-zero is a valid (empty) value.
            msg: unsafe { std::mem::zeroed() },
        }
    }

    /// Whether any ring operation still refers to this connection's fd or memory.
    pub fn ops_in_flight(&self) -> bool {
        self.recv_armed || self.send_inflight || self.poll_inflight
    }

    /// Whether a recv should be armed now. Not while a last response (Connection: close) is
    /// being written: the connection closes once it is out, and a recv armed meanwhile would
    /// only have to be cancelled. Lingering reads until the client's FIN.
    pub fn wants_recv(&self) -> bool {
        !self.recv_armed
            && !self.recv_paused
            && !self.peer_eof
            && match self.phase {
                Phase::Open => !self.close_after_write,
                Phase::Lingering => true,
                Phase::Closing => false,
            }
    }

    /// Nothing to send, nothing being sent, nothing half-received.
    pub fn is_idle(&self) -> bool {
        self.out.is_empty() && !self.send_inflight && !self.poll_inflight && self.inbuf.is_empty()
    }
}

/// Drops `n` sent bytes from the front of the queue.
pub fn consume(out: &mut VecDeque<Chunk>, mut n: u64) {
    while n > 0 {
        let Some(front) = out.front_mut() else { return };
        let r = front.remaining();
        if n >= r {
            n -= r;
            out.pop_front();
        } else {
            front.advance(n);
            n = 0;
        }
    }
    // Chunks that were empty from the start (an empty body) are dropped too.
    while out.front().is_some_and(|c| c.remaining() == 0) {
        out.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn consume_across_chunks() {
        let mut q = VecDeque::new();
        q.push_back(Chunk::Owned {
            buf: b"abc".to_vec(),
            pos: 0,
        });
        q.push_back(Chunk::Shared {
            buf: Rc::from(&b"defgh"[..]),
            pos: 1,
            end: 5,
        });
        consume(&mut q, 4);
        assert_eq!(q.len(), 1);
        assert_eq!(q.front().unwrap().remaining_mem().unwrap(), b"fgh");
        consume(&mut q, 3);
        assert!(q.is_empty());
        consume(&mut q, 3);
        assert!(q.is_empty());
    }
}
