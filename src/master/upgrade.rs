//! Binary upgrade (SIGUSR2), both sides: the old master starting the new binary and waiting for
//! it, and the new master telling the old one how it is doing.
//!
//! The new master is started through an intermediate process that exits at once, so it is never
//! our child: under systemd it is re-parented to the service manager before it reports, and the
//! MAINPID= handover then names a process systemd can wait for. It inherits every listening
//! socket, and talks back through a pipe: `P<pid>` as soon as it runs, `R` once every one of its
//! workers accepts; the pipe closing first means it died. The steps: `start` (pid file to
//! .oldbin, new master started), then `Ready` (the old master hands over and retires) or
//! `Failed` (it died, or was not ready within UPGRADE_TIMEOUT: the old master keeps serving and
//! restores its pid file).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use super::setup::prepare_child;
use super::supervise::Which;
use super::{Master, Stop};
use crate::inherit::{self, Listeners};

/// How long a binary upgrade's new master gets to report ready.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(30);

/// The old master's side: a new master started, not yet ready.
pub struct Upgrade {
    ready: OwnedFd,
    said: Vec<u8>,
    pid: Option<i32>,
    deadline: Instant,
}

/// Where an upgrade stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Waiting,
    /// The new master (this pid) is ready: hand over and retire.
    Ready(i32),
    /// It closed the pipe before it was ready: it died.
    Exited,
    /// It was not ready in time; its pid, if it said it.
    TimedOut(Option<i32>),
}

/// What the new master has said so far: its pid, and whether it is ready.
fn parse(said: &[u8]) -> (Option<i32>, bool) {
    let text = String::from_utf8_lossy(said);
    let pid = text
        .lines()
        .find_map(|l| l.strip_prefix('P')?.trim().parse().ok());
    (pid, text.lines().any(|l| l == "R"))
}

impl Upgrade {
    /// Starts `exe` as a new master with `args` and our listening sockets. The pid file moves to
    /// .oldbin first, so the new master can write its own, and moves back if the start fails.
    fn start(
        exe: &std::path::Path,
        args: &[std::ffi::OsString],
        listeners: &Listeners,
        pid_file: Option<&mut crate::pidfile::PidFile>,
    ) -> Option<Upgrade> {
        let mut p = [0 as RawFd; 2];
        // SAFETY: pipe2 fills the two-element array.
        if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
            eprintln!(
                "ringstatic: binary upgrade: pipe: {}",
                io::Error::last_os_error()
            );
            return None;
        }
        // SAFETY: both ends were just created and are owned here.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
        // SAFETY: making our read end non-blocking; the loop reads it whenever it wakes.
        unsafe { libc::fcntl(r.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        let named = listeners.named();
        let list: Vec<String> = named.iter().map(|(n, fd)| format!("{n}={fd}")).collect();
        let mut pass: Vec<RawFd> = named.iter().map(|(_, fd)| *fd).collect();
        pass.push(w.as_raw_fd());
        let mut pid_file = pid_file;
        if let Some(pf) = &mut pid_file {
            pf.to_oldbin();
        }
        let mut cmd = Command::new(exe);
        cmd.arg0(
            std::env::args_os()
                .next()
                .unwrap_or_else(|| "ringstatic".into()),
        )
        .args(args)
        .env(inherit::FDS_ENV, list.join(","))
        .env(inherit::UPGRADE_ENV, w.as_raw_fd().to_string());
        // SAFETY: the closure runs between fork and exec, calling only async-signal-safe functions.
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
        let started = match cmd.spawn() {
            Ok(mut middle) => {
                let _ = middle.wait();
                eprintln!("ringstatic: binary upgrade: starting {}", exe.display());
                Some(Upgrade {
                    ready: r,
                    said: Vec::new(),
                    pid: None,
                    deadline: Instant::now() + UPGRADE_TIMEOUT,
                })
            }
            Err(e) => {
                eprintln!(
                    "ringstatic: binary upgrade: cannot start {}: {e}",
                    exe.display()
                );
                if let Some(pf) = pid_file {
                    pf.restore();
                }
                None
            }
        };
        drop(w);
        started
    }

    /// The pipe the new master talks through: the loop wakes when it is readable (or closed).
    pub fn fd(&self) -> RawFd {
        self.ready.as_raw_fd()
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Reads what the new master said since the last call (the pipe is non-blocking).
    fn step(&mut self, now: Instant) -> Step {
        let mut buf = [0u8; 64];
        // SAFETY: non-blocking read into a local buffer of the given size.
        let n = unsafe {
            libc::read(
                self.ready.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
            )
        };
        if n > 0 {
            self.said.extend_from_slice(&buf[..n as usize]);
        }
        let (pid, ready) = parse(&self.said);
        self.pid = self.pid.or(pid);
        match (ready, self.pid) {
            (true, Some(pid)) => Step::Ready(pid),
            _ if n == 0 => Step::Exited,
            _ if now >= self.deadline => Step::TimedOut(self.pid),
            _ => Step::Waiting,
        }
    }
}

/// The new master's side: the pipe to the old master, when this master was started by an
/// upgrade.
pub struct Handover(OwnedFd);

impl Handover {
    /// Takes the pipe named in the environment, if any, and tells the old master our pid.
    pub fn from_env() -> Option<Handover> {
        let fd = std::env::var(inherit::UPGRADE_ENV)
            .ok()
            .and_then(|v| v.parse::<RawFd>().ok())
            // SAFETY: the old master passed this pipe's write end to us alone.
            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })?;
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
        Some(Handover(fd))
    }

