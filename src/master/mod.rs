//! The master: checks the setup, owns the listening sockets, starts one worker process per CPU,
//! restarts a worker that dies, and turns signals into actions. It does no request work.
//!
//! Workers are this same binary re-executed through /proc/self/exe with a hidden flag naming their
//! index, CPU, inherited sockets and scoreboard slot. The master keeps every listening socket open,
//! so a worker's death loses no connection waiting in its accept queue: the restarted worker picks
//! them up.
//!
//! Signals: TERM/QUIT graceful stop (a second TERM, or INT: stop now); HUP reload (new workers
//! first, old ones retire once the new ones accept); USR1 reopen logs; USR2 binary upgrade.
//!
//! The loop sleeps until a signal or the next thing due (a restart's backoff, a deadline, a
//! watchdog ping); it polls only while waiting for workers to accept (see `next_due`).
//!
//! This file holds the loop and the decisions that need the whole picture; the parts that each
//! have one concern live beside it: `supervise` (worker processes, exits, backoff), `reload` and
//! `upgrade` (their state machines), `systemd` (what systemd is told), `signals` (how signals are
//! taken), `setup` (process plumbing), and `status` with `exposition` (the status listener's
//! thread, which the loop feeds a `View` of itself after every turn).

mod exposition;
mod reload;
mod setup;
mod signals;
mod status;
mod supervise;
mod systemd;
mod upgrade;

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::{check, Loaded};
use crate::inherit::{self, Bound, Listeners};
use crate::pidfile::PidFile;
use reload::Reload;
use setup::{allowed_cpus, raise_nofile_limit, reopen_error_log, worker_count};
use signals::{Sig, Signals};
use status::{Status, View};
use supervise::{Exit, Supervisor, Verdict, Which};
use systemd::Systemd;
use upgrade::{Handover, Upgrade};

/// How often the loop looks at the scoreboard while it waits for workers to accept.
const POLL: Duration = Duration::from_millis(100);

/// A stop in progress.
struct Stop {
    /// When the workers still running get SIGKILL.
    deadline: Instant,
    /// SIGINT (stop now) rather than SIGTERM (finish responses in flight).
    fast: bool,
}

pub struct Master {
    /// The command line as given (reload re-reads the config file it names).
    args: Vec<OsString>,
    loaded: Loaded,
    exe: PathBuf,
    listeners: Listeners,
    /// Sockets of addresses dropped by a reload, closed once the old workers are gone.
    retired: Vec<Bound>,
    sup: Supervisor,
    systemd: Systemd,
    pid_file: Option<PidFile>,
    stop: Option<Stop>,
    reload: Option<Reload>,
    upgrade: Option<Upgrade>,
    /// Set in a master started by a binary upgrade: where to say "ready" to the old one.
    handover: Option<Handover>,
    /// READY was said: the first start is over.
    ready_sent: bool,
    signals: Signals,
    /// The status listener, when `--status-listen` is set.
    status: Option<Status>,
    /// A stop was asked for with `--drain-delay`: /readyz says 503, serving goes on until then.
    drain_until: Option<Instant>,
    /// Counted for the metrics: workers restarted, reloads that succeeded and failed.
    restarts: u64,
    reloads_ok: u64,
    reloads_failed: u64,
}

pub fn run(args: Vec<OsString>, loaded: Loaded) -> i32 {
    match start(args, loaded) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("ringstatic: {msg}");
            1
        }
    }
}

