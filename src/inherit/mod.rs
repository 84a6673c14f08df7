//! Listening sockets: bound here, passed down by systemd (socket activation and the fd store), or
//! inherited from the old master in a binary upgrade. Every socket has a name, so it can be
//! matched to the address it serves whatever order it arrives in.
//!
//! Names: `rs.listen.<ADDR>.<N>` for our own per-worker sockets (the N-th socket bound for
//! configured address ADDR, with `:` written as `_` because names may not contain `:`); any other
//! name (FileDescriptorName= of a .socket unit, by default the unit's name) marks a socket systemd
//! created for us: all workers share each of those, and --listen is then ignored.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

mod claim;

use crate::config::{ListenSpec, ListenerKind};

/// Set in a new master started for a binary upgrade: the fd to write one byte to once ready.
pub const UPGRADE_ENV: &str = "RINGSTATIC_UPGRADE_READY_FD";
/// `name=fd,name=fd,...`: the listening sockets handed to a new master in a binary upgrade.
pub const FDS_ENV: &str = "RINGSTATIC_LISTEN_FDS";

pub const OWN_PREFIX: &str = "rs.listen.";

pub fn own_name(configured: SocketAddr, n: usize) -> String {
    format!(
        "{OWN_PREFIX}{}.{n}",
        configured.to_string().replace(':', "_")
    )
}

/// (configured address, index) for one of our own names.
pub fn parse_own_name(name: &str) -> Option<(SocketAddr, usize)> {
    let rest = name.strip_prefix(OWN_PREFIX)?;
    let (addr, n) = rest.rsplit_once('.')?;
    let addr = addr.replace('_', ":").parse().ok()?;
    Some((addr, n.parse().ok()?))
}

/// Takes the sockets this process was given (by systemd or by the old master), marks them
/// close-on-exec and clears the variables so children don't see them.
pub fn take_inherited() -> Vec<(String, OwnedFd)> {
    let mut out = Vec::new();
    let pid_matches = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    if pid_matches {
        let n: i32 = std::env::var("LISTEN_FDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
            .map(|v| v.split(':').map(str::to_string).collect())
            .unwrap_or_default();
        for i in 0..n.clamp(0, 4096) {
            let fd = 3 + i;
            let name = names
                .get(i as usize)
                .cloned()
                .unwrap_or_else(|| "unknown".to_string());
            if let Some(owned) = adopt(fd) {
                out.push((name, owned));
            }
        }
    }
    if let Ok(list) = std::env::var(FDS_ENV) {
        for item in list.split(',').filter(|s| !s.is_empty()) {
            if let Some((name, fd)) = item.rsplit_once('=') {
                if let Some(owned) = fd.parse::<RawFd>().ok().and_then(adopt) {
                    out.push((name.to_string(), owned));
                }
            }
        }
    }
    for v in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", FDS_ENV] {
        std::env::remove_var(v);
    }
    out
}

