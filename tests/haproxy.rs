//! A real HAProxy (Debian's `haproxy`) on loopback in front of two ringstatic instances, as the
//! README's "Behind a load balancer" section configures it: health checks on each instance's
//! `/readyz` (status listener), PROXY protocol v2 to the backends. Under steady keep-alive load
//! through HAProxy, each instance in turn gets SIGTERM with a drain delay and is started again:
//! not one request may fail, and the access logs hold the client's address (127.0.0.1), never
//! HAProxy's (it connects to the backends from 127.0.0.3, the only trusted proxy).
mod common;
use common::*;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The HAProxy configuration of the README, with this test's ports.
fn haproxy_config(front: u16, backends: &[(u16, u16)]) -> String {
    let mut c = format!(
        "global
    maxconn 512

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend www
    bind 127.0.0.1:{front}
    default_backend ringstatic

backend ringstatic
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    source 127.0.0.3
    default-server send-proxy-v2 check inter 200ms fall 1 rise 2
"
    );
    for (i, (port, status)) in backends.iter().enumerate() {
        c.push_str(&format!(
            "    server rs{i} 127.0.0.1:{port} check port {status}\n"
        ));
    }
    c
}

struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One backend instance's command line (the same for its restart).
fn instance_args(d: &TempDir, name: &str, port: u16, status: u16) -> Vec<String> {
    [
        "--listen",
        &format!("127.0.0.1:{port},proxy-protocol"),
        "--trusted-proxy",
        "127.0.0.3",
        "--status-listen",
        &format!("127.0.0.1:{status}"),
        "--drain-delay",
        "1.5",
        "--workers",
        "1",
        "--access-log",
        d.join(format!("{name}.log")).to_str().unwrap(),
        d.join("www").to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn log_lines(d: &TempDir, name: &str) -> Vec<String> {
    std::fs::read_to_string(d.join(format!("{name}.log")))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits (bounded) until `name`'s access log grows past `n` lines: HAProxy sends it traffic.
fn wait_traffic(d: &TempDir, name: &str, n: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while log_lines(d, name).len() <= n {
        assert!(
            Instant::now() < deadline,
            "{what}: {name} got no traffic from HAProxy"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn rolling_restart_behind_haproxy_loses_no_request() {
    if Command::new("haproxy").arg("-v").output().is_err() {
        eprintln!("skipped: haproxy is not installed (Debian: apt-get install haproxy)");
        return;
    }
    let d = TempDir::new("haproxy");
    let small = pattern_bytes(700, 3);
    let big = pattern_bytes(200 * 1024, 4);
    d.write("www/small.txt", &small);
    d.write("www/big.bin", &big);
    let targets = vec![
        LoadTarget {
            path: "/small.txt".into(),
            body: Arc::new(small),
        },
        LoadTarget {
            path: "/big.bin".into(),
            body: Arc::new(big),
        },
    ];
    let names = ["a", "b"];
    let ports: Vec<(u16, u16)> = names.iter().map(|_| (free_port(), free_port())).collect();
    let mut servers: Vec<Server> = names
        .iter()
        .zip(&ports)
        .map(|(n, &(p, s))| Server::spawn(&instance_args(&d, n, p, s), 1))
        .collect();
    let front = free_port();
    let cfg = d.write("haproxy.cfg", haproxy_config(front, &ports).as_bytes());
    let check = run(
        Command::new("haproxy").args(["-c", "-f", cfg.to_str().unwrap()]),
        Duration::from_secs(10),
    );
    assert!(check.ok(), "haproxy -c: {}", check.describe());
    let hap_log = std::fs::File::create(d.join("haproxy.out")).unwrap();
    let _hap = Haproxy(
        Command::new("haproxy")
            .args(["-db", "-f", cfg.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(hap_log.try_clone().unwrap())
            .stderr(hap_log)
            .spawn()
            .expect("start haproxy"),
    );
    let front: SocketAddr = format!("127.0.0.1:{front}").parse().unwrap();
    let hap_out = || std::fs::read_to_string(d.join("haproxy.out")).unwrap_or_default();
    // Both backends up (HAProxy's checks passed) before the load starts.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let _ = try_get(front, "/small.txt");
        if names.iter().all(|n| !log_lines(&d, n).is_empty()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "HAProxy never used both backends:\n{}",
            hap_out()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let load = Load::start(front, 4, targets, Duration::from_secs(50));
    assert!(
        load.wait_ok(200, Duration::from_secs(15)),
        "no load through HAProxy"
    );
    for (k, name) in names.iter().enumerate() {
        let (port, status) = ports[k];
        servers[k].signal(libc::SIGTERM);
        let exited = servers[k].wait_exit(Duration::from_secs(20));
        assert!(
            exited.is_some_and(|s| s.success()),
            "{name} did not stop cleanly: {exited:?}\n{}",
            servers[k].log()
        );
        // The other instance carried the load alone meanwhile.
        let before = log_lines(&d, name).len();
        servers[k] = Server::spawn(&instance_args(&d, name, port, status), 1);
        wait_traffic(&d, name, before, "after its restart");
        assert_eq!(
            load.failures_so_far(),
            0,
            "failed requests after restarting {name}; HAProxy said:\n{}",
            hap_out()
        );
    }
    let ok_before_end = load.ok_so_far();
    assert!(load.wait_ok(ok_before_end + 100, Duration::from_secs(15)));
    let report = load.stop();
    assert_eq!(
        report.failures,
        0,
        "{}\nHAProxy said:\n{}",
        report.describe(),
        hap_out()
    );
    // HAProxy took each instance out because its /readyz said 503 (the drain delay), not
    // because its port stopped answering.
    let said = hap_out();
    for i in 0..names.len() {
        let down = said
            .lines()
            .find(|l| l.contains(&format!("Server ringstatic/rs{i} is DOWN")));
        assert!(
            down.is_some_and(|l| l.contains("Layer7 wrong status") && l.contains("503")),
            "rs{i}: {down:?}\nHAProxy said:\n{said}"
        );
    }
    for name in names {
        let lines = log_lines(&d, name);
        assert!(lines.len() > 10, "{name}: {} lines", lines.len());
        let wrong: Vec<&String> = lines
            .iter()
            .filter(|l| !l.starts_with("127.0.0.1 "))
            .collect();
        assert!(
            wrong.is_empty(),
            "{name}: lines without the client's address (HAProxy's is 127.0.0.3): {:#?}",
            &wrong[..wrong.len().min(5)]
        );
    }
}
