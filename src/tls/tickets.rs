//! Session tickets every worker can read: keys derived from one secret, rotated by period.
//!
//! A client's next connection lands on whichever worker the kernel's SO_REUSEPORT hash picks,
//! so a ticket issued by one worker must resume on any other. rustls' own ticketer makes a
//! random key per process; instead the master makes one random secret at start (kept in
//! memory only, handed to each worker) and every worker derives the same key for the same
//! period: HKDF-SHA256(secret, salt "ringstatic session ticket", info = period as 8 bytes
//! big-endian) -> AES-256-GCM. The period is `unix_now / period_secs`; tickets of the current
//! and the previous period are accepted, so a ticket lives between one and two periods and a
//! key is forgotten after two (forward secrecy is bounded by rotation, as RFC 5077 asks).
//!
//! A ticket is `version (1) | period (8, BE) | nonce (12, random) | ciphertext | tag (16)`,
//! with the version and period authenticated as associated data.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf::{Prk, Salt, HKDF_SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::{Mutex, PoisonError};

const VERSION: u8 = 1;
const SALT: &[u8] = b"ringstatic session ticket";
/// Version and period: the associated data.
const AAD_LEN: usize = 1 + 8;
const HEADER_LEN: usize = AAD_LEN + NONCE_LEN;
const TAG_LEN: usize = 16;
/// TLS 1.3 forbids advertising a ticket lifetime over 7 days (RFC 8446 4.6.1).
const MAX_LIFETIME: u32 = 7 * 24 * 3600;

/// The secret ticket keys derive from: 32 bytes from getrandom(2). Made once by the master.
pub fn new_secret() -> std::io::Result<[u8; 32]> {
    let mut secret = [0u8; 32];
    SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| std::io::Error::other("the system's random source (getrandom) failed"))?;
    Ok(secret)
}

/// The keys of the period last seen and the one before it.
struct Keys {
    period: u64,
    current: LessSafeKey,
    previous: LessSafeKey,
}

/// rustls' `ProducesTickets` from a shared secret; one per worker, all interchangeable.
pub struct Ticketer {
    prk: Prk,
    period_secs: u64,
    clock: Box<dyn Fn() -> u64 + Send + Sync>,
    rng: SystemRandom,
    /// rustls asks `Send + Sync` of a ticketer, so the cache is behind a Mutex; each worker's
    /// ticketer is used by that worker's one thread only, so the lock is never contended (one
    /// atomic exchange per handshake, nothing per request).
    keys: Mutex<Keys>,
}

impl Ticketer {
    /// Keys from `secret`, rotated every `period_secs` (at least 1) of the system clock.
    pub fn new(secret: [u8; 32], period_secs: u64) -> Ticketer {
        Ticketer::with_clock(secret, period_secs, unix_now)
    }

    /// As `new`, with `clock` (Unix seconds) in place of the system clock.
    pub fn with_clock(
        secret: [u8; 32],
        period_secs: u64,
        clock: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> Ticketer {
        let prk = Salt::new(HKDF_SHA256, SALT).extract(&secret);
        let period_secs = period_secs.max(1);
        let period = clock() / period_secs;
        let keys = Keys {
            period,
            current: derive(&prk, period),
            previous: derive(&prk, period.wrapping_sub(1)),
        };
        Ticketer {
            prk,
            period_secs,
            clock: Box::new(clock),
            rng: SystemRandom::new(),
            keys: Mutex::new(keys),
        }
    }

    /// The keys for the period now, derived again only when the period has changed.
    fn keys_now(&self) -> std::sync::MutexGuard<'_, Keys> {
        let now = (self.clock)() / self.period_secs;
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if keys.period != now {
            let current = derive(&self.prk, now);
            let previous = if keys.period.checked_add(1) == Some(now) {
                std::mem::replace(&mut keys.current, current)
            } else {
                keys.current = current;
                derive(&self.prk, now.wrapping_sub(1))
            };
            keys.previous = previous;
            keys.period = now;
        }
        keys
    }
}

