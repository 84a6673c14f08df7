//! Path patterns for per-path header rules: a small glob on the decoded, normalized path.
//!
//! Patterns are matched segment by segment (the path split at `/`): `*` is any run of bytes
//! within one segment, `?` one byte within a segment, `**` as a whole segment any number of
//! segments (none included), every other byte itself. A pattern with a leading `/` is anchored at
//! the root (`/assets/*` is a file directly in /assets/); one without (`*.html`, `img/*.png`)
//! matches the end of the path at any depth, as if it began with `/**/`. Matching is done once
//! per cache entry, never per request, so it is written for clarity, not speed.

/// A compiled pattern: its segments, `**` marked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`: zero or more whole segments.
    Any,
    /// A segment pattern with `*` and `?`.
    One(Vec<u8>),
}

impl Glob {
    /// Compiles `pattern`; an empty pattern, a NUL, or `**` glued to other bytes is refused with
    /// the reason.
    pub fn new(pattern: &str) -> Result<Glob, String> {
        if pattern.is_empty() {
            return Err("the path pattern is empty".into());
        }
        if pattern.bytes().any(|b| b == 0 || b.is_ascii_whitespace()) {
            return Err(format!(
                "path pattern `{pattern}` contains a space or control character"
            ));
        }
        let mut segments = Vec::new();
        let rest = match pattern.strip_prefix('/') {
            Some(r) => r,
            None => {
                segments.push(Segment::Any);
                pattern
            }
        };
        for s in rest.split('/') {
            if s == "**" {
                if segments.last() != Some(&Segment::Any) {
                    segments.push(Segment::Any);
                }
            } else if s.contains("**") {
                return Err(format!(
                    "path pattern `{pattern}`: `**` must be a whole segment (`/a/**/b`)"
                ));
            } else {
                segments.push(Segment::One(s.as_bytes().to_vec()));
            }
        }
        Ok(Glob { segments })
    }

    /// Whether the normalized `path` (starting with `/`; a trailing `/` is an empty last segment)
    /// matches.
    pub fn matches(&self, path: &[u8]) -> bool {
        let p = path.strip_prefix(b"/").unwrap_or(path);
        let segs: Vec<&[u8]> = p.split(|&b| b == b'/').collect();
        match_segments(&self.segments, &segs)
    }
}

fn match_segments(pat: &[Segment], segs: &[&[u8]]) -> bool {
    match pat.split_first() {
        None => segs.is_empty(),
        Some((Segment::Any, rest)) => (0..=segs.len()).any(|i| match_segments(rest, &segs[i..])),
        Some((Segment::One(p), rest)) => match segs.split_first() {
            Some((s, more)) => match_one(p, s) && match_segments(rest, more),
            None => false,
        },
    }
}

/// `*` and `?` within one segment (iterative, with one backtrack point: linear enough for the
/// short names it sees).
fn match_one(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pat: &str, path: &str) -> bool {
        Glob::new(pat).unwrap().matches(path.as_bytes())
    }

    #[test]
    fn star_stays_in_one_segment() {
        assert!(m("/assets/*", "/assets/app.js"));
        assert!(!m("/assets/*", "/assets/js/app.js"));
        assert!(!m("/assets/*", "/other/app.js"));
        assert!(m("/assets/*.js", "/assets/app.min.js"));
        assert!(!m("/assets/*.js", "/assets/app.css"));
        assert!(m("/a?c", "/abc") && !m("/a?c", "/a/c"));
        assert!(m("/*", "/x") && !m("/*", "/a/b"));
    }

    #[test]
    fn double_star_crosses_segments() {
        assert!(m("/**", "/"));
        assert!(m("/**", "/a/b/c.txt"));
        assert!(m("/assets/**", "/assets/a/b.js"));
        assert!(m("/assets/**", "/assets/x"));
        assert!(!m("/assets/**", "/assetsx/y"));
        assert!(m("/a/**/z", "/a/z") && m("/a/**/z", "/a/b/c/z") && !m("/a/**/z", "/a/b/y"));
        assert!(Glob::new("/a**").is_err());
    }

    #[test]
    fn unanchored_patterns_match_at_any_depth() {
        assert!(m("*.html", "/index.html"));
        assert!(m("*.html", "/docs/deep/page.html"));
        assert!(!m("*.html", "/docs/page.htm"));
        assert!(!m("*.html", "/x.html/"));
        assert!(m("img/*.png", "/site/img/a.png") && !m("img/*.png", "/site/im/a.png"));
    }

    #[test]
    fn literal_bytes_and_refusals() {
        assert!(m("/a b.txt".replace(' ', "_").as_str(), "/a_b.txt"));
        assert!(m("/caf\u{e9}", "/caf\u{e9}"));
        assert!(Glob::new("").is_err());
        assert!(Glob::new("/a b").is_err());
        assert!(!m("/a*b*c", "/aXXbYY"));
        assert!(m("/a*b*c", "/aXXbYYc"));
        assert!(m("/*a", "/aaa"));
    }
}
