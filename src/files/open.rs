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
}

impl Root {
    pub fn open(path: &Path) -> io::Result<Root> {
        let c = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: `c` is a valid NUL-terminated path; the returned fd is checked before use.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by open and is owned by nobody else.
        Ok(Root { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Opens `rel` (no leading slash, never empty: "." for the root itself) beneath the root,
    /// read-only and non-blocking (so a FIFO planted in the root can never stall a worker).
    pub fn open_beneath(&self, rel: &[u8]) -> io::Result<OwnedFd> {
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
            // EAGAIN: RESOLVE_BENEATH raced with a rename elsewhere in the tree; the kernel asks
            // us to retry.
            if e.raw_os_error() != Some(libc::EAGAIN) && e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
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
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        // SAFETY: the destination is inside `buf` and `len - done` bytes long.
        let n = unsafe {
            libc::pread(fd, buf[done..].as_mut_ptr() as *mut libc::c_void, len - done, done as libc::off_t)
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
    Ok(buf)
}