/// The AES-256-GCM key of one period.
fn derive(prk: &Prk, period: u64) -> LessSafeKey {
    let info = period.to_be_bytes();
    let info = [&info[..]];
    // Neither can fail: 32 bytes is far below HKDF-SHA256's limit of 255 * 32.
    let okm = prk.expand(&info, &AES_256_GCM).expect("HKDF output length");
    LessSafeKey::new(UnboundKey::from(okm))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl std::fmt::Debug for Ticketer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys.
        f.debug_struct("Ticketer")
            .field("period_secs", &self.period_secs)
            .finish_non_exhaustive()
    }
}

impl rustls::server::ProducesTickets for Ticketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        u32::try_from(self.period_secs).map_or(MAX_LIFETIME, |s| s.min(MAX_LIFETIME))
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let keys = self.keys_now();
        let mut aad = [0u8; AAD_LEN];
        aad[0] = VERSION;
        aad[1..].copy_from_slice(&keys.period.to_be_bytes());
        let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN);
        out.extend_from_slice(&aad);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = keys
            .current
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut out[HEADER_LEN..],
            )
            .ok()?;
        out.extend_from_slice(tag.as_ref());
        Some(out)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        if cipher.len() < HEADER_LEN + TAG_LEN || cipher[0] != VERSION {
            return None;
        }
        let aad: [u8; AAD_LEN] = cipher[..AAD_LEN].try_into().ok()?;
        let nonce: [u8; NONCE_LEN] = cipher[AAD_LEN..HEADER_LEN].try_into().ok()?;
        let period = u64::from_be_bytes(aad[1..].try_into().ok()?);
        let keys = self.keys_now();
        let key = if period == keys.period {
            &keys.current
        } else if keys.period.checked_sub(1) == Some(period) {
            &keys.previous
        } else {
            return None;
        };
        let mut buf = cipher[HEADER_LEN..].to_vec();
        let plain_len = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .ok()?
            .len();
        buf.truncate(plain_len);
        Some(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::server::ProducesTickets;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    const PERIOD: u64 = 3600;

    /// A ticketer whose clock the test moves.
    fn at(secret: [u8; 32], now: &Arc<AtomicU64>) -> Ticketer {
        let now = Arc::clone(now);
        Ticketer::with_clock(secret, PERIOD, move || now.load(Ordering::Relaxed))
    }

    fn clock(t: u64) -> Arc<AtomicU64> {
        Arc::new(AtomicU64::new(t))
    }

    #[test]
    fn round_trip_and_across_workers() {
        let secret = new_secret().unwrap();
        assert_ne!(secret, new_secret().unwrap());
        let now = clock(1_800_000_000);
        let (one, other) = (at(secret, &now), at(secret, &now));
        let plain = b"a TLS session's state".to_vec();
        let t = one.encrypt(&plain).unwrap();
        assert_eq!(t.len(), HEADER_LEN + plain.len() + TAG_LEN);
        assert!(
            !t.windows(plain.len()).any(|w| w == plain),
            "plaintext in the ticket"
        );
        assert_eq!(one.decrypt(&t), Some(plain.clone()));
        assert_eq!(
            other.decrypt(&t),
            Some(plain.clone()),
            "another worker's ticket"
        );
        assert_ne!(one.encrypt(&plain), Some(t), "a fresh nonce each time");
        assert_eq!(one.decrypt(&one.encrypt(b"").unwrap()), Some(Vec::new()));
        assert!(one.enabled());
        assert_eq!(one.lifetime(), 3600);
        assert_eq!(
            Ticketer::new(secret, crate::tls::TICKET_PERIOD_SECS).lifetime(),
            43_200
        );
        assert_eq!(Ticketer::new(secret, u64::MAX).lifetime(), MAX_LIFETIME);
        assert_eq!(
            format!("{one:?}"),
            "Ticketer { period_secs: 3600, .. }",
            "no key shown"
        );
    }

    #[test]
    fn another_secret_refused() {
        let now = clock(1_800_000_000);
        let t = at([1; 32], &now).encrypt(b"state").unwrap();
        assert_eq!(at([2; 32], &now).decrypt(&t), None);
        assert_eq!(
            at([1; 32], &now).decrypt(&t).as_deref(),
            Some(&b"state"[..])
        );
    }

    #[test]
    fn previous_period_accepted_two_back_refused() {
        let now = clock(10 * PERIOD + 5);
        let issuer = at([7; 32], &now);
        let t = issuer.encrypt(b"state").unwrap();
        let later = clock(11 * PERIOD + PERIOD - 1);
        // The same ticketer after its clock moved on (keys rotated in place), and a worker
        // started in the next period (keys derived fresh): both accept it.
        now.store(11 * PERIOD, Ordering::Relaxed);
        assert!(issuer.decrypt(&t).is_some());
        assert!(at([7; 32], &later).decrypt(&t).is_some());
        // And a ticket issued now is of the new period.
        let t2 = issuer.encrypt(b"new").unwrap();
        assert_eq!(t2[1..9], 11u64.to_be_bytes());
        now.store(12 * PERIOD, Ordering::Relaxed);
        assert_eq!(issuer.decrypt(&t), None, "two periods back");
        assert!(issuer.decrypt(&t2).is_some());
        // A ticket from the future (a period not yet begun) is refused too.
        now.store(10 * PERIOD, Ordering::Relaxed);
        assert_eq!(issuer.decrypt(&t2), None);
        assert!(issuer.decrypt(&t).is_some(), "after the clock went back");
        // The period in the header is authenticated: relabelling it breaks the tag.
        now.store(11 * PERIOD, Ordering::Relaxed);
        let mut relabelled = t.clone();
        relabelled[1..9].copy_from_slice(&11u64.to_be_bytes());
        assert_eq!(issuer.decrypt(&relabelled), None);
    }

    #[test]
    fn tampered_truncated_and_garbage_refused() {
        let now = clock(0);
        let tk = at([3; 32], &now);
        let t = tk.encrypt(b"some session state").unwrap();
        assert!(tk.decrypt(&t).is_some());
        // Period 0 has no previous period: the period before it does not wrap around.
        let mut wrapped = t.clone();
        wrapped[1..9].copy_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(tk.decrypt(&wrapped), None);
        for i in 0..t.len() {
            for bit in [0x01, 0x80] {
                let mut bad = t.clone();
                bad[i] ^= bit;
                assert_eq!(tk.decrypt(&bad), None, "byte {i} changed");
            }
        }
        for n in 0..t.len() {
            assert_eq!(tk.decrypt(&t[..n]), None, "cut to {n}");
        }
        let mut longer = t.clone();
        longer.push(0);
        assert_eq!(tk.decrypt(&longer), None);
        assert_eq!(tk.decrypt(&[VERSION; 64]), None);
        assert_eq!(tk.decrypt(&[0xff; 64]), None);
    }

    /// A CA and a leaf for `localhost` made by the openssl CLI in `dir`: (CA PEM, leaf, key).
    fn openssl_pki(dir: &std::path::Path) -> Option<(Vec<u8>, String, String)> {
        let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
        let (ca_key, ca, key, csr, cert, ext) = (
            p("ca.key"),
            p("ca.pem"),
            p("leaf.key"),
            p("leaf.csr"),
            p("leaf.pem"),
            p("ext"),
        );
        std::fs::write(&ext, "subjectAltName=DNS:localhost\n").ok()?;
        let ec = "ec_paramgen_curve:prime256v1";
        let steps: [&[&str]; 3] = [
            &[
                "req", "-x509", "-newkey", "ec", "-pkeyopt", ec, "-nodes", "-keyout", &ca_key,
            ],
            &[
                "req", "-newkey", "ec", "-pkeyopt", ec, "-nodes", "-keyout", &key,
            ],
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
            ],
        ];
        let tails: [&[&str]; 3] = [
            &["-out", &ca, "-days", "2", "-subj", "/CN=test ca"],
            &["-out", &csr, "-subj", "/CN=localhost"],
            &["-out", &cert, "-days", "2", "-extfile", &ext],
        ];
        for (args, tail) in steps.iter().zip(tails) {
            let out = std::process::Command::new("openssl")
                .args(*args)
                .args(tail)
                .output();
            if !matches!(&out, Ok(o) if o.status.success()) {
                eprintln!("skipped: the openssl CLI could not make a certificate ({out:?})");
                return None;
            }
        }
        Some((std::fs::read(&ca).ok()?, cert, key))
    }

    /// Moves records between a client and a server until neither has more to say.
    fn pump(client: &mut rustls::ClientConnection, server: &mut rustls::ServerConnection) {
        for _ in 0..32 {
            let mut to_server = Vec::new();
            client.write_tls(&mut to_server).unwrap();
            let mut to_client = Vec::new();
            server.write_tls(&mut to_client).unwrap();
            if to_server.is_empty() && to_client.is_empty() {
                return;
            }
            let mut rd = &to_server[..];
            while !rd.is_empty() {
                server.read_tls(&mut rd).unwrap();
                server.process_new_packets().unwrap();
            }
            let mut rd = &to_client[..];
            while !rd.is_empty() {
                client.read_tls(&mut rd).unwrap();
                client.process_new_packets().unwrap();
            }
        }
        panic!("the handshake did not settle");
    }

    /// With rustls on both sides and the worker's own `server_config`: a session from one
    /// worker resumes on another with the same secret, not on one with another secret, in
    /// TLS 1.3 and TLS 1.2.
    #[test]
    fn rustls_resumes_on_another_worker() {
        use rustls::HandshakeKind::{Full, Resumed};
        use rustls_pki_types::{pem::PemObject, CertificateDer, ServerName};
        let dir = std::env::temp_dir().join(format!("rs-tickets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let Some((ca, cert, key)) = openssl_pki(&dir) else {
            let _ = std::fs::remove_dir_all(&dir);
            return;
        };
        let argv = [
            "ringstatic",
            "--listen",
            "127.0.0.1:0,tls",
            "--tls-cert",
            &cert,
        ];
        let cli = <crate::config::Cli as clap::Parser>::try_parse_from(
            argv.iter().chain(&["--tls-key", &key]),
        )
        .unwrap();
        let secret = new_secret().unwrap();
        let worker = |s| crate::tls::server_config(&cli, Some(s)).unwrap();
        let (first, second, stranger) = (worker(secret), worker(secret), worker([9; 32]));
        std::fs::remove_dir_all(&dir).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(&ca).unwrap())
            .unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let client = std::sync::Arc::new(
                rustls::ClientConfig::builder_with_provider(provider.clone())
                    .with_protocol_versions(&[version])
                    .unwrap()
                    .with_root_certificates(roots.clone())
                    .with_no_client_auth(),
            );
            let connect = |server: &std::sync::Arc<rustls::ServerConfig>| {
                let name = ServerName::try_from("localhost").unwrap();
                let mut c = rustls::ClientConnection::new(client.clone(), name).unwrap();
                let mut s = rustls::ServerConnection::new(server.clone()).unwrap();
                pump(&mut c, &mut s);
                assert!(!c.is_handshaking() && !s.is_handshaking());
                assert_eq!(c.protocol_version(), Some(version.version));
                s.handshake_kind().unwrap()
            };
            assert_eq!(connect(&first), Full, "{version:?}");
            assert_eq!(connect(&second), Resumed, "{version:?}: across workers");
            assert_eq!(connect(&stranger), Full, "{version:?}: another secret");
        }
    }
}
