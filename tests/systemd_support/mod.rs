//! Harness for tests/systemd.rs: bounded commands, a throwaway root for `systemd-analyze`, and a
//! real systemd booted in a `systemd-nspawn` container that is always torn down (Drop).
//!
//! Only std and libc. Every wait is bounded; every temporary thing is removed on drop, also when
//! a check panics.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const BIN: &str = env!("CARGO_BIN_EXE_ringstatic");

/// The unit files under test.
pub fn systemd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd")
}

/// Prints a line that `cargo test` does not capture (it goes straight to fd 2), so that a
/// skipped check is visible in every log, not only with --nocapture.
pub fn say(line: &str) {
    let mut e = io::stderr().lock();
    let _ = writeln!(e, "{line}");
}

/// A skipped test: says so, loudly, and asserts nothing.
pub fn skip(test: &str, reason: &str) {
    say(&format!(
        "skipped: {test}: {reason} (this is NOT a pass: nothing was checked)"
    ));
}

pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    for dir in std::env::split_paths(&path).chain(["/usr/sbin".into(), "/usr/bin".into()]) {
        let p = dir.join(name);
        if let Ok(md) = fs::metadata(&p) {
            if md.is_file() && md.permissions().mode() & 0o111 != 0 {
                return Some(p);
            }
        }
    }
    None
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

// ---------------------------------------------------------------------------
// Temporary directories
// ---------------------------------------------------------------------------

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{tag}-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        nanos % 100_000
    )
}

/// A directory under the temp dir, removed (recursively) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("ringstatic-{}", unique(tag)));
        fs::create_dir_all(&path).expect("create temp dir");
        // Readable by the unprivileged service user when bound into a container.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join<P: AsRef<Path>>(&self, p: P) -> PathBuf {
        self.path.join(p)
    }

    /// Writes `content` to `rel` with `mode`, creating 0755 parent directories.
    pub fn write<P: AsRef<Path>>(&self, rel: P, content: &[u8], mode: u32) -> PathBuf {
        let p = self.path.join(rel);
        mkdirs(p.parent().unwrap());
        fs::write(&p, content).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }

    pub fn mkdir<P: AsRef<Path>>(&self, rel: P) -> PathBuf {
        let p = self.path.join(rel);
        mkdirs(&p);
        p
    }
}

