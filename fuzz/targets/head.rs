//! The request-head parser: the input is the bytes a client sends. Checks that the head parses
//! the same whole or cut at any byte, and that Partial is only asked for within the limits.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        ringstatic::invariants::head(data);
    });
}