fn start(args: Vec<OsString>, loaded: Loaded) -> Result<i32, String> {
    let signals = Signals::block()?;
    let root = loaded.cli.root();
    check(&loaded.cli)?;
    crate::privileges::check_workers_can_read(&loaded.cli)?;
    if let Some(p) = &loaded.cli.error_log {
        reopen_error_log(p)?;
    }
    let inherited = inherit::take_inherited();
    let handover = Handover::from_env();
    let nofile = raise_nofile_limit();
    crate::ring::check_available()?;

    let mut listeners = Listeners::default();
    let mut spare = listeners.adopt(inherited);
    if !listeners.activated.is_empty() {
        let names: Vec<&str> = listeners
            .activated
            .iter()
            .map(|(n, _, _)| n.as_str())
            .collect();
        eprintln!(
            "ringstatic: serving sockets passed by systemd ({}); --listen is ignored",
            names.join(", ")
        );
    }
    // Locked before anything is bound: a second instance given the same pid file stops here.
    let pid_file = match &loaded.cli.pid_file {
        Some(p) => Some(PidFile::create(p)?),
        None => None,
    };
    let n = worker_count(&loaded, allowed_cpus().len());
    listeners.ensure(&loaded.cli.listen, n, loaded.cli.defer_accept, &mut spare)?;
    drop(spare); // inherited sockets for addresses no longer configured
    {
        let mut out = io::stdout().lock();
        for (a, tls) in listeners.addresses() {
            let scheme = if tls { "https" } else { "http" };
            let _ = writeln!(out, "listening on {scheme}://{a}");
        }
        let _ = out.flush();
    }
    eprintln!("ringstatic: open file limit {nofile}");
    let sup = Supervisor::new()?;
    let status = match loaded.cli.status_listen {
        Some(addr) => {
            let board = sup
                .board_reader()
                .map_err(|e| format!("cannot map the scoreboard for the status listener: {e}"))?;
            let s = Status::start(addr, board, handover.is_some())?;
            println!("status on http://{}", s.addr);
            Some(s)
        }
        None => None,
    };
    let exe = std::fs::read_link("/proc/self/exe")
        .map_err(|e| format!("cannot find own executable: {e}"))?;
    let mut m = Master {
        args,
        loaded,
        exe,
        listeners,
        retired: Vec::new(),
        sup,
        systemd: Systemd::from_env(),
        pid_file,
        stop: None,
        reload: None,
        upgrade: None,
        handover,
        ready_sent: false,
        signals,
        status,
        drain_until: None,
        restarts: 0,
        reloads_ok: 0,
        reloads_failed: 0,
    };
    m.systemd.store_fds(&m.listeners, &m.retired);
    m.sup.add_generation(n);
    m.start_due();
    eprintln!(
        "ringstatic: serving {} with {n} worker{} (pid {})",
        root.display(),
        if n == 1 { "" } else { "s" },
        std::process::id()
    );
    Ok(m.run_loop())
}

impl Master {
    /// Each turn sleeps until a signal, the upgrade pipe, or the next due time (`next_due`), then
    /// runs every check: each one does nothing unless its time or its event has come.
    fn run_loop(&mut self) -> i32 {
        loop {
            self.start_due();
            // Before sleeping: the status thread sees what this turn (and start_due) changed.
            self.publish_status();
            let until = self.next_due(Instant::now());
            let pipe = self.upgrade.as_ref().map(Upgrade::fd);
            if let Some(sig) = self.signals.wait(until, pipe) {
                self.on_signal(sig);
            }
            if let Some(code) = self.reap() {
                return code;
            }
            self.check_reload();
            self.check_upgrade();
            self.check_ready();
            let now = Instant::now();
            self.systemd.check_watchdog(now, &mut self.sup);
            self.check_drain_delay(now);
            self.systemd.report_status(
                now,
                &self.sup,
                self.stop.is_some() || self.drain_until.is_some(),
            );
            if let Some(code) = self.check_stop() {
                return code;
            }
        }
    }

    /// What the status listener shows, as of this turn of the loop.
    fn publish_status(&self) {
        let Some(s) = &self.status else { return };
        let workers = self.sup.views();
        s.publish(View {
            serving: workers
                .iter()
                .filter(|w| !w.retiring)
                .map(|w| w.index + 1)
                .max()
                .unwrap_or(0),
            stopping: self.stop.is_some() || self.drain_until.is_some(),
            restarts: self.restarts,
            reloads_ok: self.reloads_ok,
            reloads_failed: self.reloads_failed,
            workers,
        });
    }

    /// When the loop must wake even if no signal comes; None: only a signal (or the upgrade
    /// pipe) can give it work. A worker's exit needs no time here: SIGCHLD wakes the loop.
    fn next_due(&self, now: Instant) -> Option<Instant> {
        let stopping = self.stop.is_some();
        // Whether a worker accepts can only be seen in the scoreboard, so the loop polls it while
        // someone waits for that: a reload for its new workers, the first start for READY.
        let polling = self.reload.is_some() || (!self.ready_sent && !stopping);
        earliest([
            self.sup.next_start().filter(|_| !stopping),
            self.reload.as_ref().map(Reload::deadline),
            self.upgrade.as_ref().map(Upgrade::deadline),
            self.stop.as_ref().map(|s| s.deadline),
            self.drain_until,
            self.systemd.next_due(stopping),
            polling.then_some(now + POLL),
        ])
    }

    /// Starts every worker whose (re)start time has come; none while stopping.
    fn start_due(&mut self) {
        if self.stop.is_some() {
            return;
        }
        let reload = self.reload.as_ref().map(|r| (r.gen, &r.next.args));
        let current = &self.loaded.args;
        self.sup.start_due(&self.listeners, |gen| match reload {
            Some((g, next)) if g == gen => next.clone(),
            _ => current.clone(),
        });
    }

