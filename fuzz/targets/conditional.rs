//! Conditional headers and HTTP-dates: the input's first byte picks the validators (the
//! current entity-tag, whether Last-Modified is strong), the next eight the Last-Modified
//! instant; the rest, split at newlines, is If-Match, If-Unmodified-Since, If-None-Match,
//! If-Modified-Since and If-Range. Checks the precondition promises and the date round trip.
use ringstatic::http::conditional::Validators;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((&pick, rest)) = data.split_first() else {
            return;
        };
        let (secs, rest) = match rest.split_first_chunk::<8>() {
            Some((b, r)) => (i64::from_le_bytes(*b), r),
            None => (784_111_777, rest),
        };
        let etag: &[u8] = match pick % 3 {
            0 => b"\"1a-2b\"",
            1 => b"W/\"1a-2b\"",
            _ => b"\"\"",
        };
        let v = Validators {
            etag,
            last_modified: secs.rem_euclid(253_402_300_800),
            last_modified_strong: pick & 0x80 != 0,
        };
        let mut fields = rest.split(|&b| b == b'\n');
        let mut next = || fields.next().unwrap_or_default();
        let f = [next(), next(), next(), next(), next()];
        ringstatic::invariants::conditional(f, &v);
        ringstatic::invariants::date(rest, secs);
    });
}
