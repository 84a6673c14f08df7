//! One worker: a single thread pinned to its CPU, one io_uring, one file cache, its own listening
//! sockets. Nothing here is shared with another worker, so nothing is locked.
//!
//! The loop: submit what is queued and wait for at least one completion (one system call), copy the
//! completions out, then dispatch them one by one (a handler never runs while the completion queue
//! is being iterated), then re-arm what needs re-arming. Every operation in flight is owned by a
//! connection (its fd, its buffers, its iovecs) or by the worker (listeners, timer, signalfd); a
//! connection is freed only after its last completion has arrived.

use std::io;
use std::os::fd::RawFd;

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use crate::accesslog::AccessLog;
use crate::config::LargeBody;
use crate::config::{Cli, ServeConfig};
use crate::conn::{consume, Conn, Phase, MAX_IOV};
use crate::files::body::{sendfile, splice_step, Chunk, PipePool, SendfileOutcome, SpliceOutcome};
use crate::files::cache::FileCache;
use crate::files::open::Root;
use crate::http::date::{format_http_date, HTTP_DATE_LEN};
use crate::http::request::{parse_head, Parsed, Version};
use crate::response::{respond, write_error, Ctx, Disposition};
use crate::ring::bufring::BufRing;
use crate::ring::key::{Key, Op};
use crate::ring::{self, push, push_together};
use crate::scoreboard::{WorkerSlot, ACCEPTING, DRAINING};

/// Exit status of a worker that could not set itself up: the master stops instead of restarting.
pub const EXIT_SETUP_FAILED: i32 = 78;

const RING_ENTRIES: u32 = 1024;
const BUF_GROUP: u16 = 1;
/// 512 buffers of 4 KiB: a request head fits in one; buffers go back to the kernel as soon as
/// their completion is handled, so this bounds only one loop iteration's worth of reads.
const BUF_COUNT: u16 = 512;
const BUF_SIZE: usize = 4096;
/// Responses queued on one connection before we stop parsing its pipelined requests.
const MAX_QUEUED_CHUNKS: usize = 32;
/// Unanswered request bytes buffered before we stop receiving from that connection.
const MAX_INBUF: usize = 64 * 1024;
/// How long a closing connection waits for the client's FIN after ours.
const LINGER_MS: u64 = 5_000;
/// How much one connection may sendfile before letting the others run.
const SENDFILE_BUDGET: u64 = 4 << 20;
/// Pipe size for splice transfers (F_SETPIPE_SZ; 1 MiB is the default pipe-max-size).
const PIPE_SIZE: usize = 1 << 20;
const TICK_MS: u64 = 250;
/// While draining, a keep-alive connection idle this long with nothing in its receive queue is
/// closed; one that is busy (a request on the wire) is answered with `Connection: close` first.
const DRAIN_IDLE_MS: u64 = 100;
const DRAIN_LINGER_MS: u64 = 1_000;
const ACCEPT_BACKOFF_MS: u64 = 500;

struct Listener {
    fd: RawFd,
    armed: bool,
    closed: bool,
    /// TCP_DEFER_ACCEPT is on: a connection is accepted only once its first bytes are here.
    defers: bool,
}

struct Clock {
    now_ms: u64,
    date_secs: i64,
    date: [u8; HTTP_DATE_LEN],
}

impl Clock {
    fn new() -> Clock {
        let mut c = Clock {
            now_ms: 0,
            date_secs: -1,
            date: [b' '; HTTP_DATE_LEN],
        };
        c.update();
        c
    }

    fn update(&mut self) {
        self.now_ms = clock_ms(libc::CLOCK_MONOTONIC_COARSE);
        let secs = (clock_ms(libc::CLOCK_REALTIME_COARSE) / 1000) as i64;
        if secs != self.date_secs {
            self.date_secs = secs;
            self.date = format_http_date(secs);
        }
    }
}

