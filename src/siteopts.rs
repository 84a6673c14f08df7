//! The values of the options that shape how a site's paths are answered (`--index`,
//! `--error-page`, `--fallback`, `--fallback-exclude`): their parsers, which name what is wrong,
//! and the questions the response path asks of them. Kept apart from `config` so that file stays
//! the list of options.

use crate::config::ServeConfig;

/// Strings as the bytes the request path compares them with.
pub fn bytes(v: &[String]) -> Vec<Vec<u8>> {
    v.iter().map(|s| s.clone().into_bytes()).collect()
}

/// `--index` names: plain file names, comma-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexNames(pub Vec<String>);

pub fn parse_index(s: &str) -> Result<IndexNames, String> {
    let names: Vec<String> = s.split(',').map(|n| n.trim().to_string()).collect();
    for n in &names {
        if n.is_empty() || n == "." || n == ".." || n.contains(['/', '\0']) {
            return Err(format!(
                "`{n}` is not a file name (a comma-separated list such as index.html,index.htm)"
            ));
        }
    }
    Ok(IndexNames(names))
}

/// `--error-page CODE=PATH|off`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPage {
    pub code: u16,
    /// The page's normalized path, or None for `off`.
    pub path: Option<Vec<u8>>,
}

pub fn parse_error_page(s: &str) -> Result<ErrorPage, String> {
    let (code, path) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not CODE=PATH or CODE=off (example: 404=/404.html)"))?;
    let code: u16 = match code.trim().parse() {
        Ok(c @ 400..=599) => c,
        _ => return Err(format!("`{code}` is not an error status (400 to 599)")),
    };
    let path = match path.trim() {
        "off" => None,
        p => Some(parse_site_path(p)?.into_bytes()),
    };
    Ok(ErrorPage { code, path })
}

/// A file's path under the root as a URL path: `/` first, no `..`, not a directory.
pub fn parse_site_path(s: &str) -> Result<String, String> {
    let p = parse_site_prefix(s)?;
    if p.ends_with('/') {
        return Err(format!(
            "`{s}` names a directory; name a file (e.g. /index.html)"
        ));
    }
    Ok(p)
}

/// A URL path prefix: `/` first, normalized (no `..`, no `//`).
pub fn parse_site_prefix(s: &str) -> Result<String, String> {
    let bad = || format!("`{s}` is not a path starting with / (example: /index.html)");
    if !s.starts_with('/') {
        return Err(bad());
    }
    let t = crate::http::target::resolve_target(s.as_bytes()).map_err(|_| bad())?;
    if t.query.is_some() || t.path != s.as_bytes() {
        return Err(bad());
    }
    String::from_utf8(t.path).map_err(|_| bad())
}

impl ServeConfig {
    /// The page for error `code`: the last `--error-page` for it, else `/404.html` for 404.
    pub fn error_page(&self, code: u16) -> Option<&[u8]> {
        match self.error_pages.iter().rev().find(|p| p.code == code) {
            Some(p) => p.path.as_deref(),
            None if code == 404 => Some(b"/404.html"),
            None => None,
        }
    }

    /// Whether a missing `path` gets the `--fallback` file, and which.
    pub fn fallback_for(&self, path: &[u8]) -> Option<&[u8]> {
        let f = self.fallback.as_deref()?;
        let excluded = self.fallback_exclude.iter().any(|p| path.starts_with(p));
        (!excluded).then_some(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_paths_and_pages() {
        assert_eq!(parse_site_path("/index.html").unwrap(), "/index.html");
        assert!(parse_site_path("/dir/").is_err());
        assert!(parse_site_path("index.html").is_err());
        assert!(parse_site_path("/a/../b").is_err());
        assert!(parse_site_path("/a?b").is_err());
        assert_eq!(parse_site_prefix("/assets/").unwrap(), "/assets/");
        let p = parse_error_page("404=off").unwrap();
        assert_eq!((p.code, p.path), (404, None));
        let p = parse_error_page("503=/busy.html").unwrap();
        assert_eq!(p.path.as_deref(), Some(&b"/busy.html"[..]));
        assert!(parse_error_page("302=/x.html").is_err());
        assert_eq!(parse_index("a.html, b.htm").unwrap().0, ["a.html", "b.htm"]);
        assert!(parse_index("a,,b").is_err());
    }

    #[test]
    fn which_page_and_which_fallback() {
        use clap::Parser;
        let cfg = |args: &[&str]| {
            let cli = crate::config::Cli::parse_from(
                std::iter::once("ringstatic").chain(args.iter().copied()),
            );
            ServeConfig::from(&cli)
        };
        let c = cfg(&[]);
        assert_eq!(c.error_page(404), Some(&b"/404.html"[..]));
        assert_eq!(c.error_page(500), None);
        assert_eq!(c.fallback_for(b"/x"), None);
        let c = cfg(&[
            "--error-page",
            "404=/a.html",
            "--error-page",
            "404=off",
            "--error-page",
            "500=/e.html",
        ]);
        assert_eq!(c.error_page(404), None, "the last one wins");
        assert_eq!(c.error_page(500), Some(&b"/e.html"[..]));
        let c = cfg(&["--fallback", "/index.html", "--fallback-exclude", "/api/"]);
        assert_eq!(c.fallback_for(b"/users/1"), Some(&b"/index.html"[..]));
        assert_eq!(c.fallback_for(b"/api/users"), None);
    }
}
