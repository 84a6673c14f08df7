//! Test data and checks on bytes: deterministic file contents, a byte comparison that does not
//! dump megabytes on failure, and small predicates used by assertions.

/// Deterministic pseudo-random bytes (xorshift64*), different per seed.
pub fn pattern_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut x: u64 = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Compare two byte strings without dumping megabytes on failure.
#[track_caller]
pub fn assert_bytes_eq(got: &[u8], expected: &[u8], what: &str) {
    if got == expected {
        return;
    }
    let first = got
        .iter()
        .zip(expected.iter())
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(expected.len()));
    let show = |b: &[u8]| {
        let end = (first + 32).min(b.len());
        let start = first.min(end);
        format!("{:?}", String::from_utf8_lossy(&b[start..end]))
    };
    panic!(
        "{}: bytes differ: got {} bytes, expected {} bytes, first difference at offset {} (got {} / expected {})",
        what,
        got.len(),
        expected.len(),
        first,
        show(got),
        show(expected)
    );
}

/// Check an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn is_imf_fixdate(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 29 {
        return false;
    }
    let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let digit = |i: usize| b[i].is_ascii_digit();
    days.contains(&&s[0..3])
        && &s[3..5] == ", "
        && digit(5)
        && digit(6)
        && b[7] == b' '
        && months.contains(&&s[8..11])
        && b[11] == b' '
        && (12..16).all(digit)
        && b[16] == b' '
        && digit(17)
        && digit(18)
        && b[19] == b':'
        && digit(20)
        && digit(21)
        && b[22] == b':'
        && digit(23)
        && digit(24)
        && &s[25..] == " GMT"
}

/// Whether `hay` contains `needle`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}
