//! A worker's sandbox, entered once its setup is done (sockets, root, ring, logs open): the
//! code that reads clients' bytes then holds as little as the kernel lets us take away.
//!
//! Layers, in the order applied: no_new_privs (nothing the worker executes could gain rights,
//! and the two layers below need it); the switch to `--user` when started as root
//! (`privileges`); Landlock, read-only beneath the root (`landlock`); a seccomp allowlist of
//! system calls (`seccomp`). The ring's own restrictions (only the operations we submit, no
//! registration after start) are set where the ring is made (`ring::restrict_and_enable`) and
//! reported here. A layer the kernel lacks is said plainly in the start-up line and the worker
//! serves anyway, unless `--sandbox strict`, where it refuses. The worker checks its own
//! sandbox once: a directory outside the root must not open, a new socket must be refused.

pub mod landlock;
pub mod seccomp;

use std::io;
use std::path::{Path, PathBuf};

use crate::config::SandboxMode;
use crate::privileges::{self, Ids};

/// What a worker got, layer by layer: `Err` holds why a layer is missing.
#[derive(Debug)]
pub struct Report {
    mode: SandboxMode,
    /// The user the worker runs as, and whether it was switched to.
    user: (String, bool),
    landlock: Result<u32, String>,
    seccomp: Result<(), String>,
    ring: Result<(), String>,
    /// The self-check: Err names what was possible that should not have been.
    check: Result<(), String>,
}

/// What the worker needs to enter its sandbox.
pub struct Plan<'a> {
    pub mode: SandboxMode,
    /// The ids to switch to (started as root), or None.
    pub user: Option<&'a Ids>,
    pub root: &'a Path,
    /// Files a worker reopens by path on SIGUSR1 (the access and error logs).
    pub logs: Vec<PathBuf>,
    /// Whether the ring's restrictions took (set up in `ring`).
    pub ring: Result<(), String>,
    /// The worker hands TLS keys to the kernel (setsockopt after setup).
    pub ktls: bool,
}

/// Enters the sandbox. Err only when the switch of user failed: a worker that should not be
/// root never serves as root, whatever the mode.
pub fn enter(plan: Plan) -> Result<Report, String> {
    let off = plan.mode == SandboxMode::Off;
    let mut landlock = Err("off".to_string());
    let mut seccomp = Err("off".to_string());
    let mut nnp = false;
    if !off {
        // SAFETY: prctl with integer arguments only.
        nnp = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } == 0;
        if !nnp {
            let e = format!("no_new_privs refused: {}", io::Error::last_os_error());
            landlock = Err(e.clone());
            seccomp = Err(e);
        }
    }
    let user = match plan.user {
        Some(ids) => {
            privileges::drop_to(ids)
                .map_err(|e| format!("cannot switch to user {}: {e}", ids.name))?;
            (ids.name.clone(), true)
        }
        None => (current_user_name(), false),
    };
    let mut check = Ok(());
    if nnp {
        let dirs: Vec<PathBuf> = plan.logs.iter().map(|p| log_dir(p)).collect();
        let dirs: Vec<&Path> = dirs.iter().map(|d| d.as_path()).collect();
        landlock = landlock::restrict(plan.root, &dirs);
        if landlock.is_ok() {
            check = outside_is_closed(plan.root);
        }
        seccomp = seccomp::install(plan.ktls);
        if seccomp.is_ok() && check.is_ok() {
            check = new_socket_is_refused();
        }
    }
    Ok(Report {
        mode: plan.mode,
        user,
        landlock,
        seccomp,
        ring: if off { Err("off".into()) } else { plan.ring },
        check,
    })
}

impl Report {
    /// Every layer is on and the self-check passed.
    pub fn complete(&self) -> bool {
        self.landlock.is_ok() && self.seccomp.is_ok() && self.ring.is_ok() && self.check.is_ok()
    }

    /// Why `complete` is false, in a few words.
    pub fn missing(&self) -> String {
        let mut why = Vec::new();
        if let Err(e) = &self.landlock {
            why.push(format!("landlock {e}"));
        }
        if let Err(e) = &self.seccomp {
            why.push(format!("seccomp {e}"));
        }
        if let Err(e) = &self.ring {
            why.push(format!("ring restrictions {e}"));
        }
        if let Err(e) = &self.check {
            why.push(format!("self-check failed: {e}"));
        }
        why.join("; ")
    }

    /// The start-up line: `sandbox: user nobody, landlock on (ABI 7), seccomp on, ring restricted`.
    pub fn line(&self) -> String {
        let user = if self.user.1 {
            format!("user {}", self.user.0)
        } else {
            format!("user {} (not started as root, unchanged)", self.user.0)
        };
        if self.mode == SandboxMode::Off {
            return format!("sandbox: {user}, off (--sandbox off)");
        }
        let landlock = match &self.landlock {
            Ok(abi) => format!("landlock on (ABI {abi})"),
            Err(e) => format!("landlock off ({e})"),
        };
        let seccomp = match &self.seccomp {
            Ok(()) => "seccomp on".to_string(),
            Err(e) => format!("seccomp off ({e})"),
        };
        let ring = match &self.ring {
            Ok(()) => "ring restricted".to_string(),
            Err(e) => format!("ring unrestricted ({e})"),
        };
        let check = match &self.check {
            Ok(()) => String::new(),
            Err(e) => format!(", self-check FAILED: {e}"),
        };
        format!("sandbox: {user}, {landlock}, {seccomp}, {ring}{check}")
    }
}

/// The directory whose existing files a worker may open for writing to reopen `log`.
fn log_dir(log: &Path) -> PathBuf {
    match log.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn current_user_name() -> String {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    format!("uid {uid}")
}

/// Landlock's check: a directory outside the root (`/`, unless the root is `/`) must not open.
fn outside_is_closed(root: &Path) -> Result<(), String> {
    let canon = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    if canon == Path::new("/") {
        return Ok(()); // everything is beneath the root: reading anything is allowed
    }
    match std::fs::read_dir("/") {
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => Ok(()),
        Err(e) => Err(format!("opening / failed with {e}, not permission denied")),
        Ok(_) => Err("/ (outside the root) could be listed".into()),
    }
}

/// Seccomp's check: creating a socket (never needed after setup) must fail with EPERM.
fn new_socket_is_refused() -> Result<(), String> {
    // SAFETY: socket(2) with constant arguments; a returned fd is closed at once.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd >= 0 {
        // SAFETY: fd was just created by us.
        unsafe { libc::close(fd) };
        return Err("a new socket could be created".into());
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EPERM) => Ok(()),
        e => Err(format!("socket(2) failed with errno {e:?}, not EPERM")),
    }
}
