//! A `tls` listener's connections in the loop: received ciphertext goes through the connection's
//! `TlsStream` before the session sees it, and queued response chunks are sealed into records
//! before they leave through the ring, one send at a time from the stream's own buffer.
//!
//! A handshake is CPU work done right here, in `ingest` (one signature for a full handshake,
//! none for a resumed one); it never waits on anything, so other connections are served between
//! two handshakes as between two requests. Until the handshake is done, the header timeout
//! counted from the accept keeps running: a client that stalls mid-handshake is closed by it.
//!
//! Body bytes are copied into plaintext to be sealed: a mapped small file's through the kernel
//! (`Mapping::copy_to`, never a user-space read of the mapping, which a truncation would turn
//! into SIGBUS), a large file's with pread(2).

use std::os::fd::AsRawFd;

use super::ktls::Handover;
use super::proxy::Fed;
use super::send::Flushed;
use super::site::Site;
use super::Worker;
use crate::config::ServeConfig;
use crate::conn::{Conn, KernelTls};
use crate::files::body::Chunk;
use crate::metrics::{TLS_FAILED, TLS_HANDSHAKES};
use crate::ring::key::{Key, Op};
use crate::tls::stream::{Ingested, SEAL_MAX};

/// The worker's buffers for TLS: plaintext read out of rustls, and response bytes gathered to be
/// sealed. One of each per worker, reused by every connection.
pub struct Scratch {
    read: Box<[u8]>,
    plain: Vec<u8>,
    gather: Vec<u8>,
}

impl Default for Scratch {
    fn default() -> Scratch {
        Scratch {
            read: vec![0u8; 16384].into_boxed_slice(),
            plain: Vec::new(),
            gather: Vec::new(),
        }
    }
}

/// Bytes for the connection past any PROXY header: through its TLS stream, or straight to the
/// session.
pub(super) fn feed(
    site: &mut Site,
    c: &mut Conn,
    data: &[u8],
    cfg: &ServeConfig,
    clock: &super::clock::Clock,
    draining: bool,
    s: &mut Scratch,
) -> Fed {
    let Some(t) = c.tls.as_mut() else {
        return Fed::Session(site.feed(c, data, cfg, clock, draining));
    };
    let was_handshaking = t.is_handshaking();
    s.plain.clear();
    let ingested = t.ingest(data, &mut s.read, &mut s.plain);
    if was_handshaking && !t.is_handshaking() {
        site.counters.0[TLS_HANDSHAKES] += 1;
    }
    match ingested {
        Ingested::Failed(_) => {
            site.counters.0[TLS_FAILED] += 1;
            // The fatal alert rustls queued, if any, sent at once and best effort: the
            // connection closes right after.
            // Not while a send of ours is in flight: the alert would cut into its records.
            let (fd, idle) = (c.fd(), c.writing() == crate::conn::Writing::Idle);
            let alert = c.tls.as_mut().expect("checked above").pending();
            if idle && !alert.is_empty() {
                // SAFETY: send(2) of bytes we own, non-blocking; nothing is kept.
                unsafe {
                    libc::send(
                        fd,
                        alert.as_ptr().cast(),
                        alert.len(),
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    )
                };
            }
            Fed::Refused
        }
        Ingested::Open | Ingested::Closed => {
            let closed = ingested == Ingested::Closed;
            let intake = if s.plain.is_empty() {
                c.session.intake()
            } else {
                site.feed(c, &s.plain, cfg, clock, draining)
            };
            if closed {
                // close_notify: the client's side is done, as with a FIN.
                c.got_eof();
            }
            Fed::Session(intake)
        }
    }
}

impl Worker {
    /// `flush` for a TLS connection: sends what is sealed; seals more of the queued output
    /// when all of it has left.
    pub(super) fn flush_tls(&mut self, slot: u32) -> Flushed {
        let deadline = self.clock.now_ms + self.cfg.send_timeout_ms;
        loop {
            let Some(c) = self.conns.at(slot) else {
                return Flushed::Closed;
            };
            let Some(t) = c.tls.as_mut() else {
                return Flushed::Closed;
            };
            if !t.is_handshaking() {
                // During a handshake the header timeout from the accept keeps running.
                c.sending(deadline);
            }
            let t = c.tls.as_mut().expect("checked above");
            let out = t.pending();
            if !out.is_empty() {
                let (ptr, len) = (out.as_ptr(), out.len().min(u32::MAX as usize) as u32);
                let key = Key::new(Op::Send, slot, c.gen());
                let Some(sqe) = c.start_send_bytes(ptr, len, key) else {
                    return Flushed::InFlight;
                };
                // SAFETY: the send points into the stream's `out`, owned by this boxed Conn's
                // boxed TlsStream, which neither grows nor clears it until `sent` is called from
                // `on_send` (the slot is not freed while a send is in flight).
                unsafe { self.ring.push(sqe) };
                return Flushed::InFlight;
            }
            if c.session.out().is_empty() {
                return Flushed::Drained;
            }
            // Everything sealed has left: the moment the keys may move to the kernel, so that
            // this response already leaves as a plain connection's would.
            if c.ktls == KernelTls::Wanted {
                match self.kernel_tls(slot) {
                    Handover::Done if self.conns.at(slot).is_some_and(|c| c.tls.is_none()) => {
                        return self.flush(slot);
                    }
                    Handover::Closed => return Flushed::Closed,
                    Handover::Done | Handover::NotYet => {}
                }
            }
            let Some(c) = self.conns.at(slot) else {
                return Flushed::Closed;
            };
            // Gather up to SEAL_MAX bytes of the queued chunks as plaintext.
            let g = &mut self.tls_scratch.gather;
            g.clear();
            for ch in c.session.out().iter() {
                if g.len() >= SEAL_MAX {
                    break;
                }
                if copy_plain(ch, g, SEAL_MAX).is_err() {
                    // The file shrank or could not be read: Content-Length is promised, so the
                    // only honest end is to close.
                    return self.fail_tls(slot);
                }
            }
            let t = c.tls.as_mut().expect("checked above");
            let taken = t.seal(g);
            if taken == 0 {
                return self.fail_tls(slot);
            }
            c.session.consume(taken as u64);
        }
    }

    fn fail_tls(&mut self, slot: u32) -> Flushed {
        self.begin_close(slot);
        Flushed::Closed
    }
}

/// Appends the chunk's remaining bytes to `dst`, up to `max` in all.
fn copy_plain(ch: &Chunk, dst: &mut Vec<u8>, max: usize) -> std::io::Result<()> {
    let room = max - dst.len();
    match ch {
        Chunk::Owned { buf, pos } => {
            let b = &buf[*pos..];
            dst.extend_from_slice(&b[..b.len().min(room)]);
        }
        Chunk::Shared { buf, pos, end } => {
            let b = &buf[*pos..*end];
            dst.extend_from_slice(&b[..b.len().min(room)]);
        }
        Chunk::Mapped { map, pos, end } => {
            let n = (end - pos).min(room);
            map.copy_to(*pos, n, dst)?;
        }
        Chunk::File { fd, offset, end } => {
            // The chunk's `Rc` keeps the fd open.
            let n = ((end - offset) as usize).min(room);
            crate::files::open::read_at_into(fd.as_raw_fd(), *offset, n, dst)?;
        }
    }
    Ok(())
}
