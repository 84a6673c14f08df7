//! Target parsing and path mapping: queries, absolute-form, percent-encoding,
//! dot segments, traversal, symlinks, dotfiles, directories, permissions.
mod common;
use common::*;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

const SECRET: &[u8] = b"TOP-SECRET-do-not-serve-7f3a9c";

/// outer/ holds secret files; outer/root is the served root.
struct Site {
    outer: TempDir,
    root: PathBuf,
}

fn site() -> Site {
    let outer = TempDir::new("paths");
    outer.write("a.txt", SECRET);
    outer.write("x", SECRET);
    outer.write("secret.txt", SECRET);
    let root = outer.mkdir("root");
    std::fs::write(root.join("a.txt"), b"root a\n").unwrap();
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/b.txt"), b"sub b\n").unwrap();
    std::fs::create_dir_all(root.join("dir")).unwrap();
    std::fs::write(root.join("dir/index.html"), b"<p>dir index</p>\n").unwrap();
    std::fs::create_dir_all(root.join("noindex")).unwrap();
    std::fs::write(root.join("noindex/file.txt"), b"x\n").unwrap();
    Site { outer, root }
}

#[track_caller]
fn assert_no_secret(r: &Response, target: &str) {
    assert!(
        !contains(&r.body, SECRET),
        "{}: secret content from outside the root was served: {}",
        target,
        r.describe()
    );
}

#[test]
fn query_string_is_ignored_for_lookup() {
    let st = site();
    let s = Server::start(&st.root, &[]);
    for t in [
        "/a.txt?x=1",
        "/a.txt?",
        "/a.txt?a=/../../secret.txt&b=%2f",
        "/sub/b.txt?v=2#frag",
    ] {
        let r = get(s.addr, t);
        if t.contains('#') {
            // Fragments are not sent by real clients; only require no secret.
            assert_no_secret(&r, t);
            continue;
        }
        assert_eq!(r.status, 200, "{}: {}", t, r.describe());
        assert_ne!(r.body.len(), 0);
    }
    assert_eq!(get(s.addr, "/a.txt?x=1").body, b"root a\n");
}

#[test]
fn absolute_form_target_is_served() {
    let st = site();
    let s = Server::start(&st.root, &[]);
    let r = request_close(
        s.addr,
        b"GET http://localhost/a.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"root a\n");
    let r = request_close(
        s.addr,
        b"GET http://localhost:8080/sub/b.txt?q=1 HTTP/1.1\r\nHost: localhost:8080\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"sub b\n");
}

#[test]
fn percent_encoded_names_are_decoded() {
    let st = site();
    std::fs::write(st.root.join("hello world.txt"), b"spaced\n").unwrap();
    let s = Server::start(&st.root, &[]);
    let r = get(s.addr, "/hello%20world.txt");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"spaced\n");
    let r = get(s.addr, "/%61.txt");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"root a\n");
}

#[test]
fn encoded_question_mark_and_literal_plus_are_part_of_the_name() {
    let st = site();
    std::fs::write(st.root.join("what?.txt"), b"question\n").unwrap();
    std::fs::write(st.root.join("a+b.txt"), b"plus\n").unwrap();
    let s = Server::start(&st.root, &[]);
    let r = get(s.addr, "/what%3F.txt?x=1");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"question\n");
    let r = get(s.addr, "/a+b.txt");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"plus\n");
    let r = get(s.addr, "/a%2Bb.txt");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"plus\n");
}

#[test]
fn encoded_slash_or_nul_gets_400() {
    let st = site();
    let s = Server::start(&st.root, &[]);
    for t in [
        "/sub%2fb.txt",
        "/sub%2Fb.txt",
        "/a.txt%00",
        "/a%00.txt",
        "/%00",
    ] {
        let r = get(s.addr, t);
        assert_eq!(r.status, 400, "{}: {}", t, r.describe());
    }
}

#[test]
fn invalid_utf8_percent_encoded_name_that_exists_is_served() {
    let st = site();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9-\xff.txt");
    std::fs::write(st.root.join(name), b"latin1 name\n").unwrap();
    let s = Server::start(&st.root, &[]);
    let r = get(s.addr, "/caf%E9-%FF.txt");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"latin1 name\n");
    let r = get(s.addr, "/caf%e9-%ff.txt");
    assert_eq!(r.status, 200, "lowercase hex: {}", r.describe());
}

#[test]
fn dot_segments_inside_root_resolve_to_the_file() {
    let st = site();
    let s = Server::start(&st.root, &[]);
    for t in [
        "/sub/../a.txt",
        "/./a.txt",
        "/sub/./../sub/../a.txt",
        "/sub/%2e%2e/a.txt",
    ] {
        let r = get(s.addr, t);
        assert_eq!(r.status, 200, "{}: {}", t, r.describe());
        assert_eq!(r.body, b"root a\n", "{}", t);
    }
}

