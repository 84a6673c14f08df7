//! Real file contents: large files, ranges of them, cache freshness after
//! replacement, truncation during a transfer.
mod common;
use common::*;
use std::io::Read;
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;

#[test]
fn large_100mib_file_arrives_byte_identical_and_ranges_of_it_are_intact() {
    let d = TempDir::new("large");
    let data = pattern_bytes(100 * MIB, 0xB16);
    d.write("big.bin", &data);
    let s = Server::start(d.path(), &[]);

    let mut c = Conn::open(s.addr);
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.content_length(), Some(data.len() as u64));
    assert_eq!(r.must_header("content-type"), "application/octet-stream");
    assert_bytes_eq(&r.body, &data, "100 MiB body");
    drop(r);

    let cases: &[(&str, usize, usize)] = &[
        ("bytes=0-0", 0, 0),
        ("bytes=65530-196620", 65530, 196620),
        ("bytes=-1048576", data.len() - MIB, data.len() - 1),
        ("bytes=52428799-52494336", 52428799, 52494336),
        ("bytes=104857599-", data.len() - 1, data.len() - 1),
    ];
    for &(spec, first, last) in cases {
        c.send(
            format!(
                "GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: {}\r\n\r\n",
                spec
            )
            .as_bytes(),
        );
        let r = c.read_response(false);
        assert_eq!(r.status, 206, "{}: {}", spec, r.describe());
        assert_eq!(
            r.must_header("content-range"),
            format!("bytes {}-{}/{}", first, last, data.len()),
            "{}",
            spec
        );
        assert_bytes_eq(&r.body, &data[first..=last], spec);
    }

    // Multipart ranges of the big file.
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0,65535-65536,104857000-\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 206, "{}", r.describe());
    let ct = r.must_header("content-type").to_string();
    assert!(ct.starts_with("multipart/byteranges; boundary="), "{}", ct);
    let boundary = ct["multipart/byteranges; boundary=".len()..]
        .trim_matches('"')
        .to_string();
    let body = r.body;
    for (first, last) in [
        (0usize, 0usize),
        (65535, 65536),
        (104857000, data.len() - 1),
    ] {
        let mut part = format!(
            "Content-Range: bytes {}-{}/{}\r\n\r\n",
            first,
            last,
            data.len()
        )
        .into_bytes();
        part.extend_from_slice(&data[first..=last]);
        part.extend_from_slice(format!("\r\n--{}", boundary).as_bytes());
        assert!(
            contains(&body, &part),
            "multipart part {}-{} missing or corrupt",
            first,
            last
        );
    }

    // HEAD of the big file: length only.
    c.send(b"HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(true);
    assert_eq!(r.content_length(), Some(data.len() as u64));
    // And the connection is still in sync afterwards.
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=1-3\r\n\r\n");
    let r = c.read_response(false);
    assert_bytes_eq(&r.body, &data[1..4], "range after HEAD");
}

#[test]
fn file_replaced_by_atomic_rename_is_served_fresh_with_new_etag() {
    let d = TempDir::new("rename");
    d.write("a.txt", b"version one\n");
    let s = Server::start(d.path(), &["--cache-valid", "0.2"]);
    let r1 = get(s.addr, "/a.txt");
    assert_eq!(r1.body, b"version one\n");
    // Served twice so that it is surely cached.
    let r1b = get(s.addr, "/a.txt");
    assert_eq!(r1b.body, b"version one\n");
    let etag1 = r1.must_header("etag").to_string();

    d.write(".a.txt.tmp", b"version two is longer\n");
    std::fs::rename(d.join(".a.txt.tmp"), d.join("a.txt")).unwrap();
    std::thread::sleep(Duration::from_millis(600));

    // Every worker must notice: ask several times on fresh connections.
    for i in 0..8 {
        let r2 = get(s.addr, "/a.txt");
        assert_eq!(r2.status, 200, "{}", r2.describe());
        assert_eq!(
            r2.body, b"version two is longer\n",
            "request {} after rename",
            i
        );
        assert_eq!(r2.content_length(), Some(22));
        assert_ne!(
            r2.must_header("etag"),
            etag1,
            "ETag unchanged after replacement"
        );
        // The old validator no longer yields 304.
        let r3 = get_with(s.addr, "/a.txt", &[&format!("If-None-Match: {}", etag1)]);
        assert_eq!(r3.status, 200, "stale ETag got {}", r3.describe());
    }
}

