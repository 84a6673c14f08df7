//! The master: checks the setup, owns the listening sockets, starts one worker process per CPU,
//! restarts a worker that dies, and turns signals into actions. It does no request work.
//!
//! Workers are this same binary re-executed through /proc/self/exe with a hidden flag naming their
//! index, CPU, inherited sockets and scoreboard slot. The master keeps every listening socket open,
//! so a worker's death loses no connection waiting in its accept queue: the restarted worker picks
//! them up. Signals are blocked and taken synchronously with sigtimedwait (as nginx's handlers only
//! set flags), so no handler ever runs in the middle of the master's work.
//!
//! Signals: TERM/QUIT graceful stop (a second TERM, or INT: stop now); HUP reload (new workers
//! first, old ones retire once the new ones accept); USR1 reopen logs; USR2 binary upgrade.

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::config::{check_root, plain, Loaded, WorkerSpec, Workers};
use crate::inherit::{self, Bound, Listeners};
use crate::notify::{self, Notifier};
use crate::pidfile::PidFile;
use crate::scoreboard::{Scoreboard, ACCEPTING};
use crate::sigset::RELOAD_MARK;
use crate::worker::EXIT_SETUP_FAILED;

/// A worker that lives this long counts as healthy; dying sooner doubles the restart delay.
const SETTLE: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long new workers get to start accepting, in a reload or at start.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a binary upgrade's new master gets to report ready.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(30);
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
    /// Told to stop (an older generation after a reload, or a whole stop): never restarted.
    retiring: bool,
    last_heartbeat: u64,
    heartbeat_seen: Instant,
}

struct Reload {
    gen: u64,
    deadline: Instant,
    repliers: Vec<i32>,
    next: Loaded,
    /// Addresses served before, to go back to if the reload is abandoned.
    before_listen: Vec<std::net::SocketAddr>,
    before_workers: usize,
    retired: Vec<Bound>,
}

/// A binary upgrade in progress. The new master is started through an intermediate process that
/// exits at once, so it is never our child: under systemd it is re-parented to the service
/// manager before it reports, and the MAINPID= handover then names a process systemd can wait
/// for. It tells us its pid (`P<pid>`) and, once every worker accepts, that it is ready (`R`)
/// through a pipe; the pipe closing first means it died.
struct Upgrade {
    ready: OwnedFd,
    said: Vec<u8>,
    pid: Option<i32>,
    deadline: Instant,
}

