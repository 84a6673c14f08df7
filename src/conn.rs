//! One client connection: its socket, its request loop (`Session`), and three small state
//! machines that change only through the named transitions below, each of which refuses (returns
//! `false` and changes nothing) when it is not legal in the current state:
//!
//! - [`Reading`]: whether a recv is in flight, and whether we want more input.
//! - [`Writing`]: which send-side operation is in flight (at most one).
//! - [`Lifecycle`]: open, lingering after our last response, closing.
//!
//! The connection lives in a `Box` in the worker's slot table and is freed only once no operation
//! refers to it (`can_free`). The iovecs and msghdr a sendmsg points at (`SendBufs`) are boxed
//! too, lent by the worker's pool while the connection has output and given back once it is idle
//! (`worker::pool`), so an idle keep-alive connection holds neither them nor an output queue.

use std::os::fd::RawFd;

use io_uring::squeue::Entry;

use crate::files::body::Pipe;
use crate::ring::key::Key;
use crate::ring::op;
use crate::session::Session;

/// Most memory chunks gathered into one sendmsg.
pub const MAX_IOV: usize = 16;

/// The receive side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// No recv in flight; one is armed when `wants_recv` says so.
    Idle,
    /// A recv (the first single-shot one, or the multishot one) is in flight.
    Armed,
    /// Too much unanswered input: no recv is armed until the responses are out.
    Paused,
    /// Input was paused while a recv was in flight; a cancel for it is on its way. `resume`:
    /// input was resumed meanwhile, so the recv is re-armed once its last completion is in.
    Cancelling { resume: bool },
    /// The client shut down its side: nothing more will come.
    Eof,
}

/// The send side: at most one operation in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writing {
    Idle,
    /// A send or sendmsg of queued memory is in flight.
    Sending,
    /// The send in flight carries all of the connection's last response, with a close linked
    /// behind it: the close runs only if every byte left, and is cancelled by the kernel
    /// otherwise. Until the send completes, the fd is ours.
    SendingLast,
    /// Waiting for the socket to become writable (POLLOUT) before the next sendfile or send.
    AwaitingWritable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// Reading requests and writing responses.
    Open,
    /// Our last response is sent and our side is shut down (FIN sent); reading and discarding
    /// until the client closes too, so unread request bytes never turn our close into a reset
    /// that destroys the response in the client's receive buffer.
    Lingering,
    /// Shut down both ways; waiting for the last completions before the slot is freed.
    /// `fd_released`: its close is already submitted (or ran linked behind the last send), so
    /// the fd number may belong to a new socket and must not be used again.
    Closing { fd_released: bool },
}

pub struct Conn {
    fd: RawFd,
    /// The slot's generation when this connection took it (keys carry it).
    gen: u32,
    reading: Reading,
    writing: Writing,
    life: Lifecycle,
    /// Requests received and responses queued.
    pub session: Session,
    /// When the current timeout (head, keep-alive, send or linger) expires, monotonic ms.
    deadline_ms: u64,
    /// A partial head is buffered; its timeout runs from its first byte and is not extended.
    head_started: bool,
    /// When the connection last became idle (everything answered, nothing buffered).
    idle_since_ms: u64,
    /// The client's address as text, kept only when the access log is on.
    pub peer: Option<Box<[u8]>>,
    /// On a proxy-protocol listener, until its header is complete: the header bytes so far
    /// (empty until a header arrives split across reads). Boxed: a pointer, not a Vec's three
    /// words, in every connection.
    #[allow(clippy::box_collection)]
    pub proxy: Option<Box<Vec<u8>>>,
    /// Responses queued and not yet all sent, and when the first of them was read (for the
    /// time-to-last-byte histogram).
    unsent: u32,
    queued_at_ms: u64,
    /// The keep-alive timeout (not the header timeout) is the one running.
    keepalive: bool,
    /// The pipe of a splice transfer in flight (`--large-body splice`), from the worker's pool.
    pub pipe: Option<Pipe>,
    /// What a sendmsg in flight points at, lent by the worker's pool; untouched (and not given
    /// back) until its completion.
    bufs: Option<Box<SendBufs>>,
    /// On a `tls` listener: the TLS state; a send in flight points into its buffer.
    pub tls: Option<Box<crate::tls::stream::TlsStream>>,
    /// On a plain listener with `--redirect-https`: every request is redirected.
    pub redirect_https: bool,
}

