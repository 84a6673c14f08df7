//! Shared harness for the ringstatic integration tests.
//!
//! Everything here talks to the real binary over real 127.0.0.1 sockets and
//! real files in temporary directories. Only std and libc are used.
//!
//! Each test binary declares `mod common;` and uses `common::*`: the submodules are re-exported
//! here, so a helper's home file does not matter to its callers. Not every binary uses every
//! helper, hence `dead_code` is allowed for the whole harness.
#![allow(dead_code)]

pub mod client;
pub mod data;
pub mod load;
pub mod procs;
pub mod server;
pub mod tempdir;
pub mod tls;

// A binary that uses nothing from one of these files would otherwise warn about its re-export.
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use data::*;
#[allow(unused_imports)]
pub use load::*;
#[allow(unused_imports)]
pub use procs::*;
#[allow(unused_imports)]
pub use server::*;
#[allow(unused_imports)]
pub use tempdir::*;
#[allow(unused_imports)]
pub use tls::*;

use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_ringstatic");

/// Default I/O timeout on every test socket: nothing may hang forever.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
