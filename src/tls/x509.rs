//! The few facts the server needs from a leaf certificate: when it is valid, and which host
//! names it is for.
//!
//! rustls checks nothing about our own certificate (it signs with the key it is given), yet the
//! server needs the validity window for `-t` (refuse an expired certificate, warn before it
//! expires) and the names to pick a certificate by SNI. Those are a handful of fixed positions
//! in the DER, so a small TLV walk here is simpler than an X.509 crate and its dependencies.
//! The input comes from the operator's files, not from clients, but it is still treated as
//! hostile: every length is checked against what is left, the certificate must be exactly one
//! DER element, and any malformed input is a clear `Err`, never a panic
//! (`invariants::certificate` and the `x509` fuzz target hold it to that).

use crate::http::date::assemble;

/// What the server uses of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// The subjectAltName dNSName entries, lowercase; the subject's commonName(s) only when the
    /// certificate has no subjectAltName extension (RFC 6125 6.4.4).
    pub names: Vec<String>,
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0] EXPLICIT` version, `[1]`/`[2]` IMPLICIT unique ids, `[3] EXPLICIT` extensions.
const VERSION: u8 = 0xa0;
const ISSUER_UID: u8 = 0x81;
const SUBJECT_UID: u8 = 0x82;
const EXTENSIONS: u8 = 0xa3;
/// GeneralName `dNSName [2] IA5String`, implicitly tagged.
const DNS_NAME: u8 = 0x82;
/// 2.5.29.17 subjectAltName and 2.5.4.3 commonName, as encoded OID contents.
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];

/// A cursor over DER elements: `next` returns one element's tag and contents.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(rest: &'a [u8]) -> Self {
        Der { rest }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// One element: its tag and contents. Definite lengths only (DER), at most 4 length bytes.
    fn next(&mut self) -> Result<(u8, &'a [u8]), String> {
        let [tag, first, rest @ ..] = self.rest else {
            return Err("truncated (an element's header is cut short)".into());
        };
        if tag & 0x1f == 0x1f {
            return Err(format!("unsupported high tag number (tag 0x{tag:02x})"));
        }
        let (len, rest) = match *first {
            n @ 0..=0x7f => (usize::from(n), rest),
            0x80 => return Err("an indefinite length, which DER does not allow".into()),
            n @ 0x81..=0x84 => {
                let k = usize::from(n & 0x7f);
                let Some((bytes, rest)) = rest.split_at_checked(k) else {
                    return Err("truncated (a length is cut short)".into());
                };
                (
                    bytes.iter().fold(0usize, |a, &b| a << 8 | usize::from(b)),
                    rest,
                )
            }
            n => return Err(format!("a length of {} bytes", n & 0x7f)),
        };
        let Some((body, rest)) = rest.split_at_checked(len) else {
            return Err(format!(
                "truncated (an element of {len} bytes, {} left)",
                rest.len()
            ));
        };
        self.rest = rest;
        Ok((*tag, body))
    }

    /// The next element, which must have `tag`; `what` names it in the error.
    fn expect(&mut self, tag: u8, what: &str) -> Result<&'a [u8], String> {
        match self.next() {
            Ok((t, body)) if t == tag => Ok(body),
            Ok((t, _)) => Err(format!("{what}: expected tag 0x{tag:02x}, found 0x{t:02x}")),
            Err(e) => Err(format!("{what}: {e}")),
        }
    }

    /// Skips the next element when it has `tag`.
    fn skip_if(&mut self, tag: u8) -> Result<(), String> {
        if self.peek() == Some(tag) {
            self.next()?;
        }
        Ok(())
    }
}

/// Reads the validity window and the names of a DER certificate (the leaf of a chain).
pub fn facts(cert_der: &[u8]) -> Result<Facts, String> {
    let mut outer = Der::new(cert_der);
    let cert = outer.expect(SEQUENCE, "certificate")?;
    if !outer.is_empty() {
        return Err("bytes after the certificate".into());
    }
    let mut tbs = Der::new(Der::new(cert).expect(SEQUENCE, "tbsCertificate")?);
    tbs.skip_if(VERSION)?;
    tbs.expect(INTEGER, "serialNumber")?;
    tbs.expect(SEQUENCE, "signature algorithm")?;
    tbs.expect(SEQUENCE, "issuer")?;
    let mut validity = Der::new(tbs.expect(SEQUENCE, "validity")?);
    let not_before = time(validity.next(), "notBefore")?;
    let not_after = time(validity.next(), "notAfter")?;
    let subject = tbs.expect(SEQUENCE, "subject")?;
    tbs.expect(SEQUENCE, "subjectPublicKeyInfo")?;
    tbs.skip_if(ISSUER_UID)?;
    tbs.skip_if(SUBJECT_UID)?;
    let san = match tbs.peek() {
        Some(EXTENSIONS) => san_extension(tbs.expect(EXTENSIONS, "extensions")?)?,
        _ => None,
    };
    if !tbs.is_empty() {
        return Err("tbsCertificate: unexpected element after the extensions".into());
    }
    let names = match san {
        Some(general_names) => dns_names(general_names)?,
        None => common_names(subject)?,
    };
    Ok(Facts {
        not_before,
        not_after,
        names,
    })
}

/// The subjectAltName extension's value (GeneralNames), if the certificate has one.
fn san_extension(explicit: &[u8]) -> Result<Option<&[u8]>, String> {
    let mut list = Der::new(Der::new(explicit).expect(SEQUENCE, "extensions")?);
    let mut found = None;
    while !list.is_empty() {
        let mut ext = Der::new(list.expect(SEQUENCE, "extension")?);
        let id = ext.expect(OID, "extension id")?;
        ext.skip_if(BOOLEAN)?;
        let value = ext.expect(OCTET_STRING, "extension value")?;
        if id == OID_SAN {
            if found.is_some() {
                return Err("two subjectAltName extensions".into());
            }
            found = Some(value);
        }
    }
    Ok(found)
}

/// The dNSName entries of GeneralNames, lowercase; other kinds (IP addresses, URIs) are skipped.
fn dns_names(general_names: &[u8]) -> Result<Vec<String>, String> {
    let mut seq = Der::new(Der::new(general_names).expect(SEQUENCE, "subjectAltName")?);
    let mut names = Vec::new();
    while !seq.is_empty() {
        let (tag, body) = seq.next().map_err(|e| format!("subjectAltName: {e}"))?;
        if tag == DNS_NAME {
            names.extend(host_name(body));
        }
    }
    Ok(names)
}

/// The subject's commonName values, lowercase (for a certificate without subjectAltName).
fn common_names(subject: &[u8]) -> Result<Vec<String>, String> {
    let mut rdns = Der::new(subject);
    let mut names = Vec::new();
    while !rdns.is_empty() {
        let mut set = Der::new(rdns.expect(SET, "subject")?);
        while !set.is_empty() {
            let mut atv = Der::new(set.expect(SEQUENCE, "subject attribute")?);
            let id = atv.expect(OID, "subject attribute type")?;
            let (tag, value) = atv.next().map_err(|e| format!("subject attribute: {e}"))?;
            // PrintableString, T61String, IA5String, UTF8String: a host name is ASCII in all.
            if id == OID_CN && matches!(tag, 0x13 | 0x14 | 0x16 | 0x0c) {
                names.extend(host_name(value));
            }
        }
    }
    Ok(names)
}

/// A name that could be a host's, lowercase; `None` for one that cannot (empty, spaces,
/// non-ASCII: a commonName like "Example Org"), which is left out rather than refused.
fn host_name(bytes: &[u8]) -> Option<String> {
    let ok = !bytes.is_empty() && bytes.iter().all(u8::is_ascii_graphic);
    ok.then(|| String::from_utf8_lossy(bytes).to_ascii_lowercase())
}

/// A `Time`: UTCTime `YYMMDDHHMMSSZ` (years 1950..=2049) or GeneralizedTime `YYYYMMDDHHMMSSZ`,
/// the only forms RFC 5280 4.1.2.5 allows.
fn time(element: Result<(u8, &[u8]), String>, what: &str) -> Result<i64, String> {
    let (tag, s) = element.map_err(|e| format!("{what}: {e}"))?;
    let bad = || format!("{what}: malformed time {:?}", String::from_utf8_lossy(s));
    let (year, rest) = match (tag, s.len()) {
        (UTC_TIME, 13) => {
            let yy = i64::from(two(&s[..2]).ok_or_else(bad)?);
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        (GENERALIZED_TIME, 15) => {
            let hi = i64::from(two(&s[..2]).ok_or_else(bad)?);
            let lo = i64::from(two(&s[2..4]).ok_or_else(bad)?);
            (hi * 100 + lo, &s[4..])
        }
        (UTC_TIME | GENERALIZED_TIME, _) => return Err(bad()),
        (t, _) => return Err(format!("{what}: expected a time, found tag 0x{t:02x}")),
    };
    let [mo @ .., b'Z'] = rest else {
        return Err(bad());
    };
    let field = |i: usize| two(&mo[i..i + 2]).ok_or_else(bad);
    let (month, day, h, m, sec) = (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if h > 23 || m > 59 || sec > 59 {
        return Err(bad());
    }
    let secs_of_day = i64::from(h * 3600 + m * 60 + sec);
    assemble(year, month, day, secs_of_day).ok_or_else(bad)
}

fn two(d: &[u8]) -> Option<u32> {
    match d {
        [a @ b'0'..=b'9', b @ b'0'..=b'9'] => Some(u32::from(a - b'0') * 10 + u32::from(b - b'0')),
        _ => None,
    }
}

/// Whether a certificate name covers `host`, ignoring ASCII case. `*.example.com` covers
/// exactly one more leftmost label (`a.example.com`), never `example.com` nor
/// `a.b.example.com`; a `*` anywhere else matches nothing.
pub fn name_matches(pattern: &str, host: &str) -> bool {
    if host.is_empty() || host.contains('*') {
        return false;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) if !suffix.is_empty() && !suffix.contains('*') => match host.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest.eq_ignore_ascii_case(suffix),
            None => false,
        },
        Some(_) => false,
        None => !pattern.contains('*') && pattern.eq_ignore_ascii_case(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;

    /// A self-signed EC certificate made by the `openssl` CLI, in DER, with the validity
    /// openssl itself reports (ISO 8601 dates turned into Unix seconds here). `None` (and a
    /// loud `skipped:`) when there is no usable openssl.
    fn openssl_cert(
        test: &str,
        subj: &str,
        days: u32,
        san: Option<&str>,
    ) -> Option<(Vec<u8>, i64, i64)> {
        let dir: PathBuf =
            std::env::temp_dir().join(format!("rs-x509-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (key, der) = (dir.join("key.pem"), dir.join("cert.der"));
        let mut req = Command::new("openssl");
        req.args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-outform", "DER"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&der)
            .args(["-days", &days.to_string(), "-subj", subj]);
        if let Some(san) = san {
            req.args(["-addext", &format!("subjectAltName={san}")]);
        }
        let made = req.output();
        let ok = matches!(&made, Ok(o) if o.status.success());
        if !ok {
            eprintln!("skipped: {test}: the openssl CLI could not make a certificate ({made:?})");
            let _ = std::fs::remove_dir_all(&dir);
            return None;
        }
        let dates = Command::new("openssl")
            .args([
                "x509", "-inform", "DER", "-noout", "-dates", "-dateopt", "iso_8601",
            ])
            .arg("-in")
            .arg(&der)
            .output()
            .unwrap();
        assert!(dates.status.success(), "{dates:?}");
        let dates = String::from_utf8(dates.stdout).unwrap();
        let iso = |key: &str| {
            let line = dates.lines().find_map(|l| l.strip_prefix(key)).unwrap();
            // 2026-11-29 16:24:01Z
            let n = |r: std::ops::Range<usize>| line[r].parse::<i64>().unwrap();
            let secs = n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
            assemble(n(0..4), n(5..7) as u32, n(8..10) as u32, secs).unwrap()
        };
        let (nb, na) = (iso("notBefore="), iso("notAfter="));
        let bytes = std::fs::read(&der).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        Some((bytes, nb, na))
    }

    #[test]
    fn san_names_and_utc_time() {
        let san = "DNS:a.Example.com,DNS:*.Wild.example,IP:127.0.0.1,DNS:b.example.com";
        let Some((der, nb, na)) = openssl_cert("san", "/CN=ignored.example", 30, Some(san)) else {
            return;
        };
        let f = facts(&der).unwrap();
        assert_eq!(
            f.names,
            ["a.example.com", "*.wild.example", "b.example.com"]
        );
        assert_eq!((f.not_before, f.not_after), (nb, na));
        assert_eq!(f.not_after - f.not_before, 30 * 86_400);
        assert!(f.not_after < 2_524_608_000, "before 2050: a UTCTime");
        let host_names = |h: &str| f.names.iter().any(|n| name_matches(n, h));
        assert!(host_names("x.wild.example") && host_names("B.example.COM"));
        assert!(!host_names("wild.example") && !host_names("ignored.example"));
    }

    #[test]
    fn common_name_only_without_san() {
        let subj = "/O=Example Org/CN=Only.Example.NET";
        let Some((der, _, _)) = openssl_cert("cn", subj, 2, None) else {
            return;
        };
        assert_eq!(facts(&der).unwrap().names, ["only.example.net"]);
        // A commonName that cannot be a host name is left out, not refused.
        let Some((der, _, _)) = openssl_cert("cn-words", "/CN=My Test Server", 2, None) else {
            return;
        };
        assert!(facts(&der).unwrap().names.is_empty());
        // A subjectAltName without DNS names still hides the commonName.
        let Some((der, _, _)) = openssl_cert("ip-only", "/CN=cn.example", 2, Some("IP:::1")) else {
            return;
        };
        assert!(facts(&der).unwrap().names.is_empty());
    }

    #[test]
    fn wildcard_and_generalized_time_after_2049() {
        let Some((der, nb, na)) = openssl_cert("gen", "/CN=x", 10_000, Some("DNS:*.example.org"))
        else {
            return;
        };
        let f = facts(&der).unwrap();
        assert_eq!(f.names, ["*.example.org"]);
        assert_eq!((f.not_before, f.not_after), (nb, na));
        assert!(
            f.not_after >= 2_524_608_000,
            "after 2049: a GeneralizedTime"
        );
        assert!(der.windows(2).any(|w| w == [GENERALIZED_TIME, 15]));
    }

    #[test]
    fn truncated_extended_and_garbage_refused() {
        let Some((der, _, _)) = openssl_cert("cut", "/CN=x", 2, Some("DNS:x.example")) else {
            return;
        };
        for n in 0..der.len() {
            let e = facts(&der[..n]).unwrap_err();
            assert!(e.contains("truncated"), "{n}: {e}");
        }
        let mut longer = der.clone();
        longer.push(0);
        assert_eq!(facts(&longer).unwrap_err(), "bytes after the certificate");
        // Each byte of the certificate changed in turn: an answer every time, no panic.
        for i in 0..der.len() {
            let mut bad = der.clone();
            bad[i] ^= 0xff;
            let _ = facts(&bad);
        }
        for garbage in [
            &b""[..],
            b"\x30",
            b"\x30\x80",
            b"\x30\x85\0\0\0\0\0",
            b"\x1f\x01\0",
        ] {
            assert!(facts(garbage).is_err(), "{garbage:?}");
        }
        assert!(facts(b"\x02\x01\x00")
            .unwrap_err()
            .contains("expected tag 0x30"));
        assert!(facts(b"-----BEGIN CERTIFICATE-----").is_err());
    }

    fn t(tag: u8, s: &[u8]) -> Result<i64, String> {
        time(Ok((tag, s)), "notAfter")
    }

    #[test]
    fn time_forms() {
        assert_eq!(t(UTC_TIME, b"491231235959Z"), Ok(2_524_607_999));
        assert_eq!(t(UTC_TIME, b"500101000000Z"), Ok(-631_152_000));
        assert_eq!(t(UTC_TIME, b"700101000000Z"), Ok(0));
        assert_eq!(t(GENERALIZED_TIME, b"20500101000000Z"), Ok(2_524_608_000));
        assert_eq!(t(GENERALIZED_TIME, b"20240229120000Z"), Ok(1_709_208_000));
        for (tag, bad) in [
            (UTC_TIME, &b"4912312359Z"[..]),
            (UTC_TIME, b"491231235959+0000"),
            (UTC_TIME, b"491231235960Z"),
            (UTC_TIME, b"491301000000Z"),
            (GENERALIZED_TIME, b"20230229000000Z"),
            (GENERALIZED_TIME, b"20500101000000.5Z"),
            (GENERALIZED_TIME, b"2050010100000aZ"),
            (GENERALIZED_TIME, b"20500100000000Z"),
            (GENERALIZED_TIME, b"20500101240000Z"),
            (GENERALIZED_TIME, b"491231235959Z"),
        ] {
            let e = t(tag, bad).unwrap_err();
            assert!(e.starts_with("notAfter: malformed time"), "{bad:?}: {e}");
        }
        assert!(t(0x13, b"491231235959Z")
            .unwrap_err()
            .contains("expected a time"));
    }

    #[test]
    fn names_match_one_label_for_a_wildcard() {
        assert!(name_matches("example.com", "EXAMPLE.com"));
        assert!(!name_matches("example.com", "www.example.com"));
        assert!(name_matches("*.example.com", "a.example.com"));
        assert!(name_matches("*.Example.com", "A-b.EXAMPLE.COM"));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(!name_matches("*.example.com", "a.b.example.com"));
        assert!(!name_matches("*.example.com", ".example.com"));
        assert!(!name_matches("*.example.com", "a.example.org"));
        assert!(!name_matches("*.example.com", "*.example.com"));
        assert!(!name_matches("f*.example.com", "foo.example.com"));
        assert!(!name_matches("*", "localhost"));
        assert!(!name_matches("*.", "a."));
        assert!(!name_matches("", ""));
    }
}