#[test]
fn targets_climbing_above_root_get_400() {
    let st = site();
    let s = Server::start(&st.root, &[]);
    for t in [
        "/../a.txt",
        "/../secret.txt",
        "/%2e%2e/x",
        "/%2E%2E/x",
        "/.%2e/x",
        "/a/../../x",
        "/sub/../../secret.txt",
        "/sub/../../../../../../etc/passwd",
    ] {
        let r = get(s.addr, t);
        assert_eq!(r.status, 400, "{}: {}", t, r.describe());
        assert_no_secret(&r, t);
    }
    let r = request_close(
        s.addr,
        b"GET http://h/../x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 400, "absolute-form traversal: {}", r.describe());
    assert_no_secret(&r, "http://h/../x");
    assert!(st.outer.join("x").exists());
}

#[test]
fn dotdot_with_encoded_slash_gets_400() {
    let st = site();
    let s = Server::start(&st.root, &[]);
    for t in [
        "/..%2fsecret.txt",
        "/..%2Fx",
        "/sub/..%2f..%2fsecret.txt",
        "/%2e%2e%2fx",
    ] {
        let r = get(s.addr, t);
        assert_eq!(r.status, 400, "{}: {}", t, r.describe());
        assert_no_secret(&r, t);
    }
}

#[test]
fn encoded_backslash_is_not_a_traversal() {
    let st = site();
    let s = Server::start(&st.root, &[]);
    let r = get(s.addr, "/%5c..%5cx");
    assert_eq!(r.status, 404, "{}", r.describe());
    assert_no_secret(&r, "/%5c..%5cx");
    let r = get(s.addr, "/%5c..%5csecret.txt");
    assert_eq!(r.status, 404, "{}", r.describe());
    assert_no_secret(&r, "/%5c..%5csecret.txt");
}

#[test]
#[allow(clippy::join_absolute_paths)] // `\` is an ordinary name byte on Linux, not a separator
fn encoded_backslash_names_a_real_file_when_one_exists() {
    let st = site();
    // A file literally named `\..\x` inside the root.
    std::fs::write(st.root.join("\\..\\x"), b"backslash file\n").unwrap();
    let s = Server::start(&st.root, &[]);
    let r = get(s.addr, "/%5c..%5cx");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"backslash file\n");
}

#[test]
fn symlink_pointing_outside_root_is_never_served() {
    let st = site();
    let elsewhere = TempDir::new("paths-elsewhere");
    let outside_file = elsewhere.write("outside.txt", SECRET);
    elsewhere.write("d/inner.txt", SECRET);
    std::os::unix::fs::symlink(&outside_file, st.root.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(elsewhere.join("d"), st.root.join("leakdir")).unwrap();
    std::os::unix::fs::symlink("../secret.txt", st.root.join("rel-leak.txt")).unwrap();
    let s = Server::start(&st.root, &[]);
    for t in [
        "/leak.txt",
        "/leakdir/inner.txt",
        "/rel-leak.txt",
        "/leakdir/",
    ] {
        for req in [get_req(t, &[]), get_req(t, &["Range: bytes=0-"])] {
            let r = request_close(s.addr, &req);
            assert!(
                r.status == 403 || r.status == 404,
                "{}: expected 403 or 404, got {}",
                t,
                r.describe()
            );
            assert_no_secret(&r, t);
        }
    }
}

#[test]
fn symlink_inside_root_to_file_inside_root_is_served() {
    let st = site();
    std::os::unix::fs::symlink("sub/b.txt", st.root.join("link.txt")).unwrap();
    std::os::unix::fs::symlink("../a.txt", st.root.join("sub/up-link.txt")).unwrap();
    std::os::unix::fs::symlink("sub", st.root.join("subdir-link")).unwrap();
    let s = Server::start(&st.root, &[]);
    let r = get(s.addr, "/link.txt");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"sub b\n");
    let r = get(s.addr, "/sub/up-link.txt");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"root a\n");
    let r = get(s.addr, "/subdir-link/b.txt");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"sub b\n");
}

#[test]
fn absolute_symlink_inside_root_to_file_inside_root_is_served() {
    let st = site();
    std::os::unix::fs::symlink(st.root.join("a.txt"), st.root.join("sub/abs-link.txt")).unwrap();
    let s = Server::start(&st.root, &[]);
    let r = get(s.addr, "/sub/abs-link.txt");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"root a\n");
}

fn dotfile_site() -> Site {
    let st = site();
    std::fs::write(st.root.join(".env"), b"SECRET_KEY=1\n").unwrap();
    std::fs::create_dir_all(st.root.join("a/.git")).unwrap();
    std::fs::write(st.root.join("a/.git/config"), b"[core]\n").unwrap();
    std::fs::create_dir_all(st.root.join(".well-known/acme-challenge")).unwrap();
    std::fs::write(st.root.join(".well-known/acme-challenge/tok"), b"tok.abc\n").unwrap();
    st
}

