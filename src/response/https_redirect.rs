//! `--redirect-https`: on a plain listener, every request is answered with a 308 to the same
//! URL on https, so a site moves to HTTPS with one flag. 308 (RFC 9110 15.4.9) rather than 301:
//! the method and body are kept, and browsers cache it like a 301.
//!
//! The exception is `/.well-known/acme-challenge/` (RFC 8555 8.3), served from the root as
//! usual, so an ACME client writing its HTTP-01 tokens there (certbot `--webroot`, lego, acme.sh)
//! can get and renew the certificate the https listener serves.

use crate::http::host::split_host_port;
use crate::http::request::Request;

/// Where ACME HTTP-01 challenge tokens are fetched; never redirected. Compared with the decoded
/// and normalised path.
pub const ACME_CHALLENGE: &[u8] = b"/.well-known/acme-challenge/";

/// The `Location` line of the redirect: `https://`, the Host's name, `:port` unless 443, then
/// the request target as sent (path and query). None without a usable Host (an HTTP/1.0 request
/// without one): that request gets a 400.
pub fn location(req: &Request, port: u16) -> Option<Vec<u8>> {
    let (host, _) = split_host_port(req.host?)?;
    if host.is_empty() {
        return None;
    }
    // An absolute-form target (`GET http://host/p HTTP/1.1`) keeps only its path and query.
    let mut target = req.target;
    if let Some(rest) = strip_scheme(target) {
        target = match memchr::memchr(b'/', rest) {
            Some(i) => &rest[i..],
            None => b"/",
        };
    }
    if !target.starts_with(b"/") {
        return None;
    }
    let mut l = Vec::with_capacity(32 + host.len() + target.len());
    l.extend_from_slice(b"Location: https://");
    l.extend_from_slice(host);
    if port != 443 {
        l.push(b':');
        l.extend_from_slice(port.to_string().as_bytes());
    }
    l.extend_from_slice(target);
    l.extend_from_slice(b"\r\n");
    Some(l)
}

fn strip_scheme(t: &[u8]) -> Option<&[u8]> {
    for s in [&b"http://"[..], b"https://"] {
        if t.len() >= s.len() && t[..s.len()].eq_ignore_ascii_case(s) {
            return Some(&t[s.len()..]);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::{parse_head, Parsed};

    fn loc(head: &[u8], port: u16) -> Option<String> {
        let Ok(Parsed::Complete(req, _)) = parse_head(head) else {
            panic!("head does not parse: {head:?}");
        };
        location(&req, port).map(|l| String::from_utf8(l).unwrap())
    }

    #[test]
    fn same_url_on_https() {
        assert_eq!(
            loc(
                b"GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: example.com\r\n\r\n",
                443
            )
            .as_deref(),
            Some("Location: https://example.com/a/b?x=1&y=%20\r\n")
        );
        // The Host's port is the plain listener's: replaced by the https one.
        assert_eq!(
            loc(b"GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", 8443).as_deref(),
            Some("Location: https://example.com:8443/\r\n")
        );
        assert_eq!(
            loc(b"GET /x HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 443).as_deref(),
            Some("Location: https://[::1]/x\r\n")
        );
        assert_eq!(
            loc(
                b"GET http://example.com/p?q HTTP/1.1\r\nHost: example.com\r\n\r\n",
                443
            )
            .as_deref(),
            Some("Location: https://example.com/p?q\r\n")
        );
    }

    #[test]
    fn no_host_no_redirect() {
        assert_eq!(loc(b"GET / HTTP/1.0\r\n\r\n", 443), None);
        assert_eq!(loc(b"GET / HTTP/1.1\r\nHost:\r\n\r\n", 443), None);
    }
}