fn clock_ms(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-parameter; these clocks always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

pub struct Worker {
    ring: IoUring,
    bufs: BufRing,
    listeners: Vec<Listener>,
    conns: Vec<Option<Box<Conn>>>,
    gens: Vec<u32>,
    free: Vec<u32>,
    live: usize,
    /// What the request path needs besides the connection: cache, root, log, counters.
    site: Site,
    cfg: ServeConfig,
    clock: Clock,
    /// Lives in a Box so its address stays fixed while the Timeout that reads it is in flight.
    tick_ts: Box<types::Timespec>,
    sigfd: RawFd,
    draining: bool,
    drain_deadline_ms: u64,
    exit_now: bool,
    accept_resume_ms: u64,
    /// Connections whose multishot recv ended for lack of buffers: re-armed after this round of
    /// completions has returned its buffers.
    rearm: Vec<Key>,
    cqes: Vec<(u64, i32, u32)>,
    /// Where a new connection's first bytes are read directly (see `first_read`).
    scratch: Box<[u8]>,
    /// Our slot in the master's scoreboard (None if it could not be mapped).
    board: Option<WorkerSlot>,
    error_log: Option<std::path::PathBuf>,
    pipes: PipePool,
}

/// Entry point of a worker process. Returns the exit status.
pub fn run(cli: &Cli) -> i32 {
    let spec = cli.worker.clone().expect("worker spec");
    let cfg = ServeConfig::from(cli);
    if let Some(cpu) = spec.cpu {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
            eprintln!(
                "ringstatic: worker {}: could not pin to CPU {cpu}; running unpinned",
                spec.index
            );
        }
    }
    let root = match Root::open(&cli.root()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "ringstatic: worker {}: cannot open root {}: {e}",
                spec.index,
                cli.root().display()
            );
            return EXIT_SETUP_FAILED;
        }
    };
    let sigfd = match block_signals() {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("ringstatic: worker {}: signalfd: {e}", spec.index);
            return EXIT_SETUP_FAILED;
        }
    };
    let ring = match ring::build(RING_ENTRIES) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "ringstatic: worker {}: {}",
                spec.index,
                ring::unavailable_reason(&e)
            );
            return EXIT_SETUP_FAILED;
        }
    };
    if let Err(why) = ring::probe(&ring) {
        eprintln!("ringstatic: worker {}: {why}", spec.index);
        return EXIT_SETUP_FAILED;
    }
    let bufs = match BufRing::new(&ring, BUF_GROUP, BUF_COUNT, BUF_SIZE) {
        Ok(b) => b,
        Err(e) => {
            eprintln!(
                "ringstatic: worker {}: cannot register the receive buffer ring: {e}",
                spec.index
            );
            return EXIT_SETUP_FAILED;
        }
    };
    let board = spec
        .board
        .and_then(|(fd, slot)| WorkerSlot::attach(fd, slot));
    let access_log = match cli.access_log_path() {
        Some(p) => match AccessLog::open(&p) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!(
                    "ringstatic: worker {}: cannot open access log {}: {e}",
                    spec.index,
                    p.display()
                );
                return EXIT_SETUP_FAILED;
            }
        },
        None => None,
    };
    let listeners = spec
        .fds
        .iter()
        .map(|&fd| Listener {
            fd,
            armed: false,
            closed: false,
            defers: defers_accept(fd),
        })
        .collect();
    let cache = FileCache::new(
        cfg.cache_entries as usize,
        cfg.cache_bytes,
        cfg.inline_max,
        cfg.cache_valid_ms,
    );
    let clock = Clock::new();
    let boundary = format!(
        "{:016x}{:04x}",
        clock.now_ms ^ (std::process::id() as u64) << 32,
        spec.index
    );
    let mut w = Worker {
        ring,
        bufs,
        listeners,
        conns: Vec::new(),
        gens: Vec::new(),
        free: Vec::new(),
        live: 0,
        site: Site {
            cache,
            root,
            boundary,
            access_log,
            requests: 0,
        },
        cfg,
        clock,
        tick_ts: Box::new(types::Timespec::new().nsec((TICK_MS * 1_000_000) as u32)),
        sigfd,
        draining: false,
        drain_deadline_ms: 0,
        exit_now: false,
        accept_resume_ms: 0,
        rearm: Vec::new(),
        cqes: Vec::with_capacity(1024),
        scratch: vec![0u8; BUF_SIZE].into_boxed_slice(),
        board,
        error_log: cli.error_log.clone(),
        pipes: PipePool::new(PIPE_SIZE),
    };
    let code = w.event_loop();
    // Exit without dropping the worker: operations may still be in flight (a fast stop, or a
    // drain that timed out), and the kernel owns their buffers until it cancels them, which it
    // does at process exit before the memory goes away.
    std::mem::forget(w);
    code
}