struct Stop {
    deadline: Instant,
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
    procs: Vec<Proc>,
    gen: u64,
    board: Scoreboard,
    free_slots: Vec<usize>,
    notify: Option<Notifier>,
    watchdog: Option<Duration>,
    last_ping: Instant,
    last_status: Instant,
    pid_file: Option<PidFile>,
    stop: Option<Stop>,
    reload: Option<Reload>,
    upgrade: Option<Upgrade>,
    /// Set in a master started by a binary upgrade: where to say "ready" to the old one.
    upgrade_ready: Option<OwnedFd>,
    ready_sent: bool,
    signals: Signals,
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

fn worker_count(l: &Loaded, cpus: usize) -> usize {
    match l.cli.workers {
        Workers::Auto => cpus.max(1),
        Workers::Count(n) => n,
    }
}

fn start(args: Vec<OsString>, loaded: Loaded) -> Result<i32, String> {
    let signals = block_master_signals();
    let root = loaded.cli.root();
    check_root(&root)?;
    if let Some(p) = &loaded.cli.error_log {
        reopen_error_log(p)?;
    }
    let inherited = inherit::take_inherited();
    let upgrade_ready = std::env::var(inherit::UPGRADE_ENV)
        .ok()
        .and_then(|v| v.parse::<RawFd>().ok())
        // SAFETY: the old master passed this pipe's write end to us alone.
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    if let Some(fd) = &upgrade_ready {
        let hello = format!("P{}\n", std::process::id());
        // SAFETY: marking an fd we own close-on-exec, and telling the old master our pid.
        unsafe {
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
            libc::write(
                fd.as_raw_fd(),
                hello.as_ptr() as *const libc::c_void,
                hello.len(),
            );
        }
    }
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
    let n = worker_count(&loaded, allowed_cpus().len());
    listeners.ensure(&loaded.cli.listen, n, loaded.cli.defer_accept, &mut spare)?;
    drop(spare); // inherited sockets for addresses no longer configured
    {
        let mut out = io::stdout().lock();
        for a in listeners.addresses() {
            let _ = writeln!(out, "listening on http://{a}");
        }
        let _ = out.flush();
    }
    eprintln!("ringstatic: open file limit {nofile}");
    let pid_file = match &loaded.cli.pid_file {
        Some(p) => Some(PidFile::create(p)?),
        None => None,
    };
    let board = Scoreboard::create(SCOREBOARD_SLOTS)
        .map_err(|e| format!("cannot create the scoreboard: {e}"))?;
    let exe = std::fs::read_link("/proc/self/exe")
        .map_err(|e| format!("cannot find own executable: {e}"))?;
    let notify = Notifier::from_env();
    let mut m = Master {
        args,
        loaded,
        exe,
        listeners,
        retired: Vec::new(),
        procs: Vec::new(),
        gen: 0,
        board,
        free_slots: (0..SCOREBOARD_SLOTS).rev().collect(),
        watchdog: if notify.is_some() {
            notify::watchdog_interval()
        } else {
            None
        },
        notify,
        last_ping: Instant::now(),
        last_status: Instant::now(),
        pid_file,
        stop: None,
        reload: None,
        upgrade: None,
        upgrade_ready,
        ready_sent: false,
        signals,
    };
    m.store_fds();
    m.spawn_generation(n);
    eprintln!(
        "ringstatic: serving {} with {n} worker{} (pid {})",
        root.display(),
        if n == 1 { "" } else { "s" },
        std::process::id()
    );
    Ok(m.run_loop())
}

impl Master {
    fn run_loop(&mut self) -> i32 {
        loop {
            self.restart_due();
            let sig = wait_signal(&self.signals, Duration::from_millis(100));
            if let Some((sig, info)) = sig {
                self.on_signal(sig, &info);
            }
            if let Some(code) = self.reap() {
                return code;
            }
            self.check_reload();
            self.check_upgrade();
            self.check_ready();
            self.check_watchdog();
            self.report_status();
            if let Some(stop) = &self.stop {
                if self.procs.iter().all(|p| p.child.is_none()) {
                    eprintln!("ringstatic: stopped");
                    return 0;
                }
                if Instant::now() >= stop.deadline {
                    eprintln!("ringstatic: workers did not stop in time; killing them");
                    self.signal_procs(|_| true, libc::SIGKILL);
                    self.reap_all(Instant::now() + Duration::from_secs(5));
                    return 0;
                }
            }
        }
    }

    fn notify(&self, msg: &str) {
        if let Some(n) = &self.notify {
            n.send(msg);
        }
    }

    // ----- workers ---------------------------------------------------------------------------

    fn spawn_generation(&mut self, n: usize) {
        let cpus = allowed_cpus();
        for i in 0..n {
            let Some(slot) = self.free_slots.pop() else {
                eprintln!("ringstatic: too many workers alive at once; worker {i} not started");
                continue;
            };
            self.procs.push(Proc {
                index: i,
                gen: self.gen,
                cpu: if cpus.is_empty() {
                    None
                } else {
                    Some(cpus[i % cpus.len()])
                },
                slot,
                child: None,
                started: Instant::now(),
                backoff: Duration::ZERO,
                restart_at: Some(Instant::now()),
                ever_settled: false,
                retiring: false,
                last_heartbeat: 0,
                heartbeat_seen: Instant::now(),
            });
        }
        self.restart_due();
    }

