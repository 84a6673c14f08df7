//! Conditional requests (ETag / dates) and byte ranges.
mod common;
use common::*;

const LEN: usize = 1000;

fn site() -> (TempDir, Vec<u8>) {
    let d = TempDir::new("condrange");
    let data = pattern_bytes(LEN, 42);
    d.write_aged("data.bin", &data);
    d.write_aged("a.txt", b"hello a\n");
    (d, data)
}

/// (ETag, Last-Modified) of `target`.
fn validators(addr: std::net::SocketAddr, target: &str) -> (String, String) {
    let r = get(addr, target);
    assert_eq!(r.status, 200, "{}", r.describe());
    (
        r.must_header("etag").to_string(),
        r.must_header("last-modified").to_string(),
    )
}

#[track_caller]
fn assert_304(r: &Response, etag: &str, ctx: &str) {
    assert_eq!(r.status, 304, "{}: {}", ctx, r.describe());
    assert!(r.body.is_empty(), "{}: 304 with a body", ctx);
    assert_eq!(
        r.header("etag"),
        Some(etag),
        "{}: 304 must carry the ETag",
        ctx
    );
}

// ---------------------------------------------------------------------------
// Conditional requests
// ---------------------------------------------------------------------------

#[test]
fn if_none_match_with_etag_gets_304_without_body() {
    let (d, _) = site();
    let s = Server::start(d.path(), &[]);
    let (etag, _) = validators(s.addr, "/a.txt");
    let h = format!("If-None-Match: {}", etag);
    // request_close verifies that nothing follows the 304 head.
    let r = get_with(s.addr, "/a.txt", &[&h]);
    assert_304(&r, &etag, "INM exact");
    let r = request_close(s.addr, &head_req("/a.txt", &[&h]));
    assert_304(&r, &etag, "HEAD INM exact");
}

#[test]
fn if_none_match_list_containing_etag_gets_304() {
    let (d, _) = site();
    let s = Server::start(d.path(), &[]);
    let (etag, _) = validators(s.addr, "/a.txt");
    let r = get_with(
        s.addr,
        "/a.txt",
        &[&format!("If-None-Match: \"x\", {}", etag)],
    );
    assert_304(&r, &etag, "INM list");
    let r = get_with(
        s.addr,
        "/a.txt",
        &[&format!("If-None-Match: \"x\",{} , \"y\"", etag)],
    );
    assert_304(&r, &etag, "INM list no spaces");
}

#[test]
fn if_none_match_star_gets_304() {
    let (d, _) = site();
    let s = Server::start(d.path(), &[]);
    let (etag, _) = validators(s.addr, "/a.txt");
    let r = get_with(s.addr, "/a.txt", &["If-None-Match: *"]);
    assert_304(&r, &etag, "INM *");
}

#[test]
fn if_none_match_weak_form_of_etag_gets_304() {
    let (d, _) = site();
    let s = Server::start(d.path(), &[]);
    let (etag, _) = validators(s.addr, "/a.txt");
    let r = get_with(s.addr, "/a.txt", &[&format!("If-None-Match: W/{}", etag)]);
    assert_304(&r, &etag, "INM W/");
}

#[test]
fn if_none_match_matching_with_range_gets_304() {
    let (d, _) = site();
    let s = Server::start(d.path(), &[]);
    let (etag, _) = validators(s.addr, "/data.bin");
    let r = get_with(
        s.addr,
        "/data.bin",
        &[&format!("If-None-Match: {}", etag), "Range: bytes=0-9"],
    );
    assert_304(&r, &etag, "INM + Range");
}

#[test]
fn if_none_match_non_matching_gets_200() {
    let (d, _) = site();
    let s = Server::start(d.path(), &[]);
    let r = get_with(s.addr, "/a.txt", &["If-None-Match: \"definitely-not-it\""]);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"hello a\n");
}

#[test]
fn if_modified_since_equal_to_last_modified_gets_304() {
    let (d, _) = site();
    let s = Server::start(d.path(), &[]);
    let (etag, lm) = validators(s.addr, "/a.txt");
    let r = get_with(s.addr, "/a.txt", &[&format!("If-Modified-Since: {}", lm)]);
    assert_304(&r, &etag, "IMS = LM");
    // A date before the modification: full response.
    let r = get_with(
        s.addr,
        "/a.txt",
        &["If-Modified-Since: Mon, 01 Jan 1990 00:00:00 GMT"],
    );
    assert_eq!(r.status, 200, "IMS in 1990: {}", r.describe());
    assert_eq!(r.body, b"hello a\n");
}

