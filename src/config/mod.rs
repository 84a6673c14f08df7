//! Typed, validated settings. The command line is the whole configuration: the master parses it,
//! and each worker re-parses the very same arguments (plus a hidden worker flag), so master and
//! workers can never disagree about a setting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::cidr::Cidr;
use crate::files::entry::Coding;
use crate::response::headers::HeaderRule;
use crate::siteopts::{bytes, parse_error_page, parse_index, parse_site_path, parse_site_prefix};
pub use crate::siteopts::{ErrorPage, IndexNames};

mod file;
mod serve;
mod values;

pub use file::*;
pub use serve::*;
pub use values::*;

/// A static-file HTTP/1.1 server for Linux: one pinned io_uring worker per CPU core.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "ringstatic",
    version,
    about,
    max_term_width = 100,
    args_override_self = true,
    after_help = "A site's build step: `ringstatic compress [--quiet] ROOT` writes the precompressed \
                  siblings (X.br, X.zst, X.gz) of every compressible file under ROOT."
)]
pub struct Cli {
    /// Read options from FILE, one per line (`listen 0.0.0.0:80`, `root /srv/www`, `# comment`);
    /// options on the command line win. SIGHUP re-reads it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Check the configuration and the root, print one line, and exit 0 (ok) or 1.
    #[arg(short = 't', long = "test-config")]
    pub test_config: bool,

    /// Send a signal to the running master found through --pid-file: reload, reopen, quit, stop.
    /// `reload` returns when the master has finished (or failed) the reload.
    #[arg(short = 's', long = "signal", value_name = "SIGNAL", value_enum)]
    pub signal: Option<ControlSignal>,

    /// Write the master's pid here (renamed to FILE.oldbin during a binary upgrade).
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,

    /// Access log file, or `off`.
    #[arg(long, value_name = "PATH|off", default_value = "off")]
    pub access_log: String,

    /// Access log line format: nginx's `combined`, or `json` (one object per line).
    #[arg(long, value_name = "FORMAT", default_value = "combined", value_enum)]
    pub access_log_format: LogFormat,

    /// Error log file (appended to; reopened on SIGUSR1) [default: standard error]
    #[arg(long, value_name = "PATH")]
    pub error_log: Option<PathBuf>,

    /// Directory to serve (same as --root).
    #[arg(value_name = "ROOT")]
    root_arg: Option<PathBuf>,

    /// Directory to serve [default: public]
    #[arg(long = "root", value_name = "PATH", conflicts_with = "root_arg")]
    root_flag: Option<PathBuf>,

    /// Address to listen on, IPv4 or [IPv6] with a port; repeatable; port 0 picks a free port.
    /// `ADDR:PORT,tls`: HTTPS (TLS 1.3 and 1.2) with the --tls-cert certificates.
    /// `ADDR:PORT,proxy-protocol`: every connection must start with a PROXY protocol header
    /// (v1 or v2) from a load balancer, whose client address is then the one logged.
    #[arg(long, value_name = "ADDR:PORT[,tls][,proxy-protocol]", default_value = "127.0.0.1:8080", value_parser = parse_listen)]
    pub listen: Vec<ListenSpec>,

    /// A certificate chain (PEM, the leaf first) for the `tls` listeners; repeatable, each
    /// paired with the --tls-key at the same position. The first is the default; a client's SNI
    /// name picks the one whose names (subjectAltName, or the CN without one) match it.
    #[arg(long, value_name = "PATH")]
    pub tls_cert: Vec<PathBuf>,

    /// The private key (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC) of the --tls-cert at the same
    /// position. Read by the master and the workers before they drop privileges.
    #[arg(long, value_name = "PATH")]
    pub tls_key: Vec<PathBuf>,

    /// On listeners without `tls`, answer every request with a 308 redirect to the same URL on
    /// https (the first tls listener's port, omitted when 443), except under
    /// /.well-known/acme-challenge/, served from the root for ACME HTTP-01 challenges.
    #[arg(long)]
    pub redirect_https: bool,

    /// Peers allowed to send a PROXY protocol header (CIDR or address; repeatable). Without it,
    /// any peer of a proxy-protocol listener may; with it, a connection from any other peer
    /// is closed unread.
    #[arg(long, value_name = "CIDR", value_parser = Cidr::parse)]
    pub trusted_proxy: Vec<Cidr>,

