//! Listeners marked `proxy-protocol`: raw PROXY v1 and v2 headers (split anywhere, TLVs, LOCAL)
//! before the request, the client address they carry in the access log, every malformed form
//! closed with no request parsed, silent and half-sent headers closed by the header timeout,
//! and `--trusted-proxy` refusing a header from any other peer.
mod common;
use common::*;
use std::time::{Duration, Instant};

const REQ: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: x\r\nUser-Agent: pp-test\r\n\r\n";
const SIG: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

fn v2(cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut v = SIG.to_vec();
    v.push(0x20 | cmd);
    v.push(fam);
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// PROXY v2 for TCP over IPv4 from `src`:`port`, with TLVs after the addresses.
fn v2_inet4(src: [u8; 4], port: u16, tlvs: &[u8]) -> Vec<u8> {
    let mut b = src.to_vec();
    b.extend_from_slice(&[127, 0, 0, 1]);
    b.extend_from_slice(&port.to_be_bytes());
    b.extend_from_slice(&80u16.to_be_bytes());
    b.extend_from_slice(tlvs);
    v2(1, 0x11, &b)
}

fn start(d: &TempDir, extra: &[&str]) -> Server {
    d.write("www/index.html", b"behind a proxy\n");
    let log = d.join("access.log");
    let mut args = vec![
        "--listen".to_string(),
        "127.0.0.1:0,proxy-protocol".to_string(),
        "--workers".to_string(),
        "1".to_string(),
        "--access-log".to_string(),
        log.to_str().unwrap().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(d.join("www").to_str().unwrap().to_string());
    Server::spawn(&args, 1)
}

/// Waits (5 s at most) until the access log has `n` lines; returns them.
fn log_lines(d: &TempDir, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(d.join("access.log")).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= n || Instant::now() >= deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `raw` on a new connection and expects the connection closed with no byte of answer.
fn expect_refused(srv: &Server, raw: &[u8], what: &str) {
    let mut c = Conn::open(srv.addr);
    let _ = c.try_send(raw);
    c.expect_closed(Duration::from_secs(5), what);
    assert!(
        c.buf.is_empty(),
        "{what}: got {:?}",
        String::from_utf8_lossy(&c.buf)
    );
}

#[test]
fn v1_and_v2_headers_carry_the_client_address_into_the_log() {
    let d = TempDir::new("pp-ok");
    let srv = start(&d, &[]);
    // v1, then a second request on the same connection: the header comes once.
    let mut c = Conn::open(srv.addr);
    c.send(b"PROXY TCP4 192.0.2.7 127.0.0.1 51000 80\r\n");
    c.send(REQ);
    let r = c.read_response(false);
    assert_eq!((r.status, r.body_str().as_str()), (200, "behind a proxy\n"));
    c.send(REQ);
    assert_eq!(c.read_response(false).status, 200);
    drop(c);
    // v1 TCP6, header and request in one write.
    let mut raw = b"PROXY TCP6 2001:db8::7 ::1 4000 80\r\n".to_vec();
    raw.extend_from_slice(REQ);
    assert_eq!(request(srv.addr, &raw).status, 200);
    // v2 with TLVs (ALPN, NOOP, a vendor one), split at every awkward place.
    let mut tlvs = vec![0x01, 0, 8];
    tlvs.extend_from_slice(b"http/1.1");
    tlvs.extend_from_slice(&[0x04, 0, 3, 0, 0, 0, 0xE0, 0, 1, 9]);
    let hdr = v2_inet4([198, 51, 100, 4], 4444, &tlvs);
    let mut c = Conn::open(srv.addr);
    for part in [
        &hdr[..1],
        &hdr[1..12],
        &hdr[12..15],
        &hdr[15..30],
        &hdr[30..],
    ] {
        c.send(part);
        std::thread::sleep(Duration::from_millis(30));
    }
    c.send(REQ);
    assert_eq!(c.read_response(false).status, 200);
    drop(c);
    // v2 with the header's end and the request's start in one write.
    let mut raw = v2_inet4([203, 0, 113, 9], 1, &[]);
    raw.extend_from_slice(REQ);
    let mut c = Conn::open(srv.addr);
    c.send(&raw[..10]);
    std::thread::sleep(Duration::from_millis(30));
    c.send(&raw[10..40]);
    std::thread::sleep(Duration::from_millis(30));
    c.send(&raw[40..]);
    assert_eq!(c.read_response(false).status, 200);
    drop(c);
    // v2 LOCAL (a balancer's health check) and v1 UNKNOWN: the peer's own address is logged.
    let mut raw = v2(0, 0x00, &[]);
    raw.extend_from_slice(REQ);
    assert_eq!(request(srv.addr, &raw).status, 200);
    let mut raw = b"PROXY UNKNOWN\r\n".to_vec();
    raw.extend_from_slice(REQ);
    assert_eq!(request(srv.addr, &raw).status, 200);

    let lines = log_lines(&d, 7);
    let who: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        who,
        [
            "192.0.2.7",
            "192.0.2.7",
            "2001:db8::7",
            "198.51.100.4",
            "203.0.113.9",
            "127.0.0.1",
            "127.0.0.1"
        ],
        "{lines:#?}"
    );
}

#[test]
fn missing_malformed_and_truncated_headers_close_without_a_request() {
    let d = TempDir::new("pp-bad");
    let srv = start(&d, &["--header-timeout", "1"]);
    let mut bad: Vec<(&str, Vec<u8>)> = vec![
        ("plain HTTP", REQ.to_vec()),
        ("lowercase", b"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n".to_vec()),
        ("bare LF", b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n".to_vec()),
        ("family", b"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n".to_vec()),
        ("fields", b"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n".to_vec()),
        ("address", b"PROXY TCP4 1.2.3.999 1.2.3.4 1 2\r\n".to_vec()),
        ("port", b"PROXY TCP4 1.2.3.4 1.2.3.4 70000 2\r\n".to_vec()),
        ("v1 too long", {
            let mut v = b"PROXY TCP4 ".to_vec();
            v.resize(120, b'1');
            v
        }),
        ("v2 signature", {
            let mut v = v2_inet4([1, 2, 3, 4], 1, &[]);
            v[5] = b'X';
            v
        }),
        ("v2 version", {
            let mut v = v2_inet4([1, 2, 3, 4], 1, &[]);
            v[12] = 0x31;
            v
        }),
        ("v2 command", v2(3, 0x11, &[0; 12])),
        ("v2 UDP", v2(1, 0x12, &[0; 12])),
        ("v2 short addresses", v2(1, 0x11, &[0; 11])),
        (
            "v2 TLV overrun",
            v2_inet4([1, 2, 3, 4], 1, &[0x01, 0, 50, 1]),
        ),
        ("v2 TLV truncated", v2_inet4([1, 2, 3, 4], 1, &[0x01, 0])),
        ("v2 too long", {
            let mut v = SIG.to_vec();
            v.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
            v
        }),
    ];
    for (what, raw) in bad.iter_mut() {
        raw.extend_from_slice(REQ);
        expect_refused(&srv, raw, what);
    }
    // Truncated: the start of a header, then nothing; and nothing at all. The header timeout
    // (after the 1 s accept deferral for the silent one) closes both.
    expect_refused(&srv, b"PROXY TCP4 192.0.2.7", "truncated v1");
    expect_refused(&srv, &v2_inet4([1, 2, 3, 4], 1, &[])[..20], "truncated v2");
    expect_refused(&srv, b"", "silent client");
    // The worker lived through all of it and still serves a good header.
    let mut raw = b"PROXY TCP4 192.0.2.1 127.0.0.1 1 80\r\n".to_vec();
    raw.extend_from_slice(REQ);
    assert_eq!(request(srv.addr, &raw).status, 200);
    let lines = log_lines(&d, 1);
    assert_eq!(
        lines.len(),
        1,
        "no request was parsed from a bad header: {lines:#?}"
    );
    assert!(lines[0].starts_with("192.0.2.1 "), "{lines:#?}");
}

#[test]
fn trusted_proxy_refuses_headers_from_other_peers() {
    let mut raw = b"PROXY TCP4 192.0.2.7 127.0.0.1 51000 80\r\n".to_vec();
    raw.extend_from_slice(REQ);

    let d = TempDir::new("pp-untrusted");
    let srv = start(
        &d,
        &[
            "--trusted-proxy",
            "10.0.0.0/8",
            "--trusted-proxy",
            "::1",
            "--status-listen",
            "127.0.0.1:0",
        ],
    );
    expect_refused(&srv, &raw, "a header from 127.0.0.1, not a trusted proxy");
    // The refusal is counted.
    let st = srv.status_addr();
    let deadline = Instant::now() + Duration::from_secs(10);
    let want =
        "ringstatic_proxy_protocol_refused_total{worker=\"all\",reason=\"untrusted_peer\"} 1\n";
    while !request_close(st, b"GET /metrics HTTP/1.1\r\nHost: s\r\n\r\n")
        .body_str()
        .contains(want)
    {
        assert!(Instant::now() < deadline, "refusal not counted");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(srv);

    let d = TempDir::new("pp-trusted");
    let srv = start(&d, &["--trusted-proxy", "127.0.0.0/8"]);
    assert_eq!(request(srv.addr, &raw).status, 200);
    assert!(log_lines(&d, 1)[0].starts_with("192.0.2.7 "));
}
