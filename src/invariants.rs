//! The promises the pure parsers make, written once as checks that panic when one is broken.
//!
//! Hostile bytes reach these parsers first, so "does not panic" is not enough: each check
//! states what the rest of the server relies on (a head parsed in pieces is the head parsed
//! whole, a normalised path stays under the root, a range stays inside the file, a date is
//! only proof when it is strong). The fuzz targets under `fuzz/` run them on coverage-guided
//! inputs, and `tests/properties.rs` runs them on generated ones in every `cargo test`, so
//! the two can never drift apart. Nothing on the request path calls them.

use crate::http::conditional::{evaluate, if_range_allows_range, Precondition, Validators};
use crate::http::date::{format_http_date, parse_http_date};
use crate::http::host::is_valid_host_field;
use crate::http::range::{decide_range, RangeDecision, MAX_RANGES};
use crate::http::request::{
    parse_head, Parsed, MAX_HEADER_BYTES, MAX_LEADING_EMPTY_LINES, MAX_REQUEST_LINE,
};
use crate::http::target::resolve_target;

/// The most bytes `parse_head` may ask to keep buffering (`Partial`): past this, a head can
/// no longer fit, and the parser must say so instead of waiting.
pub const MAX_PARTIAL: usize =
    2 * MAX_LEADING_EMPTY_LINES + MAX_REQUEST_LINE + 2 + MAX_HEADER_BYTES + 1;

/// A request head: parsed whole or cut at any byte (as reads split it), the answer is the
/// same. Every prefix is either `Partial` or exactly the whole's answer, a complete head is
/// `Partial` up to its last byte, and `Partial` is only ever given within the size limits.
pub fn head(buf: &[u8]) {
    let whole = parse_head(buf);
    let complete_at = match &whole {
        Ok(Parsed::Complete(req, n)) => {
            assert!(*n <= buf.len() && !req.target.is_empty());
            assert_eq!(
                parse_head(&buf[..*n]),
                whole,
                "the head alone parses the same"
            );
            Some(*n)
        }
        Ok(Parsed::Partial) => {
            assert!(buf.len() <= MAX_PARTIAL, "Partial past the limits");
            None
        }
        Err(_) => None,
    };
    for cut in 0..buf.len() {
        let part = parse_head(&buf[..cut]);
        match part {
            Ok(Parsed::Partial) => {
                assert!(
                    complete_at.map_or(true, |n| cut < n),
                    "Partial after the end"
                );
            }
            _ => assert_eq!(part, whole, "cut at {cut} answers differently"),
        }
    }
}

/// A request-target: a normalised path starts with `/`, has no empty, `.` or `..` segment
/// and no NUL, so mapped under the root it names something under the root; a target whose
/// `..` segments would climb above the root is refused; normalising is idempotent.
pub fn target(raw: &[u8]) {
    let resolved = resolve_target(raw);
    if let Ok(t) = &resolved {
        let p = &t.path;
        assert!(p.starts_with(b"/"), "not rooted");
        assert!(!p.contains(&0), "NUL in the path");
        let inner = p.strip_suffix(b"/").unwrap_or(p);
        for seg in inner.split(|&b| b == b'/').skip(1) {
            assert!(
                !matches!(seg, b"" | b"." | b".."),
                "segment {seg:?} left in {p:?}"
            );
        }
        if !p.iter().any(|b| matches!(b, b'%' | b'?' | b'#')) {
            let again = resolve_target(p).expect("a normalised path resolves");
            assert_eq!(&again.path, p, "normalising twice changes the path");
        }
    }
    // An independent count of depth, for plain origin-form paths: above the root is refused.
    if raw.starts_with(b"/") && !raw.iter().any(|b| matches!(b, b'%' | b'?' | b'#')) {
        let mut depth = 0i64;
        let mut climbs = false;
        for seg in raw.split(|&b| b == b'/') {
            match seg {
                b"" | b"." => {}
                b".." => {
                    depth -= 1;
                    climbs |= depth < 0;
                }
                _ => depth += 1,
            }
        }
        if climbs {
            assert!(
                resolved.is_err(),
                "a path climbing above the root was accepted"
            );
        }
    }
}

