//! Ending connections: lingering for the client's FIN after our last response, closing through
//! the ring with no system call of our own, and freeing the slot once the last completion that
//! refers to the connection is in.

use super::Worker;
use crate::ring::key::{Key, Op};
use crate::ring::op;

/// How long a closing connection waits for the client's FIN after ours.
const LINGER_MS: u64 = 5_000;
/// The same while the worker drains.
const DRAIN_LINGER_MS: u64 = 1_000;

impl Worker {
    /// After the last response: shut down our side and wait briefly for the client's FIN.
    pub(super) fn start_linger(&mut self, slot: u32) {
        let deadline = self.clock.now_ms
            + if self.draining {
                DRAIN_LINGER_MS
            } else {
                LINGER_MS
            };
        let Some(c) = self.conns.at(slot) else { return };
        let owed = c.session.ending() == Some(crate::session::Ending::Linger);
        if c.at_eof() || (!owed && !c.session.has_input()) {
            // The client asked for the close (or is gone) and sent nothing we did not read:
            // close now, as nginx does, instead of waiting for its FIN.
            return self.close_now(slot);
        }
        if !c.start_linger(deadline) {
            return;
        }
        // Directly, not through the ring: IORING_OP_SHUTDOWN is always punted to an io-wq
        // thread, so it could run after the close below and hit a new socket with the same number.
        // SAFETY: shutting down a socket we own; no effect on memory.
        unsafe { libc::shutdown(c.fd(), libc::SHUT_WR) };
        if c.wants_recv() {
            self.arm_recv(slot);
        }
    }

    /// Closes a connection whose output is all sent, with no system call: a cancel of its recv
    /// and the close ride with the next submission, in that order. The fd number is released at
    /// once; the socket itself (and its FIN) when the cancelled recv drops its reference, in the
    /// same enter. The slot stays taken until the recv's last completion arrives.
    fn close_now(&mut self, slot: u32) {
        let Some(c) = self.conns.at(slot) else { return };
        if c.is_closing() || c.writing() != crate::conn::Writing::Idle {
            return self.begin_close(slot);
        }
        c.begin_closing();
        c.fd_released();
        let (recv, gen, fd) = (c.recv_in_flight(), c.gen(), c.fd());
        if recv {
            self.cancel(Key::new(Op::Recv, slot, gen));
        }
        self.push_close(slot, fd);
        self.try_free(slot);
    }

    /// Ends a connection now: shut the socket down both ways (which completes a pending recv
    /// with 0, a poll with POLLHUP and fails a send), cancel what may still wait, and free the
    /// slot when the last completion is in.
    pub(super) fn begin_close(&mut self, slot: u32) {
        let Some(c) = self.conns.at(slot) else { return };
        let clean = c.life() == crate::conn::Lifecycle::Lingering && c.at_eof();
        if !c.begin_closing() {
            return;
        }
        let gen = c.gen();
        if c.writing() == crate::conn::Writing::SendingLast {
            // The send may have completed in the kernel already, and its linked close with it,
            // freeing the fd number for a new socket: touch the send by its key, never the fd.
            // Cancelled, it fails and takes the close with it; `on_send` then frees the slot.
            return self.cancel(Key::new(Op::Send, slot, gen));
        }
        let recv = c.recv_in_flight();
        let poll = c.writing() == crate::conn::Writing::AwaitingWritable;
        if !clean || c.ops_in_flight() {
            // SAFETY: shutting down a socket we own; no effect on memory. Done at once, so
            // that the operations still waiting on it complete now: a pending recv with 0, a
            // poll with POLLHUP, a send with EPIPE.
            let r = unsafe { libc::shutdown(c.fd(), libc::SHUT_RDWR) };
            if r < 0 {
                // Not connected any more (reset): nothing wakes them, so cancel them.
                if recv {
                    self.cancel(Key::new(Op::Recv, slot, gen));
                }
                if poll {
                    self.cancel(Key::new(Op::Writable, slot, gen));
                }
            }
        }
        self.try_free(slot);
    }

    /// Closes the fd and frees the slot once no operation refers to the connection any more.
    pub(super) fn try_free(&mut self, slot: u32) {
        if !self.conns.at(slot).is_some_and(|c| c.can_free()) {
            return;
        }
        let mut c = self.conns.remove(slot).expect("checked above");
        // Its responses end here, sent or not: their access-log lines say how much left.
        self.site.log_ended(&mut c, true, &self.clock);
        if let Some(p) = c.pipe.take() {
            self.pipes.give(p); // kept only if empty
        }
        self.send_pool.take_back(&mut c);
        if c.owns_fd() {
            // No operation refers to the fd any more (checked above). The close rides with the
            // next submission and runs inline there (sockets have no ->flush, so it is never
            // punted to io-wq); until it runs the number stays taken, so no new socket can be
            // confused with it.
            self.push_close(slot, c.fd());
        }
        self.on_conn_freed();
    }

    fn push_close(&mut self, slot: u32, fd: i32) {
        // SAFETY: a close points at no memory; nothing else will use this fd number (the
        // connection is closing and its other operations are done or cancelled ahead of it).
        unsafe { self.ring.push(op::close(fd, slot)) };
    }
}
