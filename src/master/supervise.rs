//! The worker processes: starting them, collecting them when they exit, and pacing restarts.
//!
//! This file knows processes, not policy. What an exit means depends on what the master is doing
//! (a reload waiting for its new workers, a stop, the first start not yet READY), so `reap()` only
//! reports `Exit` values and `Exit::verdict` turns one into a decision from facts the master
//! passes in; mod.rs then acts on it. Keeping the decision a pure function is what lets it be
//! tested without starting processes.
//!
//! A worker entry outlives its process: it keeps its index (the listening sockets it takes), its
//! CPU, its scoreboard slot and its restart backoff across restarts, until it retires.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::setup::{allowed_cpus, prepare_child};
use crate::config::WorkerSpec;
use crate::inherit::Listeners;
use crate::scoreboard::{Scoreboard, ACCEPTING};
use crate::worker::EXIT_SETUP_FAILED;

/// A worker that lives this long counts as healthy; dying sooner doubles the restart delay.
const SETTLE: Duration = Duration::from_secs(2);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const SCOREBOARD_SLOTS: usize = 4096;

struct Proc {
    index: usize,
    gen: u64,
    cpu: Option<usize>,
    slot: usize,
    child: Option<Child>,
    started: Instant,
    backoff: Duration,
    restart_at: Option<Instant>,
    ever_settled: bool,
    /// Told to stop (an older generation after a reload, or an abandoned reload's): never
    /// restarted, and forgotten once it exits.
    retiring: bool,
    last_heartbeat: u64,
    heartbeat_seen: Instant,
}

/// Which workers a signal goes to.
#[derive(Clone, Copy)]
pub enum Which {
    All,
    Retiring,
    Gen(u64),
}

pub struct Supervisor {
    procs: Vec<Proc>,
    /// The generation the next `add_generation` creates: 0 at start, one more per reload.
    next_gen: u64,
    board: Scoreboard,
    free_slots: Vec<usize>,
    /// The session-ticket secret every worker derives its ticket keys from (a sealed memfd; made
    /// once, so tickets survive reloads).
    ticket_secret: OwnedFd,
}

/// A worker process that has exited. Its entry stays until the master restarts or forgets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The entry's scoreboard slot: unique among entries, so it names the entry.
    pub slot: usize,
    pub index: usize,
    pub gen: u64,
    pub pid: u32,
    pub ended: Ended,
    /// This worker (in this process or an earlier one) once lived at least SETTLE.
    pub settled: bool,
}

/// How a worker process ended, from its wait status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Killed { signal: i32, core: bool },
}

/// What the master does about an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It was retiring, or the master is stopping: forget it.
    Gone,
    /// One of the workers a reload waits for: the reload fails.
    ReloadFailed,
    /// It could not set itself up during the first start: every worker would fail the same way,
    /// so the master stops (exit status 1) rather than restart it forever.
    CannotStart,
    /// Start it again, after its backoff.
    Restart,
}

impl Ended {
    pub fn of(s: ExitStatus) -> Ended {
        match s.signal() {
            Some(signal) => Ended::Killed {
                signal,
                core: s.core_dumped(),
            },
            None => Ended::Exited(s.code().unwrap_or(-1)),
        }
    }

    pub fn success(self) -> bool {
        self == Ended::Exited(0)
    }
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Ended::Exited(code) => write!(f, "exited with status {code}"),
            Ended::Killed { signal, core } => write!(
                f,
                "was killed by signal {signal}{}",
                if core { " (core dumped)" } else { "" }
            ),
        }
    }
}

impl Exit {
    /// Decides what this exit means. `retiring` is the entry's state now (a reload abandoned by
    /// an earlier exit in the same batch retires the rest of its generation); `reload_gen` is the
    /// generation a reload in progress waits for; `starting` holds until the first READY.
    pub fn verdict(
        &self,
        retiring: bool,
        stopping: bool,
        reload_gen: Option<u64>,
        starting: bool,
    ) -> Verdict {
        if retiring || stopping {
            Verdict::Gone
        } else if reload_gen == Some(self.gen) {
            Verdict::ReloadFailed
        } else if self.ended == Ended::Exited(EXIT_SETUP_FAILED) && !self.settled && starting {
            Verdict::CannotStart
        } else {
            Verdict::Restart
        }
    }
}

/// The restart delay after a failed start or an exit: it doubles (from 100 ms, up to 5 s) while
/// the worker keeps dying young, and drops to nothing once it lived SETTLE. `lived` is None for a
/// start that failed outright.
pub fn backoff(prev: Duration, lived: Option<Duration>) -> Duration {
    match lived {
        Some(l) if l >= SETTLE => Duration::ZERO,
        _ if prev.is_zero() => FIRST_BACKOFF,
        _ => (prev * 2).min(MAX_BACKOFF),
    }
}

