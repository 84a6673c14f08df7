//! The server under test: starts the real binary on 127.0.0.1, waits for its `listening on`
//! lines (`http://` for plain listeners, `https://` for TLS ones, told apart), records its output
//! for failure messages, and always stops it (and its workers) on drop.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::procs::{children_of, wait_at_most, wait_bounded, Waited};
use super::BIN;

pub struct Server {
    child: Option<Child>,
    pub pid: i32,
    /// First address the server reported as listening (plain or TLS).
    pub addr: SocketAddr,
    /// Every `listening on http://...` or `listening on https://...` address seen so far.
    pub listening: Arc<Mutex<Vec<SocketAddr>>>,
    /// The addresses among `listening` that were reported as `https://` (TLS listeners).
    pub https: Arc<Mutex<Vec<SocketAddr>>>,
    /// Combined stdout/stderr of the server, for failure diagnostics.
    pub log: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
}

/// The address of a `listening on http://ADDR` or `listening on https://ADDR` line, and whether
/// it was `https` (a TLS listener).
fn parse_listening_line(line: &str) -> Option<(SocketAddr, bool)> {
    let idx = line.find("listening on http")?;
    let rest = &line[idx + "listening on http".len()..];
    let (rest, tls) = match rest.strip_prefix("s://") {
        Some(r) => (r, true),
        None => (rest.strip_prefix("://")?, false),
    };
    let rest = rest.trim().trim_end_matches('/');
    Some((rest.parse().ok()?, tls))
}

impl Server {
    /// Start `ringstatic --listen 127.0.0.1:0 --workers 2 [$RINGSTATIC_TEST_ARGS] [extra] ROOT`.
    /// RINGSTATIC_TEST_ARGS runs the same suite under another setting, e.g.
    /// `RINGSTATIC_TEST_ARGS='--large-body splice' cargo test` or `--inline-max 0`.
    pub fn start(root: &Path, extra: &[&str]) -> Server {
        let mut args: Vec<String> = vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--workers".into(),
            "2".into(),
        ];
        if let Ok(more) = std::env::var("RINGSTATIC_TEST_ARGS") {
            args.extend(more.split_whitespace().map(str::to_string));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(root.to_str().expect("utf-8 temp path").to_string());
        Server::spawn(&args, 1)
    }

