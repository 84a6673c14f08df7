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
/// The workers' timer tick, which advances their heartbeat: sampling faster tells nothing more.
const TICK: Duration = Duration::from_millis(250);

pub struct Systemd {
    notifier: Option<Notifier>,
    /// When systemd's watchdog is on for this process.
    watchdog: Option<Watchdog>,
    next_status: Instant,
}

/// WATCHDOG=1 pings, and the worker progress they vouch for.
///
/// Heartbeats live in the scoreboard, so progress can only be sampled: every eighth of
/// `hung_after`, which puts a hung worker's death between `hung_after` and 1.25 × `hung_after`
/// after its last tick (a sample late to see the last tick, one more to see the time run out)
/// without waking the master more than 8 times per `hung_after`.
struct Watchdog {
    interval: Duration,
    next_ping: Instant,
    next_sample: Instant,
    /// No worker was hung at the last sample. A ping is withheld until none is.
    healthy: bool,
}

impl Watchdog {
    fn new(interval: Duration, now: Instant) -> Watchdog {
        let mut w = Watchdog {
            interval,
            next_ping: now + interval,
            next_sample: now,
            healthy: true,
        };
        w.next_sample = now + w.sample_every();
        w
    }

    /// A worker whose heartbeat (one per 250 ms tick) has not moved for this long is hung.
    fn hung_after(&self) -> Duration {
        (self.interval * 2).max(Duration::from_secs(2))
    }

    fn sample_every(&self) -> Duration {
        (self.hung_after() / 8).max(TICK)
    }

    /// The next sample, or the next ping if sooner (not while a ping is withheld: it waits for
    /// the hung worker's exit, which wakes the loop anyway, or the next sample).
    fn due(&self) -> Instant {
        if self.healthy {
            self.next_ping.min(self.next_sample)
        } else {
            self.next_sample
        }
    }
}

impl Systemd {
    /// The notifier systemd asked for, if any, with its watchdog.
    pub fn from_env() -> Systemd {
        let notifier = Notifier::from_env();
        let now = Instant::now();
        Systemd {
            watchdog: notifier
                .as_ref()
                .and_then(|_| notify::watchdog_interval())
                .map(|i| Watchdog::new(i, now)),
            notifier,
            next_status: now + STATUS_EVERY,
        }
    }

    /// Not talking to systemd.
    #[cfg(test)]
    pub fn silent() -> Systemd {
        Systemd {
            notifier: None,
            watchdog: None,
            next_status: Instant::now(),
        }
    }

    /// When `check_watchdog` or `report_status` next has something to do.
    pub fn next_due(&self, stopping: bool) -> Option<Instant> {
        let status = (self.notifier.is_some() && !stopping).then_some(self.next_status);
        match (self.watchdog.as_ref().map(Watchdog::due), status) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
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

    /// Samples the workers' progress (on every turn of the loop: it is cheap) and pings
    /// WATCHDOG=1 every interval while every worker makes progress. A worker that made none for
    /// twice the interval (at least 2 s) is killed, and the ping withheld while it lingers.
    pub fn check_watchdog(&mut self, now: Instant, sup: &mut Supervisor) {
        let Some(w) = &mut self.watchdog else {
            return;
        };
        w.healthy = sup.check_progress(now, w.hung_after());
        w.next_sample = now + w.sample_every();
        if w.healthy && now >= w.next_ping {
            w.next_ping = now + w.interval;
            self.send("WATCHDOG=1");
        }
    }

    /// Refreshes STATUS= with the workers' counters, every STATUS_EVERY.
    pub fn report_status(&mut self, now: Instant, sup: &Supervisor, stopping: bool) {
        if self.notifier.is_none() || now < self.next_status || stopping {
            return;
        }
        self.next_status = now + STATUS_EVERY;
        let (n, conns, reqs) = sup.totals();
        self.send(&format!(
            "STATUS={n} workers, {conns} connections, {reqs} requests served"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_timing_follows_the_interval() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        // WATCHDOG_USEC=2 s: a ping every second; hung after 2 s, sampled every 250 ms.
        let w = Watchdog::new(ms(1000), now);
        assert_eq!(w.hung_after(), ms(2000));
        assert_eq!(w.sample_every(), ms(250));
        assert_eq!(w.due(), now + ms(250));
        // WatchdogSec=10s: a ping every 5 s; hung after 10 s, sampled every 1.25 s.
        let w = Watchdog::new(ms(5000), now);
        assert_eq!((w.hung_after(), w.sample_every()), (ms(10_000), ms(1250)));
        // A short interval still allows 2 s, and never samples faster than the workers tick.
        let w = Watchdog::new(ms(100), now);
        assert_eq!((w.hung_after(), w.sample_every()), (ms(2000), ms(250)));
        assert_eq!(
            w.due(),
            now + ms(100),
            "the ping comes before the first sample"
        );
    }

    #[test]
    fn a_withheld_ping_does_not_make_the_watchdog_due() {
        let now = Instant::now();
        let mut w = Watchdog::new(Duration::from_millis(100), now);
        w.next_ping = now - Duration::from_secs(1); // overdue
        assert_eq!(w.due(), w.next_ping);
        w.healthy = false;
        assert_eq!(
            w.due(),
            w.next_sample,
            "overdue but withheld: wait for the next sample"
        );
    }

    #[test]
    fn what_is_due_with_and_without_systemd() {
        let now = Instant::now();
        let mut s = Systemd::silent();
        assert_eq!(
            s.next_due(false),
            None,
            "without systemd nothing is ever due"
        );
        // A notifier (never sent to here): STATUS= is due, except while stopping.
        s.notifier = Some(Notifier::connect(b"@ringstatic-test-unused").unwrap());
        s.next_status = now + STATUS_EVERY;
        assert_eq!(s.next_due(false), Some(now + STATUS_EVERY));
        assert_eq!(s.next_due(true), None);
        // With the watchdog: its next sample comes first (WatchdogSec=10s: every 1.25 s).
        s.watchdog = Some(Watchdog::new(Duration::from_secs(5), now));
        assert_eq!(s.next_due(false), Some(now + Duration::from_millis(1250)));
        assert_eq!(s.next_due(true), Some(now + Duration::from_millis(1250)));
        // After a binary upgrade's hand-over, nothing again.
        s.watchdog = None;
        s.notifier = None;
        assert_eq!(s.next_due(false), None);
    }
}