/// The iovecs and msghdr of one connection's sends: 312 bytes that only a connection with
/// output needs.
pub struct SendBufs {
    iov: [libc::iovec; MAX_IOV],
    msg: libc::msghdr,
}

impl SendBufs {
    pub fn new() -> Box<SendBufs> {
        Box::new(SendBufs {
            iov: [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; MAX_IOV],
            // SAFETY: msghdr is a plain C struct for which all-zero is a valid (empty) value.
            msg: unsafe { std::mem::zeroed() },
        })
    }
}

/// What `gather` found at the front of the output.
pub struct Gathered {
    /// Memory chunks placed in the iovecs.
    pub chunks: usize,
    /// A file range follows them.
    pub file_follows: bool,
}

impl Conn {
    pub fn new(fd: RawFd, gen: u32, now_ms: u64, header_timeout_ms: u64) -> Conn {
        Conn {
            fd,
            gen,
            reading: Reading::Idle,
            writing: Writing::Idle,
            life: Lifecycle::Open,
            session: Session::default(),
            deadline_ms: now_ms + header_timeout_ms,
            head_started: false,
            idle_since_ms: now_ms,
            peer: None,
            proxy: None,
            unsent: 0,
            queued_at_ms: 0,
            keepalive: false,
            pipe: None,
            bufs: None,
            tls: None,
            redirect_https: false,
        }
    }

    /// Whether the connection holds send buffers.
    pub fn has_bufs(&self) -> bool {
        self.bufs.is_some()
    }

    /// Gives the connection send buffers (it has none).
    pub fn lend_bufs(&mut self, b: Box<SendBufs>) {
        if self.bufs.is_none() {
            self.bufs = Some(b);
        }
    }

    /// Takes its send buffers back, unless a send in flight points at them.
    pub fn return_bufs(&mut self) -> Option<Box<SendBufs>> {
        if self.writing != Writing::Idle {
            return None;
        }
        self.bufs.take()
    }

    pub fn fd(&self) -> RawFd {
        self.fd
    }

    pub fn gen(&self) -> u32 {
        self.gen
    }

    pub fn reading(&self) -> Reading {
        self.reading
    }

    pub fn writing(&self) -> Writing {
        self.writing
    }

    pub fn life(&self) -> Lifecycle {
        self.life
    }

    // ----- reading ------------------------------------------------------------------------------

    /// Whether a recv should be armed now. Not while a last response (Connection: close) is
    /// being written: the connection closes once it is out, and a recv armed meanwhile would
    /// only have to be cancelled. Lingering reads until the client's FIN.
    pub fn wants_recv(&self) -> bool {
        self.reading == Reading::Idle
            && match self.life {
                Lifecycle::Open => self.session.ending().is_none(),
                Lifecycle::Lingering => true,
                Lifecycle::Closing { .. } => false,
            }
    }

    /// Idle -> Armed, when a recv is wanted; the caller submits it.
    pub fn arm_recv(&mut self) -> bool {
        if !self.wants_recv() {
            return false;
        }
        self.reading = Reading::Armed;
        true
    }

    /// The recv in flight posted its last completion (no IORING_CQE_F_MORE).
    pub fn recv_ended(&mut self) -> bool {
        self.reading = match self.reading {
            Reading::Armed => Reading::Idle,
            Reading::Cancelling { resume: true } => Reading::Idle,
            Reading::Cancelling { resume: false } => Reading::Paused,
            _ => return false,
        };
        true
    }

    /// The client shut down its side. Only with no recv in flight (a recv that returns 0 ends).
    pub fn got_eof(&mut self) -> bool {
        match self.reading {
            Reading::Idle | Reading::Paused => {
                self.reading = Reading::Eof;
                true
            }
            _ => false,
        }
    }

