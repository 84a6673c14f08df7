//! Who a worker runs as. A worker started by root switches to `--user` (nginx's `user`, default
//! `nobody`) once everything it needs is open (listening sockets, the root's fd, the ring, the
//! logs), so the code that parses clients' bytes holds an unprivileged user's rights, not root's.
//! The master stays as it was started: on reload it binds new listeners and reads the config
//! file, on a binary upgrade it executes the new binary, on SIGUSR1 it reopens the logs; it does
//! no request work. Started as any other user, nothing changes.
//!
//! `-t` asks the kernel itself whether that user can read the root and its index file: a thread
//! takes the user's credentials (raw system calls change only the calling thread's) and opens
//! them exactly as a worker would, so modes, ACLs and every other rule count.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// The user and group a worker switches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// `--user USER[:GROUP]`: the form only; whether they exist is asked by `resolve`.
pub fn parse_spec(s: &str) -> Result<String, String> {
    let ok = |p: &str| !p.is_empty() && !p.contains(|c: char| c.is_whitespace() || c == ':');
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    if !ok(u) || g.is_some_and(|g| !ok(g)) {
        return Err(format!(
            "`{s}` is not USER or USER:GROUP (examples: nobody, www-data:www-data)"
        ));
    }
    Ok(s.to_string())
}

/// Whether this process runs as root, the case where workers switch users.
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The ids workers switch to, or None when this process is not root (nothing changes then).
pub fn target(spec: &str) -> Result<Option<Ids>, String> {
    if !is_root() {
        return Ok(None);
    }
    resolve(spec).map(Some)
}

/// Looks `USER[:GROUP]` up (names or numbers); the group defaults to the user's own.
pub fn resolve(spec: &str) -> Result<Ids, String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, own_gid) = lookup_user(user)
        .ok_or_else(|| format!("--user {spec}: no user `{user}` on this system"))?;
    let gid = match group {
        Some(g) => lookup_group(g)
            .ok_or_else(|| format!("--user {spec}: no group `{g}` on this system"))?,
        None => own_gid,
    };
    Ok(Ids {
        name: user.to_string(),
        uid,
        gid,
    })
}

fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16384];
    // SAFETY: passwd is plain data for which all-zero is valid.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the sizes given; `out` is set to &pw or null.
    let r = unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    if r == 0 && !out.is_null() {
        return Some((pw.pw_uid, pw.pw_gid));
    }
    let uid: u32 = name.parse().ok()?;
    Some((uid, uid))
}

fn lookup_group(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16384];
    // SAFETY: group is plain data for which all-zero is valid.
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the sizes given; `out` is set to &gr or null.
    let r = unsafe { libc::getgrnam_r(c.as_ptr(), &mut gr, buf.as_mut_ptr(), buf.len(), &mut out) };
    if r == 0 && !out.is_null() {
        return Some(gr.gr_gid);
    }
    name.parse().ok()
}

/// Switches this (single-threaded) process to `ids` for good: supplementary groups cleared,
/// real, effective and saved ids all changed, then checked.
pub fn drop_to(ids: &Ids) -> io::Result<()> {
    // SAFETY: plain system calls on this process's credentials; a null list with length 0 is
    // setgroups' documented way to clear the supplementary groups.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setresgid(ids.gid, ids.gid, ids.gid) != 0
            || libc::setresuid(ids.uid, ids.uid, ids.uid) != 0
        {
            return Err(io::Error::last_os_error());
        }
        if ids.uid != 0 && libc::setuid(0) == 0 {
            return Err(io::Error::other("root could be regained after the switch"));
        }
    }
    Ok(())
}

/// What `-t`, the master's start and a reload ask besides `config::check_root`: when started
/// as root, the `--user` exists and can read the root and its index.
pub fn check_workers_can_read(cli: &crate::config::Cli) -> Result<(), String> {
    match target(&cli.user)? {
        Some(ids) => check_readable(&cli.root(), &ids),
        None => Ok(()),
    }
}