/// Blocks the signals the worker handles and returns a signalfd that reports them.
fn block_signals() -> io::Result<RawFd> {
    let set = crate::sigset::of(&[
        libc::SIGTERM,
        libc::SIGQUIT,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ]);
    // SAFETY: masks an initialised set for this (only) thread, then a signalfd reading it.
    unsafe {
        let r = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if r != 0 {
            // pthread_sigmask returns the error number instead of setting errno.
            return Err(io::Error::from_raw_os_error(r));
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(fd)
    }
}

impl Worker {
    fn event_loop(&mut self) -> i32 {
        for i in 0..self.listeners.len() {
            self.arm_accept(i);
        }
        self.arm_tick();
        self.arm_signal();
        if let Err(e) = self.ring.submit() {
            eprintln!("ringstatic: worker: io_uring submit failed: {e}");
            return EXIT_SETUP_FAILED;
        }
        if let Some(b) = &self.board {
            b.get()
                .state
                .store(ACCEPTING, std::sync::atomic::Ordering::Release);
        }
        let code = self.serve();
        self.finish_log();
        code
    }

    fn serve(&mut self) -> i32 {
        loop {
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINTR) | Some(libc::EBUSY) | Some(libc::EAGAIN)
                    ) => {}
                Err(e) => {
                    eprintln!("ringstatic: worker: io_uring_enter failed: {e}");
                    return 1;
                }
            }
            self.clock.update();
            let mut cqes = std::mem::take(&mut self.cqes);
            cqes.extend(
                self.ring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            for &(ud, res, flags) in &cqes {
                self.dispatch(ud, res, flags);
            }
            cqes.clear();
            self.cqes = cqes;
            for key in std::mem::take(&mut self.rearm) {
                if self.conn_mut(key).is_some_and(|c| c.wants_recv()) {
                    self.arm_recv(key.slot);
                }
            }
            self.flush_log(false);
            if self.exit_now
                || (self.draining && self.live == 0 && self.listeners.iter().all(|l| !l.armed))
            {
                // Not before every accept has ended: one still armed when the ring is torn
                // down could take a connection from the shared socket and lose it.
                return 0;
            }
        }
    }

    /// Submits a batch of access-log lines if one is due (`tick`: whatever is pending).
    fn flush_log(&mut self, tick: bool) {
        let Some(log) = &mut self.site.access_log else {
            return;
        };
        if log.has_inflight() {
            return;
        }
        if let Some(batch) = log.next_write(tick) {
            submit_log_write(&mut self.ring, batch);
        }
    }

    fn on_log_write(&mut self, res: i32) {
        let Some(log) = &mut self.site.access_log else {
            return;
        };
        if log.write_done(res) {
            if let Some(batch) = log.next_write(false) {
                submit_log_write(&mut self.ring, batch);
            }
        }
    }

    /// At exit: wait for the batch in flight, then write the rest directly. Nothing is lost.
    fn finish_log(&mut self) {
        let deadline = clock_ms(libc::CLOCK_MONOTONIC) + 5_000;
        while self
            .site
            .access_log
            .as_ref()
            .is_some_and(|l| l.has_inflight())
            && clock_ms(libc::CLOCK_MONOTONIC) < deadline
        {
            if self.ring.submit_and_wait(1).is_err() {
                break;
            }
            let done: Vec<i32> = self
                .ring
                .completion()
                .filter(|c| Key::decode(c.user_data()).is_some_and(|k| k.op == Op::LogWrite))
                .map(|c| c.result())
                .collect();
            for res in done {
                self.on_log_write(res);
            }
        }
        if let Some(log) = &mut self.site.access_log {
            log.flush_sync();
        }
    }

    fn dispatch(&mut self, ud: u64, res: i32, flags: u32) {
        let Some(key) = Key::decode(ud) else { return };
        match key.op {
            Op::Accept => self.on_accept(key.slot as usize, res, flags),
            Op::Recv => self.on_recv(key, res, flags),
            Op::Send => self.on_send(key, res),
            Op::Writable => self.on_writable(key, res),
            Op::Tick => self.on_tick(),
            Op::Signal => self.on_signal(),
            Op::Cancel | Op::Teardown => {}
            Op::LogWrite => self.on_log_write(res),
        }
    }

    // ----- slots -------------------------------------------------------------------------------

    /// The connection a completion belongs to, unless its slot has moved on since.
    fn conn_mut(&mut self, key: Key) -> Option<&mut Conn> {
        match self.conns.get_mut(key.slot as usize) {
            Some(Some(c)) if key.is_current(c.gen) => Some(c),
            _ => None,
        }
    }

    /// `data_waiting`: the listener defers accepts, so the request's first bytes are here.
    fn add_conn(&mut self, fd: RawFd, data_waiting: bool) {
        // TCP_NODELAY is inherited from the listening socket (set by the master).
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.conns.push(None);
                self.gens.push(0);
                (self.conns.len() - 1) as u32
            }
        };
        let gen = self.gens[slot as usize];
        let deadline = self.clock.now_ms + self.cfg.header_timeout_ms;
        let mut conn = Box::new(Conn::new(fd, gen, deadline));
        conn.idle_since_ms = self.clock.now_ms;
        if self.site.access_log.is_some() {
            conn.peer = peer_text(fd);
        }
        self.conns[slot as usize] = Some(conn);
        self.live += 1;
        if data_waiting {
            self.first_read(slot);
        } else {
            self.arm_first_recv(slot);
        }
        if self.live >= self.cfg.max_connections as usize {
            self.pause_accepting();
        }
    }

    /// Closes the fd and frees the slot once no operation refers to the connection any more.
    fn try_free(&mut self, slot: u32) {
        let done = match &self.conns[slot as usize] {
            Some(c) => c.phase == Phase::Closing && !c.ops_in_flight(),
            None => false,
        };
        if !done {
            return;
        }
        let mut c = self.conns[slot as usize].take().expect("checked above");
        if let Some(p) = c.pipe.take() {
            self.pipes.give(p); // kept only if empty
        }
        if !c.close_queued {
            // No operation refers to the fd any more (checked above). The close rides with the
            // next submission and runs inline there (sockets have no ->flush, so it is never
            // punted to io-wq); until it runs the number stays taken, so no new socket can be
            // confused with it.
            self.push_close(slot, c.fd);
        }
        self.gens[slot as usize] = self.gens[slot as usize].wrapping_add(1);
        self.free.push(slot);
        self.live -= 1;
        self.resume_accepting();
    }

    fn push_close(&mut self, slot: u32, fd: RawFd) {
        let sqe = opcode::Close::new(types::Fd(fd))
            .build()
            .user_data(Key::new(Op::Teardown, slot, 0).encode());
        push(&mut self.ring, &sqe);
    }

    // ----- accept ------------------------------------------------------------------------------

    fn should_accept(&self) -> bool {
        !self.draining
            && self.live < self.cfg.max_connections as usize
            && self.clock.now_ms >= self.accept_resume_ms
    }

    fn arm_accept(&mut self, i: usize) {
        let l = &mut self.listeners[i];
        if l.armed || l.closed {
            return;
        }
        l.armed = true;
        let sqe = opcode::AcceptMulti::new(types::Fd(l.fd))
            .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            .build()
            .user_data(Key::new(Op::Accept, i as u32, 0).encode());
        push(&mut self.ring, &sqe);
    }

    fn pause_accepting(&mut self) {
        for i in 0..self.listeners.len() {
            if self.listeners[i].armed {
                self.cancel(Key::new(Op::Accept, i as u32, 0));
            }
        }
    }

    fn resume_accepting(&mut self) {
        if self.should_accept() {
            for i in 0..self.listeners.len() {
                self.arm_accept(i);
            }
        }
    }

    fn on_accept(&mut self, i: usize, res: i32, flags: u32) {
        if i >= self.listeners.len() {
            return;
        }
        if !cqueue::more(flags) {
            self.listeners[i].armed = false;
        }
        if res >= 0 {
            // Also while draining, until the cancelled accept ends: the client has connected and
            // may have sent its request; it gets its answer (with Connection: close), not a reset.
            let data_waiting = self.listeners[i].defers;
            self.add_conn(res, data_waiting);
        } else {
            match -res {
                libc::ECANCELED | libc::EINTR | libc::EAGAIN | libc::ECONNABORTED => {}
                libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM => {
                    // Out of descriptors or memory: stop accepting for a while instead of spinning;
                    // connections wait in the listen queue meanwhile.
                    eprintln!(
                        "ringstatic: accept: {}; pausing accepts for {ACCEPT_BACKOFF_MS} ms",
                        io::Error::from_raw_os_error(-res)
                    );
                    self.accept_resume_ms = self.clock.now_ms + ACCEPT_BACKOFF_MS;
                    self.pause_accepting();
                }
                e => eprintln!("ringstatic: accept: {}", io::Error::from_raw_os_error(e)),
            }
        }
        let l = &self.listeners[i];
        if !l.armed && self.draining && !l.closed {
            self.close_listener(i);
        } else if !l.armed && self.should_accept() {
            self.arm_accept(i);
        }
    }

    fn close_listener(&mut self, i: usize) {
        let l = &mut self.listeners[i];
        if !l.closed && !l.armed {
            l.closed = true;
            // SAFETY: no accept is in flight on it (armed is false) and the worker owns its copy.
            unsafe { libc::close(l.fd) };
        }
    }

    // ----- receive -----------------------------------------------------------------------------

    /// A multishot recv: it stays armed while the connection lives, taking a buffer from the
    /// ring only when bytes arrive.
    fn arm_recv(&mut self, slot: u32) {
        let Some(Some(c)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        if c.recv_armed {
            return;
        }
        c.recv_armed = true;
        let sqe = opcode::RecvMulti::new(types::Fd(c.fd), BUF_GROUP)
            .build()
            .user_data(Key::new(Op::Recv, slot, c.gen).encode());
        push(&mut self.ring, &sqe);
    }

    /// The first read of a connection accepted before its request arrived (a listener that
    /// does not defer accepts, or one that gave up waiting) is a single-shot recv that waits
    /// for data first (IORING_RECVSEND_POLL_FIRST), so a connection that asks for
    /// `Connection: close` is closed with no recv armed: no cancel, no -ECANCELED completion,
    /// no poll to tear down. Measured (1k-close, one worker, 2-core VM, 2026-11-26): 14.5 µs
    /// per request with a multishot recv from the start, 13.6 with a single-shot one. A
    /// keep-alive connection gets its multishot recv once this one completes.
    fn arm_first_recv(&mut self, slot: u32) {
        let Some(Some(c)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        c.recv_armed = true;
        let sqe = opcode::Recv::new(types::Fd(c.fd), std::ptr::null_mut(), BUF_SIZE as u32)
            .buf_group(BUF_GROUP)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT)
            .user_data(Key::new(Op::Recv, slot, c.gen).encode());
        push(&mut self.ring, &poll_first(sqe));
    }

    /// A connection from a listener that defers accepts arrives with its request: read it at
    /// once with one recv(2), so its response is queued in the same turn of the loop, instead
    /// of submitting a recv and waiting a turn for its completion. Measured (1k-close, one
    /// worker, 2-core VM, 2026-11-26, five alternating pairs): median 0.98 of the CPU per
    /// request of the single-shot recv through the ring.
    fn first_read(&mut self, slot: u32) {
        let Worker {
            conns,
            scratch,
            site,
            cfg,
            clock,
            draining,
            rearm,
            ..
        } = self;
        let Some(Some(conn)) = conns.get_mut(slot as usize) else {
            return;
        };
        // SAFETY: recv(2) into a buffer we own, at most its length; nothing is kept.
        let n = unsafe {
            libc::recv(
                conn.fd,
                scratch.as_mut_ptr() as *mut libc::c_void,
                scratch.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n > 0 {
            site.feed(conn, &scratch[..n as usize], cfg, clock, *draining);
            if conn.wants_recv() {
                rearm.push(Key::new(Op::Recv, slot, conn.gen));
            }
        } else if n == 0 {
            conn.peer_eof = true;
        } else {
            let e = io::Error::last_os_error().raw_os_error();
            if matches!(e, Some(libc::EAGAIN) | Some(libc::EINTR)) {
                // Handed over without data: the defer period ran out, or SYN cookies were used.
                return self.arm_first_recv(slot);
            }
            return self.begin_close(slot);
        }
        self.progress(slot);
    }

    fn on_recv(&mut self, key: Key, res: i32, flags: u32) {
        let bid = cqueue::buffer_select(flags);
        let slot = key.slot;
        let Worker {
            conns,
            bufs,
            site,
            cfg,
            clock,
            draining,
            ..
        } = self;
        let conn = match conns.get_mut(slot as usize) {
            Some(Some(c)) if key.is_current(c.gen) => c,
            _ => {
                // Cannot happen (a slot is freed only after its last completion), but a buffer
                // must never be lost.
                if let Some(b) = bid {
                    bufs.give_back(b);
                }
                return;
            }
        };
        if !cqueue::more(flags) {
            conn.recv_armed = false;
        }
        if res > 0 {
            if let Some(b) = bid {
                if conn.phase == Phase::Open && !conn.close_after_write {
                    site.feed(conn, bufs.data(b, res as usize), cfg, clock, *draining);
                }
                bufs.give_back(b);
            }
            if conn.wants_recv() {
                self.rearm.push(key);
            }
        } else if res == 0 {
            conn.peer_eof = true;
        } else {
            match -res {
                libc::ENOBUFS => self.rearm.push(key),
                libc::ECANCELED | libc::EINTR | libc::EAGAIN => {
                    if conn.wants_recv() {
                        self.rearm.push(key);
                    }
                }
                _ => {
                    // ECONNRESET and friends: the client is gone.
                    self.begin_close(slot);
                }
            }
        }
        self.progress(slot);
    }

    // ----- the connection's state machine ------------------------------------------------------

    /// Moves a connection forward after any event: send what is queued, answer requests held
    /// back, re-arm reading, or finish closing.
    fn progress(&mut self, slot: u32) {
        loop {
            let Some(Some(c)) = self.conns.get_mut(slot as usize) else {
                return;
            };
            match c.phase {
                Phase::Closing => return self.try_free(slot),
                Phase::Lingering => {
                    if c.peer_eof {
                        self.begin_close(slot);
                        continue;
                    }
                    return;
                }
                Phase::Open => {}
            }
            if c.recv_paused && c.recv_armed && !c.recv_cancel_sent {
                // A client pipelining faster than it reads: stop taking its bytes until the
                // responses it already asked for are out.
                c.recv_cancel_sent = true;
                let gen = c.gen;
                self.cancel(Key::new(Op::Recv, slot, gen));
                continue;
            }
            if c.send_inflight || c.poll_inflight {
                return;
            }
            if !c.out.is_empty() {
                self.flush(slot);
                return;
            }
            // Output drained.
            if c.close_after_write {
                return self.start_linger(slot);
            }
            if c.held_back {
                c.held_back = false;
                let Worker {
                    conns,
                    site,
                    cfg,
                    clock,
                    draining,
                    ..
                } = &mut *self;
                let c = conns[slot as usize].as_deref_mut().expect("present");
                site.feed(c, &[], cfg, clock, *draining);
                if !c.out.is_empty() || c.close_after_write {
                    continue;
                }
            }
            let Some(Some(c)) = self.conns.get_mut(slot as usize) else {
                return;
            };
            if c.peer_eof {
                // Nothing more will come, and everything asked for is answered.
                return self.begin_close(slot);
            }
            if c.recv_paused && c.inbuf.len() < MAX_INBUF / 2 {
                c.recv_paused = false;
            }
            c.deadline_ms = if c.inbuf.is_empty() {
                c.head_started = false;
                c.idle_since_ms = self.clock.now_ms;
                self.clock.now_ms + self.cfg.keepalive_timeout_ms
            } else if !c.head_started {
                c.head_started = true;
                self.clock.now_ms + self.cfg.header_timeout_ms
            } else {
                c.deadline_ms
            };
            if !c.recv_armed && !c.recv_paused {
                c.recv_cancel_sent = false;
                self.arm_recv(slot);
            }
            return;
        }
    }

    /// Sends queued output: memory through the ring, file ranges with sendfile(2).
    fn flush(&mut self, slot: u32) {
        let now = self.clock.now_ms;
        let send_timeout = self.cfg.send_timeout_ms;
        let Some(Some(c)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        let mut budget = SENDFILE_BUDGET;
        c.deadline_ms = now + send_timeout;
        loop {
            let Some(front) = c.out.front() else {
                return self.progress(slot);
            };
            if let (Chunk::File { .. }, LargeBody::Splice) = (front, self.cfg.large_body) {
                if c.pipe.is_none() {
                    match self.pipes.take() {
                        Ok(p) => c.pipe = Some(p),
                        Err(e) => {
                            eprintln!("ringstatic: pipe for splice: {e}");
                            return self.begin_close(slot);
                        }
                    }
                }
                let pipe = c.pipe.as_mut().expect("just set");
                let Some(Chunk::File { fd, offset, end }) = c.out.front_mut() else {
                    unreachable!()
                };
                if *offset == *end && pipe.filled == 0 {
                    c.out.pop_front();
                    if !matches!(c.out.front(), Some(Chunk::File { .. })) {
                        let p = c.pipe.take().expect("held");
                        self.pipes.give(p);
                    }
                    continue;
                }
                match splice_step(c.fd, pipe, fd, *offset, *end - *offset) {
                    SpliceOutcome::Pulled(n) => *offset += n,
                    SpliceOutcome::Delivered(n) => {
                        budget = budget.saturating_sub(n);
                        if budget == 0 {
                            return self.wait_writable(slot);
                        }
                    }
                    SpliceOutcome::WouldBlock => return self.wait_writable(slot),
                    SpliceOutcome::FileShrank | SpliceOutcome::Failed(_) => {
                        return self.begin_close(slot)
                    }
                }
                continue;
            }
            if let Chunk::File { fd, offset, end } = front {
                match sendfile(c.fd, fd, *offset, end - offset) {
                    SendfileOutcome::Sent(n) => {
                        consume(&mut c.out, n);
                        budget = budget.saturating_sub(n);
                        if budget == 0 {
                            // Let other connections run; POLLOUT completes at once if still writable.
                            return self.wait_writable(slot);
                        }
                        continue;
                    }
                    SendfileOutcome::WouldBlock => return self.wait_writable(slot),
                    SendfileOutcome::FileShrank => {
                        // Content-Length is already promised: the only honest end is to close.
                        return self.begin_close(slot);
                    }
                    SendfileOutcome::Failed(_) => return self.begin_close(slot),
                }
            }
            // Gather consecutive memory chunks.
            let mut n = 0;
            let mut file_follows = false;
            for ch in c.out.iter() {
                match ch.remaining_mem() {
                    Some(m) if n < MAX_IOV => {
                        c.iov[n] = libc::iovec {
                            iov_base: m.as_ptr() as *mut libc::c_void,
                            iov_len: m.len(),
                        };
                        n += 1;
                    }
                    Some(_) => break,
                    None => {
                        file_follows = true;
                        break;
                    }
                }
            }
            if file_follows {
                // Header before a large body: send it now from this thread, corked with MSG_MORE,
                // so it leaves with the file's first bytes and costs no ring round trip.
                c.msg.msg_iov = c.iov.as_mut_ptr();
                c.msg.msg_iovlen = n;
                // SAFETY: iovecs point into chunks owned by `c.out`, alive for this synchronous call.
                let r = unsafe {
                    libc::sendmsg(
                        c.fd,
                        &c.msg,
                        libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT | libc::MSG_MORE,
                    )
                };
                if r >= 0 {
                    consume(&mut c.out, r as u64);
                    continue;
                }
                let e = io::Error::last_os_error();
                return match e.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EINTR) => self.wait_writable(slot),
                    _ => self.begin_close(slot),
                };
            }
            let key = Key::new(Op::Send, slot, c.gen).encode();
            let mut flags = libc::MSG_NOSIGNAL;
            let last = c.close_after_write && n == c.out.len();
            if last {
                // The last bytes before our FIN: corked, so the close tacks its FIN onto this
                // segment (one packet instead of two).
                flags |= libc::MSG_MORE;
            }
            // The close can ride linked behind this send when nothing else may still happen on
            // the connection: no lingering owed, no unread bytes, no recv or poll armed.
            let link_close =
                last && !c.must_linger && c.inbuf.is_empty() && !c.recv_armed && !c.poll_inflight;
            if link_close {
                // MSG_WAITALL: the kernel retries a short send itself, and only a send that wrote
                // every byte lets the linked close run.
                flags |= libc::MSG_WAITALL;
                c.close_linked = true;
            }
            let sqe = if n == 1 {
                opcode::Send::new(
                    types::Fd(c.fd),
                    c.iov[0].iov_base as *const u8,
                    c.iov[0].iov_len as u32,
                )
                .flags(flags)
                .build()
            } else {
                c.msg.msg_iov = c.iov.as_mut_ptr();
                c.msg.msg_iovlen = n;
                opcode::SendMsg::new(types::Fd(c.fd), &c.msg)
                    .flags(flags as u32)
                    .build()
            };
            c.send_inflight = true;
            // The chunks, iovecs and msghdr stay untouched in the boxed Conn until on_send.
            let sqe = sqe.user_data(key);
            if link_close {
                let close = opcode::Close::new(types::Fd(c.fd))
                    .build()
                    .user_data(Key::new(Op::Teardown, slot, 0).encode());
                push_together(&mut self.ring, &[sqe.flags(squeue::Flags::IO_LINK), close]);
            } else {
                push(&mut self.ring, &sqe);
            }
            return;
        }
    }

    fn wait_writable(&mut self, slot: u32) {
        let Some(Some(c)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        c.poll_inflight = true;
        let sqe = opcode::PollAdd::new(types::Fd(c.fd), libc::POLLOUT as u32)
            .build()
            .user_data(Key::new(Op::Writable, slot, c.gen).encode());
        push(&mut self.ring, &sqe);
    }

    fn on_send(&mut self, key: Key, res: i32) {
        let now = self.clock.now_ms;
        let send_timeout = self.cfg.send_timeout_ms;
        let Some(c) = self.conn_mut(key) else {
            return;
        };
        c.send_inflight = false;
        if c.close_linked {
            // The send carried all of `c.out`, the connection's last response. If every byte
            // left (nothing remains once they are consumed), the linked close has run and the fd
            // number is no longer ours; otherwise the kernel cancelled the close.
            c.close_linked = false;
            if res > 0 {
                consume(&mut c.out, res as u64);
            }
            if res > 0 && c.out.is_empty() {
                c.close_queued = true;
                c.phase = Phase::Closing;
                c.inbuf = Vec::new();
                return self.try_free(key.slot);
            }
            if c.phase != Phase::Closing {
                return self.begin_close(key.slot);
            }
        }
        if c.phase == Phase::Closing {
            return self.try_free(key.slot);
        }
        if res > 0 {
            consume(&mut c.out, res as u64);
            c.deadline_ms = now + send_timeout;
            self.progress(key.slot);
        } else if res == -libc::EAGAIN || res == -libc::EINTR {
            self.wait_writable(key.slot);
        } else {
            // EPIPE, ECONNRESET, ECANCELED, or a zero-byte send: the client is gone.
            self.begin_close(key.slot);
        }
    }

    fn on_writable(&mut self, key: Key, res: i32) {
        let Some(c) = self.conn_mut(key) else {
            return;
        };
        c.poll_inflight = false;
        if c.phase == Phase::Closing {
            return self.try_free(key.slot);
        }
        if res < 0 && res != -libc::EINTR {
            return self.begin_close(key.slot);
        }
        self.progress(key.slot);
    }

    /// After the last response: shut down our side and wait briefly for the client's FIN.
    fn start_linger(&mut self, slot: u32) {
        let now = self.clock.now_ms;
        let Some(Some(c)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        if c.peer_eof || (!c.must_linger && c.inbuf.is_empty()) {
            // The client asked for the close (or is gone) and sent nothing we did not read:
            // close now, as nginx does, instead of waiting for its FIN.
            return self.close_now(slot);
        }
        c.phase = Phase::Lingering;
        c.inbuf = Vec::new();
        c.deadline_ms = now
            + if self.draining {
                DRAIN_LINGER_MS
            } else {
                LINGER_MS
            };
        c.recv_paused = false;
        // Directly, not through the ring: IORING_OP_SHUTDOWN is always punted to an io-wq
        // thread, so it could run after the close below and hit a new socket with the same number.
        // SAFETY: shutting down a socket we own; no effect on memory.
        unsafe { libc::shutdown(c.fd, libc::SHUT_WR) };
        if !c.recv_armed {
            self.arm_recv(slot);
        }
    }

    /// Closes a connection whose output is all sent, with no system call: a cancel of its recv
    /// and the close ride with the next submission, in that order. The fd number is released at
    /// once; the socket itself (and its FIN) when the cancelled recv drops its reference, in the
    /// same enter. The slot stays taken until the recv's last completion arrives.
    fn close_now(&mut self, slot: u32) {
        let Some(Some(c)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        if c.phase == Phase::Closing || c.send_inflight || c.poll_inflight {
            return self.begin_close(slot);
        }
        c.phase = Phase::Closing;
        c.inbuf = Vec::new();
        c.close_queued = true;
        let (recv, gen, fd) = (c.recv_armed, c.gen, c.fd);
        if recv {
            self.cancel(Key::new(Op::Recv, slot, gen));
        }
        self.push_close(slot, fd);
        self.try_free(slot);
    }

    /// Ends a connection now: shut the socket down both ways (which completes a pending recv
    /// with 0, a poll with POLLHUP and fails a send), cancel what may still wait, and free the
    /// slot when the last completion is in.
    fn begin_close(&mut self, slot: u32) {
        let Some(Some(c)) = self.conns.get_mut(slot as usize) else {
            return;
        };
        if c.phase == Phase::Closing {
            return;
        }
        let clean = c.phase == Phase::Lingering && c.peer_eof;
        c.phase = Phase::Closing;
        c.inbuf = Vec::new();
        if c.close_linked {
            // The send may have completed in the kernel already, and its linked close with it,
            // freeing the fd number for a new socket: touch the send by its key, never the fd.
            // Cancelled, it fails and takes the close with it; on_send then closes.
            let gen = c.gen;
            self.cancel(Key::new(Op::Send, slot, gen));
            return;
        }
        let (recv, poll, gen, fd) = (c.recv_armed, c.poll_inflight, c.gen, c.fd);
        if !clean || recv || poll || c.send_inflight {
            // SAFETY: shutting down a socket we own; no effect on memory. Done at once, so
            // that the operations still waiting on it complete now: a pending recv with 0, a
            // poll with POLLHUP, a send with EPIPE.
            let r = unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
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

    fn cancel(&mut self, target: Key) {
        let sqe = opcode::AsyncCancel::new(target.encode())
            .build()
            .user_data(Key::new(Op::Cancel, target.slot, 0).encode());
        push(&mut self.ring, &sqe);
    }

    // ----- timer and signals -------------------------------------------------------------------

    fn arm_tick(&mut self) {
        let sqe = opcode::Timeout::new(&*self.tick_ts as *const types::Timespec)
            .build()
            .user_data(Key::new(Op::Tick, 0, 0).encode());
        push(&mut self.ring, &sqe);
    }

    fn on_tick(&mut self) {
        let now = self.clock.now_ms;
        let expired: Vec<u32> = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c {
                Some(c) if c.phase != Phase::Closing && now >= c.deadline_ms => Some(i as u32),
                _ => None,
            })
            .collect();
        for slot in expired {
            self.begin_close(slot);
        }
        if self.draining {
            if now >= self.drain_deadline_ms {
                self.exit_now = true;
            }
            self.close_quiet_idle();
        }
        if let Some(b) = &self.board {
            use std::sync::atomic::Ordering::Relaxed;
            let s = b.get();
            s.heartbeat.fetch_add(1, Relaxed);
            s.connections.store(self.live as u64, Relaxed);
            s.requests.store(self.site.requests, Relaxed);
        }
        self.flush_log(true);
        if self.should_accept() {
            self.resume_accepting();
        }
        self.arm_tick();
    }

    fn arm_signal(&mut self) {
        let sqe = opcode::PollAdd::new(types::Fd(self.sigfd), libc::POLLIN as u32)
            .build()
            .user_data(Key::new(Op::Signal, 0, 0).encode());
        push(&mut self.ring, &sqe);
    }

    fn on_signal(&mut self) {
        loop {
            // SAFETY: signalfd_siginfo is plain data; we read at most its size into it.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let n = unsafe {
                libc::read(
                    self.sigfd,
                    &mut info as *mut _ as *mut libc::c_void,
                    std::mem::size_of::<libc::signalfd_siginfo>(),
                )
            };
            if n != std::mem::size_of::<libc::signalfd_siginfo>() as isize {
                break;
            }
            match info.ssi_signo as i32 {
                libc::SIGTERM | libc::SIGQUIT => self.start_drain(),
                libc::SIGINT => self.exit_now = true,
                libc::SIGUSR1 => self.reopen_logs(),
                _ => {} // SIGHUP and SIGUSR2 are the master's business.
            }
        }
        self.arm_signal();
    }

    /// Graceful stop: no new connections; every request already received or arriving is answered
    /// (with `Connection: close`); connections with nothing in flight are closed once they have
    /// been quiet a moment; all within --shutdown-timeout.
    fn start_drain(&mut self) {
        if self.draining {
            return;
        }
        self.draining = true;
        self.drain_deadline_ms = self.clock.now_ms + self.cfg.shutdown_timeout_ms;
        if let Some(b) = &self.board {
            b.get()
                .state
                .store(DRAINING, std::sync::atomic::Ordering::Release);
        }
        for i in 0..self.listeners.len() {
            if self.listeners[i].armed {
                self.cancel(Key::new(Op::Accept, i as u32, 0));
            } else {
                self.close_listener(i);
            }
        }
        self.close_quiet_idle();
    }

    /// While draining: closes keep-alive connections that are idle, have been for a moment, and
    /// have no request bytes waiting in the kernel. A request that raced in is read and answered
    /// with `Connection: close` instead of being cut off.
    fn close_quiet_idle(&mut self) {
        let now = self.clock.now_ms;
        let quiet: Vec<u32> = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c {
                Some(c)
                    if c.phase == Phase::Open
                        && c.is_idle()
                        && !c.close_after_write
                        && now.saturating_sub(c.idle_since_ms) >= DRAIN_IDLE_MS
                        && bytes_waiting(c.fd) == 0 =>
                {
                    Some(i as u32)
                }
                _ => None,
            })
            .collect();
        for slot in quiet {
            self.start_linger(slot);
        }
    }

    fn reopen_logs(&mut self) {
        if let Some(p) = &self.error_log {
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
            {
                // SAFETY: dup2 onto fd 2; the File closes its own fd when dropped.
                Ok(f) => unsafe {
                    libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&f), 2);
                },
                Err(e) => eprintln!("ringstatic: cannot reopen error log {}: {e}", p.display()),
            }
        }
        if let Some(l) = &mut self.site.access_log {
            l.reopen();
        }
    }
}

/// Writes a batch of access-log lines; the batch stays owned by the log until the LogWrite
/// completion. Offset -1: the file's position (the file is O_APPEND).
fn submit_log_write(ring: &mut IoUring, (fd, ptr, len): (RawFd, *const u8, u32)) {
    let sqe = opcode::Write::new(types::Fd(fd), ptr, len)
        .offset(u64::MAX)
        .build()
        .user_data(Key::new(Op::LogWrite, 0, 0).encode());
    push(ring, &sqe);
}

/// Sets IORING_RECVSEND_POLL_FIRST on a recv: on a connection just accepted from a listener that
/// does not defer accepts, the request has usually not arrived yet, so the kernel should wait
/// for it rather than try a recv that fails.
fn poll_first(sqe: io_uring::squeue::Entry) -> io_uring::squeue::Entry {
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

/// Whether a listening socket has TCP_DEFER_ACCEPT on (set by the master, or by a .socket unit's
/// DeferAcceptSec=).
fn defers_accept(fd: RawFd) -> bool {
    crate::inherit::int_opt(fd, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT).is_some_and(|v| v > 0)
}

/// Bytes in a socket's receive queue (FIONREAD).
fn bytes_waiting(fd: RawFd) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int.
    if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) } < 0 {
        return 0;
    }
    n
}

