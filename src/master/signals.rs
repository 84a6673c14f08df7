//! How the master sleeps: its signals are blocked and read from a signalfd, one per turn of its
//! loop (nginx's handlers only set flags for the same reason), so no handler ever runs in the
//! middle of the master's work and a signal is just one more event the loop turns into an action.
//! A signalfd rather than sigtimedwait because the loop must also wake for a pipe (a binary
//! upgrade's new master talking) and sleep until its next due time, all in one ppoll.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Instant;

use crate::sigset::RELOAD_MARK;

pub struct Signals {
    /// Non-blocking, close-on-exec: no child inherits it.
    fd: OwnedFd,
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
    /// Blocks the signals the master acts on, for the whole process (it is single-threaded), and
    /// opens the signalfd that reads them.
    pub fn block() -> Result<Signals, String> {
        let fd = crate::sigset::block_into_signalfd(&[
            libc::SIGCHLD,
            libc::SIGTERM,
            libc::SIGQUIT,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGUSR2,
        ])
        .map_err(|e| format!("cannot read signals (signalfd): {e}"))?;
        Ok(Signals { fd })
    }

    /// Sleeps until one of the master's signals arrives (and returns it), `also` becomes
    /// readable, or `until` passes; None for `until` sleeps until one of the other two.
    pub fn wait(&self, until: Option<Instant>, also: Option<RawFd>) -> Option<Sig> {
        let mut fds = [
            libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: also.unwrap_or(-1), // poll skips a negative fd
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let ts = until.map(|t| {
            let d = t.saturating_duration_since(Instant::now());
            libc::timespec {
                tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            }
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: fds and ts outlive the call; a null timeout waits without limit, a null mask
        // leaves the signal mask alone. Errors (EINTR) just end the wait early.
        unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                ts_ptr,
                std::ptr::null(),
            )
        };
        self.take()
    }

    /// One pending signal, if any.
    fn take(&self) -> Option<Sig> {
        // SAFETY: signalfd_siginfo is plain data, for which all-zero is a valid value.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reading at most its size into `info` from our non-blocking signalfd.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                &mut info as *mut _ as *mut libc::c_void,
                size,
            )
        };
        (n == size as isize).then_some(Sig {
            signo: info.ssi_signo as i32,
            code: info.ssi_code,
            pid: info.ssi_pid as i32,
            value: info.ssi_ptr as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;
    use std::time::Duration;

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

    // These block the master's signals in the test's own thread only (sigprocmask is per thread
    // in a threaded process), and send signals to that thread alone.
    #[test]
    fn wakes_for_the_time_the_fd_or_a_signal() {
        let s = Signals::block().unwrap();
        let t0 = Instant::now();
        assert_eq!(s.wait(Some(t0 + Duration::from_millis(30)), None), None);
        assert!(t0.elapsed() >= Duration::from_millis(30));

        let mut p = [0 as RawFd; 2];
        // SAFETY: pipe2 fills the two-element array; both ends are owned at once.
        let (r, w) = unsafe {
            assert_eq!(libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC), 0);
            (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1]))
        };
        // SAFETY: writing one byte from a local buffer to our own pipe.
        assert_eq!(
            unsafe { libc::write(w.as_raw_fd(), b"x".as_ptr().cast(), 1) },
            1
        );
        let t0 = Instant::now();
        assert_eq!(
            s.wait(Some(t0 + Duration::from_secs(10)), Some(r.as_raw_fd())),
            None
        );
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the readable fd did not wake it"
        );

        // SAFETY: tgkill to this very thread, which blocks SIGUSR1: it stays pending for us.
        unsafe {
            libc::syscall(
                libc::SYS_tgkill,
                libc::getpid(),
                libc::gettid(),
                libc::SIGUSR1,
            )
        };
        let sig = s.wait(None, None).expect("a pending signal");
        assert_eq!(sig.signo, libc::SIGUSR1);
        assert_eq!(sig.pid, std::process::id() as i32);
        assert_eq!(sig.reload_replier(), None);
    }
}
