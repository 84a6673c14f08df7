//! Request-target resolution (RFC 9112 3.2, RFC 3986 5.2.4) and the
//! path policies that depend on it.
//!
//! The normalized path returned here is what the file layer maps under the
//! document root, so every rule that keeps a request inside the root lives
//! here: dot segments are resolved on the *decoded* path, encoded slashes
//! and NULs are refused, and climbing above `/` is an error rather than
//! being clamped (a client that sends it is broken or probing).

#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    /// Decoded, slash-merged, dot-segment-free path; always starts with `/`.
    pub path: Vec<u8>,
    /// Raw query as sent, without the `?`.
    pub query: Option<Vec<u8>>,
}

/// Resolves a raw request-target (origin-form or absolute-form).
/// `Err` means 400 Bad Request; there is nothing more to say to the client,
/// hence the unit error.
#[allow(clippy::result_unit_err)]
pub fn resolve_target(raw: &[u8]) -> Result<Target, ()> {
    // A fragment is never sent by conforming clients (RFC 9112 3.2) and
    // would otherwise be served as part of the path or query.
    if memchr::memchr(b'#', raw).is_some() {
        return Err(());
    }
    let rest = match raw.first() {
        Some(b'/') => raw,
        _ => strip_absolute_prefix(raw)?,
    };
    let (raw_path, query) = match memchr::memchr(b'?', rest) {
        Some(q) => (&rest[..q], Some(rest[q + 1..].to_vec())),
        None => (rest, None),
    };
    Ok(Target {
        path: normalize_path(raw_path)?,
        query,
    })
}

/// For absolute-form (`http://host[:port]/path?q`), validates the scheme
/// and authority and returns the part from the path on. An empty path is
/// returned as-is; [`normalize_path`] turns it into `/`.
fn strip_absolute_prefix(raw: &[u8]) -> Result<&[u8], ()> {
    let after_scheme = strip_prefix_ignore_case(raw, b"http://")
        .or_else(|| strip_prefix_ignore_case(raw, b"https://"))
        .ok_or(())?;
    let auth_end = after_scheme
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(after_scheme.len());
    let (authority, rest) = after_scheme.split_at(auth_end);
    // RFC 9110 4.2.1: an empty host is invalid for http(s); 4.2.4: userinfo
    // is deprecated and must be treated as an error (`@` is no host byte).
    if !super::host::is_valid_authority(authority, false) {
        return Err(());
    }
    Ok(rest)
}

fn strip_prefix_ignore_case<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

use super::host::{is_sub_delim, is_unreserved};

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes, merges slashes and removes dot segments in one pass.
fn normalize_path(raw: &[u8]) -> Result<Vec<u8>, ()> {
    let mut decoded = Vec::with_capacity(raw.len().saturating_add(1));
    let mut bytes = raw.iter();
    while let Some(&b) = bytes.next() {
        let b = if b == b'%' {
            let hi = bytes.next().copied().and_then(hex_val).ok_or(())?;
            let lo = bytes.next().copied().and_then(hex_val).ok_or(())?;
            let d = (hi << 4) | lo;
            // An encoded slash would let one segment span directories (and
            // dodge dot-segment removal); encoded NUL truncates C paths.
            if d == b'/' || d == 0 {
                return Err(());
            }
            d
        } else if b == 0 {
            return Err(());
        } else {
            b
        };
        decoded.push(b);
    }

    // Segments are appended as "/seg", so `out` is empty exactly when the
    // path is at the root, and ".." is "truncate to the last '/'".
    let mut out: Vec<u8> = Vec::with_capacity(decoded.len().saturating_add(1));
    let mut trailing_slash = false;
    for seg in decoded.split(|&b| b == b'/') {
        match seg {
            b"" => continue,
            b"." => trailing_slash = true,
            b".." => {
                let parent = memchr::memrchr(b'/', &out).ok_or(())?;
                out.truncate(parent);
                trailing_slash = true;
            }
            _ => {
                out.push(b'/');
                out.extend_from_slice(seg);
                trailing_slash = false;
            }
        }
    }
    if decoded.last() == Some(&b'/') {
        trailing_slash = true;
    }
    if out.is_empty() || trailing_slash {
        out.push(b'/');
    }
    Ok(out)
}

/// Whether `path` names a dotfile or something inside a dot-directory.
/// `/.well-known/` (RFC 8615) is exempt as the first segment only, so its
/// own contents are still checked.
pub fn is_hidden(path: &[u8]) -> bool {
    let mut segments = path
        .split(|&b| b == b'/')
        .filter(|s| !s.is_empty())
        .peekable();
    if segments.peek() == Some(&&b".well-known"[..]) {
        segments.next();
    }
    segments.any(|s| s.starts_with(b"."))
}

/// Bytes that may appear unescaped in a path segment of a Location header.
fn is_path_safe(b: u8) -> bool {
    is_unreserved(b) || is_sub_delim(b) || matches!(b, b'/' | b':' | b'@')
}

