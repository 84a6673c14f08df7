//! What a worker's request path reads (`ServeConfig`, made once from the command line) and the
//! checks `-t`, start-up and reload share (`check`, `check_root`).

use super::*;

/// Settings a worker needs on its request path, in the units it uses.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// `--redirect-https`: plain listeners' requests are redirected to https.
    pub redirect_https: bool,
    /// The port those redirects name (the first tls listener's; set by the worker at start).
    pub https_port: u16,
    pub cache_valid_ms: u64,
    /// `--cache-control` first, then every `--header`, in order.
    pub header_rules: Vec<HeaderRule>,
    pub cache_inactive_ms: u64,
    pub precompressed: CodingSet,
    pub compress: CodingSet,
    pub serve_dotfiles: bool,
    pub clean_urls: bool,
    pub index: Vec<Vec<u8>>,
    pub error_pages: Vec<ErrorPage>,
    pub fallback: Option<Vec<u8>>,
    pub fallback_exclude: Vec<Vec<u8>>,
    pub autoindex: bool,
    pub max_connections: u32,
    pub cache_entries: u32,
    pub cache_bytes: u64,
    pub inline_max: u64,
    pub large_body: LargeBody,
    pub header_timeout_ms: u64,
    pub keepalive_timeout_ms: u64,
    pub send_timeout_ms: u64,
    pub shutdown_timeout_ms: u64,
    /// Who may send a PROXY protocol header (empty: any peer of a proxy-protocol listener).
    pub trusted_proxies: Vec<Cidr>,
}

impl From<&Cli> for ServeConfig {
    fn from(c: &Cli) -> Self {
        let ms = |d: Duration| d.as_millis().min(u64::MAX as u128) as u64;
        ServeConfig {
            redirect_https: c.redirect_https,
            https_port: 443,
            cache_valid_ms: ms(c.cache_valid),
            header_rules: HeaderRule::all(c.cache_control.as_deref(), &c.header),
            cache_inactive_ms: ms(c.cache_inactive),
            precompressed: c.precompressed,
            compress: c.compress,
            serve_dotfiles: c.serve_dotfiles,
            clean_urls: c.clean_urls,
            index: bytes(&c.index.0),
            error_pages: c.error_page.clone(),
            fallback: c.fallback.clone().map(String::into_bytes),
            fallback_exclude: bytes(&c.fallback_exclude),
            autoindex: c.autoindex,
            max_connections: c.max_connections,
            cache_entries: c.cache_entries,
            cache_bytes: c.cache_bytes,
            inline_max: c.inline_max,
            large_body: c.large_body,
            header_timeout_ms: ms(c.header_timeout),
            keepalive_timeout_ms: ms(c.keepalive_timeout),
            send_timeout_ms: ms(c.send_timeout),
            shutdown_timeout_ms: ms(c.shutdown_timeout),
            trusted_proxies: c.trusted_proxy.clone(),
        }
    }
}

/// What `-t`, a start and a reload check beyond parsing: the root (`check_root`), that no
/// `--header` rule sets a header the server writes, and the TLS certificates (they read, match
/// their keys, are in date; one expiring soon is a warning, printed here). Errors are one line.
pub fn check(cli: &Cli) -> Result<(), String> {
    check_root(&cli.root())?;
    if let Some(e) = cli.header.iter().find_map(HeaderRule::refusal) {
        return Err(e);
    }
    for w in crate::tls::check(cli)? {
        eprintln!("ringstatic: warning: {w}");
    }
    Ok(())
}

/// A root must be a directory this process can list. Both `-t` and the master (at start and on
/// every reload) ask this, so that a configuration `-t` accepts is one the master starts with.
pub fn check_root(root: &std::path::Path) -> Result<(), String> {
    let meta = std::fs::metadata(root)
        .map_err(|e| format!("cannot serve root {}: {}", root.display(), plain(&e)))?;
    if !meta.is_dir() {
        return Err(format!(
            "cannot serve root {}: not a directory",
            root.display()
        ));
    }
    std::fs::read_dir(root)
        .map_err(|e| format!("cannot serve root {}: {}", root.display(), plain(&e)))?;
    Ok(())
}

/// An io::Error's message without Rust's " (os error N)" suffix, for one-line messages.
pub fn plain(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
