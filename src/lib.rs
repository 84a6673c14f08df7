//! ringstatic: a static-file HTTP/1.1 server for Linux.
//!
//! Module map: every file, grouped by process and in the order a request meets them. The why
//! behind the design is in `docs/design.md`.
//!
//! **Start-up and the master process** (one thread, and the status listener's; no request work)
//! - `config`     the command line: typed, validated settings with defaults
//!   - `config::file`   the config file, turned into the same arguments
//!   - `config::values` option value parsers (addresses, durations, sizes, codings)
//!   - `config::serve`  `ServeConfig`, what a worker's request path reads; the shared checks
//! - `siteopts`   the values of --index, --error-page, --fallback(-exclude): parsers and lookups
//! - `control`    `-t` (check the configuration) and `-s reload|reopen|quit|stop`
//! - `master`     checks the setup, then a loop that turns signals and due times into actions
//!   - `master::supervise` the worker processes: start, reap (what an exit means), restart backoff
//!   - `master::reload`    SIGHUP: new workers first, old ones retire, or back to the old config
//!   - `master::upgrade`   SIGUSR2 binary upgrade: the old master's side and the new one's
//!   - `master::systemd`   what systemd is told: READY, RELOADING, STATUS, watchdog, fd store
//!   - `master::status`    the status listener's thread: /metrics, /healthz, /readyz
//!   - `master::exposition` the Prometheus text of /metrics, from the scoreboard
//!   - `master::signals`   how the master sleeps: a signalfd, the upgrade pipe, the next due time
//!   - `master::setup`     process plumbing: file limit, CPUs, error log, a child's pre-exec
//! - `inherit`    listening sockets: bound, from systemd (activation, fd store), or an old master
//!   - `inherit::claim` one instance per address: a fresh address is probed without SO_REUSEPORT
//! - `notify`     the systemd notify protocol (READY, RELOADING, STATUS, WATCHDOG, FDSTORE)
//! - `scoreboard` the shared mapping where each worker publishes its state and counters
//! - `metrics`    what a worker counts (a plain array of its own) and the metrics' names
//! - `cidr`       address ranges for `--trusted-proxy`
//! - `sigset`     the signal sets the master, the workers and `-s` block or wait for
//! - `pidfile`    the pid file, locked for the master's life, with nginx's `.oldbin` during an upgrade
//! - `precompress` the `ringstatic compress ROOT` subcommand: writes `.br`/`.zst`/`.gz` siblings
//! - `privileges` `--user`: the ids workers started by root switch to; `-t`'s readability check
//!
//! **A worker** (one pinned thread, one ring, nothing shared)
//! - `worker`           setup and the loop: collect completions, then dispatch by key
//!   - `worker::slots`    the connection table: slots and generations
//!   - `worker::accept`   listeners, one accept at a time, never past `--max-connections`
//!   - `worker::recv`     the first read, the multishot recv, feeding the session
//!   - `worker::proxy`    a proxy-protocol listener's trusted peers and PROXY header, before HTTP
//!   - `worker::progress` the one driver that moves a connection forward after any event
//!   - `worker::send`     memory through the ring; files by sendfile(2) or splice
//!   - `worker::tls`      a tls listener's connections: ciphertext through `tls::stream`
//!   - `worker::pool`     output queues and send buffers, lent to a connection only while busy
//!   - `worker::close`    linger, close through the ring, freeing a slot
//!   - `worker::tick`     the timer tick, timeouts, signals, the graceful drain
//!   - `worker::logwrite` the access log's batches written through the ring
//!   - `worker::site`     the request path's state (cache, root, log) as the session's handler
//!   - `worker::clock`    the coarse clock, the cached Date and the 200's first lines that carry it
//! - `sandbox`    entered by a worker after setup: no_new_privs, user, the layers, the start-up line
//!   - `sandbox::landlock` read-only beneath the root (raw system calls)
//!   - `sandbox::seccomp`  the allowlist of system calls a worker makes after setup
//! - `ring`       io_uring: ring flags, feature probe, the restrictions a worker's ring runs with
//!   - `ring::key`     typed, generation-checked completion keys
//!   - `ring::op`      one constructor per operation, saying what it points at
//!   - `ring::submit`  `unsafe push` with its ownership contract; the software queue when full
//!   - `ring::bufring` the provided-buffer ring recv reads into
//! - `conn`       one connection: Reading / Writing / Lifecycle, changed by named transitions
//! - `session`    the pure request loop: bytes in, responses queued, pipelining, back-pressure
//! - `tls`        HTTPS: the rustls configuration a worker serves with; the master's ticket secret
//!   - `tls::certs`   the --tls-cert/--tls-key pairs: read, checked (key, dates), picked by SNI
//!   - `tls::x509`    a leaf certificate's validity and host names: a small DER walk; SNI matching
//!   - `tls::tickets` session tickets keyed from the master's secret, so every worker resumes them
//!   - `tls::stream`  one connection's TLS: ciphertext in, plaintext out; response bytes sealed
//!
//! **The request path** (pure decisions, then the cache)
//! - `http`       pure HTTP, no I/O
//!   - `http::request` head parsing and limits; `http::host` Host and authority syntax;
//!     `http::target` decoding and normalisation;
//!     `http::range`, `http::conditional`, `http::date`; `http::head` header lines;
//!     `http::accept_encoding` the client's content codings and weights;
//!     `http::status` reason phrases and error bodies; `http::token` shared lexing;
//!     `http::glob` the path patterns of `--header` rules;
//!     `http::proxy_protocol` the PROXY protocol header (v1, v2) a load balancer sends first
//! - `response`   the pipeline: method -> target -> https redirect -> dotfiles -> lookup -> coding
//!   -> preconditions -> range
//!   - `response::https_redirect` `--redirect-https`: 308 to https, ACME challenges excepted
//!   - `response::find`         which file answers: directory and clean-URL redirects, `--fallback`
//!   - `response::negotiate`    Accept-Encoding: which representation (identity, br, zstd, gzip)
//!   - `response::headers`      `--header` rules: parsed, checked, resolved into an entry's lines
//!   - `response::prepare`      a file's header lines and prebuilt 200 head, once per cache entry
//!   - `response::not_modified` 304 / 412; `response::range` 206 / 416;
//!     `response::multipart` multipart/byteranges; `response::boundary` a boundary per
//!     response; `response::error` errors, error pages, redirects
//! - `files`      beneath the root, the file itself
//!   - `files::open`  openat2(RESOLVE_BENEATH) and its fallback; errno -> status
//!   - `files::entry` one file version's facts, its mapping or fd (and its representation, `Coding`)
//!   - `files::text`  an entry's prebuilt head, header lines and ETag, in one buffer
//!   - `files::cache` the per-worker LRU: path and coding -> entry, revalidation, budgets;
//!     (`files::cache::names`: index names and clean URLs; `files::cache::fxhash` its hash)
//!   - `files::listing` `--autoindex`: a directory's HTML listing, cached like a file
//!   - `files::variant` a coded representation: a fresh precompressed sibling, or compressed here
//!   - `files::codec` the brotli, zstd and gzip encoders and their levels
//!   - `files::body`  the chunks a response is made of; sendfile and splice
//! - `mime`       Content-Type by file extension
//! - `accesslog`  the access log's file and batches, lines written when responses end
//!   - `accesslog::line` a line's record at the answer, finished at the end; combined and JSON
//!
//! **Off the request path**
//! - `invariants` the parsers' promises as checks, shared by `fuzz/` and `tests/properties.rs`
//!
//! **Where to add**
//! - a header for some paths: a `--header` rule (`response::headers`), matched in
//!   `response::prepare` against rules compiled once into `config::ServeConfig`; it lands in the
//!   entry's lines and prebuilt head, so a hit pays nothing.
//! - a per-worker counter: an index in `metrics` (and a `metrics::DEFS` line naming it),
//!   incremented on the request path (`worker::site` or the worker), published on the tick
//!   through `scoreboard` (`worker::tick`), shown by `master::exposition`.
//! - a new content encoding: a `files::entry::Coding` variant (token and sibling suffix there),
//!   its encoder in `files::codec`, its weight in `http::accept_encoding` and its place in
//!   `response::negotiate`'s order.
//! - a new listener option: parsed in `config`, the socket made in `inherit` (the master binds
//!   and owns it), what it changes per connection in `worker::accept`.
//!
//! Outside the server: `examples/floor.rs` is bench/'s floor, a bare io_uring loop built on
//! `ring` that measures the kernel's share of a request (`bench/run.sh --peers floor`).

