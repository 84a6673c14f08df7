//! Serving a site as it is deployed: headers by path (`--header`, `--cache-control`), clean
//! URLs, index names, error pages, the single-page-app fallback and directory listings, each
//! checked with raw requests against the real server.
mod common;
use common::*;
use std::os::unix::fs::symlink;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

fn head(addr: std::net::SocketAddr, target: &str) -> Response {
    let mut c = Conn::open(addr);
    c.send(&head_req(target, &[]));
    c.read_response(true)
}

#[test]
fn header_rules_match_by_path_and_later_rules_win() {
    let d = TempDir::new("site-hdr");
    d.write("assets/app.js", b"js");
    d.write("assets/sub/deep.js", b"deep");
    d.write("docs/page.html", b"<p>page</p>");
    d.write("docs/index.html", b"<p>docs</p>");
    d.write("a.txt", b"hello a");
    let s = Server::start(
        d.path(),
        &[
            "--cache-control",
            "max-age=60",
            "--header",
            "/** X-Content-Type-Options: nosniff",
            "--header",
            "/assets/* Cache-Control: public, max-age=31536000, immutable",
            "--header",
            "*.html Cache-Control: no-cache",
        ],
    );
    let cc = |target: &str| {
        let r = get(s.addr, target);
        assert_eq!(r.status, 200, "{target}: {}", r.describe());
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{target}"
        );
        let all = r.header_all("cache-control");
        assert_eq!(
            all.len(),
            1,
            "{target}: one Cache-Control: {}",
            r.describe()
        );
        all[0].to_string()
    };
    assert_eq!(cc("/assets/app.js"), "public, max-age=31536000, immutable");
    assert_eq!(
        cc("/assets/sub/deep.js"),
        "max-age=60",
        "`*` stays in one segment"
    );
    assert_eq!(cc("/docs/page.html"), "no-cache");
    assert_eq!(
        cc("/docs/"),
        "no-cache",
        "matched by the index file it serves"
    );
    assert_eq!(cc("/a.txt"), "max-age=60", "--cache-control is /**");

    // 304 and 206 carry them too.
    let r = get(s.addr, "/assets/app.js");
    let etag = r.must_header("etag").to_string();
    let r = get_with(
        s.addr,
        "/assets/app.js",
        &[&format!("If-None-Match: {etag}")],
    );
    assert_eq!(r.status, 304, "{}", r.describe());
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let r = get_with(s.addr, "/a.txt", &["Range: bytes=0-1"]);
    assert_eq!(r.status, 206, "{}", r.describe());
    assert_eq!(r.body, b"he");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    // The built-in error page carries none (there is no file for the rules to match).
    let r = get(s.addr, "/missing.txt");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("cache-control"), None, "{}", r.describe());
}

