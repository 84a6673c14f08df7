//! The per-worker pool of what a response needs only while it is in flight: output queues with
//! room and send buffers (iovecs and msghdr). A connection borrows them when bytes arrive and
//! gives them back once its output has left and it waits for the next request, so an idle
//! keep-alive connection costs only its small `Conn` (see README's figures). Lending and taking
//! back are a pop and a push on a `Vec`: no allocation in the steady state.

use std::collections::VecDeque;

use crate::conn::{Conn, SendBufs};
use crate::files::body::Chunk;

/// Spare queues and buffers kept; more are freed (a burst of busy connections does not leave
/// its peak behind for ever).
const KEEP: usize = 256;
/// Room a new queue starts with: a response is one to three chunks.
const QUEUE_ROOM: usize = 8;

#[derive(Default)]
pub struct SendPool {
    queues: Vec<VecDeque<Chunk>>,
    /// Boxed: a connection holds the same box while a send points into it, so its address must
    /// not change when it moves between the pool and a connection.
    #[allow(clippy::vec_box)]
    bufs: Vec<Box<SendBufs>>,
}

impl SendPool {
    /// Gives `c` an output queue and send buffers, if it lacks them.
    pub fn lend(&mut self, c: &mut Conn) {
        if !c.session.has_queue() {
            let q = self
                .queues
                .pop()
                .unwrap_or_else(|| VecDeque::with_capacity(QUEUE_ROOM));
            c.session.set_queue(q);
        }
        if !c.has_bufs() {
            c.lend_bufs(self.bufs.pop().unwrap_or_else(SendBufs::new));
        }
    }

    /// Takes them back from a connection that is idle or being freed (what its queue still
    /// holds is dropped; buffers a send in flight points at stay with it).
    pub fn take_back(&mut self, c: &mut Conn) {
        if let Some(q) = c.session.take_queue() {
            if self.queues.len() < KEEP && q.capacity() <= MAX_ROOM_KEPT {
                self.queues.push(q);
            }
        }
        if let Some(b) = c.return_bufs() {
            if self.bufs.len() < KEEP {
                self.bufs.push(b);
            }
        }
    }
}

/// A queue that grew past room for this many chunks (a long pipeline, multipart responses) is
/// freed rather than kept.
const MAX_ROOM_KEPT: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lent_while_busy_and_back_when_idle() {
        let mut pool = SendPool::default();
        let mut c = Conn::new(-1, 0, 0, 1000);
        assert!(
            !c.has_bufs() && !c.session.has_queue(),
            "a new Conn holds neither"
        );
        pool.lend(&mut c);
        assert!(c.has_bufs() && c.session.has_queue());
        c.session.out_mut().push_back(Chunk::Owned {
            buf: b"x".to_vec(),
            pos: 0,
        });
        pool.take_back(&mut c);
        assert!(!c.has_bufs() && !c.session.has_queue());
        assert_eq!((pool.queues.len(), pool.bufs.len()), (1, 1));
        assert!(pool.queues[0].is_empty(), "what it held is dropped");
        let mut d = Conn::new(-1, 0, 0, 1000);
        pool.lend(&mut d);
        assert_eq!((pool.queues.len(), pool.bufs.len()), (0, 0), "reused");
    }
}