#[test]
fn if_none_match_non_matching_wins_over_matching_if_modified_since() {
    let (d, _) = site();
    let s = Server::start(d.path(), &[]);
    let (_, lm) = validators(s.addr, "/a.txt");
    let r = get_with(
        s.addr,
        "/a.txt",
        &[
            "If-None-Match: \"other\"",
            &format!("If-Modified-Since: {}", lm),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"hello a\n");
}

#[test]
fn if_match_non_matching_gets_412_and_matching_gets_200() {
    let (d, _) = site();
    let s = Server::start(d.path(), &[]);
    let (etag, _) = validators(s.addr, "/a.txt");
    let r = get_with(s.addr, "/a.txt", &["If-Match: \"nope\""]);
    assert_eq!(r.status, 412, "{}", r.describe());
    assert!(!contains(&r.body, b"hello a"));
    let r = get_with(s.addr, "/a.txt", &[&format!("If-Match: {}", etag)]);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"hello a\n");
    let r = get_with(
        s.addr,
        "/a.txt",
        &[&format!("If-Match: \"nope\", {}", etag)],
    );
    assert_eq!(r.status, 200, "If-Match list: {}", r.describe());
    let r = get_with(s.addr, "/a.txt", &["If-Match: *"]);
    assert_eq!(r.status, 200, "If-Match *: {}", r.describe());
}

#[test]
fn if_unmodified_since_in_the_past_gets_412() {
    let (d, _) = site();
    let s = Server::start(d.path(), &[]);
    let (_, lm) = validators(s.addr, "/a.txt");
    let r = get_with(
        s.addr,
        "/a.txt",
        &["If-Unmodified-Since: Mon, 01 Jan 1990 00:00:00 GMT"],
    );
    assert_eq!(r.status, 412, "{}", r.describe());
    let r = get_with(s.addr, "/a.txt", &[&format!("If-Unmodified-Since: {}", lm)]);
    assert_eq!(r.status, 200, "IUS = LM: {}", r.describe());
}

// ---------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------

#[track_caller]
fn range(addr: std::net::SocketAddr, spec: &str) -> Response {
    get_with(addr, "/data.bin", &[&format!("Range: {}", spec)])
}

#[track_caller]
fn assert_single_range(r: &Response, data: &[u8], first: usize, last: usize, ctx: &str) {
    assert_eq!(r.status, 206, "{}: {}", ctx, r.describe());
    assert_eq!(
        r.must_header("content-range"),
        format!("bytes {}-{}/{}", first, last, data.len()),
        "{}",
        ctx
    );
    assert_eq!(
        r.content_length(),
        Some((last - first + 1) as u64),
        "{}",
        ctx
    );
    assert_bytes_eq(&r.body, &data[first..=last], ctx);
}

#[track_caller]
fn assert_full(r: &Response, data: &[u8], ctx: &str) {
    assert_eq!(r.status, 200, "{}: {}", ctx, r.describe());
    assert!(
        r.header("content-range").is_none(),
        "{}: {}",
        ctx,
        r.describe()
    );
    assert_eq!(r.content_length(), Some(data.len() as u64), "{}", ctx);
    assert_bytes_eq(&r.body, data, ctx);
}

/// A single range covering the whole file: 206 for all of it, or 200 (the
/// server may ignore such a Range).
#[track_caller]
fn assert_whole(r: &Response, data: &[u8], ctx: &str) {
    if r.status == 200 {
        assert_full(r, data, ctx);
    } else {
        assert_single_range(r, data, 0, data.len() - 1, ctx);
    }
}

#[test]
fn range_first_bytes_gets_206() {
    let (d, data) = site();
    let s = Server::start(d.path(), &[]);
    assert_single_range(&range(s.addr, "bytes=0-9"), &data, 0, 9, "bytes=0-9");
    assert_single_range(&range(s.addr, "bytes=0-0"), &data, 0, 0, "bytes=0-0");
    assert_single_range(
        &range(s.addr, "bytes=500-749"),
        &data,
        500,
        749,
        "bytes=500-749",
    );
}

#[test]
fn range_open_ended_and_suffix_get_206() {
    let (d, data) = site();
    let s = Server::start(d.path(), &[]);
    assert_single_range(&range(s.addr, "bytes=10-"), &data, 10, LEN - 1, "bytes=10-");
    assert_single_range(
        &range(s.addr, "bytes=-5"),
        &data,
        LEN - 5,
        LEN - 1,
        "bytes=-5",
    );
    assert_whole(&range(s.addr, "bytes=-5000"), &data, "bytes=-5000");
    assert_single_range(&range(s.addr, "bytes=999-"), &data, 999, 999, "bytes=999-");
}

