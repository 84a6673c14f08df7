//! Kernel TLS: after a handshake done in user space by rustls, the record keys go to the kernel
//! (`TCP_ULP "tls"`, then `TLS_TX` and `TLS_RX`), and from then on the socket is used as a plain
//! one: `send`, `sendfile` and `splice` write plaintext that the kernel encrypts into records, and
//! `recv` returns decrypted application data. Large bodies keep leaving by sendfile, with no copy
//! through user space and no user-space encryption.
//!
//! Both directions or neither: once the keys leave rustls (`dangerous_extract_secrets` consumes
//! the connection) nothing in user space can encrypt or decrypt that connection any more. So
//! `probe` checks `TLS_TX` and `TLS_RX` together, per protocol version and cipher, and a worker
//! hands a connection to the kernel only for a pair `Support::covers` says works; any other one
//! stays in user space. `enable` failing half-way (TX set, RX refused) leaves a socket nobody can
//! speak TLS on: the caller closes it.
//!
//! What the worker must do on a kTLS socket:
//! - **Receiving a control record**: with `TLS_RX`, a recv that meets a record that is not
//!   application data (an alert, such as the client's close_notify, or a TLS 1.3 KeyUpdate)
//!   fails with `EIO` when the call has no room for the record-type cmsg (a plain `recv`, the
//!   ring's recv). The worker treats `EIO` as the end of the connection: a close_notify is
//!   exactly that, and a KeyUpdate cannot be followed, since this interface (kernel 6.1) has no
//!   way to give the kernel new receive keys; closing is the one honest answer (the client
//!   reconnects). Application data before that record is returned first, as usual.
//! - **Sending close_notify**: `send_close_notify`, a sendmsg whose `TLS_SET_RECORD_TYPE` cmsg
//!   makes the 2-byte payload (level 1 warning, description 0) an alert record (type 21). It
//!   also pushes any record still open from a `MSG_MORE` send.
//! - **Flags**: the kernel's TLS sendmsg refuses every flag but `MSG_MORE`, `MSG_DONTWAIT` and
//!   `MSG_NOSIGNAL` (`EOPNOTSUPP`), so no `MSG_WAITALL`; and `MSG_MORE` keeps the record open
//!   until more bytes or a push, so the last bytes of a response never leave with it alone.
//! - **Nothing of the TLS stream may be held in user space when the keys move**: every record
//!   rustls produced has left, no send is in flight, and every byte read from the socket has been
//!   given to rustls as whole records (the kernel decrypts only what is still in the socket).

use std::io;
use std::mem;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};

use rustls::{CipherSuite, ConnectionTrafficSecrets, ExtractedSecrets, ProtocolVersion};

/// TLS record content type of an alert.
const RECORD_ALERT: u8 = 21;
/// An alert's payload: level 1 (warning), description 0 (close_notify).
const CLOSE_NOTIFY: [u8; 2] = [1, 0];

/// The bulk ciphers the kernel is given keys for (the three rustls negotiates).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20Poly1305,
}

impl Cipher {
    const ALL: [Cipher; 3] = [
        Cipher::Aes128Gcm,
        Cipher::Aes256Gcm,
        Cipher::Chacha20Poly1305,
    ];

    /// The bulk cipher of a negotiated suite; `None` for one the kernel is never given.
    pub fn of_suite(suite: CipherSuite) -> Option<Cipher> {
        use CipherSuite::*;
        match suite {
            TLS13_AES_128_GCM_SHA256
            | TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => Some(Cipher::Aes128Gcm),
            TLS13_AES_256_GCM_SHA384
            | TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            | TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => Some(Cipher::Aes256Gcm),
            TLS13_CHACHA20_POLY1305_SHA256
            | TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            | TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => Some(Cipher::Chacha20Poly1305),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cipher::Aes128Gcm => "AES-128-GCM",
            Cipher::Aes256Gcm => "AES-256-GCM",
            Cipher::Chacha20Poly1305 => "CHACHA20-POLY1305",
        }
    }
}

