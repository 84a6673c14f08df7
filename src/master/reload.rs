//! Reload (SIGHUP): new workers first, old ones retire once every new one accepts, so that no
//! moment passes without workers accepting and no connection is refused.
//!
//! It is a small state machine because it spans many turns of the master's loop and can end two
//! ways: `begin` (read and check the new configuration, bind the addresses it adds, start a new
//! generation of workers), then either `commit` (every new worker accepts: the old generation
//! retires, the addresses the new configuration dropped close once it is gone) or `abandon` (a
//! new worker died, or they did not all accept within START_TIMEOUT: the new generation retires
//! and the listening sockets go back to what the running configuration serves). Either way the
//! `ringstatic -s reload` processes waiting are answered.

use std::time::{Duration, Instant};

use super::setup::{allowed_cpus, worker_count};
use super::supervise::Which;
use super::Master;
use crate::config::{check, ListenSpec, Loaded};
use crate::inherit::Bound;
use crate::sigset::RELOAD_MARK;

/// How long new workers get to start accepting.
const START_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Reload {
    /// The generation of workers started for the new configuration.
    pub gen: u64,
    deadline: Instant,
    /// `ringstatic -s reload` processes waiting for the outcome.
    repliers: Vec<i32>,
    pub next: Loaded,
    /// Addresses and worker count served before, to go back to if the reload is abandoned.
    before_listen: Vec<ListenSpec>,
    before_workers: usize,
    /// Sockets of addresses the new configuration drops.
    retired: Vec<Bound>,
}

/// Where a reload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// New workers are still starting.
    Starting,
    /// Every new worker accepts: commit.
    Accepting,
    /// START_TIMEOUT passed first: abandon.
    TimedOut,
}

