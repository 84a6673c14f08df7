//! Command line: help, errors, root and listen options.
mod common;
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

/// Split clap-style help into one text segment per option (from a line whose
/// first non-blank character is '-' up to the next such line).
fn option_segments(help: &str) -> Vec<String> {
    let mut segs: Vec<String> = Vec::new();
    for line in help.lines() {
        if line.trim_start().starts_with('-') {
            segs.push(String::new());
        }
        if let Some(s) = segs.last_mut() {
            s.push_str(line);
            s.push('\n');
        }
    }
    segs
}

fn segment_for<'a>(segs: &'a [String], flag: &str) -> Option<&'a String> {
    segs.iter().find(|s| {
        let first = s.lines().next().unwrap_or("");
        first
            .split(|c: char| c.is_whitespace() || c == ',' || c == '=' || c == '<' || c == '[')
            .any(|w| w == flag)
    })
}

fn mentions_number(seg: &str, value: f64) -> bool {
    seg.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|t| t.trim_matches('.').parse::<f64>().ok())
        .any(|v| v == value)
}

#[test]
fn help_exits_0_and_lists_every_flag_with_defaults() {
    let (st, out, err) = run_binary(&["--help"], T);
    assert_eq!(st.code(), Some(0), "stderr: {}", err);
    let segs = option_segments(&out);
    for flag in [
        "--root",
        "--listen",
        "--workers",
        "--cache-valid",
        "--cache-control",
        "--serve-dotfiles",
        "--defer-accept",
        "--max-connections",
        "--header-timeout",
        "--keepalive-timeout",
        "--send-timeout",
        "--shutdown-timeout",
        "--help",
    ] {
        assert!(
            segment_for(&segs, flag).is_some(),
            "--help does not describe {}:\n{}",
            flag,
            out
        );
    }
    for (flag, default) in [
        ("--cache-valid", 1.0),
        ("--header-timeout", 10.0),
        ("--keepalive-timeout", 60.0),
        ("--send-timeout", 60.0),
        ("--shutdown-timeout", 10.0),
    ] {
        let seg = segment_for(&segs, flag).unwrap();
        assert!(
            seg.to_ascii_lowercase().contains("default") && mentions_number(seg, default),
            "--help does not show the default {} of {}:\n{}",
            default,
            flag,
            seg
        );
    }
    // Positional ROOT is mentioned in the usage.
    assert!(out.to_ascii_uppercase().contains("ROOT"), "{}", out);
}

#[test]
fn defer_accept_takes_on_or_off() {
    let d = TempDir::new("cli");
    let (st, out, err) = run_binary(&["--defer-accept", "maybe", d.path().to_str().unwrap()], T);
    assert_eq!(st.code(), Some(2), "stdout: {}\nstderr: {}", out, err);
    assert!(
        err.contains("--defer-accept") && err.contains("on or off"),
        "stderr: {}",
        err
    );
    let (st, _, err) = run_binary(&["--help"], T);
    assert_eq!(st.code(), Some(0), "stderr: {}", err);
}

#[test]
fn unknown_flag_exits_2_with_clap_error() {
    let d = TempDir::new("cli");
    let (st, out, err) = run_binary(&["--no-such-flag-xyz", d.path().to_str().unwrap()], T);
    assert_eq!(st.code(), Some(2), "stdout: {}\nstderr: {}", out, err);
    assert!(err.contains("--no-such-flag-xyz"), "stderr: {}", err);
    assert!(!out.contains("listening on"), "{}", out);
}

#[test]
fn missing_root_exits_1_with_one_line_naming_path() {
    let d = TempDir::new("cli");
    let missing = d.join("does-not-exist-root");
    let m = missing.to_str().unwrap();
    let (st, out, err) = run_binary(&["--listen", "127.0.0.1:0", m], T);
    assert_eq!(st.code(), Some(1), "stdout: {}\nstderr: {}", out, err);
    assert!(err.contains(m), "stderr does not name {}: {:?}", m, err);
    assert_eq!(
        err.trim().lines().count(),
        1,
        "expected one line on stderr: {:?}",
        err
    );
    assert!(!out.contains("listening on"), "{}", out);
}