/// Which (version, cipher) pairs this kernel takes in both directions, from `probe`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Support {
    /// One bit per pair: `bit(version, cipher)`.
    bits: u8,
}

fn bit(v13: bool, cipher: Cipher) -> u8 {
    let c = match cipher {
        Cipher::Aes128Gcm => 0,
        Cipher::Aes256Gcm => 1,
        Cipher::Chacha20Poly1305 => 2,
    };
    1 << (c + if v13 { 3 } else { 0 })
}

impl Support {
    /// Whether a connection of this version and suite can be handed to the kernel.
    pub fn covers(&self, version: ProtocolVersion, suite: CipherSuite) -> bool {
        let v13 = match version {
            ProtocolVersion::TLSv1_3 => true,
            ProtocolVersion::TLSv1_2 => false,
            _ => return false,
        };
        Cipher::of_suite(suite).is_some_and(|c| self.bits & bit(v13, c) != 0)
    }

    /// A short list of what is missing, for the start line ("" when everything is covered).
    pub fn gaps(&self) -> String {
        let mut out = Vec::new();
        for v13 in [true, false] {
            for c in Cipher::ALL {
                if self.bits & bit(v13, c) == 0 {
                    out.push(format!("TLS 1.{} {}", if v13 { 3 } else { 2 }, c.name()));
                }
            }
        }
        out.join(", ")
    }
}

/// Whether this kernel can take over TLS records: TX and RX, for each version and cipher.
/// `Err` is the one-line reason when it cannot at all (no `tls` upper-layer protocol, or not
/// even TLS 1.3 AES-128-GCM in both directions); `Ok` lists the pairs that work.
///
/// It makes connected loopback TCP pairs (each socket takes one set of keys) and sets dummy
/// keys on them; nothing is ever sent on them.
pub fn probe() -> Result<Support, String> {
    let mut support = Support::default();
    let mut first_refusal = None;
    for c in Cipher::ALL {
        let (a, b) = loopback_pair()
            .map_err(|e| format!("could not make a loopback TCP pair to probe it: {e}"))?;
        for (sock, v13) in [(&a, true), (&b, false)] {
            match probe_one(sock.as_raw_fd(), v13, c) {
                Ok(()) => support.bits |= bit(v13, c),
                Err(Refused::Ulp(e)) => return Err(ulp_reason(&e)),
                Err(Refused::Keys(why)) => {
                    first_refusal.get_or_insert(why);
                }
            }
        }
    }
    if support.bits & bit(true, Cipher::Aes128Gcm) == 0 {
        return Err(first_refusal.unwrap_or_else(|| "refused TLS 1.3 AES-128-GCM".into()));
    }
    Ok(support)
}

enum Refused {
    /// `TCP_ULP "tls"` itself.
    Ulp(io::Error),
    /// The keys of one direction.
    Keys(String),
}

fn probe_one(fd: RawFd, v13: bool, cipher: Cipher) -> Result<(), Refused> {
    set_ulp(fd).map_err(Refused::Ulp)?;
    let version = if v13 { "1.3" } else { "1.2" };
    let info = CryptoInfo::dummy(v13, cipher);
    let tx = set_keys(fd, libc::TLS_TX, &info);
    let rx = tx.as_ref().ok().map(|_| set_keys(fd, libc::TLS_RX, &info));
    match (tx, rx) {
        (Err(e), _) => Err(Refused::Keys(format!(
            "the kernel refused TLS_TX for TLS {version} {}: {e}",
            cipher.name()
        ))),
        (Ok(()), Some(Err(e))) => Err(Refused::Keys(format!(
            "the kernel encrypts (TLS_TX) but refused TLS_RX for TLS {version} {}: {e}; \
             both directions are needed, since user space can no longer decrypt once the keys \
             are handed over",
            cipher.name()
        ))),
        _ => Ok(()),
    }
}