    // ----- signals ---------------------------------------------------------------------------

    fn on_signal(&mut self, sig: Sig) {
        match sig.signo {
            libc::SIGTERM | libc::SIGQUIT
                if self.stop.is_none()
                    && self.drain_until.is_none()
                    && !self.loaded.cli.drain_delay.is_zero() =>
            {
                self.begin_drain_delay()
            }
            libc::SIGTERM | libc::SIGQUIT if self.stop.is_none() => self.graceful_stop(),
            libc::SIGTERM | libc::SIGINT | libc::SIGQUIT => self.fast_stop(),
            libc::SIGHUP => self.start_reload(sig.reload_replier()),
            libc::SIGUSR1 => {
                eprintln!("ringstatic: reopening log files");
                if let Some(p) = &self.loaded.cli.error_log {
                    if let Err(e) = reopen_error_log(p) {
                        eprintln!("ringstatic: {e}");
                    }
                }
                self.hand_over_logs();
                self.sup.signal(Which::All, libc::SIGUSR1);
            }
            libc::SIGUSR2 => self.start_upgrade(),
            _ => {} // SIGCHLD: only a wake-up; reap() looks at every worker.
        }
    }

    /// `--drain-delay`: /readyz turns to 503 at once (the balancer's health check sees it and
    /// stops sending), serving goes on normally, and the graceful stop begins when the delay
    /// is over (or at a second SIGTERM/SIGQUIT).
    fn begin_drain_delay(&mut self) {
        let delay = self.loaded.cli.drain_delay;
        eprintln!(
            "ringstatic: stop requested: not ready from now, serving {:.1} s more before stopping",
            delay.as_secs_f64()
        );
        self.systemd.send(&format!(
            "STOPPING=1\nSTATUS=draining: not ready, serving {:.1} s more before stopping",
            delay.as_secs_f64()
        ));
        self.drain_until = Some(Instant::now() + delay);
        self.publish_status();
    }

    fn check_drain_delay(&mut self, now: Instant) {
        if self.stop.is_none() && self.drain_until.is_some_and(|t| now >= t) {
            self.graceful_stop();
        }
    }

    /// Before SIGUSR1 reaches workers that switched user: the logs they reopen exist and are theirs.
    fn hand_over_logs(&self) {
        let cli = &self.loaded.cli;
        let Ok(Some(ids)) = crate::privileges::target(&cli.user) else {
            return;
        };
        let access = cli.access_log_path();
        let logs: Vec<&std::path::Path> = access
            .iter()
            .chain(&cli.error_log)
            .map(|p| p.as_path())
            .collect();
        for e in crate::privileges::hand_over_logs(&logs, &ids) {
            eprintln!("ringstatic: {e}");
        }
    }

    fn graceful_stop(&mut self) {
        self.drain_until = None;
        eprintln!("ringstatic: graceful stop: finishing responses in flight");
        self.systemd
            .send("STOPPING=1\nSTATUS=stopping: finishing responses in flight");
        self.stop = Some(Stop {
            deadline: Instant::now() + self.loaded.cli.shutdown_timeout + Duration::from_secs(2),
            fast: false,
        });
        self.drop_reload();
        // Refuse new connections at once: the workers close their copies as they stop accepting.
        self.listeners = Listeners::default();
        self.retired.clear();
        self.sup.signal(Which::All, libc::SIGTERM);
    }

    fn fast_stop(&mut self) {
        if self.stop.as_ref().is_some_and(|s| s.fast) {
            return;
        }
        eprintln!("ringstatic: stopping now");
        self.drain_until = None;
        if self.stop.is_none() {
            self.systemd.send("STOPPING=1");
        }
        self.stop = Some(Stop {
            deadline: Instant::now() + Duration::from_secs(2),
            fast: true,
        });
        self.listeners = Listeners::default();
        self.sup.signal(Which::All, libc::SIGINT);
    }

    /// Ends the loop once a stop is complete, or overdue.
    fn check_stop(&mut self) -> Option<i32> {
        let stop = self.stop.as_ref()?;
        if self.sup.all_exited() {
            eprintln!("ringstatic: stopped");
            return Some(0);
        }
        if Instant::now() >= stop.deadline {
            eprintln!("ringstatic: workers did not stop in time; killing them");
            self.sup.signal(Which::All, libc::SIGKILL);
            self.sup.reap_all(Instant::now() + Duration::from_secs(5));
            return Some(0);
        }
        None
    }

    // ----- workers ---------------------------------------------------------------------------

