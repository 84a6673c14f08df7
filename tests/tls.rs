//! HTTPS against the clients people use: `curl` and `openssl s_client` (and Python's `ssl`
//! module for a load with many handshakes), with certificates made by the `openssl` command at
//! run time (an EC P-256 CA; RSA-2048 and EC P-256 leaves). TLS 1.3 and 1.2, SNI, ALPN, session
//! resumption across workers and reloads, hostile and stalled handshakes, close_notify,
//! pipelining across small records, TLS 1.3 key updates and a TLS 1.2 renegotiation request,
//! large files and ranges, a client that stops reading, a graceful stop mid-body, certificate
//! reload under load, broken certificates, the plain-HTTP redirect, HSTS, and TLS behind a PROXY
//! header. (The kernel-TLS start line is checked by kernel TLS's own tests.)
//!
//! Without `openssl`, `curl` or Python's `ssl` where a test needs it, the test says `skipped:`
//! and passes. The heavy tests (large files, the reload under load) share a lock so they never
//! compete with one another for the CPUs.
mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A test's temp dir with a CA in `pki/` and a document root in `www/`.
struct Fixture {
    d: TempDir,
    pki: Pki,
    www: PathBuf,
}

impl Fixture {
    /// None (after a loud `skipped:`) when one of `tools` is missing.
    fn new(test: &str, tools: &[&str]) -> Option<Fixture> {
        if !tools_or_skip(test, tools) {
            return None;
        }
        let d = TempDir::new(test);
        let pki = Pki::new(&d.join("pki"));
        let www = d.mkdir("www");
        Some(Fixture { d, pki, www })
    }

    /// Writes `rel` under the root, an hour old (so it has a Last-Modified).
    fn file(&self, rel: &str, content: &[u8]) {
        self.d.write_aged(Path::new("www").join(rel), content);
    }

    /// The usual default certificate: RSA-2048 for `a.test` and `www.a.test`.
    fn a_cert(&self, org: &str) -> CertPair {
        self.pki.leaf(
            "a",
            org,
            "a.test",
            &["a.test", "www.a.test"],
            KeyKind::Rsa2048,
            Validity::Days(30),
        )
    }
}

/// `--listen 127.0.0.1:0,tls --workers N [--tls-cert C --tls-key K]... EXTRA... ROOT`.
fn tls_args(www: &Path, pairs: &[&CertPair], workers: u32, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "--listen".into(),
        "127.0.0.1:0,tls".into(),
        "--workers".into(),
        workers.to_string(),
    ];
    for p in pairs {
        a.extend([
            "--tls-cert".into(),
            s(&p.cert).into(),
            "--tls-key".into(),
            s(&p.key).into(),
        ]);
    }
    a.extend(extra.iter().map(|x| x.to_string()));
    a.push(s(www).into());
    a
}

/// Starts a server with one TLS listener and checks it said `listening on https://`.
fn start_tls(www: &Path, pairs: &[&CertPair], workers: u32, extra: &[&str]) -> Server {
    let srv = Server::spawn(&tls_args(www, pairs, workers, extra), 1);
    assert_eq!(
        srv.https_addr(),
        srv.addr,
        "the TLS listener was not reported as https://\n{}",
        srv.log()
    );
    srv
}

/// A request that asks the server to close after answering.
fn close_req(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes()
}

#[track_caller]
fn assert_ok(out: &Out, what: &str) {
    assert!(out.ok(), "{what}: {}", out.describe());
}

/// GETs `path` over TLS with curl (`-o` a file in the fixture) and returns (status, body).
fn curl_get(
    f: &Fixture,
    addr: SocketAddr,
    name: &str,
    path: &str,
    args: &[&str],
) -> (u16, Vec<u8>) {
    let out_file = f.d.join(format!("curl-out-{}", path.replace('/', "_")));
    let _ = std::fs::remove_file(&out_file);
    let url = https_url(name, addr, path);
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-o", s(&out_file), "-w", "%{http_code}", &url]);
    let out = curl(&f.pki.ca, name, addr, &all);
    assert_ok(&out, &format!("curl {url}"));
    let status = out
        .stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("curl -w: {}", out.describe()));
    (status, std::fs::read(&out_file).unwrap_or_default())
}