fn ulp_reason(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOENT) => "no `tls` module in this kernel: built without CONFIG_TLS, or the \
                               module is missing or could not be loaded"
            .into(),
        _ => format!("setsockopt TCP_ULP \"tls\" failed: {e}"),
    }
}

/// A connected TCP pair on 127.0.0.1 (the listener is closed again at once).
fn loopback_pair() -> io::Result<(TcpStream, TcpStream)> {
    let l = TcpListener::bind(("127.0.0.1", 0))?;
    let a = TcpStream::connect(l.local_addr()?)?;
    let (b, _) = l.accept()?;
    Ok((a, b))
}

/// Hands the record keys of a finished handshake to the kernel: `TCP_ULP "tls"`, then `TLS_TX`
/// and `TLS_RX`. `version` is the negotiated one (`ServerConnection::protocol_version`, read
/// before the secrets are extracted: they do not say it, and the nonce layout depends on it).
///
/// On `Err` the socket may be half-configured and nothing can speak TLS on it any more: close
/// it. Call it only for a pair `Support::covers`, with nothing of the TLS stream held in user
/// space (see the module's notes).
pub fn enable(fd: RawFd, version: ProtocolVersion, secrets: ExtractedSecrets) -> io::Result<()> {
    let v13 = match version {
        ProtocolVersion::TLSv1_3 => true,
        ProtocolVersion::TLSv1_2 => false,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("kernel TLS: protocol version {other:?} is not TLS 1.2 or 1.3"),
            ))
        }
    };
    let ExtractedSecrets {
        tx: (tx_seq, tx),
        rx: (rx_seq, rx),
    } = secrets;
    // Both are wiped when dropped, whatever happens here.
    let tx = CryptoInfo::new(v13, tx_seq, &tx)?;
    let rx = CryptoInfo::new(v13, rx_seq, &rx)?;
    set_ulp(fd)?;
    set_keys(fd, libc::TLS_TX, &tx)?;
    set_keys(fd, libc::TLS_RX, &rx)
}

/// Follows received ciphertext across TLS record headers (type, version, 16-bit length), to
/// tell whether the bytes read so far end exactly where a record ends: then rustls holds no
/// partial record, and what is still in the socket starts with a whole one the kernel can take.
#[derive(Clone, Copy, Debug, Default)]
pub struct RecordEdge {
    /// Bytes of the current record's 5-byte header seen so far (0 between records).
    header: [u8; 5],
    have: u8,
    /// Bytes of the current record's body still to come.
    body_left: usize,
}

impl RecordEdge {
    pub fn advance(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(data.len());
                self.body_left -= n;
                data = &data[n..];
                continue;
            }
            let have = self.have as usize;
            let n = (5 - have).min(data.len());
            self.header[have..have + n].copy_from_slice(&data[..n]);
            self.have += n as u8;
            data = &data[n..];
            if self.have == 5 {
                self.have = 0;
                self.body_left = u16::from_be_bytes([self.header[3], self.header[4]]) as usize;
            }
        }
    }

    pub fn at_boundary(&self) -> bool {
        self.have == 0 && self.body_left == 0
    }
}

