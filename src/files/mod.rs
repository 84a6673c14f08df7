//! From a normalized path to bytes on the wire, with no HTTP in it: opening beneath the root
//! (`open`), one cached file's facts and bytes (`entry`) and the text its responses share
//! (`text`), the per-worker open-file cache that
//! holds them by path and coding (`cache`), where a coded representation comes from (`variant`:
//! a precompressed sibling, or the file compressed by `codec`), and the body chunks a response
//! is made of (`body`).
//!
//! The header text a response carries is the response layer's (`crate::response`): it makes what
//! an entry's responses share once, when the cache creates the entry (`entry::Prepared`), and the
//! entry keeps it, so the cache needs no knowledge of headers and a hit formats nothing.

pub mod body;
pub mod cache;
pub mod codec;
pub mod entry;
pub mod listing;
pub mod open;
pub mod text;
pub mod variant;
