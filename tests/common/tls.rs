//! HTTPS from the client's side: a test certificate authority and its leaf certificates, made at
//! run time by the `openssl` command (no key is ever committed), and the real TLS clients a user
//! has (`curl`, `openssl s_client`, Python's `ssl` module), each run bounded in time.
//!
//! TLS records are also read raw here, so a test can tell "the server answered with an alert"
//! from "the server answered in plain HTTP" without a TLS library of its own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::procs::{run, wait_bounded, Out};

/// How long one client command (curl, s_client, openssl) may run before it is killed.
pub const CLIENT_LIMIT: Duration = Duration::from_secs(60);

/// Whether every tool in `tools` can be run; if not, prints `skipped: <test>: ...` loudly (the
/// test then returns and passes). `python3` counts only with its `ssl` module.
pub fn tools_or_skip(test: &str, tools: &[&str]) -> bool {
    for t in tools {
        let ok = match *t {
            "python3" => run(
                Command::new("python3").args(["-c", "import ssl"]),
                Duration::from_secs(20),
            )
            .ok(),
            "openssl" => run(
                Command::new("openssl").arg("version"),
                Duration::from_secs(20),
            )
            .ok(),
            other => run(
                Command::new(other).arg("--version"),
                Duration::from_secs(20),
            )
            .ok(),
        };
        if !ok {
            eprintln!("skipped: {test}: `{t}` cannot be run here (install it: .ci/run does)");
            return false;
        }
    }
    true
}

/// A leaf certificate's key type.
#[derive(Clone, Copy, Debug)]
pub enum KeyKind {
    Rsa2048,
    EcP256,
}

/// A leaf's validity period.
#[derive(Clone, Copy, Debug)]
pub enum Validity {
    /// From now for this many days.
    Days(u32),
    /// January 2020, long expired.
    Expired,
}

/// One certificate file (leaf first, then the CA: a full chain) and its key file.
#[derive(Clone, Debug)]
pub struct CertPair {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The subject as `openssl s_client` prints it after `subject=`, e.g. `O = gen1, CN = a.test`.
    pub subject: String,
    /// The serial number in upper-case hex, as Python's `getpeercert()` reports it.
    pub serial: String,
}

/// A certificate authority (EC P-256) in a directory, which signs leaves for the tests.
pub struct Pki {
    pub dir: PathBuf,
    /// The CA certificate, for `curl --cacert` and `s_client -CAfile`.
    pub ca: PathBuf,
    ca_key: PathBuf,
    next_serial: AtomicU64,
}

