//! Regression tests for what hostile probing found: each test is named after the bug it pins
//! down, and sends raw bytes over a real socket to a real server.
mod common;
use common::*;
use std::time::Duration;

fn site() -> TempDir {
    let d = TempDir::new("hostile");
    d.write_aged("a.txt", b"hello a\n");
    d.write_aged("data.bin", &pattern_bytes(1000, 7));
    d
}

/// Sends `raw` on a new connection; returns the response and whether the server then closed.
fn exchange(addr: std::net::SocketAddr, raw: &[u8]) -> (Response, bool) {
    let mut c = Conn::open(addr);
    c.send(raw);
    let r = c.read_response(false);
    let closed = c.read_until_close(Duration::from_secs(5)) != End::Timeout;
    (r, closed)
}

#[track_caller]
fn expect_400_and_close(addr: std::net::SocketAddr, raw: &[u8]) {
    let (r, closed) = exchange(addr, raw);
    let what = String::from_utf8_lossy(raw);
    assert_eq!(r.status, 400, "{what:?}: {}", r.describe());
    assert!(closed, "{what:?}: connection left open after 400");
}

// ---- 1. If-Range and date validators after a same-second rewrite --------------------------

/// A file rewritten within the second its Last-Modified names: a date cannot tell the two
/// versions apart, so If-Range with it must not splice them (RFC 9110 13.1.5, 8.8.2.2).
#[test]
fn if_range_date_after_same_second_rewrite_sends_the_whole_file() {
    let d = site();
    // --cache-valid 0: every request looks at the file, so the new version is seen at once.
    let s = Server::start(d.path(), &["--cache-valid", "0"]);
    let (old, new) = (pattern_bytes(4000, 1), pattern_bytes(4000, 2));
    let mut spliced_checked = false;
    for _ in 0..20 {
        let p = d.write("r.bin", &old);
        let first = get(s.addr, "/r.bin");
        d.write("r.bin", &new);
        let sec = |p: &std::path::Path| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(p).unwrap().mtime()
        };
        // Both versions in one second, and the first response within it too.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        if sec(&p) != now || first.body != old {
            continue;
        }
        // The first response's Last-Modified, or (as the server sends none for a version seen
        // within its own second) the date a client could have got from elsewhere.
        let lm = first
            .header("last-modified")
            .map(str::to_string)
            .unwrap_or_else(|| http_date(now));
        let r = get_with(
            s.addr,
            "/r.bin",
            &["Range: bytes=0-99", &format!("If-Range: {lm}")],
        );
        assert_eq!(r.status, 200, "If-Range {lm}: {}", r.describe());
        assert!(r.body == new || r.body == old, "not one whole version");
        spliced_checked = true;
        break;
    }
    assert!(
        spliced_checked,
        "never managed two writes within one second"
    );

    // Later, once the second is over: the version now on disk gets a Last-Modified, and that
    // date resumes it (it can only name this version).
    let r = loop {
        let r = get(s.addr, "/r.bin");
        if r.header("last-modified").is_some() {
            break r;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(r.body, new);
    let lm = r.must_header("last-modified").to_string();
    let r = get_with(
        s.addr,
        "/r.bin",
        &["Range: bytes=0-99", &format!("If-Range: {lm}")],
    );
    assert_eq!(r.status, 206, "{}", r.describe());
    assert_eq!(r.body, &new[..100]);
}

/// If-Modified-Since / If-Unmodified-Since against a version seen within its own second:
/// neither a 304 nor a pass is given on a date that may name another version.
#[test]
fn date_conditions_on_a_file_changed_this_second_prove_nothing() {
    let d = site();
    let s = Server::start(d.path(), &["--cache-valid", "0"]);
    for _ in 0..20 {
        let f = d.write("f.txt", b"fresh");
        // The second the file system stamped (its coarse clock may lag the wall clock's).
        let now = std::fs::metadata(&f)
            .unwrap()
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let date = http_date(now);
        let ims = get_with(s.addr, "/f.txt", &[&format!("If-Modified-Since: {date}")]);
        let ius = get_with(s.addr, "/f.txt", &[&format!("If-Unmodified-Since: {date}")]);
        let still = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        if still != now {
            continue; // the second ended meanwhile: try again
        }
        assert_eq!(ims.status, 200, "{}", ims.describe());
        assert_eq!(ims.body, b"fresh");
        assert!(ims.header("last-modified").is_none(), "{}", ims.describe());
        assert_eq!(ius.status, 412, "{}", ius.describe());
        return;
    }
    panic!("never stayed within one second");
}

/// An IMF-fixdate for `secs`.
fn http_date(secs: i64) -> String {
    String::from_utf8(ringstatic::http::date::format_http_date(secs).to_vec()).unwrap()
}

// ---- 2. Host and authority ----------------------------------------------------------------

#[test]
fn invalid_host_or_absolute_authority_gets_400_and_close() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    for host in [
        "a:b:c",
        "[::1",
        "123.40.56.78:9000:80",
        "[ab..cd::ef98:0:7654:321]",
        "h:65536",
        "[::1]x",
        "a%zz",
    ] {
        expect_400_and_close(
            s.addr,
            format!("GET /a.txt HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
        );
    }
    for target in [
        "http://123.40.56.78:9000:80/a.txt",
        "http://[ab..cd::ef98:0:7654:321]/a.txt",
        "http://a:b:c/a.txt",
        "http://[::1/a.txt",
    ] {
        expect_400_and_close(
            s.addr,
            format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        );
    }
    // Odd but legal hosts, and an empty one, are served.
    for host in [
        "",
        "[::1]:8080",
        "[v7.future]",
        "123.40.56.78:9000",
        "under_score.example",
        "!$&'()*+,;=",
        "a%20b",
    ] {
        let r = request(
            s.addr,
            format!("GET /a.txt HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
        );
        assert_eq!(r.status, 200, "Host {host:?}: {}", r.describe());
    }
    let r = request(
        s.addr,
        b"GET http://[::ffff:1.2.3.4]:80/a.txt HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.describe());
}

// ---- 3. Methods and Transfer-Encoding -----------------------------------------------------

#[test]
fn unknown_method_gets_501_and_known_one_405_with_allow() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    for m in ["get", "Head", "BREW", "M-SEARCH", "PROPFIND"] {
        let r = request_close(
            s.addr,
            format!("{m} /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(r.status, 501, "{m}: {}", r.describe());
        assert!(r.header("allow").is_none(), "{m}: {}", r.describe());
    }
    for m in ["POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"] {
        let r = request_close(
            s.addr,
            format!("{m} /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(r.status, 405, "{m}: {}", r.describe());
        assert_eq!(r.must_header("allow"), "GET, HEAD");
    }
    let r = request_close(
        s.addr,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 405, "{}", r.describe());
    // A 501 on a keep-alive connection without a body leaves it usable.
    let mut c = Conn::open(s.addr);
    c.send(b"get /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response(false).status, 501);
    assert_eq!(c.read_response(false).body, b"hello a\n");
}

#[test]
fn connect_without_authority_form_gets_400() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    for target in ["/", "example.com", "http://example.com:443/", "*"] {
        expect_400_and_close(
            s.addr,
            format!("CONNECT {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        );
    }
}

#[test]
fn transfer_encoding_not_ending_in_chunked_gets_400_and_close() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    for te in [
        "chunked, gzip",
        "gzip",
        "identity",
        "chunked\r\nTransfer-Encoding: gzip",
    ] {
        for m in ["POST", "PUT", "BREW", "GET"] {
            expect_400_and_close(
                s.addr,
                format!(
                    "{m} /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {te}\r\n\r\n0\r\n\r\n"
                )
                .as_bytes(),
            );
        }
    }
    // Ending in chunked: a 405, then the close (the body is never read as a request).
    let (r, closed) = exchange(
        s.addr,
        b"POST /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    );
    assert_eq!(r.status, 405, "{}", r.describe());
    assert!(closed);
}

// ---- 4. Numbers ---------------------------------------------------------------------------

#[test]
fn content_length_00_is_a_zero() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 00\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 000\r\n\r\n");
    for _ in 0..2 {
        let r = c.read_response(false);
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.body, b"hello a\n");
    }
    expect_400_and_close(
        s.addr,
        b"GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 01\r\n\r\nx",
    );
}

#[test]
fn suffix_range_longer_than_the_file_or_64_bits_is_the_whole_file() {
    let d = site();
    let data = pattern_bytes(1000, 7);
    let s = Server::start(d.path(), &[]);
    for spec in [
        "bytes=-1001",
        "bytes=-18446744073709551615",
        "bytes=-18446744073709551616",
        "bytes=-99999999999999999999999999999999",
        "bytes=0-18446744073709551616",
    ] {
        let r = get_with(s.addr, "/data.bin", &[&format!("Range: {spec}")]);
        assert_eq!(r.status, 206, "{spec}: {}", r.describe());
        assert_eq!(r.must_header("content-range"), "bytes 0-999/1000", "{spec}");
        assert_bytes_eq(&r.body, &data, spec);
    }
    let r = get_with(s.addr, "/data.bin", &["Range: bytes=18446744073709551616-"]);
    assert_eq!(r.status, 416, "{}", r.describe());
}

// ---- 5. Multipart boundaries --------------------------------------------------------------

/// The boundary of one response, from its Content-Type.
fn boundary_of(r: &Response) -> String {
    let ct = r.must_header("content-type");
    ct.strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("not multipart: {}", r.describe()))
        .to_string()
}

#[test]
fn multipart_boundary_is_per_response_and_absent_from_the_parts() {
    let d = site();
    let s = Server::start(d.path(), &[]);
    let first = get_with(s.addr, "/data.bin", &["Range: bytes=0-9,20-29"]);
    assert_eq!(first.status, 206, "{}", first.describe());
    let b1 = boundary_of(&first);
    // A file that contains the boundary the server just used, and the next ones it might use
    // were it predictable, asked for in parts.
    let mut forged = Vec::new();
    for _ in 0..50 {
        forged.extend_from_slice(
            format!("\r\n--{b1}\r\nContent-Range: bytes 0-1/2\r\n\r\nXX").as_bytes(),
        );
    }
    d.write_aged("forged.txt", &forged);
    let mut seen = vec![b1];
    for _ in 0..5 {
        let r = get_with(s.addr, "/forged.txt", &["Range: bytes=0-99,200-299"]);
        assert_eq!(r.status, 206, "{}", r.describe());
        let b = boundary_of(&r);
        assert!(!seen.contains(&b), "boundary {b} used twice");
        assert!(b.len() >= 32, "short boundary {b}");
        let delimiter = format!("\r\n--{b}");
        // Exactly the two parts and the close delimiter: the file's bytes forge nothing.
        assert_eq!(
            r.body
                .windows(delimiter.len())
                .filter(|w| *w == delimiter.as_bytes())
                .count(),
            3,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        seen.push(b);
    }
}

// ---- 6. Timeouts --------------------------------------------------------------------------

#[test]
fn half_sent_head_timeout_gets_408_then_close() {
    let d = site();
    let s = Server::start(d.path(), &["--header-timeout", "1"]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nX-Half: ");
    let end = c.read_until_close(Duration::from_secs(15));
    assert_ne!(end, End::Timeout, "not closed");
    match parse_response(&c.buf, false, true) {
        Ok(Parsed::Done(r, used)) => {
            assert_eq!(r.status, 408, "{}", r.describe());
            assert_eq!(r.must_header("connection"), "close");
            assert_eq!(used, c.buf.len(), "bytes after the 408");
        }
        _ => panic!("no 408: {:?}", String::from_utf8_lossy(&c.buf)),
    }
    // After a complete request, half of the next one: the same.
    let mut c = Conn::open(s.addr);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /a.t");
    assert_eq!(c.read_response(false).status, 200);
    let r = c.read_response(false);
    assert_eq!(r.status, 408, "{}", r.describe());
    assert_ne!(c.read_until_close(Duration::from_secs(10)), End::Timeout);
}

#[test]
fn idle_keepalive_timeout_closes_silently() {
    let d = site();
    let s = Server::start(d.path(), &["--keepalive-timeout", "1"]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response(false).status, 200);
    let end = c.read_until_close(Duration::from_secs(15));
    assert_ne!(end, End::Timeout, "idle connection not closed");
    assert!(
        c.buf.is_empty(),
        "bytes on an idle timeout: {:?}",
        String::from_utf8_lossy(&c.buf)
    );
}
