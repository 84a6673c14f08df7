//! One instance per address: before binding the SO_REUSEPORT sockets of an address it does not
//! hold yet, the master claims it, so that a second ringstatic (or any other server) on the same
//! address is refused instead of silently joining the first one's SO_REUSEPORT group and
//! splitting its traffic.
//!
//! The claim is a probe: a socket bound to the address *without* SO_REUSEPORT (with SO_REUSEADDR,
//! so connections of an earlier run in TIME_WAIT do not count). Linux refuses that bind with
//! EADDRINUSE whenever any socket listens on the address, or on the wildcard address of the same
//! port, whatever its options; an address nobody listens on binds, and the probe is closed again
//! before the real sockets are bound (it never listened, so it leaves nothing behind). For port 0
//! the probe's port is the one the real sockets then bind.
//!
//! Between the probe's close and the first real bind, a second ringstatic starting at the same
//! moment could probe too and both would pass. To close that window, the probe and the binds are
//! done holding a lock: an abstract Unix socket named after the port. Abstract names live in the
//! network namespace, exactly the scope in which two listeners on a port collide, need no
//! writable directory and vanish with the process that holds them.
//!
//! `Listeners::ensure` claims all of a configuration's new addresses before it binds any, so two
//! overlapping addresses of one instance (`127.0.0.1:80` and `0.0.0.0:80`) do not refuse each
//! other. Only fresh addresses are claimed. Sockets kept over a reload, passed to a new master by a
//! binary upgrade (both masters hold them for a while, on purpose) or given back by systemd's fd
//! store are already this instance's; systemd socket activation binds nothing of ours at all.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::{bind, local_addr, set_int_opt, stream_socket};

/// How long to wait for another instance that is binding the same port right now.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// An address nobody else listens on, held until the real sockets are bound.
pub struct Claim {
    /// The address as configured.
    pub configured: SocketAddr,
    /// The address to bind (with the port the kernel chose for port 0).
    pub addr: SocketAddr,
    _lock: Option<OwnedFd>,
}

impl Claim {
    /// Claims `addr`: EADDRINUSE if anything listens there. `lock`: take the port's lock (not
    /// when one of our claims already holds it).
    pub fn take(addr: SocketAddr, lock: bool) -> io::Result<Claim> {
        let held = if lock && addr.port() != 0 {
            Some(port_lock(addr.port())?)
        } else {
            None
        };
        Ok(Claim {
            configured: addr,
            addr: probe(addr)?,
            _lock: held,
        })
    }
}

/// Binds (and closes) a socket without SO_REUSEPORT on `addr`; returns the address it got.
fn probe(addr: SocketAddr) -> io::Result<SocketAddr> {
    let s = stream_socket(addr)?;
    set_int_opt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if addr.is_ipv6() {
        // As the real sockets: an IPv6 address does not claim the IPv4 one.
        set_int_opt(s.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
    }
    bind(s.as_raw_fd(), addr)?;
    local_addr(s.as_raw_fd())
}

/// The abstract Unix socket `ringstatic.listen.<port>`, bound while this process claims that
/// port; waits a little while another process holds it.
fn port_lock(port: u16) -> io::Result<OwnedFd> {
    // SAFETY: plain socket creation; the fd is wrapped in OwnedFd immediately.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh socket owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: all-zero is a valid sockaddr_un.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let name = format!("ringstatic.listen.{port}");
    // sun_path[0] stays 0: an abstract name.
    for (d, s) in sun.sun_path[1..].iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + 1 + name.len()) as libc::socklen_t;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        // SAFETY: `sun` is an initialised sockaddr_un and `len` covers its family and name.
        let r = unsafe { libc::bind(fd, &sun as *const _ as *const libc::sockaddr, len) };
        if r == 0 {
            return Ok(owned);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EADDRINUSE) || Instant::now() >= deadline {
            return Err(e);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_address_cannot_be_claimed_a_free_one_can() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let c = Claim::take(any, true).unwrap();
        assert_ne!(c.addr.port(), 0);
        let taken = super::super::listen_socket(c.addr).unwrap();
        drop(c);
        let e = Claim::take(local_addr(taken.as_raw_fd()).unwrap(), true)
            .err()
            .expect("refused");
        assert_eq!(e.raw_os_error(), Some(libc::EADDRINUSE));
        // The wildcard address of the same port is taken too.
        let wild: SocketAddr = format!("0.0.0.0:{}", local_addr(taken.as_raw_fd()).unwrap().port())
            .parse()
            .unwrap();
        assert!(Claim::take(wild, true).is_err());
        drop(taken);
    }

    #[test]
    fn the_lock_is_held_until_the_claim_is_dropped() {
        let free = super::super::listen_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = local_addr(free.as_raw_fd()).unwrap().port();
        drop(free);
        let held = port_lock(port).unwrap();
        assert!(
            port_lock(port).is_err(),
            "a second holder must wait, then fail"
        );
        drop(held);
        assert!(port_lock(port).is_ok());
    }
}
