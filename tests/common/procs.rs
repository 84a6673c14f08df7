//! Processes: running the binary to completion (bounded), and finding, waiting for and killing
//! processes by pid through /proc (workers, re-parented masters after a binary upgrade).

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::data::contains;
use super::BIN;

/// Child PIDs of `pid`, from /proc/<pid>/task/*/children.
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
                    let state = std::fs::read_to_string(format!("/proc/{}/stat", p))
                        .ok()
                        .and_then(|st| {
                            st.rfind(')')
                                .map(|i| st[i + 1..].trim_start().chars().next().unwrap_or('?'))
                        });
                    if matches!(state, Some('Z') | Some('X') | None) {
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

/// Run the binary to completion (bounded), returning (status, stdout, stderr).
pub fn run_binary(args: &[&str], timeout: Duration) -> (ExitStatus, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringstatic");
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t2 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() >= deadline {
            for w in children_of(child.id() as i32) {
                unsafe {
                    libc::kill(w, libc::SIGKILL);
                }
            }
            let _ = child.kill();
            let _ = child.wait();
            let out = String::from_utf8_lossy(&t1.join().unwrap()).to_string();
            let err = String::from_utf8_lossy(&t2.join().unwrap()).to_string();
            panic!(
                "ringstatic {:?} did not exit within {:?}\nstdout:\n{}\nstderr:\n{}",
                args, timeout, out, err
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = String::from_utf8_lossy(&t1.join().unwrap()).to_string();
    let err = String::from_utf8_lossy(&t2.join().unwrap()).to_string();
    (status, out, err)
}

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
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
    let mut out = Vec::new();
    let me = std::process::id() as i32;
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let pid: i32 = match e.file_name().to_str().and_then(|s| s.parse().ok()) {
                Some(p) => p,
                None => continue,
            };
            if pid == me {
                continue;
            }
            if let Ok(cmd) = std::fs::read(format!("/proc/{}/cmdline", pid)) {
                if contains(&cmd, needle.as_bytes()) && !process_gone(pid) {
                    out.push(pid);
                }
            }
        }
    }
    out.sort();
    out
}

/// SIGKILLs every live process whose command line contains `needle` (cleanup after a failed
/// test, for processes that are not our children). Returns the pids signalled.
pub fn kill_processes_mentioning(needle: &str) -> Vec<i32> {
    let pids = pids_with_cmdline_containing(needle);
    for &p in &pids {
        unsafe {
            libc::kill(p, libc::SIGKILL);
        }
    }
    pids
}
