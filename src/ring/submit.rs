//! The worker's side of the ring: submitting entries without ever waiting for room, and copying
//! completions out.
//!
//! When the kernel's submission queue is full, entries wait in a software queue (as h2o does)
//! and reach the kernel, in order, at the next submission; nothing spins. Entries that must
//! reach the kernel in the same submission (a chain linked with IOSQE_IO_LINK ends at a
//! submission's last entry) move into the kernel's queue together or not at all.

use std::collections::VecDeque;
use std::io;

use io_uring::{squeue::Entry, squeue::Flags, IoUring};

/// One completion, copied out of the completion queue: (user_data, result, flags).
pub type Cqe = (u64, i32, u32);

pub struct Submitter {
    ring: IoUring,
    /// Entries waiting for room in the kernel's queue, oldest first. The bool says the next
    /// entry belongs to the same linked chain.
    backlog: VecDeque<(Entry, bool)>,
    /// How many times an entry had to wait here because the kernel's queue was full.
    full_events: u64,
}

impl Submitter {
    pub fn new(ring: IoUring) -> Submitter {
        Submitter {
            ring,
            backlog: VecDeque::new(),
            full_events: 0,
        }
    }

    pub fn ring(&self) -> &IoUring {
        &self.ring
    }

    /// How often the kernel's submission queue was full (the entry waited in the backlog).
    pub fn full_events(&self) -> u64 {
        self.full_events
    }

    /// Queues one entry for the next submission.
    ///
    /// # Safety
    /// Everything the entry points at (see its constructor in `ring::op`: a buffer, a msghdr with
    /// its iovecs and their buffers, a timespec) must stay valid and unmoved until the kernel
    /// posts its completion (for a multishot operation, the last one, without
    /// IORING_CQE_F_MORE), even if the operation is cancelled or its connection goes away. The
    /// fd it names must stay open until then, or be closed only through the ring behind it.
    pub unsafe fn push(&mut self, sqe: Entry) {
        // SAFETY: the caller's contract above is the one `push_chain` needs.
        unsafe { self.push_chain(&mut [sqe]) }
    }

    /// Queues a chain: every entry but the last gets IOSQE_IO_LINK, so each runs only if the
    /// one before it succeeded, and all reach the kernel in one submission.
    ///
    /// # Safety
    /// As for [`push`](Self::push), for every entry of the chain.
    pub unsafe fn push_linked(&mut self, first: Entry, then: Entry) {
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { self.push_chain(&mut [first.flags(Flags::IO_LINK), then]) }
    }

    /// # Safety
    /// As for [`push`](Self::push).
    unsafe fn push_chain(&mut self, sqes: &mut [Entry]) {
        if self.backlog.is_empty() {
            // SAFETY: the caller keeps what the entries point at alive until their completions.
            if unsafe { self.ring.submission().push_multiple(sqes) }.is_ok() {
                return;
            }
            self.full_events += 1;
        }
        let last = sqes.len() - 1;
        for (i, e) in sqes.iter().enumerate() {
            self.backlog.push_back((e.clone(), i < last));
        }
    }

    /// Moves waiting entries into the kernel's queue while there is room, whole chains only.
    fn refill(&mut self) {
        let mut sq = self.ring.submission();
        while !self.backlog.is_empty() {
            let chain = self
                .backlog
                .iter()
                .position(|(_, more)| !*more)
                .map_or(1, |i| i + 1);
            if sq.capacity() - sq.len() < chain {
                break;
            }
            for _ in 0..chain {
                let (e, _) = self.backlog.pop_front().expect("counted above");
                // SAFETY: the entry's owner promised at `push` to keep what it points at alive
                // until its completion; room was checked above, so this cannot fail.
                let _ = unsafe { sq.push(&e) };
            }
        }
    }

    /// Submits everything queued (backlog included) and waits until at least `want` completions
    /// are ready. EBUSY (completions overflowing) is returned for the caller to drain them.
    pub fn submit_and_wait(&mut self, want: usize) -> io::Result<usize> {
        let mut submitted = 0;
        loop {
            self.refill();
            if self.backlog.is_empty() {
                return self.ring.submit_and_wait(want).map(|n| n + submitted);
            }
            // The kernel's queue is full and more entries wait: hand it these first.
            match self.ring.submit()? {
                0 => return self.ring.submit_and_wait(want).map(|n| n + submitted),
                n => submitted += n,
            }
        }
    }

    /// Submits what is queued without waiting.
    pub fn submit(&mut self) -> io::Result<usize> {
        self.submit_and_wait(0)
    }

    /// Copies every ready completion into `into`, so handlers never run while the completion
    /// queue is being read.
    pub fn collect(&mut self, into: &mut Vec<Cqe>) {
        into.extend(
            self.ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{key::Key, key::Op, op};

    /// More no-op timeouts than the kernel's queue holds all reach the kernel, in order.
    #[test]
    fn a_full_queue_spills_into_the_backlog_and_nothing_is_lost() {
        let Ok(ring) = crate::ring::build(8) else {
            eprintln!("skipped: io_uring is unavailable here");
            return;
        };
        let mut s = Submitter::new(ring);
        let ts = Box::new(io_uring::types::Timespec::new());
        let n = 40u32;
        for i in 0..n {
            // SAFETY: `ts` lives until the end of the test, after every completion is reaped.
            unsafe { s.push(op::timeout(&*ts, Key::new(Op::Tick, i, 0))) };
        }
        assert!(s.full_events() > 0, "an 8-entry queue cannot take 40");
        let mut got = Vec::new();
        while got.len() < n as usize {
            s.submit_and_wait(1).unwrap();
            s.collect(&mut got);
        }
        let slots: Vec<u32> = got
            .iter()
            .map(|&(ud, _, _)| Key::decode(ud).unwrap().slot)
            .collect();
        assert_eq!(slots, (0..n).collect::<Vec<_>>());
    }

    /// A linked pair is never split across submissions: it waits whole until both fit.
    #[test]
    fn a_chain_moves_whole() {
        let Ok(ring) = crate::ring::build(4) else {
            eprintln!("skipped: io_uring is unavailable here");
            return;
        };
        let cap = ring.params().sq_entries() as usize;
        let mut s = Submitter::new(ring);
        let ts = Box::new(io_uring::types::Timespec::new());
        for i in 0..cap as u32 - 1 {
            // SAFETY: `ts` outlives every completion (all are reaped below).
            unsafe { s.push(op::timeout(&*ts, Key::new(Op::Tick, i, 0))) };
        }
        // SAFETY: as above.
        unsafe {
            s.push_linked(
                op::timeout(&*ts, Key::new(Op::Tick, 100, 0)),
                op::timeout(&*ts, Key::new(Op::Tick, 101, 0)),
            )
        };
        assert_eq!(s.backlog.len(), 2, "one free place: the pair waits whole");
        let mut got = Vec::new();
        while got.len() < cap + 1 {
            s.submit_and_wait(1).unwrap();
            s.collect(&mut got);
        }
        let mut slots: Vec<u32> = got
            .iter()
            .map(|&(ud, _, _)| Key::decode(ud).unwrap().slot)
            .collect();
        slots.sort_unstable();
        assert_eq!(&slots[cap - 1..], &[100, 101]);
    }
}
