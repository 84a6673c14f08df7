//! Malformed / over-limit requests: status, short HTML body with a correct
//! Content-Length, then the server closes the connection.
mod common;
use common::*;
use std::time::Duration;

fn site() -> TempDir {
    let d = TempDir::new("errors");
    d.write("a.txt", b"hello a\n");
    d.write("index.html", b"<h1>index</h1>\n");
    d
}

/// Send `raw` and expect an error response with `status`, a short HTML body
/// whose length matches Content-Length, and the connection closed afterwards.
#[track_caller]
fn expect_error(addr: std::net::SocketAddr, raw: &[u8], status: u16) -> Response {
    let mut c = Conn::open(addr);
    c.send(raw);
    let r = match c.try_read_response(false) {
        Ok(r) => r,
        Err(e) => panic!(
            "request {:?}: expected {}, got no response: {}",
            String::from_utf8_lossy(&raw[..raw.len().min(200)]),
            status,
            e
        ),
    };
    assert_eq!(
        r.status,
        status,
        "request {:?}: {}",
        String::from_utf8_lossy(&raw[..raw.len().min(200)]),
        r.describe()
    );
    let cl = r
        .content_length()
        .unwrap_or_else(|| panic!("error response without Content-Length: {}", r.describe()));
    assert_eq!(cl as usize, r.body.len());
    assert!(!r.body.is_empty(), "error body should be a short HTML page");
    assert!(
        r.body.len() < 4096,
        "error body should be short: {} bytes",
        r.body.len()
    );
    let ct = r.must_header("content-type");
    assert!(ct.starts_with("text/html"), "error Content-Type {:?}", ct);
    assert_eq!(r.must_header("server"), "ringstatic");
    let date = r.must_header("date");
    assert!(is_imf_fixdate(date), "Date {:?}", date);
    c.expect_closed(
        Duration::from_secs(5),
        &format!(
            "after {} for {:?}",
            status,
            String::from_utf8_lossy(&raw[..raw.len().min(80)])
        ),
    );
    r
}

#[test]
fn malformed_request_head_gets_400_and_close() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    expect_error(s.addr, b"this is not http\r\n\r\n", 400);
    expect_error(
        s.addr,
        b"GET /a.txt HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
        400,
    );
    expect_error(
        s.addr,
        b"GET /a.txt HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
        400,
    );
    expect_error(s.addr, b"GET /a.txt FTP/1.1\r\nHost: x\r\n\r\n", 400);
    // The server keeps working.
    assert_eq!(get(s.addr, "/a.txt").status, 200);
}

#[test]
fn request_line_over_8k_gets_414() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let target = format!("/{}", "a".repeat(9000));
    let raw = format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", target);
    expect_error(s.addr, raw.as_bytes(), 414);
    // Something just under the limit is not 414 (404: no such file).
    let target = format!("/{}", "b".repeat(200));
    let r = get(s.addr, &target);
    assert_eq!(r.status, 404, "{}", r.describe());
}

#[test]
fn header_fields_over_8k_total_get_431() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    // One huge field.
    let raw = format!(
        "GET /a.txt HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "v".repeat(9000)
    );
    expect_error(s.addr, raw.as_bytes(), 431);
    // Many medium fields adding up to more than 8 KiB.
    let mut raw = String::from("GET /a.txt HTTP/1.1\r\nHost: x\r\n");
    for i in 0..10 {
        raw.push_str(&format!("X-F{}: {}\r\n", i, "w".repeat(1000)));
    }
    raw.push_str("\r\n");
    expect_error(s.addr, raw.as_bytes(), 431);
    // 4 KiB of headers is fine.
    let mut raw = String::from("GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for i in 0..4 {
        raw.push_str(&format!("X-F{}: {}\r\n", i, "w".repeat(1000)));
    }
    raw.push_str("\r\n");
    let r = request_close(s.addr, raw.as_bytes());
    assert_eq!(r.status, 200, "{}", r.describe());
}

#[test]
fn more_than_100_header_fields_get_431() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let mut raw = String::from("GET /a.txt HTTP/1.1\r\nHost: x\r\n");
    for i in 0..101 {
        raw.push_str(&format!("X-H{}: {}\r\n", i, i));
    }
    raw.push_str("\r\n");
    expect_error(s.addr, raw.as_bytes(), 431);
    // 60 fields are fine.
    let mut raw = String::from("GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for i in 0..60 {
        raw.push_str(&format!("X-H{}: {}\r\n", i, i));
    }
    raw.push_str("\r\n");
    let r = request_close(s.addr, raw.as_bytes());
    assert_eq!(r.status, 200, "{}", r.describe());
}

#[test]
fn http11_without_host_gets_400() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    expect_error(s.addr, b"GET /a.txt HTTP/1.1\r\n\r\n", 400);
    expect_error(s.addr, b"GET /a.txt HTTP/1.1\r\nAccept: */*\r\n\r\n", 400);
}

#[test]
fn http11_with_two_host_headers_gets_400() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    expect_error(
        s.addr,
        b"GET /a.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        400,
    );
    expect_error(
        s.addr,
        b"GET /a.txt HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
        400,
    );
}

#[test]
fn http10_without_host_is_served() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let r = request_close(s.addr, b"GET /a.txt HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"hello a\n");
}

#[test]
fn transfer_encoding_on_get_gets_400() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    expect_error(
        s.addr,
        b"GET /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn content_length_5_on_get_gets_400_but_0_is_fine() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    expect_error(
        s.addr,
        b"GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        400,
    );
    let r = request_close(
        s.addr,
        b"GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"hello a\n");
}

#[test]
fn http2_and_http3_versions_get_505() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    expect_error(s.addr, b"GET /a.txt HTTP/2.0\r\nHost: x\r\n\r\n", 505);
    expect_error(s.addr, b"GET /a.txt HTTP/3.0\r\nHost: x\r\n\r\n", 505);
}

#[test]
fn errors_do_not_take_the_server_down() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let workers = s.wait_workers(2, Duration::from_secs(5));
    for raw in [
        &b"\x00\x01\x02\x03\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    ] {
        let mut c = Conn::open(s.addr);
        let _ = c.try_send(raw);
        let _ = c.read_until_close(Duration::from_secs(5));
        if let Ok(Parsed::Done(r, _)) = parse_response(&c.buf, false, true) {
            assert!(
                r.status >= 400 && r.status < 500,
                "garbage {:?} answered with {}",
                String::from_utf8_lossy(raw),
                r.describe()
            );
        }
    }
    let r = get(s.addr, "/a.txt");
    assert_eq!(r.status, 200);
    assert_eq!(s.worker_pids(), workers, "a worker died and was replaced");
}
