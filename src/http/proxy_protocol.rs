//! The PROXY protocol header (HAProxy's, versions 1 and 2) that a load balancer sends before any
//! HTTP bytes on a listener marked `proxy-protocol`: it carries the client's address, which is
//! what the access log then shows instead of the balancer's. Pure: bytes in, a verdict out.
//!
//! Strict by design, because on such a listener the header is required and anything else means
//! a misconfigured balancer or a client talking past it: a malformed or oversized header is
//! refused and the connection closed, never parsed as HTTP. Version 2 TLVs (ALPN, authority,
//! CRC, NOOP padding, vendor ones) are walked only to check that each fits inside the header,
//! then skipped; none changes what we do.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The version 2 signature (12 bytes).
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest version 1 line, CRLF included (the specification's limit).
pub const V1_MAX: usize = 107;
/// The longest version 2 header we take: the fixed 16 bytes and up to 4 KiB of addresses and
/// TLVs (HAProxy sends a few dozen bytes; the protocol allows 64 KiB, which no balancer needs).
pub const V2_MAX: usize = 16 + 4096;

/// What the bytes received so far amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// A valid header, possibly incomplete so far: wait for more bytes.
    Incomplete,
    /// A complete header of `len` bytes; HTTP starts right after it. `source` is the client's
    /// address, or None where the header says the connection is the balancer's own (v2 LOCAL,
    /// a health check) or the family is unknown: the peer's own address then applies.
    Done {
        len: usize,
        source: Option<SocketAddr>,
    },
    /// Not a valid header; the reason, for the error log.
    Invalid(&'static str),
}

/// Parses the start of a connection's bytes.
pub fn parse(buf: &[u8]) -> Header {
    if buf.is_empty() {
        return Header::Incomplete;
    }
    if buf[0] == b'P' {
        return parse_v1(buf);
    }
    if buf[0] == b'\r' {
        return parse_v2(buf);
    }
    Header::Invalid("no PROXY protocol header")
}

fn parse_v1(buf: &[u8]) -> Header {
    const PREFIX: &[u8] = b"PROXY ";
    let n = buf.len().min(PREFIX.len());
    if buf[..n] != PREFIX[..n] {
        return Header::Invalid("no PROXY protocol header");
    }
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return if buf.len() >= V1_MAX {
            Header::Invalid("PROXY v1 line longer than 107 bytes")
        } else {
            Header::Incomplete
        };
    };
    if lf == 0 || window[lf - 1] != b'\r' {
        return Header::Invalid("PROXY v1 line not ended by CRLF");
    }
    let Ok(line) = std::str::from_utf8(&window[PREFIX.len()..lf - 1]) else {
        return Header::Invalid("PROXY v1 line is not text");
    };
    let len = lf + 1;
    let mut parts = line.split(' ');
    let family = parts.next().unwrap_or("");
    if family == "UNKNOWN" {
        // The balancer does not know the client's address; the rest of the line is ignored.
        return Header::Done { len, source: None };
    }
    let fields: Vec<&str> = parts.collect();
    if fields.len() != 4 {
        return Header::Invalid("PROXY v1 line needs 4 fields after the family");
    }
    let (src, dst) = match family {
        "TCP4" => (
            fields[0].parse::<Ipv4Addr>().map(IpAddr::V4),
            fields[1].parse::<Ipv4Addr>().map(IpAddr::V4),
        ),
        "TCP6" => (
            fields[0].parse::<Ipv6Addr>().map(IpAddr::V6),
            fields[1].parse::<Ipv6Addr>().map(IpAddr::V6),
        ),
        _ => return Header::Invalid("PROXY v1 family is not TCP4, TCP6 or UNKNOWN"),
    };
    let (Ok(src), Ok(_)) = (src, dst) else {
        return Header::Invalid("PROXY v1 address does not match its family");
    };
    let (Some(sport), Some(_)) = (port(fields[2]), port(fields[3])) else {
        return Header::Invalid("PROXY v1 port is not a number from 0 to 65535");
    };
    Header::Done {
        len,
        source: Some(SocketAddr::new(src, sport)),
    }
}

/// A decimal port: digits only, no leading zero (except "0"), at most 65535.
fn port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