#[test]
fn dotfiles_are_404_by_default() {
    let st = dotfile_site();
    let s = Server::start(&st.root, &[]);
    for t in ["/.env", "/a/.git/config", "/a/%2egit/config", "/%2eenv"] {
        let r = get(s.addr, t);
        assert_eq!(r.status, 404, "{}: {}", t, r.describe());
        assert!(!contains(&r.body, b"SECRET_KEY") && !contains(&r.body, b"[core]"));
    }
}

#[test]
fn dotfiles_are_served_with_serve_dotfiles() {
    let st = dotfile_site();
    let s = Server::start(&st.root, &["--serve-dotfiles"]);
    let r = get(s.addr, "/.env");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"SECRET_KEY=1\n");
    let r = get(s.addr, "/a/.git/config");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"[core]\n");
}

#[test]
fn well_known_acme_challenge_is_served_without_flag() {
    let st = dotfile_site();
    let s = Server::start(&st.root, &[]);
    let r = get(s.addr, "/.well-known/acme-challenge/tok");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"tok.abc\n");
}

#[test]
fn directory_without_slash_redirects_301_keeping_query() {
    let st = site();
    let s = Server::start(&st.root, &[]);
    let r = get(s.addr, "/dir");
    assert_eq!(r.status, 301, "{}", r.describe());
    assert_eq!(r.must_header("location"), "/dir/");
    let r = get(s.addr, "/dir?x=1");
    assert_eq!(r.status, 301, "{}", r.describe());
    assert_eq!(r.must_header("location"), "/dir/?x=1");
    let r = get(s.addr, "/sub");
    assert_eq!(r.status, 301, "{}", r.describe());
    assert_eq!(r.must_header("location"), "/sub/");
}

#[test]
fn double_slash_targets_never_redirect_protocol_relative() {
    let st = site();
    std::fs::create_dir_all(st.root.join("evil.com")).unwrap();
    let s = Server::start(&st.root, &[]);
    for t in [
        "//dir",
        "//evil.com",
        "///evil.com",
        "//evil.com?x=1",
        "/.//evil.com",
        "//%2e/evil.com",
    ] {
        let r = get(s.addr, t);
        if let Some(loc) = r.header("location") {
            assert!(
                !loc.starts_with("//") && !loc.starts_with("/\\") && !loc.contains("://"),
                "{}: dangerous Location {:?}",
                t,
                loc
            );
            assert!(loc.starts_with('/'), "{}: Location {:?}", t, loc);
        }
        assert!(r.status < 500, "{}: {}", t, r.describe());
    }
    // `//dir` names the directory /dir: a redirect must lead to it.
    let r = get(s.addr, "//dir");
    if r.status == 301 {
        assert_eq!(r.must_header("location"), "/dir/");
    }
}

#[test]
fn directory_with_slash_serves_index_html() {
    let st = site();
    let s = Server::start(&st.root, &[]);
    let r = get(s.addr, "/dir/");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"<p>dir index</p>\n");
    assert_eq!(r.must_header("content-type"), "text/html; charset=utf-8");
}

#[test]
fn directory_without_index_is_404() {
    let st = site();
    let s = Server::start(&st.root, &[]);
    let r = get(s.addr, "/noindex/");
    assert_eq!(r.status, 404, "{}", r.describe());
    assert!(
        !contains(&r.body, b"file.txt"),
        "no directory listing: {}",
        r.describe()
    );
}

#[test]
fn missing_file_is_404_with_html_body() {
    let st = site();
    let s = Server::start(&st.root, &[]);
    for t in ["/nope.txt", "/sub/nope", "/a.txt/extra", "/nope/"] {
        let r = get(s.addr, t);
        assert_eq!(r.status, 404, "{}: {}", t, r.describe());
        assert_eq!(r.content_length(), Some(r.body.len() as u64));
        assert_eq!(r.must_header("server"), "ringstatic");
        assert!(is_imf_fixdate(r.must_header("date")));
        assert!(r.must_header("content-type").starts_with("text/html"));
    }
}

#[test]
fn unreadable_file_mode_000_is_403() {
    if is_root() {
        eprintln!("skipped: running as root (root bypasses file permissions)");
        return;
    }
    let st = site();
    use std::os::unix::fs::PermissionsExt;
    let p = st.root.join("locked.txt");
    std::fs::write(&p, b"locked\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
    let s = Server::start(&st.root, &[]);
    let r = get(s.addr, "/locked.txt");
    assert_eq!(r.status, 403, "{}", r.describe());
    assert!(!contains(&r.body, b"locked\n"));
}
