//! What a worker counts, and how the numbers are named when the status listener shows them.
//!
//! A worker keeps its counters in a plain array of its own (`Counters`): the request path pays
//! one increment of a field in memory no other core writes, no atomic and no lock. On every
//! timer tick the worker copies the array into its scoreboard slot (`publish`), and the master's
//! status listener reads the slots and writes the Prometheus text (`master::exposition`). So a
//! scrape sees numbers at most one tick (250 ms) old, and the request path never waits for it.
//!
//! The index constants below are the layout of both arrays; `DEFS` names each one.

use std::sync::atomic::{AtomicU64, Ordering};

/// Status classes 1xx..5xx, times methods GET, HEAD, other.
pub const REQUESTS: usize = 0;
pub const METHODS: [&str; 3] = ["GET", "HEAD", "other"];
pub const BODY_BYTES: usize = 15;
pub const CONN_ACCEPTED: usize = 16;
pub const CONN_HANDLED: usize = 17;
pub const CONN_ACTIVE: usize = 18;
pub const CONN_READING: usize = 19;
pub const CONN_WRITING: usize = 20;
pub const CONN_IDLE: usize = 21;
pub const CACHE_HITS: usize = 22;
pub const CACHE_MISSES: usize = 23;
pub const CACHE_EVICTIONS: usize = 24;
pub const CACHE_OPEN_FDS: usize = 25;
pub const CACHE_ENTRIES: usize = 26;
/// Timeouts by kind: header, keepalive, send, linger.
pub const TIMEOUTS: usize = 27;
pub const TIMEOUT_KINDS: [&str; 4] = ["header", "keepalive", "send", "linger"];
pub const SQ_FULL: usize = 31;
/// PROXY protocol headers refused: from an untrusted peer, malformed.
pub const PROXY_REFUSED: usize = 32;
pub const PROXY_REASONS: [&str; 2] = ["untrusted_peer", "malformed"];
/// Responses in a content coding: br, zstd, gzip (`Coding::index() - 1`).
pub const CODED: usize = 34;
pub const CODINGS: [&str; 3] = ["br", "zstd", "gzip"];
/// Files compressed on the fly (once per file version and coding, then cached).
pub const COMPRESSIONS: usize = 37;
/// Time to the last byte of a response: one count per bucket (not cumulative), then the sum.
pub const LATENCY: usize = 38;
/// Bucket upper bounds in milliseconds; the worker's clock is coarse (a few ms), so none lower.
pub const BUCKETS_MS: [u64; 11] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
/// Count of responses above the last bound (+Inf bucket only).
pub const LATENCY_OVER: usize = LATENCY + BUCKETS_MS.len();
pub const LATENCY_SUM_MS: usize = LATENCY_OVER + 1;
/// TLS handshakes completed, and connections closed for a TLS failure (garbage instead of a
/// ClientHello, no common version or suite, a bad record).
pub const TLS_HANDSHAKES: usize = LATENCY_SUM_MS + 1;
pub const TLS_FAILED: usize = TLS_HANDSHAKES + 1;
pub const COUNT: usize = TLS_FAILED + 1;