#[test]
fn range_end_beyond_length_is_clamped() {
    let (d, data) = site();
    let s = Server::start(d.path(), &[]);
    assert_single_range(
        &range(s.addr, "bytes=990-5000"),
        &data,
        990,
        LEN - 1,
        "bytes=990-5000",
    );
    assert_whole(&range(s.addr, "bytes=0-1000"), &data, "bytes=0-1000");
}

/// Parse a multipart/byteranges body into (Content-Range, bytes) per part.
fn parse_multipart(body: &[u8], boundary: &str) -> Vec<(String, Vec<u8>)> {
    let delim = format!("--{}", boundary).into_bytes();
    let find = |hay: &[u8], from: usize, needle: &[u8]| -> Option<usize> {
        hay[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    let mut parts = Vec::new();
    let mut pos = find(body, 0, &delim).expect("no first boundary");
    loop {
        pos += delim.len();
        if body[pos..].starts_with(b"--") {
            break; // close delimiter
        }
        let after = if body[pos..].starts_with(b"\r\n") {
            pos + 2
        } else if body[pos..].starts_with(b"\n") {
            pos + 1
        } else {
            panic!("garbage after boundary at {}", pos);
        };
        let head_end = find(body, after, b"\r\n\r\n").expect("part without header end");
        let head = std::str::from_utf8(&body[after..head_end]).expect("part head utf-8");
        let mut content_range = String::new();
        for line in head.split("\r\n") {
            if let Some(i) = line.find(':') {
                if line[..i].trim().eq_ignore_ascii_case("content-range") {
                    content_range = line[i + 1..].trim().to_string();
                }
            }
        }
        let data_start = head_end + 4;
        let mut next_delim = b"\r\n".to_vec();
        next_delim.extend_from_slice(&delim);
        let data_end = find(body, data_start, &next_delim).expect("part without closing boundary");
        parts.push((content_range, body[data_start..data_end].to_vec()));
        pos = data_end + 2;
    }
    parts
}

#[test]
fn two_ranges_get_206_multipart_byteranges() {
    let (d, data) = site();
    let s = Server::start(d.path(), &[]);
    // request_close also checks Content-Length == bytes actually sent.
    let r = range(s.addr, "bytes=0-9,100-199");
    assert_eq!(r.status, 206, "{}", r.describe());
    let ct = r.must_header("content-type");
    assert!(
        ct.starts_with("multipart/byteranges; boundary="),
        "Content-Type {:?}",
        ct
    );
    let boundary = ct["multipart/byteranges; boundary=".len()..]
        .trim_matches('"')
        .to_string();
    assert!(!boundary.is_empty());
    assert_eq!(r.content_length(), Some(r.body.len() as u64));
    let parts = parse_multipart(&r.body, &boundary);
    assert_eq!(
        parts.len(),
        2,
        "parts: {:?}",
        parts.iter().map(|p| &p.0).collect::<Vec<_>>()
    );
    assert_eq!(parts[0].0, format!("bytes 0-9/{}", LEN));
    assert_bytes_eq(&parts[0].1, &data[0..10], "part 1");
    assert_eq!(parts[1].0, format!("bytes 100-199/{}", LEN));
    assert_bytes_eq(&parts[1].1, &data[100..200], "part 2");

    // Suffix + open-ended parts.
    let r = range(s.addr, "bytes=-3, 20-29");
    assert_eq!(r.status, 206, "{}", r.describe());
    let ct = r.must_header("content-type");
    let boundary = ct["multipart/byteranges; boundary=".len()..]
        .trim_matches('"')
        .to_string();
    let parts = parse_multipart(&r.body, &boundary);
    assert_eq!(parts.len(), 2);
    let mut got: Vec<(String, Vec<u8>)> = parts;
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want = vec![
        (
            format!("bytes {}-{}/{}", LEN - 3, LEN - 1, LEN),
            data[LEN - 3..].to_vec(),
        ),
        (format!("bytes 20-29/{}", LEN), data[20..30].to_vec()),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want);
}

#[test]
fn range_starting_at_or_beyond_length_gets_416_with_content_range() {
    let (d, _) = site();
    let s = Server::start(d.path(), &[]);
    for spec in [
        format!("bytes={}-", LEN),
        format!("bytes={}-{}", LEN + 5, LEN + 10),
    ] {
        let r = range(s.addr, &spec);
        assert_eq!(r.status, 416, "{}: {}", spec, r.describe());
        assert_eq!(
            r.must_header("content-range"),
            format!("bytes */{}", LEN),
            "{}",
            spec
        );
    }
}

#[test]
fn unparseable_or_reversed_range_gets_416() {
    let (d, _) = site();
    let s = Server::start(d.path(), &[]);
    for spec in ["bytes=abc", "bytes=5-1"] {
        let r = range(s.addr, spec);
        assert_eq!(r.status, 416, "{}: {}", spec, r.describe());
        assert_eq!(
            r.must_header("content-range"),
            format!("bytes */{}", LEN),
            "{}",
            spec
        );
    }
}

#[test]
fn non_bytes_unit_or_empty_range_gets_200_full() {
    let (d, data) = site();
    let s = Server::start(d.path(), &[]);
    assert_full(&range(s.addr, "items=0-1"), &data, "items=0-1");
    assert_full(
        &get_with(s.addr, "/data.bin", &["Range:"]),
        &data,
        "empty Range",
    );
}

#[test]
fn seventeen_ranges_get_200_full_body_once() {
    let (d, data) = site();
    let s = Server::start(d.path(), &[]);
    let spec = (0..17)
        .map(|i| format!("{}-{}", i * 10, i * 10 + 4))
        .collect::<Vec<_>>()
        .join(",");
    assert_full(
        &range(s.addr, &format!("bytes={}", spec)),
        &data,
        "17 ranges",
    );
}

#[test]
fn overlapping_ranges_exceeding_length_get_200_full() {
    let (d, data) = site();
    let s = Server::start(d.path(), &[]);
    assert_full(&range(s.addr, "bytes=0-,0-"), &data, "bytes=0-,0-");
}

#[test]
fn u64_overflow_range_gets_416_and_server_keeps_working() {
    let (d, data) = site();
    let s = Server::start(d.path(), &[]);
    let workers = s.wait_workers(2, std::time::Duration::from_secs(5));
    // A last-pos past 64 bits is still past the end: the rest of the file (RFC 9110 14.1.1).
    assert_single_range(
        &range(s.addr, "bytes=0-99999999999999999999999"),
        &data,
        0,
        LEN - 1,
        "last-pos past 64 bits",
    );
    for spec in [
        "bytes=99999999999999999999999-",
        "bytes=18446744073709551615-18446744073709551615",
    ] {
        let r = range(s.addr, spec);
        assert_eq!(r.status, 416, "{}: {}", spec, r.describe());
    }
    // Still serving, and on a keep-alive connection too.
    let mut c = Conn::open(s.addr);
    c.send(b"GET /data.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=99999999999999999999999-\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 416);
    c.send(b"GET /data.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n");
    let r = c.try_read_response(false);
    if let Ok(r) = r {
        assert_single_range(&r, &data, 0, 9, "after overflow, same connection");
    }
    assert_single_range(&range(s.addr, "bytes=0-9"), &data, 0, 9, "after overflow");
    assert_eq!(s.worker_pids(), workers, "a worker died");
}

#[test]
fn if_range_with_matching_etag_gets_206_other_etag_gets_200() {
    let (d, data) = site();
    let s = Server::start(d.path(), &[]);
    let (etag, _) = validators(s.addr, "/data.bin");
    let r = get_with(
        s.addr,
        "/data.bin",
        &["Range: bytes=0-9", &format!("If-Range: {}", etag)],
    );
    assert_single_range(&r, &data, 0, 9, "If-Range matching ETag");
    let r = get_with(
        s.addr,
        "/data.bin",
        &["Range: bytes=0-9", "If-Range: \"stale\""],
    );
    assert_full(&r, &data, "If-Range other ETag");
}

#[test]
fn if_range_with_last_modified_date_gets_206() {
    let (d, data) = site();
    let s = Server::start(d.path(), &[]);
    let (_, lm) = validators(s.addr, "/data.bin");
    let r = get_with(
        s.addr,
        "/data.bin",
        &["Range: bytes=10-19", &format!("If-Range: {}", lm)],
    );
    assert_single_range(&r, &data, 10, 19, "If-Range = Last-Modified");
    let r = get_with(
        s.addr,
        "/data.bin",
        &[
            "Range: bytes=10-19",
            "If-Range: Mon, 01 Jan 1990 00:00:00 GMT",
        ],
    );
    assert_full(&r, &data, "If-Range old date");
}

#[test]
fn head_with_range_gets_206_headers_without_body() {
    let (d, _) = site();
    let s = Server::start(d.path(), &[]);
    let r = request_close(s.addr, &head_req("/data.bin", &["Range: bytes=0-9"]));
    assert_eq!(r.status, 206, "{}", r.describe());
    assert_eq!(r.must_header("content-range"), format!("bytes 0-9/{}", LEN));
    assert_eq!(r.content_length(), Some(10));
    assert!(r.body.is_empty());
}
