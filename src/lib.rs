//! ringstatic: a static-file HTTP/1.1 server for Linux.
//!
//! Module map, in the order a request meets them:
//!
//! - `config`   the command line: typed, validated settings with documented defaults
//! - `master`   checks the setup, binds the sockets, starts/restarts workers, handles signals
//! - `worker`   one pinned thread: the io_uring event loop, accept, recv, send, timeouts, drain
//! - `ring`     io_uring plumbing: ring flags, feature probe, typed completion keys, buffer ring
//! - `conn`     one connection's state and output queue
//! - `http`     pure HTTP: request head parsing and limits, target decoding and normalisation,
//!              Range, conditional requests, dates, status texts and error pages
//! - `response` deciding the response for a parsed request and writing its chunks
//! - `files`    opening beneath the root, the per-worker open-file cache, body chunks and sendfile
//! - `mime`     Content-Type by file extension

pub mod config;
pub mod conn;
pub mod files;
pub mod http;
pub mod master;
pub mod mime;
pub mod response;
pub mod ring;
pub mod worker;

use clap::Parser;

/// Runs the master, or a worker when started with the hidden worker flag. Returns the exit status.
pub fn main_entry() -> i32 {
    let cli = config::Cli::parse();
    if cli.worker.is_some() {
        worker::run(&cli)
    } else {
        master::run(cli)
    }
}
