//! The systemd notify protocol, by hand: datagrams of `KEY=VALUE` lines to the Unix socket named by
//! $NOTIFY_SOCKET (a path, or `@name` for the abstract namespace), optionally carrying fds
//! (SCM_RIGHTS) for the fd store. See sd_notify(3).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

pub struct Notifier {
    sock: OwnedFd,
    addr: libc::sockaddr_un,
    addr_len: libc::socklen_t,
}

impl Notifier {
    /// The notifier systemd asked for, if any.
    pub fn from_env() -> Option<Notifier> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        match Notifier::connect(path.as_encoded_bytes()) {
            Ok(n) => Some(n),
            Err(e) => {
                eprintln!(
                    "ringstatic: NOTIFY_SOCKET {}: {e}; not notifying systemd",
                    path.to_string_lossy()
                );
                None
            }
        }
    }

    pub fn connect(path: &[u8]) -> io::Result<Notifier> {
        // SAFETY: all-zero is a valid sockaddr_un.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        if path.is_empty()
            || path.len() >= addr.sun_path.len()
            || (path[0] != b'/' && path[0] != b'@')
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not an absolute path or @abstract name",
            ));
        }
        for (i, &b) in path.iter().enumerate() {
            addr.sun_path[i] = b as libc::c_char;
        }
        if path[0] == b'@' {
            addr.sun_path[0] = 0; // abstract namespace: leading NUL, length counts exactly the name
        }
        let base = std::mem::size_of::<libc::sa_family_t>();
        let addr_len = (base + path.len() + if path[0] == b'@' { 0 } else { 1 }) as libc::socklen_t;
        // SAFETY: plain socket creation, wrapped at once.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd owned by nobody else.
        Ok(Notifier {
            sock: unsafe { OwnedFd::from_raw_fd(fd) },
            addr,
            addr_len,
        })
    }

    pub fn send(&self, msg: &str) {
        if let Err(e) = self.send_with_fds(msg, &[]) {
            eprintln!(
                "ringstatic: cannot notify systemd ({}): {e}",
                msg.lines().next().unwrap_or("")
            );
        }
    }

    pub fn send_with_fds(&self, msg: &str, fds: &[RawFd]) -> io::Result<()> {
        let mut iov = libc::iovec {
            iov_base: msg.as_ptr() as *mut libc::c_void,
            iov_len: msg.len(),
        };
        // Room for up to 253 fds (SCM_MAX_FD), aligned for cmsghdr.
        let mut cbuf = [0u64; 256];
        // SAFETY: all-zero is a valid msghdr; the pointers set below outlive the sendmsg call.
        let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
        mh.msg_name = &self.addr as *const _ as *mut libc::c_void;
        mh.msg_namelen = self.addr_len;
        mh.msg_iov = &mut iov;
        mh.msg_iovlen = 1;
        if !fds.is_empty() {
            let fds = &fds[..fds.len().min(253)];
            let data_len = std::mem::size_of_val(fds) as u32;
            // SAFETY: CMSG_SPACE is a pure computation; the buffer is large enough for 253 fds.
            let space = unsafe { libc::CMSG_SPACE(data_len) } as usize;
            mh.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
            mh.msg_controllen = space;
            // SAFETY: msg_control points at `space` writable, aligned bytes, so the first header
            // and its data fit.
            unsafe {
                let cm = libc::CMSG_FIRSTHDR(&mh);
                (*cm).cmsg_level = libc::SOL_SOCKET;
                (*cm).cmsg_type = libc::SCM_RIGHTS;
                (*cm).cmsg_len = libc::CMSG_LEN(data_len) as usize;
                std::ptr::copy_nonoverlapping(
                    fds.as_ptr(),
                    libc::CMSG_DATA(cm) as *mut RawFd,
                    fds.len(),
                );
            }
        }
        // SAFETY: mh and everything it points to are valid for this call.
        let r = unsafe { libc::sendmsg(self.sock.as_raw_fd(), &mh, libc::MSG_NOSIGNAL) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// How often to send WATCHDOG=1, when systemd's watchdog is on for this process: half the timeout.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Some(pid) = std::env::var("WATCHDOG_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
    {
        // After a binary upgrade the variable names the old master; the new one takes over.
        if pid != std::process::id() && std::env::var_os(crate::inherit::UPGRADE_ENV).is_none() {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2))
}

/// CLOCK_MONOTONIC in microseconds, for RELOADING=1's MONOTONIC_USEC.
pub fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(path: &[u8]) -> OwnedFd {
        // SAFETY: plain socket/bind on a fresh fd with a zeroed, then filled sockaddr_un.
        unsafe {
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0);
            let mut a: libc::sockaddr_un = std::mem::zeroed();
            a.sun_family = libc::AF_UNIX as libc::sa_family_t;
            for (i, &b) in path.iter().enumerate() {
                a.sun_path[i] = b as libc::c_char;
            }
            let abs = path[0] == b'@';
            if abs {
                a.sun_path[0] = 0;
            }
            let len = 2 + path.len() + if abs { 0 } else { 1 };
            assert_eq!(
                libc::bind(fd, &a as *const _ as *const libc::sockaddr, len as u32),
                0
            );
            let tv = libc::timeval {
                tv_sec: 5,
                tv_usec: 0,
            };
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                16,
            );
            OwnedFd::from_raw_fd(fd)
        }
    }

    fn recv(fd: &OwnedFd) -> String {
        let mut buf = [0u8; 512];
        // SAFETY: reading into a local buffer of the given size.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
            )
        };
        assert!(n > 0, "no datagram");
        String::from_utf8_lossy(&buf[..n as usize]).into_owned()
    }

    #[test]
    fn path_socket() {
        let p = std::env::temp_dir().join(format!("rs-notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        let l = listener(p.as_os_str().as_encoded_bytes());
        let n = Notifier::connect(p.as_os_str().as_encoded_bytes()).unwrap();
        n.send("READY=1\nSTATUS=ok");
        assert_eq!(recv(&l), "READY=1\nSTATUS=ok");
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn abstract_socket() {
        let name = format!("@rs-notify-test-{}", std::process::id());
        let l = listener(name.as_bytes());
        let n = Notifier::connect(name.as_bytes()).unwrap();
        n.send("STOPPING=1");
        assert_eq!(recv(&l), "STOPPING=1");
    }

    #[test]
    fn bad_paths_are_refused() {
        assert!(Notifier::connect(b"relative").is_err());
        assert!(Notifier::connect(b"").is_err());
    }
}
