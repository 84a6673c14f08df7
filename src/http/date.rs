//! HTTP-date formatting and parsing (RFC 9110 5.6.7).
//!
//! Dates are plain Unix seconds (`i64`); the calendar math is done here with
//! Howard Hinnant's days/civil algorithms so that no libc or time zone
//! database is involved (HTTP dates are always GMT).

use super::token::trim_ows;
/// Length of an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const HTTP_DATE_LEN: usize = 29;

/// Smallest instant an IMF-fixdate can express (0000-01-01T00:00:00Z).
pub const MIN_HTTP_DATE: i64 = -62_167_219_200;
/// Largest instant an IMF-fixdate can express (9999-12-31T23:59:59Z).
pub const MAX_HTTP_DATE: i64 = 253_402_300_799;

const DAY_NAMES: [&[u8; 3]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];
const DAY_NAMES_LONG: [&[u8]; 7] = [
    b"Sunday",
    b"Monday",
    b"Tuesday",
    b"Wednesday",
    b"Thursday",
    b"Friday",
    b"Saturday",
];
const MONTH_NAMES: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

const SECS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 for a proleptic Gregorian date.
/// `month` is 1..=12, `day` 1..=31; callers validate. Inputs are bounded
/// (|year| <= 9999) so the arithmetic cannot overflow.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // [0, 399]
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March-based month, [0, 11]
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: (year, month 1..=12, day 1..=31).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    // The ranges noted above make these conversions lossless.
    (year, month as u32, day as u32)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

fn two_digits(out: &mut [u8], v: u32) {
    // `out` is always a fixed 2-byte window of the date buffer.
    if let [a, b] = out {
        *a = b'0' + (v / 10 % 10) as u8;
        *b = b'0' + (v % 10) as u8;
    }
}

/// Formats `unix_secs` as an IMF-fixdate.
///
/// Instants outside what a 4-digit year can express are clamped to
/// [`MIN_HTTP_DATE`]..=[`MAX_HTTP_DATE`] rather than producing a malformed
/// header; file times that far out are bogus anyway.
pub fn format_http_date(unix_secs: i64) -> [u8; HTTP_DATE_LEN] {
    let t = unix_secs.clamp(MIN_HTTP_DATE, MAX_HTTP_DATE);
    let days = t.div_euclid(SECS_PER_DAY);
    let secs_of_day = t.rem_euclid(SECS_PER_DAY) as u32;
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday (index 4 with Sunday = 0).
    let weekday = (days + 4).rem_euclid(7) as usize;

    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAY_NAMES[weekday % 7]);
    two_digits(&mut out[5..7], day);
    out[8..11].copy_from_slice(MONTH_NAMES[(month as usize + 11) % 12]);
    let year = year.clamp(0, 9999) as u32;
    two_digits(&mut out[12..14], year / 100);
    two_digits(&mut out[14..16], year % 100);
    two_digits(&mut out[17..19], secs_of_day / 3600);
    two_digits(&mut out[20..22], secs_of_day / 60 % 60);
    two_digits(&mut out[23..25], secs_of_day % 60);
    out
}

/// Parses any of the three HTTP-date formats RFC 9110 requires recipients to
/// accept: IMF-fixdate, RFC 850 and asctime. Surrounding whitespace is
/// tolerated; anything else malformed, or any out-of-range field, is `None`.
///
/// The weekday must be a valid name but is not cross-checked against the
/// date: RFC 9110 gives it no meaning and clients do get it wrong.
pub fn parse_http_date(s: &[u8]) -> Option<i64> {
    parse_http_date_inner(trim_ows(s), current_year)
}

/// Like [`parse_http_date`], but resolves RFC 850 two-digit years against
/// the supplied current year instead of the system clock (for callers that
/// already have a cached "now", and for deterministic tests).
pub fn parse_http_date_with_year(s: &[u8], now_year: i64) -> Option<i64> {
    parse_http_date_inner(trim_ows(s), || now_year)
}

