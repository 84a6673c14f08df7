//! Harness for tests/systemd.rs: skips that say so, a throwaway root for `systemd-analyze`, a
//! real systemd booted in a `systemd-nspawn` container that is always torn down (Drop), and
//! checks that are all run and reported together.
//!
//! What is not systemd-specific (temporary directories, bounded commands, processes by pid, the
//! HTTP client) comes from tests/common, which tests/systemd.rs declares as well.
//!
//! Only std and libc. Every wait is bounded; every temporary thing is removed on drop, also when
//! a check panics.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::{
    alive, all_pids, children_of, is_root, mkdirs, run, try_get, wait_at_most, Out, Response,
    TempDir, Waited, BIN,
};

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

// ---------------------------------------------------------------------------
// Names, waits, files
// ---------------------------------------------------------------------------

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// `tag` made unique among concurrent test runs, and short: it names a container (a machine
/// name is a host name, at most 64 characters).
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
// Processes seen from the host
// ---------------------------------------------------------------------------

/// Which namespace of kind `ns` ("pid", "net", ...) `pid` is in, as /proc/PID/ns/NS names it.
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
    /// Host directories made writable in the container through an overlay whose upper layer
    /// is `<dir>/overlay/<path>` (changes stay there, the host's files are untouched): for
    /// `dpkg -i`, `/usr` and `/var` (its database).
    pub writable: Vec<&'static str>,
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
        dir.write_mode(
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
            writable: Vec::new(),
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
            .args(self.writable.iter().map(|p| {
                let upper = self.dir.mkdir(format!("overlay{p}"));
                format!("--overlay={p}:{}:{p}", upper.display())
            }))
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
        self.in_netns(move || try_get(addr, &path))?
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
        let st = match wait_at_most(&mut child, limit) {
            Waited::Exited(st) => Some(st),
            Waited::Error => None,
            Waited::TimedOut => {
                self.nspawn = Some(child);
                self.kill();
                return None;
            }
        };
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
            if let Waited::TimedOut = wait_at_most(&mut child, Duration::from_secs(5)) {
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
