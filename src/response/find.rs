//! Which file answers a request path, beyond the cache's own mapping (index names, clean URLs,
//! listings): the directory redirect, the clean-URL redirect of `/x.html` to `/x`, and the
//! `--fallback` file of a single-page app for a path that does not exist.
//!
//! Requests refused for safety (a bad target, a dotfile) never get here, so they never get the
//! fallback; nor does a 403 (a path that exists but may not be served) or a path under a
//! `--fallback-exclude` prefix.

use std::rc::Rc;

use super::{prepare, Ctx};
use crate::files::cache::{Key, Lookup};
use crate::files::entry::{Coding, FileEntry};
use crate::http::target::{write_location, write_redirect_location, Target};

/// What answers a request path.
pub(super) enum Found {
    File(Rc<FileEntry>),
    /// The `--fallback` file, for a path that does not exist.
    Fallback(Rc<FileEntry>),
    /// An error status.
    Status(u16),
    /// A 301 with this `Location` line.
    Redirect(Vec<u8>),
}

/// The cache's answer for `path`, in identity coding.
pub(super) fn lookup(ctx: &mut Ctx, path: &[u8]) -> Lookup {
    let cfg = ctx.cfg;
    let key = Key {
        path,
        coding: Coding::Identity,
    };
    ctx.cache
        .lookup(ctx.root, key, ctx.now_ms, |facts| prepare(cfg, facts))
}

/// The file, status or redirect that answers `target`.
pub(super) fn find(ctx: &mut Ctx, target: &Target) -> Found {
    let cfg = ctx.cfg;
    match lookup(ctx, &target.path) {
        Lookup::File(f) => {
            if cfg.clean_urls {
                if let Some(clean) = clean_path(&target.path) {
                    // Redirected only when the clean URL serves this very file.
                    if let Lookup::File(g) = lookup(ctx, &clean) {
                        if g.same_file(&f) {
                            return Found::Redirect(location(&clean, target, false));
                        }
                    }
                }
            }
            Found::File(f)
        }
        Lookup::Directory => Found::Redirect(location(&target.path, target, true)),
        Lookup::Status(404) => match cfg.fallback_for(&target.path) {
            Some(fb) => match lookup(ctx, fb) {
                Lookup::File(f) => Found::Fallback(f),
                _ => Found::Status(404),
            },
            None => Found::Status(404),
        },
        Lookup::Status(code) => Found::Status(code),
    }
}

/// The clean URL of a `.html` path: `/a/b.html` -> `/a/b`, `/a/index.html` -> `/a/`.
fn clean_path(path: &[u8]) -> Option<Vec<u8>> {
    let stem = path.strip_suffix(b".html")?;
    let stem = match stem.strip_suffix(b"index") {
        Some(dir) if dir.ends_with(b"/") => dir,
        _ => stem,
    };
    (!stem.is_empty() && (!stem.ends_with(b"/") || stem.len() < path.len() - 5))
        .then(|| stem.to_vec())
}

/// A `Location` line to `path` (plus the request's query), with a trailing slash added if asked.
fn location(path: &[u8], target: &Target, add_slash: bool) -> Vec<u8> {
    let mut loc = Vec::with_capacity(path.len() + 32);
    loc.extend_from_slice(b"Location: ");
    if add_slash {
        write_redirect_location(path, target.query.as_deref(), &mut loc);
    } else {
        write_location(path, target.query.as_deref(), &mut loc);
    }
    loc.extend_from_slice(b"\r\n");
    loc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        let c = |p: &[u8]| clean_path(p).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(c(b"/about.html").as_deref(), Some("/about"));
        assert_eq!(c(b"/a/b.html").as_deref(), Some("/a/b"));
        assert_eq!(c(b"/a/index.html").as_deref(), Some("/a/"));
        assert_eq!(c(b"/index.html").as_deref(), Some("/"));
        assert_eq!(c(b"/myindex.html").as_deref(), Some("/myindex"));
        assert_eq!(c(b"/.html"), None);
        assert_eq!(c(b"/a/.html"), None);
        assert_eq!(c(b"/a.txt"), None);
    }

    #[test]
    fn redirect_locations() {
        let t = |q: Option<&[u8]>| Target {
            path: Vec::new(),
            query: q.map(<[u8]>::to_vec),
        };
        assert_eq!(location(b"/docs", &t(None), true), b"Location: /docs/\r\n");
        assert_eq!(
            location(b"/a b", &t(Some(b"x=1")), true),
            b"Location: /a%20b/?x=1\r\n"
        );
        assert_eq!(
            location(b"/about", &t(Some(b"v")), false),
            b"Location: /about?v\r\n"
        );
        assert_eq!(location(b"//evil", &t(None), false), b"Location: /evil\r\n");
    }
}
