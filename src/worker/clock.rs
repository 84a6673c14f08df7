//! The worker's clock: read once per loop turn from the coarse clocks (a few ns, no system
//! call), with the IMF-fixdate of the Date header formatted once per second, and the first
//! lines of a `200` that carry it.

use std::rc::Rc;

use crate::http::date::{format_http_date, HTTP_DATE_LEN};
use crate::http::head::status_line_into;

pub struct Clock {
    /// Monotonic milliseconds: deadlines and timeouts.
    pub now_ms: u64,
    /// The wall-clock second `date` says.
    pub date_secs: i64,
    pub date: [u8; HTTP_DATE_LEN],
    /// `HTTP/1.1 200 OK`, Server and this second's Date: the first iovec of every response sent
    /// behind a cached file's prebuilt head. One per worker rather than a copy in each of tens of
    /// thousands of heads, so the Date is patched here once a second, not once per entry.
    ok_200: Rc<[u8]>,
    /// Where the Date's value is in `ok_200`.
    ok_200_date_at: usize,
}

impl Clock {
    pub fn new() -> Clock {
        let mut ok_200 = Vec::with_capacity(80);
        let ok_200_date_at = status_line_into(&mut ok_200, 200, &[b' '; HTTP_DATE_LEN]);
        let mut c = Clock {
            now_ms: 0,
            date_secs: -1,
            date: [b' '; HTTP_DATE_LEN],
            ok_200: Rc::from(ok_200),
            ok_200_date_at,
        };
        c.update();
        c
    }

    #[inline]
    pub fn update(&mut self) {
        self.now_ms = clock_ms(libc::CLOCK_MONOTONIC_COARSE);
        let secs = (clock_ms(libc::CLOCK_REALTIME_COARSE) / 1000) as i64;
        if secs != self.date_secs {
            self.set_date(secs);
        }
    }

    /// Makes `date` (and `ok_200`'s) say the wall-clock second `secs`; once a second, so out of
    /// line (`update` runs on every loop turn).
    #[cold]
    #[inline(never)]
    fn set_date(&mut self, secs: i64) {
        self.date_secs = secs;
        self.date = format_http_date(secs);
        let range = self.ok_200_date_at..self.ok_200_date_at + HTTP_DATE_LEN;
        match Rc::get_mut(&mut self.ok_200) {
            Some(bytes) => bytes[range].copy_from_slice(&self.date),
            None => {
                // A send in flight still reads the old lines: it keeps them; we take a copy.
                let mut v = self.ok_200.to_vec();
                v[range].copy_from_slice(&self.date);
                self.ok_200 = Rc::from(v);
            }
        }
    }

    /// The status line, Server and Date of a `200`, to send before a prebuilt head.
    pub fn ok_200(&self) -> &Rc<[u8]> {
        &self.ok_200
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_200_lines_carry_the_date_of_their_second() {
        let mut c = Clock::new();
        c.set_date(784111777);
        let lines = |c: &Clock| String::from_utf8(c.ok_200().to_vec()).unwrap();
        assert_eq!(
            lines(&c),
            "HTTP/1.1 200 OK\r\nServer: ringstatic\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
        );
        // Patched in place while nothing else holds them.
        let at = c.ok_200().as_ptr();
        c.set_date(784111778);
        assert!(lines(&c).contains("08:49:38 GMT"));
        assert_eq!(c.ok_200().as_ptr(), at);
        // A send in flight keeps the lines it points at; the next second gets a copy.
        let held = c.ok_200().clone();
        c.set_date(784111779);
        assert!(String::from_utf8_lossy(&held).contains("08:49:38 GMT"));
        assert!(lines(&c).contains("08:49:39 GMT"));
        assert_eq!(&c.date, b"Sun, 06 Nov 1994 08:49:39 GMT");
    }
}