    /// Collects exited workers and acts on each. Returns an exit status when the master must stop.
    fn reap(&mut self) -> Option<i32> {
        for exit in self.sup.reap() {
            if let Some(code) = self.on_exit(exit) {
                return Some(code);
            }
        }
        None
    }

    fn on_exit(&mut self, e: Exit) -> Option<i32> {
        let Exit {
            index, pid, ended, ..
        } = e;
        let verdict = e.verdict(
            self.sup.is_retiring(e.slot),
            self.stop.is_some(),
            self.reload.as_ref().map(|r| r.gen),
            !self.ready_sent,
        );
        match verdict {
            Verdict::Gone => {
                if !ended.success() && !self.stop.as_ref().is_some_and(|s| s.fast) {
                    eprintln!("ringstatic: worker {index} (pid {pid}) {ended}");
                }
                self.forget(e.slot);
            }
            Verdict::ReloadFailed => {
                eprintln!("ringstatic: reload: new worker {index} (pid {pid}) {ended}");
                self.abandon_reload("a new worker failed to start");
                // Its generation is retiring now; this one is gone already.
                self.forget(e.slot);
            }
            Verdict::CannotStart => {
                eprintln!(
                    "ringstatic: worker {index} (pid {pid}) cannot start (see above); stopping"
                );
                self.systemd
                    .send("STOPPING=1\nSTATUS=a worker cannot start; see the log");
                self.sup.signal(Which::All, libc::SIGINT);
                self.sup.reap_all(Instant::now() + Duration::from_secs(2));
                return Some(1);
            }
            Verdict::Restart => {
                eprintln!("ringstatic: worker {index} (pid {pid}) {ended}; restarting");
                self.restarts += 1;
                self.sup.restart_later(e.slot);
            }
        }
        None
    }

    /// Drops an exited worker's entry; closes the retired sockets once no retiring worker is left.
    fn forget(&mut self, slot: usize) {
        self.sup.forget(slot);
        if !self.sup.any_retiring() {
            self.retired.clear();
        }
    }

    /// READY once every worker of the first generation accepts (to systemd, and to the old master
    /// after a binary upgrade).
    fn check_ready(&mut self) {
        if self.ready_sent || self.stop.is_some() || !self.sup.accepting(0) {
            return;
        }
        self.ready_sent = true;
        self.systemd.ready(self.sup.len());
        if let Some(h) = self.handover.take() {
            h.ready();
        }
    }
}

/// The earliest of some times, if any.
fn earliest(times: impl IntoIterator<Item = Option<Instant>>) -> Option<Instant> {
    times.into_iter().flatten().min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_for_the_earliest_due_time_or_never() {
        let now = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(
            earliest([None, None]),
            None,
            "nothing due: sleep until a signal"
        );
        assert_eq!(
            earliest([Some(now + s(5)), None, Some(now + s(2)), Some(now + s(9))]),
            Some(now + s(2))
        );
        // A due time already past wakes at once (the timeout saturates to zero).
        assert_eq!(
            earliest([Some(now + s(1)), Some(now - s(1))]),
            Some(now - s(1))
        );
    }

    fn idle_master() -> Master {
        let args: Vec<OsString> = vec![std::env::temp_dir().into()];
        Master {
            loaded: crate::config::load(&args).unwrap(),
            args,
            exe: PathBuf::new(),
            listeners: Listeners::default(),
            retired: Vec::new(),
            sup: Supervisor::new().unwrap(),
            systemd: Systemd::silent(),
            pid_file: None,
            stop: None,
            reload: None,
            upgrade: None,
            handover: None,
            ready_sent: true,
            signals: Signals::block().unwrap(),
            status: None,
            drain_until: None,
            restarts: 0,
            reloads_ok: 0,
            reloads_failed: 0,
        }
    }

    #[test]
    fn next_due_sleeps_until_something_is_due() {
        let mut m = idle_master();
        let now = Instant::now();
        assert_eq!(
            m.next_due(now),
            None,
            "serving, no systemd: sleep until a signal"
        );

        m.ready_sent = false;
        assert_eq!(
            m.next_due(now),
            Some(now + POLL),
            "polls until every worker accepts"
        );
        m.ready_sent = true;

        // A worker waiting to (re)start is due at its restart time, but not while stopping.
        m.sup.add_generation(1);
        let start = m.sup.next_start().expect("due to start");
        assert_eq!(m.next_due(now + Duration::from_secs(9)), Some(start));
        let deadline = now + Duration::from_secs(12);
        m.stop = Some(Stop {
            deadline,
            fast: false,
        });
        assert_eq!(m.next_due(now), Some(deadline));
    }
}
