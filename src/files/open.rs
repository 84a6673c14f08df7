//! Opening files strictly beneath the root, and the one errno -> status table.
//!
//! Every open goes through openat2(2) with RESOLVE_BENEATH relative to the root directory's fd, so
//! `..`, absolute symlinks and symlinks that climb out of the root are refused by the kernel itself,
//! whatever the path string looked like. We call it directly rather than through the ring: a
//! path-walk that misses the dentry cache is punted to an io-wq thread by io_uring anyway, and a
//! hit costs less as a plain system call than as a ring round trip.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// The served directory, held open for the worker's lifetime.
pub struct Root {
    fd: OwnedFd,
    /// openat2 is refused here (ENOSYS: an old kernel, or a seccomp filter such as systemd's
    /// RestrictSUIDSGID=, which cannot inspect openat2's flags and so blocks the call). Then the
    /// same rules are enforced by walking the path one component at a time.
    no_openat2: std::cell::Cell<bool>,
    /// The root's absolute path as configured and as resolved: an absolute symlink whose target
    /// starts with one of these points inside the root and is followed (RESOLVE_BENEATH refuses
    /// every absolute symlink, so those paths go through the walk below).
    abs_prefixes: Vec<Vec<u8>>,
}

impl Root {
    pub fn open(path: &Path) -> io::Result<Root> {
        let c = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: `c` is a valid NUL-terminated path; the returned fd is checked before use.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by open and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut abs_prefixes = Vec::new();
        let configured = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        for p in [Some(configured), std::fs::canonicalize(path).ok()]
            .into_iter()
            .flatten()
        {
            let mut b = p.as_os_str().as_encoded_bytes().to_vec();
            while b.len() > 1 && b.ends_with(b"/") {
                b.pop();
            }
            if b != b"/" && !abs_prefixes.contains(&b) {
                abs_prefixes.push(b);
            }
        }
        Ok(Root {
            fd,
            no_openat2: std::cell::Cell::new(false),
            abs_prefixes,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Opens `rel` (no leading slash, never empty: "." for the root itself) beneath the root,
    /// read-only and non-blocking (so a FIFO planted in the root can never stall a worker).
    pub fn open_beneath(&self, rel: &[u8]) -> io::Result<OwnedFd> {
        if self.no_openat2.get() {
            return self.open_beneath_walk(rel);
        }
        let c = CString::new(rel).map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))?;
        // SAFETY: open_how is plain data; all-zero is its documented default.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY) as u64;
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
        loop {
            // SAFETY: valid dirfd, NUL-terminated path and a correctly sized open_how struct.
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    self.fd.as_raw_fd(),
                    c.as_ptr(),
                    &how as *const libc::open_how,
                    std::mem::size_of::<libc::open_how>(),
                )
            };
            if fd >= 0 {
                // SAFETY: the kernel returned a fresh fd that nobody else owns.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EXDEV) {
                // An absolute symlink, or one climbing out: the walk follows the absolute ones
                // that land inside the root and refuses the rest with the same EXDEV.
                return self.open_beneath_walk(rel);
            }
            if e.raw_os_error() == Some(libc::ENOSYS) {
                eprintln!("ringstatic: openat2 is not available here; resolving paths beneath the root component by component");
                self.no_openat2.set(true);
                return self.open_beneath_walk(rel);
            }
            // EAGAIN: RESOLVE_BENEATH raced with a rename elsewhere in the tree; the kernel asks
            // us to retry.
            if e.raw_os_error() != Some(libc::EAGAIN) && e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
    }

    /// RESOLVE_BENEATH by hand: every component is opened with O_PATH|O_NOFOLLOW relative to the
    /// directory before it; a symlink is read and its target walked the same way (an absolute
    /// target, or `..` above the root, fails with EXDEV as openat2 does); the last component is
    /// opened with O_NOFOLLOW, so nothing swapped in meanwhile can lead outside.
    pub fn open_beneath_walk(&self, rel: &[u8]) -> io::Result<OwnedFd> {
        let mut pending: std::collections::VecDeque<Vec<u8>> = rel
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .map(|c| c.to_vec())
            .collect();
        let mut dirs: Vec<OwnedFd> = Vec::new();
        let mut links = 0;
        let read_flags =
            libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW;
        if pending.is_empty() {
            return openat(self.fd.as_raw_fd(), b".", read_flags);
        }
        while let Some(comp) = pending.pop_front() {
            if comp == b".." {
                if dirs.pop().is_none() {
                    return Err(io::Error::from_raw_os_error(libc::EXDEV));
                }
                if pending.is_empty() {
                    let dir = dirs.last().map_or(self.fd.as_raw_fd(), |d| d.as_raw_fd());
                    return openat(dir, b".", read_flags);
                }
                continue;
            }
            let dir = dirs.last().map_or(self.fd.as_raw_fd(), |d| d.as_raw_fd());
            let probe = openat(
                dir,
                &comp,
                libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )?;
            let st = fstat(probe.as_raw_fd())?;
            if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                links += 1;
                if links > 40 {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let mut target = readlinkat(dir, &comp)?;
                if target.first() == Some(&b'/') {
                    // Absolute: followed only when it names a place inside the root.
                    let inside = self.abs_prefixes.iter().find_map(|p| {
                        let rest = target.strip_prefix(p.as_slice())?;
                        (rest.is_empty() || rest[0] == b'/').then(|| rest.to_vec())
                    });
                    match inside {
                        Some(rest) => {
                            target = rest;
                            dirs.clear();
                        }
                        None => return Err(io::Error::from_raw_os_error(libc::EXDEV)),
                    }
                }
                for c in target
                    .split(|&b| b == b'/')
                    .rev()
                    .filter(|c| !c.is_empty() && *c != b".")
                {
                    pending.push_front(c.to_vec());
                }
                if pending.is_empty() {
                    let dir = dirs.last().map_or(self.fd.as_raw_fd(), |d| d.as_raw_fd());
                    return openat(dir, b".", read_flags);
                }
                continue;
            }
            if pending.is_empty() {
                let fd = openat(dir, &comp, read_flags)?;
                let again = fstat(fd.as_raw_fd())?;
                if again.st_ino != st.st_ino || again.st_dev != st.st_dev {
                    return Err(io::Error::from_raw_os_error(libc::EAGAIN));
                }
                return Ok(fd);
            }
            if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
            }
            dirs.push(probe);
        }
        Err(io::Error::from_raw_os_error(libc::ENOENT))
    }

    /// stat(2) of `rel` beneath the root, following symlinks: used only to notice that a cached
    /// file changed. A changed answer leads to a fresh `open_beneath`, which enforces the root.
    pub fn stat(&self, rel: &[u8]) -> io::Result<libc::stat> {
        let c = CString::new(rel).map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))?;
        // SAFETY: zeroed stat is a valid out-parameter.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid dirfd, NUL-terminated path, and a writable stat buffer.
        let r = unsafe { libc::fstatat(self.fd.as_raw_fd(), c.as_ptr(), &mut st, 0) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(st)
    }
}