fn parse_http_date_inner(s: &[u8], now_year: impl FnOnce() -> i64) -> Option<i64> {
    if s.len() == HTTP_DATE_LEN && s.get(3) == Some(&b',') {
        return parse_imf_fixdate(s);
    }
    if s.len() == 24 && s.get(3) == Some(&b' ') {
        return parse_asctime(s);
    }
    parse_rfc850(s, now_year)
}

fn current_year() -> i64 {
    // Only RFC 850 dates need "now", and those are rare, so the clock is
    // read lazily. A clock before 1970 is treated as 1970.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(MAX_HTTP_DATE));
    civil_from_days(secs.clamp(0, MAX_HTTP_DATE) / SECS_PER_DAY).0
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u32, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u32::from(b - b'0'))
        } else {
            None
        }
    })
}

fn month_from_name(s: &[u8]) -> Option<u32> {
    MONTH_NAMES
        .iter()
        .position(|m| m.as_slice() == s)
        .map(|i| i as u32 + 1)
}

/// `HH:MM:SS` -> seconds of day. A leap second (60) is folded into 59 so the
/// result stays inside the minute it was sent for.
fn parse_time(s: &[u8]) -> Option<i64> {
    match s {
        [h1, h2, b':', m1, m2, b':', s1, s2] => {
            let h = digits(&[*h1, *h2])?;
            let m = digits(&[*m1, *m2])?;
            let sec = digits(&[*s1, *s2])?;
            if h > 23 || m > 59 || sec > 60 {
                return None;
            }
            Some(i64::from(h * 3600 + m * 60 + sec.min(59)))
        }
        _ => None,
    }
}