/// Sends a close_notify alert on a kTLS socket: one sendmsg whose cmsg sets the record type to
/// alert. Non-blocking: `WouldBlock` when the socket buffer is full (wait for POLLOUT and call
/// it again). Any record left open by a `MSG_MORE` send is pushed first by the kernel.
pub fn send_close_notify(fd: RawFd) -> io::Result<()> {
    // CMSG_SPACE(1) fits easily; u64 words keep the buffer aligned for cmsghdr.
    let mut control = [0u64; 4];
    let mut iov = libc::iovec {
        iov_base: CLOSE_NOTIFY.as_ptr() as *mut libc::c_void,
        iov_len: CLOSE_NOTIFY.len(),
    };
    // SAFETY: msghdr is a plain C struct for which all-zero is a valid (empty) value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(1) } as _;
    // SAFETY: msg_control points at `control`, at least CMSG_SPACE(1) bytes and aligned, so the
    // first header and its one data byte lie inside it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_TLS;
        (*cmsg).cmsg_type = libc::TLS_SET_RECORD_TYPE;
        (*cmsg).cmsg_len = libc::CMSG_LEN(1) as _;
        *libc::CMSG_DATA(cmsg) = RECORD_ALERT;
    }
    // SAFETY: msg points at `iov` (CLOSE_NOTIFY, static) and `control`, alive for the call; the
    // kernel keeps no pointer after it returns.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    match n {
        n if n < 0 => Err(io::Error::last_os_error()),
        2 => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "close_notify: the kernel took part of a 2-byte alert",
        )),
    }
}

/// Whether a recv's error on a kTLS socket means "a control record arrived" (see the module's
/// notes): the connection ends there.
pub fn is_control_record(errno: i32) -> bool {
    errno == libc::EIO
}