    /// Every worker accepts: the old master may retire.
    pub fn ready(self) {
        // SAFETY: writing two bytes to the pipe the old master is reading.
        unsafe {
            libc::write(
                self.0.as_raw_fd(),
                b"R\n".as_ptr() as *const libc::c_void,
                2,
            )
        };
    }
}

impl Master {
    /// SIGUSR2: starts a new master from the binary now installed at our path.
    pub(super) fn start_upgrade(&mut self) {
        if self.upgrade.is_some() || self.stop.is_some() {
            eprintln!(
                "ringstatic: binary upgrade already in progress or stopping; SIGUSR2 ignored"
            );
            return;
        }
        self.upgrade = Upgrade::start(
            &self.exe,
            &self.args,
            &self.listeners,
            self.pid_file.as_mut(),
        );
    }

    /// Acts on what the new master said: retire, or give up the upgrade.
    pub(super) fn check_upgrade(&mut self) {
        let Some(u) = &mut self.upgrade else { return };
        let why = match u.step(Instant::now()) {
            Step::Waiting => return,
            Step::Ready(pid) => {
                self.upgrade = None;
                return self.retire_for(pid);
            }
            Step::Exited => "the new master exited before it was ready",
            Step::TimedOut(pid) => {
                if let Some(pid) = pid {
                    // SAFETY: kill(2) on the pid the new master reported for itself.
                    unsafe { libc::kill(pid, libc::SIGINT) };
                }
                "the new master did not become ready in time"
            }
        };
        self.upgrade = None;
        eprintln!("ringstatic: binary upgrade failed ({why}); this master keeps serving");
        if let Some(pf) = &mut self.pid_file {
            pf.restore();
        }
    }

    /// The new master `pid` serves now: this one hands the service over, and stops gracefully.
    fn retire_for(&mut self, pid: i32) {
        eprintln!("ringstatic: binary upgrade: new master {pid} is ready; this master retires");
        self.systemd.hand_over(pid);
        self.stop = Some(Stop {
            deadline: Instant::now() + self.loaded.cli.shutdown_timeout + Duration::from_secs(2),
            fast: false,
        });
        if let Some(pf) = self.pid_file.take() {
            pf.forget();
        }
        // The new master binds the status address as soon as this one lets it go.
        if let Some(s) = self.status.take() {
            s.close();
        }
        self.listeners = Listeners::default();
        self.sup.signal(Which::All, libc::SIGTERM);
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn what_the_new_master_said() {
        assert_eq!(parse(b""), (None, false));
        assert_eq!(parse(b"P12"), (Some(12), false));
        assert_eq!(parse(b"P123\n"), (Some(123), false));
        assert_eq!(parse(b"P123\nR\n"), (Some(123), true));
        assert_eq!(
            parse(b"R\n"),
            (None, true),
            "ready without a pid: not yet usable"
        );
        assert_eq!(parse(b"Pxyz\nR"), (None, true));
    }
}