pub mod accesslog;
pub mod cidr;
pub mod config;
pub mod conn;
pub mod control;
pub mod files;
pub mod http;
pub mod inherit;
pub mod invariants;
pub mod master;
pub mod metrics;
pub mod mime;
pub mod notify;
pub mod pidfile;
pub mod precompress;
pub mod privileges;
pub mod response;
pub mod ring;
pub mod sandbox;
pub mod scoreboard;
pub mod session;
pub mod sigset;
pub mod siteopts;
pub mod tls;
pub mod worker;

/// Runs the master, a worker (hidden worker flag), or a control command. Returns the exit status.
pub fn main_entry() -> i32 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == "compress") {
        return precompress::main(&args[1..]);
    }
    let loaded = match config::load(&args) {
        Ok(l) => l,
        Err(e) => {
            use clap::error::ErrorKind;
            let checking = args.iter().any(|a| a == "-t" || a == "--test-config");
            if checking && !matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                // `-t` answers "is this configuration valid?": no is exit 1, with one line.
                let msg = e.to_string();
                let line = msg
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("invalid configuration");
                eprintln!(
                    "ringstatic: configuration invalid: {}",
                    line.trim_start_matches("error: ")
                );
                return 1;
            }
            e.exit() // clap's message; exit 2 for usage errors, 0 for --help/--version
        }
    };
    if loaded.cli.worker.is_some() {
        return worker::run(&loaded.cli);
    }
    if loaded.cli.test_config {
        return control::test_config(&loaded);
    }
    if let Some(sig) = loaded.cli.signal {
        return control::send(&loaded, sig);
    }
    master::run(args, loaded)
}
