//! Content codings: Accept-Encoding negotiation, precompressed siblings, compression on the fly,
//! and what every coded response says (Content-Encoding, Vary, per-representation ETags, 304,
//! If-Range, Range, HEAD). Every coded body is decompressed here and compared with the file.
mod common;
use common::*;

use std::io::Read;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

/// A realistic text asset: repetitive like real JavaScript, 24 KiB.
fn js_text(len: usize) -> Vec<u8> {
    let mut v = Vec::new();
    let mut i = 0u64;
    while v.len() < len {
        v.extend_from_slice(
            format!("export function handler{i}(event) {{ return render(event.target, {i}); }}\n")
                .as_bytes(),
        );
        i += 1;
    }
    v.truncate(len);
    v
}

fn decode(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "br" => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .expect("valid brotli");
        }
        "zstd" => out = zstd::decode_all(body).expect("valid zstd"),
        "gzip" => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .expect("valid gzip");
        }
        other => panic!("unexpected coding {other}"),
    }
    out
}

fn encode(coding: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match coding {
        "br" => {
            let mut out = Vec::new();
            let params = brotli::enc::BrotliEncoderParams {
                quality: 9,
                ..Default::default()
            };
            brotli::BrotliCompress(&mut &data[..], &mut out, &params).unwrap();
            out
        }
        "zstd" => zstd::bulk::compress(data, 10).unwrap(),
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        other => panic!("unexpected coding {other}"),
    }
}

fn ae(value: &str) -> String {
    format!("Accept-Encoding: {value}")
}

/// GET with these extra header lines.
#[track_caller]
fn fetch(addr: SocketAddr, target: &str, extra: &[&str]) -> Response {
    get_with(addr, target, extra)
}

/// The coding a response is in ("identity" when it has no Content-Encoding).
fn coding_of(r: &Response) -> String {
    r.header("content-encoding")
        .unwrap_or("identity")
        .to_string()
}

/// Checks a 200 in `coding` carries `original` and the original's entity facts.
#[track_caller]
fn assert_representation(r: &Response, coding: &str, original: &[u8], plain: &Response, ctx: &str) {
    assert_eq!(r.status, 200, "{ctx}: {}", r.describe());
    assert_eq!(coding_of(r), coding, "{ctx}: {}", r.describe());
    assert_eq!(r.content_length(), Some(r.body.len() as u64), "{ctx}");
    assert_eq!(
        r.header("vary"),
        Some("Accept-Encoding"),
        "{ctx}: {}",
        r.describe()
    );
    assert_eq!(
        r.header("content-type"),
        plain.header("content-type"),
        "{ctx}"
    );
    assert_eq!(
        r.header("last-modified"),
        plain.header("last-modified"),
        "{ctx}"
    );
    if coding == "identity" {
        assert_bytes_eq(&r.body, original, ctx);
        assert_eq!(r.header("etag"), plain.header("etag"), "{ctx}");
    } else {
        assert!(r.body.len() < original.len(), "{ctx}: not smaller");
        assert_bytes_eq(&decode(coding, &r.body), original, ctx);
        let etag = r.must_header("etag");
        assert_ne!(Some(etag), plain.header("etag"), "{ctx}: own ETag");
        assert!(
            etag.starts_with('"') && etag.ends_with(&format!("-{coding}\"")),
            "{ctx}: {etag}"
        );
    }
}

#[test]
fn accept_encoding_matrix_on_the_fly() {
    let d = TempDir::new("enc-matrix");
    let data = js_text(24 * 1024);
    d.write("app.js", &data);
    let s = Server::start(d.path(), &[]);
    let plain = fetch(s.addr, "/app.js", &[]);
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(
        plain.header("vary"),
        Some("Accept-Encoding"),
        "Vary on identity too"
    );
    assert_bytes_eq(&plain.body, &data, "identity");
    let cases: &[(&str, &str)] = &[
        ("gzip, deflate, br, zstd", "br"),
        ("gzip, deflate, br", "br"),
        ("gzip", "gzip"),
        ("x-gzip", "gzip"),
        ("GZip", "gzip"),
        ("zstd", "zstd"),
        ("gzip;q=1, br;q=0.5", "gzip"),
        ("br;q=0.2, zstd;q=0.9, gzip;q=0.5", "zstd"),
        ("br;q=0, *", "zstd"),
        ("*", "br"),
        ("*;q=0", "identity"),
        ("identity;q=0, gzip", "gzip"),
        ("gzip;q=0.5, identity", "identity"),
        ("deflate, compress", "identity"),
        ("", "identity"),
        // Malformed: treated as absent, never a 400.
        ("br;q=2", "identity"),
        ("gzip;level=9", "identity"),
        ("br;q=", "identity"),
        ("\"br\"", "identity"),
    ];
    for &(header, want) in cases {
        let r = fetch(s.addr, "/app.js", &[&ae(header)]);
        assert_representation(
            &r,
            want,
            &data,
            &plain,
            &format!("Accept-Encoding: {header:?}"),
        );
    }
    // Bytes that are not UTF-8 in the header: still identity.
    let mut raw =
        b"GET /app.js HTTP/1.1\r\nHost: x\r\nAccept-Encoding: b\xffr\r\nConnection: close\r\n\r\n"
            .to_vec();
    let r = request_close(s.addr, &raw);
    assert_representation(&r, "identity", &data, &plain, "non-UTF-8 header");
    // Pipelined on one keep-alive connection, alternating codings.
    raw.clear();
    for c in ["br", "gzip", "zstd", "identity"] {
        raw.extend_from_slice(&build_req("GET", "/app.js", &[&ae(c)], false));
    }
    let mut conn = Conn::open(s.addr);
    conn.send(&raw);
    for c in ["br", "gzip", "zstd", "identity"] {
        let r = conn.read_response(false);
        assert_representation(&r, c, &data, &plain, &format!("pipelined {c}"));
    }
}