#[test]
fn root_that_is_a_file_exits_1_with_one_line_naming_path() {
    let d = TempDir::new("cli");
    let f = d.write("plain-file.txt", b"x");
    let f = f.to_str().unwrap();
    let (st, out, err) = run_binary(&["--listen", "127.0.0.1:0", "--root", f], T);
    assert_eq!(st.code(), Some(1), "stdout: {}\nstderr: {}", out, err);
    assert!(err.contains(f), "stderr does not name {}: {:?}", f, err);
    assert_eq!(
        err.trim().lines().count(),
        1,
        "expected one line on stderr: {:?}",
        err
    );
    assert!(!out.contains("listening on"), "{}", out);
}

#[test]
fn address_already_bound_exits_1_naming_address() {
    let d = TempDir::new("cli");
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let (st, out, err) = run_binary(&["--listen", &addr, d.path().to_str().unwrap()], T);
    assert_eq!(st.code(), Some(1), "stdout: {}\nstderr: {}", out, err);
    assert!(
        err.contains(&addr),
        "stderr does not name {}: {:?}",
        addr,
        err
    );
    assert_eq!(
        err.trim().lines().count(),
        1,
        "expected one line on stderr: {:?}",
        err
    );
    assert!(!out.contains("listening on"), "{}", out);
    drop(l);
}

#[test]
fn root_flag_is_an_alternative_to_positional_root() {
    let d = TempDir::new("cli");
    d.write("a.txt", b"via --root\n");
    let s = Server::spawn(
        &[
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--workers".into(),
            "2".into(),
            "--root".into(),
            d.path().to_str().unwrap().into(),
        ],
        1,
    );
    let r = get(s.addr, "/a.txt");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"via --root\n");
}

#[test]
fn listen_is_repeatable_and_every_address_serves() {
    let d = TempDir::new("cli");
    d.write("a.txt", b"multi\n");
    // Two free ports (bound and released just before the start).
    let p1 = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let p2 = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let s = Server::spawn(
        &[
            "--listen".into(),
            p1.to_string(),
            "--listen".into(),
            p2.to_string(),
            "--workers".into(),
            "2".into(),
            d.path().to_str().unwrap().into(),
        ],
        2,
    );
    let seen = s.listening.lock().unwrap().clone();
    assert!(
        seen.contains(&p1) && seen.contains(&p2),
        "listening lines: {:?}",
        seen
    );
    for a in [p1, p2] {
        let r = get(a, "/a.txt");
        assert_eq!(r.status, 200, "{}: {}", a, r.describe());
        assert_eq!(r.body, b"multi\n");
    }
}

#[test]
fn workers_auto_and_decimal_cache_valid_are_accepted() {
    let d = TempDir::new("cli");
    d.write("a.txt", b"auto\n");
    let s = Server::spawn(
        &[
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--workers".into(),
            "auto".into(),
            "--cache-valid".into(),
            "0.5".into(),
            d.path().to_str().unwrap().into(),
        ],
        1,
    );
    let r = get(s.addr, "/a.txt");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"auto\n");
    assert!(
        !s.worker_pids().is_empty(),
        "no worker processes with --workers auto"
    );
}

#[test]
fn listening_line_reports_the_actual_port() {
    let d = TempDir::new("cli");
    d.write("a.txt", b"x\n");
    let s = Server::start(d.path(), &[]);
    assert_ne!(s.addr.port(), 0, "listening line shows port 0");
    assert_eq!(s.addr.ip().to_string(), "127.0.0.1");
    assert_eq!(get(s.addr, "/a.txt").status, 200);
}

#[test]
fn ipv6_loopback_listener_serves() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: ipv6_loopback_listener_serves: ::1 cannot be bound on this machine");
        return;
    }
    let d = TempDir::new("cli6");
    d.write("a.txt", b"six\n");
    let s = Server::spawn(
        &[
            "--listen".into(),
            "[::1]:0".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--workers".into(),
            "2".into(),
            d.path().to_str().unwrap().into(),
        ],
        2,
    );
    let seen = s.listening.lock().unwrap().clone();
    let v6 = seen
        .iter()
        .copied()
        .find(|a| a.is_ipv6())
        .expect("an IPv6 listening line");
    assert_ne!(v6.port(), 0, "the real port is printed");
    let r = get(v6, "/a.txt");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"six\n");
}