fn openat(dir: RawFd, name: &[u8], flags: i32) -> io::Result<OwnedFd> {
    let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))?;
    // SAFETY: valid dirfd and NUL-terminated name; the result is checked and wrapped at once.
    let fd = unsafe { libc::openat(dir, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn readlinkat(dir: RawFd, name: &[u8]) -> io::Result<Vec<u8>> {
    let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: writes at most buf.len() bytes into buf.
    let n = unsafe {
        libc::readlinkat(
            dir,
            c.as_ptr(),
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open for the duration of this call; st is writable.
    if unsafe { libc::fstat(fd, &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// The status for a failed open or stat, as nginx's static module maps them.
pub fn status_for_errno(err: &io::Error) -> u16 {
    match err.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ENAMETOOLONG) => 404,
        // EXDEV: RESOLVE_BENEATH refused a path that leaves the root (a symlink pointing out).
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::ELOOP) | Some(libc::EXDEV) => 403,
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOMEM) => 503,
        _ => 500,
    }
}

/// Reads exactly `len` bytes at offset 0, or fails with UnexpectedEof if the file is shorter now.
pub fn read_all(fd: RawFd, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len);
    read_at_into(fd, 0, len, &mut buf)?;
    Ok(buf)
}

/// Appends exactly `len` bytes of `fd` from `offset` to `dst` (read straight into its spare
/// room, nothing zeroed first), or fails with UnexpectedEof if the file is shorter now; on an
/// error `dst` is as it was.
pub fn read_at_into(fd: RawFd, offset: u64, len: usize, dst: &mut Vec<u8>) -> io::Result<()> {
    let start = dst.len();
    dst.reserve(len);
    let mut done = 0;
    while done < len {
        // SAFETY: pread(2) into the spare capacity `reserve` made: `len - done` bytes past
        // `start + done`, within it.
        let n = unsafe {
            libc::pread(
                fd,
                dst.as_mut_ptr().add(start + done).cast(),
                len - done,
                (offset + done as u64) as libc::off_t,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        done += n as usize;
    }
    // SAFETY: pread initialised exactly these `len` bytes.
    unsafe { dst.set_len(start + len) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn walk_matches_openat2_rules() {
        let base = std::env::temp_dir().join(format!("rs-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f.txt"), b"inside").unwrap();
        std::fs::write(base.join("secret"), b"outside").unwrap();
        symlink("b/f.txt", root.join("a/rel")).unwrap();
        symlink("../a/b", root.join("a/up-in")).unwrap();
        symlink("../../secret", root.join("a/escape")).unwrap();
        symlink(base.join("secret"), root.join("abs")).unwrap();
        symlink(root.join("a/b/f.txt"), root.join("abs-inside")).unwrap();
        symlink(root.join("a"), root.join("abs-dir")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        let r = Root::open(&root).unwrap();
        let read = |fd: OwnedFd| {
            std::fs::read_to_string(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap()
        };
        for via in [false, true] {
            let open = |p: &[u8]| {
                if via {
                    r.open_beneath_walk(p)
                } else {
                    r.open_beneath(p)
                }
            };
            assert_eq!(read(open(b"a/b/f.txt").unwrap()), "inside");
            assert_eq!(read(open(b"a/rel").unwrap()), "inside");
            assert_eq!(read(open(b"a/up-in/f.txt").unwrap()), "inside");
            assert_eq!(
                read(open(b"abs-inside").unwrap()),
                "inside",
                "via walk: {via}"
            );
            assert_eq!(
                read(open(b"abs-dir/b/f.txt").unwrap()),
                "inside",
                "via walk: {via}"
            );
            let code = |p: &[u8]| open(p).unwrap_err().raw_os_error();
            assert_eq!(code(b"a/escape"), Some(libc::EXDEV), "via walk: {via}");
            assert_eq!(code(b"abs"), Some(libc::EXDEV), "via walk: {via}");
            assert_eq!(code(b"../secret"), Some(libc::EXDEV), "via walk: {via}");
            assert_eq!(code(b"nope"), Some(libc::ENOENT));
            assert_eq!(code(b"a/b/f.txt/x"), Some(libc::ENOTDIR));
            assert_eq!(code(b"loop1"), Some(libc::ELOOP));
        }
        let _ = std::fs::remove_dir_all(&base);
    }
}
