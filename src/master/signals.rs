//! The master's signals are blocked and taken synchronously, one at a time, from its loop (nginx's
//! handlers only set flags for the same reason): no handler ever runs in the middle of the
//! master's work, and a signal is just one more event the loop turns into an action.

use std::time::Duration;

use crate::sigset::RELOAD_MARK;

pub struct Signals {
    set: libc::sigset_t,
}

/// A signal taken, with what the master needs of its siginfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sig {
    pub signo: i32,
    /// si_code: SI_QUEUE for sigqueue(3), SI_USER for kill(2)...
    pub code: i32,
    /// The sender's pid.
    pub pid: i32,
    /// The sigqueue value.
    pub value: usize,
}

impl Sig {
    /// For a SIGHUP from `ringstatic -s reload`: the pid waiting for the reload's outcome.
    pub fn reload_replier(&self) -> Option<i32> {
        (self.code == libc::SI_QUEUE && self.value == RELOAD_MARK).then_some(self.pid)
    }
}

impl Signals {
    /// Blocks the signals the master acts on, for the whole process (it is single-threaded).
    pub fn block() -> Signals {
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
    pub fn wait(&self, timeout: Duration) -> Option<Sig> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: all-zero is a valid siginfo_t, and it is only an out-parameter here.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: the set is initialised; info and ts are valid for the call.
        let r = unsafe { libc::sigtimedwait(&self.set, &mut info, &ts) };
        if r <= 0 {
            return None;
        }
        // SAFETY: the siginfo is initialised (zeroed, then filled by the kernel); these union
        // fields are plain integers, meaningful for the codes that set them (kill, sigqueue).
        let (pid, value) = unsafe { (info.si_pid(), info.si_value().sival_ptr as usize) };
        Some(Sig {
            signo: r,
            code: info.si_code,
            pid,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_queued_marked_hup_expects_an_answer() {
        let sig = |code, value| Sig {
            signo: libc::SIGHUP,
            code,
            pid: 42,
            value,
        };
        assert_eq!(sig(libc::SI_QUEUE, RELOAD_MARK).reload_replier(), Some(42));
        assert_eq!(sig(libc::SI_USER, RELOAD_MARK).reload_replier(), None);
        assert_eq!(sig(libc::SI_QUEUE, 7).reload_replier(), None);
    }
}
