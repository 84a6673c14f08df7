//! Listeners: one accept in flight per listening socket, and only while the connections held
//! plus what the accepts in flight may still take stay under `--max-connections`, so the limit is
//! exact: at the limit nothing is accepted until a connection closes, and new clients wait in the
//! kernel's listen backlog. A multishot accept (no submission per connection: 15% of the CPU of
//! a `Connection: close` request) is armed while a whole backlog still fits under the limit,
//! since one wakeup may accept every connection waiting there before its completions, or a
//! cancel, are seen; nearer the limit, accepts are single-shot.
//! Accepting also pauses after running out of descriptors; listeners close when a drain begins.

use std::os::fd::RawFd;

use io_uring::cqueue;

use super::Worker;
use crate::config::ListenerKind;
use crate::conn::Conn;
use crate::metrics::{CONN_ACCEPTED, CONN_HANDLED};
use crate::ring::key::{Key, Op};
use crate::ring::op;
use crate::tls::stream::TlsStream;

/// Most connections one wakeup of a multishot accept can take from `listeners` listening
/// sockets: their backlogs (the master asks for 65535; the kernel caps it at
/// net.core.somaxconn, 4096 by default since Linux 5.4). Read at start, before the sandbox.
pub(super) fn accept_room(listeners: usize) -> usize {
    let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(65535);
    somaxconn.min(65535) * listeners
}

/// Most connections a draining worker takes from a listener's backlog before letting it go.
const BACKLOG_SWEEP: usize = 64;

/// How long accepting pauses after EMFILE/ENFILE/ENOBUFS/ENOMEM.
const ACCEPT_BACKOFF_MS: u64 = 500;

pub struct Listener {
    fd: RawFd,
    /// An accept is in flight on it.
    pub armed: bool,
    /// The accept in flight is a multishot one (see `Worker::multishot_ok`).
    multishot: bool,
    closed: bool,
    /// TCP_DEFER_ACCEPT is on: a connection is accepted only once its first bytes are here.
    defers: bool,
    /// What connections start with: a PROXY protocol header (`,proxy-protocol`), a TLS
    /// handshake (`,tls`).
    pub kind: ListenerKind,
}

