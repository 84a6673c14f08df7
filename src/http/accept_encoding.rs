//! `Accept-Encoding` (RFC 9110 12.5.3): which content codings a client takes, and how much it
//! wants each. Pure parsing: no allocation, no knowledge of which variants exist.
//!
//! The rules kept: tokens are case-insensitive; `x-gzip` is gzip (RFC 9110 8.4.1.3); a `q`
//! weight of 0 excludes a coding; `*` gives its weight to every coding not named; `identity` is
//! acceptable unless excluded by `identity;q=0`, or by `*;q=0` without an `identity` entry. A
//! header that does not follow the grammar (a bad weight, an unknown parameter, a stray byte) is
//! treated as absent, so it gets the plain representation: a client's typo never costs a 400.
//! An empty header means "no coding, please" (identity only), as the RFC says.

use super::token::trim_ows;

/// Weights in thousandths (`q=0.5` is 500); 0 means not acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weights {
    pub br: u16,
    pub zstd: u16,
    pub gzip: u16,
    /// The plain representation's weight. When the header does not name `identity` (and `*` does
    /// not exclude it) this is [`IDENTITY_LAST`]: acceptable, but after every named coding.
    pub identity: u16,
}

/// The weight of an `identity` the header did not name: below any weight a client can write,
/// so that `br;q=0.5` still prefers br, and above 0, so that identity stays acceptable.
pub const IDENTITY_LAST: u16 = 1;

impl Weights {
    /// What a request without the header (or with a malformed one) gets: identity only.
    pub const IDENTITY_ONLY: Weights = Weights {
        br: 0,
        zstd: 0,
        gzip: 0,
        identity: 1000,
    };
}

/// The weights the header value `value` gives; `None` (no header) and malformed values give
/// [`Weights::IDENTITY_ONLY`].
pub fn parse(value: Option<&[u8]>) -> Weights {
    value
        .and_then(parse_strict)
        .unwrap_or(Weights::IDENTITY_ONLY)
}

/// A named entry's weight; the first of repeated entries counts.
#[derive(Default, Clone, Copy)]
struct Named {
    br: Option<u16>,
    zstd: Option<u16>,
    gzip: Option<u16>,
    identity: Option<u16>,
    star: Option<u16>,
}

fn parse_strict(value: &[u8]) -> Option<Weights> {
    let mut n = Named::default();
    // #( codings [ weight ] ): empty list elements are allowed (RFC 9110 5.6.1).
    for element in value.split(|&b| b == b',') {
        let element = trim_ows(element);
        if element.is_empty() {
            continue;
        }
        let (token, weight) = match element.iter().position(|&b| b == b';') {
            Some(i) => (trim_ows(&element[..i]), weight(&element[i + 1..])?),
            None => (element, 1000),
        };
        if token.is_empty() || !token.iter().all(|&b| is_tchar(b)) {
            return None;
        }
        let slot = if token.eq_ignore_ascii_case(b"br") {
            &mut n.br
        } else if token.eq_ignore_ascii_case(b"zstd") {
            &mut n.zstd
        } else if token.eq_ignore_ascii_case(b"gzip") || token.eq_ignore_ascii_case(b"x-gzip") {
            &mut n.gzip
        } else if token.eq_ignore_ascii_case(b"identity") {
            &mut n.identity
        } else if token == b"*" {
            &mut n.star
        } else {
            continue; // a coding we do not produce (deflate, compress, ...)
        };
        slot.get_or_insert(weight);
    }
    let other = n.star.unwrap_or(0);
    Some(Weights {
        br: n.br.unwrap_or(other),
        zstd: n.zstd.unwrap_or(other),
        gzip: n.gzip.unwrap_or(other),
        identity: match (n.identity, n.star) {
            (Some(q), _) => q,
            (None, Some(0)) => 0,
            (None, _) => IDENTITY_LAST,
        },
    })
}

