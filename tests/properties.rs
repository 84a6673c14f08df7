//! Property tests of the pure parsers: the promises in `ringstatic::invariants` (the same
//! checks the fuzz targets run) on generated inputs shaped like what they parse, and round
//! trips (format a value, parse it back).
use proptest::prelude::*;
use ringstatic::http::conditional::Validators;
use ringstatic::http::date::{format_http_date, parse_http_date};
use ringstatic::http::host::{is_valid_authority, is_valid_host_field};
use ringstatic::http::range::{decide_range, ByteRange, RangeDecision};
use ringstatic::invariants;

/// Bytes drawn mostly from what a request head is made of, so that generated inputs get deep.
fn head_bytes() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::sample::select(vec![
        &b"GET "[..],
        b"HEAD ",
        b"get ",
        b"CONNECT ",
        b"/",
        b"/a/../b",
        b"http://h:80/x",
        b" HTTP/1.1",
        b" HTTP/1.0",
        b" HTTP/2.0",
        b"\r\n",
        b"\n",
        b"\r",
        b"Host: h",
        b"Host: [::1]:8",
        b"Content-Length: 00",
        b"Transfer-Encoding: chunked",
        b"Range: bytes=0-1",
        b"If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT",
        b"Connection: close",
        b": ",
        b" ",
        b"\t",
        b"\0",
        b"\xff",
        b"x",
    ]);
    prop::collection::vec(pieces, 0..24).prop_map(|v| v.concat())
}

/// A well-formed head with a random tail, split points and all.
fn good_head() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec!["GET", "HEAD", "POST", "BREW"]),
        "/[a-z./]{0,12}",
        prop::sample::select(vec!["HTTP/1.1", "HTTP/1.0"]),
        prop::collection::vec("[A-Za-z-]{1,8}: [ -~]{0,12}", 0..5),
        prop::sample::select(vec!["\r\n", "\n"]),
        prop::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(m, t, v, fields, eol, tail)| {
            let mut b = format!("{m} {t} {v}{eol}Host: h{eol}").into_bytes();
            for f in fields {
                b.extend_from_slice(f.as_bytes());
                b.extend_from_slice(eol.as_bytes());
            }
            b.extend_from_slice(eol.as_bytes());
            b.extend_from_slice(&tail);
            b
        })
}

fn target_bytes() -> impl Strategy<Value = Vec<u8>> {
    let seg = prop::sample::select(vec![
        &b"a"[..],
        b"..",
        b".",
        b"",
        b"%2e%2e",
        b"%2F",
        b"%00",
        b"b.txt",
        b"?q=/../",
        b"#f",
        b"%",
        b"\xc3\xa9",
    ]);
    prop::collection::vec(seg, 0..10).prop_map(|segs| {
        let mut b = Vec::new();
        for s in segs {
            b.push(b'/');
            b.extend_from_slice(s);
        }
        b
    })
}

