//! The master: checks the setup, owns the listening sockets, starts one worker process per CPU,
//! restarts a worker that dies, and turns signals into actions. It does no request work.
//!
//! Workers are this same binary re-executed through /proc/self/exe with a hidden flag naming
//! their index, CPU and inherited sockets. The master keeps every listening socket open, so a
//! worker's death loses no connection waiting in its accept queue: the restarted worker picks
//! them up. Signals are blocked and taken synchronously with sigtimedwait, so no handler ever runs
//! in the middle of the master's work.

use std::ffi::OsString;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::config::{Cli, WorkerSpec, Workers};
use crate::worker::EXIT_SETUP_FAILED;

struct WorkerSlot {
    index: usize,
    cpu: Option<usize>,
    fds: Vec<RawFd>,
    child: Option<Child>,
    started: Instant,
    /// Delay before the next restart; grows while the worker keeps dying young.
    backoff: Duration,
    restart_at: Option<Instant>,
    /// It served long enough once to count as a working setup.
    ever_settled: bool,
}

/// A worker that lives this long counts as healthy; dying sooner doubles the restart delay.
const SETTLE: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub fn run(cli: Cli) -> i32 {
    match start(&cli) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("ringstatic: {msg}");
            1
        }
    }
}

fn start(cli: &Cli) -> Result<i32, String> {
    let root = cli.root();
    check_root(&root)?;
    raise_nofile_limit();
    crate::ring::check_available()?;

    let cpus = allowed_cpus();
    let count = match cli.workers {
        Workers::Auto => cpus.len().max(1),
        Workers::Count(n) => n,
    };
    // sockets[w][a]: worker w's socket for listen address a.
    let mut sockets: Vec<Vec<OwnedFd>> = (0..count).map(|_| Vec::new()).collect();
    let mut bound = Vec::new();
    for addr in &cli.listen {
        let mut actual = *addr;
        for per_worker in sockets.iter_mut() {
            let fd = listen_socket(actual).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            if actual.port() == 0 {
                actual = local_addr(fd.as_raw_fd()).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            }
            per_worker.push(fd);
        }
        bound.push(actual);
    }
    {
        let mut out = io::stdout().lock();
        for a in &bound {
            let _ = writeln!(out, "listening on http://{a}");
        }
        let _ = out.flush();
    }

    let signals = block_master_signals();
    let mut workers: Vec<WorkerSlot> = (0..count)
        .map(|i| WorkerSlot {
            index: i,
            cpu: if cpus.is_empty() { None } else { Some(cpus[i % cpus.len()]) },
            fds: sockets[i].iter().map(|f| f.as_raw_fd()).collect(),
            child: None,
            started: Instant::now(),
            backoff: Duration::ZERO,
            restart_at: Some(Instant::now()),
            ever_settled: false,
        })
        .collect();
    eprintln!(
        "ringstatic: serving {} with {count} worker{} (pid {})",
        root.display(),
        if count == 1 { "" } else { "s" },
        std::process::id()
    );

    let mut stopping: Option<Instant> = None;
    let mut fast = false;
    loop {
        // Start or restart workers that are due.
        if stopping.is_none() {
            for w in workers.iter_mut() {
                if w.child.is_none() && w.restart_at.is_some_and(|t| Instant::now() >= t) {
                    w.restart_at = None;
                    match spawn_worker(cli, w) {
                        Ok(c) => {
                            w.child = Some(c);
                            w.started = Instant::now();
                        }
                        Err(e) => {
                            eprintln!("ringstatic: cannot start worker {}: {e}", w.index);
                            w.backoff = next_backoff(w.backoff);
                            w.restart_at = Some(Instant::now() + w.backoff);
                        }
                    }
                }
            }
        }
        for w in workers.iter_mut() {
            if !w.ever_settled && w.child.is_some() && w.started.elapsed() >= SETTLE {
                w.ever_settled = true;
            }
        }

        let sig = wait_signal(&signals, Duration::from_millis(200));
        match sig {
            Some(libc::SIGTERM) | Some(libc::SIGQUIT) if stopping.is_none() => {
                eprintln!("ringstatic: graceful stop: finishing responses in flight");
                stopping = Some(Instant::now() + cli.shutdown_timeout + Duration::from_secs(2));
                drop(std::mem::take(&mut sockets)); // refuse new connections at once
                signal_all(&workers, libc::SIGTERM);
            }
            Some(libc::SIGTERM) | Some(libc::SIGINT) | Some(libc::SIGQUIT) if stopping.is_some() => {
                if !fast {
                    eprintln!("ringstatic: stopping now");
                    fast = true;
                    stopping = Some(Instant::now() + Duration::from_secs(1));
                    signal_all(&workers, libc::SIGINT);
                }
            }
            Some(libc::SIGINT) => {
                eprintln!("ringstatic: stopping now");
                fast = true;
                stopping = Some(Instant::now() + Duration::from_secs(1));
                drop(std::mem::take(&mut sockets));
                signal_all(&workers, libc::SIGINT);
            }
            Some(s @ (libc::SIGHUP | libc::SIGUSR1 | libc::SIGUSR2)) => {
                eprintln!("ringstatic: signal {s} (reload, log reopen, upgrade) is not supported by this version; ignored");
            }
            _ => {}
        }

        // Reap.
        for w in workers.iter_mut() {
            let Some(child) = w.child.as_mut() else { continue };
            let status = match child.try_wait() {
                Ok(Some(s)) => s,
                _ => continue,
            };
            let pid = child.id();
            w.child = None;
            if stopping.is_some() {
                if !status.success() && !fast {
                    eprintln!("ringstatic: worker {} (pid {pid}) {}", w.index, describe(status));
                }
                continue;
            }
            eprintln!("ringstatic: worker {} (pid {pid}) {}; restarting", w.index, describe(status));
            if status.code() == Some(EXIT_SETUP_FAILED) && !w.ever_settled {
                eprintln!("ringstatic: worker {} cannot start (see above); stopping", w.index);
                signal_all(&workers, libc::SIGINT);
                reap_all(&mut workers, Instant::now() + Duration::from_secs(2));
                return Ok(1);
            }
            w.backoff = if w.started.elapsed() < SETTLE { next_backoff(w.backoff) } else { Duration::ZERO };
            w.restart_at = Some(Instant::now() + w.backoff);
        }

        if let Some(deadline) = stopping {
            if workers.iter().all(|w| w.child.is_none()) {
                eprintln!("ringstatic: stopped");
                return Ok(0);
            }
            if Instant::now() >= deadline {
                eprintln!("ringstatic: workers did not stop in time; killing them");
                signal_all(&workers, libc::SIGKILL);
                reap_all(&mut workers, Instant::now() + Duration::from_secs(5));
                return Ok(0);
            }
        }
    }
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
        format!("was killed by signal {sig}{}", if s.core_dumped() { " (core dumped)" } else { "" })
    } else {
        format!("exited with status {}", s.code().unwrap_or(-1))
    }
}