/// The peer's address as text, for the access log.
fn peer_text(fd: RawFd) -> Option<Box<[u8]>> {
    // SAFETY: all-zero is a valid sockaddr_storage; getpeername fills at most `len` bytes.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    if unsafe { libc::getpeername(fd, &mut ss as *mut _ as *mut libc::sockaddr, &mut len) } < 0 {
        return None;
    }
    let ip: std::net::IpAddr = match ss.ss_family as i32 {
        // SAFETY: the kernel wrote a sockaddr_in for AF_INET.
        libc::AF_INET => std::net::Ipv4Addr::from(
            unsafe { *(&ss as *const _ as *const libc::sockaddr_in) }
                .sin_addr
                .s_addr
                .to_ne_bytes(),
        )
        .into(),
        // SAFETY: the kernel wrote a sockaddr_in6 for AF_INET6.
        libc::AF_INET6 => std::net::Ipv6Addr::from(
            unsafe { *(&ss as *const _ as *const libc::sockaddr_in6) }
                .sin6_addr
                .s6_addr,
        )
        .into(),
        _ => return None,
    };
    Some(ip.to_string().into_bytes().into_boxed_slice())
}

/// The worker's request-path state, apart from connections and the ring.
struct Site {
    cache: FileCache,
    root: Root,
    boundary: String,
    access_log: Option<AccessLog>,
    requests: u64,
}