    /// Spawn the binary with exactly `args`; wait until `n_listening`
    /// distinct `listening on` lines were printed (10 s at most).
    pub fn spawn(args: &[String], n_listening: usize) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        Server::spawn_command(cmd, &format!("{:?}", args), n_listening)
    }

    /// Like `spawn`, with extra environment variables set and others removed.
    pub fn spawn_env(
        args: &[String],
        env: &[(&str, &str)],
        env_remove: &[&str],
        n_listening: usize,
    ) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        for k in env_remove {
            cmd.env_remove(k);
        }
        Server::spawn_command(cmd, &format!("{:?} with env {:?}", args, env), n_listening)
    }

    /// Spawn an arbitrary prepared command (the binary itself, or a wrapper that execs it, such
    /// as systemd-socket-activate) with piped stdout/stderr; wait until `n_listening`
    /// `listening on` lines were printed (10 s at most). `args` only labels failure messages.
    pub fn spawn_command(mut cmd: Command, args: &str, n_listening: usize) -> Server {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ringstatic");
        let pid = child.id() as i32;
        let log = Arc::new(Mutex::new(String::new()));
        let stderr_buf = Arc::new(Mutex::new(String::new()));
        let listening = Arc::new(Mutex::new(Vec::new()));
        let https = Arc::new(Mutex::new(Vec::new()));

        {
            let log = log.clone();
            let listening = listening.clone();
            let https = https.clone();
            on_each_line(child.stdout.take().unwrap(), move |s| {
                if let Some((a, tls)) = parse_listening_line(&s) {
                    if tls {
                        https.lock().unwrap().push(a);
                    }
                    listening.lock().unwrap().push(a);
                }
                log.lock().unwrap().push_str(&format!("[stdout] {}", s));
            });
        }
        {
            let log = log.clone();
            let stderr_buf = stderr_buf.clone();
            on_each_line(child.stderr.take().unwrap(), move |s| {
                stderr_buf.lock().unwrap().push_str(&s);
                log.lock().unwrap().push_str(&format!("[stderr] {}", s));
            });
        }

        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if listening.lock().unwrap().len() >= n_listening {
                break;
            }
            if let Ok(Some(st)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "ringstatic {} exited ({}) before listening; output:\n{}",
                    args,
                    st,
                    log.lock().unwrap()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "ringstatic {} printed no `listening on http(s)://ADDR` line within 10 s; output:\n{}",
                    args,
                    log.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let addr = listening.lock().unwrap()[0];
        Server {
            child: Some(child),
            pid,
            addr,
            listening,
            https,
            log,
            stderr: stderr_buf,
        }
    }

    /// The first TLS listener's address (a `listening on https://` line); panics without one.
    pub fn https_addr(&self) -> SocketAddr {
        match self.https.lock().unwrap().first() {
            Some(a) => *a,
            None => panic!(
                "no `listening on https://ADDR` line; output:\n{}",
                self.log()
            ),
        }
    }

    /// The first plain listener's address (a `listening on http://` line); panics without one.
    pub fn http_addr(&self) -> SocketAddr {
        let https = self.https.lock().unwrap().clone();
        let plain = self
            .listening
            .lock()
            .unwrap()
            .iter()
            .copied()
            .find(|a| !https.contains(a));
        plain.unwrap_or_else(|| {
            panic!(
                "no `listening on http://ADDR` line; output:\n{}",
                self.log()
            )
        })
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The address of the status listener (`--status-listen`), from its `status on http://ADDR`
    /// line (waits up to 10 s for it).
    pub fn status_addr(&self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if let Some(a) = log.lines().find_map(|l| {
                let i = l.find("status on http://")?;
                l[i + "status on http://".len()..].trim().parse().ok()
            }) {
                return a;
            }
            if Instant::now() >= deadline {
                panic!("no `status on http://ADDR` line within 10 s; output:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn signal(&self, sig: i32) {
        if self.child.is_some() {
            // SAFETY: kill(2) touches no memory of ours; `pid` is our child, not yet reaped.
            unsafe {
                libc::kill(self.pid, sig);
            }
        }
    }

    /// Wait (bounded) for the master to exit; returns None on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        match wait_at_most(self.child.as_mut()?, timeout) {
            Waited::Exited(st) => {
                self.child = None;
                Some(st)
            }
            Waited::TimedOut | Waited::Error => None,
        }
    }

    /// PIDs of the master's child processes (the workers).
    pub fn worker_pids(&self) -> Vec<i32> {
        children_of(self.pid)
    }

    /// Wait (bounded) until the master has exactly `n` children.
    pub fn wait_workers(&self, n: usize, timeout: Duration) -> Vec<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            let w = self.worker_pids();
            if w.len() == n {
                return w;
            }
            if Instant::now() >= deadline {
                panic!(
                    "expected {} worker processes, have {:?}; server output:\n{}",
                    n,
                    w,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) touches no memory of ours; `pid` is our child, not yet reaped.
            unsafe {
                libc::kill(self.pid, libc::SIGTERM);
            }
            // Past 5 s, kill the whole family: workers first, then master.
            wait_bounded(&mut child, Duration::from_secs(5));
        }
        if std::thread::panicking() {
            eprintln!("---- ringstatic output ----\n{}---- end ----", self.log());
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; another process could take it in between,
/// which is improbable enough for tests).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// Reads `r` line by line on its own thread until it ends, handing each line (with its newline,
/// invalid UTF-8 replaced) to `f`.
fn on_each_line<R: Read + Send + 'static>(r: R, mut f: impl FnMut(String) + Send + 'static) {
    std::thread::spawn(move || {
        let mut r = BufReader::new(r);
        let mut line = Vec::new();
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => f(String::from_utf8_lossy(&line).to_string()),
            }
        }
    });
}