#[test]
fn header_rules_from_the_config_file() {
    let d = TempDir::new("site-hdr-file");
    d.write("www/a.css", b"body{}");
    let conf = d.write(
        "ringstatic.conf",
        b"header *.css X-From-File: yes\nheader /** Cache-Control: no-store\n",
    );
    let www = d.join("www");
    let s = Server::start(&www, &["--config", conf.to_str().unwrap()]);
    let r = get(s.addr, "/a.css");
    assert_eq!(r.header("x-from-file"), Some("yes"), "{}", r.describe());
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[test]
fn headers_the_server_owns_are_refused() {
    let d = TempDir::new("site-hdr-refused");
    let root = d.path().to_str().unwrap();
    for bad in [
        "/** Content-Length: 5",
        "*.js content-encoding: br",
        "/** ETag: \"x\"",
        "/** Date: today",
        "/** Vary: *",
        "/** Transfer-Encoding: chunked",
    ] {
        let name = bad.split_whitespace().nth(1).unwrap().trim_end_matches(':');
        let (st, out, err) = run_binary(&["-t", "--header", bad, root], T);
        assert_eq!(st.code(), Some(1), "{bad}: stdout {out} stderr {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err:?}");
        assert!(
            err.contains(name) && err.contains("set by the server"),
            "{bad}: {err}"
        );
        // At start: the same line, exit 1, before anything listens.
        let (st, out, err) = run_binary(&["--listen", "127.0.0.1:0", "--header", bad, root], T);
        assert_eq!(st.code(), Some(1), "{bad}: stdout {out} stderr {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err:?}");
        assert!(!out.contains("listening on") && err.contains(name), "{err}");
    }
    for (bad, says) in [
        ("/x", "PATTERN NAME: VALUE"),
        ("/x NoColon", "no `:`"),
        ("/a** X-A: b", "whole segment"),
        ("/x X-A:", "empty value"),
    ] {
        let (st, _, err) = run_binary(&["-t", "--header", bad, root], T);
        assert_eq!(st.code(), Some(1), "{bad}: {err}");
        assert!(err.contains(says), "{bad}: {err}");
    }
    let (st, out, err) = run_binary(&["-t", "--header", "/** X-Frame-Options: DENY", root], T);
    assert_eq!(st.code(), Some(0), "{out} {err}");
}

#[test]
fn clean_urls() {
    let d = TempDir::new("site-clean");
    d.write("about.html", b"<p>about</p>");
    d.write("blog/post.html", b"<p>post</p>");
    d.write("blog/index.html", b"<p>blog</p>");
    d.write("both", b"plain both");
    d.write("both.html", b"<p>both html</p>");
    d.write("notes.txt", b"notes");
    // Same size, written in the same second: the same ETag, but not the same file.
    d.write("twin", b"plain");
    d.write("twin.html", b"<br/>");
    let s = Server::start(d.path(), &["--clean-urls"]);
    let r = get(s.addr, "/about");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"<p>about</p>");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(get(s.addr, "/blog/post").body, b"<p>post</p>");
    assert_eq!(get(s.addr, "/blog/").body, b"<p>blog</p>");
    // The .html name redirects to the clean one (query kept), as the static hosts do.
    let r = get(s.addr, "/about.html?x=1");
    assert_eq!(r.status, 301, "{}", r.describe());
    assert_eq!(r.header("location"), Some("/about?x=1"));
    let r = get(s.addr, "/blog/index.html");
    assert_eq!((r.status, r.header("location")), (301, Some("/blog/")));
    // ... but only when the clean URL serves that same file.
    assert_eq!(get(s.addr, "/both").body, b"plain both");
    let r = get(s.addr, "/both.html");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"<p>both html</p>");
    let r = get(s.addr, "/twin.html");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"<br/>"[..]),
        "{}",
        r.describe()
    );
    assert_eq!(get(s.addr, "/notes").status, 404, "only .html is tried");
    assert_eq!(
        get(s.addr, "/blog").status,
        301,
        "a directory still gets its slash"
    );
    drop(s);

    let s = Server::start(d.path(), &[]);
    assert_eq!(get(s.addr, "/about").status, 404, "off by default");
    assert_eq!(get(s.addr, "/about.html").status, 200);
}

#[test]
fn index_names_in_order() {
    let d = TempDir::new("site-index");
    d.write("a/index.htm", b"a htm");
    d.write("b/index.html", b"b html");
    d.write("b/index.htm", b"b htm");
    d.write("c/default.txt", b"c default");
    let s = Server::start(d.path(), &["--index", "index.html,index.htm,default.txt"]);
    assert_eq!(get(s.addr, "/a/").body, b"a htm");
    assert_eq!(
        get(s.addr, "/b/").body,
        b"b html",
        "the first name that exists"
    );
    let r = get(s.addr, "/c/");
    assert_eq!(r.body, b"c default");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    drop(s);
    let s = Server::start(d.path(), &[]);
    assert_eq!(get(s.addr, "/a/").status, 404, "index.html only by default");
    let (st, _, err) = run_binary(
        &["-t", "--index", "a/b.html", d.path().to_str().unwrap()],
        T,
    );
    assert_eq!(st.code(), Some(1));
    assert!(
        err.contains("a/b.html") && err.contains("not a file name"),
        "{err}"
    );
}

