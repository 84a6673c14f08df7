//! The worker's clock: read once per loop turn from the coarse clocks (a few ns, no system
//! call), with the IMF-fixdate of the Date header formatted once per second.

use crate::http::date::{format_http_date, HTTP_DATE_LEN};

pub struct Clock {
    /// Monotonic milliseconds: deadlines and timeouts.
    pub now_ms: u64,
    /// The wall-clock second `date` says.
    pub date_secs: i64,
    pub date: [u8; HTTP_DATE_LEN],
}

impl Clock {
    pub fn new() -> Clock {
        let mut c = Clock {
            now_ms: 0,
            date_secs: -1,
            date: [b' '; HTTP_DATE_LEN],
        };
        c.update();
        c
    }

    pub fn update(&mut self) {
        self.now_ms = clock_ms(libc::CLOCK_MONOTONIC_COARSE);
        let secs = (clock_ms(libc::CLOCK_REALTIME_COARSE) / 1000) as i64;
        if secs != self.date_secs {
            self.date_secs = secs;
            self.date = format_http_date(secs);
        }
    }
}

pub fn clock_ms(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-parameter; these clocks always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}
