//! Host and authority syntax (RFC 3986 3.2.2-3.2.3, RFC 9112 3.2).
//!
//! The `Host` field, the authority of an absolute-form target and the authority-form target of
//! CONNECT all share `host [ ":" port ]`. A value that is not that shape is a request we cannot
//! route, and RFC 9112 3.2 makes it a 400: checking characters alone would accept
//! `a:b:c`, `[::1` or `1.2.3.4:80:80`, which proxies and virtual hosts read differently.
//!
//! `host` is an IP-literal (`[` IPv6address or IPvFuture `]`), or a reg-name (unreserved,
//! pct-encoded, sub-delims; IPv4 addresses are reg-names too). `port` is `*DIGIT`; we also
//! refuse ports above 65535, which no TCP peer can have.

/// Whether `v` is a valid `Host` field value: `uri-host [ ":" port ]`, or empty (RFC 9112 3.2:
/// a request whose target has no authority sends an empty Host).
pub fn is_valid_host_field(v: &[u8]) -> bool {
    v.is_empty() || is_valid_authority(v, false)
}

/// Whether `v` is `host [ ":" port ]` with a non-empty host; with `port_required` the port must
/// be present and non-empty (CONNECT's authority-form, RFC 9112 3.2.3).
pub fn is_valid_authority(v: &[u8], port_required: bool) -> bool {
    let (host, port) = match split_host_port(v) {
        Some(hp) => hp,
        None => return false,
    };
    if host.is_empty() {
        return false;
    }
    match port {
        None => !port_required,
        Some(p) => is_valid_port(p) && !(port_required && p.is_empty()),
    }
}

/// Splits `host [ ":" port ]`, checking the host; `None` when the host is malformed.
pub fn split_host_port(v: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    if let Some(inner_and_rest) = v.strip_prefix(b"[") {
        let close = memchr::memchr(b']', inner_and_rest)?;
        let inner = &inner_and_rest[..close];
        if !(is_ipv6(inner) || is_ipvfuture(inner)) {
            return None;
        }
        let host = &v[..close + 2];
        return match &inner_and_rest[close + 1..] {
            [] => Some((host, None)),
            [b':', port @ ..] => Some((host, Some(port))),
            _ => None,
        };
    }
    let (host, port) = match memchr::memchr(b':', v) {
        Some(c) => (&v[..c], Some(&v[c + 1..])),
        None => (v, None),
    };
    is_reg_name(host).then_some((host, port))
}

/// `port = *DIGIT`, at most 65535.
fn is_valid_port(p: &[u8]) -> bool {
    p.len() <= 5
        && p.iter().all(u8::is_ascii_digit)
        && p.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')) <= 65535
}