/// The headers of a `curl -D -` dump (the last response's), lower-cased names.
fn dumped_headers(stdout: &str) -> Vec<(String, String)> {
    let last = stdout.rsplit("HTTP/").next().unwrap_or("");
    last.lines()
        .skip(1)
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect()
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

// ---------------------------------------------------------------------------------------------
// 1. curl over TLS 1.3 and 1.2
// ---------------------------------------------------------------------------------------------

#[test]
fn curl_over_tls13_and_tls12_get_head_304_keepalive() {
    let Some(f) = Fixture::new("tls-curl", &["openssl", "curl"]) else {
        return;
    };
    let data = pattern_bytes(200 * 1024, 1);
    let small = b"<h1>over TLS</h1>\n".to_vec();
    f.file("data.bin", &data);
    f.file("index.html", &small);
    f.file("b.txt", b"bee\n");
    let a = f.a_cert("");
    let srv = start_tls(&f.www, &[&a], 2, &[]);
    let addr = srv.https_addr();

    for (label, flags, want) in [
        ("TLS 1.3", &["--tlsv1.3"][..], "TLSv1.3"),
        ("TLS 1.2", &["--tlsv1.2", "--tls-max", "1.2"][..], "TLSv1.2"),
    ] {
        // GET, byte-exact, and the version really negotiated.
        let out_file = f.d.join("data.out");
        let url = https_url("a.test", addr, "/data.bin");
        let mut args = flags.to_vec();
        args.extend(["-v", "-o", s(&out_file), "-w", "%{http_code}", &url]);
        let out = curl(&f.pki.ca, "a.test", addr, &args);
        assert_ok(&out, label);
        assert_eq!(out.stdout.trim(), "200", "{label}: {}", out.describe());
        assert!(
            out.stderr.contains(&format!("SSL connection using {want}")),
            "{label}: curl did not negotiate {want}: {}",
            out.stderr
        );
        assert_bytes_eq(&std::fs::read(&out_file).unwrap(), &data, label);

        // HEAD: the GET's headers, no body.
        let mut args = flags.to_vec();
        args.extend(["-I", &url]);
        let out = curl(&f.pki.ca, "a.test", addr, &args);
        assert_ok(&out, label);
        assert!(
            out.stdout.starts_with("HTTP/1.1 200"),
            "{label} HEAD: {}",
            out.stdout
        );
        let h = dumped_headers(&out.stdout);
        assert_eq!(
            header(&h, "content-length"),
            Some("204800"),
            "{label} HEAD: {}",
            out.stdout
        );
        let etag = header(&h, "etag")
            .unwrap_or_else(|| panic!("{label}: HEAD without ETag: {}", out.stdout))
            .to_string();

        // If-None-Match with that ETag: 304, no body.
        let inm = format!("If-None-Match: {etag}");
        let (st, body) = curl_get(
            &f,
            addr,
            "a.test",
            "/data.bin",
            &[flags, &["-H", inm.as_str()]].concat(),
        );
        assert_eq!(st, 304, "{label}: If-None-Match");
        assert!(
            body.is_empty(),
            "{label}: 304 with {} body bytes",
            body.len()
        );

        // Keep-alive: three URLs on one connection, each byte-exact.
        let outs: Vec<PathBuf> = (0..3).map(|i| f.d.join(format!("ka{i}.out"))).collect();
        let urls: Vec<String> = ["/index.html", "/data.bin", "/b.txt"]
            .iter()
            .map(|p| https_url("a.test", addr, p))
            .collect();
        let mut args = flags.to_vec();
        args.push("-v");
        for (u, o) in urls.iter().zip(&outs) {
            args.extend([u.as_str(), "-o", s(o)]);
        }
        let out = curl(&f.pki.ca, "a.test", addr, &args);
        assert_ok(&out, label);
        let connects = out.stderr.matches("Connected to ").count();
        let reuses = out.stderr.matches("Re-using existing connection").count();
        assert_eq!(
            (connects, reuses),
            (1, 2),
            "{label}: three URLs did not share one connection:\n{}",
            out.stderr
        );
        assert_bytes_eq(
            &std::fs::read(&outs[0]).unwrap(),
            &small,
            "keep-alive /index.html",
        );
        assert_bytes_eq(
            &std::fs::read(&outs[1]).unwrap(),
            &data,
            "keep-alive /data.bin",
        );
        assert_bytes_eq(
            &std::fs::read(&outs[2]).unwrap(),
            b"bee\n",
            "keep-alive /b.txt",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2. SNI
// ---------------------------------------------------------------------------------------------

#[test]
fn sni_picks_the_certificate_by_name_and_unknown_names_get_the_first() {
    let Some(f) = Fixture::new("tls-sni", &["openssl", "curl"]) else {
        return;
    };
    f.file("index.html", b"sni\n");
    let a = f.a_cert("");
    let wild = f.pki.leaf(
        "wild",
        "",
        "*.example.test",
        &["*.example.test"],
        KeyKind::EcP256,
        Validity::Days(30),
    );
    // The wildcard's key in SEC1 form (`BEGIN EC PRIVATE KEY`, as acme.sh writes it).
    let sec1 = f.pki.dir.join("wild.sec1.key");
    let out = std::process::Command::new("openssl")
        .args(["ec", "-in", s(&wild.key), "-out", s(&sec1)])
        .output()
        .expect("openssl ec");
    assert!(out.status.success(), "openssl ec: {:?}", out);
    assert!(std::fs::read_to_string(&sec1)
        .unwrap()
        .contains("BEGIN EC PRIVATE KEY"));
    let wild = CertPair { key: sec1, ..wild };
    // No subjectAltName at all: its subject CN is its name.
    let cn_only = f.pki.leaf(
        "cnonly",
        "",
        "cn-only.test",
        &[],
        KeyKind::EcP256,
        Validity::Days(30),
    );
    let srv = start_tls(&f.www, &[&a, &wild, &cn_only], 2, &[]);
    let addr = srv.https_addr();

    let cases: &[(Option<&str>, &CertPair)] = &[
        (Some("a.test"), &a),
        (Some("www.a.test"), &a),
        (Some("www.example.test"), &wild),
        (Some("img.example.test"), &wild),
        // Names compare without regard to case.
        (Some("WWW.Example.TEST"), &wild),
        (Some("A.TEST"), &a),
        (Some("cn-only.test"), &cn_only),
        // A wildcard matches exactly one label.
        (Some("example.test"), &a),
        (Some("deep.www.example.test"), &a),
        (Some("unknown.test"), &a),
        (None, &a),
    ];
    for (version, vflag) in [("TLS 1.3", "-tls1_3"), ("TLS 1.2", "-tls1_2")] {
        for (name, want) in cases {
            let mut args = vec![vflag];
            match name {
                Some(n) => args.extend(["-servername", n]),
                None => args.push("-noservername"),
            }
            let out = s_client(addr, &f.pki.ca, &args, b"");
            let subject = s_client_subject(&out);
            assert_eq!(
                subject.as_deref(),
                Some(want.subject.as_str()),
                "{version}, SNI {name:?}: wrong certificate: {}",
                out.describe()
            );
            assert!(
                out.stdout.contains("Verify return code: 0 (ok)"),
                "{version}, SNI {name:?}: the chain does not verify: {}",
                out.describe()
            );
        }
    }

    // curl checks the name against the certificate: the wildcard and the EC key work for it.
    for (name, ver, max) in [
        ("www.example.test", "--tlsv1.3", "1.3"),
        ("img.example.test", "--tlsv1.2", "1.2"),
    ] {
        let (st, body) = curl_get(&f, addr, name, "/index.html", &[ver, "--tls-max", max]);
        assert_eq!(
            (st, body.as_slice()),
            (200, &b"sni\n"[..]),
            "curl {name} {ver}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. ALPN
// ---------------------------------------------------------------------------------------------

#[test]
fn alpn_offers_http11_and_refuses_h2_alone() {
    let Some(f) = Fixture::new("tls-alpn", &["openssl", "curl"]) else {
        return;
    };
    f.file("index.html", b"alpn\n");
    let a = f.a_cert("");
    let srv = start_tls(&f.www, &[&a], 2, &[]);
    let addr = srv.https_addr();
    let sn = ["-servername", "a.test"];

    for v in ["-tls1_3", "-tls1_2"] {
        let out = s_client(
            addr,
            &f.pki.ca,
            &[&sn[..], &[v, "-alpn", "http/1.1"]].concat(),
            b"",
        );
        assert!(
            out.stdout.contains("ALPN protocol: http/1.1"),
            "{v} -alpn http/1.1: {}",
            out.describe()
        );
        let out = s_client(
            addr,
            &f.pki.ca,
            &[&sn[..], &[v, "-alpn", "h2,http/1.1"]].concat(),
            b"",
        );
        assert!(
            out.stdout.contains("ALPN protocol: http/1.1"),
            "{v} -alpn h2,http/1.1: {}",
            out.describe()
        );
    }
    let out = s_client(addr, &f.pki.ca, &sn, b"");
    assert!(
        out.stdout.contains("No ALPN negotiated"),
        "no -alpn: {}",
        out.describe()
    );

    // Only h2 offered: rustls refuses with a fatal no_application_protocol alert (120), as
    // RFC 7301 says, rather than carrying on without ALPN.
    let out = s_client(addr, &f.pki.ca, &[&sn[..], &["-alpn", "h2"]].concat(), b"");
    assert!(
        !out.ok(),
        "-alpn h2 alone: the handshake succeeded: {}",
        out.describe()
    );
    assert!(
        out.both().contains("no application protocol") && out.both().contains("alert number 120"),
        "-alpn h2 alone: expected alert 120 (no_application_protocol): {}",
        out.describe()
    );
    assert!(
        !out.stdout.contains("ALPN protocol: h2"),
        "{}",
        out.describe()
    );

    // curl offering h2 and http/1.1 gets HTTP/1.1.
    let url = https_url("a.test", addr, "/index.html");
    let out = curl(
        &f.pki.ca,
        "a.test",
        addr,
        &["--http2", "-w", "%{http_version}", "-o", "/dev/null", &url],
    );
    assert_ok(&out, "curl --http2");
    assert_eq!(out.stdout.trim(), "1.1", "{}", out.describe());

    // The server is still fine.
    let (st, body) = curl_get(&f, addr, "a.test", "/index.html", &[]);
    assert_eq!((st, body.as_slice()), (200, &b"alpn\n"[..]));
}

// ---------------------------------------------------------------------------------------------
// 4. Resumption across workers
// ---------------------------------------------------------------------------------------------

/// `ringstatic_connections_accepted_total` per worker (worker label -> count) from /metrics.
fn accepted_per_worker(status: SocketAddr) -> Vec<(String, u64)> {
    let r = get(status, "/metrics");
    assert_eq!(r.status, 200, "{}", r.describe());
    r.body_str()
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("ringstatic_connections_accepted_total{worker=\"")?;
            let (w, v) = rest.split_once("\"}")?;
            if w == "all" {
                return None;
            }
            Some((w.to_string(), v.trim().parse::<f64>().ok()? as u64))
        })
        .collect()
}

#[test]
fn resumption_with_a_ticket_from_another_connection_across_workers() {
    let Some(f) = Fixture::new("tls-resume", &["openssl"]) else {
        return;
    };
    f.file("index.html", b"resume\n");
    let a = f.a_cert("");
    let pf = f.d.join("rs.pid");
    let srv = start_tls(
        &f.www,
        &[&a],
        2,
        &["--status-listen", "127.0.0.1:0", "--pid-file", s(&pf)],
    );
    let first = srv.wait_workers(2, Duration::from_secs(10));
    let addr = srv.https_addr();
    let status = srv.status_addr();
    let req = close_req("a.test", "/index.html");
    let mut sessions = Vec::new();

    for (label, v, proto) in [
        ("TLS 1.3", "-tls1_3", "TLSv1.3"),
        ("TLS 1.2", "-tls1_2", "TLSv1.2"),
    ] {
        let sess = f.d.join(format!("sess{v}"));
        let out = s_client(
            addr,
            &f.pki.ca,
            &[
                v,
                "-servername",
                "a.test",
                "-ign_eof",
                "-sess_out",
                s(&sess),
            ],
            &req,
        );
        assert_ok(&out, label);
        assert!(
            out.stdout.contains(&format!("New, {proto}")) && out.stdout.contains("HTTP/1.1 200"),
            "{label}: first connection: {}",
            out.describe()
        );
        // Ten resumptions from that one ticket; then more (40 at most) until both workers have
        // accepted some of them (SO_REUSEPORT spreads connections by their ports).
        let before = accepted_per_worker(status);
        let mut made = 0u64;
        let spread = loop {
            let out = s_client(
                addr,
                &f.pki.ca,
                &[v, "-servername", "a.test", "-ign_eof", "-sess_in", s(&sess)],
                &req,
            );
            made += 1;
            assert!(
                out.stdout.contains(&format!("Reused, {proto}")),
                "{label}: resumption #{made} was not `Reused`: {}",
                out.describe()
            );
            assert!(
                out.stdout.contains("HTTP/1.1 200"),
                "{label}: {}",
                out.describe()
            );
            if made % 10 != 0 {
                continue;
            }
            // The counters are at most one tick old: wait until they include every connection.
            let deadline = Instant::now() + Duration::from_secs(5);
            let grew = loop {
                let now = accepted_per_worker(status);
                let grew: Vec<u64> = now
                    .iter()
                    .map(|(w, n)| {
                        n - before
                            .iter()
                            .find(|(bw, _)| bw == w)
                            .map(|x| x.1)
                            .unwrap_or(0)
                    })
                    .collect();
                if grew.iter().sum::<u64>() >= made || Instant::now() > deadline {
                    break grew;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            if grew.iter().filter(|&&g| g > 0).count() >= 2 || made >= 40 {
                break grew;
            }
        };
        eprintln!("{label}: {made} resumptions, accepted per worker {spread:?}");
        assert!(
            spread.iter().filter(|&&g| g > 0).count() >= 2,
            "{label}: {made} resumed connections all went to one worker ({spread:?}): the \
             cross-worker case was not exercised"
        );
        sessions.push((label, v, proto, sess));
    }

    // The master keeps its secret over a reload: the new workers resume the old tickets.
    let (code, err) = reload(&pf);
    assert_eq!(code, Some(0), "`-s reload` failed: {err}\n{}", srv.log());
    for p in &first {
        assert!(
            wait_gone(*p, Duration::from_secs(15)),
            "old worker {p} did not exit"
        );
    }
    for (label, v, proto, sess) in &sessions {
        for _ in 0..4 {
            let out = s_client(
                addr,
                &f.pki.ca,
                &[v, "-servername", "a.test", "-ign_eof", "-sess_in", s(sess)],
                &req,
            );
            assert!(
                out.stdout.contains(&format!("Reused, {proto}")),
                "{label}: a ticket from before the reload was not resumed after it: {}",
                out.describe()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Garbage instead of a ClientHello
// ---------------------------------------------------------------------------------------------

/// Sends `bytes` on a fresh connection and checks the server closes it (within 10 s) having
/// sent nothing but TLS alerts: never an HTTP response.
#[track_caller]
fn expect_refused(addr: SocketAddr, bytes: &[u8], what: &str) {
    let mut c = Conn::open(addr);
    // The server may close before reading everything: a failed write is fine.
    let _ = c.try_send(bytes);
    let end = c.read_until_close(Duration::from_secs(10));
    assert_ne!(
        end,
        End::Timeout,
        "{what}: the server did not close the connection"
    );
    assert!(
        !contains(&c.buf, b"HTTP/"),
        "{what}: an HTTP response on a TLS port: {}",
        describe_bytes(&c.buf)
    );
    if let Err(e) = only_alerts(&c.buf) {
        panic!("{what}: the server sent more than an alert: {e}");
    }
}

#[test]
fn garbage_instead_of_a_client_hello_gets_an_alert_at_most() {
    let Some(f) = Fixture::new("tls-garbage", &["openssl", "curl"]) else {
        return;
    };
    f.file("index.html", b"still here\n");
    let a = f.a_cert("");
    let srv = start_tls(&f.www, &[&a], 2, &[]);
    let addr = srv.https_addr();
    let workers = srv.wait_workers(2, Duration::from_secs(10));

    expect_refused(
        addr,
        b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n",
        "plain HTTP request",
    );
    expect_refused(addr, &pattern_bytes(4096, 5), "4 KiB of random bytes");
    // A handshake record header with nonsense inside.
    let mut rec = vec![0x16, 0x03, 0x01, 0x00, 0x40];
    rec.extend(pattern_bytes(64, 6));
    expect_refused(addr, &rec, "a handshake record of random bytes");
    // A record header announcing more than TLS allows (2^14 + 2048).
    expect_refused(
        addr,
        &[0x16, 0x03, 0x03, 0xff, 0xff, 0x01],
        "an oversized record header",
    );
    // An alert as the first record.
    expect_refused(
        addr,
        &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28],
        "an alert first",
    );
    // Records of every content type with random bodies, one per connection.
    for (i, ty) in [0x14u8, 0x15, 0x16, 0x17, 0x18, 0x00, 0xff]
        .iter()
        .enumerate()
    {
        let body = pattern_bytes(100 + 37 * i, 20 + i as u64);
        let mut rec = vec![*ty, 0x03, 0x03];
        rec.extend((body.len() as u16).to_be_bytes());
        rec.extend(&body);
        expect_refused(
            addr,
            &rec,
            &format!("a record of type {ty:#x} with random bytes"),
        );
    }

    // A real ClientHello, then garbage where the client's next flight belongs: the server
    // has answered (its flight is encrypted, so no alert check), and must close, not answer
    // in HTTP or hang.
    let hello = capture_client_hello(&["-servername", "a.test"]);
    for i in 0..10u64 {
        let mut c = Conn::open(addr);
        let mut bytes = hello.clone();
        bytes.extend(pattern_bytes(50 + 300 * i as usize, 30 + i));
        let _ = c.try_send(&bytes);
        let end = c.read_until_close(Duration::from_secs(10));
        assert_ne!(end, End::Timeout, "garbage after a ClientHello: not closed");
        assert!(
            !contains(&c.buf, b"HTTP/"),
            "garbage after a ClientHello: {}",
            describe_bytes(&c.buf)
        );
    }

    let (st, body) = curl_get(&f, addr, "a.test", "/index.html", &[]);
    assert_eq!(
        (st, body.as_slice()),
        (200, &b"still here\n"[..]),
        "after the garbage"
    );
    assert_eq!(
        srv.worker_pids(),
        workers,
        "a worker died or was replaced\n{}",
        srv.log()
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Handshakes that stall, clients that vanish mid-handshake
// ---------------------------------------------------------------------------------------------

/// Sets SO_LINGER 0, so closing `s` sends a reset.
fn reset_on_close(s: &TcpStream) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the fd is open (owned by `s`) and `l` is a valid linger for the call's duration.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt SO_LINGER");
}

#[test]
fn stalled_handshakes_time_out_and_vanished_clients_are_harmless() {
    let Some(f) = Fixture::new("tls-stall", &["openssl", "curl"]) else {
        return;
    };
    f.file("index.html", b"alive\n");
    let a = f.a_cert("");
    let srv = start_tls(&f.www, &[&a], 2, &["--header-timeout", "1"]);
    let addr = srv.https_addr();
    let workers = srv.wait_workers(2, Duration::from_secs(10));
    let hello = capture_client_hello(&["-servername", "a.test"]);

    // Nothing at all, and half a ClientHello: closed by the 1 s header timeout (the default,
    // 10 s, would outlast the 8 s allowed here), with an alert at most.
    let mut silent = Conn::open(addr);
    let mut half = Conn::open(addr);
    half.send(&hello[..hello.len() / 2]);
    for (c, what) in [
        (&mut silent, "a silent client"),
        (&mut half, "half a ClientHello"),
    ] {
        let end = c.read_until_close(Duration::from_secs(8));
        assert_ne!(
            end,
            End::Timeout,
            "{what}: not closed by --header-timeout 1\n{}",
            srv.log()
        );
        assert!(
            !contains(&c.buf, b"HTTP/"),
            "{what}: {}",
            describe_bytes(&c.buf)
        );
        if let Err(e) = only_alerts(&c.buf) {
            panic!("{what}: more than an alert: {e}");
        }
    }

    // A ClientHello trickling in a byte at a time: the timeout counts from the accept, so the
    // trickle does not keep the connection open.
    let mut trickle = Conn::open(addr);
    let mut w = trickle.stream.try_clone().unwrap();
    let part = hello.clone();
    let writer = std::thread::spawn(move || {
        for b in part.iter().take(60) {
            if w.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let end = trickle.read_until_close(Duration::from_secs(8));
    assert_ne!(
        end,
        End::Timeout,
        "a trickled ClientHello kept the connection open past --header-timeout 1\n{}",
        srv.log()
    );
    assert!(
        only_alerts(&trickle.buf).is_ok(),
        "{}",
        describe_bytes(&trickle.buf)
    );
    writer.join().unwrap();

    // Clients that vanish: after the whole ClientHello (FIN at once), after a part of it, and
    // after reading some of the server's answer (with a reset).
    for i in 0..30 {
        let mut st = connect(addr);
        match i % 3 {
            0 => {
                st.write_all(&hello).unwrap();
            }
            1 => {
                st.write_all(&hello[..hello.len() / 3]).unwrap();
            }
            _ => {
                st.write_all(&hello).unwrap();
                let mut buf = [0u8; 64];
                let _ = st.read(&mut buf);
                reset_on_close(&st);
            }
        }
        drop(st);
    }

    let (st, body) = curl_get(&f, addr, "a.test", "/index.html", &[]);
    assert_eq!(
        (st, body.as_slice()),
        (200, &b"alive\n"[..]),
        "after the vanished clients"
    );
    assert_eq!(
        srv.worker_pids(),
        workers,
        "a worker died or was replaced\n{}",
        srv.log()
    );
}

// ---------------------------------------------------------------------------------------------
// 7. close_notify
// ---------------------------------------------------------------------------------------------

#[test]
fn connection_close_ends_with_close_notify() {
    let Some(f) = Fixture::new("tls-close", &["openssl"]) else {
        return;
    };
    let body: String = (0..300).map(|i| format!("line {i:04}\n")).collect();
    f.file("index.html", b"bye\n");
    f.file("data.txt", body.as_bytes());
    let a = f.a_cert("");
    let srv = start_tls(&f.www, &[&a], 2, &[]);
    let addr = srv.https_addr();

    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "Connection: close",
            close_req("a.test", "/index.html"),
            "HTTP/1.1 200",
        ),
        (
            "a 404 with Connection: close",
            close_req("a.test", "/nope"),
            "HTTP/1.1 404",
        ),
        // A bad request (no Host) closes the connection too, after its response.
        ("a 400", b"GET / HTTP/1.1\r\n\r\n".to_vec(), "HTTP/1.1 400"),
    ];
    for v in ["-tls1_3", "-tls1_2"] {
        for (what, req, want) in &cases {
            let out = s_client(
                addr,
                &f.pki.ca,
                &[v, "-servername", "a.test", "-ign_eof"],
                req,
            );
            assert!(
                out.stdout.contains(want),
                "{v} {what}: no `{want}`: {}",
                out.describe()
            );
            assert!(
                !out.both().contains("unexpected eof"),
                "{v} {what}: the server closed without close_notify: {}",
                out.describe()
            );
            assert_ok(&out, &format!("{v} {what}"));
        }
    }
    // The body arrived whole before the close_notify (s_client -quiet prints only the data).
    let out = s_client(
        addr,
        &f.pki.ca,
        &["-servername", "a.test", "-ign_eof", "-quiet"],
        &close_req("a.test", "/data.txt"),
    );
    assert_ok(&out, "-quiet GET /data.txt");
    assert!(
        out.stdout.ends_with(&format!("\r\n\r\n{body}")),
        "the body did not arrive whole: {}",
        out.describe()
    );
}

/// Pipelined requests in small records (512-byte fragments, so requests straddle records and
/// records straddle requests): every response, in order, then close_notify.
#[test]
fn pipelined_requests_across_small_records() {
    let Some(f) = Fixture::new("tls-pipeline", &["openssl"]) else {
        return;
    };
    for n in ["a", "b", "c"] {
        f.file(&format!("{n}.txt"), format!("body of {n}\n").as_bytes());
    }
    let a = f.a_cert("");
    let srv = start_tls(&f.www, &[&a], 2, &[]);
    let addr = srv.https_addr();
    let pad = format!("X-Pad: {}", "p".repeat(1500));
    let mut input = Vec::new();
    for (n, last) in [("a", false), ("b", false), ("c", true)] {
        let close = if last { "Connection: close\r\n" } else { "" };
        input.extend(
            format!("GET /{n}.txt HTTP/1.1\r\nHost: a.test\r\n{pad}\r\n{close}\r\n").as_bytes(),
        );
    }
    for v in ["-tls1_3", "-tls1_2"] {
        let out = s_client(
            addr,
            &f.pki.ca,
            &[
                v,
                "-servername",
                "a.test",
                "-ign_eof",
                "-max_send_frag",
                "512",
            ],
            &input,
        );
        assert_ok(&out, v);
        let bodies: Vec<usize> = ["body of a\n", "body of b\n", "body of c\n"]
            .iter()
            .map(|b| out.stdout.find(b).unwrap_or(usize::MAX))
            .collect();
        assert!(
            bodies[0] < bodies[1] && bodies[1] < bodies[2] && bodies[2] != usize::MAX,
            "{v}: three responses in order: {}",
            out.describe()
        );
        assert_eq!(
            out.stdout.matches("HTTP/1.1 200 OK").count(),
            3,
            "{}",
            out.describe()
        );
        assert!(!out.both().contains("unexpected eof"), "{}", out.describe());
    }
}

/// TLS 1.3 key updates from the client (`k`: the server must update too; `K`: it need not), with
/// requests on the same connection after each: the server follows the new keys both ways. A TLS
/// 1.2 client asking to renegotiate gets rustls's no_renegotiation alert, and nothing breaks.
#[test]
fn tls13_key_updates_and_tls12_renegotiation_mid_connection() {
    let Some(f) = Fixture::new("tls-keyupdate", &["openssl"]) else {
        return;
    };
    f.file("a.txt", b"after the key update\n");
    let a = f.a_cert("");
    let srv = start_tls(&f.www, &[&a], 1, &[]);
    let addr = srv.https_addr();
    let keep = b"GET /a.txt HTTP/1.1\r\nHost: a.test\r\n\r\n";
    let close = close_req("a.test", "/a.txt");
    // s_client reads its command letters only when a read of its input holds the line alone
    // (and not with -ign_eof): so one stage at a time, input held open until the server closes.
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string(), "-CAfile"])
        .arg(&f.pki.ca)
        .args(["-servername", "a.test", "-tls1_3"]);
    let stages: [&[u8]; 5] = [b"k\n", keep, b"K\n", keep, &close];
    let out = run_staged(
        &mut cmd,
        &stages,
        Duration::from_millis(300),
        true,
        CLIENT_LIMIT,
    );
    assert_ok(&out, "s_client with key updates");
    assert_eq!(
        out.both().matches("KEYUPDATE").count(),
        2,
        "s_client did not send two key updates: {}",
        out.describe()
    );
    assert_eq!(
        out.stdout.matches("HTTP/1.1 200 OK").count(),
        3,
        "three requests after the key updates: {}",
        out.describe()
    );
    assert!(
        !out.both().contains("unexpected eof") && !out.stderr.contains(":error:"),
        "{}",
        out.describe()
    );

    // Renegotiation (`R`) in TLS 1.2: refused; the server carries on.
    let workers = srv.wait_workers(1, Duration::from_secs(10));
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string(), "-CAfile"])
        .arg(&f.pki.ca)
        .args(["-servername", "a.test", "-tls1_2"]);
    let stages: [&[u8]; 2] = [b"R\n", &close];
    let out = run_staged(
        &mut cmd,
        &stages,
        Duration::from_millis(300),
        true,
        CLIENT_LIMIT,
    );
    assert!(
        out.both().contains("RENEGOTIATING") && out.both().contains("no renegotiation"),
        "TLS 1.2 renegotiation was not refused with no_renegotiation: {}",
        out.describe()
    );
    let out = s_client(
        addr,
        &f.pki.ca,
        &["-servername", "a.test", "-ign_eof"],
        &close,
    );
    assert!(
        out.stdout.contains("HTTP/1.1 200"),
        "after the renegotiation: {}",
        out.describe()
    );
    assert_eq!(srv.worker_pids(), workers, "the worker died\n{}", srv.log());
}

// ---------------------------------------------------------------------------------------------
// 8. A 100 MiB file, ranges, a slow reader
// ---------------------------------------------------------------------------------------------

#[test]
fn large_file_and_ranges_byte_exact_and_a_slow_reader() {
    let Some(f) = Fixture::new("tls-large", &["openssl", "curl"]) else {
        return;
    };
    let _g = heavy();
    const BIG: usize = 100 << 20;
    let big = pattern_bytes(BIG, 8);
    f.file("big.bin", &big);
    let mid = pattern_bytes(12 << 20, 9);
    f.file("mid.bin", &mid);
    let a = f.a_cert("");
    let srv = start_tls(&f.www, &[&a], 2, &[]);
    let addr = srv.https_addr();

    // The whole 100 MiB, once.
    let (st, got) = curl_get(&f, addr, "a.test", "/big.bin", &[]);
    assert_eq!(st, 200);
    assert_bytes_eq(&got, &big, "100 MiB over TLS");
    drop(got);

    // Single ranges: inside, a suffix, an open end.
    let len = BIG as u64;
    for (spec, from, to) in [
        ("1000-2000".to_string(), 1000u64, 2000u64),
        ("-500".to_string(), len - 500, len - 1),
        (format!("{}-", len - 70_000), len - 70_000, len - 1),
    ] {
        let url = https_url("a.test", addr, "/big.bin");
        let out_file = f.d.join("range.out");
        let out = curl(
            &f.pki.ca,
            "a.test",
            addr,
            &["-r", &spec, "-D", "-", "-o", s(&out_file), &url],
        );
        assert_ok(&out, &format!("range {spec}"));
        assert!(
            out.stdout.starts_with("HTTP/1.1 206"),
            "range {spec}: {}",
            out.stdout
        );
        let h = dumped_headers(&out.stdout);
        assert_eq!(
            header(&h, "content-range"),
            Some(format!("bytes {from}-{to}/{len}").as_str()),
            "range {spec}"
        );
        assert_bytes_eq(
            &std::fs::read(&out_file).unwrap(),
            &big[from as usize..=to as usize],
            &format!("range {spec}"),
        );
    }

    // Two ranges: multipart/byteranges with both parts byte-exact.
    let url = https_url("a.test", addr, "/big.bin");
    let out_file = f.d.join("multi.out");
    let last = len - 100;
    let spec = format!("0-99,{last}-");
    let out = curl(
        &f.pki.ca,
        "a.test",
        addr,
        &["-r", &spec, "-D", "-", "-o", s(&out_file), &url],
    );
    assert_ok(&out, "multi-range");
    assert!(
        out.stdout.starts_with("HTTP/1.1 206"),
        "multi-range: {}",
        out.stdout
    );
    let h = dumped_headers(&out.stdout);
    let ct = header(&h, "content-type").unwrap_or("");
    let boundary = ct
        .split("boundary=")
        .nth(1)
        .unwrap_or_else(|| panic!("multi-range: Content-Type {ct:?}"))
        .trim_matches('"')
        .to_string();
    let body = std::fs::read(&out_file).unwrap();
    let parts = multipart_parts(&body, &boundary);
    assert_eq!(
        parts.len(),
        2,
        "multi-range parts: {}",
        describe_bytes(&body)
    );
    assert_eq!(parts[0].0, format!("bytes 0-99/{len}"));
    assert_bytes_eq(&parts[0].1, &big[..100], "part 1");
    assert_eq!(parts[1].0, format!("bytes {last}-{}/{len}", len - 1));
    assert_bytes_eq(&parts[1].1, &big[last as usize..], "part 2");
    drop(big);

    // A slow reader of a file larger than the socket buffers: the server waits for it.
    let (st, got) = curl_get(&f, addr, "a.test", "/mid.bin", &["--limit-rate", "10M"]);
    assert_eq!(st, 200);
    assert_bytes_eq(&got, &mid, "12 MiB to a slow reader");
}

/// Python's `ssl` with a small receive buffer: asks for a large file, reads nothing for 4 s, then
/// reads what is left; prints the body bytes received and how the connection ended.
const STOPS_READING: &str = r#"
import socket, ssl, sys, time
port, ca = int(sys.argv[1]), sys.argv[2]
raw = socket.socket()
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
raw.settimeout(20)
raw.connect(("127.0.0.1", port))
t = ssl.create_default_context(cafile=ca).wrap_socket(raw, server_hostname="a.test")
t.sendall(b"GET /big.bin HTTP/1.1\r\nHost: a.test\r\n\r\n")
time.sleep(4)
got, end = 0, "eof"
try:
    while True:
        d = t.recv(1 << 20)
        if not d:
            break
        got += len(d)
except socket.timeout:
    end = "timeout"
except (ssl.SSLError, OSError) as e:
    end = "error %r" % e
print("received %d %s" % (got, end))
"#;

/// A TLS client that stops reading mid-body is closed by `--send-timeout`; a download in
/// progress when the master gets SIGQUIT (graceful stop) completes byte-exact.
#[test]
fn send_timeout_and_graceful_stop_mid_body() {
    let Some(f) = Fixture::new("tls-midbody", &["openssl", "curl", "python3"]) else {
        return;
    };
    let _g = heavy();
    let big = pattern_bytes(32 << 20, 13);
    f.file("big.bin", &big);
    let a = f.a_cert("");
    let mut srv = start_tls(&f.www, &[&a], 2, &["--send-timeout", "1"]);
    let addr = srv.https_addr();
    let workers = srv.wait_workers(2, Duration::from_secs(10));

    let out = run(
        Command::new("python3").args(["-c", STOPS_READING, &addr.port().to_string(), s(&f.pki.ca)]),
        CLIENT_LIMIT,
    );
    assert_ok(&out, "a client that stops reading");
    eprintln!("a client that stops reading: {}", out.stdout.trim());
    let (got, end) = out
        .stdout
        .trim()
        .strip_prefix("received ")
        .and_then(|r| r.split_once(' '))
        .unwrap_or_else(|| panic!("{}", out.describe()));
    let got: usize = got.parse().unwrap();
    assert!(
        got < big.len() && end != "timeout",
        "the server did not close a client that stopped reading ({got} of {} bytes, {end})",
        big.len()
    );
    assert_eq!(srv.worker_pids(), workers, "a worker died\n{}", srv.log());

    // A slow download (2 MB/s), then SIGQUIT once it is under way.
    let out_file = f.d.join("big.out");
    let resolve = format!("a.test:{}:127.0.0.1", addr.port());
    let mut download = Command::new("curl")
        .args(["-sS", "--max-time", "60", "--limit-rate", "2M", "--cacert"])
        .arg(&f.pki.ca)
        .args(["--resolve", &resolve, "-r", "0-4194303", "-o"])
        .arg(&out_file)
        .arg(https_url("a.test", addr, "/big.bin"))
        .spawn()
        .expect("run curl");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(&out_file).map_or(0, |m| m.len()) < 256 * 1024
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    srv.signal(libc::SIGQUIT);
    let (status, killed) = wait_bounded(&mut download, Duration::from_secs(60));
    assert!(
        !killed && status.is_some_and(|st| st.success()),
        "the download across SIGQUIT failed: {status:?}\n{}",
        srv.log()
    );
    assert_bytes_eq(
        &std::fs::read(&out_file).unwrap(),
        &big[..4 << 20],
        "4 MiB across a graceful stop",
    );
    let st = srv
        .wait_exit(Duration::from_secs(15))
        .expect("the master did not exit after SIGQUIT");
    assert_eq!(st.code(), Some(0), "{}", srv.log());
}

/// The parts of a multipart/byteranges body: (Content-Range, bytes).
fn multipart_parts(body: &[u8], boundary: &str) -> Vec<(String, Vec<u8>)> {
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(i) = find(rest, delim.as_bytes()) {
        rest = &rest[i + delim.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let Some(h_end) = find(rest, b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&rest[..h_end]).to_string();
        let range = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-range")
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_default();
        rest = &rest[h_end + 4..];
        let end = find(rest, format!("\r\n{delim}").as_bytes()).unwrap_or(rest.len());
        parts.push((range, rest[..end].to_vec()));
        rest = &rest[end..];
    }
    parts
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// 9. Reload with a new certificate under load
// ---------------------------------------------------------------------------------------------

/// `ringstatic -s reload --pid-file PF`: (exit code, stderr).
fn reload(pf: &Path) -> (Option<i32>, String) {
    let (st, _, err) = run_binary(
        &["-s", "reload", "--pid-file", s(pf)],
        Duration::from_secs(30),
    );
    (st.code(), err)
}

/// The subject a fresh connection to `addr` is shown for the name a.test.
fn subject_now(addr: SocketAddr, ca: &Path) -> String {
    let out = s_client(addr, ca, &["-servername", "a.test"], b"");
    s_client_subject(&out).unwrap_or_else(|| panic!("no certificate subject: {}", out.describe()))
}

/// The number a file holds (the load's progress), 0 while it does not exist.
fn read_count(p: &Path) -> u64 {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn reload_with_a_new_certificate_under_load_drops_nothing() {
    let Some(f) = Fixture::new("tls-reload", &["openssl", "python3", "curl"]) else {
        return;
    };
    let _g = heavy();
    f.file("small.txt", &pattern_bytes(117, 10));
    f.file("big.bin", &pattern_bytes(256 * 1024, 11));
    let slow = pattern_bytes(4 << 20, 12);
    f.file("slow.bin", &slow);
    let pf = f.d.join("rs.pid");
    let gen1 = f.pki.leaf(
        "site",
        "gen1",
        "a.test",
        &["a.test"],
        KeyKind::EcP256,
        Validity::Days(30),
    );
    let srv = start_tls(&f.www, &[&gen1], 2, &["--pid-file", s(&pf)]);
    let addr = srv.https_addr();
    let first = srv.wait_workers(2, Duration::from_secs(10));
    assert_eq!(subject_now(addr, &f.pki.ca), gen1.subject);

    let (stop, mark, progress) = (f.d.join("stop"), f.d.join("mark"), f.d.join("progress"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/tls_load.py");
    let mut load = Command::new("python3");
    load.args([
        script,
        &addr.port().to_string(),
        "a.test",
        s(&f.pki.ca),
        "6",
        s(&stop),
        s(&mark),
        s(&progress),
    ])
    .arg(format!("/small.txt={}", s(&f.www.join("small.txt"))))
    .arg(format!("/big.bin={}", s(&f.www.join("big.bin"))));
    let loader = std::thread::spawn(move || run(&mut load, Duration::from_secs(120)));
    let wait_progress = |n: u64| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while read_count(&progress) < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        read_count(&progress)
    };
    let at_start = wait_progress(200);
    assert!(
        at_start >= 200,
        "the load did not get going: {at_start} responses\n{}",
        srv.log()
    );

    // A download in flight across the reload (4 MiB at 2 MB/s): the old worker finishes it.
    let slow_out = f.d.join("slow.out");
    let resolve = format!("a.test:{}:127.0.0.1", addr.port());
    let mut download = Command::new("curl")
        .args(["-sS", "--max-time", "60", "--limit-rate", "2M", "--cacert"])
        .arg(&f.pki.ca)
        .args(["--resolve", &resolve, "-o"])
        .arg(&slow_out)
        .arg(https_url("a.test", addr, "/slow.bin"))
        .spawn()
        .expect("run curl");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(&slow_out).map_or(0, |m| m.len()) < 256 * 1024
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }

    // A new certificate (new serial, O=gen2) in the same files, then the reload.
    let gen2 = f.pki.leaf(
        "site",
        "gen2",
        "a.test",
        &["a.test"],
        KeyKind::EcP256,
        Validity::Days(30),
    );
    let (code, err) = reload(&pf);
    std::fs::write(&mark, b"").unwrap();
    assert_eq!(code, Some(0), "`-s reload` failed: {err}\n{}", srv.log());
    let at_reload = read_count(&progress);
    let after = wait_progress(at_reload + 300);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&stop, b"").unwrap();
    let out = loader.join().unwrap();
    assert!(out.ok(), "the load script failed: {}", out.describe());
    eprintln!("tls reload load: {}", out.stdout.trim().replace('\n', "; "));

    let field = |k: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k} ")))
            .unwrap_or_else(|| panic!("no `{k}` in the load's report: {}", out.describe()))
            .to_string()
    };
    let num = |k: &str| field(k).trim().parse::<u64>().unwrap();
    assert_eq!(
        num("failures"),
        0,
        "requests failed across the reload: {}\n{}",
        out.stdout,
        srv.log()
    );
    assert!(
        after >= at_reload + 300,
        "the load stalled after the reload: {at_reload} then {after}\n{}",
        out.stdout
    );
    let serials = |k: &str| -> Vec<String> {
        field(k)
            .split(',')
            .filter(|x| !x.is_empty())
            .map(|x| x.split(':').next().unwrap().to_string())
            .collect()
    };
    assert!(
        serials("serials_before").contains(&gen1.serial),
        "no connection saw the first certificate: {}",
        out.stdout
    );
    assert_eq!(
        serials("serials_after"),
        vec![gen2.serial.clone()],
        "connections begun after the reload must all see the new certificate ({}): {}",
        gen2.serial,
        out.stdout
    );
    let (status, killed) = wait_bounded(&mut download, Duration::from_secs(60));
    assert!(
        !killed && status.is_some_and(|st| st.success()),
        "the download in flight across the reload failed: {status:?}"
    );
    assert_bytes_eq(
        &std::fs::read(&slow_out).unwrap(),
        &slow,
        "a download in flight across the reload",
    );
    // Fresh connections (to either worker) see the new certificate; the old workers are gone.
    for _ in 0..6 {
        assert_eq!(subject_now(addr, &f.pki.ca), gen2.subject);
    }
    for p in &first {
        assert!(
            wait_gone(*p, Duration::from_secs(15)),
            "old worker {p} did not exit"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 10. Broken certificates: refused by -t and by reload
// ---------------------------------------------------------------------------------------------

/// `ringstatic -t` with one TLS listener and these (cert, key) files: (exit code, output).
fn test_config(www: &Path, pairs: &[(&Path, &Path)]) -> (Option<i32>, String) {
    let (code, out, err) = test_config_split(www, pairs);
    (code, format!("{out}{err}"))
}

/// `test_config` with standard output and standard error apart.
fn test_config_split(www: &Path, pairs: &[(&Path, &Path)]) -> (Option<i32>, String, String) {
    let mut args: Vec<&str> = vec!["-t", "--listen", "127.0.0.1:0,tls"];
    for (c, k) in pairs {
        args.extend(["--tls-cert", s(c), "--tls-key", s(k)]);
    }
    args.push(s(www));
    let (st, out, err) = run_binary(&args, Duration::from_secs(30));
    (st.code(), out, err)
}

#[test]
fn broken_certificates_are_refused_by_test_config_and_by_reload() {
    let Some(f) = Fixture::new("tls-broken", &["openssl"]) else {
        return;
    };
    f.file("index.html", b"ok\n");
    let good = f.a_cert("");
    let other = f.pki.leaf(
        "other",
        "",
        "other.test",
        &["other.test"],
        KeyKind::EcP256,
        Validity::Days(30),
    );
    let expired = f.pki.leaf(
        "expired",
        "",
        "a.test",
        &["a.test"],
        KeyKind::EcP256,
        Validity::Expired,
    );
    let soon = f.pki.leaf(
        "soon",
        "",
        "a.test",
        &["a.test"],
        KeyKind::EcP256,
        Validity::Days(5),
    );
    let garbage = f.d.write(
        "garbage.pem",
        b"-----BEGIN CERTIFICATE-----\nthis is not base64 at all !!\n-----END CERTIFICATE-----\n",
    );
    let no_pem = f.d.write("nopem.pem", b"hello, I am not a certificate\n");
    let no_key = f.d.write(
        "nokey.key",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );

    let (code, out) = test_config(&f.www, &[(good.cert.as_path(), good.key.as_path())]);
    assert_eq!(code, Some(0), "-t with a good certificate: {out}");
    assert!(
        !out.contains("expires in"),
        "-t warned about a 30-day certificate: {out}"
    );

    let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_string();
    let (garbage, no_pem, no_key) = (garbage.as_path(), no_pem.as_path(), no_key.as_path());
    let (good_c, good_k) = (good.cert.as_path(), good.key.as_path());
    let (other_c, other_k) = (other.cert.as_path(), other.key.as_path());
    let (exp_c, exp_k) = (expired.cert.as_path(), expired.key.as_path());
    // (what, the (cert, key) pairs, the file names one of which the message must name)
    type Case<'a> = (&'a str, Vec<(&'a Path, &'a Path)>, Vec<String>);
    let refused: Vec<Case> = vec![
        ("garbage PEM", vec![(garbage, good_k)], vec![name(garbage)]),
        ("no PEM at all", vec![(no_pem, good_k)], vec![name(no_pem)]),
        (
            "a key file without a usable key",
            vec![(good_c, no_key)],
            vec![name(no_key)],
        ),
        (
            "a key that does not match",
            vec![(good_c, other_k)],
            vec![name(good_c), name(other_k)],
        ),
        (
            "an expired certificate",
            vec![(exp_c, exp_k)],
            vec![name(exp_c)],
        ),
        (
            "a good pair, then a broken one",
            vec![(good_c, good_k), (other_c, good_k)],
            vec![name(other_c), name(good_k)],
        ),
    ];
    for (what, pairs, names) in &refused {
        let (code, out) = test_config(&f.www, pairs);
        assert_eq!(code, Some(1), "-t with {what}: {out}");
        assert!(
            names.iter().any(|n| out.contains(n.as_str())),
            "-t with {what}: the message names none of {names:?}: {out}"
        );
        assert_eq!(
            out.trim().lines().count(),
            1,
            "-t with {what}: not one line: {out}"
        );
    }

    // Flags that do not make a TLS listener: one clear line each.
    let missing = f.d.join("missing.pem");
    let www = s(&f.www);
    let (gc, gk, oc) = (s(&good.cert), s(&good.key), s(&other.cert));
    for (what, args, needle) in [
        (
            "a missing certificate file",
            vec![
                "--listen",
                "127.0.0.1:0,tls",
                "--tls-cert",
                s(&missing),
                "--tls-key",
                gk,
            ],
            "missing.pem",
        ),
        (
            "a tls listener without a certificate",
            vec!["--listen", "127.0.0.1:0,tls"],
            "--tls-cert",
        ),
        (
            "two certificates and one key",
            vec![
                "--listen",
                "127.0.0.1:0,tls",
                "--tls-cert",
                gc,
                "--tls-cert",
                oc,
                "--tls-key",
                gk,
            ],
            "--tls-key",
        ),
    ] {
        let mut all = vec!["-t"];
        all.extend(args);
        all.push(www);
        let (st, out, err) = run_binary(&all, Duration::from_secs(30));
        assert_eq!(st.code(), Some(1), "-t with {what}: {out}{err}");
        assert!(
            err.contains(needle),
            "-t with {what}: the message does not name {needle}: {err}"
        );
        assert_eq!(
            err.trim().lines().count(),
            1,
            "-t with {what}: not one line: {err}"
        );
    }

    let (code, out, err) = test_config_split(&f.www, &[(soon.cert.as_path(), soon.key.as_path())]);
    assert_eq!(
        code,
        Some(0),
        "-t with a certificate valid 5 more days: {out}{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.contains("expires in") && l.contains("soon.pem")),
        "-t did not warn on stderr, naming the file, about expiry in 5 days: {out}{err}"
    );

    // Reload: the running server keeps its certificate when the new one is broken.
    let site_cert = f.d.join("site.pem");
    let site_key = f.d.join("site.key");
    std::fs::copy(&good.cert, &site_cert).unwrap();
    std::fs::copy(&good.key, &site_key).unwrap();
    let pf = f.d.join("rs.pid");
    let site = CertPair {
        cert: site_cert.clone(),
        key: site_key.clone(),
        ..good.clone()
    };
    let srv = start_tls(&f.www, &[&site], 2, &["--pid-file", s(&pf)]);
    let addr = srv.https_addr();
    let workers = srv.wait_workers(2, Duration::from_secs(10));
    assert_eq!(subject_now(addr, &f.pki.ca), good.subject);
    let broken: [(&str, &Path, &Path); 3] = [
        ("garbage PEM", garbage, good_k),
        ("a key that does not match", good_c, other_k),
        ("an expired certificate", exp_c, exp_k),
    ];
    for (what, cert, key) in broken {
        std::fs::copy(cert, &site_cert).unwrap();
        std::fs::copy(key, &site_key).unwrap();
        let (code, err) = reload(&pf);
        assert_eq!(code, Some(1), "reload with {what}: {err}\n{}", srv.log());
        assert!(err.contains("reload failed"), "reload with {what}: {err}");
        assert_eq!(
            srv.worker_pids(),
            workers,
            "reload with {what} replaced the workers"
        );
        for _ in 0..4 {
            assert_eq!(
                subject_now(addr, &f.pki.ca),
                good.subject,
                "after a reload with {what}"
            );
        }
    }
    assert!(
        srv.log().contains("reload failed") && srv.log().contains("site.pem"),
        "the master did not log the failed reloads naming the file:\n{}",
        srv.log()
    );

    // Fixed: the reload succeeds and the new certificate is served.
    let fixed = f.pki.leaf(
        "fixed",
        "fixed",
        "a.test",
        &["a.test"],
        KeyKind::EcP256,
        Validity::Days(30),
    );
    std::fs::copy(&fixed.cert, &site_cert).unwrap();
    std::fs::copy(&fixed.key, &site_key).unwrap();
    let (code, err) = reload(&pf);
    assert_eq!(
        code,
        Some(0),
        "reload with a good certificate: {err}\n{}",
        srv.log()
    );
    for _ in 0..4 {
        assert_eq!(
            subject_now(addr, &f.pki.ca),
            fixed.subject,
            "after the good reload"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 11. --redirect-https; 12. HSTS
// ---------------------------------------------------------------------------------------------

#[test]
fn redirect_https_sends_plain_requests_to_https_except_acme_challenges() {
    let Some(f) = Fixture::new("tls-redirect", &["openssl", "curl"]) else {
        return;
    };
    f.file("index.html", b"home\n");
    f.file("a/b", b"a-b\n");
    f.file(
        ".well-known/acme-challenge/tok",
        b"token-bytes.thumbprint\n",
    );
    let a = f.a_cert("");
    let tls_port = free_port();
    let tls_listen = format!("127.0.0.1:{tls_port},tls");
    let mut args: Vec<String> = vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--listen".into(),
        tls_listen,
        // A second TLS listener: the Location names the first one's port.
        "--listen".into(),
        "127.0.0.2:0,tls".into(),
        "--workers".into(),
        "2".into(),
        "--redirect-https".into(),
        "--tls-cert".into(),
        s(&a.cert).into(),
        "--tls-key".into(),
        s(&a.key).into(),
    ];
    args.push(s(&f.www).into());
    let srv = Server::spawn(&args, 3);
    let plain = srv.http_addr();
    let tls = srv.https_addr();
    assert_eq!(tls.port(), tls_port, "{}", srv.log());
    assert_eq!(srv.https.lock().unwrap().len(), 2, "{}", srv.log());

    // (Host header, target, the host the Location names)
    for (host, target, want_host) in [
        ("a.test", "/a/b?x=1", "a.test"),
        ("a.test:8080", "/a/b?x=1", "a.test"),
        ("a.test", "/", "a.test"),
        ("a.test", "/index.html", "a.test"),
        ("a.test", "/.well-known/other", "a.test"),
        ("a.test", "/.well-known/acme-challenge-not/tok", "a.test"),
        ("[::1]:80", "/q?a=1&b=%20", "[::1]"),
    ] {
        let want = format!("https://{want_host}:{tls_port}{target}");
        for method in ["GET", "HEAD"] {
            let req =
                format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            let r = request_close(plain, req.as_bytes());
            assert_eq!(
                r.status,
                308,
                "{method} {target} (Host {host}): {}",
                r.describe()
            );
            assert_eq!(
                r.header("location"),
                Some(want.as_str()),
                "{method} {target} (Host {host}): {}",
                r.describe()
            );
        }
    }

    // ACME challenges are served from the root on the plain listener.
    let r = request_close(
        plain,
        b"GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"token-bytes.thumbprint\n");
    let r = request_close(
        plain,
        b"GET /.well-known/acme-challenge/missing HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 404, "{}", r.describe());

    // The TLS listener serves; it does not redirect.
    let (st, body) = curl_get(&f, tls, "a.test", "/a/b", &[]);
    assert_eq!((st, body.as_slice()), (200, &b"a-b\n"[..]));
    // curl following the redirect from the plain port ends on the file over HTTPS.
    let plain_resolve = format!("a.test:{}:127.0.0.1", plain.port());
    let plain_url = format!("http://a.test:{}/a/b", plain.port());
    let out = curl(
        &f.pki.ca,
        "a.test",
        tls,
        &[
            "--resolve",
            &plain_resolve,
            "-L",
            "-w",
            "%{url_effective}",
            "-o",
            "/dev/null",
            &plain_url,
        ],
    );
    assert_ok(&out, "curl -L");
    assert_eq!(
        out.stdout.trim(),
        https_url("a.test", tls, "/a/b"),
        "{}",
        out.describe()
    );
}

/// With the TLS listener on 443, the Location names no port.
#[test]
fn redirect_https_to_port_443_names_no_port() {
    let Some(f) = Fixture::new("tls-redirect-443", &["openssl"]) else {
        return;
    };
    // 443 needs privileges, and may be in use: an address of its own on the loopback net.
    let tls_listen = "127.0.0.3:443";
    if let Err(e) = std::net::TcpListener::bind(tls_listen) {
        eprintln!(
            "skipped: redirect_https_to_port_443_names_no_port: cannot bind {tls_listen}: {e}"
        );
        return;
    }
    f.file("index.html", b"home\n");
    let a = f.a_cert("");
    let srv = Server::spawn(
        &[
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--listen".into(),
            format!("{tls_listen},tls"),
            "--workers".into(),
            "1".into(),
            "--redirect-https".into(),
            "--tls-cert".into(),
            s(&a.cert).into(),
            "--tls-key".into(),
            s(&a.key).into(),
            s(&f.www).into(),
        ],
        2,
    );
    let r = request_close(
        srv.http_addr(),
        b"GET /x?y=1 HTTP/1.1\r\nHost: a.test:80\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 308, "{}", r.describe());
    assert_eq!(
        r.header("location"),
        Some("https://a.test/x?y=1"),
        "{}",
        r.describe()
    );
}

#[test]
fn hsts_header_rule_appears_on_https_responses() {
    let Some(f) = Fixture::new("tls-hsts", &["openssl", "curl"]) else {
        return;
    };
    f.file("index.html", b"hsts\n");
    f.file("css/site.css", b"body{}\n");
    let a = f.a_cert("");
    let srv = start_tls(
        &f.www,
        &[&a],
        2,
        &[
            "--header",
            "/** Strict-Transport-Security: max-age=63072000",
        ],
    );
    let addr = srv.https_addr();
    for path in ["/", "/index.html", "/css/site.css"] {
        let url = https_url("a.test", addr, path);
        let out = curl(
            &f.pki.ca,
            "a.test",
            addr,
            &["-D", "-", "-o", "/dev/null", &url],
        );
        assert_ok(&out, path);
        let h = dumped_headers(&out.stdout);
        assert_eq!(
            header(&h, "strict-transport-security"),
            Some("max-age=63072000"),
            "{path}: {}",
            out.stdout
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 13. TLS behind a load balancer: `ADDR,tls,proxy-protocol`
// ---------------------------------------------------------------------------------------------

/// Python's `ssl` after a PROXY v1 header naming another client: prints the response.
const PROXY_THEN_TLS: &str = r#"
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"PROXY TCP4 192.0.2.9 127.0.0.1 5555 443\r\n")
t = ssl.create_default_context(cafile=ca).wrap_socket(s, server_hostname="a.test")
t.sendall(b"GET /index.html HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
data = b""
while True:
    d = t.recv(65536)
    if not d:
        break
    data += d
sys.stdout.write(data.decode("latin-1"))
"#;

#[test]
fn tls_composes_with_proxy_protocol() {
    let Some(f) = Fixture::new("tls-proxy", &["openssl", "curl", "python3"]) else {
        return;
    };
    f.file("index.html", b"behind a balancer\n");
    let a = f.a_cert("");
    let log = f.d.join("access.log");
    let srv = Server::spawn(
        &[
            "--listen".into(),
            "127.0.0.1:0,tls,proxy-protocol".into(),
            "--workers".into(),
            "1".into(),
            "--access-log".into(),
            s(&log).into(),
            "--tls-cert".into(),
            s(&a.cert).into(),
            "--tls-key".into(),
            s(&a.key).into(),
            s(&f.www).into(),
        ],
        1,
    );
    let addr = srv.https_addr();

    // The PROXY header first, then the handshake: the client's address is the header's.
    let out = run(
        Command::new("python3").args([
            "-c",
            PROXY_THEN_TLS,
            &addr.port().to_string(),
            s(&f.pki.ca),
        ]),
        CLIENT_LIMIT,
    );
    assert_ok(&out, "PROXY header, then TLS");
    assert!(
        out.stdout.starts_with("HTTP/1.1 200") && out.stdout.ends_with("behind a balancer\n"),
        "{}",
        out.describe()
    );
    // curl's own PROXY header (its real address).
    let url = https_url("a.test", addr, "/index.html");
    let out = curl(
        &f.pki.ca,
        "a.test",
        addr,
        &[
            "--haproxy-protocol",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &url,
        ],
    );
    assert_ok(&out, "curl --haproxy-protocol");
    assert_eq!(out.stdout.trim(), "200", "{}", out.describe());
    // Without the header, a ClientHello is not a PROXY header: refused, never served.
    let out = curl(&f.pki.ca, "a.test", addr, &["-o", "/dev/null", &url]);
    assert!(
        !out.ok(),
        "TLS without the PROXY header was served: {}",
        out.describe()
    );

    let deadline = Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= 2 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(lines.len(), 2, "access log: {lines:?}\n{}", srv.log());
    assert!(lines[0].starts_with("192.0.2.9 "), "access log: {lines:?}");
    assert!(lines[1].starts_with("127.0.0.1 "), "access log: {lines:?}");
}