/// Runs `openssl ARGS` in `dir`; panics with its output if it fails.
fn openssl(dir: &Path, args: &[&str]) -> Out {
    let out = run(
        Command::new("openssl").args(args).current_dir(dir),
        CLIENT_LIMIT,
    );
    assert!(out.ok(), "openssl {:?} failed: {}", args, out.describe());
    out
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

impl Pki {
    /// Makes the CA in `dir` (created if needed).
    pub fn new(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).expect("mkdir pki");
        let ca = dir.join("ca.pem");
        let ca_key = dir.join("ca.key");
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                s(&ca_key),
                "-out",
                s(&ca),
                "-days",
                "30",
                "-subj",
                "/CN=ringstatic test CA",
            ],
        );
        Pki {
            dir: dir.to_path_buf(),
            ca,
            ca_key,
            next_serial: AtomicU64::new(0x5100),
        }
    }

    /// A leaf named `file` (`file.pem`, `file.key` in the PKI's directory) with subject
    /// `/O=org/CN=cn` (no `O` when `org` is empty), the DNS names `sans` as subjectAltName (none:
    /// no SAN extension at all), a key of `kind`, valid for `validity`. Written again if it exists.
    pub fn leaf(
        &self,
        file: &str,
        org: &str,
        cn: &str,
        sans: &[&str],
        kind: KeyKind,
        validity: Validity,
    ) -> CertPair {
        let key = self.dir.join(format!("{file}.key"));
        let csr = self.dir.join(format!("{file}.csr"));
        let ext = self.dir.join(format!("{file}.ext"));
        let leaf = self.dir.join(format!("{file}.leaf.pem"));
        let cert = self.dir.join(format!("{file}.pem"));
        let (subj, subject) = if org.is_empty() {
            (format!("/CN={cn}"), format!("CN = {cn}"))
        } else {
            (format!("/O={org}/CN={cn}"), format!("O = {org}, CN = {cn}"))
        };
        let newkey: &[&str] = match kind {
            KeyKind::Rsa2048 => &["-newkey", "rsa:2048"],
            KeyKind::EcP256 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        };
        let mut args = vec!["req", "-new"];
        args.extend_from_slice(newkey);
        args.extend_from_slice(&[
            "-nodes",
            "-keyout",
            s(&key),
            "-out",
            s(&csr),
            "-subj",
            &subj,
        ]);
        openssl(&self.dir, &args);
        // Always some extension, so the certificate is X.509 v3 (webpki refuses v1).
        let mut exts =
            String::from("basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n");
        if !sans.is_empty() {
            let names: Vec<String> = sans.iter().map(|n| format!("DNS:{n}")).collect();
            exts.push_str(&format!("subjectAltName={}\n", names.join(",")));
        }
        std::fs::write(&ext, &exts).expect("write extensions file");
        let serial = self.next_serial.fetch_add(1, Ordering::SeqCst);
        let serial_arg = format!("0x{serial:X}");
        match validity {
            Validity::Days(days) => {
                let days = days.to_string();
                openssl(
                    &self.dir,
                    &[
                        "x509",
                        "-req",
                        "-in",
                        s(&csr),
                        "-CA",
                        s(&self.ca),
                        "-CAkey",
                        s(&self.ca_key),
                        "-set_serial",
                        &serial_arg,
                        "-days",
                        &days,
                        "-extfile",
                        s(&ext),
                        "-out",
                        s(&leaf),
                    ],
                );
            }
            Validity::Expired => {
                // `openssl x509` (3.0) cannot set a start date in the past; `openssl ca` can.
                let db = self.dir.join(format!("{file}.db"));
                std::fs::create_dir_all(&db).expect("mkdir ca db");
                std::fs::write(db.join("index.txt"), b"").unwrap();
                std::fs::write(db.join("serial"), format!("{serial:X}\n")).unwrap();
                let conf = self.dir.join(format!("{file}.ca.cnf"));
                std::fs::write(
                    &conf,
                    format!(
                        "[ca]\ndefault_ca = tca\n[tca]\ndatabase = {db}/index.txt\nnew_certs_dir = {db}\n\
                         serial = {db}/serial\ndefault_md = sha256\npolicy = pol\nunique_subject = no\n\
                         [pol]\norganizationName = optional\ncommonName = supplied\n",
                        db = s(&db)
                    ),
                )
                .unwrap();
                openssl(
                    &self.dir,
                    &[
                        "ca",
                        "-batch",
                        "-config",
                        s(&conf),
                        "-cert",
                        s(&self.ca),
                        "-keyfile",
                        s(&self.ca_key),
                        "-in",
                        s(&csr),
                        "-out",
                        s(&leaf),
                        "-startdate",
                        "20200101000000Z",
                        "-enddate",
                        "20200201000000Z",
                        "-extfile",
                        s(&ext),
                        "-notext",
                    ],
                );
            }
        }
        // The full chain, leaf first.
        let mut chain = std::fs::read(&leaf).expect("read leaf");
        chain.extend_from_slice(&std::fs::read(&self.ca).expect("read ca"));
        std::fs::write(&cert, chain).expect("write chain");
        CertPair {
            cert,
            key,
            subject,
            serial: format!("{serial:X}"),
        }
    }
}

/// Runs `cmd` with `input` on its standard input (then closed), bounded by `limit`.
pub fn run_with_input(cmd: &mut Command, input: &[u8], limit: Duration) -> Out {
    run_staged(cmd, &[input], Duration::ZERO, false, limit)
}