impl Reload {
    /// While starting, only the scoreboard can tell when the new workers accept: the master
    /// polls it (see `Master::next_due`).
    pub fn progress(&self, now: Instant, accepting: bool) -> Progress {
        if accepting {
            Progress::Accepting
        } else if now >= self.deadline {
            Progress::TimedOut
        } else {
            Progress::Starting
        }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Master {
    /// SIGHUP: begins a reload, or joins the one in progress (`replier` then waits for it too).
    pub(super) fn start_reload(&mut self, replier: Option<i32>) {
        if self.stop.is_some() {
            reply(&replier.into_iter().collect::<Vec<_>>(), false);
            return;
        }
        if let Some(r) = &mut self.reload {
            r.repliers.extend(replier);
            return;
        }
        let fail = |m: &mut Master, why: String, replier: Option<i32>| {
            m.reloads_failed += 1;
            eprintln!("ringstatic: reload failed, keeping the running configuration: {why}");
            m.systemd
                .send("STATUS=reload failed; serving the previous configuration");
            reply(&replier.into_iter().collect::<Vec<_>>(), false);
        };
        let next = match crate::config::load(&self.args) {
            Ok(l) => l,
            Err(e) => return fail(self, e.to_string().trim().replace('\n', " "), replier),
        };
        if let Err(e) = check(&next.cli) {
            return fail(self, e, replier);
        }
        if let Err(e) = crate::privileges::check_workers_can_read(&next.cli) {
            return fail(self, e, replier);
        }
        if next.cli.status_listen != self.loaded.cli.status_listen {
            eprintln!("ringstatic: reload: a changed status-listen takes effect at the next start");
        }
        eprintln!("ringstatic: reloading");
        self.systemd.reloading();
        let before_listen: Vec<_> = self
            .listeners
            .bound
            .iter()
            .map(|b| ListenSpec {
                addr: b.configured,
                proxy_protocol: b.kind.proxy,
                tls: b.kind.tls,
            })
            .collect();
        let before_workers = self.sup.serving();
        let n = worker_count(&next, allowed_cpus().len());
        // An address an earlier reload retired, listed again while its old workers still drain:
        // its sockets are still ours, so they serve again (a fresh claim would be refused by
        // our own listening sockets).
        let (back, still): (Vec<Bound>, Vec<Bound>) = std::mem::take(&mut self.retired)
            .into_iter()
            .partition(|b| next.cli.listen.iter().any(|l| l.addr == b.configured));
        self.retired = still;
        self.listeners.bound.extend(back);
        let retired =
            match self
                .listeners
                .ensure(&next.cli.listen, n, next.cli.defer_accept, &mut Vec::new())
            {
                Ok(r) => r,
                Err(e) => {
                    let (kept, back): (Vec<Bound>, Vec<Bound>) =
                        std::mem::take(&mut self.listeners.bound)
                            .into_iter()
                            .partition(|b| before_listen.iter().any(|l| l.addr == b.configured));
                    self.listeners.bound = kept;
                    self.retired.extend(back);
                    self.systemd.send("READY=1");
                    return fail(self, e, replier);
                }
            };
        let gen = self.sup.add_generation(n);
        self.reload = Some(Reload {
            gen,
            deadline: Instant::now() + START_TIMEOUT,
            repliers: replier.into_iter().collect(),
            next,
            before_listen,
            before_workers,
            retired,
        });
        self.start_due();
    }

    /// Commits or abandons the reload in progress once its outcome is known.
    pub(super) fn check_reload(&mut self) {
        let Some(r) = &self.reload else { return };
        let accepting = self.sup.count(r.gen) > 0 && self.sup.accepting(r.gen);
        match r.progress(Instant::now(), accepting) {
            Progress::Starting => {}
            Progress::Accepting => {
                let r = self.reload.take().expect("checked");
                self.commit_reload(r);
            }
            Progress::TimedOut => {
                self.abandon_reload("new workers did not start accepting in time")
            }
        }
    }

    fn commit_reload(&mut self, r: Reload) {
        let gen = r.gen;
        self.sup.retire(|g| g != gen);
        self.sup.signal(Which::Retiring, libc::SIGTERM);
        self.retired.extend(r.retired);
        self.loaded = r.next;
        self.systemd.store_fds(&self.listeners, &self.retired);
        eprintln!(
            "ringstatic: reload done: {} new workers accepting",
            self.sup.count(gen)
        );
        self.systemd.send("READY=1\nSTATUS=reloaded");
        self.reloads_ok += 1;
        reply(&r.repliers, true);
    }

    /// Gives up the reload in progress, if any: the running configuration keeps serving.
    pub(super) fn abandon_reload(&mut self, why: &str) {
        let Some(r) = self.reload.take() else { return };
        eprintln!("ringstatic: reload failed, keeping the running configuration: {why}");
        self.reloads_failed += 1;
        self.sup.retire(|g| g == r.gen);
        self.sup.signal(Which::Gen(r.gen), libc::SIGTERM);
        self.listeners.bound.extend(r.retired);
        let defer_accept = self.loaded.cli.defer_accept;
        if let Ok(added) = self.listeners.ensure(
            &r.before_listen,
            r.before_workers,
            defer_accept,
            &mut Vec::new(),
        ) {
            self.retired.extend(added);
        }
        self.systemd
            .send("READY=1\nSTATUS=reload failed; serving the previous configuration");
        reply(&r.repliers, false);
    }

    /// Answers the waiting `-s reload` processes of a reload that will not happen (a stop).
    pub(super) fn drop_reload(&mut self) {
        if let Some(r) = self.reload.take() {
            reply(&r.repliers, false);
        }
    }
}

/// Answers `ringstatic -s reload` processes waiting for the outcome.
fn reply(pids: &[i32], ok: bool) {
    for &pid in pids {
        let val = libc::sigval {
            sival_ptr: RELOAD_MARK as *mut libc::c_void,
        };
        // SAFETY: sigqueue to the pid that asked; a stale pid at worst gets an ignored signal.
        unsafe { libc::sigqueue(pid, if ok { libc::SIGUSR1 } else { libc::SIGUSR2 }, val) };
    }
}