impl Site {
    /// Gives a connection's newly received bytes (or none, to resume held-back requests) to the
    /// request path.
    fn feed(
        &mut self,
        c: &mut Conn,
        data: &[u8],
        cfg: &ServeConfig,
        clock: &Clock,
        draining: bool,
    ) {
        let mut ctx = Ctx {
            cache: &mut self.cache,
            root: &self.root,
            cfg,
            date: &clock.date,
            date_secs: clock.date_secs,
            now_ms: clock.now_ms,
            draining,
            boundary: &self.boundary,
        };
        let mut log = Log {
            log: self.access_log.as_mut(),
            now_secs: clock.date_secs,
            requests: &mut self.requests,
        };
        feed(c, data, &mut ctx, &mut log);
    }
}

/// What the request path needs for the access log.
struct Log<'a> {
    log: Option<&'a mut AccessLog>,
    now_secs: i64,
    requests: &'a mut u64,
}

impl Log<'_> {
    /// Counts one request and, with the access log on, writes its line.
    fn request(
        &mut self,
        peer: Option<&[u8]>,
        head: &[u8],
        status: u16,
        bytes: u64,
        referer: Option<&[u8]>,
        ua: Option<&[u8]>,
    ) {
        *self.requests += 1;
        if let Some(l) = self.log.as_deref_mut() {
            l.record(
                peer.unwrap_or(b"-"),
                self.now_secs,
                request_line(head),
                status,
                bytes,
                referer,
                ua,
            );
        }
    }
}