    /// Starts every worker whose (re)start time has come.
    fn restart_due(&mut self) {
        if self.stop.is_some() {
            return;
        }
        let now = Instant::now();
        for k in 0..self.procs.len() {
            let p = &self.procs[k];
            if p.child.is_some() || p.retiring || !p.restart_at.is_some_and(|t| now >= t) {
                continue;
            }
            let n = self.procs.iter().filter(|q| q.gen == p.gen).count();
            let spec = WorkerSpec {
                index: p.index,
                cpu: p.cpu,
                fds: self.listeners.for_worker(p.index, n),
                board: Some((self.board.fd(), p.slot)),
            };
            let args = if self.reload.as_ref().is_some_and(|r| r.gen == p.gen) {
                self.reload
                    .as_ref()
                    .map(|r| r.next.args.clone())
                    .unwrap_or_default()
            } else {
                self.loaded.args.clone()
            };
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
                    p.backoff = next_backoff(p.backoff);
                    p.restart_at = Some(Instant::now() + p.backoff);
                }
            }
        }
        for p in self.procs.iter_mut() {
            if !p.ever_settled && p.child.is_some() && p.started.elapsed() >= SETTLE {
                p.ever_settled = true;
            }
        }
    }

    /// Collects exited workers. Returns an exit status when the master must stop.
    fn reap(&mut self) -> Option<i32> {
        let mut k = 0;
        while k < self.procs.len() {
            let status = match self.procs[k].child.as_mut().map(|c| c.try_wait()) {
                Some(Ok(Some(s))) => s,
                _ => {
                    k += 1;
                    continue;
                }
            };
            let p = &mut self.procs[k];
            let pid = p.child.take().map(|c| c.id()).unwrap_or(0);
            let (index, gen) = (p.index, p.gen);
            if p.retiring || self.stop.is_some() {
                if !status.success() && !self.stop.as_ref().is_some_and(|s| s.fast) {
                    eprintln!(
                        "ringstatic: worker {index} (pid {pid}) {}",
                        describe(status)
                    );
                }
                self.forget(k);
                continue;
            }
            if self.reload.as_ref().is_some_and(|r| r.gen == gen) {
                eprintln!(
                    "ringstatic: reload: new worker {index} (pid {pid}) {}",
                    describe(status)
                );
                self.abandon_reload("a new worker failed to start");
                // Its generation is retiring now; this one is gone already.
                self.forget(k);
                continue; // the list changed; start over at the same position
            }
            if status.code() == Some(EXIT_SETUP_FAILED) && !p.ever_settled && !self.ready_sent {
                eprintln!(
                    "ringstatic: worker {index} (pid {pid}) cannot start (see above); stopping"
                );
                self.notify("STOPPING=1\nSTATUS=a worker cannot start; see the log");
                self.signal_procs(|_| true, libc::SIGINT);
                self.reap_all(Instant::now() + Duration::from_secs(2));
                return Some(1);
            }
            eprintln!(
                "ringstatic: worker {index} (pid {pid}) {}; restarting",
                describe(status)
            );
            p.backoff = if p.started.elapsed() < SETTLE {
                next_backoff(p.backoff)
            } else {
                Duration::ZERO
            };
            p.restart_at = Some(Instant::now() + p.backoff);
            k += 1;
        }
        None
    }

    /// Drops the entry of a worker that has exited and will not be restarted.
    fn forget(&mut self, k: usize) {
        let slot = self.procs.remove(k).slot;
        self.board.reset(slot);
        self.free_slots.push(slot);
        if !self.procs.iter().any(|p| p.retiring) {
            self.retired.clear();
        }
    }

    fn signal_procs(&self, which: impl Fn(&Proc) -> bool, sig: i32) {
        for p in &self.procs {
            if let (true, Some(c)) = (which(p), &p.child) {
                // SAFETY: kill(2) on our own child's pid (not yet reaped, so not reused).
                unsafe { libc::kill(c.id() as i32, sig) };
            }
        }
    }

    fn reap_all(&mut self, deadline: Instant) {
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

    fn current(&self, p: &Proc) -> bool {
        !p.retiring && self.reload.as_ref().map_or(true, |r| r.gen != p.gen)
    }

    // ----- signals ---------------------------------------------------------------------------

    fn on_signal(&mut self, sig: i32, info: &libc::siginfo_t) {
        match sig {
            libc::SIGTERM | libc::SIGQUIT if self.stop.is_none() => self.graceful_stop(),
            libc::SIGTERM | libc::SIGINT | libc::SIGQUIT => self.fast_stop(),
            libc::SIGHUP => {
                // SAFETY: reading fields of a siginfo the kernel filled for this signal.
                let (code, pid, mark) = unsafe {
                    (
                        info.si_code,
                        info.si_pid(),
                        info.si_value().sival_ptr as usize,
                    )
                };
                let replier =
                    (code == libc::SI_QUEUE && mark == RELOAD_MARK).then_some(pid);
                self.start_reload(replier);
            }
            libc::SIGUSR1 => {
                eprintln!("ringstatic: reopening log files");
                if let Some(p) = &self.loaded.cli.error_log {
                    if let Err(e) = reopen_error_log(p) {
                        eprintln!("ringstatic: {e}");
                    }
                }
                self.signal_procs(|_| true, libc::SIGUSR1);
            }
            libc::SIGUSR2 => self.start_upgrade(),
            _ => {}
        }
    }

    fn graceful_stop(&mut self) {
        eprintln!("ringstatic: graceful stop: finishing responses in flight");
        self.notify("STOPPING=1\nSTATUS=stopping: finishing responses in flight");
        self.stop = Some(Stop {
            deadline: Instant::now() + self.loaded.cli.shutdown_timeout + Duration::from_secs(2),
            fast: false,
        });
        if let Some(r) = self.reload.take() {
            reply(&r.repliers, false);
        }
        // Refuse new connections at once: the workers close their copies as they stop accepting.
        self.listeners = Listeners::default();
        self.retired.clear();
        self.signal_procs(|_| true, libc::SIGTERM);
    }

    fn fast_stop(&mut self) {
        if self.stop.as_ref().is_some_and(|s| s.fast) {
            return;
        }
        eprintln!("ringstatic: stopping now");
        if self.stop.is_none() {
            self.notify("STOPPING=1");
        }
        self.stop = Some(Stop {
            deadline: Instant::now() + Duration::from_secs(2),
            fast: true,
        });
        self.listeners = Listeners::default();
        self.signal_procs(|_| true, libc::SIGINT);
    }

    // ----- reload ----------------------------------------------------------------------------

    fn start_reload(&mut self, replier: Option<i32>) {
        if self.stop.is_some() {
            reply(&replier.into_iter().collect::<Vec<_>>(), false);
            return;
        }
        if let Some(r) = &mut self.reload {
            r.repliers.extend(replier);
            return;
        }
        let fail = |m: &Master, why: String, replier: Option<i32>| {
            eprintln!("ringstatic: reload failed, keeping the running configuration: {why}");
            m.notify("STATUS=reload failed; serving the previous configuration");
            reply(&replier.into_iter().collect::<Vec<_>>(), false);
        };
        let next = match crate::config::load(&self.args) {
            Ok(l) => l,
            Err(e) => return fail(self, e.to_string().trim().replace('\n', " "), replier),
        };
        if let Err(e) = check_root(&next.cli.root()) {
            return fail(self, e, replier);
        }
        eprintln!("ringstatic: reloading");
        self.notify(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading",
            notify::monotonic_usec()
        ));
        let before_listen: Vec<_> = self.listeners.bound.iter().map(|b| b.configured).collect();
        let before_workers = self.procs.iter().filter(|p| self.current(p)).count();
        let n = worker_count(&next, allowed_cpus().len());
        let retired =
            match self
                .listeners
                .ensure(&next.cli.listen, n, next.cli.defer_accept, &mut Vec::new())
            {
                Ok(r) => r,
                Err(e) => {
                    self.notify("READY=1");
                    return fail(self, e, replier);
                }
            };
        self.gen += 1;
        self.reload = Some(Reload {
            gen: self.gen,
            deadline: Instant::now() + START_TIMEOUT,
            repliers: replier.into_iter().collect(),
            next,
            before_listen,
            before_workers,
            retired,
        });
        self.spawn_generation(n);
    }

    fn check_reload(&mut self) {
        let Some(r) = &self.reload else { return };
        let gen = r.gen;
        let new: Vec<&Proc> = self.procs.iter().filter(|p| p.gen == gen).collect();
        let all_accepting = !new.is_empty()
            && new.iter().all(|p| {
                p.child.is_some()
                    && self.board.slot(p.slot).state.load(Ordering::Acquire) == ACCEPTING
            });
        if all_accepting {
            let r = self.reload.take().expect("checked");
            for p in self.procs.iter_mut() {
                if p.gen != gen {
                    p.retiring = true;
                }
            }
            self.signal_procs(|p| p.retiring, libc::SIGTERM);
            self.retired.extend(r.retired);
            self.loaded = r.next;
            self.store_fds();
            eprintln!(
                "ringstatic: reload done: {} new workers accepting",
                new_count(&self.procs, gen)
            );
            self.notify("READY=1\nSTATUS=reloaded");
            reply(&r.repliers, true);
        } else if Instant::now() >= r.deadline {
            self.abandon_reload("new workers did not start accepting in time");
        }
    }

    fn abandon_reload(&mut self, why: &str) {
        let Some(r) = self.reload.take() else { return };
        eprintln!("ringstatic: reload failed, keeping the running configuration: {why}");
        for p in self.procs.iter_mut() {
            if p.gen == r.gen {
                p.retiring = true;
            }
        }
        self.signal_procs(|p| p.gen == r.gen, libc::SIGTERM);
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
        self.notify("READY=1\nSTATUS=reload failed; serving the previous configuration");
        reply(&r.repliers, false);
    }

    // ----- binary upgrade ----------------------------------------------------------------------

    fn start_upgrade(&mut self) {
        if self.upgrade.is_some() || self.stop.is_some() {
            eprintln!(
                "ringstatic: binary upgrade already in progress or stopping; SIGUSR2 ignored"
            );
            return;
        }
        let mut p = [0 as RawFd; 2];
        // SAFETY: pipe2 fills the two-element array.
        if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
            eprintln!(
                "ringstatic: binary upgrade: pipe: {}",
                io::Error::last_os_error()
            );
            return;
        }
        // SAFETY: both ends were just created and are owned here.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
        // SAFETY: making our read end non-blocking; it is polled from the loop.
        unsafe { libc::fcntl(r.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        let named = self.listeners.named();
        let list: Vec<String> = named.iter().map(|(n, fd)| format!("{n}={fd}")).collect();
        let mut pass: Vec<RawFd> = named.iter().map(|(_, fd)| *fd).collect();
        pass.push(w.as_raw_fd());
        if let Some(pf) = &mut self.pid_file {
            pf.to_oldbin();
        }
        let mut cmd = Command::new(&self.exe);
        cmd.arg0(
            std::env::args_os()
                .next()
                .unwrap_or_else(|| "ringstatic".into()),
        )
        .args(&self.args)
        .env(inherit::FDS_ENV, list.join(","))
        .env(inherit::UPGRADE_ENV, w.as_raw_fd().to_string());
        // SAFETY: the closure runs between fork and exec and calls only async-signal-safe functions.
        unsafe {
            cmd.pre_exec(move || {
                prepare_child(&pass)?;
                // Fork once more and let the middle process exit: the new master is re-parented
                // (to systemd, or init) and never becomes our child.
                match libc::fork() {
                    -1 => return Err(io::Error::last_os_error()),
                    0 => {}
                    _ => libc::_exit(0),
                }
                // Its own process group, so Ctrl-C in a terminal reaches only the old master.
                // (Not a new session: that would also put it in a new scheduler autogroup.)
                libc::setpgid(0, 0);
                Ok(())
            });
        }
        match cmd.spawn() {
            Ok(mut middle) => {
                let _ = middle.wait();
                eprintln!(
                    "ringstatic: binary upgrade: starting {}",
                    self.exe.display()
                );
                self.upgrade = Some(Upgrade {
                    ready: r,
                    said: Vec::new(),
                    pid: None,
                    deadline: Instant::now() + UPGRADE_TIMEOUT,
                });
            }
            Err(e) => {
                eprintln!(
                    "ringstatic: binary upgrade: cannot start {}: {e}",
                    self.exe.display()
                );
                if let Some(pf) = &mut self.pid_file {
                    pf.restore();
                }
            }
        }
        drop(w);
    }

    fn check_upgrade(&mut self) {
        let Some(u) = &mut self.upgrade else { return };
        let mut buf = [0u8; 64];
        // SAFETY: non-blocking read into a local buffer.
        let n = unsafe {
            libc::read(
                u.ready.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
            )
        };
        if n > 0 {
            u.said.extend_from_slice(&buf[..n as usize]);
        }
        let text = String::from_utf8_lossy(&u.said).into_owned();
        if u.pid.is_none() {
            u.pid = text
                .lines()
                .find_map(|l| l.strip_prefix('P')?.trim().parse().ok());
        }
        if let (true, Some(pid)) = (text.lines().any(|l| l == "R"), u.pid) {
            eprintln!("ringstatic: binary upgrade: new master {pid} is ready; this master retires");
            self.notify(&format!(
                "MAINPID={pid}\nSTATUS=upgraded; old master {} retiring",
                std::process::id()
            ));
            // Hand over without STOPPING=1 (the service is not stopping) and without more pings.
            self.upgrade = None;
            self.notify = None;
            self.watchdog = None;
            self.stop = Some(Stop {
                deadline: Instant::now()
                    + self.loaded.cli.shutdown_timeout
                    + Duration::from_secs(2),
                fast: false,
            });
            if let Some(pf) = self.pid_file.take() {
                pf.forget();
            }
            self.listeners = Listeners::default();
            self.signal_procs(|_| true, libc::SIGTERM);
            return;
        }
        let eof = n == 0;
        if eof || Instant::now() >= u.deadline {
            let u = self.upgrade.take().expect("checked");
            let why = if eof {
                "the new master exited before it was ready".to_string()
            } else {
                if let Some(pid) = u.pid {
                    // SAFETY: kill(2) on the pid the new master reported for itself.
                    unsafe { libc::kill(pid, libc::SIGINT) };
                }
                "the new master did not become ready in time".to_string()
            };
            eprintln!("ringstatic: binary upgrade failed ({why}); this master keeps serving");
            if let Some(pf) = &mut self.pid_file {
                pf.restore();
            }
        }
    }

    // ----- readiness, watchdog, status -------------------------------------------------------

    fn check_ready(&mut self) {
        if self.ready_sent || self.stop.is_some() {
            return;
        }
        let all = self.procs.iter().filter(|p| p.gen == 0).all(|p| {
            p.child.is_some() && self.board.slot(p.slot).state.load(Ordering::Acquire) == ACCEPTING
        });
        if !all {
            return;
        }
        self.ready_sent = true;
        let n = self.procs.len();
        self.notify(&format!(
            "READY=1\nSTATUS={n} workers accepting\nMAINPID={}",
            std::process::id()
        ));
        if let Some(fd) = self.upgrade_ready.take() {
            // SAFETY: writing two bytes to the pipe the old master is reading.
            unsafe { libc::write(fd.as_raw_fd(), b"R\n".as_ptr() as *const libc::c_void, 2) };
        }
    }

    fn check_watchdog(&mut self) {
        let Some(interval) = self.watchdog else {
            return;
        };
        // A worker whose heartbeat (one per 250 ms tick) has not moved for this long is hung.
        let hung_after = (interval * 2).max(Duration::from_secs(2));
        let now = Instant::now();
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
        if healthy && now.duration_since(self.last_ping) >= interval {
            self.last_ping = now;
            self.notify("WATCHDOG=1");
        }
    }

    fn report_status(&mut self) {
        if self.notify.is_none()
            || self.last_status.elapsed() < Duration::from_secs(2)
            || self.stop.is_some()
        {
            return;
        }
        self.last_status = Instant::now();
        let (mut conns, mut reqs, mut n) = (0u64, 0u64, 0usize);
        for p in self.procs.iter().filter(|p| p.child.is_some()) {
            let s = self.board.slot(p.slot);
            conns += s.connections.load(Ordering::Relaxed);
            reqs += s.requests.load(Ordering::Relaxed);
            n += 1;
        }
        self.notify(&format!(
            "STATUS={n} workers, {conns} connections, {reqs} requests served"
        ));
    }

    /// Gives systemd copies of our listening sockets, so `systemctl restart` keeps them (and the
    /// connections queued on them) across the restart.
    fn store_fds(&self) {
        let Some(n) = &self.notify else { return };
        for (name, fd) in self.listeners.named() {
            if name.starts_with(inherit::OWN_PREFIX) {
                if let Err(e) = n.send_with_fds(&format!("FDSTORE=1\nFDNAME={name}"), &[fd]) {
                    eprintln!("ringstatic: FDSTORE {name}: {e}");
                }
            }
        }
        for b in &self.retired {
            for j in 0..b.sockets.len() {
                n.send(&format!(
                    "FDSTOREREMOVE=1\nFDNAME={}",
                    inherit::own_name(b.configured, j)
                ));
            }
        }
    }
}