/// `OWS "q=" qvalue` after the `;` (the only parameter RFC 9110 defines here); `None` for
/// anything else.
fn weight(param: &[u8]) -> Option<u16> {
    let param = trim_ows(param);
    let v = param
        .strip_prefix(b"q=")
        .or_else(|| param.strip_prefix(b"Q="))?;
    qvalue(v)
}

/// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in thousandths.
fn qvalue(v: &[u8]) -> Option<u16> {
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (v, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| (d - b'0') as u16);
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// RFC 9110 5.6.2 tchar.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(v: &str) -> (u16, u16, u16, u16) {
        let w = parse(Some(v.as_bytes()));
        (w.br, w.zstd, w.gzip, w.identity)
    }

    #[test]
    fn browsers_and_plain_lists() {
        assert_eq!(
            w("gzip, deflate, br, zstd"),
            (1000, 1000, 1000, IDENTITY_LAST)
        );
        assert_eq!(w("gzip, deflate, br"), (1000, 0, 1000, IDENTITY_LAST));
        assert_eq!(w("GZIP"), (0, 0, 1000, IDENTITY_LAST));
        assert_eq!(w("x-gzip"), (0, 0, 1000, IDENTITY_LAST));
        assert_eq!(w("Br;Q=0.5 , ZSTD"), (500, 1000, 0, IDENTITY_LAST));
        assert_eq!(w("deflate"), (0, 0, 0, IDENTITY_LAST));
        assert_eq!(w("gzip,,  ,br"), (1000, 0, 1000, IDENTITY_LAST));
    }

    #[test]
    fn weights_star_and_identity() {
        assert_eq!(w("br;q=0, gzip;q=0.8"), (0, 0, 800, IDENTITY_LAST));
        assert_eq!(w("br;q=0.000"), (0, 0, 0, IDENTITY_LAST));
        assert_eq!(w("*"), (1000, 1000, 1000, IDENTITY_LAST));
        assert_eq!(w("*;q=0.3, gzip"), (300, 300, 1000, IDENTITY_LAST));
        assert_eq!(w("*;q=0"), (0, 0, 0, 0));
        assert_eq!(w("*;q=0, identity"), (0, 0, 0, 1000));
        assert_eq!(w("gzip, identity;q=0"), (0, 0, 1000, 0));
        assert_eq!(w("identity;q=0.5, br;q=0.4"), (400, 0, 0, 500));
        assert_eq!(
            w("br;q=1.0, br;q=0"),
            (1000, 0, 0, IDENTITY_LAST),
            "first wins"
        );
        assert_eq!(w(""), (0, 0, 0, IDENTITY_LAST), "empty: identity only");
    }

    #[test]
    fn malformed_is_absent() {
        for bad in [
            "gzip;q=2",
            "gzip;q=1.5",
            "gzip;q=0.1234",
            "gzip;q=",
            "gzip;q=abc",
            "gzip;level=9",
            "gzip;",
            "g zip",
            "gzip, br;q=0.5;q=0.4",
            "\"gzip\"",
            ";q=1",
            "br;q=-0",
        ] {
            assert_eq!(parse(Some(bad.as_bytes())), Weights::IDENTITY_ONLY, "{bad}");
        }
        assert_eq!(parse(None), Weights::IDENTITY_ONLY);
        assert_eq!(parse(Some(&[0xff, b'b', b'r'])), Weights::IDENTITY_ONLY);
    }

    #[test]
    fn qvalues() {
        assert_eq!(qvalue(b"1"), Some(1000));
        assert_eq!(qvalue(b"1."), Some(1000));
        assert_eq!(qvalue(b"1.000"), Some(1000));
        assert_eq!(qvalue(b"1.001"), None);
        assert_eq!(qvalue(b"0.05"), Some(50));
        assert_eq!(qvalue(b"0.005"), Some(5));
        assert_eq!(qvalue(b"0"), Some(0));
        assert_eq!(qvalue(b".5"), None);
        assert_eq!(qvalue(b"00.5"), None);
    }
}
