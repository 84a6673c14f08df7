//! A real browser: headless Chromium loads a page with a stylesheet and a script from the server,
//! gets both brotli-coded (a precompressed sibling, then a copy compressed on the fly), decodes
//! them and renders: the script reports the computed style the stylesheet gave and the sizes
//! Chromium saw on the wire and after decoding. Skipped, saying so, where Chromium is missing.
mod common;
use common::*;

use std::process::Command;
use std::time::Duration;

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(str::to_string)
}

const CSS_HEAD: &str = "body { background-color: rgb(1, 2, 3); }\n";

/// The script: after load, one paragraph saying the body's computed background and, per asset,
/// `encoded/decoded` body sizes from the Resource Timing entries.
const JS_HEAD: &str = r#"window.addEventListener('load', function () {
  function sizes(name) {
    var e = performance.getEntriesByName(new URL(name, location.href).href)[0];
    return e ? e.encodedBodySize + '/' + e.decodedBodySize : 'none';
  }
  var p = document.createElement('p');
  p.id = 'result';
  p.textContent = 'bg=' + getComputedStyle(document.body).backgroundColor +
    ' css=' + sizes('style.css') + ' js=' + sizes('app.js');
  document.body.appendChild(p);
});
"#;

fn site(d: &TempDir) -> (usize, usize) {
    let mut css = CSS_HEAD.to_string();
    for i in 0..300 {
        css.push_str(&format!(
            ".c{i} {{ margin: {}px; padding: {}px; }}\n",
            i % 7,
            i % 5
        ));
    }
    let mut js = JS_HEAD.to_string();
    for i in 0..200 {
        js.push_str(&format!(
            "function unused{i}(x) {{ return x * {i} + {i}; }}\n"
        ));
    }
    d.write("style.css", css.as_bytes());
    d.write("app.js", js.as_bytes());
    d.write(
        "index.html",
        b"<!doctype html><html><head><meta charset=\"utf-8\">\
          <link rel=\"stylesheet\" href=\"style.css\"><script src=\"app.js\"></script></head>\
          <body><h1>ringstatic</h1></body></html>\n",
    );
    (css.len(), js.len())
}

/// Loads `/` in headless Chromium; returns the rendered DOM.
fn render(browser: &str, addr: std::net::SocketAddr, profile: &std::path::Path) -> String {
    let out = run(
        Command::new(browser).args([
            "--headless",
            // The test page is our own; Chromium's sandbox needs privileges a CI container lacks.
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.display()),
            "--virtual-time-budget=5000",
            "--dump-dom",
            &format!("http://{addr}/"),
        ]),
        Duration::from_secs(90),
    );
    assert!(
        out.status.is_some_and(|s| s.success()),
        "chromium failed: {}",
        out.describe()
    );
    out.stdout
}

/// `name=ENC/DEC` from the result line.
fn sizes(dom: &str, name: &str) -> (usize, usize) {
    let at = dom
        .find(&format!("{name}="))
        .unwrap_or_else(|| panic!("no {name}= in {dom}"));
    let rest = &dom[at + name.len() + 1..];
    let end = rest.find([' ', '<']).unwrap_or(rest.len());
    let (e, d) = rest[..end]
        .split_once('/')
        .unwrap_or_else(|| panic!("{name}: {}", &rest[..end]));
    (e.parse().unwrap(), d.parse().unwrap())
}

#[test]
fn chromium_gets_brotli_and_renders() {
    let Some(browser) = chromium() else {
        eprintln!(
            "skipped: no chromium here (Debian: apt-get install chromium; .ci/run installs it)"
        );
        return;
    };
    let d = TempDir::new("browser");
    let (css_len, js_len) = site(&d);
    let profile = TempDir::new("browser-profile");

    // 1. Precompressed siblings, brotli only: what Chromium receives is exactly the .br bytes.
    let (st, out, err) = run_binary(
        &["compress", "--quiet", d.path().to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert!(st.success(), "{out}{err}");
    let br_css = std::fs::metadata(d.join("style.css.br")).unwrap().len() as usize;
    let br_js = std::fs::metadata(d.join("app.js.br")).unwrap().len() as usize;
    let log = d.join("access.log");
    let s = Server::start(
        d.path(),
        &[
            "--precompressed",
            "br",
            "--compress",
            "off",
            "--access-log",
            log.to_str().unwrap(),
        ],
    );
    let dom = render(&browser, s.addr, profile.path());
    assert!(
        dom.contains("bg=rgb(1, 2, 3)"),
        "the stylesheet applied: {dom}"
    );
    assert_eq!(sizes(&dom, "css"), (br_css, css_len), "{dom}");
    assert_eq!(sizes(&dom, "js"), (br_js, js_len), "{dom}");
    drop(s); // the access log is flushed by the time the server has stopped
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains(&format!("\"GET /style.css HTTP/1.1\" 200 {br_css} ")),
        "{log}"
    );
    assert!(
        log.contains(&format!("\"GET /app.js HTTP/1.1\" 200 {br_js} ")),
        "{log}"
    );

    // 2. No siblings used: the server compresses, Chromium decodes the same bytes.
    let s = Server::start(d.path(), &["--precompressed", "off"]);
    let dom = render(&browser, s.addr, profile.path());
    assert!(dom.contains("bg=rgb(1, 2, 3)"), "{dom}");
    let (enc, dec) = sizes(&dom, "js");
    assert_eq!(dec, js_len, "{dom}");
    assert!(enc < dec / 2, "compressed on the fly: {dom}");
    let r = get_with(s.addr, "/app.js", &["Accept-Encoding: br"]);
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert_eq!(
        r.body.len(),
        enc,
        "Chromium got the br bytes the server sends"
    );
}