/// A calendar date (years 0..=9999) and the seconds into its day -> Unix seconds; `None` for a
/// day the month does not have. Shared with certificate times (`tls::x509`).
pub(crate) fn assemble(year: i64, month: u32, day: u32, secs_of_day: i64) -> Option<i64> {
    if !(0..=9999).contains(&year) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day) * SECS_PER_DAY + secs_of_day)
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`
fn parse_imf_fixdate(s: &[u8]) -> Option<i64> {
    let (name, rest) = s.split_at_checked_compat(3)?;
    if !DAY_NAMES.iter().any(|d| d.as_slice() == name) {
        return None;
    }
    match rest {
        [b',', b' ', d1, d2, b' ', mon @ .., b' ', y1, y2, y3, y4, b' ', t1, t2, b':', t4, t5, b':', t7, t8, b' ', b'G', b'M', b'T'] =>
        {
            let day = digits(&[*d1, *d2])?;
            let month = month_from_name(mon)?;
            let year = digits(&[*y1, *y2, *y3, *y4])?;
            let time = parse_time(&[*t1, *t2, b':', *t4, *t5, b':', *t7, *t8])?;
            assemble(i64::from(year), month, day, time)
        }
        _ => None,
    }
}

/// `Sun Nov  6 08:49:37 1994` (day is space-padded, or two digits).
fn parse_asctime(s: &[u8]) -> Option<i64> {
    let (name, rest) = s.split_at_checked_compat(3)?;
    if !DAY_NAMES.iter().any(|d| d.as_slice() == name) {
        return None;
    }
    match rest {
        [b' ', m1, m2, m3, b' ', d1, d2, b' ', time @ .., b' ', y1, y2, y3, y4] => {
            let month = month_from_name(&[*m1, *m2, *m3])?;
            let day = if *d1 == b' ' {
                digits(&[*d2])?
            } else {
                digits(&[*d1, *d2])?
            };
            let year = digits(&[*y1, *y2, *y3, *y4])?;
            let time = parse_time(time)?;
            assemble(i64::from(year), month, day, time)
        }
        _ => None,
    }
}

/// `Sunday, 06-Nov-94 08:49:37 GMT`
fn parse_rfc850(s: &[u8], now_year: impl FnOnce() -> i64) -> Option<i64> {
    let comma = memchr::memchr(b',', s)?;
    let (name, rest) = s.split_at_checked_compat(comma)?;
    if !DAY_NAMES_LONG.contains(&name) {
        return None;
    }
    match rest {
        [b',', b' ', d1, d2, b'-', m1, m2, m3, b'-', y1, y2, b' ', time @ .., b' ', b'G', b'M', b'T'] =>
        {
            let day = digits(&[*d1, *d2])?;
            let month = month_from_name(&[*m1, *m2, *m3])?;
            let yy = i64::from(digits(&[*y1, *y2])?);
            let time = parse_time(time)?;
            // RFC 9110 5.6.7: a two-digit year more than 50 years in the
            // future means the most recent past year with those digits. The
            // symmetric bound keeps the window at 100 years around now.
            let now = now_year();
            let mut year = now - now.rem_euclid(100) + yy;
            if year > now + 50 {
                year -= 100;
            } else if year <= now - 50 {
                year += 100;
            }
            assemble(year, month, day, time)
        }
        _ => None,
    }
}

/// `<[T]>::split_at_checked` is newer than the crate's MSRV.
trait SplitAtCheckedCompat {
    fn split_at_checked_compat(&self, mid: usize) -> Option<(&Self, &Self)>;
}

impl SplitAtCheckedCompat for [u8] {
    fn split_at_checked_compat(&self, mid: usize) -> Option<(&[u8], &[u8])> {
        Some((self.get(..mid)?, self.get(mid..)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: i64 = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT

    #[test]
    fn formats_rfc_example() {
        assert_eq!(&format_http_date(EXAMPLE), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&format_http_date(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            &format_http_date(951_782_400),
            b"Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(&format_http_date(-1), b"Wed, 31 Dec 1969 23:59:59 GMT");
    }

    #[test]
    fn format_clamps_extremes() {
        assert_eq!(
            &format_http_date(i64::MAX),
            b"Fri, 31 Dec 9999 23:59:59 GMT"
        );
        assert_eq!(
            &format_http_date(MAX_HTTP_DATE),
            b"Fri, 31 Dec 9999 23:59:59 GMT"
        );
        assert_eq!(
            &format_http_date(i64::MIN),
            b"Sat, 01 Jan 0000 00:00:00 GMT"
        );
    }

    #[test]
    fn parses_all_three_formats() {
        assert_eq!(
            parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(EXAMPLE)
        );
        assert_eq!(parse_http_date(b"Sun Nov  6 08:49:37 1994"), Some(EXAMPLE));
        assert_eq!(parse_http_date(b"Sun Nov 06 08:49:37 1994"), Some(EXAMPLE));
        assert_eq!(
            parse_http_date_with_year(b"Sunday, 06-Nov-94 08:49:37 GMT", 2026),
            Some(EXAMPLE)
        );
        assert_eq!(
            parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(EXAMPLE)
        );
        assert_eq!(
            parse_http_date(b"  Sun, 06 Nov 1994 08:49:37 GMT\t"),
            Some(EXAMPLE)
        );
    }

    #[test]
    fn rfc850_two_digit_year_window() {
        let jan1 = |y: i64| days_from_civil(y, 1, 1) * SECS_PER_DAY;
        let p = |s: &[u8], now| parse_http_date_with_year(s, now);
        assert_eq!(
            p(b"Thursday, 01-Jan-70 00:00:00 GMT", 2026),
            Some(jan1(2070))
        );
        assert_eq!(
            p(b"Thursday, 01-Jan-70 00:00:00 GMT", 2000),
            Some(jan1(1970))
        );
        assert_eq!(p(b"Monday, 01-Jan-77 00:00:00 GMT", 2026), Some(jan1(1977)));
        assert_eq!(p(b"Monday, 01-Jan-76 00:00:00 GMT", 2026), Some(jan1(2076)));
        assert_eq!(p(b"Monday, 01-Jan-10 00:00:00 GMT", 2090), Some(jan1(2110)));
        assert_eq!(p(b"Monday, 01-Jan-41 00:00:00 GMT", 2090), Some(jan1(2041)));
        assert_eq!(p(b"Monday, 01-Jan-41 00:00:00 GMT", 2091), Some(jan1(2141)));
        assert_eq!(p(b"Monday, 01-Jan-42 00:00:00 GMT", 2091), Some(jan1(2042)));
    }

    #[test]
    fn rejects_out_of_range_fields() {
        for bad in [
            &b"Sun, 32 Nov 1994 08:49:37 GMT"[..],
            b"Sun, 31 Nov 1994 08:49:37 GMT",
            b"Sun, 00 Nov 1994 08:49:37 GMT",
            b"Sun, 29 Feb 1900 08:49:37 GMT",
            b"Sun, 06 Nov 1994 24:00:00 GMT",
            b"Sun, 06 Nov 1994 23:60:00 GMT",
            b"Sun, 06 Nov 1994 23:59:61 GMT",
            b"Sun, 06 Foo 1994 08:49:37 GMT",
            b"Sun, 06 nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 08:49:37 UTC",
            b"Sun, 06 Nov 1994 08:49:37 gmt",
            b"Xyz, 06 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 19a4 08:49:37 GMT",
            b"Sun, 6 Nov 1994 08:49:37 GMT ",
            b"Sun, +6 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 08-49-37 GMT",
            b"Sun Nov 31 08:49:37 1994",
            b"Sun Nov  0 08:49:37 1994",
            b"Sun Nov 6  08:49:37 1994",
            b"Sunday, 31-Nov-94 08:49:37 GMT",
            b"Sunday, 06-Nov-1994 08:49:37 GMT",
            b"Sun, 06-Nov-94 08:49:37 GMT",
            b"Sunday, 06-Nov-94 08:49:37",
            b"Funday, 06-Nov-94 08:49:37 GMT",
        ] {
            assert_eq!(
                parse_http_date(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_http_date(b"Tue, 29 Feb 2000 00:00:00 GMT").is_some());
        // A leap second stays within its minute.
        assert_eq!(
            parse_http_date(b"Sun, 06 Nov 1994 08:49:60 GMT"),
            Some(EXAMPLE + 22)
        );
    }

    #[test]
    fn never_panics_on_garbage() {
        let samples: [&[u8]; 12] = [
            b"",
            b" ",
            b",",
            b"Sun,",
            b"Sunday,",
            b"\xff\xfe\xfd, 06 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 08:49:37 GM\xff",
            b"Sun \xffov  6 08:49:37 1994",
            b"Sunday, \xff",
            b"Sun, 99 Dec 9999 99:99:99 GMT",
            b"Sat, 31 Dec 9999 23:59:59 GMT",
            b"Sunday,,,,,,,,,,,,,,,,,,,,,,,,,,,,,",
        ];
        for s in samples {
            let _ = parse_http_date(s);
            for i in 0..=s.len() {
                let _ = parse_http_date(&s[..i]);
            }
        }
        assert_eq!(
            parse_http_date(b"Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(MAX_HTTP_DATE)
        );
    }

    #[test]
    fn roundtrip_1970_to_9999() {
        // A stride that is coprime with the day length walks through every
        // time-of-day and calendar position over the run.
        let mut t = 0i64;
        let mut n = 0u32;
        while t <= MAX_HTTP_DATE {
            let f = format_http_date(t);
            assert_eq!(
                parse_http_date(&f),
                Some(t),
                "{}",
                String::from_utf8_lossy(&f)
            );
            t += 1_234_567;
            n += 1;
        }
        assert!(n > 200_000);
        // Every single day boundary across four centuries (leap rules).
        let mut day = days_from_civil(1970, 1, 1);
        let end = days_from_civil(2400, 12, 31);
        while day <= end {
            let t = day * SECS_PER_DAY + 86_399;
            assert_eq!(parse_http_date(&format_http_date(t)), Some(t));
            day += 1;
        }
    }

    #[test]
    fn civil_roundtrip_and_leap_years() {
        for days in -1_000_000i64..1_000_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert!(is_leap(2000) && is_leap(2024) && !is_leap(1900) && !is_leap(2023));
        assert_eq!(days_in_month(2023, 2), 28);
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2024, 13), 0);
    }
}
