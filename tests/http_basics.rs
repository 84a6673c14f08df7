//! Response headers, methods, keep-alive, pipelining.
mod common;
use common::*;
use std::time::Duration;

fn site() -> TempDir {
    let d = TempDir::new("basics");
    d.write_aged("index.html", b"<!doctype html><title>home</title>\n");
    d.write_aged("a.txt", b"hello a\n");
    d.write_aged("b.txt", b"bee bee bee\n");
    d.write_aged("c.txt", b"sea\n");
    d.write_aged("page.html", b"<p>page</p>\n");
    d.write_aged("app.js", b"console.log(1);\n");
    d.write_aged("blob.zzqx", b"\x00\x01\x02unknown");
    d
}

#[test]
fn get_file_has_server_date_length_lastmodified_strong_etag_accept_ranges() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let r = get(s.addr, "/page.html");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"<p>page</p>\n");
    assert_eq!(r.must_header("server"), "ringstatic");
    let date = r.must_header("date");
    assert!(
        is_imf_fixdate(date),
        "Date is not an IMF-fixdate: {:?}",
        date
    );
    let lm = r.must_header("last-modified");
    assert!(
        is_imf_fixdate(lm),
        "Last-Modified is not an IMF-fixdate: {:?}",
        lm
    );
    assert_eq!(r.must_header("content-length"), "12");
    let etag = r.must_header("etag");
    assert!(
        etag.len() >= 3 && etag.starts_with('"') && etag.ends_with('"'),
        "ETag must be a quoted strong tag: {:?}",
        etag
    );
    assert!(!etag.starts_with("W/"), "ETag must be strong: {:?}", etag);
    assert_eq!(r.must_header("accept-ranges"), "bytes");
    assert!(
        r.header("cache-control").is_none(),
        "Cache-Control must be absent by default: {}",
        r.describe()
    );
}

#[test]
fn content_type_by_extension_html_js_unknown() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let r = get(s.addr, "/page.html");
    assert_eq!(r.must_header("content-type"), "text/html; charset=utf-8");
    let r = get(s.addr, "/app.js");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.must_header("content-type"),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(r.body, b"console.log(1);\n");
    let r = get(s.addr, "/blob.zzqx");
    assert_eq!(r.status, 200);
    assert_eq!(r.must_header("content-type"), "application/octet-stream");
    assert_eq!(r.body, b"\x00\x01\x02unknown");
}

#[test]
fn cache_control_flag_sets_header_on_files() {
    let d = site();
    let s = Server::start(d.path(), &["--cache-control", "public, max-age=60"]);
    let r = get(s.addr, "/a.txt");
    assert_eq!(r.status, 200);
    assert_eq!(r.must_header("cache-control"), "public, max-age=60");
}

#[test]
fn head_has_same_headers_as_get_and_no_body() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let g = get(s.addr, "/a.txt");
    // request_close checks that nothing follows the HEAD response's head.
    let h = request_close(s.addr, &head_req("/a.txt", &[]));
    assert_eq!(h.status, 200, "{}", h.describe());
    assert!(h.body.is_empty());
    for name in [
        "content-length",
        "content-type",
        "etag",
        "last-modified",
        "accept-ranges",
        "server",
    ] {
        assert_eq!(
            h.header(name),
            g.header(name),
            "HEAD and GET differ in {}:\nGET {}\nHEAD {}",
            name,
            g.describe(),
            h.describe()
        );
    }
    assert_eq!(h.must_header("content-length"), "8");
    assert!(h.header("date").is_some());

    // HEAD on a keep-alive connection followed by a GET: no stray body bytes.
    let mut c = Conn::open(s.addr);
    c.send(&build_req("HEAD", "/b.txt", &[], false));
    let h = c.read_response(true);
    assert_eq!(h.status, 200);
    c.send(&build_req("GET", "/c.txt", &[], false));
    let g = c.read_response(false);
    assert_eq!(g.status, 200, "{}", g.describe());
    assert_eq!(g.body, b"sea\n");
}

