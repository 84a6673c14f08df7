//! ETags that survive a copy: the same file served from `cp -a` copies (two backends holding
//! the same site) has the same validator, so a revalidation against either ends in a 304; a
//! changed file gets a new one.
mod common;
use common::*;

use std::process::Command;
use std::time::Duration;

#[test]
fn a_copied_site_has_the_same_etags_and_revalidates_across_copies() {
    let d = TempDir::new("etagcopy");
    let site = d.mkdir("site");
    std::fs::write(site.join("a.txt"), b"hello a\n").unwrap();
    std::fs::write(site.join("big.bin"), pattern_bytes(300_000, 7)).unwrap();
    std::fs::create_dir_all(site.join("dir")).unwrap();
    std::fs::write(site.join("dir/index.html"), b"<p>index</p>\n").unwrap();
    let copy = d.join("site2");
    let out = run(
        Command::new("cp").arg("-a").arg(&site).arg(&copy),
        Duration::from_secs(10),
    );
    assert!(out.ok(), "cp -a: {}", out.describe());
    let one = Server::start(&site, &[]);
    let two = Server::start(&copy, &[]);
    for target in ["/a.txt", "/big.bin", "/dir/"] {
        let a = get(one.addr, target);
        let b = get(two.addr, target);
        assert_eq!(a.status, 200, "{target}: {}", a.describe());
        assert_eq!(b.status, 200, "{target}: {}", b.describe());
        let (ta, tb) = (a.must_header("etag"), b.must_header("etag"));
        assert_eq!(ta, tb, "{target}: the copy's ETag differs");
        assert!(
            ta.starts_with('"') && ta.ends_with('"') && ta.contains('-'),
            "{target}: {ta} is not \"<mtime>-<size>\""
        );
        // A browser that got the ETag from one backend revalidates against the other.
        let r = get_with(two.addr, target, &[&format!("If-None-Match: {ta}")]);
        assert_eq!(r.status, 304, "{target} on the copy: {}", r.describe());
        assert_eq!(r.header("etag"), Some(ta));
    }
}

#[test]
fn a_changed_file_gets_a_new_etag() {
    let d = TempDir::new("etagchange");
    let p = d.write("a.txt", b"first\n");
    let s = Server::start(d.path(), &["--cache-valid", "0"]);
    let before = get(s.addr, "/a.txt").must_header("etag").to_string();
    // Same size, another modification time.
    std::fs::write(&p, b"other\n").unwrap();
    let f = std::fs::File::options().write(true).open(&p).unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .unwrap();
    drop(f);
    let after = get(s.addr, "/a.txt");
    assert_eq!(after.body, b"other\n");
    let after_tag = after.must_header("etag").to_string();
    assert_ne!(before, after_tag, "new mtime, same ETag");
    // Same modification time, another size.
    std::fs::write(&p, b"longer content\n").unwrap();
    let f = std::fs::File::options().write(true).open(&p).unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .unwrap();
    drop(f);
    let third = get(s.addr, "/a.txt");
    assert_eq!(third.body, b"longer content\n");
    let third_tag = third.must_header("etag");
    assert_ne!(third_tag, after_tag, "new size, same ETag");
    assert_eq!(third_tag, format!("\"{:x}-{:x}\"", 1_000_000_000u64, 15));
    // The old validator no longer matches.
    let r = get_with(s.addr, "/a.txt", &[&format!("If-None-Match: {before}")]);
    assert_eq!(r.status, 200, "{}", r.describe());
}