    /// Stops taking input. Returns whether a recv is in flight and must be cancelled (by its
    /// key; at most one cancel per armed recv).
    pub fn pause_input(&mut self) -> bool {
        match self.reading {
            Reading::Armed => {
                self.reading = Reading::Cancelling { resume: false };
                true
            }
            Reading::Idle => {
                self.reading = Reading::Paused;
                false
            }
            _ => false,
        }
    }

    /// Takes input again after a pause.
    pub fn resume_input(&mut self) -> bool {
        self.reading = match self.reading {
            Reading::Paused => Reading::Idle,
            Reading::Cancelling { .. } => Reading::Cancelling { resume: true },
            _ => return false,
        };
        true
    }

    pub fn recv_in_flight(&self) -> bool {
        matches!(self.reading, Reading::Armed | Reading::Cancelling { .. })
    }

    pub fn at_eof(&self) -> bool {
        self.reading == Reading::Eof
    }

    // ----- writing ------------------------------------------------------------------------------

    /// Places the memory chunks at the front of the output in the iovecs (at most `MAX_IOV`).
    /// Send buffers are normally lent by the worker's pool before; made here if not.
    pub fn gather(&mut self) -> Gathered {
        let mut n = 0;
        let mut file_follows = false;
        let b = self.bufs.get_or_insert_with(SendBufs::new);
        for ch in self.session.out().iter() {
            match ch.remaining_iov() {
                Some(iov) if n < MAX_IOV => {
                    b.iov[n] = iov;
                    n += 1;
                }
                Some(_) => break,
                None => {
                    file_follows = true;
                    break;
                }
            }
        }
        Gathered {
            chunks: n,
            file_follows,
        }
    }

    /// Sends the first `n` gathered iovecs now, from this thread (a header corked before a file
    /// body). Returns what sendmsg(2) returned.
    pub fn sendmsg_now(&mut self, n: usize, flags: i32) -> isize {
        let b = self.bufs.get_or_insert_with(SendBufs::new);
        let n = n.min(MAX_IOV);
        b.msg.msg_iov = b.iov.as_mut_ptr();
        b.msg.msg_iovlen = n;
        // SAFETY: the iovecs point into chunks owned by the session's output, alive and
        // unmodified for this synchronous call.
        unsafe { libc::sendmsg(self.fd, &b.msg, flags) }
    }

    /// Idle -> Sending (or SendingLast when a close is linked behind it): the entry for the
    /// first `n` gathered iovecs. The caller pushes it; the chunks, iovecs and msghdr it points
    /// at stay untouched in this boxed Conn until `send_done`.
    pub fn start_send(
        &mut self,
        n: usize,
        flags: i32,
        close_linked: bool,
        key: Key,
    ) -> Option<Entry> {
        if self.writing != Writing::Idle || n == 0 || n > MAX_IOV || self.is_closing() {
            return None;
        }
        let b = self.bufs.as_mut()?;
        self.writing = if close_linked {
            Writing::SendingLast
        } else {
            Writing::Sending
        };
        Some(if n == 1 {
            op::send(
                self.fd,
                b.iov[0].iov_base as *const u8,
                b.iov[0].iov_len as u32,
                flags,
                key,
            )
        } else {
            b.msg.msg_iov = b.iov.as_mut_ptr();
            b.msg.msg_iovlen = n;
            op::sendmsg(self.fd, &b.msg, flags, key)
        })
    }

    /// Idle -> Sending: one send of `len` bytes at `ptr`, which the caller keeps alive and
    /// unchanged until the completion (a TLS connection's sealed records).
    pub fn start_send_bytes(&mut self, ptr: *const u8, len: u32, key: Key) -> Option<Entry> {
        if self.writing != Writing::Idle || len == 0 || self.is_closing() {
            return None;
        }
        self.writing = Writing::Sending;
        Some(op::send(self.fd, ptr, len, libc::MSG_NOSIGNAL, key))
    }

