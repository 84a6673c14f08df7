//! Request-target decoding and normalisation: the input is a raw request-target. Checks that a
//! normalised path never climbs above the root and normalising is idempotent.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        ringstatic::invariants::target(data);
    });
}