/// Runs `cmd` writing `stages` to its standard input one after the other, `pause` apart (an
/// interactive client reads each as a line typed on its own). With `hold`, standard input stays
/// open until the command ends by itself (or is killed at `limit`); otherwise it is closed after
/// the last stage.
pub fn run_staged(
    cmd: &mut Command,
    stages: &[&[u8]],
    pause: Duration,
    hold: bool,
    limit: Duration,
) -> Out {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Out {
                status: None,
                stdout: String::new(),
                stderr: format!("cannot run {cmd:?}: {e}"),
                timed_out: false,
            }
        }
    };
    let mut stdin = child.stdin.take().unwrap();
    let stages: Vec<Vec<u8>> = stages.iter().map(|x| x.to_vec()).collect();
    let writer = std::thread::spawn(move || {
        for (i, st) in stages.iter().enumerate() {
            if i > 0 {
                std::thread::sleep(pause);
            }
            if stdin.write_all(st).and_then(|_| stdin.flush()).is_err() {
                break;
            }
        }
        // Kept open (returned) or closed (dropped) here.
        hold.then_some(stdin)
    });
    let read = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let so = read(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let se = read(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let (status, timed_out) = wait_bounded(&mut child, limit);
    drop(writer.join());
    Out {
        status,
        stdout: so.join().unwrap_or_default(),
        stderr: se.join().unwrap_or_default(),
        timed_out,
    }
}

/// `openssl s_client -connect ADDR -CAfile CA ARGS` with `input` on its standard input. With
/// `-ign_eof` among `args` it reads until the server closes; without, it ends after the
/// handshake once `input` is sent.
pub fn s_client(addr: SocketAddr, ca: &Path, args: &[&str], input: &[u8]) -> Out {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string(), "-CAfile", s(ca)])
        .args(args);
    run_with_input(&mut cmd, input, CLIENT_LIMIT)
}

/// The `subject=...` of the server's certificate in an `s_client` transcript.
pub fn s_client_subject(out: &Out) -> Option<String> {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("subject=").map(|s| s.trim().to_string()))
}

/// `curl -sS --max-time 60 --cacert CA --resolve NAME:PORT:127.0.0.1 ARGS`.
pub fn curl(ca: &Path, name: &str, addr: SocketAddr, args: &[&str]) -> Out {
    let resolve = format!("{name}:{}:{}", addr.port(), addr.ip());
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "60",
        "--cacert",
        s(ca),
        "--resolve",
        &resolve,
    ])
    .args(args);
    run(&mut cmd, CLIENT_LIMIT)
}

/// `https://NAME:PORT/PATH` for `addr`'s port.
pub fn https_url(name: &str, addr: SocketAddr, path: &str) -> String {
    format!("https://{name}:{}{path}", addr.port())
}

/// A real ClientHello, as `openssl s_client ARGS` sends it: s_client is pointed at a listener
/// of the test's own, which keeps the first bytes and never answers.
pub fn capture_client_hello(args: &[&str]) -> Vec<u8> {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a capture listener");
    let addr = l.local_addr().unwrap();
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run openssl s_client");
    l.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut conn = loop {
        match l.accept() {
            Ok((c, _)) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("s_client did not connect to the capture listener: {e}"),
        }
    };
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // The record header says how long the ClientHello record is.
    let mut hello = Vec::new();
    let mut buf = [0u8; 4096];
    while hello.len() < 5 || hello.len() < 5 + u16::from_be_bytes([hello[3], hello[4]]) as usize {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => hello.extend_from_slice(&buf[..n]),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        hello.len() > 5 && hello[0] == 0x16,
        "no ClientHello record captured from s_client: {:02x?}",
        &hello[..hello.len().min(16)]
    );
    hello
}

/// Whether `bytes` is nothing, or only whole TLS alert records (content type 21, two bytes of
/// body each): what a server may send to a client that failed its handshake. Returns a
/// description of the bytes otherwise.
pub fn only_alerts(bytes: &[u8]) -> Result<usize, String> {
    let mut i = 0;
    let mut alerts = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.len() < 5 || rest[0] != 21 || rest[1] != 3 {
            return Err(describe_bytes(bytes));
        }
        let len = u16::from_be_bytes([rest[3], rest[4]]) as usize;
        if len != 2 || rest.len() < 7 {
            return Err(describe_bytes(bytes));
        }
        alerts += 1;
        i += 7;
    }
    Ok(alerts)
}

/// The first bytes of `b` as text and hex, for failure messages.
pub fn describe_bytes(b: &[u8]) -> String {
    let n = b.len().min(64);
    format!(
        "{} bytes: {:?} / {:02x?}",
        b.len(),
        String::from_utf8_lossy(&b[..n]),
        &b[..n]
    )
}