fn validators() -> impl Strategy<Value = (String, i64, bool)> {
    (
        prop::sample::select(vec!["\"1a-2b\"", "W/\"1a-2b\"", "\"\""]),
        0i64..4_000_000_000,
        any::<bool>(),
    )
        .prop_map(|(e, t, s)| (e.to_string(), t, s))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn a_head_parses_the_same_whole_or_cut_anywhere(buf in head_bytes()) {
        invariants::head(&buf);
    }

    #[test]
    fn a_well_formed_head_parses_the_same_cut_anywhere(buf in good_head()) {
        invariants::head(&buf);
    }

    #[test]
    fn a_normalised_path_never_climbs_above_the_root(raw in target_bytes()) {
        invariants::target(&raw);
    }

    #[test]
    fn a_range_never_reaches_past_the_file(
        specs in prop::collection::vec((prop::option::of(0u64..3000), prop::option::of(0u64..3000)), 0..20),
        len in 0u64..2000,
        junk in "[ ,=a-z0-9-]{0,6}",
    ) {
        let mut h = b"bytes=".to_vec();
        for (i, (a, b)) in specs.iter().enumerate() {
            if i > 0 { h.push(b','); }
            if let Some(a) = a { h.extend_from_slice(a.to_string().as_bytes()); }
            h.push(b'-');
            if let Some(b) = b { h.extend_from_slice(b.to_string().as_bytes()); }
        }
        invariants::range(&h, len);
        h.extend_from_slice(junk.as_bytes());
        invariants::range(&h, len);
        invariants::range(junk.as_bytes(), len);
    }

    #[test]
    fn a_range_header_round_trips(
        bounds in prop::collection::vec((0u64..1000, 0u64..50), 1..=16),
        len in 1000u64..5000,
    ) {
        // Disjoint ranges inside the file, in any order: parsed back exactly.
        let mut at = 0;
        let mut rs = Vec::new();
        for (gap, n) in bounds {
            let start = at + gap % 40;
            let r = ByteRange { start, end: start + n };
            at = r.end + 1;
            rs.push(r);
        }
        prop_assume!(at <= len);
        rs.reverse();
        let h = format!(
            "bytes={}",
            rs.iter().map(|r| format!("{}-{}", r.start, r.end)).collect::<Vec<_>>().join(", ")
        );
        let want = if rs.len() == 1 { RangeDecision::Single(rs[0]) } else { RangeDecision::Multi(rs) };
        prop_assert_eq!(decide_range(h.as_bytes(), len), want);
    }

    #[test]
    fn a_suffix_of_any_length_is_the_tail_or_all_of_the_file(n in "[1-9][0-9]{0,40}", len in 1u64..10_000) {
        let got = decide_range(format!("bytes=-{n}").as_bytes(), len);
        let want = match n.parse::<u64>() {
            Ok(k) if k < len => ByteRange { start: len - k, end: len - 1 },
            _ => ByteRange { start: 0, end: len - 1 },
        };
        prop_assert_eq!(got, RangeDecision::Single(want));
    }

    #[test]
    fn conditions_keep_their_promises(
        fields in prop::collection::vec(prop::sample::select(vec![
            "", "*", "\"1a-2b\"", "W/\"1a-2b\"", "\"x\", \"1a-2b\"", "junk",
            "Sun, 06 Nov 1994 08:49:37 GMT", "Thu, 01 Jan 1970 00:00:00 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT", ",,",
        ]), 5),
        (etag, lm, strong) in validators(),
        use_lm in any::<bool>(),
    ) {
        let v = Validators { etag: etag.as_bytes(), last_modified: lm, last_modified_strong: strong };
        let lm_text = format_http_date(lm);
        let mut f: Vec<&[u8]> = fields.iter().map(|s| s.as_bytes()).collect();
        if use_lm {
            f[4] = &lm_text;
            f[3] = &lm_text;
        }
        invariants::conditional([f[0], f[1], f[2], f[3], f[4]], &v);
    }

    #[test]
    fn a_date_round_trips(secs in 0i64..253_402_300_800, junk in prop::collection::vec(any::<u8>(), 0..40)) {
        invariants::date(&junk, secs);
        let text = format_http_date(secs);
        prop_assert_eq!(parse_http_date(&text), Some(secs));
        // With optional whitespace around it too.
        let padded = [&b" \t"[..], &text, b" "].concat();
        prop_assert_eq!(parse_http_date(&padded), Some(secs));
    }

    #[test]
    fn every_ip_address_is_a_valid_host(v6 in any::<[u16; 8]>(), v4 in any::<[u8; 4]>(), port in 0u16..) {
        let v6 = std::net::Ipv6Addr::from(v6);
        let v4 = std::net::Ipv4Addr::from(v4);
        for host in [format!("[{v6}]"), format!("[{v6}]:{port}"), format!("{v4}:{port}"), format!("[::ffff:{v4}]")] {
            prop_assert!(is_valid_host_field(host.as_bytes()), "{}", host);
            invariants::host(host.as_bytes());
        }
        let authority = format!("{v4}:{port}");
        prop_assert!(is_valid_authority(authority.as_bytes(), true));
    }

    #[test]
    fn a_host_is_never_more_than_a_host(v in prop::collection::vec(prop::sample::select(b"[]:.%0123456789abcdefv@/ ?#-_~!$&'()*+,;=\x7f\xc3".to_vec()), 0..24)) {
        invariants::host(&v);
    }

    #[test]
    fn accept_encoding_weights_come_from_the_header(parts in prop::collection::vec((
        prop::sample::select(vec!["br", "BR", "zstd", "gzip", "x-gzip", "identity", "*", "deflate", "", "b r"]),
        prop::sample::select(vec!["", ";q=0", ";q=1", ";q=0.5", ";q=0.001", ";q=1.0001", ";q=", ";level=1", " ; q=0.9"]),
    ), 0..6), sep in prop::sample::select(vec![",", ", ", " ,", ",,"])) {
        let v: Vec<String> = parts.iter().map(|(t, q)| format!("{t}{q}")).collect();
        invariants::accept_encoding(v.join(sep).as_bytes());
    }

    #[test]
    fn a_config_file_never_panics(lines in prop::collection::vec((
        prop::sample::select(vec!["root", "listen", "workers", "cache-valid", "cache-bytes", "inline-max",
            "header-timeout", "serve-dotfiles", "large-body", "access-log", "# c", "", "bogus", "pid-file"]),
        prop::sample::select(vec![" ", " = ", "\t", "="]),
        "[ -~]{0,16}",
    ), 0..6)) {
        let text: String = lines.iter().map(|(n, s, v)| format!("{n}{s}{v}\n")).collect();
        invariants::config_text(&text);
    }

    #[test]
    fn a_proxy_header_parses_the_same_however_it_arrives(
        v4 in any::<([u8; 4], [u8; 4], u16, u16)>(),
        v6 in any::<([u16; 8], [u16; 8])>(),
        tlvs in prop::collection::vec((any::<u8>(), prop::collection::vec(any::<u8>(), 0..8)), 0..3),
        tail in prop::collection::vec(any::<u8>(), 0..16),
        cut in any::<prop::sample::Index>(),
    ) {
        let (src, dst, sp, dp) = v4;
        let src = std::net::Ipv4Addr::from(src);
        let dst = std::net::Ipv4Addr::from(dst);
        let (s6, d6) = (std::net::Ipv6Addr::from(v6.0), std::net::Ipv6Addr::from(v6.1));
        let mut inputs = vec![
            format!("PROXY TCP4 {src} {dst} {sp} {dp}\r\n").into_bytes(),
            format!("PROXY TCP6 {s6} {d6} {sp} {dp}\r\n").into_bytes(),
        ];
        let mut body = [src.octets(), dst.octets()].concat();
        body.extend_from_slice(&sp.to_be_bytes());
        body.extend_from_slice(&dp.to_be_bytes());
        for (kind, value) in &tlvs {
            body.push(*kind);
            body.extend_from_slice(&(value.len() as u16).to_be_bytes());
            body.extend_from_slice(value);
        }
        let mut v2 = ringstatic::http::proxy_protocol::V2_SIGNATURE.to_vec();
        v2.extend_from_slice(&[0x21, 0x11]);
        v2.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v2.extend_from_slice(&body);
        inputs.push(v2);
        for mut input in inputs {
            input.extend_from_slice(&tail);
            invariants::proxy_header(&input);
            invariants::proxy_header(&input[..cut.index(input.len() + 1)]);
        }
    }

    #[test]
    fn a_certificate_changed_anywhere_is_read_or_refused_cleanly(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        which in any::<bool>(),
    ) {
        let mut der = if which { SAN_CERT } else { CN_CERT }.to_vec();
        for (i, b) in edits {
            let i = i.index(der.len());
            der[i] = b;
        }
        invariants::certificate(&der);
        invariants::certificate(&der[..cut.index(der.len() + 1)]);
    }

    #[test]
    fn a_certificate_name_matches_only_as_promised(
        labels in prop::collection::vec("[a-zA-Z0-9*-]{0,3}", 1..4),
        other in prop::collection::vec("[a-zA-Z0-9*-]{0,3}", 1..4),
        wild in any::<bool>(),
    ) {
        let name = labels.join(".");
        let pattern = if wild { format!("*.{name}") } else { name.clone() };
        for host in [
            other.join("."),
            format!("{}.{name}", other[0]),
            format!("{}.{}", other.join("."), name.to_ascii_uppercase()),
            name.clone(),
        ] {
            invariants::name_match(&pattern, &host);
        }
    }
}

/// The x509 fuzz target's seeds: a certificate with subjectAltName (UTCTime) and one with only
/// a commonName (GeneralizedTime), made by the openssl CLI.
const SAN_CERT: &[u8] = include_bytes!("../fuzz/corpus/x509/san-utctime.der");
const CN_CERT: &[u8] = include_bytes!("../fuzz/corpus/x509/cn-generalizedtime.der");

#[test]
fn the_seed_certificates_are_read() {
    use ringstatic::tls::x509::facts;
    let san = facts(SAN_CERT).unwrap();
    assert_eq!(san.names, ["example.com", "*.example.com"]);
    assert_eq!(san.not_after - san.not_before, 90 * 86_400);
    let cn = facts(CN_CERT).unwrap();
    assert_eq!(cn.names, ["only.example.net"]);
    assert!(cn.not_after > 2_524_608_000, "after 2049");
    invariants::certificate(SAN_CERT);
    invariants::certificate(CN_CERT);
}
