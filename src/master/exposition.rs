//! The Prometheus text exposition format (version 0.0.4) of the status listener's `/metrics`:
//! every worker family once per worker (label `worker="<index>"`) and once summed
//! (`worker="all"`), then the master's own numbers. Counters end in `_total`, times are in
//! seconds and sizes in bytes, as Prometheus's naming conventions ask.
//!
//! Worker processes that share an index (the old and the new one during a reload) are added
//! into one series, so no series is ever written twice.

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use super::status::{Health, View};
use crate::metrics::{
    Kind, BUCKETS_MS, COUNT, DEFS, LATENCY, LATENCY_OVER, LATENCY_SUM_MS, METHODS, REQUESTS,
};
use crate::scoreboard::{BoardReader, ACCEPTING, DRAINING};

/// One series' worth of counters: per worker index, then the sum.
type Row = (String, [u64; COUNT]);

/// Writes the whole exposition into `out`.
pub fn render(
    out: &mut String,
    board: &BoardReader,
    v: &View,
    health: &Health,
    started: (Instant, SystemTime),
) {
    let rows = rows(board, v);
    write_workers(out, &rows);
    let (mut accepting, mut starting, mut draining) = (0, 0, 0);
    for w in v.workers.iter().filter(|w| w.running) {
        match board.slot(w.slot).state.load(Ordering::Acquire) {
            ACCEPTING => accepting += 1,
            DRAINING => draining += 1,
            _ => starting += 1,
        }
    }
    family(
        out,
        "ringstatic_workers",
        "Worker processes running, by state.",
        "gauge",
    );
    for (state, n) in [
        ("accepting", accepting),
        ("starting", starting),
        ("draining", draining),
    ] {
        let _ = writeln!(out, "ringstatic_workers{{state=\"{state}\"}} {n}");
    }
    family(
        out,
        "ringstatic_worker_restarts_total",
        "Worker processes restarted after an unexpected exit.",
        "counter",
    );
    let _ = writeln!(out, "ringstatic_worker_restarts_total {}", v.restarts);
    family(
        out,
        "ringstatic_reloads_total",
        "Configuration reloads, by result.",
        "counter",
    );
    let _ = writeln!(
        out,
        "ringstatic_reloads_total{{result=\"ok\"}} {}",
        v.reloads_ok
    );
    let _ = writeln!(
        out,
        "ringstatic_reloads_total{{result=\"failed\"}} {}",
        v.reloads_failed
    );
    family(
        out,
        "ringstatic_ready",
        "1 while /readyz answers 200.",
        "gauge",
    );
    let _ = writeln!(out, "ringstatic_ready {}", health.ready as u8);
    family(
        out,
        "ringstatic_uptime_seconds",
        "Seconds since the master started.",
        "gauge",
    );
    let _ = writeln!(
        out,
        "ringstatic_uptime_seconds {:.3}",
        started.0.elapsed().as_secs_f64()
    );
    family(
        out,
        "ringstatic_start_time_seconds",
        "When the master started, in seconds since the Unix epoch.",
        "gauge",
    );
    let epoch = started
        .1
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "ringstatic_start_time_seconds {:.3}",
        epoch.as_secs_f64()
    );
}

/// The running workers' counters, added by index, then the sum as `all`.
fn rows(board: &BoardReader, v: &View) -> Vec<Row> {
    let mut rows: Vec<(usize, [u64; COUNT])> = Vec::new();
    for w in v.workers.iter().filter(|w| w.running) {
        let slot = board.slot(w.slot);
        let k = match rows.iter().position(|(i, _)| *i == w.index) {
            Some(k) => k,
            None => {
                rows.push((w.index, [0; COUNT]));
                rows.len() - 1
            }
        };
        for (d, c) in rows[k].1.iter_mut().zip(slot.counters.iter()) {
            *d += c.load(Ordering::Relaxed);
        }
    }
    rows.sort_by_key(|(i, _)| *i);
    let mut all = [0u64; COUNT];
    for (_, r) in &rows {
        for (a, x) in all.iter_mut().zip(r.iter()) {
            *a += x;
        }
    }
    let mut out: Vec<Row> = rows.into_iter().map(|(i, r)| (i.to_string(), r)).collect();
    out.push(("all".to_string(), all));
    out
}

fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The per-worker families, from `metrics`'s layout.
pub fn write_workers(out: &mut String, rows: &[Row]) {
    let name = "ringstatic_requests_total";
    family(out, name, "Responses by status class and request method (other: any other method, or a request refused before its method was known).", "counter");
    for (w, r) in rows {
        for class in 0..5 {
            for (m, method) in METHODS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{name}{{worker=\"{w}\",code=\"{}xx\",method=\"{method}\"}} {}",
                    class + 1,
                    r[REQUESTS + class * 3 + m]
                );
            }
        }
    }
    for d in DEFS {
        let kind = match d.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        family(out, d.name, d.help, kind);
        for (w, r) in rows {
            match d.label {
                None => {
                    let _ = writeln!(out, "{}{{worker=\"{w}\"}} {}", d.name, r[d.at]);
                }
                Some((label, values)) => {
                    for (k, value) in values.iter().enumerate() {
                        let _ = writeln!(
                            out,
                            "{}{{worker=\"{w}\",{label}=\"{value}\"}} {}",
                            d.name,
                            r[d.at + k]
                        );
                    }
                }
            }
        }
    }
    let name = "ringstatic_response_last_byte_seconds";
    family(out, name, "Time from reading a request to sending the last byte of its response (pipelined requests: of the batch), measured with the worker's coarse clock.", "histogram");
    for (w, r) in rows {
        let mut cumulative = 0;
        for (b, le) in BUCKETS_MS.iter().enumerate() {
            cumulative += r[LATENCY + b];
            let _ = writeln!(
                out,
                "{name}_bucket{{worker=\"{w}\",le=\"{}\"}} {cumulative}",
                *le as f64 / 1000.0
            );
        }
        cumulative += r[LATENCY_OVER];
        let _ = writeln!(
            out,
            "{name}_bucket{{worker=\"{w}\",le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(
            out,
            "{name}_sum{{worker=\"{w}\"}} {}",
            r[LATENCY_SUM_MS] as f64 / 1000.0
        );
        let _ = writeln!(out, "{name}_count{{worker=\"{w}\"}} {cumulative}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_declared_once_and_series_follow_their_family() {
        let mut a = [0u64; COUNT];
        a[REQUESTS + 3] = 7; // 2xx GET
        a[LATENCY] = 2;
        a[LATENCY + 3] = 1;
        a[LATENCY_OVER] = 1;
        a[LATENCY_SUM_MS] = 60_050;
        let rows = vec![("0".to_string(), a), ("all".to_string(), a)];
        let mut out = String::new();
        write_workers(&mut out, &rows);
        assert!(
            out.contains("ringstatic_requests_total{worker=\"0\",code=\"2xx\",method=\"GET\"} 7\n")
        );
        assert!(out.contains(
            "ringstatic_response_last_byte_seconds_bucket{worker=\"all\",le=\"0.005\"} 2\n"
        ));
        assert!(out.contains(
            "ringstatic_response_last_byte_seconds_bucket{worker=\"0\",le=\"0.05\"} 3\n"
        ));
        assert!(out.contains(
            "ringstatic_response_last_byte_seconds_bucket{worker=\"0\",le=\"+Inf\"} 4\n"
        ));
        assert!(out.contains("ringstatic_response_last_byte_seconds_count{worker=\"0\"} 4\n"));
        assert!(out.contains("ringstatic_response_last_byte_seconds_sum{worker=\"0\"} 60.05\n"));
        let mut seen = std::collections::HashSet::new();
        let mut current = String::new();
        for line in out.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap().to_string();
                assert!(seen.insert(name.clone()), "{name} declared twice");
                current = name;
            } else if !line.starts_with('#') {
                assert!(
                    line.starts_with(&current),
                    "{line} outside its family {current}"
                );
            }
        }
    }
}
