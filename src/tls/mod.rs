//! HTTPS: rustls, sans-I/O, inside the worker's loop. Ciphertext arrives in the ring's receive
//! buffers and leaves through the ring's sends; rustls only turns one into the other in our own
//! buffers, so a handshake or a record costs CPU in the loop and never a blocked thread.
//!
//! - `certs`   the `--tls-cert`/`--tls-key` pairs: read, checked, picked by SNI
//! - `x509`    the few facts read from a certificate: validity and names
//! - `tickets` session tickets whose keys every worker derives from the master's secret
//! - `stream`  one connection's TLS state: ciphertext in, plaintext out, and back
//! - `ktls`    kernel TLS: the record keys handed to the kernel after the handshake
//!
//! Session resumption across workers: the master makes a random secret once (kept in a memfd,
//! never on disk) and every worker derives the same ticket keys from it, one per period, so a
//! ticket issued by one worker resumes on any other, and over reloads.

pub mod certs;
pub mod ktls;
pub mod stream;
pub mod tickets;
pub mod x509;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use rustls::ServerConfig;

use crate::config::Cli;

/// How long a ticket key is the current one; tickets of the previous period are still accepted.
pub const TICKET_PERIOD_SECS: u64 = 12 * 3600;

const NO_CERTIFICATE: &str = "a `tls` listener needs a certificate: --tls-cert PATH --tls-key PATH";

/// Whether any listener of this configuration speaks TLS.
pub fn wanted(cli: &Cli) -> bool {
    cli.listen.iter().any(|l| l.tls)
}

/// Checks the TLS settings as the master does before starting (or reloading) workers and as
/// `-t` does: a `tls` listener has certificates, and every pair reads and checks. Returns the
/// warnings to print.
pub fn check(cli: &Cli) -> Result<Vec<String>, String> {
    if !wanted(cli) {
        let mut w = Vec::new();
        if cli.redirect_https {
            w.push(
                "--redirect-https without a `tls` listener: redirects name https on port 443"
                    .into(),
            );
        }
        if cli.tls_cert.is_empty() && cli.tls_key.is_empty() {
            return Ok(w);
        }
        let (_, warnings) = certs::load(&cli.tls_cert, &cli.tls_key, now_secs())?;
        w.extend(warnings);
        w.push("--tls-cert is given but no --listen has `,tls`: no HTTPS is served".into());
        return Ok(w);
    }
    if cli.tls_cert.is_empty() {
        return Err(NO_CERTIFICATE.to_string());
    }
    let (_, warnings) = certs::load(&cli.tls_cert, &cli.tls_key, now_secs())?;
    Ok(warnings)
}

/// The rustls configuration a worker serves with: TLS 1.3 and 1.2 with the ring provider's
/// default suites, ALPN `http/1.1`, the certificates by SNI, tickets from `secret`.
pub fn server_config(cli: &Cli, secret: Option<[u8; 32]>) -> Result<Arc<ServerConfig>, String> {
    let (pairs, _) = certs::load(&cli.tls_cert, &cli.tls_key, now_secs())?;
    if pairs.is_empty() {
        return Err(NO_CERTIFICATE.into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut c = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(certs::BySni::new(&pairs)));
    // Room for h2 later: it goes before http/1.1 here once the worker speaks it.
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    if let Some(s) = secret {
        c.ticketer = Arc::new(tickets::Ticketer::new(s, TICKET_PERIOD_SECS));
    }
    // One ticket per full TLS 1.3 handshake (rustls's default is two, OpenSSL's too): an HTTP/1.1
    // client resumes one connection at a time and gets a fresh ticket with each resumption.
    c.send_tls13_tickets = 1;
    // Kernel TLS (`ktls`) takes the record keys out of rustls once a handshake is done.
    c.enable_secret_extraction = cli.ktls == crate::config::KernelTlsMode::Auto;
    Ok(Arc::new(c))
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The master's side: a new random ticket secret in a sealed memfd, passed to every worker.
pub fn ticket_secret_memfd() -> io::Result<OwnedFd> {
    let secret = tickets::new_secret()?;
    // SAFETY: memfd_create with a NUL-terminated name; the result is checked.
    let fd = unsafe {
        libc::memfd_create(
            c"ringstatic-tickets".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: writes 32 bytes from a live array.
    let n = unsafe { libc::pwrite(fd.as_raw_fd(), secret.as_ptr().cast(), secret.len(), 0) };
    if n != secret.len() as isize {
        return Err(io::Error::other("short write of the ticket secret"));
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our fd.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// A worker's side: reads the secret from the master's memfd.
pub fn read_ticket_secret(fd: RawFd) -> io::Result<[u8; 32]> {
    let mut s = [0u8; 32];
    // SAFETY: reads at most 32 bytes into a live array.
    let n = unsafe { libc::pread(fd, s.as_mut_ptr().cast(), s.len(), 0) };
    if n != s.len() as isize {
        return Err(if n < 0 {
            io::Error::last_os_error()
        } else {
            io::Error::other("short ticket secret")
        });
    }
    Ok(s)
}
