//! Connections on a proxy-protocol listener: the peer must be a trusted proxy, and the first
//! bytes must be a PROXY protocol header (`http::proxy_protocol`), before any of them reach the
//! session as HTTP. The header's client address replaces the peer's for the access log.
//!
//! A header normally arrives whole in the connection's first read (the balancer writes it
//! before the request, and TCP_DEFER_ACCEPT hands the connection over with both); only a header
//! split across reads is copied aside. Until it is complete the header timeout runs from the
//! accept and is never extended, so a peer that sends nothing, or half a header, is closed by it.

use std::os::fd::RawFd;

use super::accept::peer_ip;
use super::site::Site;
use super::Worker;
use crate::config::ServeConfig;
use crate::conn::Conn;
use crate::http::proxy_protocol::{self, Header, V2_MAX};
use crate::metrics::PROXY_REFUSED;
use crate::session::Intake;

/// What a connection's new bytes led to.
pub(super) enum Fed {
    /// Given to the session (after the header, if one just ended).
    Session(Intake),
    /// The header is not complete yet.
    Waiting,
    /// The header is malformed or too long: close without parsing a request.
    Refused,
}

/// Gives newly received bytes to the connection: to its PROXY header while that is pending,
/// then (and otherwise) to its TLS stream if it has one (`worker::tls`), then to its session.
pub(super) fn feed(
    site: &mut Site,
    c: &mut Conn,
    data: &[u8],
    cfg: &ServeConfig,
    clock: &super::clock::Clock,
    draining: bool,
    tls: &mut super::tls::Scratch,
) -> Fed {
    let Some(pending) = c.proxy.as_mut() else {
        return super::tls::feed(site, c, data, cfg, clock, draining, tls);
    };
    // Bytes of a split header held from earlier reads (the header was incomplete without
    // this read, so it ends inside it).
    let held = pending.len();
    let split = held > 0;
    if split {
        pending.extend_from_slice(&data[..data.len().min(V2_MAX + 1)]);
    }
    let verdict = proxy_protocol::parse(if split { pending } else { data });
    match verdict {
        Header::Incomplete => {
            if !split {
                pending.extend_from_slice(data);
            }
            Fed::Waiting
        }
        Header::Invalid(_) => {
            site.counters.0[PROXY_REFUSED + 1] += 1;
            Fed::Refused
        }
        Header::Done { len, source } => {
            c.proxy = None;
            if site.logs() {
                c.peer = match source {
                    Some(a) => Some(a.ip().to_string().into_bytes().into_boxed_slice()),
                    None => super::accept::peer_text(c.fd()),
                };
            }
            // HTTP starts after the header, which ends inside this read (len > held).
            let rest = &data[len.saturating_sub(held).min(data.len())..];
            if rest.is_empty() {
                return Fed::Session(Intake::Open);
            }
            super::tls::feed(site, c, rest, cfg, clock, draining, tls)
        }
    }
}

impl Worker {
    /// A connection accepted on a proxy-protocol listener: whether its peer may send the header.
    /// Refused peers are counted and their socket closed at once (no operation refers to it yet).
    pub(super) fn proxy_peer_allowed(&mut self, fd: RawFd) -> bool {
        if self.cfg.trusted_proxies.is_empty() {
            return true;
        }
        let trusted =
            peer_ip(fd).is_some_and(|ip| self.cfg.trusted_proxies.iter().any(|c| c.contains(ip)));
        if !trusted {
            self.site.counters.0[PROXY_REFUSED] += 1;
            // SAFETY: a socket just accepted, owned by nobody else, with nothing in flight on it.
            unsafe { libc::close(fd) };
        }
        trusted
    }
}
