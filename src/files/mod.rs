//! From a normalized path to bytes on the wire: opening beneath the root (`open`), the per-worker
//! open-file cache (`cache`), and the body chunks a response is made of (`body`).

pub mod body;
pub mod cache;
pub mod open;
