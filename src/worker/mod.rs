//! One worker: a single thread pinned to its CPU, one io_uring, one file cache, its own listening
//! sockets. Nothing here is shared with another worker, so nothing is locked.
//!
//! The loop: submit what is queued and wait for at least one completion (one system call), copy
//! the completions out, then dispatch them one by one (a handler never runs while the completion
//! queue is being read), then re-arm what needs re-arming. Every operation in flight is owned by
//! a connection (its fd, its buffers, its iovecs) or by the worker (listeners, timer, signalfd,
//! the access log's batch); a connection is freed only after its last completion has arrived.
//!
//! The rooms:
//! - `mod.rs`      setup, the loop, dispatch by completion key
//! - `slots`       the connection table: slots, generations, the live count
//! - `accept`      listeners, one accept at a time, never past `--max-connections`
//! - `recv`        reading: the first read, the multishot recv, feeding the session
//! - `progress`    moving a connection forward after any event (the one driver)
//! - `send`        writing: memory through the ring, files with sendfile or splice
//! - `pool`        output queues and send buffers, lent to connections only while busy
//! - `close`       linger, close and freeing the slot
//! - `tick`        the timer tick, timeouts, signals and the graceful drain
//! - `logwrite`    the access log's batches, written through the ring
//! - `proxy`       the PROXY protocol header on a proxy-protocol listener, before any HTTP
//! - `tls`         a tls listener's connections: ciphertext through rustls, records out
//! - `site`        the request path's state (cache, root, log, counters) as a session `Handler`
//! - `clock`       the coarse clock and the cached Date header

mod accept;
mod clock;
mod close;
mod logwrite;
mod pool;
mod progress;
mod proxy;
mod recv;
mod send;
mod site;
mod slots;
mod tick;
mod tls;

use std::io;
use std::os::fd::RawFd;

use io_uring::types;

use crate::config::{Cli, SandboxMode, ServeConfig};
use crate::files::body::PipePool;
use crate::files::cache::{FileCache, Names};
use crate::files::open::Root;
use crate::ring::bufring::BufRing;
use crate::ring::key::{Key, Op};
use crate::ring::submit::{Cqe, Submitter};
use crate::ring::{self, op};
use crate::scoreboard::{WorkerSlot, ACCEPTING};

use accept::Listener;
use clock::Clock;
use site::Site;
use slots::Slots;

/// Exit status of a worker that could not set itself up: the master stops instead of restarting.
pub const EXIT_SETUP_FAILED: i32 = 78;

const RING_ENTRIES: u32 = 1024;
const BUF_GROUP: u16 = 1;
/// 512 buffers of 4 KiB: a request head fits in one; buffers go back to the kernel as soon as
/// their completion is handled, so this bounds only one loop iteration's worth of reads.
const BUF_COUNT: u16 = 512;
const BUF_SIZE: usize = 4096;
/// Pipe size for splice transfers (F_SETPIPE_SZ; 1 MiB is the default pipe-max-size).
const PIPE_SIZE: usize = 1 << 20;
const TICK_MS: u64 = 250;

pub struct Worker {
    ring: Submitter,
    bufs: BufRing,
    listeners: Vec<Listener>,
    conns: Slots,
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
    /// How many connections a multishot accept may take past the moment it is seen (`accept`).
    accept_room: usize,
    /// Connections whose recv ended and should be re-armed once this round of completions has
    /// returned its buffers.
    rearm: Vec<Key>,
    cqes: Vec<Cqe>,
    /// Where a new connection's first bytes are read directly (see `recv::first_read`).
    scratch: Box<[u8]>,
    /// Our slot in the master's scoreboard (None if it could not be mapped).
    board: Option<WorkerSlot>,
    error_log: Option<std::path::PathBuf>,
    pipes: PipePool,
    /// Output queues and send buffers, lent to connections while they have output.
    send_pool: pool::SendPool,
    /// What `tls` listeners' connections are served with (None without such a listener).
    tls_config: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// The worker's plaintext buffers for TLS.
    tls_scratch: tls::Scratch,
}