fn new_count(procs: &[Proc], gen: u64) -> usize {
    procs.iter().filter(|p| p.gen == gen).count()
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

fn spawn_worker(args: &[OsString], spec: &WorkerSpec, board_fd: RawFd) -> io::Result<Child> {
    let mut all: Vec<OsString> = args.to_vec();
    all.push("--worker-internal".into());
    all.push(spec.to_arg().into());
    let mut keep = spec.fds.clone();
    keep.push(board_fd);
    let master = std::process::id() as i32;
    let mut cmd = Command::new("/proc/self/exe");
    // ps and top show workers under the name the master was started with.
    cmd.arg0(
        std::env::args_os()
            .next()
            .unwrap_or_else(|| "ringstatic".into()),
    );
    cmd.args(all);
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe functions.
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

/// In a child between fork and exec: lets `fds` survive the exec, and unblocks the signals the
/// master blocks (the new program installs its own).
///
/// # Safety
/// Only async-signal-safe calls: fit for a pre_exec closure.
unsafe fn prepare_child(fds: &[RawFd]) -> io::Result<()> {
    for &fd in fds {
        if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let set = crate::sigset::of(&[]);
    libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    Ok(())
}

fn next_backoff(b: Duration) -> Duration {
    if b.is_zero() {
        Duration::from_millis(100)
    } else {
        (b * 2).min(MAX_BACKOFF)
    }
}

fn describe(s: std::process::ExitStatus) -> String {
    if let Some(sig) = s.signal() {
        format!(
            "was killed by signal {sig}{}",
            if s.core_dumped() {
                " (core dumped)"
            } else {
                ""
            }
        )
    } else {
        format!("exited with status {}", s.code().unwrap_or(-1))
    }
}

/// Points standard error (inherited by the workers) at the error log file.
fn reopen_error_log(path: &std::path::Path) -> Result<(), String> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open error log {}: {}", path.display(), plain(&e)))?;
    // SAFETY: dup2 onto fd 2; `f` is closed when dropped, fd 2 keeps the file open.
    if unsafe { libc::dup2(f.as_raw_fd(), 2) } < 0 {
        return Err(format!(
            "cannot use error log {}: {}",
            path.display(),
            io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the limit obtained.
fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

/// The CPUs this process may run on, in order.
fn allowed_cpus() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

struct Signals {
    set: libc::sigset_t,
}

fn block_master_signals() -> Signals {
    let set = crate::sigset::of(&[
        libc::SIGCHLD,
        libc::SIGTERM,
        libc::SIGQUIT,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ]);
    // SAFETY: blocking an initialised set for this single-threaded process.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    Signals { set }
}

/// Waits up to `timeout` for one of the master's signals.
fn wait_signal(s: &Signals, timeout: Duration) -> Option<(i32, libc::siginfo_t)> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: the set is initialised; info is a valid out-parameter.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::sigtimedwait(&s.set, &mut info, &ts) };
    if r > 0 {
        Some((r, info))
    } else {
        None
    }
}