/// The master, before telling workers running as `ids` to reopen their logs (SIGUSR1): creates
/// each log file that logrotate moved away and hands it to `ids`, as nginx's master does, so
/// that the workers (who may open existing files in the logs' directories for writing, and
/// nothing else) can reopen them. Returns one message per file that could not be prepared.
pub fn hand_over_logs(paths: &[&Path], ids: &Ids) -> Vec<String> {
    let mut errors = Vec::new();
    for p in paths {
        let r = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .and_then(|f| std::os::unix::fs::fchown(&f, Some(ids.uid), Some(ids.gid)));
        if let Err(e) = r {
            errors.push(format!(
                "cannot hand log {} to user {}: {}",
                p.display(),
                ids.name,
                crate::config::plain(&e)
            ));
        }
    }
    errors
}

/// `-t` and the master's start: can `ids` read the root (list it) and its `index.html`, opened
/// the way a worker opens them (the root's fd is taken before the switch)? Names the path that
/// cannot be read.
pub fn check_readable(root: &Path, ids: &Ids) -> Result<(), String> {
    let c = CString::new(root.as_os_str().as_encoded_bytes())
        .map_err(|_| format!("cannot serve root {}: bad path", root.display()))?;
    // SAFETY: a valid NUL-terminated path; the fd is checked and then owned.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(format!("cannot serve root {}: {e}", root.display()));
    }
    // SAFETY: fd was just opened and is owned by nothing else.
    let dir = unsafe { OwnedFd::from_raw_fd(fd) };
    let ids2 = ids.clone();
    let raw = dir.as_raw_fd();
    let outcome = std::thread::spawn(move || as_user_in_thread(raw, &ids2))
        .join()
        .map_err(|_| "the readability check failed".to_string())?;
    drop(dir);
    match outcome {
        Ok(()) => Ok(()),
        Err((what, e)) => {
            let path = if what.is_empty() {
                root.to_path_buf()
            } else {
                root.join(what)
            };
            Err(format!(
                "{} is not readable by user {} (uid {}, gid {}), which the workers run as: {}",
                path.display(),
                ids.name,
                ids.uid,
                ids.gid,
                crate::config::plain(&e)
            ))
        }
    }
}

/// In a thread of its own: takes `ids` for this thread only (raw system calls, unlike libc's
/// wrappers, do not change the other threads), then opens the root and its index as a worker.
fn as_user_in_thread(dir: i32, ids: &Ids) -> Result<(), (&'static str, io::Error)> {
    // SAFETY: raw credential calls affect only this thread, which ends right after the checks.
    unsafe {
        if libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0
            || libc::syscall(libc::SYS_setresgid, ids.gid, ids.gid, ids.gid) != 0
            || libc::syscall(libc::SYS_setresuid, ids.uid, ids.uid, ids.uid) != 0
        {
            return Err(("", io::Error::last_os_error()));
        }
    }
    let open = |name: &'static str, flags: i32| -> Result<Option<()>, (&'static str, io::Error)> {
        let c = CString::new(if name.is_empty() { "." } else { name }).expect("no NUL");
        // SAFETY: valid dirfd and NUL-terminated path; a returned fd is closed at once.
        let fd = unsafe { libc::openat(dir, c.as_ptr(), flags | libc::O_CLOEXEC) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            if !name.is_empty() && e.raw_os_error() == Some(libc::ENOENT) {
                return Ok(None);
            }
            return Err((name, e));
        }
        // SAFETY: fd was just opened by us.
        unsafe { libc::close(fd) };
        Ok(Some(()))
    };
    open("", libc::O_RDONLY | libc::O_DIRECTORY)?;
    open("index.html", libc::O_RDONLY | libc::O_NONBLOCK)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_forms() {
        assert!(parse_spec("nobody").is_ok());
        assert!(parse_spec("www-data:www-data").is_ok());
        assert!(parse_spec("65534:65534").is_ok());
        for bad in ["", ":", "a:", ":g", "a b", "a:b:c"] {
            assert!(parse_spec(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resolves_names_and_numbers() {
        let root = resolve("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(resolve("4321:4322").unwrap().gid, 4322);
        let e = resolve("no-such-user-here").unwrap_err();
        assert!(e.contains("no user `no-such-user-here`"), "{e}");
        let e = resolve("root:no-such-group-here").unwrap_err();
        assert!(e.contains("no group `no-such-group-here`"), "{e}");
    }
}