#[test]
fn other_methods_get_405_with_allow_get_head() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    for m in ["DELETE", "PUT", "OPTIONS", "PATCH", "POST", "TRACE"] {
        let raw = format!(
            "{} /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            m
        );
        let r = request_close(s.addr, raw.as_bytes());
        assert_eq!(r.status, 405, "method {}: {}", m, r.describe());
        assert_eq!(r.must_header("allow"), "GET, HEAD", "method {}", m);
    }
}

#[test]
fn post_with_body_gets_405_and_close_and_body_is_not_answered_as_request() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let mut c = Conn::open(s.addr);
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\nGET /a HTTP/1.1\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 405, "{}", r.describe());
    assert_eq!(r.must_header("allow"), "GET, HEAD");
    c.expect_closed(Duration::from_secs(5), "after 405 with a request body");
    assert!(
        !contains(&c.buf, b"HTTP/1."),
        "the body was answered as a request: {:?}",
        String::from_utf8_lossy(&c.buf)
    );

    // Same with the smuggled request ending in a request for an existing file.
    let mut c = Conn::open(s.addr);
    c.send(b"PUT /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n\r\n\r\n\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 405, "{}", r.describe());
    let end = c.read_until_close(Duration::from_secs(5));
    assert_ne!(
        end,
        End::Timeout,
        "connection not closed after 405 with body"
    );
    assert!(
        !contains(&c.buf, b"hello a"),
        "the smuggled request was served: {:?}",
        String::from_utf8_lossy(&c.buf)
    );
}

#[test]
fn http11_keeps_connection_alive_by_default() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let mut c = Conn::open(s.addr);
    for (t, body) in [
        ("/a.txt", &b"hello a\n"[..]),
        ("/b.txt", b"bee bee bee\n"),
        ("/a.txt", b"hello a\n"),
    ] {
        c.send(format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", t).as_bytes());
        let r = c.read_response(false);
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.body, body);
        assert!(
            !r.header("connection")
                .unwrap_or("")
                .eq_ignore_ascii_case("close"),
            "HTTP/1.1 response says Connection: close: {}",
            r.describe()
        );
    }
}

#[test]
fn http10_closes_by_default() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /a.txt HTTP/1.0\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"hello a\n");
    c.expect_closed(Duration::from_secs(5), "HTTP/1.0 without keep-alive");
}

#[test]
fn http10_with_connection_keep_alive_stays_open() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"hello a\n");
    c.send(b"GET /b.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"bee bee bee\n");
    // Without keep-alive the third one closes.
    c.send(b"GET /c.txt HTTP/1.0\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.body, b"sea\n");
    c.expect_closed(Duration::from_secs(5), "HTTP/1.0 last request");
}

#[test]
fn connection_close_is_honoured() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello a\n");
    c.expect_closed(Duration::from_secs(5), "Connection: close");
}

#[test]
fn pipelined_three_requests_get_three_responses_in_order() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let mut c = Conn::open(s.addr);
    c.send(
        b"GET /b.txt HTTP/1.1\r\nHost: x\r\n\r\n\
          HEAD /a.txt HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /c.txt HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let r1 = c.read_response(false);
    let r2 = c.read_response(true);
    let r3 = c.read_response(false);
    let r4 = c.read_response(false);
    assert_eq!(r1.body, b"bee bee bee\n");
    assert_eq!(r2.status, 200);
    assert_eq!(r2.must_header("content-length"), "8");
    assert_eq!(r3.body, b"sea\n");
    assert_eq!(r4.body, b"hello a\n");
}