/// create_dir_all, with every directory 0755 whatever the umask.
pub fn mkdirs(p: &Path) {
    fs::create_dir_all(p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    let _ = fs::set_permissions(p, fs::Permissions::from_mode(0o755));
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------
// Bounded commands
// ---------------------------------------------------------------------------

pub struct Out {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.status.map(|s| s.success()).unwrap_or(false)
    }

    pub fn both(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    pub fn describe(&self) -> String {
        format!(
            "status {:?}{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            if self.timed_out {
                " (TIMED OUT, killed)"
            } else {
                ""
            },
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// Runs `cmd` to completion or kills it after `limit`. Standard input is /dev/null; output is
/// read on threads so that a chatty command never blocks on a full pipe.
pub fn run(cmd: &mut Command, limit: Duration) -> Out {
    cmd.stdin(Stdio::null())
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
    let so = reader(child.stdout.take());
    let se = reader(child.stderr.take());
    let (status, timed_out) = wait_bounded(&mut child, limit);
    Out {
        status,
        stdout: so.join().unwrap_or_default(),
        stderr: se.join().unwrap_or_default(),
        timed_out,
    }
}

fn reader<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Waits for `child` at most `limit`; kills (SIGKILL) and reaps it past that.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> (Option<ExitStatus>, bool) {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return (Some(st), false),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return (None, true);
            }
        }
    }
}

/// Polls `f` every 50 ms until it returns Some, at most `limit`.
pub fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Copies a file and sets its mode.
pub fn install(from: &Path, to: &Path, mode: u32) {
    mkdirs(to.parent().unwrap());
    fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", from.display(), to.display()));
    fs::set_permissions(to, fs::Permissions::from_mode(mode)).expect("chmod");
}

// ---------------------------------------------------------------------------
// A root directory for `systemd-analyze --root=`
// ---------------------------------------------------------------------------

/// Builds a root where the units under test are installed as the README says: the binary at
/// /usr/local/bin/ringstatic (so that `verify` finds the Exec*= commands), the units in
/// /etc/systemd/system, and a copy of the host's /usr/lib/systemd/system (so that the units they
/// name, e.g. sysinit.target, resolve: `--root=` looks up nothing outside the root).
pub fn analyze_root(tmp: &TempDir) -> Result<PathBuf, String> {
    let root = tmp.mkdir("root");
    let host_units = Path::new("/usr/lib/systemd/system");
    if !host_units.is_dir() {
        return Err("no /usr/lib/systemd/system on this machine".into());
    }
    mkdirs(&root.join("usr/lib/systemd"));
    let out = run(
        Command::new("cp")
            .arg("-a")
            .arg(host_units)
            .arg(root.join("usr/lib/systemd/")),
        Duration::from_secs(60),
    );
    if !out.ok() {
        return Err(format!(
            "copying {} failed: {}",
            host_units.display(),
            out.describe()
        ));
    }
    install(
        Path::new(BIN),
        &root.join("usr/local/bin/ringstatic"),
        0o755,
    );
    for unit in ["ringstatic.service", "ringstatic.socket"] {
        install(
            &systemd_dir().join(unit),
            &root.join("etc/systemd/system").join(unit),
            0o644,
        );
    }
    Ok(root)
}

// ---------------------------------------------------------------------------
// HTTP/1.1 client
// ---------------------------------------------------------------------------

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One GET with `Connection: close`, every step bounded by 10 s. The body is read by
/// Content-Length (or to EOF without one).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<Response, String> {
    let t = Duration::from_secs(10);
    let mut s = TcpStream::connect_timeout(&addr, t).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(t)).unwrap();
    s.set_write_timeout(Some(t)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s
            .read(&mut chunk)
            .map_err(|e| format!("read from {addr}: {e}"))?;
        if n == 0 {
            return Err(format!(
                "{addr} closed before a complete response head: {:?}",
                String::from_utf8_lossy(&buf)
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line from {addr}: {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let mut body = buf[head_end + 4..].to_vec();
    let len = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    loop {
        if len.is_some_and(|l| body.len() >= l) {
            break;
        }
        let n = s
            .read(&mut chunk)
            .map_err(|e| format!("read body from {addr}: {e}"))?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    if let Some(l) = len {
        if body.len() != l {
            return Err(format!(
                "{addr}: body of {} bytes, Content-Length {l}",
                body.len()
            ));
        }
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

// ---------------------------------------------------------------------------
// Processes seen from the host
// ---------------------------------------------------------------------------

/// The parent pid of `pid` (from /proc/PID/stat; the comm field may hold spaces and parens).
pub fn ppid_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

pub fn all_pids() -> Vec<i32> {
    let mut v: Vec<i32> = fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort_unstable();
    v
}

pub fn children_of(pid: i32) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|&p| ppid_of(p) == Some(pid))
        .collect()
}

pub fn alive(pid: i32) -> bool {
    // A zombie still has a /proc entry; count it as gone.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rfind(')')
            .and_then(|i| s[i + 2..].chars().next())
            .is_some_and(|c| c != 'Z'),
        Err(_) => false,
    }
}

fn ns_of(pid: i32, ns: &str) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/ns/{ns}")).ok()
}

// ---------------------------------------------------------------------------
// A booted systemd in a container
// ---------------------------------------------------------------------------

/// What the container sees, prepared on the host before boot:
///  * `<dir>/etc` is bound read-write over /etc (so the test "installs" files by writing here,
///    then runs `systemctl daemon-reload`); it holds a machine-id, so this is not a first boot
///    and systemd does not run `preset-all` (which would start every service the host has
///    installed, e.g. a web server on port 80);
///  * `<dir>/bin` is bound read-only over /usr/local/bin (it holds the binary under test);
///  * `<dir>/www` is bound read-only at /srv/www.
///
/// The rest is `--volatile=yes`: a tmpfs root with the host's /usr read-only.
pub struct Container {
    pub name: String,
    pub dir: TempDir,
    nspawn: Option<Child>,
    /// Host pid of the container's systemd (its PID 1).
    pub pid1: i32,
}

/// Why the machine cannot run a container: reported as a skip.
pub struct CannotBoot(pub String);

impl Container {
    pub fn prepare(tag: &str) -> Result<Container, CannotBoot> {
        if !is_root() {
            return Err(CannotBoot("not root (systemd-nspawn needs root)".into()));
        }
        for tool in ["systemd-nspawn", "nsenter"] {
            if which(tool).is_none() {
                return Err(CannotBoot(format!(
                    "{tool} is not installed (Debian: systemd-container / util-linux)"
                )));
            }
        }
        if !Path::new("/usr/lib/systemd/systemd").exists() {
            return Err(CannotBoot("no /usr/lib/systemd/systemd to boot".into()));
        }
        if !Path::new("/sys/fs/cgroup").is_dir() {
            return Err(CannotBoot("no cgroup file system at /sys/fs/cgroup".into()));
        }
        let name = unique(&format!("rs{tag}")).replace('_', "-");
        let dir = TempDir::new(&format!("nspawn-{tag}"));
        dir.write(
            "etc/machine-id",
            format!("{:032x}\n", nanos_id()).as_bytes(),
            0o444,
        );
        dir.mkdir("etc/systemd/system");
        dir.mkdir("bin");
        dir.mkdir("www");
        Ok(Container {
            name,
            dir,
            nspawn: None,
            pid1: 0,
        })
    }

    /// Boots and waits (at most `limit`) until `systemctl is-system-running` says running or
    /// degraded. A failure here means the machine cannot boot a container: the caller skips.
    pub fn boot(&mut self, limit: Duration) -> Result<(), CannotBoot> {
        let log = fs::File::create(self.dir.join("nspawn.log")).expect("nspawn log");
        let mut cmd = Command::new("systemd-nspawn");
        cmd.arg("--directory=/")
            .arg("--volatile=yes")
            .arg("--private-network")
            .arg("--register=no")
            .arg("--keep-unit")
            .arg(format!("--machine={}", self.name))
            .arg("--console=passive")
            .arg(format!("--bind={}:/etc", self.dir.join("etc").display()))
            .arg(format!(
                "--bind-ro={}:/usr/local/bin",
                self.dir.join("bin").display()
            ))
            .arg(format!(
                "--bind-ro={}:/srv/www",
                self.dir.join("www").display()
            ))
            .arg("--boot")
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd
            .spawn()
            .map_err(|e| CannotBoot(format!("cannot run systemd-nspawn: {e}")))?;
        let nspawn_pid = child.id() as i32;
        self.nspawn = Some(child);
        let deadline = Instant::now() + limit;
        let mut last = String::new();
        loop {
            if let Some(Ok(Some(st))) = self.nspawn.as_mut().map(|c| c.try_wait()) {
                self.nspawn = None;
                return Err(CannotBoot(format!(
                    "systemd-nspawn exited ({st}) while booting:\n{}",
                    self.log_tail()
                )));
            }
            if self.pid1 == 0 {
                // The container's PID 1 is the only child of systemd-nspawn that runs systemd.
                if let Some(&p) = children_of(nspawn_pid).iter().find(|&&p| {
                    fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|e| e.ends_with("systemd"))
                        && ns_of(p, "pid") != ns_of(nspawn_pid, "pid")
                }) {
                    self.pid1 = p;
                }
            }
            if self.pid1 != 0 {
                let out =
                    self.exec_bounded(&["systemctl", "is-system-running"], Duration::from_secs(5));
                last = out.stdout.trim().to_string();
                if last == "running" || last == "degraded" {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(CannotBoot(format!(
                    "the container did not finish booting within {limit:?} (last state {last:?}):\n{}",
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_tail(&self) -> String {
        let s = fs::read_to_string(self.dir.join("nspawn.log")).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Runs `args` inside every namespace of the container (as its root), at most `limit`.
    pub fn exec_bounded(&self, args: &[&str], limit: Duration) -> Out {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.pid1.to_string())
            .arg("-a")
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C.UTF-8")
            .env("SYSTEMD_PAGER", "")
            .env("SYSTEMD_COLORS", "0");
        run(&mut cmd, limit)
    }

    /// Like exec_bounded with a 60 s bound.
    pub fn exec(&self, args: &[&str]) -> Out {
        self.exec_bounded(args, Duration::from_secs(60))
    }

    pub fn systemctl(&self, args: &[&str]) -> Out {
        let mut v = vec!["systemctl", "--no-pager", "--no-ask-password"];
        v.extend_from_slice(args);
        self.exec(&v)
    }

    /// `systemctl show -p A,B,... UNIT` as a map.
    pub fn show(&self, unit: &str, props: &[&str]) -> HashMap<String, String> {
        let out = self.systemctl(&["show", "-p", &props.join(","), unit]);
        let mut m: HashMap<String, String> = props
            .iter()
            .map(|p| (p.to_string(), String::new()))
            .collect();
        m.extend(out.stdout.lines().filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        }));
        m
    }

    pub fn journal(&self, units: &[&str]) -> String {
        let mut v = vec!["journalctl", "--no-pager", "-b", "-o", "short-monotonic"];
        for u in units {
            v.push("-u");
            v.push(u);
        }
        self.exec_bounded(&v, Duration::from_secs(20)).both()
    }

    /// The host pid of the container process whose pid inside the container is `cpid`.
    pub fn host_pid(&self, cpid: i32) -> Option<i32> {
        let ns = ns_of(self.pid1, "pid")?;
        all_pids().into_iter().find(|&p| {
            ns_of(p, "pid").as_ref() == Some(&ns)
                && fs::read_to_string(format!("/proc/{p}/status"))
                    .ok()
                    .is_some_and(|s| {
                        s.lines()
                            .find(|l| l.starts_with("NSpid:"))
                            .and_then(|l| l.split_whitespace().last())
                            .and_then(|v| v.parse::<i32>().ok())
                            == Some(cpid)
                    })
        })
    }

    /// Host pids of the container's processes whose executable's file name is `exe_name`.
    pub fn processes_named(&self, exe_name: &str) -> Vec<i32> {
        let Some(ns) = ns_of(self.pid1, "pid") else {
            return Vec::new();
        };
        all_pids()
            .into_iter()
            .filter(|&p| ns_of(p, "pid").as_ref() == Some(&ns) && alive(p))
            .filter(|&p| {
                fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|e| {
                    let s = e.to_string_lossy().into_owned();
                    let s = s.trim_end_matches(" (deleted)");
                    s.rsplit('/').next() == Some(exe_name)
                })
            })
            .collect()
    }

    /// Runs `f` on a thread that has joined the container's network namespace (a network
    /// namespace is per thread, so the rest of the test process is untouched).
    pub fn in_netns<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let path = format!("/proc/{}/ns/net", self.pid1);
        std::thread::spawn(move || {
            let ns = fs::File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
            // SAFETY: setns on a valid namespace fd; it only changes this thread's netns.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(format!("setns({path}): {}", io::Error::last_os_error()));
            }
            Ok(f())
        })
        .join()
        .map_err(|_| "the thread in the container's network namespace panicked".to_string())?
    }

    /// An HTTP GET to `addr` as seen from inside the container.
    pub fn get(&self, addr: &str, path: &str) -> Result<Response, String> {
        let addr: SocketAddr = addr.parse().unwrap();
        let path = path.to_string();
        self.in_netns(move || http_get(addr, &path))?
    }

    /// Whether something accepts TCP connections on `addr` inside the container.
    pub fn connects(&self, addr: &str) -> bool {
        let addr: SocketAddr = addr.parse().unwrap();
        self.in_netns(move || TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_ok())
            .unwrap_or(false)
    }

    /// Orderly power-off (bounded); returns systemd-nspawn's exit status if it exited in time.
    pub fn poweroff(&mut self, limit: Duration) -> Option<ExitStatus> {
        let mut child = self.nspawn.take()?;
        // SIGTERM to systemd-nspawn makes it ask the container's systemd to power off.
        // SAFETY: kill on our own (not yet reaped) child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let (st, timed_out) = wait_bounded_no_kill(&mut child, limit);
        if timed_out {
            self.nspawn = Some(child);
            self.kill();
            return None;
        }
        self.cleanup_propagate_dir();
        st
    }

    /// Kills the container outright: SIGKILL to its PID 1 takes down every process in its pid
    /// namespace; then systemd-nspawn is killed and reaped.
    pub fn kill(&mut self) {
        if self.pid1 != 0 && alive(self.pid1) {
            // SAFETY: kill with a pid we found as the container's init.
            unsafe { libc::kill(self.pid1, libc::SIGKILL) };
        }
        if let Some(mut child) = self.nspawn.take() {
            let (_, timed_out) = wait_bounded_no_kill(&mut child, Duration::from_secs(5));
            if timed_out {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.cleanup_propagate_dir();
    }

    fn cleanup_propagate_dir(&self) {
        let _ = fs::remove_dir(format!("/run/systemd/nspawn/propagate/{}", self.name));
    }
}

fn wait_bounded_no_kill(child: &mut Child, limit: Duration) -> (Option<ExitStatus>, bool) {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return (Some(st), false),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => return (None, true),
            Err(_) => return (None, false),
        }
    }
}

fn nanos_id() -> u128 {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    // Never all zeros; the exact value does not matter.
    (n ^ ((std::process::id() as u128) << 64)) | 1
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.nspawn.is_some()
            && self.poweroff(Duration::from_secs(20)).is_none()
            && self.nspawn.is_some()
        {
            self.kill();
        }
        // `dir` (a TempDir) is removed after this, once nothing has it mounted any more.
    }
}

// ---------------------------------------------------------------------------
// A list of named checks, all reported at the end
// ---------------------------------------------------------------------------

#[derive(Default)]
pub struct Checks {
    results: Vec<(String, Result<(), String>)>,
}

impl Checks {
    pub fn check(&mut self, name: &str, result: Result<(), String>) -> bool {
        let ok = result.is_ok();
        say(&format!(
            "  [{}] {name}{}",
            if ok { "ok" } else { "FAIL" },
            match &result {
                Err(e) => format!(": {e}"),
                Ok(()) => String::new(),
            }
        ));
        self.results.push((name.to_string(), result));
        ok
    }

    pub fn failed(&self) -> Vec<&str> {
        self.results
            .iter()
            .filter(|(_, r)| r.is_err())
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Panics listing every failed check (with `diagnostics` appended), or returns.
    pub fn finish(self, diagnostics: impl FnOnce() -> String) {
        let failed: Vec<String> = self
            .results
            .iter()
            .filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n}: {e}")))
            .collect();
        if !failed.is_empty() {
            panic!(
                "{} of {} checks failed:\n  {}\n\n{}",
                failed.len(),
                self.results.len(),
                failed.join("\n  "),
                diagnostics()
            );
        }
    }
}

/// `Err(msg)` unless `cond`.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}