#[test]
fn head_304_if_range_and_ranges_on_a_variant() {
    let d = TempDir::new("enc-cond");
    let data = js_text(30 * 1024);
    d.write("app.css", &data);
    let s = Server::start(d.path(), &[]);
    let plain = fetch(s.addr, "/app.css", &[]);
    let br = fetch(s.addr, "/app.css", &[&ae("br")]);
    assert_representation(&br, "br", &data, &plain, "br");
    let br_etag = br.must_header("etag").to_string();
    let plain_etag = plain.must_header("etag").to_string();

    // HEAD: the variant's length, no body.
    let h = request_close(s.addr, &head_req("/app.css", &[&ae("br")]));
    assert_eq!(h.status, 200);
    assert_eq!(h.content_length(), Some(br.body.len() as u64));
    assert_eq!(h.header("content-encoding"), Some("br"));
    assert!(h.body.is_empty());

    // If-None-Match per representation.
    let r = fetch(
        s.addr,
        "/app.css",
        &[&ae("br"), &format!("If-None-Match: {br_etag}")],
    );
    assert_eq!(r.status, 304, "{}", r.describe());
    assert_eq!(r.header("etag"), Some(br_etag.as_str()));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert!(r.body.is_empty());
    let r = fetch(
        s.addr,
        "/app.css",
        &[&ae("br"), &format!("If-None-Match: {plain_etag}")],
    );
    assert_eq!(r.status, 200, "the identity ETag does not match the br one");
    assert_eq!(coding_of(&r), "br");
    let r = fetch(s.addr, "/app.css", &[&format!("If-None-Match: {br_etag}")]);
    assert_eq!(r.status, 200, "the br ETag does not match the identity one");
    assert_eq!(coding_of(&r), "identity");
    let r = fetch(
        s.addr,
        "/app.css",
        &[&format!("If-None-Match: {plain_etag}")],
    );
    assert_eq!(r.status, 304);

    // Range on the selected representation: bytes of the br body.
    let r = fetch(s.addr, "/app.css", &[&ae("br"), "Range: bytes=0-9"]);
    assert_eq!(r.status, 206, "{}", r.describe());
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 0-9/{}", br.body.len()).as_str())
    );
    assert_eq!(r.body, &br.body[..10]);
    let tail = format!("Range: bytes={}-", br.body.len() - 7);
    let r = fetch(s.addr, "/app.css", &[&ae("br"), &tail]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &br.body[br.body.len() - 7..]);
    let past = format!("Range: bytes={}-", br.body.len());
    let r = fetch(s.addr, "/app.css", &[&ae("br"), &past]);
    assert_eq!(r.status, 416, "past the br length, though not the file's");
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{}", br.body.len()).as_str())
    );

    // If-Range: the br ETag allows the range on br; the identity one sends the whole br body.
    let r = fetch(
        s.addr,
        "/app.css",
        &[
            &ae("br"),
            "Range: bytes=5-14",
            &format!("If-Range: {br_etag}"),
        ],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &br.body[5..15]);
    let r = fetch(
        s.addr,
        "/app.css",
        &[
            &ae("br"),
            "Range: bytes=5-14",
            &format!("If-Range: {plain_etag}"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, br.body);
}

/// Sets a file's modification time.
fn set_mtime(p: &std::path::Path, t: SystemTime) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_times(std::fs::FileTimes::new().set_modified(t))
        .unwrap();
}

