//! Typed, validated settings. The command line is the whole configuration: the master parses it,
//! and each worker re-parses the very same arguments (plus a hidden worker flag), so master and
//! workers can never disagree about a setting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// A static-file HTTP/1.1 server for Linux: one pinned io_uring worker per CPU core.
#[derive(Parser, Debug, Clone)]
#[command(name = "ringstatic", version, about, max_term_width = 100)]
pub struct Cli {
    /// Directory to serve (same as --root).
    #[arg(value_name = "ROOT")]
    root_arg: Option<PathBuf>,

    /// Directory to serve [default: public]
    #[arg(long = "root", value_name = "PATH", conflicts_with = "root_arg")]
    root_flag: Option<PathBuf>,

    /// Address to listen on, IPv4 or [IPv6] with a port; repeatable; port 0 picks a free port.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080", value_parser = parse_listen)]
    pub listen: Vec<SocketAddr>,

    /// Number of worker processes, or `auto` for one per CPU in the process's affinity mask.
    #[arg(long, value_name = "N|auto", default_value = "auto", value_parser = parse_workers)]
    pub workers: Workers,

    /// Seconds a cached file's metadata is trusted before it is checked again (0 = check every request).
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = parse_secs)]
    pub cache_valid: Duration,

    /// Value of the Cache-Control header sent with files (absent unless set).
    #[arg(long, value_name = "VALUE", value_parser = parse_header_value)]
    pub cache_control: Option<String>,

    /// Serve path segments that start with a dot (/.well-known/ is always served).
    #[arg(long)]
    pub serve_dotfiles: bool,

    /// Most connections one worker holds open; at the limit it stops accepting until one closes.
    #[arg(long, value_name = "N", default_value = "16384", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Most files each worker keeps open in its cache.
    #[arg(long, value_name = "N", default_value = "10000", value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub cache_entries: u32,

    /// Most bytes of small-file contents each worker keeps in memory (suffixes K, M, G).
    #[arg(long, value_name = "BYTES", default_value = "64M", value_parser = parse_bytes)]
    pub cache_bytes: u64,

    /// Seconds a client has to send a complete request head.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub header_timeout: Duration,

    /// Seconds an idle keep-alive connection stays open between requests.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_secs)]
    pub keepalive_timeout: Duration,

    /// Seconds a response may make no progress (a client that stops reading) before the connection is closed.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_secs)]
    pub send_timeout: Duration,

    /// Seconds a graceful stop (SIGTERM, SIGQUIT) waits for responses in flight.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub shutdown_timeout: Duration,

    /// Internal: run as worker `INDEX:CPU:FD,FD,...` (set by the master, never by hand).
    #[arg(long = "worker-internal", hide = true, value_name = "SPEC", value_parser = parse_worker_spec)]
    pub worker: Option<WorkerSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    Auto,
    Count(usize),
}

/// What the master tells a worker about itself on its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSpec {
    pub index: usize,
    /// The CPU to pin to, or None when pinning is not possible (more workers than CPUs is allowed).
    pub cpu: Option<usize>,
    /// Inherited listening sockets, one per `--listen` address, in the same order.
    pub fds: Vec<i32>,
}

impl Cli {
    pub fn root(&self) -> PathBuf {
        self.root_arg
            .clone()
            .or_else(|| self.root_flag.clone())
            .unwrap_or_else(|| PathBuf::from("public"))
    }
}

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>().map_err(|_| {
        format!("`{s}` is not ADDR:PORT (examples: 127.0.0.1:8080, 0.0.0.0:80, [::1]:8080)")
    })
}

fn parse_workers(s: &str) -> Result<Workers, String> {
    if s.eq_ignore_ascii_case("auto") {
        return Ok(Workers::Auto);
    }
    match s.parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(Workers::Count(n)),
        _ => Err(format!("`{s}` is not `auto` or a number from 1 to 1024")),
    }
}

/// Seconds as a decimal number, optionally suffixed with `s` or `ms`.
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let err = || format!("`{s}` is not a duration in seconds (examples: 10, 0.5, 250ms)");
    let (num, scale) = if let Some(ms) = s.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(sec) = s.strip_suffix('s') {
        (sec, 1.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| err())?;
    if !v.is_finite() || v < 0.0 || v * scale > 86_400.0 * 365.0 {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(v * scale))
}

