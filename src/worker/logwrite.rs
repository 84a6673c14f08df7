//! The access log's batches, written through the ring: lines collect in the log's buffer and
//! one write per batch (at most one in flight) appends them, so logging costs no system call
//! per request. At exit the batch in flight is waited for and the rest written directly.

use super::clock::clock_ms;
use super::Worker;
use crate::ring::key::{Key, Op};
use crate::ring::op;

/// How long an exiting worker waits for the batch in flight.
const FINISH_WAIT_MS: u64 = 5_000;

impl Worker {
    /// Submits a batch of access-log lines if one is due (`tick`: whatever is pending).
    pub(super) fn flush_log(&mut self, tick: bool) {
        let Some(log) = self.site.log_mut() else {
            return;
        };
        if log.has_inflight() {
            return;
        }
        if let Some(batch) = log.next_write(tick) {
            self.submit_log_write(batch);
        }
    }

    pub(super) fn on_log_write(&mut self, res: i32) {
        let Some(log) = self.site.log_mut() else {
            return;
        };
        if log.write_done(res) {
            if let Some(batch) = log.next_write(false) {
                self.submit_log_write(batch);
            }
        }
    }

    /// Writes a batch; the batch stays owned by the log until the LogWrite completion.
    fn submit_log_write(&mut self, (fd, ptr, len): (i32, *const u8, u32)) {
        let sqe = op::append(fd, ptr, len, Key::new(Op::LogWrite, 0, 0));
        // SAFETY: the log keeps the batch's buffer (and its fd) unchanged while `has_inflight`,
        // that is until `write_done` is called with this write's completion.
        unsafe { self.ring.push(sqe) };
    }

    /// At exit: wait for the batch in flight, then write the rest directly. Nothing is lost.
    pub(super) fn finish_log(&mut self) {
        let deadline = clock_ms(libc::CLOCK_MONOTONIC) + FINISH_WAIT_MS;
        let mut cqes = Vec::new();
        while self.site.log_mut().is_some_and(|l| l.has_inflight())
            && clock_ms(libc::CLOCK_MONOTONIC) < deadline
        {
            if self.ring.submit_and_wait(1).is_err() {
                break;
            }
            cqes.clear();
            self.ring.collect(&mut cqes);
            for &(ud, res, _) in &cqes {
                if Key::decode(ud).is_some_and(|k| k.op == Op::LogWrite) {
                    self.on_log_write(res);
                }
            }
        }
        if let Some(log) = self.site.log_mut() {
            log.flush_sync();
        }
    }
}
