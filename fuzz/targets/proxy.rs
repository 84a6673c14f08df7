//! The PROXY protocol header (v1 and v2) a balancer sends first on a `proxy-protocol`
//! listener: the input is a connection's first bytes. Checks that a header parses the same
//! however reads split it, never claims bytes it was not given, and that a refusal is final.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        ringstatic::invariants::proxy_header(data);
    });
}
