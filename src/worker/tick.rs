//! The worker's timer tick (timeouts, the cache's sweep, counters for the master, the access log's
//! flush), its signals (SIGTERM/SIGQUIT drain, SIGINT exit, SIGUSR1 reopen logs) and the graceful drain.

use std::io;
use std::os::fd::RawFd;

use super::Worker;
use crate::conn::{Lifecycle, Writing};
use crate::metrics::{
    CACHE_ENTRIES, CACHE_EVICTIONS, CACHE_HITS, CACHE_MISSES, CACHE_OPEN_FDS, COMPRESSIONS,
    CONN_ACTIVE, CONN_IDLE, CONN_READING, CONN_WRITING, SQ_FULL, TIMEOUTS,
};
use crate::ring::key::{Key, Op};
use crate::ring::op;
use crate::scoreboard::DRAINING;

/// While draining, a keep-alive connection idle this long with nothing in its receive queue is
/// closed; one that is busy (a request on the wire) is answered with `Connection: close` first.
const DRAIN_IDLE_MS: u64 = 100;

impl Worker {
    pub(super) fn arm_tick(&mut self) {
        let sqe = op::timeout(&*self.tick_ts, Key::new(Op::Tick, 0, 0));
        // SAFETY: the timespec is boxed in the worker, which is never dropped (see `run`).
        unsafe { self.ring.push(sqe) };
    }

    pub(super) fn on_tick(&mut self) {
        let now = self.clock.now_ms;
        for slot in self.conns.select(|c| c.expired(now)) {
            if let Some(c) = self.conns.at(slot) {
                self.site.counters.0[TIMEOUTS + c.timeout_kind()] += 1;
            }
            self.time_out(slot);
        }
        if self.draining {
            if now >= self.drain_deadline_ms {
                self.exit_now = true;
            }
            self.close_quiet_idle();
        }
        if self.board.is_some() {
            self.count_gauges();
        }
        if let Some(b) = &self.board {
            use std::sync::atomic::Ordering::Relaxed;
            let s = b.get();
            s.heartbeat.fetch_add(1, Relaxed);
            s.connections.store(self.conns.live() as u64, Relaxed);
            s.requests.store(self.site.requests(), Relaxed);
            self.site.counters.publish(&s.counters);
        }
        self.site.sweep_cache(now);
        self.flush_log(true);
        self.accept_tick();
        self.arm_tick();
    }

    /// A connection's timeout ran out. A half-sent head is answered with 408 and then closed;
    /// anything else (an idle keep-alive connection, a send that made no progress, a linger)
    /// is closed at once, silently.
    fn time_out(&mut self, slot: u32) {
        let Some(c) = self.conns.at(slot) else { return };
        let answerable = c.life() == Lifecycle::Open && c.writing() == crate::conn::Writing::Idle;
        if answerable && self.site.time_out(c, &self.cfg, &self.clock, self.draining) {
            return self.progress(slot);
        }
        self.begin_close(slot);
    }

    /// The gauges and the counts kept elsewhere (cache, ring), into the counters before they
    /// are published. Looks at every connection: once a tick, never per request.
    fn count_gauges(&mut self) {
        let (mut reading, mut writing, mut idle) = (0, 0, 0);
        for c in self.conns.iter() {
            if c.life() != Lifecycle::Open {
                continue;
            }
            if c.writing() != Writing::Idle || !c.session.out().is_empty() {
                writing += 1;
            } else if c.is_idle() && c.proxy.is_none() && c.timeout_kind() == 1 {
                idle += 1;
            } else {
                reading += 1;
            }
        }
        let (cache, entries) = self.site.cache_stats();
        let sq_full = self.ring.full_events();
        let v = &mut self.site.counters.0;
        v[CONN_ACTIVE] = self.conns.live() as u64;
        v[CONN_READING] = reading;
        v[CONN_WRITING] = writing;
        v[CONN_IDLE] = idle;
        v[CACHE_HITS] = cache.hits;
        v[CACHE_MISSES] = cache.misses;
        v[CACHE_EVICTIONS] = cache.evictions;
        v[CACHE_OPEN_FDS] = cache.open_fds;
        v[CACHE_ENTRIES] = entries as u64;
        v[SQ_FULL] = sq_full;
        v[COMPRESSIONS] = cache.compressions;
    }

    pub(super) fn arm_signal(&mut self) {
        let sqe = op::poll(self.sigfd, libc::POLLIN, Key::new(Op::Signal, 0, 0));
        // SAFETY: a poll points at no memory; the signalfd lives as long as the worker.
        unsafe { self.ring.push(sqe) };
    }

    pub(super) fn on_signal(&mut self) {
        loop {
            // SAFETY: signalfd_siginfo is plain data for which all-zero is valid.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            // SAFETY: reads at most its size into `info`.
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
        let quiet = self.conns.select(|c| {
            c.life() == Lifecycle::Open
                && c.is_idle()
                && c.session.ending().is_none()
                && c.idle_for(now) >= DRAIN_IDLE_MS
                && bytes_waiting(c.fd()) == 0
        });
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
        self.site.reopen_log();
    }
}

/// Blocks the signals the worker handles and returns a signalfd that reports them. The fd
/// lives as long as the worker (whose exit releases it).
pub(super) fn block_signals() -> io::Result<RawFd> {
    use std::os::fd::IntoRawFd;
    crate::sigset::block_into_signalfd(&[
        libc::SIGTERM,
        libc::SIGQUIT,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ])
    .map(IntoRawFd::into_raw_fd)
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
