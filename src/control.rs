//! The control commands: `-t` checks the configuration, `-s SIGNAL` talks to the running master.
//!
//! `-s reload` is synchronous: the HUP carries a marker (sigqueue), and the master answers the
//! sender with SIGUSR1 (done) or SIGUSR2 (failed) once the new workers accept or the reload is
//! abandoned. That makes `ExecReload=ringstatic -s reload` exact on systemd 252, which has no
//! Type=notify-reload.

use std::time::Duration;

use crate::config::{check_root, ControlSignal, Loaded};
use crate::sigset::RELOAD_MARK;

const RELOAD_WAIT: Duration = Duration::from_secs(90);

/// `ringstatic -t`: exit status 0 when the configuration would start.
pub fn test_config(l: &Loaded) -> i32 {
    let root = l.cli.root();
    if let Err(e) = check_root(&root) {
        eprintln!("ringstatic: configuration invalid: {e}");
        return 1;
    }
    if let Err(e) = crate::privileges::check_workers_can_read(&l.cli) {
        eprintln!("ringstatic: configuration invalid: {e}");
        return 1;
    }
    if let Some(p) = l.cli.access_log_path() {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                eprintln!(
                    "ringstatic: configuration invalid: access log directory {} does not exist",
                    dir.display()
                );
                return 1;
            }
        }
    }
    let listen: Vec<String> = l.cli.listen.iter().map(|a| a.to_string()).collect();
    println!(
        "ringstatic: configuration ok: root {}, listen {}{}",
        root.display(),
        listen.join(", "),
        l.cli
            .config
            .as_ref()
            .map(|c| format!(", from {}", c.display()))
            .unwrap_or_default()
    );
    0
}

/// `ringstatic -s SIGNAL`.
pub fn send(l: &Loaded, what: ControlSignal) -> i32 {
    let Some(path) = &l.cli.pid_file else {
        eprintln!(
            "ringstatic: -s needs --pid-file (or `pid-file` in the config file) to find the master"
        );
        return 1;
    };
    let pid = match crate::pidfile::read(path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ringstatic: {e}; is ringstatic running?");
            return 1;
        }
    };
    let sig = match what {
        ControlSignal::Reload => libc::SIGHUP,
        ControlSignal::Reopen => libc::SIGUSR1,
        ControlSignal::Quit => libc::SIGQUIT,
        ControlSignal::Stop => libc::SIGTERM,
    };
    if what != ControlSignal::Reload {
        // SAFETY: kill(2) with a pid read from the pid file.
        if unsafe { libc::kill(pid, sig) } < 0 {
            eprintln!(
                "ringstatic: cannot signal master {pid}: {}",
                std::io::Error::last_os_error()
            );
            return 1;
        }
        return 0;
    }
    // SAFETY: blocking the two answer signals in this single-threaded process, then sigqueue and
    // sigtimedwait with valid, initialised arguments.
    unsafe {
        let set = crate::sigset::of(&[libc::SIGUSR1, libc::SIGUSR2]);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let val = libc::sigval {
            sival_ptr: RELOAD_MARK as *mut libc::c_void,
        };
        if libc::sigqueue(pid, libc::SIGHUP, val) < 0 {
            eprintln!(
                "ringstatic: cannot signal master {pid}: {}",
                std::io::Error::last_os_error()
            );
            return 1;
        }
        let deadline = std::time::Instant::now() + RELOAD_WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                eprintln!(
                    "ringstatic: master {pid} did not finish the reload within {}s",
                    RELOAD_WAIT.as_secs()
                );
                return 1;
            }
            let ts = libc::timespec {
                tv_sec: left.as_secs().min(1) as libc::time_t,
                tv_nsec: 0,
            };
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let s = libc::sigtimedwait(&set, &mut info, &ts);
            if s < 0 {
                // Timed out this second: give up early if the master is gone.
                if libc::kill(pid, 0) < 0 {
                    eprintln!("ringstatic: master {pid} exited during the reload");
                    return 1;
                }
                continue;
            }
            if info.si_pid() != pid {
                continue;
            }
            return if s == libc::SIGUSR1 {
                0
            } else {
                eprintln!("ringstatic: reload failed; the master keeps the old configuration (see its error log)");
                1
            };
        }
    }
}