fn signal_all(workers: &[WorkerSlot], sig: i32) {
    for w in workers {
        if let Some(c) = &w.child {
            // SAFETY: kill(2) on our own child's pid (not yet reaped, so not reused).
            unsafe { libc::kill(c.id() as i32, sig) };
        }
    }
}

fn reap_all(workers: &mut [WorkerSlot], deadline: Instant) {
    for w in workers.iter_mut() {
        if let Some(mut c) = w.child.take() {
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

fn spawn_worker(cli: &Cli, w: &WorkerSlot) -> io::Result<Child> {
    let spec = WorkerSpec { index: w.index, cpu: w.cpu, fds: w.fds.clone() };
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    args.push("--worker-internal".into());
    args.push(spec.to_arg().into());
    let fds = w.fds.clone();
    let master = std::process::id() as i32;
    let _ = cli;
    let mut cmd = Command::new("/proc/self/exe");
    cmd.args(args);
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe functions.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &fds {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            // A worker must not outlive its master (a master killed with SIGKILL included).
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != master {
                return Err(io::Error::other("master exited"));
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    cmd.spawn()
}

fn check_root(root: &std::path::Path) -> Result<(), String> {
    let meta = std::fs::metadata(root).map_err(|e| format!("cannot serve root {}: {}", root.display(), plain(&e)))?;
    if !meta.is_dir() {
        return Err(format!("cannot serve root {}: not a directory", root.display()));
    }
    std::fs::read_dir(root).map_err(|e| format!("cannot serve root {}: {}", root.display(), plain(&e)))?;
    Ok(())
}

/// An io::Error's message without Rust's " (os error N)" suffix.
fn plain(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn raise_nofile_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    eprintln!("ringstatic: open file limit {}", lim.rlim_cur);
}

/// The CPUs this process may run on, in order.
fn allowed_cpus() -> Vec<usize> {
    core_affinity::get_core_ids().unwrap_or_default().into_iter().map(|c| c.id).collect()
}

fn listen_socket(addr: SocketAddr) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain socket creation; the fd is wrapped in OwnedFd immediately.
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    let setopt = |level, name| {
        // SAFETY: valid socket and a c_int option value.
        let r = unsafe {
            libc::setsockopt(fd, level, name, &one as *const _ as *const libc::c_void, std::mem::size_of::<libc::c_int>() as u32)
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    setopt(libc::SOL_SOCKET, libc::SO_REUSEADDR)?;
    setopt(libc::SOL_SOCKET, libc::SO_REUSEPORT)?;
    if addr.is_ipv6() {
        setopt(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY)?;
    }
    let (sa, len) = sockaddr(addr);
    // SAFETY: `sa` is a properly initialised sockaddr of `len` bytes.
    if unsafe { libc::bind(fd, &sa as *const _ as *const libc::sockaddr, len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: listen on our bound socket; the kernel caps the backlog at net.core.somaxconn.
    if unsafe { libc::listen(fd, 65535) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(owned)
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in, sin) };
            (ss, std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in6 and suitably aligned.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in6, sin6) };
            (ss, std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    // SAFETY: all-zero is a valid sockaddr_storage; getsockname fills at most `len` bytes.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    if unsafe { libc::getsockname(fd, &mut ss as *mut _ as *mut libc::sockaddr, &mut len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    match ss.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for an AF_INET socket.
            let sin = unsafe { *(&ss as *const _ as *const libc::sockaddr_in) };
            let ip = std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Ok(SocketAddr::from((ip, u16::from_be(sin.sin_port))))
        }
        _ => {
            // SAFETY: the kernel wrote a sockaddr_in6 for an AF_INET6 socket.
            let sin6 = unsafe { *(&ss as *const _ as *const libc::sockaddr_in6) };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Ok(SocketAddr::V6(std::net::SocketAddrV6::new(ip, u16::from_be(sin6.sin6_port), 0, sin6.sin6_scope_id)))
        }
    }
}

struct Signals {
    set: libc::sigset_t,
}

fn block_master_signals() -> Signals {
    // SAFETY: local sigset manipulation, then blocking them for this single-threaded process.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGCHLD, libc::SIGTERM, libc::SIGQUIT, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1, libc::SIGUSR2] {
            libc::sigaddset(&mut set, s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        Signals { set }
    }
}

/// Waits up to `timeout` for one of the master's signals.
fn wait_signal(s: &Signals, timeout: Duration) -> Option<i32> {
    let ts = libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos() as libc::c_long };
    // SAFETY: the set is initialised; info is a valid out-parameter.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::sigtimedwait(&s.set, &mut info, &ts) };
    if r > 0 {
        Some(r)
    } else {
        None
    }
}