#[test]
fn precompressed_siblings_are_served_and_stale_ones_ignored() {
    let d = TempDir::new("enc-siblings");
    let data = js_text(20 * 1024);
    let now = SystemTime::now();
    let p = d.write("site.css", &data);
    set_mtime(&p, now - Duration::from_secs(100));
    let mut sib = std::collections::HashMap::new();
    for (c, suffix) in [("br", "br"), ("zstd", "zst"), ("gzip", "gz")] {
        let bytes = encode(c, &data);
        let sp = d.write(format!("site.css.{suffix}"), &bytes);
        set_mtime(&sp, now - Duration::from_secs(100));
        sib.insert(c, bytes);
    }
    // A stale sibling: older than its original (the original was rebuilt, the .gz was not).
    let other = js_text(9000);
    let p = d.write("stale.js", &other);
    set_mtime(&p, now - Duration::from_secs(10));
    let sp = d.write("stale.js.gz", &encode("gzip", b"the previous version"));
    set_mtime(&sp, now - Duration::from_secs(1000));
    // A directory's index.html has siblings too.
    d.write("docs/index.html", &data);
    d.write("docs/index.html.gz", &sib["gzip"]);

    let s = Server::start(d.path(), &["--compress", "off"]);
    let plain = fetch(s.addr, "/site.css", &[]);
    for c in ["br", "zstd", "gzip"] {
        let r = fetch(s.addr, "/site.css", &[&ae(c)]);
        assert_representation(&r, c, &data, &plain, c);
        assert_bytes_eq(&r.body, &sib[c], &format!("{c}: the sibling's own bytes"));
    }
    let r = fetch(s.addr, "/site.css", &[&ae("gzip, deflate, br, zstd")]);
    assert_eq!(coding_of(&r), "br");

    let plain = fetch(s.addr, "/stale.js", &[]);
    let r = fetch(s.addr, "/stale.js", &[&ae("gzip")]);
    assert_representation(
        &r,
        "identity",
        &other,
        &plain,
        "stale sibling, compress off",
    );

    let r = fetch(s.addr, "/docs/", &[&ae("gzip")]);
    assert_eq!(coding_of(&r), "gzip");
    assert_bytes_eq(&decode("gzip", &r.body), &data, "index.html.gz");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    drop(s);

    // With compression on, a stale sibling gives way to a fresh compressed copy.
    let s = Server::start(d.path(), &[]);
    let r = fetch(s.addr, "/stale.js", &[&ae("gzip")]);
    assert_representation(&r, "gzip", &other, &plain, "stale sibling, compress on");
    drop(s);

    // --precompressed off: siblings are never read.
    let s = Server::start(d.path(), &["--precompressed", "off"]);
    let r = fetch(s.addr, "/site.css", &[&ae("br")]);
    assert_eq!(coding_of(&r), "br");
    assert_ne!(r.body, sib["br"], "compressed here, not the sibling");
    assert_bytes_eq(&decode("br", &r.body), &data, "on the fly");
}