impl Supervisor {
    pub fn new() -> Result<Supervisor, String> {
        let board = Scoreboard::create(SCOREBOARD_SLOTS)
            .map_err(|e| format!("cannot create the scoreboard: {e}"))?;
        let ticket_secret = crate::tls::ticket_secret_memfd()
            .map_err(|e| format!("cannot make the session-ticket secret: {e}"))?;
        Ok(Supervisor {
            procs: Vec::new(),
            next_gen: 0,
            board,
            free_slots: (0..SCOREBOARD_SLOTS).rev().collect(),
            ticket_secret,
        })
    }

    /// Adds `n` workers of a new generation, due to start now; returns the generation.
    pub fn add_generation(&mut self, n: usize) -> u64 {
        let gen = self.next_gen;
        self.next_gen += 1;
        let cpus = allowed_cpus();
        let now = Instant::now();
        for i in 0..n {
            let Some(slot) = self.free_slots.pop() else {
                eprintln!("ringstatic: too many workers alive at once; worker {i} not started");
                continue;
            };
            self.procs.push(Proc {
                index: i,
                gen,
                cpu: if cpus.is_empty() {
                    None
                } else {
                    Some(cpus[i % cpus.len()])
                },
                slot,
                child: None,
                started: now,
                backoff: Duration::ZERO,
                restart_at: Some(now),
                ever_settled: false,
                retiring: false,
                last_heartbeat: 0,
                heartbeat_seen: now,
            });
        }
        gen
    }

    /// Starts every worker whose (re)start time has come, with the arguments of its generation.
    pub fn start_due(&mut self, listeners: &Listeners, args: impl Fn(u64) -> Vec<OsString>) {
        let now = Instant::now();
        for k in 0..self.procs.len() {
            let p = &self.procs[k];
            if p.child.is_some() || p.retiring || !p.restart_at.is_some_and(|t| now >= t) {
                continue;
            }
            let spec = WorkerSpec {
                index: p.index,
                cpu: p.cpu,
                fds: listeners.for_worker(p.index, self.count(p.gen)),
                board: Some((self.board.fd(), p.slot)),
                ticket_secret: Some(self.ticket_secret.as_raw_fd()),
            };
            let args = args(p.gen);
            self.board.reset(p.slot);
            let p = &mut self.procs[k];
            p.restart_at = None;
            match spawn_worker(&args, &spec, self.board.fd()) {
                Ok(c) => {
                    p.child = Some(c);
                    p.started = Instant::now();
                    p.heartbeat_seen = Instant::now();
                    p.last_heartbeat = 0;
                }
                Err(e) => {
                    eprintln!("ringstatic: cannot start worker {}: {e}", p.index);
                    p.backoff = backoff(p.backoff, None);
                    p.restart_at = Some(Instant::now() + p.backoff);
                }
            }
        }
    }

    /// When `start_due` next has something to start (a worker waiting out its backoff).
    pub fn next_start(&self) -> Option<Instant> {
        self.procs
            .iter()
            .filter(|p| p.child.is_none() && !p.retiring)
            .filter_map(|p| p.restart_at)
            .min()
    }

    /// Collects the workers that have exited since the last call.
    pub fn reap(&mut self) -> Vec<Exit> {
        let mut exits = Vec::new();
        for p in self.procs.iter_mut() {
            let status = match p.child.as_mut().map(|c| c.try_wait()) {
                Some(Ok(Some(s))) => s,
                _ => continue,
            };
            let pid = p.child.take().map(|c| c.id()).unwrap_or(0);
            p.ever_settled |= p.started.elapsed() >= SETTLE;
            exits.push(Exit {
                slot: p.slot,
                index: p.index,
                gen: p.gen,
                pid,
                ended: Ended::of(status),
                settled: p.ever_settled,
            });
        }
        exits
    }

    fn find(&mut self, slot: usize) -> Option<&mut Proc> {
        self.procs.iter_mut().find(|p| p.slot == slot)
    }

    pub fn is_retiring(&self, slot: usize) -> bool {
        self.procs.iter().any(|p| p.slot == slot && p.retiring)
    }

    pub fn any_retiring(&self) -> bool {
        self.procs.iter().any(|p| p.retiring)
    }

    /// Schedules an exited worker's restart after its backoff.
    pub fn restart_later(&mut self, slot: usize) {
        if let Some(p) = self.find(slot) {
            p.backoff = backoff(p.backoff, Some(p.started.elapsed()));
            p.restart_at = Some(Instant::now() + p.backoff);
        }
    }

