//! Process plumbing the master does to itself (file limit, error log, which CPUs) and to a child
//! between fork and exec. None of it is supervision policy; it is gathered here so that the
//! files that make decisions do not also carry raw system calls.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use crate::config::{plain, Loaded, Workers};

/// How many workers a configuration asks for, given the CPUs this process may use.
pub fn worker_count(l: &Loaded, cpus: usize) -> usize {
    match l.cli.workers {
        Workers::Auto => cpus.max(1),
        Workers::Count(n) => n,
    }
}

/// The CPUs this process may run on, in order.
pub fn allowed_cpus() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

/// Points standard error (inherited by the workers) at the error log file.
pub fn reopen_error_log(path: &Path) -> Result<(), String> {
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
pub fn raise_nofile_limit() -> u64 {
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

/// In a child between fork and exec: lets `fds` survive the exec, and unblocks the signals the
/// master blocks (the new program installs its own).
///
/// # Safety
/// Only async-signal-safe calls: fit for a pre_exec closure.
pub unsafe fn prepare_child(fds: &[RawFd]) -> io::Result<()> {
    for &fd in fds {
        if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let set = crate::sigset::of(&[]);
    libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    Ok(())
}