fn parse_bytes(s: &str) -> Result<u64, String> {
    let err = || format!("`{s}` is not a size in bytes (examples: 65536, 64K, 64M, 1G)");
    let t = s.trim();
    let (num, mult) = match t.as_bytes().last() {
        Some(b'k' | b'K') => (&t[..t.len() - 1], 1u64 << 10),
        Some(b'm' | b'M') => (&t[..t.len() - 1], 1 << 20),
        Some(b'g' | b'G') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>().ok().and_then(|n| n.checked_mul(mult)).ok_or_else(err)
}

fn parse_header_value(s: &str) -> Result<String, String> {
    if s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0 || (b < 0x20 && b != b'\t')) {
        return Err("a header value cannot contain control characters".into());
    }
    Ok(s.trim().to_string())
}

fn parse_worker_spec(s: &str) -> Result<WorkerSpec, String> {
    let err = || format!("bad internal worker spec `{s}`");
    let mut parts = s.splitn(3, ':');
    let index = parts.next().and_then(|p| p.parse().ok()).ok_or_else(err)?;
    let cpu = match parts.next().ok_or_else(err)? {
        "-" => None,
        c => Some(c.parse().map_err(|_| err())?),
    };
    let fds = parts
        .next()
        .ok_or_else(err)?
        .split(',')
        .map(|f| f.parse::<i32>().map_err(|_| err()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(WorkerSpec { index, cpu, fds })
}

impl WorkerSpec {
    pub fn to_arg(&self) -> String {
        let cpu = self.cpu.map_or("-".to_string(), |c| c.to_string());
        let fds: Vec<String> = self.fds.iter().map(|f| f.to_string()).collect();
        format!("{}:{}:{}", self.index, cpu, fds.join(","))
    }
}

/// Settings a worker needs on its request path, in the units it uses.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub cache_valid_ms: u64,
    pub cache_control: Option<String>,
    pub serve_dotfiles: bool,
    pub max_connections: u32,
    pub cache_entries: u32,
    pub cache_bytes: u64,
    pub header_timeout_ms: u64,
    pub keepalive_timeout_ms: u64,
    pub send_timeout_ms: u64,
    pub shutdown_timeout_ms: u64,
}

impl From<&Cli> for ServeConfig {
    fn from(c: &Cli) -> Self {
        let ms = |d: Duration| d.as_millis().min(u64::MAX as u128) as u64;
        ServeConfig {
            cache_valid_ms: ms(c.cache_valid),
            cache_control: c.cache_control.clone().filter(|v| !v.is_empty()),
            serve_dotfiles: c.serve_dotfiles,
            max_connections: c.max_connections,
            cache_entries: c.cache_entries,
            cache_bytes: c.cache_bytes,
            header_timeout_ms: ms(c.header_timeout),
            keepalive_timeout_ms: ms(c.keepalive_timeout),
            send_timeout_ms: ms(c.send_timeout),
            shutdown_timeout_ms: ms(c.shutdown_timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_secs("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_secs("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_secs("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_secs("3s").unwrap(), Duration::from_secs(3));
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("NaN").is_err());
        assert!(parse_secs("inf").is_err());
        assert!(parse_secs("x").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("64M").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("100").unwrap(), 100);
        assert!(parse_bytes("99999999999999999999G").is_err());
        assert!(parse_bytes("M").is_err());
    }

    #[test]
    fn worker_spec_round_trips() {
        let s = WorkerSpec { index: 3, cpu: Some(7), fds: vec![4, 9] };
        assert_eq!(parse_worker_spec(&s.to_arg()).unwrap(), s);
        let s = WorkerSpec { index: 0, cpu: None, fds: vec![3] };
        assert_eq!(parse_worker_spec(&s.to_arg()).unwrap(), s);
        assert!(parse_worker_spec("1:2").is_err());
    }

    #[test]
    fn header_values_refuse_control_chars() {
        assert!(parse_header_value("max-age=60").is_ok());
        assert!(parse_header_value("a\r\nX-Evil: 1").is_err());
    }

    #[test]
    fn workers_flag() {
        assert_eq!(parse_workers("auto").unwrap(), Workers::Auto);
        assert_eq!(parse_workers("4").unwrap(), Workers::Count(4));
        assert!(parse_workers("0").is_err());
    }
}
