//! ringstatic: a static-file HTTP/1.1 server for Linux.
//!
//! Module map, in the order a request meets them:
//!
//! - `config`   the command line and config file: typed, validated settings with documented defaults
//! - `control`  `-t` (check the configuration) and `-s reload|reopen|quit|stop`
//! - `master`   checks the setup, then a loop that turns signals and due times into actions
//!   - `master::supervise` the worker processes: start, reap (what an exit means), restart backoff
//!   - `master::reload`    SIGHUP: new workers first, old ones retire, or back to the old config
//!   - `master::upgrade`   SIGUSR2 binary upgrade: the old master's side and the new one's
//!   - `master::systemd`   what systemd is told: READY, RELOADING, STATUS, watchdog, fd store
//!   - `master::signals`   how the master sleeps: a signalfd, the upgrade pipe, the next due time
//!   - `master::setup`     process plumbing: file limit, CPUs, error log, a child's pre-exec
//! - `inherit`  listening sockets: bound, from systemd (activation, fd store), or from an old master
//! - `notify`   the systemd notify protocol (READY, RELOADING, STATUS, WATCHDOG, FDSTORE)
//! - `scoreboard` shared counters each worker publishes to the master (ready, heartbeat, load)
//! - `sigset`   the signal sets the master, the workers and `-s` block or wait for
//! - `pidfile`  the pid file, with nginx's `.oldbin` during a binary upgrade
//! - `worker`   one pinned thread: the io_uring event loop, accept, recv, send, timeouts, drain
//! - `ring`     io_uring plumbing: ring flags, feature probe, typed completion keys, buffer ring
//! - `conn`     one connection's state and output queue
//! - `http`     pure HTTP: request head parsing and limits, target decoding and normalisation,
//!   Range, conditional requests, dates, status texts and error pages
//! - `response` deciding the response for a parsed request and writing its chunks
//! - `files`    opening beneath the root, the per-worker open-file cache, body chunks and sendfile
//! - `mime`     Content-Type by file extension
//! - `accesslog` the combined-format access log, batched and written through the worker's ring
//!
//! Outside the server: `examples/floor.rs` is bench/'s floor, a bare io_uring loop built on
//! `ring` that measures the kernel's share of a request (`bench/run.sh --peers floor`).

pub mod accesslog;
pub mod config;
pub mod conn;
pub mod control;
pub mod files;
pub mod http;
pub mod inherit;
pub mod master;
pub mod mime;
pub mod notify;
pub mod pidfile;
pub mod response;
pub mod ring;
pub mod scoreboard;
pub mod session;
pub mod sigset;
pub mod worker;

/// Runs the master, a worker (hidden worker flag), or a control command. Returns the exit status.
pub fn main_entry() -> i32 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let loaded = match config::load(&args) {
        Ok(l) => l,
        Err(e) => {
            use clap::error::ErrorKind;
            let checking = args.iter().any(|a| a == "-t" || a == "--test-config");
            if checking && !matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                // `-t` answers "is this configuration valid?": no is exit 1, with one line.
                let msg = e.to_string();
                let line = msg
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("invalid configuration");
                eprintln!(
                    "ringstatic: configuration invalid: {}",
                    line.trim_start_matches("error: ")
                );
                return 1;
            }
            e.exit() // clap's message; exit 2 for usage errors, 0 for --help/--version
        }
    };
    if loaded.cli.worker.is_some() {
        return worker::run(&loaded.cli);
    }
    if loaded.cli.test_config {
        return control::test_config(&loaded);
    }
    if let Some(sig) = loaded.cli.signal {
        return control::send(&loaded, sig);
    }
    master::run(args, loaded)
}