fn parse_v2(buf: &[u8]) -> Header {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] != V2_SIGNATURE[..n] {
        return Header::Invalid("no PROXY protocol header");
    }
    if buf.len() < 16 {
        return Header::Incomplete;
    }
    let ver_cmd = buf[12];
    if ver_cmd >> 4 != 2 {
        return Header::Invalid("PROXY v2 version is not 2");
    }
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        _ => return Header::Invalid("PROXY v2 command is not LOCAL or PROXY"),
    };
    let family = buf[13] >> 4;
    let transport = buf[13] & 0x0f;
    let body_len = u16::from_be_bytes([buf[14], buf[15]]) as usize;
    let len = 16 + body_len;
    if len > V2_MAX {
        return Header::Invalid("PROXY v2 header longer than 4 KiB");
    }
    if buf.len() < len {
        return Header::Incomplete;
    }
    let body = &buf[16..len];
    if local {
        // The balancer's own connection (a health check): its address is the peer's.
        return Header::Done { len, source: None };
    }
    if family > 3 || transport > 2 {
        return Header::Invalid("PROXY v2 address family or transport unknown");
    }
    if transport == 2 {
        return Header::Invalid("PROXY v2 header announces a datagram on a stream");
    }
    let (source, addr_len) = match family {
        // AF_INET: 4 + 4 address bytes, 2 + 2 port bytes.
        1 if transport == 1 => {
            if body.len() < 12 {
                return Header::Invalid("PROXY v2 header too short for IPv4 addresses");
            }
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let port = u16::from_be_bytes([body[8], body[9]]);
            (Some(SocketAddr::new(ip.into(), port)), 12)
        }
        // AF_INET6: 16 + 16 address bytes, 2 + 2 port bytes.
        2 if transport == 1 => {
            if body.len() < 36 {
                return Header::Invalid("PROXY v2 header too short for IPv6 addresses");
            }
            let mut a = [0u8; 16];
            a.copy_from_slice(&body[..16]);
            let port = u16::from_be_bytes([body[32], body[33]]);
            (Some(SocketAddr::new(Ipv6Addr::from(a).into(), port)), 36)
        }
        // AF_UNIX: 108 + 108 path bytes; no IP address to log.
        3 => {
            if body.len() < 216 {
                return Header::Invalid("PROXY v2 header too short for UNIX addresses");
            }
            (None, 216)
        }
        // UNSPEC (or an INET family with an unspecified transport): addresses unknown, and
        // whatever the body holds is skipped.
        _ => return Header::Done { len, source: None },
    };
    if let Err(why) = check_tlvs(&body[addr_len..]) {
        return Header::Invalid(why);
    }
    Header::Done { len, source }
}

