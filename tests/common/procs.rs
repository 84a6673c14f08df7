//! Processes: commands run to completion within a bound (the binary itself, systemd's tools), and
//! processes found, waited for and killed by pid through /proc (workers, masters re-parented
//! after a binary upgrade, a container's processes seen from the host).

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::data::contains;
use super::BIN;

// ---------------------------------------------------------------------------
// Bounded commands
// ---------------------------------------------------------------------------

/// What a command run by `run` did.
pub struct Out {
    /// None when it could not be started or was killed at its time limit.
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

fn reader<R: Read + Send + 'static>(r: Option<R>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// How `wait_at_most` ended.
pub enum Waited {
    Exited(ExitStatus),
    TimedOut,
    /// waitpid failed (the child was reaped elsewhere, say): nothing is known.
    Error,
}

/// Waits for `child` at most `limit`, polling every 10 ms; never kills it.
pub fn wait_at_most(child: &mut Child, limit: Duration) -> Waited {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Waited::Exited(st),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => return Waited::TimedOut,
            Err(_) => return Waited::Error,
        }
    }
}

/// Waits for `child` at most `limit`; past that (or if waiting fails), SIGKILLs its children
/// first (e.g. ringstatic's workers, which would otherwise hold its output pipes open), then
/// kills and reaps it. Returns (its status, whether it was killed).
pub fn wait_bounded(child: &mut Child, limit: Duration) -> (Option<ExitStatus>, bool) {
    if let Waited::Exited(st) = wait_at_most(child, limit) {
        return (Some(st), false);
    }
    for w in children_of(child.id() as i32) {
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        unsafe {
            libc::kill(w, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    (None, true)
}

/// Run the binary to completion (bounded), returning (status, stdout, stderr).
pub fn run_binary(args: &[&str], timeout: Duration) -> (ExitStatus, String, String) {
    let out = run(Command::new(BIN).args(args), timeout);
    match out.status {
        Some(status) => (status, out.stdout, out.stderr),
        None if out.timed_out => panic!(
            "ringstatic {:?} did not exit within {:?}\nstdout:\n{}\nstderr:\n{}",
            args, timeout, out.stdout, out.stderr
        ),
        None => panic!("spawn ringstatic: {}", out.stderr),
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

// ---------------------------------------------------------------------------
// Processes by pid
// ---------------------------------------------------------------------------

/// Every pid in /proc, sorted.
pub fn all_pids() -> Vec<i32> {
    let mut v: Vec<i32> = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort_unstable();
    v
}

/// Child PIDs of `pid`, from /proc/<pid>/task/*/children, zombies left out, sorted.
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let tasks = match std::fs::read_dir(format!("/proc/{}/task", pid)) {
        Ok(t) => t,
        Err(_) => return out,
    };
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            for p in s.split_whitespace() {
                if let Ok(p) = p.parse::<i32>() {
                    // Ignore zombies (already dead, not yet reaped).
                    if process_gone(p) {
                        continue;
                    }
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
            }
        }
    }
    out.sort();
    out
}

/// Whether `pid` is gone: no /proc entry, or a zombie nobody reaped yet.
pub fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid)) {
        Err(_) => true,
        Ok(st) => {
            let state = st
                .rfind(')')
                .and_then(|i| st[i + 1..].trim_start().chars().next());
            matches!(state, Some('Z') | Some('X') | None)
        }
    }
}

/// Whether `pid` runs: the opposite of `process_gone` (a zombie counts as gone).
pub fn alive(pid: i32) -> bool {
    !process_gone(pid)
}

/// Wait (bounded) until `pid` is gone; true if it went.
pub fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if process_gone(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Live processes whose command line contains `needle` (e.g. a test's unique temp root), so a
/// test can find every ringstatic process it started, re-parented ones included, and nothing
/// started by anybody else.
pub fn pids_with_cmdline_containing(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    all_pids()
        .into_iter()
        .filter(|&pid| {
            pid != me
                && std::fs::read(format!("/proc/{}/cmdline", pid))
                    .is_ok_and(|cmd| contains(&cmd, needle.as_bytes()))
                && !process_gone(pid)
        })
        .collect()
}

/// SIGKILLs every live process whose command line contains `needle` (cleanup after a failed
/// test, for processes that are not our children). Returns the pids signalled.
pub fn kill_processes_mentioning(needle: &str) -> Vec<i32> {
    let pids = pids_with_cmdline_containing(needle);
    for &p in &pids {
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        unsafe {
            libc::kill(p, libc::SIGKILL);
        }
    }
    pids
}