fn adopt(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD probes whether the fd is open; a closed one is skipped.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the fd was passed to this process for it to own; marking it CLOEXEC.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: ownership of the passed fd moves into OwnedFd exactly once.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets an integer socket option.
fn set_int_opt(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: setsockopt with a c_int value of the stated size; no memory is kept.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &value as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Reads an integer socket option.
pub fn int_opt(fd: RawFd, level: libc::c_int, name: libc::c_int) -> Option<libc::c_int> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt into a c_int of the stated size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            &mut v as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    (r == 0).then_some(v)
}

/// TCP_NODELAY on a listening socket, inherited by every socket it accepts: responses leave
/// as soon as they are written, without a setsockopt per connection.
fn set_nodelay(fd: RawFd) {
    let _ = set_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
}

/// TCP_DEFER_ACCEPT on a listening socket: accept only once the client's first bytes are
/// here, or after 1 s without them (nginx's `deferred` uses the same second). Workers read the
/// setting back to know whether a new connection's request is already waiting.
pub fn set_defer_accept(fd: RawFd, on: bool) -> io::Result<()> {
    set_int_opt(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_DEFER_ACCEPT,
        on as libc::c_int,
    )
}

/// Whether `fd` is a listening stream socket.
pub fn is_listening_stream(fd: RawFd) -> bool {
    int_opt(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN) == Some(1)
        && int_opt(fd, libc::SOL_SOCKET, libc::SO_TYPE) == Some(libc::SOCK_STREAM)
}

/// A --listen value's options.
fn kind_of(l: &ListenSpec) -> ListenerKind {
    ListenerKind {
        proxy: l.proxy_protocol,
        tls: l.tls,
    }
}

/// One configured address and the sockets bound for it.
pub struct Bound {
    pub configured: SocketAddr,
    /// What its connections start with: a PROXY protocol header (`--listen ADDR,proxy-protocol`),
    /// a TLS handshake (`,tls`).
    pub kind: ListenerKind,
    pub actual: SocketAddr,
    pub sockets: Vec<OwnedFd>,
}

/// Every listening socket the master holds.
#[derive(Default)]
pub struct Listeners {
    pub bound: Vec<Bound>,
    /// Sockets from a .socket unit, shared by all workers.
    pub activated: Vec<(String, SocketAddr, OwnedFd)>,
    /// Each activated socket's options, from the --listen with its address.
    pub activated_kind: Vec<ListenerKind>,
}

impl Listeners {
    /// Sorts inherited sockets into ours (by name) and systemd-created ones.
    pub fn adopt(
        &mut self,
        inherited: Vec<(String, OwnedFd)>,
    ) -> Vec<(SocketAddr, usize, OwnedFd)> {
        let mut own = Vec::new();
        for (name, fd) in inherited {
            if !is_listening_stream(fd.as_raw_fd()) {
                eprintln!(
                    "ringstatic: ignoring inherited fd {} ({name}): not a listening TCP socket",
                    fd.as_raw_fd()
                );
                continue;
            }
            match parse_own_name(&name) {
                Some((addr, n)) => own.push((addr, n, fd)),
                None => match local_addr(fd.as_raw_fd()) {
                    Ok(a) => {
                        set_nodelay(fd.as_raw_fd());
                        self.activated.push((name, a, fd))
                    }
                    Err(e) => eprintln!("ringstatic: ignoring inherited socket {name}: {e}"),
                },
            }
        }
        own.sort_by_key(|(a, n, _)| (a.to_string(), *n));
        own
    }

    /// Makes sure every configured address has at least `workers` sockets, reusing inherited ones
    /// first. Returns the entries for addresses no longer configured (to close once the workers
    /// using them are gone). With activated sockets, --listen is ignored.
    pub fn ensure(
        &mut self,
        listen: &[ListenSpec],
        workers: usize,
        defer_accept: bool,
        spare: &mut Vec<(SocketAddr, usize, OwnedFd)>,
    ) -> Result<Vec<Bound>, String> {
        if !self.activated.is_empty() {
            // An activated socket whose address is also a --listen one takes that one's options.
            self.activated_kind = self
                .activated
                .iter()
                .map(|(_, a, _)| {
                    listen
                        .iter()
                        .find(|l| l.addr == *a)
                        .map_or_else(ListenerKind::default, kind_of)
                })
                .collect();
            return Ok(Vec::new());
        }
        // Checked before any socket moves, so that a refused reload keeps every one.
        for (i, a) in listen.iter().enumerate() {
            if listen[..i]
                .iter()
                .any(|b| b.addr == a.addr && kind_of(b) != kind_of(a))
            {
                let hint = if a.addr.port() == 0 {
                    " (port 0 binds one port per address: give each listener its own address, \
                     such as 127.0.0.1:0 and 127.0.0.2:0)"
                } else {
                    ""
                };
                return Err(format!(
                    "listen {} is given twice, with different options (tls, proxy-protocol){hint}",
                    a.addr
                ));
            }
        }
        // Every new address for this instance (not kept over a reload, not inherited from the
        // old master of a binary upgrade or from systemd's fd store) is claimed first, all before
        // any is bound, so that two of our own addresses that overlap (`127.0.0.1:80` and
        // `0.0.0.0:80`) do not refuse each other; anything else listening there refuses it.
        let mut claims: Vec<claim::Claim> = Vec::new();
        for spec in listen {
            let addr = spec.addr;
            let held = self.bound.iter().any(|b| b.configured == addr)
                || spare.iter().any(|s| s.0 == addr);
            if held || claims.iter().any(|c| c.configured == addr) {
                continue;
            }
            let locked = claims.iter().any(|c| c.configured.port() == addr.port());
            claims.push(
                claim::Claim::take(addr, !locked).map_err(|e| match e.raw_os_error() {
                    Some(libc::EADDRINUSE) => format!(
                        "cannot listen on {addr}: address already in use (another ringstatic, \
                         or another server, listens there)"
                    ),
                    _ => format!("cannot listen on {addr}: {e}"),
                })?,
            );
        }
        let mut next: Vec<Bound> = Vec::new();
        for spec in listen {
            let addr = spec.addr;
            if next.iter().any(|b| b.configured == addr) {
                continue;
            }
            let claimed = claims.iter().find(|c| c.configured == addr).map(|c| c.addr);
            if let Err(e) = self.ensure_one(*spec, claimed, workers, defer_accept, spare, &mut next)
            {
                // Sockets kept for the addresses done so far stay ours (a reload that fails here
                // goes on serving them).
                next.retain(|b| !b.sockets.is_empty());
                self.bound.append(&mut next);
                return Err(e);
            }
        }
        // The claims (and their locks) are released only now, with every socket bound.
        drop(claims);
        let retired = std::mem::replace(&mut self.bound, next);
        Ok(retired)
    }

    /// One address of `ensure`: its entry lands in `next` even when binding more sockets fails,
    /// so the sockets it already had are never dropped by an error.
    fn ensure_one(
        &mut self,
        spec: ListenSpec,
        claimed: Option<SocketAddr>,
        workers: usize,
        defer_accept: bool,
        spare: &mut Vec<(SocketAddr, usize, OwnedFd)>,
        next: &mut Vec<Bound>,
    ) -> Result<(), String> {
        let addr = spec.addr;
        let b = match self.bound.iter().position(|b| b.configured == addr) {
            Some(i) => self.bound.remove(i),
            None => {
                let mut sockets = Vec::new();
                let mut k = 0;
                while k < spare.len() {
                    if spare[k].0 == addr {
                        sockets.push(spare.remove(k).2);
                    } else {
                        k += 1;
                    }
                }
                let actual = match sockets.first() {
                    Some(s) => local_addr(s.as_raw_fd())
                        .map_err(|e| format!("cannot use inherited socket for {addr}: {e}"))?,
                    None => addr,
                };
                Bound {
                    configured: addr,
                    kind: kind_of(&spec),
                    actual,
                    sockets,
                }
            }
        };
        next.push(b);
        let b = next.last_mut().expect("just pushed");
        b.kind = kind_of(&spec);
        if let Some(a) = claimed {
            // The claimed address (with the port the kernel chose for port 0).
            b.actual = a;
        }
        while b.sockets.len() < workers {
            let fd =
                listen_socket(b.actual).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            b.sockets.push(fd);
        }
        // Also on sockets kept over a reload or inherited by an upgrade: the setting is
        // the current configuration's.
        for s in &b.sockets {
            set_defer_accept(s.as_raw_fd(), defer_accept)
                .map_err(|e| format!("cannot set TCP_DEFER_ACCEPT on {addr}: {e}"))?;
        }
        Ok(())
    }

    /// The sockets worker `w` of `n` accepts on: its share of each address's sockets (sockets
    /// beyond `n`, left from a larger worker count, are spread so none is left unserved), and
    /// every activated socket.
    /// Each comes with its options (an activated socket has those of the --listen with its
    /// address, if any).
    pub fn for_worker(&self, w: usize, n: usize) -> Vec<(RawFd, ListenerKind)> {
        let mut fds = Vec::new();
        for b in &self.bound {
            for (j, s) in b.sockets.iter().enumerate() {
                if j % n.max(1) == w {
                    fds.push((s.as_raw_fd(), b.kind));
                }
            }
        }
        for (i, (_, _, s)) in self.activated.iter().enumerate() {
            let kind = self.activated_kind.get(i).copied().unwrap_or_default();
            fds.push((s.as_raw_fd(), kind));
        }
        fds
    }

    /// The addresses being served and whether they speak TLS, for the "listening on" lines.
    pub fn addresses(&self) -> Vec<(SocketAddr, bool)> {
        let mut v: Vec<_> = self.bound.iter().map(|b| (b.actual, b.kind.tls)).collect();
        v.extend(
            self.activated
                .iter()
                .enumerate()
                .map(|(i, (_, a, _))| (*a, self.activated_kind.get(i).is_some_and(|k| k.tls))),
        );
        v
    }

    /// Every socket with its name, for the fd store and for a binary upgrade.
    pub fn named(&self) -> Vec<(String, RawFd)> {
        let mut v = Vec::new();
        for b in &self.bound {
            for (j, s) in b.sockets.iter().enumerate() {
                v.push((own_name(b.configured, j), s.as_raw_fd()));
            }
        }
        for (name, _, s) in &self.activated {
            v.push((name.clone(), s.as_raw_fd()));
        }
        v
    }
}

/// A non-blocking socket of `addr`'s family.
pub(crate) fn stream_socket(addr: SocketAddr) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket creation; the fd is wrapped in OwnedFd immediately.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds `fd` to `addr`.
pub(crate) fn bind(fd: RawFd, addr: SocketAddr) -> io::Result<()> {
    let (sa, len) = sockaddr(addr);
    // SAFETY: `sa` is a properly initialised sockaddr of `len` bytes.
    if unsafe { libc::bind(fd, &sa as *const _ as *const libc::sockaddr, len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A non-blocking SO_REUSEPORT listening socket on `addr`, with TCP_NODELAY for the sockets it
/// accepts (and IPV6_V6ONLY for IPv6).
pub fn listen_socket(addr: SocketAddr) -> io::Result<OwnedFd> {
    let owned = stream_socket(addr)?;
    let fd = owned.as_raw_fd();
    let setopt = |level, name| set_int_opt(fd, level, name, 1);
    setopt(libc::SOL_SOCKET, libc::SO_REUSEADDR)?;
    setopt(libc::SOL_SOCKET, libc::SO_REUSEPORT)?;
    // Accepted sockets inherit it, which saves a setsockopt per connection.
    setopt(libc::IPPROTO_TCP, libc::TCP_NODELAY)?;
    if addr.is_ipv6() {
        setopt(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY)?;
    }
    bind(fd, addr)?;
    // SAFETY: listen on our bound socket; the kernel caps the backlog at net.core.somaxconn.
    if unsafe { libc::listen(fd, 65535) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(owned)
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in, sin) };
            (
                ss,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in6 and suitably aligned.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in6, sin6) };
            (
                ss,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

/// The address a socket is bound to (the real port after binding port 0).
pub fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    // SAFETY: all-zero is a valid sockaddr_storage; getsockname fills at most `len` bytes.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    if unsafe { libc::getsockname(fd, &mut ss as *mut _ as *mut libc::sockaddr, &mut len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    match ss.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for an AF_INET socket.
            let sin = unsafe { *(&ss as *const _ as *const libc::sockaddr_in) };
            let ip = std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Ok(SocketAddr::from((ip, u16::from_be(sin.sin_port))))
        }
        _ => {
            // SAFETY: the kernel wrote a sockaddr_in6 for an AF_INET6 socket.
            let sin6 = unsafe { *(&ss as *const _ as *const libc::sockaddr_in6) };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Ok(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                0,
                sin6.sin6_scope_id,
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(addr: SocketAddr) -> ListenSpec {
        ListenSpec {
            addr,
            proxy_protocol: false,
            tls: false,
        }
    }

    #[test]
    fn names_round_trip() {
        for a in ["127.0.0.1:8080", "[::1]:80", "0.0.0.0:0"] {
            let addr: SocketAddr = a.parse().unwrap();
            let n = own_name(addr, 3);
            assert!(!n.contains(':'), "fd names may not contain ':'");
            assert_eq!(parse_own_name(&n), Some((addr, 3)));
        }
        assert_eq!(parse_own_name("ringstatic.socket"), None);
    }

    #[test]
    fn an_address_is_proxy_protocol_or_not() {
        let mut l = Listeners::default();
        let a: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let proxied = ListenSpec {
            addr: a,
            proxy_protocol: true,
            tls: false,
        };
        let e = l
            .ensure(&[plain(a), proxied], 1, true, &mut Vec::new())
            .err()
            .expect("refused");
        assert!(e.contains("127.0.0.1:0") && e.contains("twice"), "{e}");
        l.ensure(&[proxied, proxied], 2, true, &mut Vec::new())
            .unwrap();
        assert!(l.bound[0].kind.proxy);
        assert!(l.for_worker(1, 2).iter().all(|&(_, k)| k.proxy && !k.tls));
        let tls = ListenSpec {
            tls: true,
            ..plain(a)
        };
        let e = l
            .ensure(&[plain(a), tls], 1, true, &mut Vec::new())
            .err()
            .expect("refused");
        assert!(e.contains("127.0.0.2:0"), "port 0 hint: {e}");
    }

    #[test]
    fn ensure_claims_new_addresses_but_not_its_own_overlapping_ones() {
        // A port found free may be taken again before we bind it (by a client's connection on
        // this busy machine): then try another.
        let mut tries = 0;
        let (one, mut l) = loop {
            let free = listen_socket("127.0.0.1:0".parse().unwrap()).unwrap();
            let port = local_addr(free.as_raw_fd()).unwrap().port();
            drop(free);
            let one: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let wild: SocketAddr = format!("0.0.0.0:{port}").parse().unwrap();
            let mut l = Listeners::default();
            match l.ensure(&[plain(one), plain(wild)], 2, false, &mut Vec::new()) {
                Ok(_) => break (one, l),
                Err(e) if tries < 10 && e.to_lowercase().contains("in use") => {
                    eprintln!("port {port} taken meanwhile, another one: {e}");
                    tries += 1
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(l.bound.len(), 2);
        // A reload adding an address something else listens on fails, and keeps what it had.
        let other = listen_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        let busy = local_addr(other.as_raw_fd()).unwrap();
        let e = l
            .ensure(&[plain(one), plain(busy)], 2, false, &mut Vec::new())
            .err()
            .expect("refused");
        assert!(
            e.contains(&busy.to_string()) && e.contains("already in use"),
            "{e}"
        );
        assert_eq!(l.bound.len(), 2);
        assert!(l.bound.iter().all(|b| b.sockets.len() == 2));
        // Another instance of the same addresses is refused.
        let mut second = Listeners::default();
        assert!(second
            .ensure(&[plain(one)], 1, false, &mut Vec::new())
            .is_err());
        assert!(second.bound.is_empty());
    }

    #[test]
    fn ensure_binds_reuses_and_spreads() {
        let mut l = Listeners::default();
        let a: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let retired = l.ensure(&[plain(a)], 2, true, &mut Vec::new()).unwrap();
        assert!(retired.is_empty());
        assert_eq!(l.bound[0].sockets.len(), 2);
        let port = l.bound[0].actual.port();
        assert_ne!(port, 0);
        // Growing keeps the same port; shrinking keeps every socket, spread over fewer workers.
        l.ensure(&[plain(a)], 3, false, &mut Vec::new()).unwrap();
        assert_eq!(l.bound[0].sockets.len(), 3);
        assert_eq!(l.bound[0].actual.port(), port);
        assert_eq!(l.for_worker(0, 2).len(), 2);
        assert_eq!(l.for_worker(1, 2).len(), 1);
        let retired = l.ensure(&[], 1, true, &mut Vec::new()).unwrap();
        assert_eq!(retired.len(), 1);
        assert!(l.bound.is_empty());
    }
}