/// `reg-name = *( unreserved / pct-encoded / sub-delims )`.
fn is_reg_name(s: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b == b'%' {
            let hex = |j: usize| s.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else if is_unreserved(b) || is_sub_delim(b) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

pub(crate) fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// `IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )`.
fn is_ipvfuture(s: &[u8]) -> bool {
    let Some(rest) = s.strip_prefix(b"v").or_else(|| s.strip_prefix(b"V")) else {
        return false;
    };
    let Some(dot) = memchr::memchr(b'.', rest) else {
        return false;
    };
    let (ver, tail) = (&rest[..dot], &rest[dot + 1..]);
    !ver.is_empty()
        && ver.iter().all(u8::is_ascii_hexdigit)
        && !tail.is_empty()
        && tail
            .iter()
            .all(|&b| is_unreserved(b) || is_sub_delim(b) || b == b':')
}

/// RFC 3986's IPv6address: eight 16-bit pieces (the last two may be an IPv4 address), one `::`
/// standing for one or more zero pieces.
fn is_ipv6(s: &[u8]) -> bool {
    // Pieces on each side of a single "::".
    let (left, right) = match memchr::memmem::find(s, b"::") {
        Some(i) => (&s[..i], Some(&s[i + 2..])),
        None => (s, None),
    };
    if right.is_some_and(|r| memchr::memmem::find(r, b"::").is_some()) {
        return false;
    }
    // Counts the 16-bit pieces of a ':'-separated list; an IPv4 address counts two and may only
    // come last in the whole address.
    let count = |part: &[u8], may_end_in_v4: bool| -> Option<usize> {
        if part.is_empty() {
            return Some(0);
        }
        let mut pieces = part.split(|&b| b == b':').peekable();
        let mut n = 0;
        while let Some(p) = pieces.next() {
            let last = pieces.peek().is_none();
            if last && may_end_in_v4 && p.contains(&b'.') {
                if !is_ipv4(p) {
                    return None;
                }
                n += 2;
            } else if (1..=4).contains(&p.len()) && p.iter().all(u8::is_ascii_hexdigit) {
                n += 1;
            } else {
                return None;
            }
        }
        Some(n)
    };
    match right {
        None => count(left, true) == Some(8),
        Some(r) => match (count(left, false), count(r, true)) {
            (Some(a), Some(b)) => a + b <= 7,
            _ => false,
        },
    }
}

/// `dec-octet "." dec-octet "." dec-octet "." dec-octet`, no leading zeros.
fn is_ipv4(s: &[u8]) -> bool {
    let mut n = 0;
    for octet in s.split(|&b| b == b'.') {
        n += 1;
        let ok = match octet {
            [d] => d.is_ascii_digit(),
            [b'1'..=b'9', d] => d.is_ascii_digit(),
            [b'1', d, e] => d.is_ascii_digit() && e.is_ascii_digit(),
            [b'2', b'0'..=b'4', d] => d.is_ascii_digit(),
            [b'2', b'5', b'0'..=b'5'] => true,
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    n == 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_hosts_are_accepted() {
        for ok in [
            &b""[..],
            b"example.com",
            b"example.com:8080",
            b"example.com:",
            b"localhost:0",
            b"h:65535",
            b"123.40.56.78",
            b"123.40.56.78:9000",
            b"1.2.3.999",
            b"[::1]",
            b"[::1]:8080",
            b"[::]",
            b"[1:2:3:4:5:6:7:8]",
            b"[1:2:3:4:5:6:1.2.3.4]",
            b"[::ffff:192.0.2.1]",
            b"[fe80::1:2]",
            b"[1::]",
            b"[v1.x:y]",
            b"under_score.example",
            b"a%20b",
            b"!$&'()*+,;=",
            b"~-._",
            b"xn--bcher-kva.example",
        ] {
            assert!(is_valid_host_field(ok), "{:?}", String::from_utf8_lossy(ok));
        }
    }

    #[test]
    fn invalid_hosts_are_refused() {
        for bad in [
            &b"a:b:c"[..],
            b"[::1",
            b"::1",
            b"[::1]x",
            b"[::1]:x",
            b"123.40.56.78:9000:80",
            b"[ab..cd::ef98:0:7654:321]",
            b"[1:2:3:4:5:6:7:8:9]",
            b"[1:2:3:4:5:6:7]",
            b"[1::2::3]",
            b"[12345::]",
            b"[::1.2.3.256]",
            b"[::01.2.3.4]",
            b"[1.2.3.4::]",
            b"[fe80::1%25eth0]",
            b"[v.x]",
            b"[v1.]",
            b"[]",
            b"h:65536",
            b"h:123456",
            b"h:-1",
            b":80",
            b"a b",
            b"a/b",
            b"u@h",
            b"h\xc3\xa9",
            b"a%2",
            b"a%zz",
            b"[::1]]",
        ] {
            assert!(
                !is_valid_host_field(bad),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn connect_needs_a_port() {
        assert!(is_valid_authority(b"example.com:443", true));
        assert!(is_valid_authority(b"[::1]:443", true));
        assert!(!is_valid_authority(b"example.com", true));
        assert!(!is_valid_authority(b"example.com:", true));
        assert!(!is_valid_authority(b"/path", true));
        assert!(!is_valid_authority(b"", true));
        assert!(!is_valid_authority(b"", false));
    }
}