fn push_pct(b: u8, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push(b'%');
    out.push(HEX[usize::from(b >> 4)]);
    out.push(HEX[usize::from(b & 0x0f)]);
}

/// Appends the `Location` for the "add a trailing slash" redirect of a
/// directory: the encoded path, a `/`, then `?query` if there was one.
///
/// The result always starts with exactly one `/`: a Location beginning with
/// `//` would be a scheme-relative URL pointing at another host (open
/// redirect). A path that already ends in `/` gets no second one.
///
/// The query is copied verbatim except for bytes that are never valid in a
/// URI (controls, space, non-ASCII), which are percent-encoded so that no
/// caller can smuggle them into a header.
pub fn write_redirect_location(path: &[u8], query: Option<&[u8]>, out: &mut Vec<u8>) {
    let mut rest = path;
    while let [b'/', tail @ ..] = rest {
        rest = tail;
    }
    out.reserve(rest.len().saturating_add(2));
    out.push(b'/');
    for &b in rest {
        if is_path_safe(b) {
            out.push(b);
        } else {
            push_pct(b, out);
        }
    }
    if out.last() != Some(&b'/') {
        out.push(b'/');
    }
    if let Some(q) = query {
        out.push(b'?');
        for &b in q {
            if (0x21..0x7f).contains(&b) {
                out.push(b);
            } else {
                push_pct(b, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(raw: &[u8]) -> Result<Vec<u8>, ()> {
        resolve_target(raw).map(|t| t.path)
    }

    fn ok(raw: &[u8], want: &[u8]) {
        assert_eq!(
            path(raw).as_deref(),
            Ok(want),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }

    fn bad(raw: &[u8]) {
        assert_eq!(path(raw), Err(()), "{:?}", String::from_utf8_lossy(raw));
    }

    #[test]
    fn origin_form_basics() {
        ok(b"/", b"/");
        ok(b"/index.html", b"/index.html");
        ok(b"/a/b/", b"/a/b/");
        ok(b"/sub/../a.txt", b"/a.txt");
        ok(b"//evil.com/x", b"/evil.com/x");
        ok(b"/a//b///c", b"/a/b/c");
        ok(b"/a%5cb", b"/a\\b");
        ok(b"/%41%42%63", b"/ABc");
        ok(b"/%e2%82%ac", "/\u{20ac}".as_bytes());
        ok(b"/%ff%fe", b"/\xff\xfe");
        ok(b"/a%20b", b"/a b");
        ok(b"/...", b"/...");
        ok(b"/.hidden", b"/.hidden");
        ok(b"/a..b/..c", b"/a..b/..c");
    }

    #[test]
    fn dot_segments() {
        ok(b"/a/b/..", b"/a/");
        ok(b"/a/b/.", b"/a/b/");
        ok(b"/a/./b", b"/a/b");
        ok(b"/a/b/../../c", b"/c");
        ok(b"/a/..", b"/");
        ok(b"/.", b"/");
        ok(b"/./", b"/");
        ok(b"/a/%2e%2E/b", b"/b");
        ok(b"/a/.%2e", b"/");
        ok(b"/a//..//b", b"/b");
        bad(b"/..");
        bad(b"/../a");
        bad(b"/a/../../b");
        bad(b"/%2e%2e/etc/passwd");
        bad(b"/a/%2e%2e/%2e%2e/x");
        bad(b"/./../x");
    }

    #[test]
    fn rejected_encodings() {
        bad(b"/..%2fetc");
        bad(b"/a%2Fb");
        bad(b"/a%00b");
        bad(b"/a\0b");
        bad(b"/a%zz");
        bad(b"/a%4");
        bad(b"/a%");
        bad(b"/a%g0");
        bad(b"/a#frag");
        bad(b"/a?x#frag");
    }

    #[test]
    fn query_is_split_and_kept_raw() {
        let t = resolve_target(b"/a?x=1").unwrap();
        assert_eq!(
            t,
            Target {
                path: b"/a".to_vec(),
                query: Some(b"x=1".to_vec())
            }
        );
        let t = resolve_target(b"/a%3fb?x=%2F&y=?z").unwrap();
        assert_eq!(t.path, b"/a?b");
        assert_eq!(t.query.as_deref(), Some(&b"x=%2F&y=?z"[..]));
        let t = resolve_target(b"/?").unwrap();
        assert_eq!(
            t,
            Target {
                path: b"/".to_vec(),
                query: Some(Vec::new())
            }
        );
        // The query is never decoded, so bad escapes there are the app's business.
        assert!(resolve_target(b"/?%zz").is_ok());
    }

    #[test]
    fn absolute_form() {
        let t = resolve_target(b"http://h/a/../b?q").unwrap();
        assert_eq!(
            t,
            Target {
                path: b"/b".to_vec(),
                query: Some(b"q".to_vec())
            }
        );
        ok(b"HTTPS://example.com:8443/x", b"/x");
        ok(b"http://example.com", b"/");
        ok(b"http://[::1]:80/y", b"/y");
        let t = resolve_target(b"http://example.com?q=1").unwrap();
        assert_eq!(
            t,
            Target {
                path: b"/".to_vec(),
                query: Some(b"q=1".to_vec())
            }
        );
        bad(b"http:///a");
        bad(b"http://user@host/a");
        bad(b"http://ho st/a");
        bad(b"ftp://h/a");
        bad(b"http:/h/a");
        bad(b"http://h/../a");
        bad(b"http://h#x");
    }

    #[test]
    fn other_forms_rejected() {
        bad(b"");
        bad(b"*");
        bad(b"example.com:443");
        bad(b"a/b");
        bad(b"\\a");
        bad(b"%2fa");
    }

    #[test]
    fn hidden_paths() {
        assert!(is_hidden(b"/.git/config"));
        assert!(is_hidden(b"/a/.env"));
        assert!(is_hidden(b"/.env"));
        assert!(is_hidden(b"/a/.b/"));
        assert!(is_hidden(b"/.well-known/.git"));
        assert!(is_hidden(b"/a/.well-known/x"));
        assert!(is_hidden(b"/.well-known/../.x"));
        assert!(is_hidden(b"/.well-knownx/a"));
        assert!(!is_hidden(b"/.well-known/acme-challenge/x"));
        assert!(!is_hidden(b"/.well-known"));
        assert!(!is_hidden(b"/.well-known/"));
        assert!(!is_hidden(b"/a.b/c"));
        assert!(!is_hidden(b"/"));
        assert!(!is_hidden(b""));
        assert!(!is_hidden(b"/a/b."));
    }

    fn loc(path: &[u8], query: Option<&[u8]>) -> Vec<u8> {
        let mut out = Vec::new();
        write_redirect_location(path, query, &mut out);
        out
    }

    #[test]
    fn redirect_location_encoding() {
        assert_eq!(loc(b"/docs", None), b"/docs/");
        assert_eq!(loc(b"/docs", Some(b"a=1&b")), b"/docs/?a=1&b");
        assert_eq!(loc(b"/docs", Some(b"")), b"/docs/?");
        assert_eq!(loc(b"/a b", None), b"/a%20b/");
        assert_eq!(loc(b"/50%", None), b"/50%25/");
        assert_eq!(loc(b"/a?b#c", None), b"/a%3Fb%23c/");
        assert_eq!(loc(b"/\xc3\xa9", None), b"/%C3%A9/");
        assert_eq!(loc(b"/a\\b", None), b"/a%5Cb/");
        assert_eq!(
            loc(b"/a\r\nSet-Cookie: x", None),
            b"/a%0D%0ASet-Cookie:%20x/"
        );
        assert_eq!(loc(b"/k-._~!$&'()*+,;=:@z", None), b"/k-._~!$&'()*+,;=:@z/");
        assert_eq!(loc(b"/a", Some(b"x y\r\n\xff")), b"/a/?x%20y%0D%0A%FF");
    }

    #[test]
    fn redirect_location_never_starts_with_double_slash() {
        assert_eq!(loc(b"//evil.com", None), b"/evil.com/");
        assert_eq!(loc(b"///evil.com/x", Some(b"q")), b"/evil.com/x/?q");
        assert_eq!(loc(b"/", None), b"/");
        assert_eq!(loc(b"", None), b"/");
        assert_eq!(loc(b"//", None), b"/");
        assert_eq!(loc(b"evil", None), b"/evil/");
        assert_eq!(loc(b"/a/", None), b"/a/");
        let mut out = b"prefix:".to_vec();
        write_redirect_location(b"//x", None, &mut out);
        assert_eq!(out, b"prefix:/x/");
    }

    #[test]
    fn normalization_never_panics_and_stays_rooted() {
        let alphabet: [&[u8]; 9] = [b"/", b".", b"..", b"%2e", b"%2", b"a", b"%", b"?", b"\xff"];
        // Every sequence of up to 5 pieces.
        let mut stack: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..5 {
            let mut next = Vec::new();
            for prefix in &stack {
                for piece in alphabet {
                    let mut s = prefix.clone();
                    s.extend_from_slice(piece);
                    for candidate in [s.clone(), [b"/".as_slice(), &s].concat()] {
                        if let Ok(t) = resolve_target(&candidate) {
                            assert!(t.path.starts_with(b"/"));
                            assert!(!t.path.starts_with(b"//"));
                            assert!(!t.path.windows(2).any(|w| w == b"//"));
                            let segs = t.path.split(|&b| b == b'/');
                            assert!(segs.clone().all(|s| s != b".." && s != b"."));
                        }
                    }
                    next.push(s);
                }
            }
            stack = next;
        }
    }
}