fn set_ulp(fd: RawFd) -> io::Result<()> {
    const NAME: &[u8] = b"tls";
    // SAFETY: the option value is NAME's bytes with their exact length; the kernel copies them.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_ULP,
            NAME.as_ptr().cast(),
            NAME.len() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn set_keys(fd: RawFd, direction: libc::c_int, info: &CryptoInfo) -> io::Result<()> {
    let (ptr, len) = info.as_raw();
    // SAFETY: ptr/len describe the whole crypto_info struct inside `info`, alive for the call;
    // the kernel copies it.
    let r = unsafe { libc::setsockopt(fd, libc::SOL_TLS, direction, ptr, len) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The kernel's `tls12_crypto_info_*` for one direction (the name says 1.2; `info.version`
/// says which version it is).
enum CryptoInfo {
    Aes128(libc::tls12_crypto_info_aes_gcm_128),
    Aes256(libc::tls12_crypto_info_aes_gcm_256),
    Chacha(libc::tls12_crypto_info_chacha20_poly1305),
}

impl CryptoInfo {
    /// From one direction's secrets.
    fn new(v13: bool, seq: u64, secrets: &ConnectionTrafficSecrets) -> io::Result<CryptoInfo> {
        let (cipher, key, iv) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (Cipher::Aes128Gcm, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (Cipher::Aes256Gcm, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (Cipher::Chacha20Poly1305, key, iv)
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "kernel TLS: a cipher this module does not know",
                ))
            }
        };
        Ok(CryptoInfo::from_parts(
            v13,
            seq,
            cipher,
            key.as_ref(),
            iv.as_ref(),
        ))
    }

    /// Keys of zeroes, for `probe`.
    fn dummy(v13: bool, cipher: Cipher) -> CryptoInfo {
        CryptoInfo::from_parts(v13, 0, cipher, &[0; 32], &[0; 12])
    }

    /// AES-GCM: rustls's 12-byte IV is the kernel's 4-byte salt and 8-byte iv. In TLS 1.3 the
    /// kernel XORs the record sequence into salt||iv, as rustls does; in TLS 1.2 salt is the
    /// implicit part and iv the first explicit nonce, counted up per record (any unique value
    /// is correct there: the explicit nonce travels in the record). ChaCha20-Poly1305 (both
    /// versions): the whole 12 bytes are the iv, XORed with the sequence, no salt. `rec_seq` is
    /// the next record's sequence number, big-endian. `key` may be longer than the cipher's
    /// key (the dummy's): its first bytes are used.
    fn from_parts(v13: bool, seq: u64, cipher: Cipher, key: &[u8], iv: &[u8]) -> CryptoInfo {
        fn bytes<const N: usize>(from: &[u8]) -> [u8; N] {
            let mut out = [0; N];
            out.copy_from_slice(&from[..N]);
            out
        }
        let version = if v13 {
            libc::TLS_1_3_VERSION
        } else {
            libc::TLS_1_2_VERSION
        };
        let rec_seq = seq.to_be_bytes();
        match cipher {
            Cipher::Aes128Gcm => CryptoInfo::Aes128(libc::tls12_crypto_info_aes_gcm_128 {
                info: libc::tls_crypto_info {
                    version,
                    cipher_type: libc::TLS_CIPHER_AES_GCM_128,
                },
                iv: bytes(&iv[4..]),
                key: bytes(key),
                salt: bytes(iv),
                rec_seq,
            }),
            Cipher::Aes256Gcm => CryptoInfo::Aes256(libc::tls12_crypto_info_aes_gcm_256 {
                info: libc::tls_crypto_info {
                    version,
                    cipher_type: libc::TLS_CIPHER_AES_GCM_256,
                },
                iv: bytes(&iv[4..]),
                key: bytes(key),
                salt: bytes(iv),
                rec_seq,
            }),
            Cipher::Chacha20Poly1305 => {
                CryptoInfo::Chacha(libc::tls12_crypto_info_chacha20_poly1305 {
                    info: libc::tls_crypto_info {
                        version,
                        cipher_type: libc::TLS_CIPHER_CHACHA20_POLY1305,
                    },
                    iv: bytes(iv),
                    key: bytes(key),
                    salt: [],
                    rec_seq,
                })
            }
        }
    }

    fn as_raw(&self) -> (*const libc::c_void, libc::socklen_t) {
        fn raw<T>(t: &T) -> (*const libc::c_void, libc::socklen_t) {
            (
                (t as *const T).cast(),
                mem::size_of::<T>() as libc::socklen_t,
            )
        }
        match self {
            CryptoInfo::Aes128(i) => raw(i),
            CryptoInfo::Aes256(i) => raw(i),
            CryptoInfo::Chacha(i) => raw(i),
        }
    }
}

impl Drop for CryptoInfo {
    /// Overwrites the keys: the kernel has its own copy.
    fn drop(&mut self) {
        fn zero<T>(t: &mut T) {
            // SAFETY: `t` is a valid, exclusive reference to a plain C struct of byte arrays and
            // integers, for which all-zero is a valid value; volatile so the write is kept.
            unsafe { std::ptr::write_volatile(t, mem::zeroed()) }
        }
        match self {
            CryptoInfo::Aes128(i) => zero(i),
            CryptoInfo::Aes256(i) => zero(i),
            CryptoInfo::Chacha(i) => zero(i),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Real handshakes (rustls on both ends, in memory), then the server's keys go to the kernel
    //! on a real loopback socket and the client, still rustls, talks to the kernel through it.
    //! Where the kernel has no kTLS these say `skipped` loudly; the layout tests run everywhere.

    use super::*;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::ring::{cipher_suite, default_provider};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
    use rustls::server::{ClientHello, ResolvesServerCert};
    use rustls::sign::CertifiedKey;
    use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, ServerConfig};
    use rustls::{ServerConnection, SignatureScheme, SupportedCipherSuite};
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::time::Duration;

    fn supported() -> Option<Support> {
        match probe() {
            Ok(s) => Some(s),
            Err(why) => {
                eprintln!("skipped: kernel has no kTLS ({why})");
                None
            }
        }
    }

    /// The client does not check who it talks to: these tests are about records, not trust.
    #[derive(Debug)]
    struct AnyServer;

    impl ServerCertVerifier for AnyServer {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            vec![SignatureScheme::ED25519]
        }
    }

    /// A fresh Ed25519 key; the "certificate" is never parsed by anyone here.
    #[derive(Debug)]
    struct OneKey(Arc<CertifiedKey>);

    impl ResolvesServerCert for OneKey {
        fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            Some(self.0.clone())
        }
    }

    fn server_config() -> Arc<ServerConfig> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
        let der = PrivateKeyDer::Pkcs8(pkcs8.as_ref().to_vec().into());
        let key = rustls::crypto::ring::sign::any_supported_type(&der).expect("signing key");
        let cert = CertificateDer::from(b"test certificate".to_vec());
        let mut cfg = ServerConfig::builder_with_provider(Arc::new(default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(OneKey(Arc::new(CertifiedKey::new(
                vec![cert],
                key,
            )))));
        cfg.enable_secret_extraction = true;
        Arc::new(cfg)
    }

    fn client_config(suite: SupportedCipherSuite) -> Arc<ClientConfig> {
        let provider = rustls::crypto::CryptoProvider {
            cipher_suites: vec![suite],
            ..default_provider()
        };
        let cfg = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer))
            .with_no_client_auth();
        Arc::new(cfg)
    }

    /// Moves everything `from` wants to send into `to`.
    fn deliver(from: &mut dyn FnMut(&mut Vec<u8>) -> bool, to: &mut rustls::Connection) {
        let mut buf = Vec::new();
        while from(&mut buf) {}
        let mut rd = &buf[..];
        while !rd.is_empty() {
            to.read_tls(&mut rd).expect("read_tls");
            to.process_new_packets().expect("handshake");
        }
    }

    /// A finished handshake, done in memory, with every byte the server produced (TLS 1.3
    /// tickets too) already at the client: the state the worker hands keys over in.
    fn handshake(suite: SupportedCipherSuite) -> (ClientConnection, ServerConnection) {
        let name = ServerName::try_from("localhost").expect("name");
        let mut client = rustls::Connection::Client(
            ClientConnection::new(client_config(suite), name).expect("client"),
        );
        let mut server =
            rustls::Connection::Server(ServerConnection::new(server_config()).expect("server"));
        for _ in 0..10 {
            deliver(
                &mut |b| client.wants_write() && client.write_tls(b).expect("write") > 0,
                &mut server,
            );
            deliver(
                &mut |b| server.wants_write() && server.write_tls(b).expect("write") > 0,
                &mut client,
            );
            if !client.is_handshaking() && !server.is_handshaking() && !server.wants_write() {
                break;
            }
        }
        match (client, server) {
            (rustls::Connection::Client(c), rustls::Connection::Server(s)) => (c, s),
            _ => unreachable!("built as such"),
        }
    }

    /// Reads from the socket through rustls until close_notify (Ok(0)) or an error.
    fn read_all(tls: &mut ClientConnection, sock: &mut TcpStream) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut buf = vec![0; 64 << 10];
        loop {
            match tls.reader().read(&mut buf) {
                Ok(0) => return (out, true),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match tls.read_tls(sock) {
                        Ok(0) | Err(_) => return (out, false),
                        Ok(_) => {}
                    }
                    if tls.process_new_packets().is_err() {
                        return (out, false);
                    }
                }
                Err(_) => return (out, false),
            }
        }
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[3] ^ seed)
            .collect()
    }

    /// Bytes, a file by sendfile, requests from the client, and close_notify both ways, for one
    /// version and suite.
    fn round_trip(support: Support, suite: SupportedCipherSuite) {
        let (mut client, server) = handshake(suite);
        let version = server.protocol_version().expect("version");
        let negotiated = server.negotiated_cipher_suite().expect("suite").suite();
        assert_eq!(negotiated, suite.suite());
        if !support.covers(version, negotiated) {
            eprintln!("skipped: kernel kTLS lacks {version:?} {negotiated:?}");
            return;
        }
        let (mut csock, mut ssock) = loopback_pair().expect("pair");
        for s in [&csock, &ssock] {
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
        }
        let secrets = server.dangerous_extract_secrets().expect("secrets");
        enable(ssock.as_raw_fd(), version, secrets).expect("enable kTLS");

        let dir = std::env::temp_dir().join(format!("ringstatic-ktls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{negotiated:?}"));
        let body = pattern((1 << 20) + 12345, 7);
        std::fs::write(&path, &body).unwrap();
        let head = pattern(40_000, 1);
        let mut expected = head.clone();
        expected.extend_from_slice(&body[1000..]);

        let reader = std::thread::spawn(move || {
            client
                .writer()
                .write_all(b"GET / HTTP/1.1\r\n\r\n")
                .unwrap();
            client.write_tls(&mut csock).unwrap();
            let got = read_all(&mut client, &mut csock);
            client.send_close_notify();
            while client.wants_write() {
                client.write_tls(&mut csock).unwrap();
            }
            got
        });

        let mut req = [0u8; 64];
        let n = ssock.read(&mut req).expect("kernel-decrypted request");
        assert_eq!(&req[..n], b"GET / HTTP/1.1\r\n\r\n");
        ssock.write_all(&head).expect("send through kTLS");
        let file = std::fs::File::open(&path).unwrap();
        let mut off: libc::off_t = 1000;
        while (off as usize) < body.len() {
            let left = body.len() - off as usize;
            // SAFETY: both fds are open for the call; `off` is a live local the kernel updates.
            let r = unsafe { libc::sendfile(ssock.as_raw_fd(), file.as_raw_fd(), &mut off, left) };
            assert!(r > 0, "sendfile on kTLS: {}", io::Error::last_os_error());
        }
        send_close_notify(ssock.as_raw_fd()).expect("close_notify");
        let (got, closed) = reader.join().expect("client");
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "bytes differ through kTLS");
        assert!(closed, "the client saw our close_notify");
        let e = ssock
            .read(&mut req)
            .expect_err("the client's close_notify is a control record");
        assert!(is_control_record(e.raw_os_error().unwrap_or(0)), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn tls13_aes128() {
        if let Some(s) = supported() {
            round_trip(s, cipher_suite::TLS13_AES_128_GCM_SHA256);
        }
    }

    #[test]
    fn tls13_aes256() {
        if let Some(s) = supported() {
            round_trip(s, cipher_suite::TLS13_AES_256_GCM_SHA384);
        }
    }

    #[test]
    fn tls13_chacha() {
        if let Some(s) = supported() {
            round_trip(s, cipher_suite::TLS13_CHACHA20_POLY1305_SHA256);
        }
    }

    #[test]
    fn tls12_aes128() {
        if let Some(s) = supported() {
            round_trip(s, cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256);
        }
    }

    #[test]
    fn tls12_aes256() {
        if let Some(s) = supported() {
            round_trip(s, cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384);
        }
    }

    #[test]
    fn tls12_chacha() {
        if let Some(s) = supported() {
            round_trip(
                s,
                cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            );
        }
    }

    /// A TLS 1.3 KeyUpdate from the client: the data before it arrives, then EIO (the end).
    #[test]
    fn key_update_ends_the_stream() {
        let Some(support) = supported() else { return };
        let (mut client, server) = handshake(cipher_suite::TLS13_AES_128_GCM_SHA256);
        let version = server.protocol_version().expect("version");
        assert!(support.covers(version, CipherSuite::TLS13_AES_128_GCM_SHA256));
        let (mut csock, mut ssock) = loopback_pair().expect("pair");
        ssock
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        enable(
            ssock.as_raw_fd(),
            version,
            server.dangerous_extract_secrets().unwrap(),
        )
        .unwrap();
        client.writer().write_all(b"before").unwrap();
        client.refresh_traffic_keys().expect("key update");
        client.writer().write_all(b"after").unwrap();
        while client.wants_write() {
            client.write_tls(&mut csock).unwrap();
        }
        let mut buf = [0u8; 64];
        let n = ssock.read(&mut buf).expect("data before the KeyUpdate");
        assert_eq!(&buf[..n], b"before");
        let e = ssock
            .read(&mut buf)
            .expect_err("a KeyUpdate is a control record");
        assert!(is_control_record(e.raw_os_error().unwrap_or(0)), "{e}");
    }

    #[test]
    fn probe_says_one_line() {
        match probe() {
            Ok(s) => {
                assert!(s.covers(
                    ProtocolVersion::TLSv1_3,
                    CipherSuite::TLS13_AES_128_GCM_SHA256
                ));
                eprintln!("kernel TLS available; missing: [{}]", s.gaps());
            }
            Err(why) => {
                assert!(!why.is_empty() && !why.contains('\n'), "{why:?}");
                eprintln!("skipped: kernel has no kTLS ({why})");
            }
        }
    }

    #[test]
    fn record_edges() {
        let mut e = RecordEdge::default();
        assert!(e.at_boundary());
        // A 3-byte record, then a 0-byte one, then a 300-byte one fed in pieces.
        e.advance(&[23, 3, 3, 0, 3, 1, 2]);
        assert!(!e.at_boundary());
        e.advance(&[3, 21, 3, 3, 0, 0]);
        assert!(e.at_boundary());
        e.advance(&[23, 3]);
        assert!(!e.at_boundary());
        e.advance(&[3, 1, 44]);
        assert!(!e.at_boundary());
        e.advance(&[0; 299]);
        assert!(!e.at_boundary());
        e.advance(&[0]);
        assert!(e.at_boundary());
    }

    /// The nonce layout the kernel expects, checked without a kernel.
    #[test]
    fn key_layout() {
        let iv: Vec<u8> = (0..12).collect();
        let key: Vec<u8> = (100..132).collect();
        let CryptoInfo::Aes128(a) =
            CryptoInfo::from_parts(true, 0x0102, Cipher::Aes128Gcm, &key, &iv)
        else {
            panic!("aes128")
        };
        assert_eq!(a.info.version, libc::TLS_1_3_VERSION);
        assert_eq!(a.info.cipher_type, libc::TLS_CIPHER_AES_GCM_128);
        assert_eq!(a.salt, [0, 1, 2, 3]);
        assert_eq!(a.iv, [4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(a.key[..], key[..16]);
        assert_eq!(a.rec_seq, [0, 0, 0, 0, 0, 0, 1, 2]);
        let CryptoInfo::Aes256(b) = CryptoInfo::from_parts(false, 5, Cipher::Aes256Gcm, &key, &iv)
        else {
            panic!("aes256")
        };
        assert_eq!(b.info.version, libc::TLS_1_2_VERSION);
        assert_eq!(b.salt, [0, 1, 2, 3]);
        assert_eq!(b.key[..], key[..]);
        let CryptoInfo::Chacha(c) =
            CryptoInfo::from_parts(false, 5, Cipher::Chacha20Poly1305, &key, &iv)
        else {
            panic!("chacha")
        };
        assert_eq!(c.info.cipher_type, libc::TLS_CIPHER_CHACHA20_POLY1305);
        assert_eq!(c.iv[..], iv[..]);
        assert_eq!(c.rec_seq, [0, 0, 0, 0, 0, 0, 0, 5]);
    }

    #[test]
    fn support_covers_what_was_probed() {
        let s = Support {
            bits: bit(true, Cipher::Aes128Gcm) | bit(false, Cipher::Chacha20Poly1305),
        };
        assert!(s.covers(
            ProtocolVersion::TLSv1_3,
            CipherSuite::TLS13_AES_128_GCM_SHA256
        ));
        assert!(!s.covers(
            ProtocolVersion::TLSv1_3,
            CipherSuite::TLS13_AES_256_GCM_SHA384
        ));
        assert!(s.covers(
            ProtocolVersion::TLSv1_2,
            CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        ));
        assert!(!s.covers(
            ProtocolVersion::TLSv1_2,
            CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        ));
        assert!(!s.covers(
            ProtocolVersion::TLSv1_1,
            CipherSuite::TLS13_AES_128_GCM_SHA256
        ));
        assert_eq!(s.gaps().matches("TLS 1.").count(), 4);
    }
}