/// How a series is exposed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One metric family shown per worker: its name, help, kind, first index, and the label that
/// tells its indices apart (name and values), if several.
pub struct Def {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub at: usize,
    pub label: Option<(&'static str, &'static [&'static str])>,
}

/// Every per-worker family except the request counts (two labels) and the histogram.
pub const DEFS: &[Def] = &[
    def(
        "ringstatic_response_body_bytes_total",
        "Body bytes of the responses answered, as planned (one the client cut short counts whole).",
        Kind::Counter,
        BODY_BYTES,
    ),
    def(
        "ringstatic_connections_accepted_total",
        "Connections accepted.",
        Kind::Counter,
        CONN_ACCEPTED,
    ),
    def(
        "ringstatic_connections_handled_total",
        "Connections accepted and served (not refused at once).",
        Kind::Counter,
        CONN_HANDLED,
    ),
    def(
        "ringstatic_connections_active",
        "Connections open now.",
        Kind::Gauge,
        CONN_ACTIVE,
    ),
    def(
        "ringstatic_connections_reading",
        "Open connections receiving a request (head partly in, or none yet).",
        Kind::Gauge,
        CONN_READING,
    ),
    def(
        "ringstatic_connections_writing",
        "Open connections sending a response.",
        Kind::Gauge,
        CONN_WRITING,
    ),
    def(
        "ringstatic_connections_idle",
        "Keep-alive connections waiting for their next request.",
        Kind::Gauge,
        CONN_IDLE,
    ),
    def(
        "ringstatic_cache_hits_total",
        "File cache lookups answered from the cache.",
        Kind::Counter,
        CACHE_HITS,
    ),
    def(
        "ringstatic_cache_misses_total",
        "File cache lookups that opened the file (or found it missing).",
        Kind::Counter,
        CACHE_MISSES,
    ),
    def(
        "ringstatic_cache_evictions_total",
        "Cache entries dropped to make room.",
        Kind::Counter,
        CACHE_EVICTIONS,
    ),
    def(
        "ringstatic_cache_open_fds",
        "File descriptors the cache holds open.",
        Kind::Gauge,
        CACHE_OPEN_FDS,
    ),
    def(
        "ringstatic_cache_entries",
        "Entries in the cache (files and misses).",
        Kind::Gauge,
        CACHE_ENTRIES,
    ),
    Def {
        name: "ringstatic_timeouts_total",
        help: "Connections closed by a timeout, by kind.",
        kind: Kind::Counter,
        at: TIMEOUTS,
        label: Some(("kind", &TIMEOUT_KINDS)),
    },
    def(
        "ringstatic_submission_queue_full_total",
        "Times the io_uring submission queue was full (entries waited in software).",
        Kind::Counter,
        SQ_FULL,
    ),
    Def {
        name: "ringstatic_coded_responses_total",
        help:
            "Responses in a content coding (200, 206 or 304 of a coded representation), by coding.",
        kind: Kind::Counter,
        at: CODED,
        label: Some(("coding", &CODINGS)),
    },
    def(
        "ringstatic_compressions_total",
        "Files compressed on the fly (each version and coding once, then cached).",
        Kind::Counter,
        COMPRESSIONS,
    ),
    Def {
        name: "ringstatic_proxy_protocol_refused_total",
        help: "Connections closed because their PROXY protocol header was refused, by reason.",
        kind: Kind::Counter,
        at: PROXY_REFUSED,
        label: Some(("reason", &PROXY_REASONS)),
    },
    def(
        "ringstatic_tls_handshakes_total",
        "TLS handshakes completed (full and resumed).",
        Kind::Counter,
        TLS_HANDSHAKES,
    ),
    def(
        "ringstatic_tls_failures_total",
        "TLS connections closed for a protocol failure (not TLS, no common parameters, a bad record).",
        Kind::Counter,
        TLS_FAILED,
    ),
];

const fn def(name: &'static str, help: &'static str, kind: Kind, at: usize) -> Def {
    Def {
        name,
        help,
        kind,
        at,
        label: None,
    }
}

/// A worker's own counters: plain fields, written only by its thread.
pub struct Counters(pub [u64; COUNT]);

impl Default for Counters {
    fn default() -> Self {
        Counters([0; COUNT])
    }
}

impl Counters {
    /// One response answered: its status and method (None: refused before it was parsed).
    #[inline]
    pub fn answered(
        &mut self,
        status: u16,
        method: Option<crate::http::request::Method>,
        body: u64,
    ) {
        use crate::http::request::Method;
        let class = (status / 100).clamp(1, 5) as usize - 1;
        let m = match method {
            Some(Method::Get) => 0,
            Some(Method::Head) => 1,
            _ => 2,
        };
        self.0[REQUESTS + class * 3 + m] += 1;
        self.0[BODY_BYTES] += body;
    }

    /// A response in `coding` (nothing counted for identity).
    #[inline]
    pub fn coded(&mut self, coding: crate::files::entry::Coding) {
        if let Some(i) = coding.index().checked_sub(1) {
            self.0[CODED + i] += 1;
        }
    }

    /// `n` responses whose last byte left `ms` milliseconds after their request was read.
    #[inline]
    pub fn latency(&mut self, ms: u64, n: u64) {
        let b = BUCKETS_MS
            .iter()
            .position(|&le| ms <= le)
            .unwrap_or(BUCKETS_MS.len());
        self.0[LATENCY + b] += n;
        self.0[LATENCY_SUM_MS] += ms * n;
    }

    /// Copies every counter into the worker's scoreboard slot (on the tick).
    pub fn publish(&self, to: &[AtomicU64; COUNT]) {
        for (d, &v) in to.iter().zip(self.0.iter()) {
            d.store(v, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::Method;

    #[test]
    fn layout_has_no_overlaps() {
        let mut used = [false; COUNT];
        let mut mark = |at: usize, n: usize| {
            for u in &mut used[at..at + n] {
                assert!(!*u, "index {at} used twice");
                *u = true;
            }
        };
        mark(REQUESTS, 15);
        for d in DEFS {
            mark(d.at, d.label.map_or(1, |(_, v)| v.len()));
        }
        mark(LATENCY, BUCKETS_MS.len() + 2);
        assert!(used.iter().all(|&u| u), "every index has one meaning");
    }

    #[test]
    fn answered_and_latency_land_in_their_slots() {
        let mut c = Counters::default();
        c.answered(200, Some(Method::Get), 10);
        c.answered(404, Some(Method::Head), 0);
        c.answered(400, None, 5);
        c.answered(999, Some(Method::Unknown), 0);
        assert_eq!(c.0[REQUESTS + 3], 1, "2xx GET");
        assert_eq!(c.0[REQUESTS + 3 * 3 + 1], 1, "4xx HEAD");
        assert_eq!(c.0[REQUESTS + 3 * 3 + 2], 1, "4xx unparsed");
        assert_eq!(c.0[REQUESTS + 4 * 3 + 2], 1, "out of range counts as 5xx");
        assert_eq!(c.0[BODY_BYTES], 15);
        c.latency(0, 2);
        c.latency(5, 1);
        c.latency(6, 1);
        c.latency(60_000, 1);
        assert_eq!(c.0[LATENCY], 3);
        assert_eq!(c.0[LATENCY + 1], 1);
        assert_eq!(c.0[LATENCY_OVER], 1);
        assert_eq!(c.0[LATENCY_SUM_MS], 60_011);
    }
}
