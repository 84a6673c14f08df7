//! Everything the master tells systemd: READY/RELOADING/STOPPING/STATUS, the watchdog pings and
//! the fd store. It is one place because it is switched as a whole: without $NOTIFY_SOCKET all of
//! it is a no-op, and a binary upgrade's hand-over (MAINPID= naming the new master) silences all
//! of it at once, so a retiring master never pings or reports for a service it no longer is.

use std::time::{Duration, Instant};

use super::supervise::Supervisor;
use crate::inherit::{self, Bound, Listeners};
use crate::notify::{self, Notifier};

/// How often STATUS= is refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(2);

pub struct Systemd {
    notifier: Option<Notifier>,
    /// The ping interval, when systemd's watchdog is on for this process.
    watchdog: Option<Duration>,
    last_ping: Instant,
    last_status: Instant,
}

impl Systemd {
    /// The notifier systemd asked for, if any, with its watchdog.
    pub fn from_env() -> Systemd {
        let notifier = Notifier::from_env();
        Systemd {
            watchdog: if notifier.is_some() {
                notify::watchdog_interval()
            } else {
                None
            },
            notifier,
            last_ping: Instant::now(),
            last_status: Instant::now(),
        }
    }

    pub fn send(&self, msg: &str) {
        if let Some(n) = &self.notifier {
            n.send(msg);
        }
    }

    /// READY=1: every worker of the first generation accepts.
    pub fn ready(&self, workers: usize) {
        self.send(&format!(
            "READY=1\nSTATUS={workers} workers accepting\nMAINPID={}",
            std::process::id()
        ));
    }

    /// RELOADING=1, stamped as systemd wants it.
    pub fn reloading(&self) {
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading",
            notify::monotonic_usec()
        ));
    }

    /// Names the new master as the service's main process, then falls silent: no STOPPING=1 (the
    /// service is not stopping) and no more pings.
    pub fn hand_over(&mut self, pid: i32) {
        self.send(&format!(
            "MAINPID={pid}\nSTATUS=upgraded; old master {} retiring",
            std::process::id()
        ));
        self.notifier = None;
        self.watchdog = None;
    }

    /// Gives systemd copies of our listening sockets, so `systemctl restart` keeps them (and the
    /// connections queued on them) across the restart; and takes back those of `retired`.
    pub fn store_fds(&self, listeners: &Listeners, retired: &[Bound]) {
        let Some(n) = &self.notifier else { return };
        for (name, fd) in listeners.named() {
            if name.starts_with(inherit::OWN_PREFIX) {
                if let Err(e) = n.send_with_fds(&format!("FDSTORE=1\nFDNAME={name}"), &[fd]) {
                    eprintln!("ringstatic: FDSTORE {name}: {e}");
                }
            }
        }
        for b in retired {
            for j in 0..b.sockets.len() {
                n.send(&format!(
                    "FDSTOREREMOVE=1\nFDNAME={}",
                    inherit::own_name(b.configured, j)
                ));
            }
        }
    }

    /// Pings WATCHDOG=1 every interval while every worker makes progress; kills a worker that
    /// made none for twice the interval (at least 2 s), and withholds the ping while one is hung.
    pub fn check_watchdog(&mut self, sup: &mut Supervisor) {
        let Some(interval) = self.watchdog else {
            return;
        };
        // A worker whose heartbeat (one per 250 ms tick) has not moved for this long is hung.
        let hung_after = (interval * 2).max(Duration::from_secs(2));
        let now = Instant::now();
        let healthy = sup.check_progress(now, hung_after);
        if healthy && now.duration_since(self.last_ping) >= interval {
            self.last_ping = now;
            self.send("WATCHDOG=1");
        }
    }

    /// Refreshes STATUS= with the workers' counters, every STATUS_EVERY.
    pub fn report_status(&mut self, sup: &Supervisor, stopping: bool) {
        if self.notifier.is_none() || self.last_status.elapsed() < STATUS_EVERY || stopping {
            return;
        }
        self.last_status = Instant::now();
        let (n, conns, reqs) = sup.totals();
        self.send(&format!(
            "STATUS={n} workers, {conns} connections, {reqs} requests served"
        ));
    }
}
