//! Kernel TLS in the loop: a `tls` listener's connection does its handshake in user space
//! (`worker::tls`), then, where the kernel can take its keys (`tls::ktls::probe` at start), the
//! keys move to the kernel and the connection is served as a plain one: bodies leave by
//! sendfile and small responses by one send, encrypted by the kernel, and requests arrive
//! decrypted.
//!
//! The keys move only when nothing of the TLS stream is held in user space:
//! - no ciphertext can be on its way to us: until then the connection's recvs are single-shot
//!   (a multishot recv could have taken the next record into a buffer before the switch), and
//!   once the handshake is done no recv is armed while our records (the handshake's tail, TLS
//!   1.3 session tickets) wait to be sent; the switch follows their send's completion;
//! - every record rustls made has left and no send is in flight;
//! - the bytes read so far end on a record boundary (`tls::ktls::RecordEdge`).
//!
//! After the switch: a recv failing with EIO is a control record (the client's close_notify,
//! or a TLS 1.3 KeyUpdate the kernel cannot follow) and ends the connection as any recv error
//! does; close_notify goes out before our FIN (`close_notify`); no send carries MSG_WAITALL.

use std::io;

use super::send::Flushed;
use super::Worker;
use crate::conn::{KernelTls, Writing};
use crate::metrics::{TLS_FAILED, TLS_KERNEL};
use crate::tls::ktls;
use crate::tls::stream::KernelReady;

/// What became of a connection that wants kernel TLS.
pub(super) enum Handover {
    /// Settled: the kernel has its keys, or it stays in user space for good.
    Done,
    /// Not yet (see `recv_kind` for what to arm meanwhile).
    NotYet,
    /// The keys could not be set and nobody can speak TLS on the socket: closing.
    Closed,
}

/// What `arm_recv` arms for a connection that wants kernel TLS and cannot switch yet.
pub(super) enum WaitingRecv {
    /// Nothing: its records are being sent; the send's completion comes back to `arm_recv`.
    None,
    /// One single-shot recv: the handshake goes on, or part of a record is still to come.
    Single,
}

impl Worker {
    /// Hands the connection's keys to the kernel if it wants that and nothing is held in user
    /// space.
    pub(super) fn kernel_tls(&mut self, slot: u32) -> Handover {
        let Some(support) = self.ktls else {
            return Handover::Done;
        };
        let Some(c) = self.conns.at(slot) else {
            return Handover::Closed;
        };
        if c.ktls != KernelTls::Wanted {
            return Handover::Done;
        }
        let Some(t) = c.tls.as_ref() else {
            c.ktls = KernelTls::No;
            return Handover::Done;
        };
        if c.writing() != Writing::Idle || c.recv_in_flight() {
            return Handover::NotYet;
        }
        match t.kernel_ready(&support) {
            KernelReady::NotYet => return Handover::NotYet,
            KernelReady::Never => {
                c.ktls = KernelTls::No;
                return Handover::Done;
            }
            KernelReady::Ready => {}
        }
        let stream = c.tls.take().expect("checked above");
        match stream.into_kernel(c.fd()) {
            Ok(()) => {
                c.ktls = KernelTls::On;
                self.site.counters.0[TLS_KERNEL] += 1;
                Handover::Done
            }
            Err(_) => {
                // The probe said this kernel takes these keys; a refusal now leaves a socket
                // half-configured, and rustls has given its keys away.
                c.ktls = KernelTls::No;
                self.site.counters.0[TLS_FAILED] += 1;
                self.begin_close(slot);
                Handover::Closed
            }
        }
    }

    /// For `arm_recv`, when `kernel_tls` said not yet.
    pub(super) fn waiting_recv(&mut self, slot: u32) -> WaitingRecv {
        let Some(c) = self.conns.at(slot) else {
            return WaitingRecv::None;
        };
        let handshaking = c.tls_handshaking();
        if !handshaking && (c.writing() != Writing::Idle || c.tls_wants_write()) {
            WaitingRecv::None
        } else {
            WaitingRecv::Single
        }
    }

    /// Sends close_notify on a kernel-TLS connection, once, before its FIN. `Drained` when it
    /// has left (or was left before); otherwise the socket is full (a poll for writability is
    /// in flight) or the connection failed.
    pub(super) fn close_notify(&mut self, slot: u32) -> Flushed {
        let Some(c) = self.conns.at(slot) else {
            return Flushed::Closed;
        };
        if c.ktls != KernelTls::On {
            return Flushed::Drained;
        }
        match ktls::send_close_notify(c.fd()) {
            Ok(()) => {
                c.ktls = KernelTls::Closed;
                Flushed::Drained
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait_writable(slot),
            Err(_) => {
                self.begin_close(slot);
                Flushed::Closed
            }
        }
    }
}