    /// Serve /metrics (Prometheus), /healthz and /readyz on this address, from the master
    /// (off unless set). Meant for a private network or loopback, not the public.
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_addr)]
    pub status_listen: Option<SocketAddr>,

    /// On SIGTERM or SIGQUIT, first turn /readyz to 503 and keep serving normally for this
    /// long (so a load balancer's health check takes the instance out), then stop gracefully.
    #[arg(long, value_name = "SECS", default_value = "0", value_parser = parse_secs)]
    pub drain_delay: Duration,

    /// Hand a connection to a worker only once its first request bytes have arrived
    /// (TCP_DEFER_ACCEPT, 1 s, as nginx's `listen ... deferred`): one wakeup per connection
    /// instead of two; a client that connects but never sends is handed over after that second
    /// and then holds a worker slot until --header-timeout closes it. Sockets
    /// from a .socket unit keep the unit's DeferAcceptSec= instead.
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    pub defer_accept: bool,

    /// Number of worker processes, or `auto` for one per CPU in the process's affinity mask.
    #[arg(long, value_name = "N|auto", default_value = "auto", value_parser = parse_workers)]
    pub workers: Workers,

    /// Seconds a cached file's metadata is trusted before it is checked again (0 = check every request).
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = parse_secs)]
    pub cache_valid: Duration,

    /// Value of the Cache-Control header sent with files (absent unless set); the same as a first
    /// `--header '/** Cache-Control: VALUE'`.
    #[arg(long, value_name = "VALUE", value_parser = parse_header_value)]
    pub cache_control: Option<String>,

    /// Send a precompressed sibling (X.br, X.zst, X.gz) in place of X to a client that accepts its
    /// coding, unless it is older than X; a comma-separated list of br, zstd, gzip, or `off`.
    #[arg(long, value_name = "LIST|off", default_value = "br,zstd,gzip", value_parser = parse_codings)]
    pub precompressed: CodingSet,

    /// Compress files of compressible types from 1 KiB to 512 KiB that have no usable sibling, once
    /// per file version in each worker's cache; a comma-separated list of br, zstd, gzip, or `off`.
    #[arg(long, value_name = "LIST|off", default_value = "br,zstd,gzip", value_parser = parse_codings)]
    pub compress: CodingSet,

    /// Serve path segments that start with a dot (/.well-known/ is always served).
    #[arg(long)]
    pub serve_dotfiles: bool,

    /// Add a header to files whose path matches, e.g. `'*.html Cache-Control: no-cache'`; repeatable,
    /// every matching rule applies, a later one replaces an earlier one's header.
    #[arg(long = "header", value_name = "PATTERN NAME: VALUE", value_parser = HeaderRule::parse)]
    pub header: Vec<HeaderRule>,

    /// Serve `/about` from `about.html` when there is no `about`, and redirect `/about.html` there.
    #[arg(long)]
    pub clean_urls: bool,

    /// The file names a directory request (`/dir/`) is answered with, tried in order.
    #[arg(long, value_name = "LIST", default_value = "index.html", value_parser = parse_index)]
    pub index: IndexNames,

    /// The page sent (with the original status) for an error: `404=/404.html`, `500=/oops.html`,
    /// or `404=off`. A 404.html at the root is used for 404 unless turned off. Repeatable.
    #[arg(long = "error-page", value_name = "CODE=PATH|off", value_parser = parse_error_page)]
    pub error_page: Vec<ErrorPage>,

    /// Answer GET/HEAD for a path that does not exist with this file and 200 (single-page apps).
    #[arg(long, value_name = "PATH", value_parser = parse_site_path)]
    pub fallback: Option<String>,

    /// A path prefix that never gets the --fallback file (e.g. `/assets/`); repeatable.
    #[arg(long = "fallback-exclude", value_name = "PREFIX", value_parser = parse_site_prefix)]
    pub fallback_exclude: Vec<String>,

    /// List the contents of a directory that has no index file (off: such a directory is 404).
    #[arg(long)]
    pub autoindex: bool,

    /// Most connections one worker holds open; at the limit it stops accepting until one closes.
    #[arg(long, value_name = "N", default_value = "16384", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Seconds a cached file may go unrequested before the worker closes it (nginx's
    /// open_file_cache inactive=).
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_positive_secs)]
    pub cache_inactive: Duration,

    /// Most files each worker keeps open in its cache.
    #[arg(long, value_name = "N", default_value = "10000", value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub cache_entries: u32,

    /// Most bytes of small-file contents each worker keeps in memory (suffixes K, M, G).
    #[arg(long, value_name = "BYTES", default_value = "64M", value_parser = parse_bytes)]
    pub cache_bytes: u64,

    /// Files up to this size are read into memory once and sent together with their header in one
    /// send; larger ones are sent from the page cache (suffixes K, M). Measured: a 16 KiB file costs
    /// 0.73 of nginx's CPU from memory, 0.99 with sendfile (see src/files/body.rs).
    #[arg(long, value_name = "BYTES", default_value = "64K", value_parser = parse_bytes)]
    pub inline_max: u64,

    /// How bodies larger than --inline-max leave: `sendfile` (one call per chunk) or `splice`
    /// (file -> pipe -> socket through a small per-worker pool of pipes). See README.md.
    #[arg(long, value_name = "HOW", default_value = "sendfile", value_enum)]
    pub large_body: LargeBody,

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

    /// When started as root, the user (and group, else the user's own) the workers switch to once
    /// their sockets, root and logs are open; supplementary groups are cleared. Ignored otherwise.
    #[arg(long, value_name = "USER[:GROUP]", default_value = "nobody", value_parser = crate::privileges::parse_spec)]
    pub user: String,

    /// Each worker's sandbox after setup: `on` applies every layer the kernel offers
    /// (no_new_privs, Landlock, seccomp, io_uring restrictions) and says which are missing;
    /// `strict` refuses to serve unless all are on; `off` applies none.
    #[arg(long, value_name = "on|strict|off", default_value = "on", value_enum)]
    pub sandbox: SandboxMode,

    /// Internal: run as worker `INDEX:CPU:FD,FD,...:BOARDFD/SLOT:SECRETFD` (set by the master, never by hand).
    #[arg(long = "worker-internal", hide = true, value_name = "SPEC", value_parser = parse_worker_spec)]
    pub worker: Option<WorkerSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ControlSignal {
    /// SIGHUP: re-read the configuration, start new workers, retire the old ones.
    Reload,
    /// SIGUSR1: reopen the log files.
    Reopen,
    /// SIGQUIT: graceful stop.
    Quit,
    /// SIGTERM: graceful stop (a second one stops at once).
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// nginx's `combined`.
    Combined,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SandboxMode {
    On,
    Strict,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LargeBody {
    Sendfile,
    Splice,
}

/// The content codings an option allows (`--precompressed`, `--compress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CodingSet(u8);

impl CodingSet {
    pub fn has(self, c: Coding) -> bool {
        c != Coding::Identity && self.0 & (1 << c.index()) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
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
    /// Inherited listening sockets to accept on, each with its options.
    pub fds: Vec<(i32, ListenerKind)>,
    /// The scoreboard memfd and this worker's slot in it.
    pub board: Option<(i32, usize)>,
    /// A memfd holding the master's session-ticket secret (when a listener has `tls`).
    pub ticket_secret: Option<i32>,
}

/// What a listening socket's connections start with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListenerKind {
    /// A PROXY protocol header.
    pub proxy: bool,
    /// A TLS handshake.
    pub tls: bool,
}

impl Cli {
    /// The access log path, or None when it is off.
    pub fn access_log_path(&self) -> Option<PathBuf> {
        if self.access_log.eq_ignore_ascii_case("off") || self.access_log.is_empty() {
            None
        } else {
            Some(PathBuf::from(&self.access_log))
        }
    }

    pub fn root(&self) -> PathBuf {
        self.root_arg
            .clone()
            .or_else(|| self.root_flag.clone())
            .unwrap_or_else(|| PathBuf::from("public"))
    }
}

/// A configuration as loaded: the settings, and the arguments that produce them with the config
/// file already expanded (what workers are started with, so they never re-read a file that may
/// have changed since the master validated it).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub cli: Cli,
    pub args: Vec<std::ffi::OsString>,
}

/// Parses the command line `args` (without argv[0]) merged with the config file it names, if any.
/// Errors are complete messages (clap's, or one line about the file).
pub fn load(args: &[std::ffi::OsString]) -> Result<Loaded, clap::Error> {
    let argv0 = std::ffi::OsString::from("ringstatic");
    let first = Cli::try_parse_from(std::iter::once(argv0.clone()).chain(args.iter().cloned()))?;
    let Some(path) = &first.config else {
        return Ok(Loaded {
            cli: first,
            args: args.to_vec(),
        });
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        clap::Error::raw(
            clap::error::ErrorKind::Io,
            format!("cannot read config file {}: {e}\n", path.display()),
        )
    })?;
    let file_args = config_file_args(&text).map_err(|e| {
        clap::Error::raw(
            clap::error::ErrorKind::InvalidValue,
            format!("config file {}: {e}\n", path.display()),
        )
    })?;
    // Command-line listen addresses replace the file's instead of adding to them.
    let cli_has_listen = args.iter().any(|a| {
        a.to_str()
            .is_some_and(|s| s == "--listen" || s.starts_with("--listen="))
    });
    let mut merged: Vec<std::ffi::OsString> = Vec::new();
    let mut i = 0;
    while i < file_args.len() {
        if cli_has_listen && file_args[i] == "--listen" {
            i += 2;
            continue;
        }
        merged.push(file_args[i].clone().into());
        i += 1;
    }
    // The command line without --config (already expanded above).
    let mut j = 0;
    while j < args.len() {
        let a = args[j].to_str().unwrap_or("");
        if a == "--config" {
            j += 2;
            continue;
        }
        if a.starts_with("--config=") {
            j += 1;
            continue;
        }
        merged.push(args[j].clone());
        j += 1;
    }
    let cli = Cli::try_parse_from(std::iter::once(argv0).chain(merged.iter().cloned()))?;
    let mut cli = cli;
    cli.config = first.config.clone();
    Ok(Loaded { cli, args: merged })
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
        assert_eq!(parse_positive_secs("90").unwrap(), Duration::from_secs(90));
        assert!(parse_positive_secs("0")
            .unwrap_err()
            .contains("more than 0"));
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
        let s = WorkerSpec {
            index: 3,
            cpu: Some(7),
            fds: vec![
                (4, ListenerKind::default()),
                (
                    9,
                    ListenerKind {
                        proxy: true,
                        tls: false,
                    },
                ),
                (
                    10,
                    ListenerKind {
                        proxy: true,
                        tls: true,
                    },
                ),
                (
                    11,
                    ListenerKind {
                        proxy: false,
                        tls: true,
                    },
                ),
            ],
            board: Some((12, 40)),
            ticket_secret: Some(13),
        };
        assert_eq!(parse_worker_spec(&s.to_arg()).unwrap(), s);
        let s = WorkerSpec {
            index: 0,
            cpu: None,
            fds: vec![(3, ListenerKind::default())],
            board: None,
            ticket_secret: None,
        };
        assert_eq!(parse_worker_spec(&s.to_arg()).unwrap(), s);
        assert!(parse_worker_spec("1:2").is_err());
    }

    #[test]
    fn header_values_refuse_control_chars() {
        assert!(parse_header_value("max-age=60").is_ok());
        assert!(parse_header_value("a\r\nX-Evil: 1").is_err());
    }

    #[test]
    fn config_file_lines() {
        let a = config_file_args(
            "# c\nlisten 127.0.0.1:1\nroot = \"/srv/www\"\nserve-dotfiles\nworkers 2;\ndefer-accept off\n",
        )
        .unwrap();
        assert_eq!(
            a,
            [
                "--listen",
                "127.0.0.1:1",
                "--root",
                "/srv/www",
                "--serve-dotfiles",
                "--workers",
                "2",
                "--defer-accept",
                "off"
            ]
        );
        let cli = Cli::try_parse_from(["ringstatic", "--defer-accept", "off"]).unwrap();
        assert!(!cli.defer_accept);
        let cli = Cli::try_parse_from(["ringstatic"]).unwrap();
        assert!(cli.defer_accept, "on by default");
        assert!(Cli::try_parse_from(["ringstatic", "--defer-accept", "yes"]).is_err());
        let a = config_file_args(
            "clean-urls\nautoindex off\nheader /assets/* Cache-Control: max-age=60, public\n",
        )
        .unwrap();
        assert_eq!(
            a,
            [
                "--clean-urls",
                "--header",
                "/assets/* Cache-Control: max-age=60, public"
            ]
        );
        assert!(config_file_args("autoindex maybe")
            .unwrap_err()
            .contains("autoindex takes on or off"));
        assert!(config_file_args("bogus 1").unwrap_err().contains("line 1"));
        assert!(config_file_args("root").is_err());
        assert!(
            config_file_args("config /etc/x").is_err(),
            "no recursion through config"
        );
    }

    #[test]
    fn config_file_merges_and_command_line_wins() {
        let dir = std::env::temp_dir().join(format!("ringstatic-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.conf");
        std::fs::write(
            &f,
            "listen 127.0.0.1:1\nworkers 3\ncache-valid 5\naccess-log-format json\n",
        )
        .unwrap();
        let args: Vec<std::ffi::OsString> = ["--config", f.to_str().unwrap(), "--workers", "2"]
            .iter()
            .map(|s| s.into())
            .collect();
        let c = load(&args).unwrap().cli;
        assert_eq!(c.workers, Workers::Count(2));
        assert_eq!(c.cache_valid, Duration::from_secs(5));
        assert_eq!(c.access_log_format, LogFormat::Json);
        assert_eq!(c.listen, vec![parse_listen("127.0.0.1:1").unwrap()]);
        let args: Vec<std::ffi::OsString> =
            ["--config", f.to_str().unwrap(), "--listen", "127.0.0.1:2"]
                .iter()
                .map(|s| s.into())
                .collect();
        assert_eq!(
            load(&args).unwrap().cli.listen,
            vec![parse_listen("127.0.0.1:2").unwrap()]
        );
        std::fs::write(&f, "workers zero\n").unwrap();
        assert!(load(&args).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn root_must_be_a_listable_directory() {
        let dir = std::env::temp_dir().join(format!("rs-check-root-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(check_root(&dir), Ok(()));
        let file = dir.join("f");
        std::fs::write(&file, "x").unwrap();
        let e = check_root(&file).unwrap_err();
        assert!(e.ends_with("not a directory"), "{e}");
        let e = check_root(&dir.join("missing")).unwrap_err();
        assert!(e.contains("missing") && !e.contains("os error"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn listen_options_and_balancer_flags() {
        let l = parse_listen("0.0.0.0:80,proxy-protocol").unwrap();
        assert_eq!(l.addr, "0.0.0.0:80".parse::<SocketAddr>().unwrap());
        assert!(l.proxy_protocol && !l.tls);
        assert!(!parse_listen("[::1]:8080").unwrap().proxy_protocol);
        let t = parse_listen("0.0.0.0:443,tls,proxy-protocol").unwrap();
        assert!(t.tls && t.proxy_protocol);
        assert_eq!(t.to_string(), "0.0.0.0:443,tls,proxy-protocol");
        let e = parse_listen("0.0.0.0:80,proxy").unwrap_err();
        assert!(e.contains("`proxy`") && e.contains("proxy-protocol"), "{e}");
        assert!(parse_listen("localhost:80").is_err());
        let a = config_file_args(
            "listen 127.0.0.1:1,proxy-protocol\ntrusted-proxy 10.0.0.0/8\ntrusted-proxy 127.0.0.1\nstatus-listen 127.0.0.1:9\ndrain-delay 5\n",
        )
        .unwrap();
        let mut argv = vec!["ringstatic".to_string()];
        argv.extend(a);
        let c = Cli::try_parse_from(argv).unwrap();
        assert_eq!(c.trusted_proxy.len(), 2);
        assert_eq!(c.drain_delay, Duration::from_secs(5));
        assert_eq!(c.status_listen, Some("127.0.0.1:9".parse().unwrap()));
        assert!(c.listen[0].proxy_protocol);
        let d = Cli::try_parse_from(["ringstatic"]).unwrap();
        assert_eq!((d.drain_delay, d.status_listen), (Duration::ZERO, None));
        assert!(Cli::try_parse_from(["ringstatic", "--trusted-proxy", "10.0.0.1/8"]).is_err());
        assert!(Cli::try_parse_from(["ringstatic", "--status-listen", "9100"]).is_err());
    }

    #[test]
    fn coding_lists() {
        let all = parse_codings("br,zstd,gzip").unwrap();
        assert!(Coding::CODED.iter().all(|&c| all.has(c)) && !all.has(Coding::Identity));
        let gz = parse_codings(" GZIP ").unwrap();
        assert!(gz.has(Coding::Gzip) && !gz.has(Coding::Br));
        assert!(parse_codings("off").unwrap().is_empty());
        let e = parse_codings("br,deflate").unwrap_err();
        assert!(e.contains("`deflate`"), "{e}");
        assert!(parse_codings("").is_err());
        assert_eq!(
            config_file_args("compress off\nprecompressed br,gzip\n").unwrap(),
            ["--compress", "off", "--precompressed", "br,gzip"]
        );
        let cli = Cli::try_parse_from(["ringstatic", "--compress", "off"]).unwrap();
        assert!(cli.compress.is_empty() && cli.precompressed == all);
    }

    #[test]
    fn workers_flag() {
        assert_eq!(parse_workers("auto").unwrap(), Workers::Auto);
        assert_eq!(parse_workers("4").unwrap(), Workers::Count(4));
        assert!(parse_workers("0").is_err());
    }
}
