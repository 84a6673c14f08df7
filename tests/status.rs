//! The status listener (`--status-listen`): `/metrics` in the Prometheus text format (checked
//! with the real parser, Python's `prometheus_client`), `/healthz`, `/readyz`, and
//! `--drain-delay`: on SIGTERM readiness turns to 503 at once while requests are still served.
mod common;
use common::*;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// GET on the status listener: (status, body).
fn status_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let r = request_close(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: status\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    (r.status, r.body_str())
}

/// Polls `path` until it answers `want` (10 s at most).
fn wait_status(addr: SocketAddr, path: &str, want: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        // The address may be closed for a moment (a binary upgrade's handover).
        if try_connect(addr, Duration::from_secs(1)).is_ok() && status_get(addr, path).0 == want {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Parses an exposition with prometheus_client's parser and returns each sample as
/// `name{sorted labels}` -> value; None (after saying so) when the parser is not installed.
fn parse_with_prometheus_client(text: &str, dir: &TempDir) -> Option<HashMap<String, f64>> {
    // Debian's package is for the system's python3, which another python3 may shadow in PATH.
    let python = ["python3", "/usr/bin/python3"].into_iter().find(|py| {
        matches!(
            Command::new(py).args(["-c", "import prometheus_client.parser"]).output(),
            Ok(ref o) if o.status.success()
        )
    });
    let Some(python) = python else {
        eprintln!(
            "skipped: python3 with prometheus_client is missing (Debian: python3-prometheus-client); the exposition was not checked by a real parser"
        );
        return None;
    };
    let file = dir.write("metrics.txt", text.as_bytes());
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
seen = set()
for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in fam.samples:
        key = s.name + "{" + ",".join(k + "=" + v for k, v in sorted(s.labels.items())) + "}"
        if key in seen:
            raise SystemExit("duplicate series " + key)
        seen.add(key)
        print(fam.type, key, repr(float(s.value)))
"#;
    let out = run(
        Command::new(python).args(["-c", script, s(&file)]),
        Duration::from_secs(20),
    );
    assert!(
        out.ok(),
        "prometheus_client refused the exposition: {}",
        out.describe()
    );
    let mut m = HashMap::new();
    for line in out.stdout.lines() {
        let mut p = line.splitn(3, ' ');
        let (_kind, key, v) = (p.next().unwrap(), p.next().unwrap(), p.next().unwrap());
        m.insert(key.to_string(), v.parse::<f64>().unwrap());
    }
    Some(m)
}

#[test]
fn metrics_parse_and_count_what_was_served() {
    let d = TempDir::new("status-metrics");
    d.write("www/index.html", b"hello metrics\n");
    let srv = Server::start(
        &d.join("www"),
        &["--status-listen", "127.0.0.1:0", "--header-timeout", "1"],
    );
    let st = srv.status_addr();
    assert!(wait_status(st, "/healthz", 200), "{}", srv.log());
    assert!(wait_status(st, "/readyz", 200), "{}", srv.log());
    for _ in 0..5 {
        assert_eq!(get(srv.addr, "/").status, 200);
    }
    let missing = get(srv.addr, "/missing");
    assert_eq!(missing.status, 404);
    let head = request(srv.addr, &head_req("/", &[]));
    assert_eq!(head.status, 200);
    // A client that sends half a head gets 408 at the header timeout, then the close.
    let mut slow = Conn::open(srv.addr);
    slow.send(b"GET / HTTP/1.1\r\n");
    let timed_out = slow.read_response(false);
    assert_eq!(timed_out.status, 408);
    slow.expect_closed(Duration::from_secs(5), "half a head");

    // Counters travel on the worker's tick (250 ms): wait until all of them are in.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let (code, body) = status_get(st, "/metrics");
        assert_eq!(code, 200);
        let want = "ringstatic_timeouts_total{worker=\"all\",kind=\"header\"} 1\n";
        if body
            .contains("ringstatic_requests_total{worker=\"all\",code=\"2xx\",method=\"GET\"} 5\n")
            && body.contains(want)
        {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never caught up:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let Some(m) = parse_with_prometheus_client(&text, &d) else {
        return;
    };
    let v = |k: &str| {
        *m.get(k)
            .unwrap_or_else(|| panic!("no sample {k} in:\n{text}"))
    };
    assert_eq!(
        v("ringstatic_requests_total{code=2xx,method=GET,worker=all}"),
        5.0
    );
    assert_eq!(
        v("ringstatic_requests_total{code=2xx,method=HEAD,worker=all}"),
        1.0
    );
    assert_eq!(
        v("ringstatic_requests_total{code=4xx,method=GET,worker=all}"),
        1.0
    );
    assert_eq!(
        v("ringstatic_response_body_bytes_total{worker=all}"),
        5.0 * 14.0 + (missing.body.len() + timed_out.body.len()) as f64
    );
    assert!(v("ringstatic_connections_accepted_total{worker=all}") >= 8.0);
    assert_eq!(v("ringstatic_timeouts_total{kind=header,worker=all}"), 1.0);
    assert!(v("ringstatic_cache_hits_total{worker=all}") >= 4.0);
    assert!(v("ringstatic_cache_misses_total{worker=all}") >= 2.0);
    // Every complete request's last byte is in the histogram; the per-worker series add up to
    // "all".
    let timed = v("ringstatic_response_last_byte_seconds_count{worker=all}");
    assert!(timed >= 7.0, "{timed}");
    assert_eq!(
        v("ringstatic_response_last_byte_seconds_count{worker=0}")
            + v("ringstatic_response_last_byte_seconds_count{worker=1}"),
        timed
    );
    assert_eq!(v("ringstatic_workers{state=accepting}"), 2.0);
    assert_eq!(v("ringstatic_ready{}"), 1.0);
    assert!(v("ringstatic_uptime_seconds{}") > 0.0);
    assert_eq!(v("ringstatic_worker_restarts_total{}"), 0.0);
    assert_eq!(v("ringstatic_submission_queue_full_total{worker=all}"), 0.0);

    // A worker killed is restarted and counted; /healthz stays 200 meanwhile (the other one
    // accepts).
    let workers = srv.wait_workers(2, Duration::from_secs(5));
    // SAFETY: kill(2) on a worker of the server we started.
    unsafe { libc::kill(workers[0], libc::SIGKILL) };
    assert_eq!(status_get(st, "/healthz").0, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !status_get(st, "/metrics")
        .1
        .contains("ringstatic_worker_restarts_total 1\n")
    {
        assert!(
            Instant::now() < deadline,
            "restart not counted: {}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(wait_status(st, "/readyz", 200));
}

#[test]
fn drain_delay_turns_readiness_off_and_keeps_serving_until_it_ends() {
    let d = TempDir::new("status-drain");
    d.write("www/index.html", b"still here\n");
    let mut srv = Server::start(
        &d.join("www"),
        &["--status-listen", "127.0.0.1:0", "--drain-delay", "5"],
    );
    let st = srv.status_addr();
    assert!(wait_status(st, "/readyz", 200), "{}", srv.log());
    // A keep-alive connection opened before the stop keeps working through the delay.
    let mut kept = Conn::open(srv.addr);
    kept.send(&build_req("GET", "/", &[], false));
    assert_eq!(kept.read_response(false).status, 200);

    srv.signal(libc::SIGTERM);
    assert!(wait_status(st, "/readyz", 503), "{}", srv.log());
    assert_eq!(status_get(st, "/readyz").1, "stopping\n");
    // Still serving normally: new connections and the old one, no Connection: close.
    let r = get(srv.addr, "/");
    assert_eq!((r.status, r.body_str().as_str()), (200, "still here\n"));
    kept.send(&build_req("GET", "/", &[], false));
    let r = kept.read_response(false);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), None, "{}", r.describe());
    assert_eq!(status_get(st, "/healthz").0, 200, "workers still accept");
    assert!(srv.log().contains("not ready from now"), "{}", srv.log());
    drop(kept);
    // Then it stops as a graceful stop does, exit status 0.
    let status = srv.wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}: {}",
        srv.log()
    );
    assert!(srv.log().contains("graceful stop"), "{}", srv.log());
}

#[test]
fn status_listener_answers_only_what_it_serves() {
    let d = TempDir::new("status-routes");
    d.write("www/index.html", b"x");
    let srv = Server::start(&d.join("www"), &["--status-listen", "127.0.0.1:0"]);
    let st = srv.status_addr();
    assert!(wait_status(st, "/readyz", 200), "{}", srv.log());
    assert_eq!(status_get(st, "/nothing").0, 404);
    assert_eq!(status_get(st, "/metrics?x=1").0, 200);
    let r = request_close(
        st,
        b"POST /metrics HTTP/1.1\r\nHost: s\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
    let r = request_close(st, b"HEAD /readyz HTTP/1.1\r\nHost: s\r\n\r\n");
    assert_eq!(r.status, 200);
    let r = request_close(st, b"garbage\r\n\r\n");
    assert_eq!(r.status, 400);
    // A client trickling its head cannot hold the status listener (answered one at a time):
    // it gets a bounded time for the whole head, and the next client its answer.
    let mut slow = Conn::open(st);
    let trickle = std::thread::spawn(move || {
        for _ in 0..30 {
            if slow.try_send(b"X").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(status_get(st, "/healthz").0, 200);
    trickle.join().unwrap();
    // The server itself is untouched by all that.
    assert_eq!(get(srv.addr, "/").status, 200);
}

#[test]
fn bad_balancer_flags_name_what_is_wrong() {
    let d = TempDir::new("status-flags");
    d.mkdir("www");
    let root = d.join("www");
    for (args, needle) in [
        (vec!["--status-listen", "9100"], "`9100` is not ADDR:PORT"),
        (vec!["--drain-delay", "soon"], "`soon` is not a duration"),
        (
            vec!["--trusted-proxy", "10.0.0.1/8"],
            "`10.0.0.1/8` is not a CIDR range",
        ),
        (
            vec!["--listen", "127.0.0.1:0,proxy"],
            "`proxy` in `127.0.0.1:0,proxy` is not a listener option",
        ),
    ] {
        let mut all = args.clone();
        all.push(s(&root));
        let (st, _out, err) = run_binary(&all, Duration::from_secs(10));
        assert_eq!(st.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // A status address that cannot be bound: one line naming it, exit 1, before any worker.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (st, _out, err) = run_binary(
        &[
            "--listen",
            "127.0.0.1:0",
            "--status-listen",
            &addr,
            s(&root),
        ],
        Duration::from_secs(10),
    );
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot listen on status address {addr}")),
        "{err}"
    );
}

/// Kills, on drop, every process whose command line mentions this test's root: a binary
/// upgrade's new master is not our child.
struct KillMentioning(String);

impl Drop for KillMentioning {
    fn drop(&mut self) {
        kill_processes_mentioning(&self.0);
    }
}

#[test]
fn binary_upgrade_hands_the_status_address_to_the_new_master() {
    let d = TempDir::new("status-usr2");
    d.write("www/index.html", b"x");
    let root = d.join("www");
    let _cleanup = KillMentioning(s(&root).to_string());
    let pf = d.join("rs.pid");
    let port = free_port();
    let status = format!("127.0.0.1:{port}");
    let mut srv = Server::start(&root, &["--pid-file", s(&pf), "--status-listen", &status]);
    let st = srv.status_addr();
    assert!(wait_status(st, "/readyz", 200), "{}", srv.log());
    let uptime = |body: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix("ringstatic_start_time_seconds "))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no start time in {body}"))
    };
    let old_start = uptime(&status_get(st, "/metrics").1);
    std::thread::sleep(Duration::from_millis(50));
    srv.signal(libc::SIGUSR2);
    let old = srv
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("old master did not retire\n{}", srv.log()));
    assert!(old.success(), "{}", srv.log());
    // The new master answers on the same address, and it is the new one.
    assert!(wait_status(st, "/readyz", 200), "{}", srv.log());
    let new_start = uptime(&status_get(st, "/metrics").1);
    assert!(new_start > old_start, "{new_start} after {old_start}");
    let new_pid: i32 = std::fs::read_to_string(&pf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(2) on the new master, which the pid file names and the cleanup also covers.
    unsafe { libc::kill(new_pid, libc::SIGTERM) };
    assert!(wait_gone(new_pid, Duration::from_secs(20)));
}

#[test]
fn coded_responses_and_compressions_are_counted() {
    let d = TempDir::new("status-coded");
    let js: String = (0..200)
        .map(|i| format!("function f{i}() {{ return {i}; }}\n"))
        .collect();
    d.write("www/app.js", js.as_bytes());
    let srv = Server::start(&d.join("www"), &["--status-listen", "127.0.0.1:0"]);
    let st = srv.status_addr();
    for _ in 0..2 {
        let r = get_with(srv.addr, "/app.js", &["Accept-Encoding: br"]);
        assert_eq!(r.header("content-encoding"), Some("br"), "{}", r.describe());
    }
    assert_eq!(get(srv.addr, "/app.js").header("content-encoding"), None);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = status_get(st, "/metrics").1;
        let br = "ringstatic_coded_responses_total{worker=\"all\",coding=\"br\"} 2\n";
        // Each worker compresses a version once: one or two compressions, depending on
        // which worker the two requests reached.
        let once = "ringstatic_compressions_total{worker=\"all\"} 1\n";
        let twice = "ringstatic_compressions_total{worker=\"all\"} 2\n";
        if body.contains(br) && (body.contains(once) || body.contains(twice)) {
            assert!(body
                .contains("ringstatic_coded_responses_total{worker=\"all\",coding=\"gzip\"} 0\n"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "coded responses not counted:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
