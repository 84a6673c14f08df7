//! A certificate's DER (what `-t` and the start-up read from `--tls-cert`): checks that any
//! bytes get an answer without a panic, that only one whole DER element is accepted, and, when
//! the input is text `PATTERN\nHOST`, the SNI name matching's promises.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        ringstatic::invariants::certificate(data);
        if let Some((pattern, host)) = std::str::from_utf8(data)
            .ok()
            .and_then(|s| s.split_once('\n'))
        {
            ringstatic::invariants::name_match(pattern, host);
        }
    });
}