#[test]
fn thousand_sequential_requests_on_one_connection() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let mut c = Conn::open(s.addr);
    for i in 0..1000 {
        let (t, body): (&str, &[u8]) = if i % 2 == 0 {
            ("/a.txt", b"hello a\n")
        } else {
            ("/c.txt?n=1", b"sea\n")
        };
        c.send(format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", t).as_bytes());
        let r = c
            .try_read_response(false)
            .unwrap_or_else(|e| panic!("request #{}: {}", i, e));
        assert_eq!(r.status, 200, "request #{}: {}", i, r.describe());
        assert_eq!(r.body, body, "request #{}", i);
    }
}

#[test]
fn bare_lf_line_endings_are_accepted() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /a.txt HTTP/1.1\nHost: x\n\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"hello a\n");
    // Mixed endings, keep-alive still works.
    c.send(b"GET /b.txt HTTP/1.1\r\nHost: x\nAccept: */*\r\n\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"bee bee bee\n");
}

#[test]
fn index_html_served_for_root_slash() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let r = get(s.addr, "/");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"<!doctype html><title>home</title>\n");
    assert_eq!(r.must_header("content-type"), "text/html; charset=utf-8");
}

#[test]
fn pipelined_good_request_then_garbage_gets_200_then_400_and_close() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE GARBAGE\r\n\r\nGET /b.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"hello a\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 400, "{}", r.describe());
    c.expect_closed(Duration::from_secs(5), "after 400 in a pipeline");
}

#[test]
fn four_hundred_pipelined_requests_in_one_write_answered_in_order() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let files: [(&str, &[u8]); 3] = [
        ("/a.txt", b"hello a\n"),
        ("/b.txt", b"bee bee bee\n"),
        ("/c.txt", b"sea\n"),
    ];
    let mut raw = Vec::new();
    for i in 0..400 {
        raw.extend_from_slice(
            format!("GET {}?i={} HTTP/1.1\r\nHost: x\r\n\r\n", files[i % 3].0, i).as_bytes(),
        );
    }
    assert!(raw.len() > 12 * 1024);
    let mut c = Conn::open(s.addr);
    // Write from a thread so that a server answering before reading
    // everything cannot deadlock the test.
    let mut w = c.stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        w.write_all(&raw).unwrap();
    });
    for i in 0..400 {
        let r = c
            .try_read_response(false)
            .unwrap_or_else(|e| panic!("response #{}: {}", i, e));
        assert_eq!(r.status, 200, "response #{}: {}", i, r.describe());
        assert_eq!(r.body, files[i % 3].1, "response #{} out of order", i);
    }
    writer.join().unwrap();
}

#[test]
fn head_of_missing_file_gets_404_headers_without_body() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let r = request_close(s.addr, &head_req("/missing.txt", &[]));
    assert_eq!(r.status, 404, "{}", r.describe());
    assert!(r.body.is_empty());
    // Keep-alive: the next response on the connection parses cleanly.
    let mut c = Conn::open(s.addr);
    c.send(b"HEAD /missing.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /c.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(true);
    assert_eq!(r.status, 404);
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"sea\n");
}

#[test]
fn concurrent_clients_are_all_served_correctly() {
    let d = site();
    let big = pattern_bytes(300 * 1024, 9);
    d.write("big.bin", &big);
    let s = Server::start(d.path(), &[]);
    let addr = s.addr;
    let big = std::sync::Arc::new(big);
    let threads: Vec<_> = (0..24)
        .map(|t| {
            let big = big.clone();
            std::thread::spawn(move || {
                let mut c = Conn::open(addr);
                for i in 0..25 {
                    if (t + i) % 5 == 0 {
                        c.send(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
                        let r = c.read_response(false);
                        assert_eq!(r.status, 200);
                        assert_bytes_eq(&r.body, &big, "big.bin under concurrency");
                    } else {
                        c.send(b"GET /b.txt HTTP/1.1\r\nHost: x\r\n\r\n");
                        let r = c.read_response(false);
                        assert_eq!(r.status, 200);
                        assert_eq!(r.body, b"bee bee bee\n");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread failed");
    }
}
