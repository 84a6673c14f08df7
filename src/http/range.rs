//! `Range` request evaluation (RFC 9110 14.1-14.4).

use super::token::{parse_u64, push_u64, trim_ows};
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    /// Inclusive.
    pub end: u64,
}

impl ByteRange {
    /// Number of bytes covered; 0 for an inverted range, which
    /// [`decide_range`] never produces.
    pub fn len(&self) -> u64 {
        self.end
            .checked_sub(self.start)
            .map_or(0, |d| d.saturating_add(1))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum RangeDecision {
    /// Ignore the header and send the whole representation (200).
    Full,
    /// One part (206 with Content-Range).
    Single(ByteRange),
    /// Several parts, in request order (206 multipart/byteranges).
    Multi(Vec<ByteRange>),
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Most range specs honored in one header; more is treated as abuse and the
/// header is ignored (RFC 9110 14.2 allows ignoring such requests).
pub const MAX_RANGES: usize = 16;

/// Decides how to answer a `Range` header for a file of `file_len` bytes.
///
/// Precedence when several problems exist: specs are examined left to
/// right, so a syntax error before the (MAX_RANGES+1)-th spec yields
/// `Unsatisfiable`, and reaching that spec first yields `Full`.
pub fn decide_range(header: &[u8], file_len: u64) -> RangeDecision {
    let header = trim_ows(header);
    let Some(eq) = memchr::memchr(b'=', header) else {
        return RangeDecision::Full;
    };
    let (unit, set) = (&header[..eq], &header[eq + 1..]);
    // Unknown units must be ignored (RFC 9110 14.2); an empty header has no
    // `=` and is ignored above.
    if !unit.eq_ignore_ascii_case(b"bytes") {
        return RangeDecision::Full;
    }

    let mut ranges = [ByteRange { start: 0, end: 0 }; MAX_RANGES];
    let mut satisfiable = 0usize;
    let mut specs = 0usize;
    let mut total: u64 = 0;

    for elem in set.split(|&b| b == b',') {
        let elem = trim_ows(elem);
        if elem.is_empty() {
            continue;
        }
        specs += 1;
        if specs > MAX_RANGES {
            return RangeDecision::Full;
        }
        let Some(spec) = parse_spec(elem) else {
            return RangeDecision::Unsatisfiable;
        };
        let Some(r) = spec.resolve(file_len) else {
            continue;
        };
        // Overlapping or repeated ranges that add up to more than the file
        // are an amplification vector: serve the file once instead.
        total = match total.checked_add(r.len()) {
            Some(t) if t <= file_len => t,
            _ => return RangeDecision::Full,
        };
        // `satisfiable < specs <= MAX_RANGES`, so the slot always exists.
        if let Some(slot) = ranges.get_mut(satisfiable) {
            *slot = r;
            satisfiable += 1;
        }
    }

    match ranges.get(..satisfiable) {
        _ if specs == 0 => RangeDecision::Unsatisfiable,
        Some([]) | None => RangeDecision::Unsatisfiable,
        Some([one]) => RangeDecision::Single(*one),
        Some(many) => RangeDecision::Multi(many.to_vec()),
    }
}

enum Spec {
    /// `first-last` or `first-`.
    FromTo(u64, Option<u64>),
    /// `-suffix_len`.
    Suffix(u64),
}

impl Spec {
    fn resolve(self, file_len: u64) -> Option<ByteRange> {
        let last = file_len.checked_sub(1)?;
        match self {
            Spec::FromTo(first, end) if first <= last => Some(ByteRange {
                start: first,
                end: end.map_or(last, |e| e.min(last)),
            }),
            Spec::FromTo(..) => None,
            Spec::Suffix(0) => None,
            Spec::Suffix(n) => Some(ByteRange {
                start: file_len - n.min(file_len),
                end: last,
            }),
        }
    }
}

/// Parses one range-spec. Numbers are 1*DIGIT of any length (RFC 9110 14.1.1 sets no bound):
/// one past `u64::MAX` is still a number, and saturating keeps its meaning, since no file is
/// that long. A suffix that long is the whole file, a last-pos that long is the end of the
/// file, a first-pos that long is past the end (unsatisfiable, not malformed).
fn parse_spec(elem: &[u8]) -> Option<Spec> {
    let dash = memchr::memchr(b'-', elem)?;
    let (first, last) = (&elem[..dash], &elem[dash + 1..]);
    if first.is_empty() {
        return Some(Spec::Suffix(parse_digits_saturating(last)?));
    }
    let first = parse_digits_saturating(first)?;
    if last.is_empty() {
        return Some(Spec::FromTo(first, None));
    }
    let last = parse_digits_saturating(last)?;
    // RFC 9110 14.1.1: last < first makes the whole set invalid.
    (last >= first).then_some(Spec::FromTo(first, Some(last)))
}

/// 1*DIGIT, saturating at `u64::MAX`; `None` when empty or not all digits.
fn parse_digits_saturating(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(parse_u64(s).unwrap_or(u64::MAX))
}

/// Appends the `Content-Range` value for one part: `bytes a-b/len`.
pub fn write_content_range(r: ByteRange, file_len: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"bytes ");
    push_u64(out, r.start);
    out.push(b'-');
    push_u64(out, r.end);
    out.push(b'/');
    push_u64(out, file_len);
}

/// Appends the `Content-Range` value of a 416 answer: `bytes */len`.
pub fn write_unsatisfied_range(file_len: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"bytes */");
    push_u64(out, file_len);
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeDecision::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn len() {
        assert_eq!(r(0, 0).len(), 1);
        assert_eq!(r(5, 9).len(), 5);
        assert_eq!(r(0, u64::MAX).len(), u64::MAX);
        assert_eq!(r(9, 5).len(), 0);
        assert!(r(9, 5).is_empty());
        assert!(!r(0, 0).is_empty());
    }

    #[test]
    fn ignored_headers_mean_full() {
        assert_eq!(decide_range(b"", 100), Full);
        assert_eq!(decide_range(b"   ", 100), Full);
        assert_eq!(decide_range(b"items=0-5", 100), Full);
        assert_eq!(decide_range(b"bytes", 100), Full);
        assert_eq!(decide_range(b"0-5", 100), Full);
        assert_eq!(decide_range(b"bytes =0-5", 100), Full);
        assert_eq!(decide_range(b"=0-5", 100), Full);
    }

    #[test]
    fn single_ranges() {
        assert_eq!(decide_range(b"bytes=0-9", 100), Single(r(0, 9)));
        assert_eq!(decide_range(b"BYTES=0-9", 100), Single(r(0, 9)));
        assert_eq!(decide_range(b" bytes=0-9 ", 100), Single(r(0, 9)));
        assert_eq!(decide_range(b"bytes=10-", 100), Single(r(10, 99)));
        assert_eq!(decide_range(b"bytes=90-200", 100), Single(r(90, 99)));
        assert_eq!(decide_range(b"bytes=99-99", 100), Single(r(99, 99)));
        assert_eq!(decide_range(b"bytes=-10", 100), Single(r(90, 99)));
        assert_eq!(decide_range(b"bytes=-1000", 100), Single(r(0, 99)));
        assert_eq!(decide_range(b"bytes=0-", 100), Single(r(0, 99)));
        assert_eq!(
            decide_range(b"bytes=0-18446744073709551615", 100),
            Single(r(0, 99))
        );
        assert_eq!(
            decide_range(b"bytes=-18446744073709551615", 5),
            Single(r(0, 4))
        );
        assert_eq!(decide_range(b"bytes=007-008", 100), Single(r(7, 8)));
        // Numbers past 64 bits keep their meaning: the whole file, the end of the file.
        assert_eq!(
            decide_range(b"bytes=-18446744073709551616", 100),
            Single(r(0, 99))
        );
        assert_eq!(
            decide_range(b"bytes=-99999999999999999999999999999", 5),
            Single(r(0, 4))
        );
        assert_eq!(
            decide_range(b"bytes=0-18446744073709551616", 100),
            Single(r(0, 99))
        );
        assert_eq!(decide_range(b"bytes=-101", 100), Single(r(0, 99)));
    }

    #[test]
    fn unsatisfiable_specs_are_dropped() {
        assert_eq!(decide_range(b"bytes=100-", 100), Unsatisfiable);
        assert_eq!(decide_range(b"bytes=100-200", 100), Unsatisfiable);
        assert_eq!(decide_range(b"bytes=-0", 100), Unsatisfiable);
        assert_eq!(decide_range(b"bytes=0-0", 0), Unsatisfiable);
        assert_eq!(decide_range(b"bytes=-5", 0), Unsatisfiable);
        assert_eq!(
            decide_range(b"bytes=18446744073709551615-18446744073709551615", 100),
            Unsatisfiable
        );
        assert_eq!(
            decide_range(b"bytes=18446744073709551615-", u64::MAX),
            Unsatisfiable
        );
        assert_eq!(
            decide_range(b"bytes=18446744073709551616-", 100),
            Unsatisfiable
        );
        assert_eq!(
            decide_range(b"bytes=18446744073709551616-, 0-1", 100),
            Single(r(0, 1))
        );
        assert_eq!(decide_range(b"bytes=200-300, 0-1", 100), Single(r(0, 1)));
        assert_eq!(decide_range(b"bytes=-0, 5-", 100), Single(r(5, 99)));
    }

    #[test]
    fn malformed_sets_are_unsatisfiable() {
        for bad in [
            &b"bytes="[..],
            b"bytes= ",
            b"bytes=,",
            b"bytes=, ,",
            b"bytes=-",
            b"bytes=--1",
            b"bytes=a-b",
            b"bytes=1-a",
            b"bytes=5-4",
            b"bytes=0-5-",
            b"bytes=1 - 2",
            b"bytes=+1-2",
            b"bytes=0x10-",
            b"bytes=18446744073709551617-18446744073709551616",
            b"bytes=0-1,foo",
            b"bytes=0-1;2-3",
            b"bytes=\xff-",
            b"bytes==0-1",
        ] {
            assert_eq!(
                decide_range(bad, 100),
                Unsatisfiable,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn multiple_ranges_keep_request_order() {
        assert_eq!(
            decide_range(b"bytes=50-59, 0-9", 100),
            Multi(vec![r(50, 59), r(0, 9)])
        );
        assert_eq!(
            decide_range(b"bytes=0-0,\t,-1 ,", 100),
            Multi(vec![r(0, 0), r(99, 99)])
        );
    }

    #[test]
    fn amplification_is_refused() {
        assert_eq!(decide_range(b"bytes=0-,0-", 100), Full);
        assert_eq!(decide_range(b"bytes=0-60,40-99", 100), Full);
        // Overlap that stays within the file size is allowed.
        assert_eq!(
            decide_range(b"bytes=0-1,1-2", 100),
            Multi(vec![r(0, 1), r(1, 2)])
        );
        // Exactly the file size is fine.
        assert_eq!(
            decide_range(b"bytes=0-49,50-", 100),
            Multi(vec![r(0, 49), r(50, 99)])
        );
        assert_eq!(decide_range(b"bytes=0-,0-", u64::MAX), Full);
    }

    #[test]
    fn too_many_ranges_mean_full() {
        let mut h = b"bytes=".to_vec();
        for i in 0..MAX_RANGES {
            if i > 0 {
                h.push(b',');
            }
            push_u64(&mut h, i as u64);
            h.push(b'-');
            push_u64(&mut h, i as u64);
        }
        match decide_range(&h, 100) {
            Multi(v) => assert_eq!(v.len(), MAX_RANGES),
            other => panic!("{other:?}"),
        }
        h.extend_from_slice(b",20-20");
        assert_eq!(decide_range(&h, 100), Full);
        // Empty elements do not count towards the limit.
        let mut h = b"bytes=0-0".to_vec();
        h.extend_from_slice(&[b','; 100]);
        assert_eq!(decide_range(&h, 100), Single(r(0, 0)));
        // Unsatisfiable specs do count.
        let h = b"bytes=200-,200-,200-,200-,200-,200-,200-,200-,200-,200-,200-,200-,200-,200-,200-,200-,0-0";
        assert_eq!(decide_range(h, 100), Full);
    }

    #[test]
    fn content_range_formatting() {
        let mut out = Vec::new();
        write_content_range(r(0, 9), 100, &mut out);
        assert_eq!(out, b"bytes 0-9/100");
        out.clear();
        write_content_range(r(u64::MAX - 1, u64::MAX - 1), u64::MAX, &mut out);
        assert_eq!(
            out,
            b"bytes 18446744073709551614-18446744073709551614/18446744073709551615"
        );
        out.clear();
        write_unsatisfied_range(0, &mut out);
        assert_eq!(out, b"bytes */0");
        out.clear();
        push_u64(&mut out, 1_000_000);
        assert_eq!(out, b"1000000");
    }
}
