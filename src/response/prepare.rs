//! What every response for one cache entry shares, made once, when the cache creates the entry
//! (`FileCache::lookup` calls `prepare` on a miss only): the entry's header lines (Last-Modified,
//! ETag, Accept-Ranges, Cache-Control) and, for a file kept in memory, the head of its complete
//! `200` for HTTP/1.1 keep-alive, which `full` sends with the bytes in one sendmsg, after the
//! status line, Server and Date that every such `200` shares (the worker's `Clock::ok_200`).
//!
//! This is where a choice that depends on the entry alone belongs: a header configured for some
//! paths (matched against `facts.path`), or the Content-Encoding and Vary of a coded
//! representation (`facts.coding`). Made here, it is in the entry's lines and prebuilt head, and
//! a hit pays nothing for it.

use super::headers::resolve_into;
use crate::config::ServeConfig;
use crate::files::entry::{Coding, Facts, Prepared};
use crate::http::head::{entity_lines, file_lines, finish_head, header_line};
use crate::http::request::Version;

/// The header lines and, if the bytes are resident, the prebuilt head of a new entry.
pub(crate) fn prepare(cfg: &ServeConfig, facts: &Facts) -> Prepared {
    let mut lines = Vec::with_capacity(128);
    // A date that could name two versions is not sent (see `http::conditional`).
    file_lines(
        &mut lines,
        facts.lm_strong.then_some(facts.mtime),
        facts.etag,
    );
    let meta_at = lines.len();
    if facts.coding != Coding::Identity {
        header_line(&mut lines, "Content-Encoding", facts.coding.token());
    }
    // Every representation of a path that may have coded ones says so, the plain one included:
    // a shared cache must not hand a stored br response to a client that cannot read it.
    if has_variants(cfg, facts.content_type) {
        header_line(&mut lines, "Vary", "Accept-Encoding");
    }
    let paths: &[&[u8]] = if facts.name == facts.path {
        &[facts.path]
    } else {
        &[facts.path, facts.name]
    };
    resolve_into(&cfg.header_rules, paths, &mut lines);
    let head = if facts.resident {
        // The head `full` writes for a 200 on HTTP/1.1 keep-alive, after the shared status line,
        // Server and Date.
        let mut h = Vec::with_capacity(128 + lines.len());
        entity_lines(&mut h, facts.content_type, &lines, facts.size);
        finish_head(&mut h, true, Version::Http11);
        h
    } else {
        Vec::new()
    };
    Prepared {
        lines,
        meta_at,
        head,
    }
}

/// Whether a file of this type may be sent in a content coding under `cfg`.
fn has_variants(cfg: &ServeConfig, content_type: &str) -> bool {
    !(cfg.precompressed.is_empty() && cfg.compress.is_empty())
        && crate::mime::is_compressible(content_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(resident: bool) -> Facts<'static> {
        Facts {
            path: b"/a/",
            name: b"/a/index.html",
            coding: Coding::Identity,
            size: 5,
            mtime: 784111777,
            lm_strong: true,
            etag: b"\"1-5-0\"",
            content_type: "text/html; charset=utf-8",
            resident,
        }
    }

    fn cfg(cache_control: Option<&str>) -> ServeConfig {
        use clap::Parser;
        let mut cfg = ServeConfig::from(&crate::config::Cli::parse_from(["ringstatic"]));
        cfg.header_rules = cache_control
            .map(super::super::headers::HeaderRule::cache_control)
            .into_iter()
            .collect();
        cfg
    }

    #[test]
    fn lines_for_every_response() {
        let p = prepare(&cfg(None), &facts(false));
        assert_eq!(
            &p.lines[..],
            b"Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nETag: \"1-5-0\"\r\n\
              Accept-Ranges: bytes\r\nVary: Accept-Encoding\r\n"
        );
        assert!(p.head.is_empty(), "no head for an fd");
        // A version seen during its own last-modified second: no date that could name another.
        let weak = Facts {
            lm_strong: false,
            ..facts(false)
        };
        assert_eq!(
            &prepare(&cfg(None), &weak).lines[..],
            b"ETag: \"1-5-0\"\r\nAccept-Ranges: bytes\r\nVary: Accept-Encoding\r\n"
        );
        let p = prepare(&cfg(Some("max-age=60")), &facts(false));
        assert!(p
            .lines
            .ends_with(b"Vary: Accept-Encoding\r\nCache-Control: max-age=60\r\n"));
    }

    #[test]
    fn coded_and_never_coded_representations() {
        let br = Facts {
            coding: Coding::Br,
            etag: b"\"1-5-0-br\"",
            ..facts(false)
        };
        let p = prepare(&cfg(None), &br);
        assert!(p.lines.ends_with(
            b"ETag: \"1-5-0-br\"\r\nAccept-Ranges: bytes\r\nContent-Encoding: br\r\n\
              Vary: Accept-Encoding\r\n"
        ));
        // A type that is never coded does not vary; nor does anything with both sources off.
        let png = Facts {
            content_type: "image/png",
            ..facts(false)
        };
        assert!(!prepare(&cfg(None), &png)
            .lines
            .windows(4)
            .any(|w| w == b"Vary"));
        let mut off = cfg(None);
        off.precompressed = Default::default();
        off.compress = Default::default();
        assert!(!prepare(&off, &facts(false))
            .lines
            .windows(4)
            .any(|w| w == b"Vary"));
    }

    #[test]
    fn the_prebuilt_head() {
        let p = prepare(&cfg(Some("no-cache")), &facts(true));
        // What follows the status line, Server and Date every 200 shares.
        assert_eq!(
            String::from_utf8(p.head).unwrap(),
            "Content-Type: text/html; charset=utf-8\r\nContent-Length: 5\r\n\
             Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nETag: \"1-5-0\"\r\n\
             Accept-Ranges: bytes\r\nVary: Accept-Encoding\r\nCache-Control: no-cache\r\n\r\n"
        );
    }
}
