//! Parsers for option values (addresses, durations, sizes, codings, the worker's hidden spec):
//! each turns text into a typed value or a one-line reason clap prints with the option's name.

use super::*;

pub(crate) fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err("expected on or off".to_string()),
    }
}

/// A `--listen` value: the address, and its options after commas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenSpec {
    pub addr: SocketAddr,
    /// Connections must start with a PROXY protocol header.
    pub proxy_protocol: bool,
    /// Connections speak TLS.
    pub tls: bool,
}

impl std::fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.addr)?;
        if self.tls {
            f.write_str(",tls")?;
        }
        if self.proxy_protocol {
            f.write_str(",proxy-protocol")?;
        }
        Ok(())
    }
}

pub(crate) fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>().map_err(|_| {
        format!("`{s}` is not ADDR:PORT (examples: 127.0.0.1:8080, 0.0.0.0:80, [::1]:8080)")
    })
}

pub(crate) fn parse_listen(s: &str) -> Result<ListenSpec, String> {
    let mut parts = s.split(',');
    let addr = parse_addr(parts.next().unwrap_or(""))?;
    let mut spec = ListenSpec {
        addr,
        proxy_protocol: false,
        tls: false,
    };
    for opt in parts {
        match opt {
            "proxy-protocol" => spec.proxy_protocol = true,
            "tls" => spec.tls = true,
            _ => {
                return Err(format!(
                "`{opt}` in `{s}` is not a listener option (the options are: tls, proxy-protocol)"
            ))
            }
        }
    }
    Ok(spec)
}

pub(crate) fn parse_workers(s: &str) -> Result<Workers, String> {
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

/// A duration that must not be zero.
pub(crate) fn parse_positive_secs(s: &str) -> Result<Duration, String> {
    let d = parse_secs(s)?;
    if d.is_zero() {
        return Err(format!("`{s}` must be more than 0 seconds"));
    }
    Ok(d)
}

pub(crate) fn parse_bytes(s: &str) -> Result<u64, String> {
    let err = || format!("`{s}` is not a size in bytes (examples: 65536, 64K, 64M, 1G)");
    let t = s.trim();
    let (num, mult) = match t.as_bytes().last() {
        Some(b'k' | b'K') => (&t[..t.len() - 1], 1u64 << 10),
        Some(b'm' | b'M') => (&t[..t.len() - 1], 1 << 20),
        Some(b'g' | b'G') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(err)
}

/// `br,zstd,gzip` (any of them, any order) or `off`.
pub(crate) fn parse_codings(s: &str) -> Result<CodingSet, String> {
    if s.trim().eq_ignore_ascii_case("off") {
        return Ok(CodingSet(0));
    }
    let mut set = CodingSet(0);
    for t in s.split(',').map(str::trim) {
        let c = Coding::CODED
            .into_iter()
            .find(|c| t.eq_ignore_ascii_case(c.token()))
            .ok_or_else(|| {
                format!(
                    "`{t}` is not a content coding: use br, zstd, gzip (comma-separated) or off"
                )
            })?;
        set.0 |= 1 << c.index();
    }
    Ok(set)
}

pub(crate) fn parse_header_value(s: &str) -> Result<String, String> {
    if s.bytes()
        .any(|b| b == b'\r' || b == b'\n' || b == 0 || (b < 0x20 && b != b'\t'))
    {
        return Err("a header value cannot contain control characters".into());
    }
    Ok(s.trim().to_string())
}

pub(crate) fn parse_worker_spec(s: &str) -> Result<WorkerSpec, String> {
    let err = || format!("bad internal worker spec `{s}`");
    let mut parts = s.splitn(5, ':');
    let index = parts.next().and_then(|p| p.parse().ok()).ok_or_else(err)?;
    let cpu = match parts.next().ok_or_else(err)? {
        "-" => None,
        c => Some(c.parse().map_err(|_| err())?),
    };
    let fds = parts
        .next()
        .ok_or_else(err)?
        .split(',')
        .filter(|f| !f.is_empty())
        .map(|f| {
            let digits = f.trim_end_matches(['p', 't']);
            let kind = ListenerKind {
                proxy: f[digits.len()..].contains('p'),
                tls: f[digits.len()..].contains('t'),
            };
            digits
                .parse::<i32>()
                .map(|fd| (fd, kind))
                .map_err(|_| err())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let board = match parts.next() {
        None | Some("-") => None,
        Some(b) => {
            let (fd, slot) = b.split_once('/').ok_or_else(err)?;
            Some((
                fd.parse().map_err(|_| err())?,
                slot.parse().map_err(|_| err())?,
            ))
        }
    };
    let ticket_secret = match parts.next() {
        None | Some("-") => None,
        Some(fd) => Some(fd.parse().map_err(|_| err())?),
    };
    Ok(WorkerSpec {
        index,
        cpu,
        fds,
        board,
        ticket_secret,
    })
}

impl WorkerSpec {
    pub fn to_arg(&self) -> String {
        let cpu = self.cpu.map_or("-".to_string(), |c| c.to_string());
        let fds: Vec<String> = self
            .fds
            .iter()
            .map(|&(fd, k)| {
                format!(
                    "{fd}{}{}",
                    if k.proxy { "p" } else { "" },
                    if k.tls { "t" } else { "" }
                )
            })
            .collect();
        let board = self
            .board
            .map_or("-".to_string(), |(fd, slot)| format!("{fd}/{slot}"));
        let secret = self
            .ticket_secret
            .map_or("-".to_string(), |fd| fd.to_string());
        format!(
            "{}:{}:{}:{}:{}",
            self.index,
            cpu,
            fds.join(","),
            board,
            secret
        )
    }
}
