//! `--ktls` on any kernel: the start line says what encrypts (`kernel TLS: on` where the
//! kernel takes the keys, the one-line reason where it does not, `off` when asked), and HTTPS
//! works whichever it is: a large body (sendfile with kTLS, sealed by rustls without) and a
//! small one arrive byte-exact over TLS 1.3 and 1.2, close_notify included. A bad value is
//! refused on the command line and in a config file. What only a kernel with TLS can show is
//! in tests/ktls_vm.rs.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A site and a certificate for `localhost` (openssl), or None (said loudly) without the tools.
fn site(tag: &str) -> Option<TempDir> {
    for tool in ["openssl", "curl"] {
        if !have(tool) {
            eprintln!("skipped: {tag}: {tool} is not installed");
            return None;
        }
    }
    let dir = TempDir::new(tag);
    let cert = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .current_dir(dir.path())
        .output()
        .expect("run openssl");
    assert!(
        cert.status.success(),
        "{}",
        String::from_utf8_lossy(&cert.stderr)
    );
    dir.write("root/big.bin", &pattern_bytes(1_300_000, 3));
    dir.write("root/small.txt", b"small\n");
    Some(dir)
}

/// A server with a plain listener (127.0.0.1) and a tls one (127.0.0.2); returns it and the
/// tls port.
fn start(dir: &TempDir, extra: &[&str]) -> (Server, u16) {
    let mut args: Vec<String> = ["--listen", "127.0.0.1:0", "--listen", "127.0.0.2:0,tls"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for f in ["cert.pem", "key.pem"] {
        args.push(
            if f == "cert.pem" {
                "--tls-cert"
            } else {
                "--tls-key"
            }
            .into(),
        );
        args.push(dir.join(f).to_str().unwrap().into());
    }
    args.extend(["--workers".to_string(), "1".to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(dir.join("root").to_str().unwrap().into());
    let srv = Server::spawn(&args, 1);
    let port = wait_line(&srv, "listening on https://")
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .expect("https port");
    (srv, port)
}

/// The first output line containing `what` (10 s at most).
fn wait_line(srv: &Server, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(l) = srv.log().lines().find(|l| l.contains(what)) {
            return l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no `{what}` line:\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Fetches over HTTPS with curl and checks the bodies, for TLS 1.3 and 1.2.
fn fetch_all(dir: &TempDir, port: u16) {
    let url = format!("https://localhost:{port}");
    for v in ["1.3", "1.2"] {
        for (path, file) in [
            ("/big.bin", "root/big.bin"),
            ("/small.txt", "root/small.txt"),
        ] {
            let out = Command::new("curl")
                .args(["-sS", "--max-time", "20", "--cacert"])
                .arg(dir.join("cert.pem"))
                .args(["--resolve", &format!("localhost:{port}:127.0.0.2")])
                .args([&format!("--tlsv{v}"), "--tls-max", v])
                .arg(format!("{url}{path}"))
                .output()
                .expect("run curl");
            assert!(
                out.status.success(),
                "curl {path} over TLS {v}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let want = std::fs::read(dir.join(file)).unwrap();
            assert_bytes_eq(&out.stdout, &want, &format!("{path} over TLS {v}"));
        }
    }
}

#[test]
fn start_line_says_what_encrypts_and_https_works() {
    let Some(dir) = site("ktls-auto") else { return };
    let (srv, port) = start(&dir, &[]);
    let line = wait_line(&srv, "kernel TLS:");
    match ringstatic::tls::ktls::probe() {
        Ok(_) => assert!(line.contains("kernel TLS: on"), "{line}"),
        Err(why) => {
            assert!(
                line.contains(&format!(
                    "kernel TLS: not available ({why}); encrypting in user space"
                )),
                "{line}"
            );
            eprintln!("this kernel has no kTLS: user space checked here, the kernel's path in tests/ktls_vm.rs");
        }
    }
    assert_eq!(srv.log().matches("kernel TLS:").count(), 1, "{}", srv.log());
    fetch_all(&dir, port);
}

#[test]
fn ktls_off_encrypts_in_user_space() {
    let Some(dir) = site("ktls-off") else { return };
    let (srv, port) = start(&dir, &["--ktls", "off"]);
    let line = wait_line(&srv, "kernel TLS:");
    assert!(
        line.contains("kernel TLS: off (--ktls off); encrypting in user space"),
        "{line}"
    );
    fetch_all(&dir, port);
}

#[test]
fn no_kernel_tls_line_without_a_tls_listener() {
    let dir = TempDir::new("ktls-plain");
    dir.write("index.html", b"hi\n");
    let srv = Server::start(dir.path(), &[]);
    wait_line(&srv, "sandbox:");
    assert!(!srv.log().contains("kernel TLS"), "{}", srv.log());
}

#[test]
fn a_bad_ktls_value_is_refused() {
    let d = TempDir::new("ktls-bad");
    let (st, out, err) = run_binary(
        &["--ktls", "maybe", d.path().to_str().unwrap()],
        Duration::from_secs(10),
    );
    assert_eq!(st.code(), Some(2), "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains("--ktls") && err.contains("maybe"),
        "stderr: {err}"
    );
    d.write("bad.conf", b"ktls maybe\n");
    let (st, _, err) = run_binary(
        &[
            "-t",
            "--config",
            d.join("bad.conf").to_str().unwrap(),
            d.path().to_str().unwrap(),
        ],
        Duration::from_secs(10),
    );
    assert_eq!(st.code(), Some(1), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "stderr: {err}");
    assert!(
        err.contains("ktls") && err.contains("maybe"),
        "stderr: {err}"
    );
    d.write("good.conf", b"ktls off\n");
    let (st, _, err) = run_binary(
        &[
            "-t",
            "--config",
            d.join("good.conf").to_str().unwrap(),
            d.path().to_str().unwrap(),
        ],
        Duration::from_secs(10),
    );
    assert_eq!(st.code(), Some(0), "stderr: {err}");
}
