//! Writing: memory chunks leave through the ring (one send, or one sendmsg for several); file
//! ranges leave with sendfile(2) (or splice, `--large-body splice`) called directly on the
//! non-blocking socket, with a POLLOUT poll through the ring when the socket buffer is full.

use std::io;

use crate::config::LargeBody;
use crate::files::body::{sendfile, splice_step, Chunk, SendfileOutcome, SpliceOutcome};
use crate::ring::key::{Key, Op};
use crate::ring::op;

use super::Worker;

/// How much one connection may sendfile before letting the others run.
const SENDFILE_BUDGET: u64 = 4 << 20;

/// What `flush` left behind.
pub(super) enum Flushed {
    /// Everything queued has left.
    Drained,
    /// A send or a writability poll is in flight; its completion continues.
    InFlight,
    /// The connection failed and is closing.
    Closed,
}

impl Worker {
    /// Sends queued output: memory through the ring, file ranges with sendfile(2) or splice.
    pub(super) fn flush(&mut self, slot: u32) -> Flushed {
        let deadline = self.clock.now_ms + self.cfg.send_timeout_ms;
        let Some(c) = self.conns.at(slot) else {
            return Flushed::Closed;
        };
        if c.tls.is_some() {
            return self.flush_tls(slot);
        }
        let mut budget = SENDFILE_BUDGET;
        c.sending(deadline);
        loop {
            let Some(front) = c.session.out().front() else {
                return Flushed::Drained;
            };
            if let (Chunk::File { .. }, LargeBody::Splice) = (front, self.cfg.large_body) {
                if c.pipe.is_none() {
                    match self.pipes.take() {
                        Ok(p) => c.pipe = Some(p),
                        Err(e) => {
                            eprintln!("ringstatic: pipe for splice: {e}");
                            return self.fail(slot);
                        }
                    }
                }
                let sock = c.fd();
                let pipe = c.pipe.as_mut().expect("just set");
                let Some(Chunk::File { fd, offset, end }) = c.session.out_mut().front_mut() else {
                    unreachable!("checked above")
                };
                if *offset == *end && pipe.filled == 0 {
                    c.session.out_mut().pop_front();
                    if !matches!(c.session.out().front(), Some(Chunk::File { .. })) {
                        let p = c.pipe.take().expect("held");
                        self.pipes.give(p);
                    }
                    continue;
                }
                match splice_step(sock, pipe, fd, *offset, *end - *offset) {
                    SpliceOutcome::Pulled(n) => *offset += n,
                    SpliceOutcome::Delivered(n) => {
                        c.session.delivered(n);
                        budget = budget.saturating_sub(n);
                        if budget == 0 {
                            return self.wait_writable(slot);
                        }
                    }
                    SpliceOutcome::WouldBlock => return self.wait_writable(slot),
                    SpliceOutcome::FileShrank | SpliceOutcome::Failed(_) => return self.fail(slot),
                }
                continue;
            }
            if let Chunk::File { fd, offset, end } = front {
                match sendfile(c.fd(), fd, *offset, end - offset) {
                    SendfileOutcome::Sent(n) => {
                        c.session.consume(n);
                        budget = budget.saturating_sub(n);
                        if budget == 0 {
                            // Let other connections run; POLLOUT completes at once if still writable.
                            return self.wait_writable(slot);
                        }
                        continue;
                    }
                    SendfileOutcome::WouldBlock => return self.wait_writable(slot),
                    // Content-Length is already promised: the only honest end is to close.
                    SendfileOutcome::FileShrank | SendfileOutcome::Failed(_) => {
                        return self.fail(slot)
                    }
                }
            }
            let g = c.gather();
            if g.file_follows {
                // Header before a large body: send it now from this thread, corked with MSG_MORE,
                // so it leaves with the file's first bytes and costs no ring round trip.
                let r = c.sendmsg_now(
                    g.chunks,
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT | libc::MSG_MORE,
                );
                if r >= 0 {
                    c.session.consume(r as u64);
                    continue;
                }
                return match io::Error::last_os_error().raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EINTR) => self.wait_writable(slot),
                    _ => self.fail(slot),
                };
            }
            let mut flags = libc::MSG_NOSIGNAL;
            let last = c.session.ending().is_some() && g.chunks == c.session.out().len();
            if last {
                // The last bytes before our FIN: corked, so the close tacks its FIN onto this
                // segment (one packet instead of two).
                flags |= libc::MSG_MORE;
            }
            // The close can ride linked behind this send when nothing else may still happen on
            // the connection: no lingering owed, no unread bytes, no recv armed.
            let link_close = last
                && c.session.ending() == Some(crate::session::Ending::Close)
                && !c.session.has_input()
                && !c.recv_in_flight();
            if link_close {
                // MSG_WAITALL: the kernel retries a short send itself, and only a send that wrote
                // every byte lets the linked close run.
                flags |= libc::MSG_WAITALL;
            }
            let (fd, key) = (c.fd(), Key::new(Op::Send, slot, c.gen()));
            let Some(sqe) = c.start_send(g.chunks, flags, link_close, key) else {
                return Flushed::InFlight;
            };
            if link_close {
                // SAFETY: the send points at the iovecs, msghdr and chunks of this boxed Conn,
                // which stay untouched until `on_send` (the slot is not freed while a send is in
                // flight); the close points at nothing and runs only after the send.
                unsafe { self.ring.push_linked(sqe, op::close(fd, slot)) };
            } else {
                // SAFETY: as above, for the send alone.
                unsafe { self.ring.push(sqe) };
            }
            return Flushed::InFlight;
        }
    }

    /// Waits (through the ring) for the socket to take more bytes.
    fn wait_writable(&mut self, slot: u32) -> Flushed {
        let Some(c) = self.conns.at(slot) else {
            return Flushed::Closed;
        };
        if !c.await_writable() {
            return Flushed::InFlight;
        }
        let sqe = op::poll(c.fd(), libc::POLLOUT, Key::new(Op::Writable, slot, c.gen()));
        // SAFETY: a poll points at no memory; the fd stays open until the slot is freed, which
        // waits for this poll's completion.
        unsafe { self.ring.push(sqe) };
        Flushed::InFlight
    }

    fn fail(&mut self, slot: u32) -> Flushed {
        self.begin_close(slot);
        Flushed::Closed
    }

    pub(super) fn on_send(&mut self, key: Key, res: i32) {
        let deadline = self.clock.now_ms + self.cfg.send_timeout_ms;
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let Some(linked) = c.send_done() else { return };
        if let (Some(t), true) = (c.tls.as_mut(), res > 0) {
            t.sent(res as usize);
        } else if res > 0 {
            c.session.consume(res as u64);
            if let Some((n, ms)) = c.all_sent(self.clock.now_ms) {
                self.site.counters.latency(ms, n);
            }
        }
        if linked {
            // The send carried all of the output, the connection's last response. If every
            // byte left (nothing remains), the linked close has run and the fd number is no
            // longer ours; otherwise the kernel cancelled the close.
            if res > 0 && c.session.out().is_empty() {
                c.begin_closing();
                c.fd_released();
                return self.try_free(key.slot);
            }
            if !c.is_closing() {
                return self.begin_close(key.slot);
            }
            return self.try_free(key.slot);
        }
        if c.is_closing() {
            return self.try_free(key.slot);
        }
        if res > 0 {
            c.sending(deadline);
            self.progress(key.slot);
        } else if res == -libc::EAGAIN || res == -libc::EINTR {
            self.wait_writable(key.slot);
        } else {
            // EPIPE, ECONNRESET, ECANCELED, or a zero-byte send: the client is gone.
            self.begin_close(key.slot);
        }
    }

    pub(super) fn on_writable(&mut self, key: Key, res: i32) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if !c.writable_done() {
            return;
        }
        if c.is_closing() {
            return self.try_free(key.slot);
        }
        if res < 0 && res != -libc::EINTR {
            return self.begin_close(key.slot);
        }
        self.progress(key.slot);
    }
}
