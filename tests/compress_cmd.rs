//! `ringstatic compress ROOT`: siblings written atomically with the original's mtime, codings that
//! save under 5% skipped, a second run writes nothing, clear errors; then the server sends them.
mod common;
use common::*;

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

const LIMIT: Duration = Duration::from_secs(120);

fn text(n: usize, word: &str) -> Vec<u8> {
    let mut v = Vec::new();
    let mut i = 0;
    while v.len() < n {
        v.extend_from_slice(
            format!(".{word}-{i} {{ color: #{:06x}; }}\n", i * 7919 % 0xffffff).as_bytes(),
        );
        i += 1;
    }
    v.truncate(n);
    v
}

fn decode(suffix: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match suffix {
        "br" => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        "zst" => out = zstd::decode_all(body).unwrap(),
        "gz" => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
        }
        _ => unreachable!(),
    }
    out
}

/// (inode, mtime in ns) of every file under `dir`, sorted by path.
fn snapshot(dir: &Path) -> Vec<(String, u64, i128)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                let ns = m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128;
                out.push((e.path().display().to_string(), m.ino(), ns));
            }
        }
    }
    out.sort();
    out
}

fn compress(root: &Path) -> (Option<i32>, String, String) {
    let (st, out, err) = run_binary(&["compress", root.to_str().unwrap()], LIMIT);
    (st.code(), out, err)
}

#[test]
fn writes_siblings_once_with_the_originals_mtime() {
    let d = TempDir::new("compress-cmd");
    let css = text(40_000, "a");
    let html = text(3000, "page");
    d.write("style.css", &css);
    d.write("sub/deep/index.html", &html);
    d.write("noise.js", &pattern_bytes(20_000, 3)); // saves nothing
    d.write("photo.png", &text(20_000, "png")); // not a compressible type
    d.write(".git/config.json", &text(20_000, "git")); // a dot entry
    d.write(".well-known/security.txt", &text(5000, "wk"));
    std::os::unix::fs::symlink("style.css", d.join("link.css")).unwrap();

    let (code, out, err) = compress(d.path());
    assert_eq!(code, Some(0), "{out}{err}");
    // 4 compressible files (style.css, index.html, noise.js, security.txt), 3 codings each;
    // noise.js saves nothing in any coding.
    assert!(
        out.contains("4 files")
            && out.contains("siblings written 9")
            && out.contains("not worth it 3"),
        "{out}"
    );
    for (file, data) in [("style.css", &css), ("sub/deep/index.html", &html)] {
        let orig = std::fs::metadata(d.join(file)).unwrap();
        for suffix in ["br", "zst", "gz"] {
            let sib = d.join(format!("{file}.{suffix}"));
            let bytes = std::fs::read(&sib).unwrap_or_else(|e| panic!("{}: {e}", sib.display()));
            assert_bytes_eq(&decode(suffix, &bytes), data, &sib.display().to_string());
            assert!(bytes.len() * 100 <= data.len() * 95);
            let m = std::fs::metadata(&sib).unwrap();
            assert_eq!(
                m.modified().unwrap(),
                orig.modified().unwrap(),
                "{}",
                sib.display()
            );
            assert_eq!(m.mode() & 0o777, orig.mode() & 0o777);
        }
    }
    assert!(d.join(".well-known/security.txt.br").exists());
    for absent in [
        "noise.js.br",
        "noise.js.gz",
        "noise.js.zst",
        "photo.png.gz",
        ".git/config.json.gz",
        "link.css.gz",
    ] {
        assert!(!d.join(absent).exists(), "{absent} should not be written");
    }
    let leftovers: Vec<_> = snapshot(d.path())
        .into_iter()
        .filter(|(p, _, _)| p.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // A second run writes nothing: same inodes, same mtimes.
    let before = snapshot(d.path());
    let (code, out, err) = compress(d.path());
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("siblings written 0") && out.contains("up to date 9"),
        "{out}"
    );
    assert_eq!(snapshot(d.path()), before, "the second run changed files");

    // A rebuilt file gets new siblings; the others stay.
    let css2 = text(50_000, "b");
    let p = d.join("style.css");
    std::fs::write(&p, &css2).unwrap();
    let later = SystemTime::now() + Duration::from_secs(3);
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_times(std::fs::FileTimes::new().set_modified(later))
        .unwrap();
    let (code, out, _) = compress(d.path());
    assert_eq!(code, Some(0));
    assert!(
        out.contains("siblings written 3") && out.contains("up to date 6"),
        "{out}"
    );
    assert_bytes_eq(
        &decode("br", &std::fs::read(d.join("style.css.br")).unwrap()),
        &css2,
        "rebuilt style.css.br",
    );

    // And the server sends them: the siblings' exact bytes, compression on the fly off.
    let s = Server::start(d.path(), &["--compress", "off"]);
    let sib = std::fs::read(d.join("style.css.br")).unwrap();
    let r = get_with(
        s.addr,
        "/style.css",
        &["Accept-Encoding: gzip, deflate, br, zstd"],
    );
    assert_eq!(r.header("content-encoding"), Some("br"), "{}", r.describe());
    assert_bytes_eq(&r.body, &sib, "served sibling");
    let r = get_with(s.addr, "/sub/deep/", &["Accept-Encoding: gzip"]);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_bytes_eq(&decode("gz", &r.body), &html, "index.html.gz");
}

#[test]
fn usage_and_errors() {
    let (st, _, err) = run_binary(&["compress"], LIMIT);
    assert_eq!(st.code(), Some(2));
    assert!(
        err.contains("ROOT is missing") && err.contains("usage:"),
        "{err}"
    );
    let (st, _, err) = run_binary(&["compress", "--level", "3", "x"], LIMIT);
    assert_eq!(st.code(), Some(2));
    assert!(err.contains("unknown option `--level`"), "{err}");
    let (st, _, err) = run_binary(&["compress", "/nonexistent/site"], LIMIT);
    assert_eq!(st.code(), Some(1));
    assert!(
        err.contains("/nonexistent/site") && err.lines().count() == 1,
        "{err}"
    );
    let d = TempDir::new("compress-file");
    let f = d.write("plain.txt", b"x");
    let (st, _, err) = run_binary(&["compress", f.to_str().unwrap()], LIMIT);
    assert_eq!(st.code(), Some(1));
    assert!(err.contains("not a directory"), "{err}");
    let (st, out, _) = run_binary(&["compress", "--help"], LIMIT);
    assert_eq!(st.code(), Some(0));
    assert!(out.contains("usage: ringstatic compress"));
}

#[test]
fn a_sibling_that_cannot_be_written_is_an_error_and_others_go_on() {
    let d = TempDir::new("compress-blocked");
    d.write("a.css", &text(10_000, "blocked"));
    d.write("ok/b.css", &text(10_000, "ok"));
    // A directory where a.css.br would go: the rename onto it fails, as root too.
    d.mkdir("a.css.br/x");
    let (code, out, err) = compress(d.path());
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("cannot write") && err.contains("a.css.br"),
        "{err}"
    );
    assert!(out.contains("1 errors"), "{out}");
    assert!(
        d.join("a.css.gz").exists() && d.join("ok/b.css.br").exists(),
        "the rest is done"
    );
    let leftovers = snapshot(d.path())
        .into_iter()
        .filter(|(p, _, _)| p.contains(".tmp-"))
        .count();
    assert_eq!(leftovers, 0, "the temporary file is removed");
}