/// Walks the TLVs after the addresses: each is type (1 byte), length (2 bytes), value, and must
/// end inside the header.
fn check_tlvs(mut rest: &[u8]) -> Result<(), &'static str> {
    while !rest.is_empty() {
        if rest.len() < 3 {
            return Err("PROXY v2 TLV truncated");
        }
        let vlen = u16::from_be_bytes([rest[1], rest[2]]) as usize;
        if rest.len() < 3 + vlen {
            return Err("PROXY v2 TLV runs past the header");
        }
        rest = &rest[3 + vlen..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(buf: &[u8]) -> (usize, Option<SocketAddr>) {
        match parse(buf) {
            Header::Done { len, source } => (len, source),
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(buf)),
        }
    }

    fn invalid(buf: &[u8]) -> &'static str {
        match parse(buf) {
            Header::Invalid(why) => why,
            other => panic!("expected invalid, got {other:?} for {buf:?}"),
        }
    }

    /// A v2 header: command, family/transport byte, body.
    fn v2(cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
        let mut v = V2_SIGNATURE.to_vec();
        v.push(0x20 | cmd);
        v.push(fam);
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn inet4_body() -> Vec<u8> {
        let mut b = vec![192, 0, 2, 7, 10, 0, 0, 1];
        b.extend_from_slice(&51000u16.to_be_bytes());
        b.extend_from_slice(&80u16.to_be_bytes());
        b
    }

    #[test]
    fn v1_tcp4_tcp6_unknown() {
        let h = b"PROXY TCP4 192.0.2.7 10.0.0.1 51000 80\r\nGET / HTTP/1.1\r\n";
        let (len, src) = done(h);
        assert_eq!(&h[len..len + 3], b"GET");
        assert_eq!(src, Some("192.0.2.7:51000".parse().unwrap()));
        let (_, src) = done(b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 443\r\n");
        assert_eq!(src, Some("[2001:db8::7]:4000".parse().unwrap()));
        let (len, src) = done(b"PROXY UNKNOWN\r\n");
        assert_eq!((len, src), (15, None));
        let (_, src) = done(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n");
        assert_eq!(src, None);
    }

    #[test]
    fn v1_every_split_is_incomplete_until_the_crlf() {
        let h = b"PROXY TCP4 192.0.2.7 10.0.0.1 51000 80\r\n";
        for cut in 0..h.len() {
            assert_eq!(parse(&h[..cut]), Header::Incomplete, "cut at {cut}");
        }
        assert!(matches!(parse(h), Header::Done { .. }));
    }

    #[test]
    fn v1_malformed_forms() {
        invalid(b"GET / HTTP/1.1\r\n\r\n");
        invalid(b"PROXX TCP4");
        invalid(b"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n");
        invalid(b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n");
        invalid(b"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n");
        invalid(b"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n");
        invalid(b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n");
        invalid(b"PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n");
        invalid(b"PROXY TCP4 1.2.3.256 1.2.3.4 1 2\r\n");
        invalid(b"PROXY TCP4 ::1 1.2.3.4 1 2\r\n");
        invalid(b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n");
        invalid(b"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n");
        invalid(b"PROXY TCP4 1.2.3.4 1.2.3.4 -1 2\r\n");
        invalid(b"PROXY TCP4 1.2.3.4 1.2.3.4 080 2\r\n");
        invalid(b"PROXY TCP4 1.2.3.4 1.2.3.4 +1 2\r\n");
        invalid(b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\r\r\n");
        invalid(b"PROXY TCP4 1.2.3.4 1.2.3.4 1 \xff\r\n");
        invalid(b"PROXY \r\n");
        // No CRLF within 107 bytes.
        let mut long = b"PROXY TCP4 ".to_vec();
        long.resize(V1_MAX, b'1');
        assert_eq!(
            invalid(&long),
            "PROXY v1 line longer than 107 bytes",
            "{long:?}"
        );
    }

    #[test]
    fn v2_inet4_inet6_local_unspec_unix() {
        let mut h = v2(1, 0x11, &inet4_body());
        h.extend_from_slice(b"GET /");
        let (len, src) = done(&h);
        assert_eq!(len, 28);
        assert_eq!(src, Some("192.0.2.7:51000".parse().unwrap()));

        let mut b6 = Vec::new();
        b6.extend_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
        b6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        b6.extend_from_slice(&4000u16.to_be_bytes());
        b6.extend_from_slice(&443u16.to_be_bytes());
        let (len, src) = done(&v2(1, 0x21, &b6));
        assert_eq!(len, 16 + 36);
        assert_eq!(src, Some("[2001:db8::7]:4000".parse().unwrap()));

        // LOCAL (a health check): whatever follows is skipped, the peer's address applies.
        assert_eq!(done(&v2(0, 0x00, &[])), (16, None));
        assert_eq!(done(&v2(0, 0x11, &inet4_body())), (28, None));
        // UNSPEC family with PROXY: addresses unknown.
        assert_eq!(done(&v2(1, 0x00, &[1, 2, 3])), (19, None));
        assert_eq!(done(&v2(1, 0x31, &[0u8; 216])), (16 + 216, None));
    }

    #[test]
    fn v2_tlvs_are_skipped_and_checked() {
        let mut body = inet4_body();
        body.extend_from_slice(&[0x01, 0, 2, b'h', b'2']); // ALPN
        body.extend_from_slice(&[0x04, 0, 0]); // NOOP, empty
        body.extend_from_slice(&[0xE0, 0, 3, 1, 2, 3]); // a custom one
        let (len, src) = done(&v2(1, 0x11, &body));
        assert_eq!(len, 16 + body.len());
        assert_eq!(src, Some("192.0.2.7:51000".parse().unwrap()));

        let mut overrun = inet4_body();
        overrun.extend_from_slice(&[0x01, 0, 9, b'h']);
        assert_eq!(
            invalid(&v2(1, 0x11, &overrun)),
            "PROXY v2 TLV runs past the header"
        );
        let mut stub = inet4_body();
        stub.extend_from_slice(&[0x01, 0]);
        assert_eq!(invalid(&v2(1, 0x11, &stub)), "PROXY v2 TLV truncated");
    }

    #[test]
    fn v2_every_split_is_incomplete_until_the_end() {
        let h = v2(1, 0x11, &inet4_body());
        for cut in 0..h.len() {
            assert_eq!(parse(&h[..cut]), Header::Incomplete, "cut at {cut}");
        }
    }

    #[test]
    fn v2_malformed_forms() {
        let mut sig = V2_SIGNATURE.to_vec();
        sig[11] = b'X';
        invalid(&sig);
        let mut bad_version = v2(1, 0x11, &inet4_body());
        bad_version[12] = 0x11;
        assert_eq!(invalid(&bad_version), "PROXY v2 version is not 2");
        assert_eq!(
            invalid(&v2(2, 0x11, &inet4_body())),
            "PROXY v2 command is not LOCAL or PROXY"
        );
        invalid(&v2(1, 0x12, &inet4_body())); // UDP
        invalid(&v2(1, 0x41, &inet4_body())); // family 4
        invalid(&v2(1, 0x13, &inet4_body())); // transport 3
        invalid(&v2(1, 0x11, &inet4_body()[..11]));
        invalid(&v2(1, 0x21, &inet4_body()));
        invalid(&v2(1, 0x31, &[0u8; 100]));
        // A length beyond what we take is refused before waiting for it.
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert_eq!(invalid(&huge), "PROXY v2 header longer than 4 KiB");
    }
}