    /// Whether a TLS connection has records to send that are not in the output queue.
    pub fn tls_wants_write(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Whether a TLS connection is still in its handshake.
    pub fn tls_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.is_handshaking())
    }

    /// Sending -> Idle. `Some(true)` if a close was linked behind that send.
    pub fn send_done(&mut self) -> Option<bool> {
        let linked = match self.writing {
            Writing::Sending => false,
            Writing::SendingLast => true,
            _ => return None,
        };
        self.writing = Writing::Idle;
        Some(linked)
    }

    /// Idle -> AwaitingWritable; the caller submits the poll.
    pub fn await_writable(&mut self) -> bool {
        if self.writing != Writing::Idle || self.is_closing() {
            return false;
        }
        self.writing = Writing::AwaitingWritable;
        true
    }

    /// AwaitingWritable -> Idle.
    pub fn writable_done(&mut self) -> bool {
        if self.writing != Writing::AwaitingWritable {
            return false;
        }
        self.writing = Writing::Idle;
        true
    }

    // ----- lifecycle ----------------------------------------------------------------------------

    /// Open -> Lingering, after the last response is out: unread input is dropped, reading
    /// resumes (to see the FIN), the linger deadline runs.
    pub fn start_linger(&mut self, deadline_ms: u64) -> bool {
        if self.life != Lifecycle::Open {
            return false;
        }
        self.life = Lifecycle::Lingering;
        self.session.discard_input();
        self.resume_input();
        self.deadline_ms = deadline_ms;
        true
    }

    /// Open or Lingering -> Closing.
    pub fn begin_closing(&mut self) -> bool {
        if self.is_closing() {
            return false;
        }
        self.life = Lifecycle::Closing { fd_released: false };
        self.session.discard_input();
        true
    }

    /// Closing: its close is submitted (or ran linked behind the last send).
    pub fn fd_released(&mut self) -> bool {
        match self.life {
            Lifecycle::Closing { fd_released: false } => {
                self.life = Lifecycle::Closing { fd_released: true };
                true
            }
            _ => false,
        }
    }

    pub fn is_closing(&self) -> bool {
        matches!(self.life, Lifecycle::Closing { .. })
    }

    /// Whether the fd still has to be closed when the slot is freed.
    pub fn owns_fd(&self) -> bool {
        !matches!(self.life, Lifecycle::Closing { fd_released: true })
    }

    /// Whether any ring operation still refers to this connection's fd or memory.
    pub fn ops_in_flight(&self) -> bool {
        self.recv_in_flight() || self.writing != Writing::Idle
    }

    /// Closing, and no operation refers to the connection any more: its slot can be freed.
    pub fn can_free(&self) -> bool {
        self.is_closing() && !self.ops_in_flight()
    }

    /// Nothing to send, nothing being sent, nothing half-received.
    pub fn is_idle(&self) -> bool {
        self.session.out().is_empty() && self.writing == Writing::Idle && !self.session.has_input()
    }

    // ----- timeouts -----------------------------------------------------------------------------

    pub fn expired(&self, now_ms: u64) -> bool {
        !self.is_closing() && now_ms >= self.deadline_ms
    }

    /// A response is making progress: the send timeout runs from now.
    pub fn sending(&mut self, deadline_ms: u64) {
        self.deadline_ms = deadline_ms;
    }

    /// Everything asked for is answered: wait for the next request. With nothing buffered the
    /// keep-alive timeout runs from now; with a partial head buffered, the header timeout runs
    /// from that head's first byte and is not extended by later bytes.
    pub fn await_request(&mut self, now_ms: u64, keepalive_ms: u64, header_ms: u64) {
        if !self.session.has_input() {
            self.head_started = false;
            self.keepalive = true;
            self.idle_since_ms = now_ms;
            self.deadline_ms = now_ms + keepalive_ms;
        } else if !self.head_started {
            self.head_started = true;
            self.keepalive = false;
            self.deadline_ms = now_ms + header_ms;
        }
    }

    /// Which timeout `expired` reports, as `metrics::TIMEOUT_KINDS` orders them: header,
    /// keepalive, send, linger.
    pub fn timeout_kind(&self) -> usize {
        if self.life == Lifecycle::Lingering {
            3
        } else if self.writing != Writing::Idle || !self.session.out().is_empty() {
            2
        } else if self.keepalive && !self.head_started {
            1
        } else {
            0
        }
    }

    /// `n` responses were queued at `now_ms`.
    #[inline]
    pub fn queued(&mut self, n: u64, now_ms: u64) {
        if n > 0 {
            if self.unsent == 0 {
                self.queued_at_ms = now_ms;
            }
            self.unsent = self.unsent.saturating_add(n as u32);
        }
    }

    /// The output has drained: the responses queued since it was last empty are all sent.
    /// Returns how many, and how long since the first was queued.
    #[inline]
    pub fn all_sent(&mut self, now_ms: u64) -> Option<(u64, u64)> {
        if self.unsent == 0 || !self.session.out().is_empty() {
            return None;
        }
        let n = std::mem::take(&mut self.unsent) as u64;
        Some((n, now_ms.saturating_sub(self.queued_at_ms)))
    }

    /// How long the connection has been idle.
    pub fn idle_for(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.idle_since_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::body::Chunk;
    use crate::ring::key::Op;

    fn conn() -> Conn {
        Conn::new(-1, 0, 1_000, 10_000)
    }

    fn key() -> Key {
        Key::new(Op::Send, 0, 0)
    }

    #[test]
    fn reading_legal_transitions() {
        let mut c = conn();
        assert!(c.wants_recv());
        assert!(c.arm_recv());
        assert_eq!(c.reading(), Reading::Armed);
        assert!(c.recv_ended());
        assert_eq!(c.reading(), Reading::Idle);
        // Paused while armed: a cancel, then Paused once the recv ends.
        assert!(c.arm_recv());
        assert!(c.pause_input(), "an armed recv must be cancelled");
        assert_eq!(c.reading(), Reading::Cancelling { resume: false });
        assert!(c.recv_ended());
        assert_eq!(c.reading(), Reading::Paused);
        assert!(!c.wants_recv());
        assert!(c.resume_input());
        assert!(c.wants_recv());
        // Paused while idle: no cancel.
        assert!(!c.pause_input());
        assert_eq!(c.reading(), Reading::Paused);
        assert!(c.resume_input());
        // Resumed while the cancel is on its way: re-armed once the recv has ended.
        assert!(c.arm_recv());
        assert!(c.pause_input());
        assert!(c.resume_input());
        assert!(c.recv_ended());
        assert_eq!(c.reading(), Reading::Idle);
        assert!(c.got_eof());
        assert!(c.at_eof());
        assert!(!c.wants_recv());
    }

    #[test]
    fn reading_illegal_transitions_are_refused() {
        let mut c = conn();
        assert!(!c.recv_ended(), "no recv in flight");
        assert!(c.arm_recv());
        assert!(!c.arm_recv(), "one recv at a time");
        assert!(!c.got_eof(), "a recv that returns 0 ends first");
        assert!(!c.resume_input(), "not paused");
        assert!(c.recv_ended());
        assert!(c.got_eof());
        assert!(!c.arm_recv(), "nothing more comes after EOF");
        assert!(!c.pause_input());
        assert_eq!(c.reading(), Reading::Eof);
    }

    #[test]
    fn writing_one_operation_at_a_time() {
        let mut c = conn();
        c.session.out_mut().push_back(Chunk::Owned {
            buf: b"hello".to_vec(),
            pos: 0,
        });
        let g = c.gather();
        assert_eq!((g.chunks, g.file_follows), (1, false));
        assert!(
            c.start_send(0, 0, false, key()).is_none(),
            "nothing gathered"
        );
        assert!(c.start_send(1, 0, false, key()).is_some());
        assert!(
            c.start_send(1, 0, false, key()).is_none(),
            "a send is in flight"
        );
        assert!(!c.await_writable(), "a send is in flight");
        assert!(!c.writable_done());
        assert_eq!(c.send_done(), Some(false));
        assert_eq!(c.send_done(), None, "no send in flight");
        assert!(c.await_writable());
        assert!(
            c.start_send(1, 0, false, key()).is_none(),
            "a poll is in flight"
        );
        assert!(c.writable_done());
        assert!(c.start_send(1, 0, true, key()).is_some());
        assert_eq!(c.writing(), Writing::SendingLast);
        assert_eq!(c.send_done(), Some(true));
    }

    #[test]
    fn lifecycle_open_lingering_closing() {
        let mut c = conn();
        assert!(c.start_linger(5_000));
        assert_eq!(c.life(), Lifecycle::Lingering);
        assert!(c.wants_recv(), "lingering reads until the FIN");
        assert!(!c.start_linger(5_000), "only from Open");
        assert!(c.begin_closing());
        assert!(!c.begin_closing(), "already closing");
        assert!(!c.wants_recv());
        assert!(c.owns_fd());
        assert!(c.fd_released());
        assert!(!c.fd_released());
        assert!(!c.owns_fd());
        assert!(c.can_free());
        assert!(!c.start_linger(5_000));
    }

    #[test]
    fn closing_waits_for_operations_in_flight() {
        let mut c = conn();
        assert!(c.arm_recv());
        assert!(c.begin_closing());
        assert!(!c.can_free(), "the recv still refers to it");
        assert!(!c.arm_recv(), "no new recv while closing");
        assert!(!c.await_writable(), "no new poll while closing");
        assert!(c.recv_ended());
        assert!(c.can_free());
    }

    #[test]
    fn an_idle_connection_is_small() {
        // With the slot table's pointer and the allocator's header, under the 300 bytes an idle
        // keep-alive connection may cost (README: what a worker costs per connection).
        let size = std::mem::size_of::<Conn>();
        eprintln!("size_of::<Conn>() = {size}");
        assert!(size <= 256, "{size}");
        let c = conn();
        assert!(!c.has_bufs() && !c.session.has_queue());
    }

    #[test]
    fn timeouts() {
        let mut c = conn();
        assert!(!c.expired(10_999));
        assert!(
            c.expired(11_000),
            "the header timeout runs from the connection's start"
        );
        c.await_request(20_000, 60_000, 10_000);
        assert!(!c.expired(79_999));
        assert!(c.expired(80_000), "keep-alive timeout");
        assert_eq!(c.idle_for(20_500), 500);
        assert!(c.begin_closing());
        assert!(!c.expired(u64::MAX), "a closing connection has no timeout");
    }

    #[test]
    fn timeout_kinds_follow_the_state() {
        let mut c = conn();
        assert_eq!(
            c.timeout_kind(),
            0,
            "a new connection waits for its first head"
        );
        c.await_request(20_000, 60_000, 10_000);
        assert_eq!(c.timeout_kind(), 1, "between requests");
        c.session.out_mut().push_back(Chunk::Owned {
            buf: b"hello".to_vec(),
            pos: 0,
        });
        assert_eq!(c.timeout_kind(), 2, "a response is being sent");
        c.session.consume(5);
        assert!(c.start_linger(30_000));
        assert_eq!(c.timeout_kind(), 3);
    }

    #[test]
    fn responses_are_timed_from_queueing_to_the_last_byte() {
        let mut c = conn();
        c.queued(0, 100);
        assert_eq!(c.all_sent(150), None, "nothing queued");
        c.queued(2, 100);
        c.queued(1, 120);
        c.session.out_mut().push_back(Chunk::Owned {
            buf: b"x".to_vec(),
            pos: 0,
        });
        assert_eq!(c.all_sent(130), None, "still sending");
        c.session.consume(1);
        assert_eq!(c.all_sent(140), Some((3, 40)), "timed from the first");
        assert_eq!(c.all_sent(150), None, "counted once");
    }
}
