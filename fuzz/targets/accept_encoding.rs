//! Accept-Encoding parsing: the input is the header's value. Checks that weights stay within 1,
//! come only from codings the value names, and that identity is only excluded by name.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        ringstatic::invariants::accept_encoding(data);
    });
}