/// Takes newly received bytes: parses every complete head and queues its response, keeps a partial
/// head for later, and stops reading when too much is waiting.
fn feed(c: &mut Conn, data: &[u8], ctx: &mut Ctx, log: &mut Log) {
    if c.inbuf.is_empty() {
        let used = parse_requests(c, data, ctx, log);
        if used < data.len() && !c.close_after_write {
            c.inbuf.extend_from_slice(&data[used..]);
        }
    } else {
        c.inbuf.extend_from_slice(data);
        let buf = std::mem::take(&mut c.inbuf);
        let used = parse_requests(c, &buf, ctx, log);
        if !c.close_after_write && used < buf.len() {
            let mut buf = buf;
            buf.drain(..used);
            c.inbuf = buf;
        }
    }
    if c.inbuf.len() >= MAX_INBUF {
        c.recv_paused = true;
    }
}

/// Answers complete heads at the front of `buf`; returns how many bytes were used.
fn parse_requests(c: &mut Conn, buf: &[u8], ctx: &mut Ctx, log: &mut Log) -> usize {
    let mut pos = 0;
    while pos < buf.len() && !c.close_after_write {
        if c.out.len() >= MAX_QUEUED_CHUNKS {
            // Answered once the queue drains (`progress`); meanwhile the bytes wait in `inbuf`.
            c.held_back = true;
            break;
        }
        match parse_head(&buf[pos..]) {
            Ok(Parsed::Complete(req, used)) => {
                let reply = respond(&req, ctx, &mut c.out);
                if reply.disposition == Disposition::Close {
                    c.close_after_write = true;
                    // A refused request may be followed by bytes we will never read (its body):
                    // closing with them unread would reset the connection and could destroy our
                    // answer in the client's buffers. Linger for those.
                    c.must_linger = req.has_body || reply.status >= 400;
                }
                let head = &buf[pos..pos + used];
                log.request(
                    c.peer.as_deref(),
                    head,
                    reply.status,
                    reply.body_bytes,
                    req.referer,
                    req.user_agent,
                );
                pos += used;
            }
            Ok(Parsed::Partial) => break,
            Err(e) => {
                let bytes = write_error(
                    e.status(),
                    b"",
                    false,
                    Version::Http11,
                    false,
                    ctx.date,
                    &mut c.out,
                );
                c.close_after_write = true;
                c.must_linger = true;
                let head = &buf[pos..buf.len().min(pos + 1024)];
                log.request(c.peer.as_deref(), head, e.status(), bytes, None, None);
            }
        }
    }
    if c.close_after_write {
        buf.len()
    } else {
        pos
    }
}

/// The request line of a head (leading empty lines skipped, line ending removed).
fn request_line(head: &[u8]) -> &[u8] {
    let start = head
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(head.len());
    let rest = &head[start..];
    let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
    let line = &rest[..end];
    line.strip_suffix(b"\r").unwrap_or(line)
}
