//! Signal sets: the master, the workers, a child before exec and `-s` each block or wait for a
//! few signals, and all build their set here.

/// Marks a SIGHUP (sigqueue's value) as coming from `ringstatic -s reload`, which then waits for
/// the master's answer. It lives here, beside the sets, because both sides of that exchange (the
/// master and `-s`) need it and neither should depend on the other.
pub const RELOAD_MARK: usize = 0x5253_484c;

/// A `sigset_t` holding exactly `signals` (none: the empty set).
pub fn of(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: a zeroed sigset_t is then initialised by sigemptyset; both calls write only into
    // this local set. No allocation, so it may run between fork and exec.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Blocks `signals` for the calling thread (the master and each worker have only one) and opens
/// a non-blocking signalfd that reports them: signals become events of the loop, never handlers.
pub fn block_into_signalfd(signals: &[libc::c_int]) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let set = of(signals);
    // SAFETY: masks an initialised set for the calling thread only.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if r != 0 {
        // pthread_sigmask returns the error number instead of setting errno.
        return Err(std::io::Error::from_raw_os_error(r));
    }
    // SAFETY: a signalfd for an initialised set; the result is checked before it is owned.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    #[test]
    fn holds_exactly_the_given_signals() {
        let set = super::of(&[libc::SIGTERM, libc::SIGHUP]);
        // SAFETY: sigismember reads an initialised set.
        let has = |s| unsafe { libc::sigismember(&set, s) } == 1;
        assert!(has(libc::SIGTERM) && has(libc::SIGHUP));
        assert!(!has(libc::SIGINT));
        let empty = super::of(&[]);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::sigismember(&empty, libc::SIGTERM) }, 0);
    }
}