/// Entry point of a worker process. Returns the exit status.
pub fn run(cli: &Cli) -> i32 {
    let spec = cli.worker.clone().expect("worker spec");
    let fail = |what: String| {
        eprintln!("ringstatic: worker {}: {what}", spec.index);
        EXIT_SETUP_FAILED
    };
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
        Err(e) => return fail(format!("cannot open root {}: {e}", cli.root().display())),
    };
    let sigfd = match tick::block_signals() {
        Ok(fd) => fd,
        Err(e) => return fail(format!("signalfd: {e}")),
    };
    // Built disabled, so that its restrictions can be set before the first submission.
    let ring = match ring::build_with(RING_ENTRIES, true) {
        Ok(r) => r,
        Err(e) => return fail(ring::unavailable_reason(&e)),
    };
    if let Err(why) = ring::probe(&ring) {
        return fail(why);
    }
    let bufs = match BufRing::new(&ring, BUF_GROUP, BUF_COUNT, BUF_SIZE) {
        Ok(b) => b,
        Err(e) => return fail(format!("cannot register the receive buffer ring: {e}")),
    };
    let board = spec
        .board
        .and_then(|(fd, slot)| WorkerSlot::attach(fd, slot));
    let access_log = match cli.access_log_path() {
        Some(p) => match crate::accesslog::AccessLog::open(&p, cli.access_log_format) {
            Ok(l) => Some(l),
            Err(e) => return fail(format!("cannot open access log {}: {e}", p.display())),
        },
        None => None,
    };
    let listeners: Vec<Listener> = spec
        .fds
        .iter()
        .map(|&(fd, kind)| Listener::new(fd, kind))
        .collect();
    let accept_room = accept::accept_room(listeners.len());
    // Certificates and keys are read now, before the worker drops its privileges (a key file is
    // usually readable by root only).
    let tls_config = if listeners.iter().any(|l| l.kind.tls) {
        let secret = match spec.ticket_secret.map(crate::tls::read_ticket_secret) {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => return fail(format!("cannot read the session-ticket secret: {e}")),
            None => None,
        };
        match crate::tls::server_config(cli, secret) {
            Ok(c) => Some(c),
            Err(e) => return fail(e),
        }
    } else {
        None
    };
    if let Some(fd) = spec.ticket_secret {
        // SAFETY: the memfd inherited from the master is ours; it is read (above) and not used again.
        unsafe { libc::close(fd) };
    }
    let mut cfg = cfg;
    cfg.https_port = listeners
        .iter()
        .find(|l| l.kind.tls)
        .and_then(|l| l.port())
        .unwrap_or(443);
    let restricted = match ring::restrict_and_enable(&ring, cli.sandbox != SandboxMode::Off) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if let Err(code) = enter_sandbox(cli, spec.index, restricted) {
        return code;
    }
    let cache = FileCache::new(
        cfg.cache_entries as usize,
        cfg.cache_bytes,
        cfg.inline_max,
        cfg.cache_valid_ms,
        cfg.cache_inactive_ms,
    )
    .with_names(Names {
        index: cfg.index.clone(),
        clean_urls: cfg.clean_urls,
        autoindex: cfg.autoindex,
        show_hidden: cfg.serve_dotfiles,
    });
    let clock = Clock::new();
    let mut w = Worker {
        ring: Submitter::new(ring),
        bufs,
        listeners,
        conns: Slots::default(),
        site: Site::new(cache, root, access_log),
        cfg,
        clock,
        tick_ts: Box::new(types::Timespec::new().nsec((TICK_MS * 1_000_000) as u32)),
        sigfd,
        draining: false,
        drain_deadline_ms: 0,
        exit_now: false,
        accept_resume_ms: 0,
        accept_room,
        rearm: Vec::new(),
        cqes: Vec::with_capacity(1024),
        scratch: vec![0u8; BUF_SIZE].into_boxed_slice(),
        board,
        error_log: cli.error_log.clone(),
        pipes: PipePool::new(PIPE_SIZE),
        send_pool: pool::SendPool::default(),
        tls_config,
        tls_scratch: tls::Scratch::default(),
    };
    let code = w.event_loop();
    // Exit without dropping the worker: operations may still be in flight (a fast stop, or a
    // drain that timed out), and the kernel owns their buffers until it cancels them, which it
    // does at process exit before the memory goes away.
    std::mem::forget(w);
    code
}

/// Switches user and enters the sandbox once everything is open; prints the start-up line
/// (worker 0 only: every worker gets the same layers). Err: the exit status, the worker must not
/// serve (the switch failed, or `--sandbox strict` and a layer is missing).
fn enter_sandbox(cli: &Cli, index: usize, ring: Result<(), String>) -> Result<(), i32> {
    let fail = |what: String| {
        eprintln!("ringstatic: worker {index}: {what}");
        EXIT_SETUP_FAILED
    };
    let user = crate::privileges::target(&cli.user).map_err(fail)?;
    let root = cli.root();
    let plan = crate::sandbox::Plan {
        mode: cli.sandbox,
        user: user.as_ref(),
        root: &root,
        logs: cli
            .access_log_path()
            .into_iter()
            .chain(cli.error_log.clone())
            .collect(),
        ring,
    };
    let report = crate::sandbox::enter(plan).map_err(fail)?;
    if cli.sandbox == SandboxMode::Strict && !report.complete() {
        return Err(fail(format!(
            "--sandbox strict: refusing to serve ({})",
            report.missing()
        )));
    }
    if index == 0 {
        eprintln!("ringstatic: {}", report.line());
    }
    Ok(())
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
        // Connections still open at exit (a fast stop, or a drain that timed out) end here.
        for slot in self.conns.select(|_| true) {
            if let Some(c) = self.conns.at(slot) {
                self.site.log_ended(c, true, &self.clock);
            }
        }
        self.finish_log();
        code
    }

    fn serve(&mut self) -> i32 {
        loop {
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                // EBUSY: completions are overflowing; handling them below makes room.
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
            self.ring.collect(&mut cqes);
            for &(ud, res, flags) in &cqes {
                self.dispatch(ud, res, flags);
            }
            cqes.clear();
            self.cqes = cqes;
            for key in std::mem::take(&mut self.rearm) {
                if self.conns.get(key).is_some_and(|c| c.wants_recv()) {
                    self.arm_recv(key.slot);
                }
            }
            self.flush_log(false);
            if self.exit_now
                || (self.draining
                    && self.conns.live() == 0
                    && self.listeners.iter().all(|l| !l.armed))
            {
                // Not before every accept has ended: one still armed when the ring is torn
                // down could take a connection from the shared socket and lose it.
                return 0;
            }
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

    /// Asks the kernel to cancel the operation submitted with `target`.
    fn cancel(&mut self, target: Key) {
        // SAFETY: a cancel points at no memory of ours.
        unsafe { self.ring.push(op::cancel(target)) };
    }
}

/// The error numbers a completion reports, as an io::Error for messages.
fn os_error(res: i32) -> io::Error {
    io::Error::from_raw_os_error(-res)
}
