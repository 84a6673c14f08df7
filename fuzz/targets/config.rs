//! The config file parser: the input is a config file's text. Checks that any text is parsed
//! and validated without a panic, and that what is accepted converts to a worker's settings.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(text) = std::str::from_utf8(data) {
            ringstatic::invariants::config_text(text);
        }
    });
}
