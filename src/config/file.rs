//! The config file: one option per line without the dashes (`listen 0.0.0.0:80`), `#` comments,
//! turned into the same arguments the command line takes, so both are validated by one parser.

use super::*;

/// Options a config file may set (the rest are command-line only).
const FILE_OPTIONS: &[&str] = &[
    "root",
    "listen",
    "trusted-proxy",
    "status-listen",
    "drain-delay",
    "workers",
    "defer-accept",
    "cache-valid",
    "cache-inactive",
    "cache-control",
    "precompressed",
    "compress",
    "serve-dotfiles",
    "header",
    "clean-urls",
    "index",
    "error-page",
    "fallback",
    "fallback-exclude",
    "autoindex",
    "max-connections",
    "cache-entries",
    "cache-bytes",
    "inline-max",
    "large-body",
    "ktls",
    "header-timeout",
    "keepalive-timeout",
    "send-timeout",
    "shutdown-timeout",
    "pid-file",
    "access-log",
    "access-log-format",
    "error-log",
    "user",
    "sandbox",
];

/// Options that are switches: `name`, `name on` or `name off` in a config file.
const SWITCHES: &[&str] = &["serve-dotfiles", "clean-urls", "autoindex"];

/// The settings a config file's text gives on its own: the file's lines as `--config` reads
/// them, then every value validated as on the command line. The fuzzer's entry point.
pub fn from_config_text(text: &str) -> Result<Cli, String> {
    let args = config_file_args(text)?;
    let argv = std::iter::once("ringstatic".to_string()).chain(args);
    Cli::try_parse_from(argv).map_err(|e| e.to_string())
}

/// `name value` / `name = value` lines -> `--name value` arguments.
pub(crate) fn config_file_args(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_suffix(';').unwrap_or(line);
        let (name, value) = match line.find(|c: char| c.is_whitespace() || c == '=') {
            Some(i) => (
                &line[..i],
                line[i..]
                    .trim_start_matches(|c: char| c.is_whitespace() || c == '=')
                    .trim(),
            ),
            None => (line, ""),
        };
        if !FILE_OPTIONS.contains(&name) {
            return Err(format!("line {}: unknown option `{name}`", n + 1));
        }
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        if SWITCHES.contains(&name) {
            match value {
                "" | "on" | "yes" | "true" => out.push(format!("--{name}")),
                "off" | "no" | "false" => {}
                v => return Err(format!("line {}: {name} takes on or off, not `{v}`", n + 1)),
            }
            continue;
        }
        if value.is_empty() {
            return Err(format!("line {}: `{name}` needs a value", n + 1));
        }
        out.push(format!("--{name}"));
        out.push(value.to_string());
    }
    Ok(out)
}
