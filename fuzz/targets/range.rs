//! Range parsing: the first line of the input is the file's length in decimal (or 1000), the
//! rest the Range header's value. Checks that a decided range set never reaches past the file.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let (len, header) = match memchr_newline(data) {
            Some(i) => (parse_len(&data[..i]), &data[i + 1..]),
            None => (1000, data),
        };
        ringstatic::invariants::range(header, len);
    });
}

fn memchr_newline(data: &[u8]) -> Option<usize> {
    data.iter().position(|&b| b == b'\n')
}

/// Decimal digits, saturating: a length of any size.
fn parse_len(s: &[u8]) -> u64 {
    s.iter().filter(|b| b.is_ascii_digit()).fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    })
}