/// A Range header against a file of `len` bytes: every range decided lies inside the file,
/// several ranges are at most `MAX_RANGES` and add up to at most the file.
pub fn range(header: &[u8], len: u64) {
    match decide_range(header, len) {
        RangeDecision::Single(r) => assert!(r.start <= r.end && r.end < len, "{r:?} of {len}"),
        RangeDecision::Multi(rs) => {
            assert!((2..=MAX_RANGES).contains(&rs.len()));
            let mut total = 0u64;
            for r in &rs {
                assert!(r.start <= r.end && r.end < len, "{r:?} of {len}");
                total += r.len();
            }
            assert!(total <= len, "ranges add up to {total} of {len}");
        }
        RangeDecision::Full | RangeDecision::Unsatisfiable => {}
    }
}

/// The conditional headers, from arbitrary values, against validators: without a condition
/// the answer is to proceed; only If-Match or If-Unmodified-Since can fail; a date proves
/// nothing against a weak Last-Modified; If-Range with a date is satisfied only by the strong
/// Last-Modified itself, and with an entity-tag only by the same strong tag.
pub fn conditional(fields: [&[u8]; 5], v: &Validators) {
    fn opt(f: &[u8]) -> Option<&[u8]> {
        (!f.is_empty()).then_some(f)
    }
    let [im, ius, inm, ims, ir] = fields;
    let got = evaluate(opt(im), opt(ius), opt(inm), opt(ims), v);
    if opt(im).is_none() && opt(ius).is_none() {
        assert_ne!(got, Precondition::Failed);
    }
    if opt(inm).is_none() && got == Precondition::NotModified {
        assert!(v.last_modified_strong, "304 from a weak date");
    }
    assert_eq!(evaluate(None, None, None, None, v), Precondition::Proceed);
    if if_range_allows_range(ir, v) {
        let t = crate::http::token::trim_ows(ir);
        let by_date = v.last_modified_strong && parse_http_date(t) == Some(v.last_modified);
        assert!(by_date || t == v.etag, "If-Range {t:?} allowed the range");
    }
    if (0..253_402_300_800).contains(&v.last_modified) {
        let lm = format_http_date(v.last_modified);
        assert_eq!(if_range_allows_range(&lm, v), v.last_modified_strong);
    }
}

/// An HTTP-date: whatever parses formats back to a date that parses to the same instant, and
/// every formatted instant in 4-digit years parses back to itself.
pub fn date(s: &[u8], secs: i64) {
    if let Some(t) = parse_http_date(s) {
        assert_eq!(parse_http_date(&format_http_date(t)), Some(t));
    }
    let t = secs.rem_euclid(253_402_300_800); // 0000-..9999-12-31 from 1970 on
    assert_eq!(parse_http_date(&format_http_date(t)), Some(t), "{t}");
}

/// A Host value: a valid one is printable ASCII without whitespace, `/`, `?`, `#` or `@`, so
/// it can never smuggle a path, a query or userinfo into routing or a log line.
pub fn host(v: &[u8]) {
    if is_valid_host_field(v) {
        assert!(v.iter().all(|&b| b.is_ascii_graphic()));
        assert!(!v.iter().any(|b| matches!(b, b'/' | b'?' | b'#' | b'@')));
    }
}

/// The start of a connection on a `proxy-protocol` listener: a header accepted whole is also
/// what its bytes give when they arrive in pieces (every shorter prefix is `Incomplete`, so no
/// read split can turn a valid header into a refusal or a different length), it never claims
/// bytes past what was received or past the size limits, and HTTP starts right after it.
pub fn proxy_header(buf: &[u8]) {
    use crate::http::proxy_protocol::{parse, Header, V1_MAX, V2_MAX};
    match parse(buf) {
        Header::Done { len, .. } => {
            assert!(len > 0 && len <= buf.len() && len <= V1_MAX.max(V2_MAX));
            assert_eq!(
                parse(&buf[..len]),
                parse(buf),
                "the header alone parses the same"
            );
            for k in 0..len {
                assert_eq!(parse(&buf[..k]), Header::Incomplete, "prefix of {k} bytes");
            }
        }
        Header::Incomplete => assert!(buf.len() < V1_MAX.max(V2_MAX), "waiting past the limits"),
        Header::Invalid(_) => {
            // A refusal is final: more bytes cannot make it a header.
            let mut more = buf.to_vec();
            more.extend_from_slice(b"\r\n");
            assert!(
                matches!(parse(&more), Header::Invalid(_)),
                "more bytes rescued a refusal"
            );
        }
    }
}

