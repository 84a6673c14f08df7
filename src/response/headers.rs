//! Headers by path: `--header 'PATTERN NAME: VALUE'` rules, checked when they are parsed and
//! resolved into an entry's lines once, when the cache makes the entry (`prepare`).
//!
//! Every rule whose pattern matches applies, in the order given; a later rule replaces an earlier
//! one's header of the same name (names compare without case). `--cache-control VALUE` is the
//! first rule, `/** Cache-Control: VALUE`, so any `--header` can override it. Headers the server
//! writes itself (framing, validators, the representation's metadata) are refused where the
//! configuration is checked (`refusal`): a rule could only make them wrong.

use crate::http::glob::Glob;
use crate::http::request::is_tchar;

/// Header names a rule may not set: the server writes them, and a second or different value
/// would break framing, caching or content negotiation.
pub const OWNED: &[&str] = &[
    "accept-ranges",
    "age",
    "allow",
    "connection",
    "content-encoding",
    "content-length",
    "content-range",
    "content-type",
    "date",
    "etag",
    "keep-alive",
    "last-modified",
    "location",
    "proxy-connection",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "vary",
];

/// One parsed `PATTERN NAME: VALUE` rule.
#[derive(Debug, Clone)]
pub struct HeaderRule {
    pub pattern: Glob,
    pub name: String,
    pub value: String,
}

impl HeaderRule {
    /// Parses `PATTERN NAME: VALUE`; the error names what is wrong.
    pub fn parse(s: &str) -> Result<HeaderRule, String> {
        let s = s.trim();
        let (pattern, rest) = s
            .split_once(|c: char| c.is_ascii_whitespace())
            .ok_or_else(|| format!("`{s}` is not `PATTERN NAME: VALUE`"))?;
        let (name, value) = rest
            .trim_start()
            .split_once(':')
            .ok_or_else(|| format!("`{s}` is not `PATTERN NAME: VALUE` (no `:`)"))?;
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(format!("`{name}` is not a header name"));
        }
        let value = value.trim();
        if value.is_empty() {
            return Err(format!("header {name} has an empty value"));
        }
        if value.bytes().any(|b| b == 0x7f || (b < 0x20 && b != b'\t')) {
            return Err(format!(
                "the value of header {name} contains a control character"
            ));
        }
        Ok(HeaderRule {
            pattern: Glob::new(pattern)?,
            name: name.to_string(),
            value: value.to_string(),
        })
    }

    /// Why the rule may not be used: its header is one the server writes (`OWNED`). Checked
    /// with the root (`config::check`), so `-t`, a start and a reload refuse it in one line.
    pub fn refusal(&self) -> Option<String> {
        OWNED
            .contains(&self.name.to_ascii_lowercase().as_str())
            .then(|| {
                format!(
                    "header {} is set by the server and cannot be configured (--header)",
                    self.name
                )
            })
    }

    /// The rules in force: `--cache-control`'s first, then every `--header` the server accepts
    /// (`config::check` has refused any other before a worker starts).
    pub fn all(cache_control: Option<&str>, header: &[HeaderRule]) -> Vec<HeaderRule> {
        let cc = cache_control
            .filter(|v| !v.is_empty())
            .map(HeaderRule::cache_control);
        cc.into_iter()
            .chain(header.iter().filter(|r| r.refusal().is_none()).cloned())
            .collect()
    }

    /// The rule `--cache-control VALUE` stands for.
    pub fn cache_control(value: &str) -> HeaderRule {
        HeaderRule {
            pattern: Glob::new("/**").expect("a valid pattern"),
            name: "Cache-Control".into(),
            value: value.to_string(),
        }
    }
}

/// Appends the header lines of every rule matching any of `paths` (the request path and the
/// file it serves), a later rule replacing an earlier one's header of the same name.
pub fn resolve_into(rules: &[HeaderRule], paths: &[&[u8]], lines: &mut Vec<u8>) {
    let mut chosen: Vec<&HeaderRule> = Vec::new();
    for r in rules {
        if !paths.iter().any(|p| r.pattern.matches(p)) {
            continue;
        }
        match chosen
            .iter_mut()
            .find(|c| c.name.eq_ignore_ascii_case(&r.name))
        {
            Some(c) => *c = r,
            None => chosen.push(r),
        }
    }
    for r in chosen {
        crate::http::head::header_line(lines, &r.name, &r.value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(specs: &[&str]) -> Vec<HeaderRule> {
        specs
            .iter()
            .map(|s| HeaderRule::parse(s).unwrap())
            .collect()
    }

    fn lines(rules: &[HeaderRule], paths: &[&str]) -> String {
        let paths: Vec<&[u8]> = paths.iter().map(|p| p.as_bytes()).collect();
        let mut out = Vec::new();
        resolve_into(rules, &paths, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn parsing() {
        let r = HeaderRule::parse("/assets/*  Cache-Control:  public, max-age=31536000 ").unwrap();
        assert_eq!(r.name, "Cache-Control");
        assert_eq!(r.value, "public, max-age=31536000");
        assert!(HeaderRule::parse("/x")
            .unwrap_err()
            .contains("PATTERN NAME: VALUE"));
        assert!(HeaderRule::parse("/x Foo bar")
            .unwrap_err()
            .contains("no `:`"));
        assert!(HeaderRule::parse("/x Bad Name: v")
            .unwrap_err()
            .contains("Bad Name"));
        assert!(HeaderRule::parse("/x X-A:").unwrap_err().contains("empty"));
        assert!(HeaderRule::parse("/x X-A: a\u{1}b")
            .unwrap_err()
            .contains("control"));
        for owned in ["Content-Length", "date", "ETAG", "Content-Encoding", "Vary"] {
            let r = HeaderRule::parse(&format!("/** {owned}: 1")).unwrap();
            let e = r.refusal().unwrap();
            assert!(e.contains(owned) && e.contains("set by the server"), "{e}");
        }
        assert_eq!(HeaderRule::parse("/** X-A: 1").unwrap().refusal(), None);
    }

    #[test]
    fn every_match_applies_and_later_rules_win() {
        let rs = rules(&[
            "/** X-Content-Type-Options: nosniff",
            "/** Cache-Control: max-age=60",
            "/assets/* Cache-Control: public, max-age=31536000, immutable",
            "*.html cache-control: no-cache",
        ]);
        assert_eq!(
            lines(&rs, &["/assets/app.js"]),
            "X-Content-Type-Options: nosniff\r\n\
             Cache-Control: public, max-age=31536000, immutable\r\n"
        );
        assert_eq!(
            lines(&rs, &["/docs/", "/docs/index.html"]),
            "X-Content-Type-Options: nosniff\r\ncache-control: no-cache\r\n"
        );
        assert_eq!(
            lines(&rs, &["/a.txt"]),
            "X-Content-Type-Options: nosniff\r\nCache-Control: max-age=60\r\n"
        );
        assert_eq!(lines(&rules(&["/x/* A: b"]), &["/y"]), "");
    }
}
