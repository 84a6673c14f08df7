//! One connection's TLS: a rustls `ServerConnection` and the ciphertext on its way out.
//!
//! Received ciphertext goes in (`ingest`), the plaintext it carried comes out into the worker's
//! buffer for the session; response bytes go in (`seal`), records come out (`pending`) into
//! `out`, which a send through the ring points at until its completion (`sent`). rustls never
//! touches a socket.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection};

/// Most response bytes sealed into records before they are sent: four full records, so a large
/// body leaves in sends of about 64 KiB and other connections run between them.
pub const SEAL_MAX: usize = 4 * 16384;

/// Room for what one seal makes: `SEAL_MAX` bytes in records of 16 KiB, each with its header,
/// tag and content type (29 bytes at most), and a handshake flight or tickets besides.
const OUT_ROOM: usize = SEAL_MAX + 4096;

pub struct TlsStream {
    conn: ServerConnection,
    /// Ciphertext to send: `out[sent..]`. While a send is in flight it points into this buffer,
    /// which is then neither grown nor cleared (see `pending`).
    out: Vec<u8>,
    sent: usize,
    /// close_notify has been queued.
    closed: bool,
}

/// What a client's bytes led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Ingested {
    /// Plaintext (possibly none) was appended; more may come.
    Open,
    /// The client sent close_notify: nothing more will come.
    Closed,
    /// The client broke the protocol (garbage instead of a ClientHello, a bad record, a
    /// failed handshake): a fatal alert is queued if there is one to send; then close.
    Failed(String),
}

impl TlsStream {
    pub fn new(cfg: &Arc<ServerConfig>) -> Result<TlsStream, rustls::Error> {
        Ok(TlsStream {
            conn: ServerConnection::new(cfg.clone())?,
            out: Vec::new(),
            sent: 0,
            closed: false,
        })
    }

    /// Takes received ciphertext and appends the plaintext it carried to `plain` (read through
    /// `scratch`, a worker-wide buffer).
    pub fn ingest(&mut self, mut data: &[u8], scratch: &mut [u8], plain: &mut Vec<u8>) -> Ingested {
        let mut closed = false;
        while !data.is_empty() {
            match self.conn.read_tls(&mut data) {
                Ok(_) => {}
                Err(e) => return Ingested::Failed(e.to_string()),
            }
            let state = match self.conn.process_new_packets() {
                Ok(s) => s,
                Err(e) => return Ingested::Failed(e.to_string()),
            };
            if state.plaintext_bytes_to_read() > 0 {
                let mut r = self.conn.reader();
                loop {
                    match r.read(scratch) {
                        Ok(0) => break,
                        Ok(n) => plain.extend_from_slice(&scratch[..n]),
                        // WouldBlock: all of it was read.
                        Err(_) => break,
                    }
                }
            }
            closed |= state.peer_has_closed();
        }
        if closed {
            Ingested::Closed
        } else {
            Ingested::Open
        }
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether there is ciphertext to send (already in `out`, or still in rustls).
    pub fn wants_write(&self) -> bool {
        self.sent < self.out.len() || self.conn.wants_write()
    }

    /// Seals up to `SEAL_MAX` response bytes into records; returns how many were taken.
    pub fn seal(&mut self, plain: &[u8]) -> usize {
        self.conn.writer().write(plain).unwrap_or(0)
    }

    /// Queues close_notify (once): the last record before our FIN.
    pub fn close_notify(&mut self) {
        if !self.closed {
            self.closed = true;
            self.conn.send_close_notify();
        }
    }

    pub fn close_notify_queued(&self) -> bool {
        self.closed
    }

    /// The ciphertext to send next. Only when the previous bytes have all left (no send points
    /// into `out` any more) are rustls's new records moved in.
    pub fn pending(&mut self) -> &[u8] {
        if self.sent == self.out.len() {
            // Kept while the connection is busy (made once, at its full size, so that moving
            // rustls's records in never reallocates and copies them again); freed by `idle`.
            self.out.clear();
            self.out.reserve(OUT_ROOM);
            self.sent = 0;
            while self.conn.wants_write() {
                match self.conn.write_tls(&mut self.out) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
        &self.out[self.sent..]
    }

    /// `n` bytes of `pending()` left.
    pub fn sent(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.out.len());
    }

    /// Frees the send buffer of an idle connection.
    pub fn idle(&mut self) {
        if self.sent == self.out.len() {
            self.out = Vec::new();
            self.sent = 0;
        }
    }

    /// The negotiated protocol version and suite, for logs and tests.
    pub fn describe(&self) -> String {
        format!(
            "{:?} {:?}",
            self.conn.protocol_version(),
            self.conn.negotiated_cipher_suite().map(|s| s.suite())
        )
    }
}