impl Listener {
    pub fn new(fd: RawFd, kind: ListenerKind) -> Listener {
        // Non-blocking (ours are made so; a socket from systemd may not be), so that
        // `take_backlog`'s accept4 can never wait. The ring's accepts do not care.
        // SAFETY: fcntl on a listening socket this process holds.
        unsafe {
            let fl = libc::fcntl(fd, libc::F_GETFL);
            if fl >= 0 && fl & libc::O_NONBLOCK == 0 {
                libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
            }
        }
        Listener {
            fd,
            armed: false,
            multishot: false,
            closed: false,
            defers: defers_accept(fd),
            kind,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> Option<u16> {
        crate::inherit::local_addr(self.fd).ok().map(|a| a.port())
    }
}

impl Worker {
    /// Whether one more accept may be armed: the connections held plus the accepts already in
    /// flight stay under the limit.
    fn should_accept(&self) -> bool {
        let in_flight = self.listeners.iter().filter(|l| l.armed).count();
        !self.draining
            && self.conns.live() + in_flight < self.cfg.max_connections as usize
            && self.clock.now_ms >= self.accept_resume_ms
    }

    /// Whether a multishot accept may be armed: one wakeup can accept the whole backlog (up to
    /// `ACCEPT_BACKLOG_BOUND` connections per listener) before its completions are seen, so only
    /// while that many more still fit under the limit. Far from the limit (the usual case) a
    /// connection then costs no accept submission of its own; near it, accepts are single-shot
    /// and the limit stays exact.
    fn multishot_ok(&self) -> bool {
        self.conns.live() + self.accept_room < self.cfg.max_connections as usize
    }

    pub(super) fn arm_accept(&mut self, i: usize) {
        let multishot = self.multishot_ok();
        let l = &mut self.listeners[i];
        if l.armed || l.closed {
            return;
        }
        l.armed = true;
        l.multishot = multishot;
        let key = Key::new(Op::Accept, i as u32, 0);
        let sqe = if multishot {
            op::accept_multi(l.fd, key)
        } else {
            op::accept(l.fd, key)
        };
        // SAFETY: an accept points at no memory; the listener's fd stays open while it is armed
        // (`close_listener` waits for its end).
        unsafe { self.ring.push(sqe) };
    }

    pub(super) fn pause_accepting(&mut self) {
        for i in 0..self.listeners.len() {
            if self.listeners[i].armed {
                self.cancel(Key::new(Op::Accept, i as u32, 0));
            }
        }
    }

    pub(super) fn resume_accepting(&mut self) {
        for i in 0..self.listeners.len() {
            if !self.listeners[i].armed && self.should_accept() {
                self.arm_accept(i);
            }
        }
    }

    pub(super) fn on_accept(&mut self, i: usize, res: i32, flags: u32) {
        if i >= self.listeners.len() {
            return;
        }
        if !cqueue::more(flags) {
            self.listeners[i].armed = false;
        }
        if res >= 0 {
            // Also while draining, until the cancelled accept ends: the client has connected and
            // may have sent its request; it gets its answer (with Connection: close), not a reset.
            let (data_waiting, kind) = (self.listeners[i].defers, self.listeners[i].kind);
            self.site.counters.0[CONN_ACCEPTED] += 1;
            if !kind.proxy || self.proxy_peer_allowed(res) {
                self.add_conn(res, data_waiting, kind);
            }
            // Close to the limit: the multishot accept gives way to single-shot ones.
            let l = &self.listeners[i];
            if l.armed && l.multishot && !self.multishot_ok() {
                self.listeners[i].multishot = false;
                self.cancel(Key::new(Op::Accept, i as u32, 0));
            }
        } else {
            match -res {
                libc::ECANCELED | libc::EINTR | libc::EAGAIN | libc::ECONNABORTED => {}
                libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM => {
                    // Out of descriptors or memory: stop accepting for a while instead of spinning;
                    // connections wait in the listen queue meanwhile.
                    eprintln!(
                        "ringstatic: accept: {}; pausing accepts for {ACCEPT_BACKOFF_MS} ms",
                        super::os_error(res)
                    );
                    self.accept_resume_ms = self.clock.now_ms + ACCEPT_BACKOFF_MS;
                    self.pause_accepting();
                }
                _ => eprintln!("ringstatic: accept: {}", super::os_error(res)),
            }
        }
        let l = &self.listeners[i];
        if !l.armed && self.draining && !l.closed {
            self.close_listener(i);
        } else if !l.armed && self.should_accept() {
            self.arm_accept(i);
        }
    }

    pub(super) fn close_listener(&mut self, i: usize) {
        if self.draining {
            self.take_backlog(i);
        }
        let l = &mut self.listeners[i];
        if !l.closed && !l.armed {
            l.closed = true;
            // SAFETY: no accept is in flight on it (armed is false) and the worker owns its copy.
            unsafe { libc::close(l.fd) };
        }
    }

    /// Before a draining worker lets go of a listening socket (which the master and the new
    /// workers keep): accepts what waits in its backlog and answers it. A connection's wakeup may
    /// have gone to this worker's accept (the kernel wakes one waiter of a listening socket) just
    /// as that accept was cancelled; nobody else was woken for it, so without this it would wait
    /// until the next connection woke the new worker (seen: the first request after a reload
    /// hung until the client gave up, 1 in about 150).
    fn take_backlog(&mut self, i: usize) {
        let (fd, kind, defers) = {
            let l = &self.listeners[i];
            if l.closed || l.armed {
                return;
            }
            (l.fd, l.kind, l.defers)
        };
        for _ in 0..BACKLOG_SWEEP {
            // SAFETY: accept4 on our (non-blocking, see `Listener::new`) listening socket, no
            // address wanted; the new fd is ours.
            let c = unsafe {
                libc::accept4(
                    fd,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC,
                )
            };
            if c < 0 {
                return;
            }
            self.site.counters.0[CONN_ACCEPTED] += 1;
            if !kind.proxy || self.proxy_peer_allowed(c) {
                self.add_conn(c, defers, kind);
            }
        }
    }

    /// A new connection. `data_waiting`: the listener defers accepts, so the request's first
    /// bytes are here.
    /// `kind.proxy`: a PROXY protocol header must come first (it then sets the peer's address);
    /// `kind.tls`: then a TLS handshake.
    fn add_conn(&mut self, fd: RawFd, data_waiting: bool, kind: ListenerKind) {
        // TCP_NODELAY is inherited from the listening socket (set by the master).
        let (now, header_ms) = (self.clock.now_ms, self.cfg.header_timeout_ms);
        let proxy = kind.proxy;
        let tls = match (&self.tls_config, kind.tls) {
            (Some(cfg), true) => match TlsStream::new(cfg) {
                Ok(t) => Some(Box::new(t)),
                Err(e) => {
                    eprintln!("ringstatic: TLS connection state: {e}");
                    // SAFETY: the accepted fd is ours and nothing else refers to it yet.
                    unsafe { libc::close(fd) };
                    return;
                }
            },
            _ => None,
        };
        let redirect_https = !kind.tls && self.cfg.redirect_https;
        let peer = if self.site.logs() && !proxy {
            peer_text(fd)
        } else {
            None
        };
        self.site.counters.0[CONN_HANDLED] += 1;
        let slot = self.conns.insert(|gen| {
            let mut c = Conn::new(fd, gen, now, header_ms);
            c.peer = peer;
            if proxy {
                c.proxy = Some(Box::default());
            }
            c.tls = tls;
            c.redirect_https = redirect_https;
            c
        });
        if data_waiting {
            self.first_read(slot);
        } else {
            self.arm_first_recv(slot);
        }
    }

    /// Called when a connection's slot is freed.
    pub(super) fn on_conn_freed(&mut self) {
        self.resume_accepting();
    }

    /// On the tick: accepting resumes once a backoff has passed.
    pub(super) fn accept_tick(&mut self) {
        if self.should_accept() {
            self.resume_accepting();
        }
    }
}

/// Whether a listening socket has TCP_DEFER_ACCEPT on (set by the master, or by a .socket unit's
/// DeferAcceptSec=).
fn defers_accept(fd: RawFd) -> bool {
    crate::inherit::int_opt(fd, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT).is_some_and(|v| v > 0)
}

/// The peer's address as text, for the access log.
pub(super) fn peer_text(fd: RawFd) -> Option<Box<[u8]>> {
    peer_ip(fd).map(|ip| ip.to_string().into_bytes().into_boxed_slice())
}

/// The peer's IP address.
pub(super) fn peer_ip(fd: RawFd) -> Option<std::net::IpAddr> {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getpeername writes at most `len` bytes into `ss`.
    if unsafe { libc::getpeername(fd, &mut ss as *mut _ as *mut libc::sockaddr, &mut len) } < 0 {
        return None;
    }
    let ip: std::net::IpAddr = match ss.ss_family as i32 {
        // SAFETY: the kernel wrote a sockaddr_in for AF_INET.
        libc::AF_INET => std::net::Ipv4Addr::from(
            unsafe { *(&ss as *const _ as *const libc::sockaddr_in) }
                .sin_addr
                .s_addr
                .to_ne_bytes(),
        )
        .into(),
        // SAFETY: the kernel wrote a sockaddr_in6 for AF_INET6.
        libc::AF_INET6 => std::net::Ipv6Addr::from(
            unsafe { *(&ss as *const _ as *const libc::sockaddr_in6) }
                .sin6_addr
                .s6_addr,
        )
        .into(),
        _ => return None,
    };
    Some(ip)
}
