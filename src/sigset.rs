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