/// An Accept-Encoding value: weights are at most 1; a coding gets a weight only when the value
/// names it (or `*`); identity stays acceptable unless the value names `identity` or `*`; no
/// header at all means identity only.
pub fn accept_encoding(v: &[u8]) {
    use crate::http::accept_encoding::{parse, Weights};
    assert_eq!(parse(None), Weights::IDENTITY_ONLY);
    let w = parse(Some(v));
    for x in [w.br, w.zstd, w.gzip, w.identity] {
        assert!(x <= 1000, "weight {x} in {w:?}");
    }
    let lower = v.to_ascii_lowercase();
    let names = |t: &[u8]| memchr::memmem::find(&lower, t).is_some();
    let star = names(b"*");
    assert!(w.br == 0 || names(b"br") || star, "br from nowhere: {w:?}");
    assert!(
        w.zstd == 0 || names(b"zstd") || star,
        "zstd from nowhere: {w:?}"
    );
    assert!(
        w.gzip == 0 || names(b"gzip") || star,
        "gzip from nowhere: {w:?}"
    );
    assert!(
        w.identity > 0 || names(b"identity") || star,
        "identity excluded: {w:?}"
    );
}

/// A config file's text: parsed and validated without panicking; what it accepts converts to
/// the settings a worker runs with; what it refuses says why.
pub fn config_text(text: &str) {
    match crate::config::from_config_text(text) {
        Ok(cli) => {
            let _ = crate::config::ServeConfig::from(&cli);
        }
        Err(e) => assert!(!e.trim().is_empty(), "an error without a message"),
    }
}

/// A certificate's bytes (the operator's file, but read as if hostile): never a panic; what is
/// accepted is exactly one DER element (every shorter prefix and any longer input is refused),
/// and its names are lowercase printable ASCII that match themselves.
pub fn certificate(der: &[u8]) {
    use crate::tls::x509::{facts, name_matches};
    let Ok(f) = facts(der) else { return };
    for n in 0..der.len() {
        assert!(facts(&der[..n]).is_err(), "a prefix of {n} bytes accepted");
    }
    let mut longer = der.to_vec();
    longer.push(0);
    assert!(
        facts(&longer).is_err(),
        "a byte after the certificate accepted"
    );
    for name in &f.names {
        assert!(!name.is_empty(), "an empty name");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase()),
            "name {name:?}"
        );
        if !name.contains('*') {
            assert!(name_matches(name, &name.to_ascii_uppercase()), "{name:?}");
        }
    }
}

/// A certificate name against a host (SNI): case never matters; a plain name matches only
/// itself; `*.suffix` matches exactly one more non-empty leftmost label, never the suffix.
pub fn name_match(pattern: &str, host: &str) {
    use crate::tls::x509::name_matches;
    let m = name_matches(pattern, host);
    let swapped = name_matches(&pattern.to_ascii_uppercase(), &host.to_ascii_lowercase());
    assert_eq!(m, swapped, "case changed the answer");
    if !m {
        return;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            let (label, rest) = host.split_once('.').expect("one more label");
            assert!(!label.is_empty() && !label.contains('*'), "label {label:?}");
            assert!(
                rest.eq_ignore_ascii_case(suffix),
                "{host:?} under {pattern:?}"
            );
            assert!(
                !name_matches(pattern, suffix),
                "the wildcard matched its suffix"
            );
        }
        None => assert!(pattern.eq_ignore_ascii_case(host), "{pattern:?} ~ {host:?}"),
    }
}