#[test]
fn the_404_page() {
    let d = TempDir::new("site-404");
    d.write("404.html", b"<h1>custom not found</h1>");
    d.write("errors/gone.html", b"<h1>configured</h1>");
    d.write("a.txt", b"a");
    let s = Server::start(d.path(), &["--header", "/404.html X-Page: yes"]);
    let r = get(s.addr, "/nope");
    assert_eq!(r.status, 404, "never 200: {}", r.describe());
    assert_eq!(r.body, b"<h1>custom not found</h1>");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("x-page"), Some("yes"), "its header rules apply");
    assert_eq!(r.header("etag"), None, "no validators on an error");
    let r = head(s.addr, "/nope");
    assert_eq!((r.status, r.content_length()), (404, Some(25)));
    assert!(r.body.is_empty());
    // Hidden files get the same page.
    assert_eq!(
        get(s.addr, "/.git/config").body,
        b"<h1>custom not found</h1>"
    );
    // Keep-alive goes on after it.
    let mut c = Conn::open(s.addr);
    c.send(&build_req("GET", "/x", &[], false));
    assert_eq!(c.read_response(false).status, 404);
    c.send(&build_req("GET", "/a.txt", &[], false));
    assert_eq!(c.read_response(false).body, b"a");
    drop(s);

    let s = Server::start(d.path(), &["--error-page", "404=off"]);
    let r = get(s.addr, "/nope");
    assert_eq!(r.status, 404);
    assert!(r.body_str().contains("404 Not Found"), "{}", r.describe());
    drop(s);

    let s = Server::start(d.path(), &["--error-page", "404=/errors/gone.html"]);
    let r = get(s.addr, "/nope");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (404, &b"<h1>configured</h1>"[..])
    );
    // Other statuses: 405 keeps its Allow line.
    drop(s);
    let outside = TempDir::new("site-404-out");
    outside.write("secret", b"secret");
    symlink(outside.join("secret"), d.join("out")).unwrap();
    let s = Server::start(
        d.path(),
        &[
            "--error-page",
            "405=/errors/gone.html",
            "--error-page",
            "403=/errors/gone.html",
        ],
    );
    let r = request_close(s.addr, &build_req("DELETE", "/a.txt", &[], true));
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    assert_eq!(r.body, b"<h1>configured</h1>");
    let r = get(s.addr, "/out");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (403, &b"<h1>configured</h1>"[..])
    );
    drop(s);
    // A configured page that does not exist: the built-in one.
    let s = Server::start(d.path(), &["--error-page", "404=/missing.html"]);
    let r = get(s.addr, "/nope");
    assert!(r.status == 404 && r.body_str().contains("404 Not Found"));
    drop(s);
    let root = d.path().to_str().unwrap();
    for (bad, says) in [
        ("200=/a.html", "not an error status"),
        ("404", "CODE=PATH"),
        ("404=a.html", "starting with /"),
        ("404=/../a.html", "starting with /"),
    ] {
        let (st, _, err) = run_binary(&["-t", "--error-page", bad, root], T);
        assert_eq!(st.code(), Some(1), "{bad}: {err}");
        assert!(err.contains(says), "{bad}: {err}");
    }
}