    /// Drops the entry of an exited worker that will not be restarted, freeing its slot.
    pub fn forget(&mut self, slot: usize) {
        if let Some(k) = self.procs.iter().position(|p| p.slot == slot) {
            self.procs.remove(k);
            self.board.reset(slot);
            self.free_slots.push(slot);
        }
    }

    /// Marks every worker of the generations `gens` selects as retiring.
    pub fn retire(&mut self, gens: impl Fn(u64) -> bool) {
        for p in self.procs.iter_mut().filter(|p| gens(p.gen)) {
            p.retiring = true;
        }
    }

    pub fn signal(&self, which: Which, sig: i32) {
        for p in &self.procs {
            let chosen = match which {
                Which::All => true,
                Which::Retiring => p.retiring,
                Which::Gen(g) => p.gen == g,
            };
            if let (true, Some(c)) = (chosen, &p.child) {
                // SAFETY: kill(2) on our own child's pid (not yet reaped, so not reused).
                unsafe { libc::kill(c.id() as i32, sig) };
            }
        }
    }

    /// Waits for every worker to exit, killing those still alive at `deadline`.
    pub fn reap_all(&mut self, deadline: Instant) {
        for p in self.procs.iter_mut() {
            if let Some(mut c) = p.child.take() {
                loop {
                    match c.try_wait() {
                        Ok(Some(_)) | Err(_) => break,
                        Ok(None) if Instant::now() >= deadline => {
                            let _ = c.kill();
                            let _ = c.wait();
                            break;
                        }
                        Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            }
        }
    }

    /// All entries, of every generation.
    pub fn len(&self) -> usize {
        self.procs.len()
    }

    /// The entries of generation `gen`.
    pub fn count(&self, gen: u64) -> usize {
        self.procs.iter().filter(|p| p.gen == gen).count()
    }

    /// Entries that are not retiring: the workers serving the running configuration.
    pub fn serving(&self) -> usize {
        self.procs.iter().filter(|p| !p.retiring).count()
    }

    pub fn all_exited(&self) -> bool {
        self.procs.iter().all(|p| p.child.is_none())
    }

    /// Every worker of generation `gen` is running and accepting (true when there are none).
    pub fn accepting(&self, gen: u64) -> bool {
        self.procs.iter().filter(|p| p.gen == gen).all(|p| {
            p.child.is_some() && self.board.slot(p.slot).state.load(Ordering::Acquire) == ACCEPTING
        })
    }

    /// Samples every running worker's heartbeat; kills one that has not moved for `hung_after`
    /// (reap then restarts it). Returns false when one had to be killed.
    pub fn check_progress(&mut self, now: Instant, hung_after: Duration) -> bool {
        let mut healthy = true;
        for p in self.procs.iter_mut() {
            let Some(c) = &p.child else { continue };
            let hb = self.board.slot(p.slot).heartbeat.load(Ordering::Relaxed);
            if hb != p.last_heartbeat {
                p.last_heartbeat = hb;
                p.heartbeat_seen = now;
            } else if now.duration_since(p.heartbeat_seen) > hung_after && !p.retiring {
                eprintln!(
                    "ringstatic: worker {} (pid {}) made no progress for {:?}; killing it",
                    p.index,
                    c.id(),
                    hung_after
                );
                // SAFETY: kill(2) on our own unreaped child; reap() restarts it.
                unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
                healthy = false;
            }
        }
        healthy
    }

    /// A read-only mapping of the scoreboard for the status listener's thread.
    pub fn board_reader(&self) -> io::Result<crate::scoreboard::BoardReader> {
        self.board.reader()
    }

    /// Every entry, as the status listener sees it.
    pub fn views(&self) -> Vec<super::status::WorkerView> {
        self.procs
            .iter()
            .map(|p| super::status::WorkerView {
                index: p.index,
                slot: p.slot,
                running: p.child.is_some(),
                retiring: p.retiring,
            })
            .collect()
    }

    /// Running workers, and their connections and requests served, for STATUS=.
    pub fn totals(&self) -> (usize, u64, u64) {
        let (mut n, mut conns, mut reqs) = (0usize, 0u64, 0u64);
        for p in self.procs.iter().filter(|p| p.child.is_some()) {
            let s = self.board.slot(p.slot);
            conns += s.connections.load(Ordering::Relaxed);
            reqs += s.requests.load(Ordering::Relaxed);
            n += 1;
        }
        (n, conns, reqs)
    }
}

/// Starts a worker: this binary again, through /proc/self/exe, with the hidden worker flag.
fn spawn_worker(args: &[OsString], spec: &WorkerSpec, board_fd: RawFd) -> io::Result<Child> {
    let mut all: Vec<OsString> = args.to_vec();
    all.push("--worker-internal".into());
    all.push(spec.to_arg().into());
    let mut keep: Vec<RawFd> = spec.fds.iter().map(|&(fd, _)| fd).collect();
    keep.push(board_fd);
    keep.extend(spec.ticket_secret);
    let master = std::process::id() as i32;
    let mut cmd = Command::new("/proc/self/exe");
    // ps and top show workers under the name the master was started with.
    cmd.arg0(
        std::env::args_os()
            .next()
            .unwrap_or_else(|| "ringstatic".into()),
    );
    cmd.args(all);
    // SAFETY: the closure runs between fork and exec, calling only async-signal-safe functions.
    unsafe {
        cmd.pre_exec(move || {
            prepare_child(&keep)?;
            // A worker must not outlive its master (a master killed with SIGKILL included).
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != master {
                return Err(io::Error::other("master exited"));
            }
            Ok(())
        });
    }
    cmd.spawn()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit_with(ended: Ended, gen: u64, settled: bool) -> Exit {
        Exit {
            slot: 7,
            index: 0,
            gen,
            pid: 1234,
            ended,
            settled,
        }
    }

    #[test]
    fn ended_from_wait_status() {
        // Raw wait statuses: exit code in the second byte; a signal in the low 7 bits, 0x80 for
        // a core dump.
        let of = |raw| Ended::of(ExitStatus::from_raw(raw));
        assert_eq!(of(0), Ended::Exited(0));
        assert!(of(0).success());
        assert_eq!(of(EXIT_SETUP_FAILED << 8), Ended::Exited(EXIT_SETUP_FAILED));
        assert!(!of(1 << 8).success());
        assert_eq!(
            of(libc::SIGKILL),
            Ended::Killed {
                signal: libc::SIGKILL,
                core: false
            }
        );
        assert_eq!(
            of(libc::SIGSEGV | 0x80),
            Ended::Killed {
                signal: libc::SIGSEGV,
                core: true
            }
        );
        assert_eq!(of(3 << 8).to_string(), "exited with status 3");
        assert_eq!(
            of(libc::SIGSEGV | 0x80).to_string(),
            format!("was killed by signal {} (core dumped)", libc::SIGSEGV)
        );
        assert_eq!(
            of(libc::SIGKILL).to_string(),
            format!("was killed by signal {}", libc::SIGKILL)
        );
    }

    #[test]
    fn verdicts() {
        use Verdict::*;
        let crash = exit_with(
            Ended::Killed {
                signal: libc::SIGSEGV,
                core: false,
            },
            0,
            false,
        );
        let setup = exit_with(Ended::Exited(EXIT_SETUP_FAILED), 0, false);
        // Retiring or stopping wins over everything else.
        assert_eq!(crash.verdict(true, false, Some(0), true), Gone);
        assert_eq!(setup.verdict(false, true, None, true), Gone);
        // A worker a reload waits for fails the reload, whatever its status.
        assert_eq!(crash.verdict(false, false, Some(0), false), ReloadFailed);
        assert_eq!(setup.verdict(false, false, Some(0), true), ReloadFailed);
        assert_eq!(crash.verdict(false, false, Some(1), false), Restart);
        // A setup failure stops the master only during the first start, and only for a worker
        // that never settled.
        assert_eq!(setup.verdict(false, false, None, true), CannotStart);
        assert_eq!(setup.verdict(false, false, None, false), Restart);
        let settled = exit_with(Ended::Exited(EXIT_SETUP_FAILED), 0, true);
        assert_eq!(settled.verdict(false, false, None, true), Restart);
        assert_eq!(crash.verdict(false, false, None, true), Restart);
        let clean = exit_with(Ended::Exited(0), 0, false);
        assert_eq!(clean.verdict(false, false, None, false), Restart);
    }

    #[test]
    fn backoff_doubles_while_dying_young_and_resets_once_settled() {
        let young = Some(Duration::from_millis(10));
        let mut b = Duration::ZERO;
        let mut seen = Vec::new();
        for _ in 0..9 {
            b = backoff(b, young);
            seen.push(b.as_millis());
        }
        assert_eq!(seen, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(backoff(b, Some(SETTLE)), Duration::ZERO);
        assert_eq!(backoff(b, Some(Duration::from_secs(60))), Duration::ZERO);
        // A start that failed outright never counts as settled.
        assert_eq!(backoff(Duration::ZERO, None), FIRST_BACKOFF);
        assert_eq!(backoff(Duration::from_secs(4), None), MAX_BACKOFF);
    }
}
