//! The certificates of the `tls` listeners: each `--tls-cert` chain with the `--tls-key` at the
//! same position, read, checked (the key is the certificate's, the certificate is in date) and
//! indexed by the names it is valid for, so that a client's SNI picks its certificate. The first
//! pair is the default: for a client without SNI, or one naming a host no certificate has.
//!
//! Names come from the certificates themselves (subjectAltName DNS names, or the CN when there is
//! none), as HAProxy's `crt` does, so the configuration cannot disagree with what a certificate
//! actually covers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::x509;

/// A certificate expiring within this many days gets a warning at start, `-t` and reload.
pub const WARN_DAYS: i64 = 14;

/// One certificate chain and its key, ready to serve.
pub struct Pair {
    pub cert_path: PathBuf,
    pub key: Arc<CertifiedKey>,
    pub facts: x509::Facts,
}

/// Reads every `--tls-cert`/`--tls-key` pair and checks it at `now` (unix seconds). Returns the
/// pairs and the warnings to print (certificates expiring soon), or the first problem, naming
/// its file.
pub fn load(
    certs: &[PathBuf],
    keys: &[PathBuf],
    now: i64,
) -> Result<(Vec<Pair>, Vec<String>), String> {
    if certs.len() != keys.len() {
        return Err(format!(
            "{} --tls-cert but {} --tls-key: each certificate needs the key at the same position",
            certs.len(),
            keys.len()
        ));
    }
    let mut pairs = Vec::new();
    let mut warnings = Vec::new();
    for (cert_path, key_path) in certs.iter().zip(keys) {
        let pair = load_pair(cert_path, key_path)?;
        let f = &pair.facts;
        let name = cert_path.display();
        if now < f.not_before {
            return Err(format!(
                "TLS certificate {name} is not valid yet (notBefore is {} s from now)",
                f.not_before - now
            ));
        }
        if now > f.not_after {
            return Err(format!(
                "TLS certificate {name} expired {} day(s) ago",
                (now - f.not_after) / 86_400
            ));
        }
        let left = f.not_after - now;
        if left < WARN_DAYS * 86_400 {
            warnings.push(format!(
                "TLS certificate {name} expires in {} day(s) and {} hour(s)",
                left / 86_400,
                left % 86_400 / 3600
            ));
        }
        pairs.push(pair);
    }
    Ok((pairs, warnings))
}

fn load_pair(cert_path: &Path, key_path: &Path) -> Result<Pair, String> {
    let cname = cert_path.display();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| format!("cannot read TLS certificate {cname}: {}", pem_error(&e)))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot read TLS certificate {cname}: {}", pem_error(&e)))?;
    let Some(leaf) = chain.first() else {
        return Err(format!(
            "TLS certificate {cname} holds no certificate (no `-----BEGIN CERTIFICATE-----` block)"
        ));
    };
    let facts = x509::facts(leaf).map_err(|e| format!("TLS certificate {cname}: {e}"))?;
    let kname = key_path.display();
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| format!("cannot read TLS key {kname}: {}", pem_error(&e)))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| {
        format!(
            "TLS key {kname} is not a key we can sign with (RSA, ECDSA P-256/P-384, Ed25519): {e}"
        )
    })?;
    let key = CertifiedKey::new(chain, signer);
    key.keys_match().map_err(|e| match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            format!(
                "TLS key {kname} does not belong to certificate {cname} (their public keys differ)"
            )
        }
        // Not a mismatch: the certificate itself cannot be used (an X.509 v1 certificate, say,
        // which webpki refuses).
        other => format!("TLS certificate {cname} cannot be used with key {kname}: {other}"),
    })?;
    Ok(Pair {
        cert_path: cert_path.to_path_buf(),
        key: Arc::new(key),
        facts,
    })
}

fn pem_error(e: &rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) => crate::config::plain(io),
        rustls_pki_types::pem::Error::NoItemsFound => "no PEM block of the expected kind".into(),
        other => format!("not valid PEM ({other:?})"),
    }
}

/// Picks a certificate by the client's SNI name: an exact name first, then a wildcard, else the
/// default (the first pair).
#[derive(Debug)]
pub struct BySni {
    /// (name, index into `keys`), lowercase; exact names and wildcards alike.
    names: Vec<(String, usize)>,
    keys: Vec<Arc<CertifiedKey>>,
}

impl BySni {
    /// `pairs` is not empty (a `tls` listener requires a certificate).
    pub fn new(pairs: &[Pair]) -> BySni {
        let mut names = Vec::new();
        for (i, p) in pairs.iter().enumerate() {
            for n in &p.facts.names {
                names.push((n.to_ascii_lowercase(), i));
            }
        }
        BySni {
            names,
            keys: pairs.iter().map(|p| p.key.clone()).collect(),
        }
    }

    /// The index of the certificate for `sni`.
    pub fn pick(&self, sni: Option<&str>) -> usize {
        let Some(host) = sni else { return 0 };
        let host = host.trim_end_matches('.');
        if let Some((_, i)) = self
            .names
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(host))
        {
            return *i;
        }
        self.names
            .iter()
            .find(|(n, _)| n.starts_with("*.") && x509::name_matches(n, host))
            .map_or(0, |(_, i)| *i)
    }
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.keys.get(self.pick(hello.server_name())).cloned()
    }
}