#[test]
fn spa_fallback() {
    let outer = TempDir::new("site-spa");
    outer.write("secret.txt", b"SECRET-outside");
    let root = outer.mkdir("root");
    std::fs::write(root.join("index.html"), b"<div id=app></div>").unwrap();
    std::fs::write(root.join("a.txt"), b"a").unwrap();
    std::fs::create_dir_all(root.join("assets")).unwrap();
    std::fs::write(root.join(".env"), b"KEY=1").unwrap();
    symlink(outer.join("secret.txt"), root.join("out")).unwrap();
    let s = Server::start(
        &root,
        &[
            "--fallback",
            "/index.html",
            "--fallback-exclude",
            "/assets/",
        ],
    );
    for route in ["/users/42", "/deep/route/x.json", "/users/"] {
        let r = get(s.addr, route);
        assert_eq!(r.status, 200, "{route}: {}", r.describe());
        assert_eq!(r.body, b"<div id=app></div>");
    }
    let r = head(s.addr, "/users/42");
    assert_eq!((r.status, r.content_length()), (200, Some(18)));
    assert_eq!(
        get(s.addr, "/a.txt").body,
        b"a",
        "files are served as they are"
    );
    assert_eq!(get(s.addr, "/assets/missing.js").status, 404, "excluded");
    assert_eq!(
        get(s.addr, "/.env").status,
        404,
        "dotfiles are never a route"
    );
    assert_eq!(get(s.addr, "/.hidden/route").status, 404);
    assert_eq!(
        get(s.addr, "/out").status,
        403,
        "a refused symlink is not a route"
    );
    let r = request_close(s.addr, b"GET /../secret.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 400);
    let r = request_close(s.addr, &build_req("POST", "/users/42", &[], true));
    assert_eq!(r.status, 405);
    assert_eq!(get(s.addr, "/assets").status, 301);
}

#[test]
fn directory_listings() {
    let outer = TempDir::new("site-list");
    outer.write("secret.txt", b"outside");
    let root = outer.mkdir("root");
    let w = |rel: &str, b: &[u8]| std::fs::write(root.join(rel), b).unwrap();
    std::fs::create_dir_all(root.join("files/sub dir")).unwrap();
    std::fs::create_dir_all(root.join("with-index")).unwrap();
    w("with-index/index.html", b"the index");
    w("files/<script>.html", b"x");
    w("files/a\"b", b"quote");
    w("files/z.txt", b"12345");
    w("files/B.txt", b"b");
    w("files/.hidden", b"h");
    symlink(outer.join("secret.txt"), root.join("files/escape")).unwrap();
    symlink("z.txt", root.join("files/inside-link")).unwrap();

    let s = Server::start(&root, &["--autoindex"]);
    let r = get(s.addr, "/files/");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let html = r.body_str();
    assert!(!html.contains("<script>"), "markup injected: {html}");
    assert!(html.contains("&lt;script&gt;.html") && html.contains("href=\"./%3Cscript%3E.html\""));
    assert!(
        html.contains("a&quot;b") && html.contains("href=\"./a%22b\""),
        "{html}"
    );
    assert!(html.contains("href=\"./sub%20dir/\""), "{html}");
    assert!(!html.contains("hidden"), "dot entries hidden: {html}");
    assert!(
        !html.contains("escape"),
        "a symlink out of the root is not listed: {html}"
    );
    assert!(html.contains("inside-link"), "{html}");
    assert!(html.contains(">5</td>"), "sizes: {html}");
    assert!(html.contains(" GMT</td>"), "dates: {html}");
    let order: Vec<usize> = [
        "./%3Cscript",
        "./B.txt",
        "./a%22b",
        "./inside-link",
        "./sub%20dir/",
        "./z.txt",
    ]
    .iter()
    .map(|n| {
        html.find(n)
            .unwrap_or_else(|| panic!("{n} missing: {html}"))
    })
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "sorted by name: {html}"
    );
    // Its links lead to the files.
    assert_eq!(get(s.addr, "/files/a%22b").body, b"quote");
    assert_eq!(get(s.addr, "/files/%3Cscript%3E.html").body, b"x");
    assert_eq!(get(s.addr, "/with-index/").body, b"the index");
    assert_eq!(get(s.addr, "/files").status, 301);
    // A new entry shows once the cached listing is revalidated (--cache-valid 1 s).
    w("files/new.txt", b"n");
    let seen = (0..40).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        get(s.addr, "/files/").body_str().contains("new.txt")
    });
    assert!(seen, "the listing follows the directory");
    drop(s);

    let s = Server::start(&root, &["--autoindex", "--serve-dotfiles"]);
    assert!(get(s.addr, "/files/").body_str().contains("./.hidden"));
    drop(s);
    let s = Server::start(&root, &[]);
    assert_eq!(
        get(s.addr, "/files/").status,
        404,
        "no listing unless asked"
    );
}

#[test]
fn coded_variants_follow_the_file_that_answers() {
    let d = TempDir::new("site-coded");
    // Siblings are sent as they are: their bytes only need to differ from the originals'.
    d.write("about.html", b"<p>about</p>");
    d.write("about.html.br", b"BR of about.html");
    d.write("docs/index.htm", b"<p>docs</p>");
    d.write("docs/index.htm.br", b"BR of index.htm");
    d.write("404.html", b"<h1>not here</h1>");
    d.write("404.html.br", b"BR of 404.html");
    d.write("app.html", b"<div id=app></div>");
    d.write("app.html.br", b"BR of app.html");
    let s = Server::start(
        d.path(),
        &[
            "--clean-urls",
            "--index",
            "index.html,index.htm",
            "--fallback",
            "/app.html",
            "--fallback-exclude",
            "/static/",
            "--compress",
            "off",
        ],
    );
    let br = |target: &str| get_with(s.addr, target, &["Accept-Encoding: gzip, br"]);
    for (target, status, body) in [
        ("/about", 200, &b"BR of about.html"[..]),
        ("/docs/", 200, b"BR of index.htm"),
        ("/users/7", 200, b"BR of app.html"),
        ("/static/missing.js", 404, b"BR of 404.html"),
    ] {
        let r = br(target);
        assert_eq!(r.status, status, "{target}: {}", r.describe());
        assert_eq!(r.header("content-encoding"), Some("br"), "{target}");
        assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{target}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(r.body, body, "{target}");
    }
    // Without Accept-Encoding: the files themselves.
    assert_eq!(get(s.addr, "/about").body, b"<p>about</p>");
    let r = get(s.addr, "/users/7");
    assert_eq!((r.status, r.header("content-encoding")), (200, None));
    assert_eq!(r.body, b"<div id=app></div>");
    let r = get(s.addr, "/static/missing.js");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (404, &b"<h1>not here</h1>"[..])
    );
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
}