/// Requests until `want` is seen (the cache revalidates after --cache-valid); bounded.
#[track_caller]
fn until(
    addr: SocketAddr,
    extra: &[&str],
    want: &dyn Fn(&Response) -> bool,
    what: &str,
) -> Response {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = fetch(addr, "/late.js", extra);
        if want(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: never seen; last {}",
            r.describe()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_sibling_added_or_removed_while_running_is_seen() {
    let d = TempDir::new("enc-live");
    let data = js_text(5000);
    d.write("late.js", &data);
    let s = Server::start(d.path(), &["--cache-valid", "200ms", "--compress", "off"]);
    let gz = [&ae("gzip")[..]];
    let r = fetch(s.addr, "/late.js", &gz);
    assert_eq!(coding_of(&r), "identity");
    let sibling = encode("gzip", &data);
    // Written as a deploy would: a temporary name, then a rename.
    d.write("late.js.gz.tmp", &sibling);
    std::fs::rename(d.join("late.js.gz.tmp"), d.join("late.js.gz")).unwrap();
    let r = until(s.addr, &gz, &|r| coding_of(r) == "gzip", "the new sibling");
    assert_bytes_eq(&r.body, &sibling, "the sibling added");
    // Both workers see it (each has its own cache): several connections land on both.
    for _ in 0..8 {
        let r = until(s.addr, &gz, &|r| coding_of(r) == "gzip", "the new sibling");
        assert_bytes_eq(&r.body, &sibling, "the sibling added");
    }
    std::fs::remove_file(d.join("late.js.gz")).unwrap();
    let r = until(
        s.addr,
        &gz,
        &|r| coding_of(r) == "identity",
        "the sibling removed",
    );
    assert_bytes_eq(&r.body, &data, "after removal");
    // The original changing makes the old sibling stale: identity again, never the old sibling.
    d.write("late.js.gz", &sibling);
    until(s.addr, &gz, &|r| coding_of(r) == "gzip", "sibling back");
    let newer = js_text(6000);
    let p = d.join("late.js");
    std::fs::write(d.join("late.js.new"), &newer).unwrap();
    set_mtime(
        &d.join("late.js.new"),
        SystemTime::now() + Duration::from_secs(5),
    );
    std::fs::rename(d.join("late.js.new"), &p).unwrap();
    let r = until(
        s.addr,
        &gz,
        &|r| coding_of(r) == "identity" && r.body.len() == newer.len(),
        "the sibling gone stale",
    );
    assert_bytes_eq(&r.body, &newer, "the new original");
}

#[test]
fn on_the_fly_variants_are_made_once_and_cached() {
    let d = TempDir::new("enc-cached");
    let data = js_text(100 * 1024);
    let p = d.write("big.js", &data);
    // One worker, a long validity, and the original sent from its fd: a variant made anew would
    // read the file's current bytes; a cached one still carries the first ones.
    let s = Server::start(
        d.path(),
        &[
            "--workers",
            "1",
            "--cache-valid",
            "300",
            "--inline-max",
            "0",
        ],
    );
    let plain = fetch(s.addr, "/big.js", &[]);
    let first = fetch(s.addr, "/big.js", &[&ae("br")]);
    assert_representation(&first, "br", &data, &plain, "first br");
    // Rewrite the file in place: same inode, same size, other bytes.
    let mut changed = data.clone();
    changed[..13].copy_from_slice(b"/* changed */");
    std::fs::write(&p, &changed).unwrap();
    let again = fetch(s.addr, "/big.js", &[&ae("br")]);
    assert_eq!(coding_of(&again), "br");
    assert_bytes_eq(
        &again.body,
        &first.body,
        "the cached variant, not a new compression",
    );
    assert_eq!(again.header("etag"), first.header("etag"));
}

#[test]
fn what_is_never_coded() {
    let d = TempDir::new("enc-never");
    d.write("small.js", &js_text(1000)); // under 1 KiB
    let noise = pattern_bytes(8192, 7);
    d.write("noise.js", &noise); // compresses to no less than itself
    d.write("pic.png", &js_text(8192)); // compressible bytes, but not a compressible type
    d.write("pic.png.gz", &encode("gzip", &js_text(8192)));
    let s = Server::start(d.path(), &[]);
    let all = [&ae("gzip, deflate, br, zstd")[..]];
    for (path, vary) in [
        ("/small.js", true),
        ("/noise.js", true),
        ("/pic.png", false),
    ] {
        let r = fetch(s.addr, path, &all);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(coding_of(&r), "identity", "{path}");
        assert_eq!(r.header("vary").is_some(), vary, "{path}: {}", r.describe());
    }
    assert_bytes_eq(&fetch(s.addr, "/noise.js", &all).body, &noise, "noise");
    drop(s);
    // Both sources off: nothing is coded, and nothing varies.
    let d2 = TempDir::new("enc-off");
    let data = js_text(20000);
    d2.write("a.js", &data);
    d2.write("a.js.br", &encode("br", &data));
    let s = Server::start(d2.path(), &["--precompressed", "off", "--compress", "off"]);
    let r = fetch(s.addr, "/a.js", &all);
    assert_eq!(coding_of(&r), "identity");
    assert_eq!(r.header("vary"), None);
    assert_bytes_eq(&r.body, &data, "off");
}

#[test]
fn large_files_are_coded_only_from_a_sibling() {
    let d = TempDir::new("enc-large");
    let data = js_text((512 << 10) + 4096);
    d.write("huge.js", &data);
    d.write("huge2.js", &data);
    d.write("huge2.js.zst", &encode("zstd", &data));
    let s = Server::start(d.path(), &[]);
    let all = [&ae("gzip, br, zstd")[..]];
    let r = fetch(s.addr, "/huge.js", &all);
    assert_eq!(
        coding_of(&r),
        "identity",
        "over 512 KiB: not compressed on the fly"
    );
    assert_bytes_eq(&r.body, &data, "huge");
    let r = fetch(s.addr, "/huge2.js", &all);
    assert_eq!(coding_of(&r), "zstd");
    assert_bytes_eq(&decode("zstd", &r.body), &data, "huge2.js.zst");
}

#[test]
fn bad_coding_lists_are_refused_with_one_line() {
    let (st, _, err) = run_binary(&["--compress", "br,deflate", "-t"], Duration::from_secs(10));
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("`deflate` is not a content coding"), "{err}");
    let (st, _, err) = run_binary(&["--precompressed", ""], Duration::from_secs(10));
    assert_eq!(st.code(), Some(2), "{err}");
    assert!(err.contains("is not a content coding"), "{err}");
}
