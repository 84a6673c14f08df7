//! Content negotiation (RFC 9110 12.5.3), the step between the cache lookup and the
//! preconditions: for a file whose type has coded variants, the client's `Accept-Encoding`
//! weights, ordered with the server's preference among equals (br, zstd, gzip), pick the first
//! coding that has a representation (a usable sibling or a compressed copy, `files::variant`).
//! Everything after this step (304, If-Range, Range, HEAD) applies to the representation chosen.
//!
//! When the client excludes identity and no coded variant exists, the identity representation is
//! sent anyway: RFC 9110 12.5.3 lets the origin server send a response without content coding
//! there instead of a 406, and a client that names only codings we cannot produce still gets the
//! file. A request without the header, or for a type that is never coded, costs a
//! branch or two here; one with it, for a compressible file, a scan of the header and one more
//! hash lookup (the variant's entry), no allocation.

use std::rc::Rc;

use super::prepare::prepare;
use super::Ctx;
use crate::config::ServeConfig;
use crate::files::cache::{Key, Lookup};
use crate::files::entry::{Coding, FileEntry};
use crate::files::variant::Sources;
use crate::http::accept_encoding::{self, Weights};
use crate::http::request::Request;

/// The representation of `path` to send: `identity` itself, or the coded variant the client
/// prefers that exists; and its coding.
pub(super) fn select(
    req: &Request,
    ctx: &mut Ctx,
    path: &[u8],
    identity: Rc<FileEntry>,
) -> (Rc<FileEntry>, Coding) {
    let cfg = ctx.cfg;
    // `compressible` was worked out once for the entry: no string is compared per request.
    if req.accept_encoding.is_none()
        || !identity.compressible
        || (cfg.precompressed.is_empty() && cfg.compress.is_empty())
    {
        return (identity, Coding::Identity);
    }
    let (order, n) = order(accept_encoding::parse(req.accept_encoding), cfg);
    for &coding in &order[..n] {
        if coding == Coding::Identity {
            break;
        }
        let key = Key { path, coding };
        let sources = sources(cfg, coding);
        let found =
            ctx.cache
                .lookup_variant(ctx.root, key, ctx.now_ms, &identity, sources, |facts| {
                    prepare(cfg, facts)
                });
        if let Lookup::File(f) = found {
            return (f, coding);
        }
    }
    (identity, Coding::Identity)
}

fn sources(cfg: &ServeConfig, coding: Coding) -> Sources {
    Sources {
        sibling: cfg.precompressed.has(coding),
        compress: cfg.compress.has(coding),
    }
}

/// The acceptable representations, best first: by weight, and among equal weights in the
/// server's order (identity last); codings the configuration never produces are left out.
fn order(w: Weights, cfg: &ServeConfig) -> ([Coding; 4], usize) {
    let mut cands = [
        (Coding::Br, w.br),
        (Coding::Zstd, w.zstd),
        (Coding::Gzip, w.gzip),
        (Coding::Identity, w.identity),
    ];
    // A stable insertion sort of four: the server's order breaks ties.
    for i in 1..cands.len() {
        let mut j = i;
        while j > 0 && cands[j - 1].1 < cands[j].1 {
            cands.swap(j - 1, j);
            j -= 1;
        }
    }
    let mut out = [Coding::Identity; 4];
    let mut n = 0;
    for (c, q) in cands {
        let produced = c == Coding::Identity || {
            let s = sources(cfg, c);
            s.sibling || s.compress
        };
        if q > 0 && produced {
            out[n] = c;
            n += 1;
        }
    }
    (out, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(args: &[&str]) -> ServeConfig {
        use clap::Parser;
        let argv = std::iter::once("ringstatic").chain(args.iter().copied());
        ServeConfig::from(&crate::config::Cli::parse_from(argv))
    }

    fn names(header: &str, cfg: &ServeConfig) -> Vec<&'static str> {
        let (o, n) = order(accept_encoding::parse(Some(header.as_bytes())), cfg);
        o[..n].iter().map(|c| c.token()).collect()
    }

    #[test]
    fn the_servers_order_among_equals() {
        let c = cfg(&[]);
        let all = ["br", "zstd", "gzip", "identity"];
        assert_eq!(names("gzip, deflate, br, zstd", &c), all);
        assert_eq!(names("gzip, deflate, br", &c), ["br", "gzip", "identity"]);
        assert_eq!(names("*", &c), all);
        assert_eq!(names("gzip;q=1, br;q=0.5", &c), ["gzip", "br", "identity"]);
        assert_eq!(names("br;q=0.2, identity;q=0.5", &c), ["identity", "br"]);
        assert_eq!(names("gzip, identity;q=0", &c), ["gzip"]);
        assert_eq!(names("*;q=0", &c), Vec::<&str>::new());
        assert_eq!(names("br;q=x", &c), ["identity"], "malformed: absent");
    }

    #[test]
    fn codings_the_server_never_makes_are_skipped() {
        let c = cfg(&["--precompressed", "gzip", "--compress", "off"]);
        assert_eq!(names("br, zstd, gzip", &c), ["gzip", "identity"]);
        let c = cfg(&["--precompressed", "off", "--compress", "zstd"]);
        assert_eq!(names("br, zstd, gzip", &c), ["zstd", "identity"]);
    }
}
