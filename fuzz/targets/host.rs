//! Host and authority syntax: the input is a Host field value (or an absolute-form target's
//! authority). Checks that a value accepted as a host can carry nothing but a host.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        ringstatic::invariants::host(data);
    });
}