#[test]
fn keepalive_framing_stays_correct_when_file_is_replaced_between_requests() {
    let d = TempDir::new("rename-ka");
    d.write("a.txt", b"a fairly long first version of the file\n");
    let s = Server::start(d.path(), &["--cache-valid", "0.2"]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        c.read_response(false).body,
        b"a fairly long first version of the file\n"
    );
    d.write(".tmp", b"short\n");
    std::fs::rename(d.join(".tmp"), d.join("a.txt")).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    // Two pipelined requests: if the Content-Length disagreed with the body
    // the second response would not parse.
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=1-3\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.body, b"short\n", "{}", r.describe());
    let r = c.read_response(false);
    assert_eq!(r.status, 206, "{}", r.describe());
    assert_eq!(r.must_header("content-range"), "bytes 1-3/6");
    assert_eq!(r.body, b"hor");
}

#[test]
fn rename_over_a_file_mid_download_does_not_corrupt_the_transfer() {
    let d = TempDir::new("rename-mid");
    let old = pattern_bytes(24 * MIB, 0x01D);
    let new = pattern_bytes(3 * MIB, 0x2E3);
    d.write("f.bin", &old);
    let s = Server::start(d.path(), &["--cache-valid", "0"]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /f.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut tmp = vec![0u8; 64 * 1024];
    while c.buf.len() < 512 * 1024 {
        let n = c.stream.read(&mut tmp).expect("read");
        assert!(n > 0, "closed early");
        c.buf.extend_from_slice(&tmp[..n]);
    }
    d.write(".f.tmp", &new);
    std::fs::rename(d.join(".f.tmp"), d.join("f.bin")).unwrap();
    let r = c
        .try_read_response(false)
        .unwrap_or_else(|e| panic!("download broken by a rename: {}", e));
    assert_eq!(r.content_length(), Some(old.len() as u64));
    assert_bytes_eq(&r.body, &old, "body of a file renamed over mid-download");
    // The same connection then gets the new file.
    c.send(b"GET /f.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(false);
    assert_bytes_eq(&r.body, &new, "new file after the rename");
}

#[test]
fn file_replaced_by_rename_with_same_size_and_mtime_is_served_fresh() {
    let d = TempDir::new("rename-same");
    let p = d.write("a.txt", b"version one\n");
    let s = Server::start(d.path(), &["--cache-valid", "0.2"]);
    let r1 = get(s.addr, "/a.txt");
    assert_eq!(r1.body, b"version one\n");
    let etag1 = r1.must_header("etag").to_string();
    let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();

    let tmp = d.write(".a.txt.tmp", b"version TWO\n");
    std::fs::File::options()
        .write(true)
        .open(&tmp)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    std::fs::rename(&tmp, &p).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    for i in 0..6 {
        let r2 = get(s.addr, "/a.txt");
        assert_eq!(r2.body, b"version TWO\n", "request {} after rename", i);
        // The ETag is nginx's, size and mtime only, so that copies of a site share it (see
        // tests/stable_etag.rs): a new version with the same size and the same mtime keeps it,
        // as Last-Modified does. Documented in README.
        assert_eq!(r2.must_header("etag"), etag1, "request {} after rename", i);
    }
}

#[test]
fn file_rewritten_in_place_is_served_fresh_after_cache_valid() {
    let d = TempDir::new("rewrite");
    d.write("a.txt", b"short\n");
    let s = Server::start(d.path(), &["--cache-valid", "0.2"]);
    assert_eq!(get(s.addr, "/a.txt").body, b"short\n");
    std::thread::sleep(Duration::from_millis(1100)); // new mtime second
    d.write("a.txt", b"a much longer second version\n");
    std::thread::sleep(Duration::from_millis(600));
    for _ in 0..4 {
        let r = get(s.addr, "/a.txt");
        assert_eq!(
            r.body,
            b"a much longer second version\n",
            "{}",
            r.describe()
        );
    }
}

#[test]
fn file_truncated_mid_transfer_ends_connection_without_padding() {
    let d = TempDir::new("truncate");
    let len = 64 * MIB;
    let data = pattern_bytes(len, 0x7A);
    let p = d.write("t.bin", &data);
    let s = Server::start(d.path(), &[]);
    let workers = s.wait_workers(2, Duration::from_secs(5));

    let mut c = Conn::open(s.addr);
    c.send(b"GET /t.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    // Slow start: the head plus a few hundred KiB.
    let mut tmp = vec![0u8; 16 * 1024];
    let mut head_len = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = c.stream.read(&mut tmp).expect("read head");
        assert!(n > 0, "closed before the body started");
        c.buf.extend_from_slice(&tmp[..n]);
        if head_len.is_none() {
            if let Ok(Parsed::Partial) = parse_response(&c.buf, true, false) {
                continue;
            }
            match parse_response(&c.buf, true, false) {
                Ok(Parsed::Done(r, used)) => {
                    assert_eq!(r.status, 200, "{}", r.describe());
                    assert_eq!(r.content_length(), Some(len as u64));
                    head_len = Some(used);
                }
                _ => panic!("bad head"),
            }
        }
        if let Some(h) = head_len {
            if c.buf.len() - h >= 300 * 1024 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "slow start took too long");
        std::thread::sleep(Duration::from_millis(5));
    }
    let head_len = head_len.unwrap();

    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(MIB as u64)
        .unwrap();

    // Now read at full speed; the server must end the connection.
    let end = c.read_until_close(Duration::from_secs(30));
    let body = &c.buf[head_len..];
    assert_ne!(
        end,
        End::Timeout,
        "server neither finished nor closed the connection within 30 s (got {} of {} body bytes)",
        body.len(),
        len
    );
    assert!(
        body.len() <= len,
        "received {} body bytes, more than Content-Length {}",
        body.len(),
        len
    );
    if body.len() == len {
        // Only acceptable if it is the complete original (a snapshot taken
        // before the truncation); anything else means the server padded the
        // body to keep its Content-Length promise.
        assert_bytes_eq(body, &data, "full-length body after truncation (padding?)");
    } else {
        // The response is visibly incomplete. Bytes before the truncation
        // point must be the original ones. (Bytes after it that were already
        // queued in the kernel by zero-copy sends may read back as zeros:
        // that is the page cache, not the server, so only their count is
        // bounded.)
        let keep = body.len().min(MIB);
        assert_bytes_eq(
            &body[..keep],
            &data[..keep],
            "bytes before the truncation point",
        );
        if let Some(i) = (keep..body.len()).find(|&i| body[i] != data[i] && body[i] != 0) {
            panic!(
                "byte {} after the truncation point is neither original nor zero",
                i
            );
        }
        assert!(
            body.len() <= MIB + 48 * MIB,
            "{} bytes arrived although the file shrank to 1 MiB early on",
            body.len()
        );
    }
    eprintln!(
        "truncation: received {} of {} promised bytes, end={:?}",
        body.len(),
        len,
        end
    );

    // The server still works, with the same workers.
    std::thread::sleep(Duration::from_millis(1200)); // cache-valid default 1 s
    let r = get(s.addr, "/t.bin");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.content_length(), Some(MIB as u64));
    assert_bytes_eq(&r.body, &data[..MIB], "truncated file served afterwards");
    assert_eq!(
        s.worker_pids(),
        workers,
        "a worker died during the truncation"
    );
}

#[test]
fn empty_file_is_served_with_content_length_0() {
    let d = TempDir::new("empty");
    d.write("empty.txt", b"");
    let s = Server::start(d.path(), &[]);
    let r = get(s.addr, "/empty.txt");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.content_length(), Some(0));
    let r = get_with(s.addr, "/empty.txt", &["Range: bytes=0-"]);
    assert!(
        r.status == 416 || r.status == 200,
        "Range on an empty file: {}",
        r.describe()
    );
}

#[test]
fn deleted_file_becomes_404_after_cache_valid() {
    let d = TempDir::new("deleted");
    d.write("gone.txt", b"here today\n");
    let s = Server::start(d.path(), &["--cache-valid", "0.2"]);
    for _ in 0..3 {
        assert_eq!(get(s.addr, "/gone.txt").status, 200);
    }
    std::fs::remove_file(d.join("gone.txt")).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    for _ in 0..4 {
        let r = get(s.addr, "/gone.txt");
        assert_eq!(r.status, 404, "{}", r.describe());
        assert!(!contains(&r.body, b"here today"));
    }
}

#[test]
fn file_created_after_a_404_is_served_after_cache_valid() {
    let d = TempDir::new("created");
    let s = Server::start(d.path(), &["--cache-valid", "0.2"]);
    for _ in 0..3 {
        assert_eq!(get(s.addr, "/new.txt").status, 404);
    }
    d.write("new.txt", b"brand new\n");
    std::thread::sleep(Duration::from_millis(600));
    for _ in 0..4 {
        let r = get(s.addr, "/new.txt");
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.body, b"brand new\n");
    }
}
