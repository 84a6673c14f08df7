//! Conditional request evaluation (RFC 9110 13).
//!
//! This server only answers GET and HEAD for files that exist, so
//! [`evaluate`] assumes both: a matching `If-None-Match` yields
//! [`Precondition::NotModified`] (it would be 412 for unsafe methods), and
//! `*` always matches.
//!
//! Dates are second-granular, and a file can be rewritten twice within one second, so a
//! Last-Modified is only a strong validator when the server knows its second was over when the
//! file was looked at (RFC 9110 8.8.2.2): every later change then has a later date. The cache
//! records that (`FileEntry::lm_strong`), and a version seen during its own second is served
//! without Last-Modified, so a date a client holds always names the last version of its second.
//! Against a version whose date is not strong, no date condition is taken as proof that the
//! bytes are unchanged: If-Range is not satisfied (200, the whole file), and neither
//! If-Modified-Since (no 304) nor If-Unmodified-Since (412) is answered from it. The entity-tag
//! is nginx's (modification second and size), so it shares the date's limit for a rewrite of
//! the same size within the same second; it is compared as sent.

use super::date::parse_http_date;
use super::token::{trim_leading_ows, trim_ows};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Serve the representation normally.
    Proceed,
    /// Answer 304 Not Modified.
    NotModified,
    /// Answer 412 Precondition Failed.
    Failed,
}

/// The validators of the selected representation.
pub struct Validators<'a> {
    /// Full strong entity-tag including the quotes, e.g. `"1a-2b-3c"`.
    pub etag: &'a [u8],
    /// Last modification time, Unix seconds.
    pub last_modified: i64,
    /// Whether `last_modified` is a strong validator (see the module docs).
    pub last_modified_strong: bool,
}

impl Validators<'_> {
    /// Whether the Last-Modified date is a strong validator (see the module docs).
    pub fn date_is_strong(&self) -> bool {
        self.last_modified_strong
    }
}

/// Evaluates the preconditions in the order RFC 9110 13.2.2 prescribes.
///
/// Date-based conditions are only consulted when the corresponding
/// entity-tag condition is absent, and an invalid date makes its field be
/// ignored, as the RFC requires.
pub fn evaluate(
    if_match: Option<&[u8]>,
    if_unmodified_since: Option<&[u8]>,
    if_none_match: Option<&[u8]>,
    if_modified_since: Option<&[u8]>,
    v: &Validators,
) -> Precondition {
    if let Some(list) = if_match {
        if !etag_list_matches(list, v.etag, Comparison::Strong) {
            return Precondition::Failed;
        }
    } else if let Some(date) = if_unmodified_since.and_then(parse_http_date) {
        if v.last_modified > date || !v.date_is_strong() {
            return Precondition::Failed;
        }
    }

    if let Some(list) = if_none_match {
        if etag_list_matches(list, v.etag, Comparison::Weak) {
            return Precondition::NotModified;
        }
    } else if let Some(date) = if_modified_since.and_then(parse_http_date) {
        if v.last_modified <= date && v.date_is_strong() {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// Whether a `Range` request may be honored given its `If-Range` value
/// (RFC 9110 13.1.5). Anything unparsable means "send the whole thing".
pub fn if_range_allows_range(if_range: &[u8], v: &Validators) -> bool {
    let value = trim_ows(if_range);
    if value.starts_with(b"\"") || value.starts_with(b"W/") {
        return match parse_entity_tag(value) {
            Some((tag, [])) => strong_eq(&tag, v.etag),
            _ => false,
        };
    }
    // A date only counts as a validator when it is exactly the file's
    // modification time, and that second is over: anything else cannot
    // prove the bytes are the same (RFC 9110 13.1.5, 8.8.2.2).
    v.date_is_strong() && parse_http_date(value) == Some(v.last_modified)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Strong,
    Weak,
}

/// One parsed entity-tag: `opaque` includes its quotes.
struct EntityTag<'a> {
    weak: bool,
    opaque: &'a [u8],
}

/// Splits a possibly weak entity-tag (`W/"..."`) off the front of `s`,
/// returning it and the unparsed remainder.
fn parse_entity_tag(s: &[u8]) -> Option<(EntityTag<'_>, &[u8])> {
    let (weak, s) = match s.strip_prefix(b"W/") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let body = s.strip_prefix(b"\"")?;
    let close = memchr::memchr(b'"', body)?;
    let inner = body.get(..close)?;
    // etagc = %x21 / %x23-7E / obs-text
    if !inner
        .iter()
        .all(|&b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
    {
        return None;
    }
    let opaque = s.get(..close.checked_add(2)?)?;
    let rest = s.get(close.checked_add(2)?..)?;
    Some((EntityTag { weak, opaque }, rest))
}

fn strong_eq(tag: &EntityTag, current: &[u8]) -> bool {
    !tag.weak && tag.opaque == current
}

fn weak_eq(tag: &EntityTag, current: &[u8]) -> bool {
    let current = current.strip_prefix(b"W/").unwrap_or(current);
    tag.opaque == current
}

/// Whether `list` (`*` or a `#entity-tag` list) matches the current tag.
///
/// The whole list is validated before answering: a malformed list matches
/// nothing, so a garbled `If-None-Match` can never produce a 304 by luck.
/// (For `If-Match` that means 412, which is the conservative outcome too.)
fn etag_list_matches(list: &[u8], current: &[u8], cmp: Comparison) -> bool {
    let list = trim_ows(list);
    if list == b"*" {
        return true;
    }
    // RFC 9110 13.1.1/13.1.2: strong comparison can never succeed against a
    // weak current validator; weak comparison ignores the W/ prefix.
    let current_weak = current.starts_with(b"W/");
    let mut matched = false;
    let mut seen_any = false;
    let mut rest = list;
    loop {
        // The `#` rule tolerates empty list elements.
        while let [b' ' | b'\t' | b',', tail @ ..] = rest {
            rest = tail;
        }
        if rest.is_empty() {
            break;
        }
        let Some((tag, tail)) = parse_entity_tag(rest) else {
            return false;
        };
        seen_any = true;
        matched |= match cmp {
            Comparison::Strong => !current_weak && strong_eq(&tag, current),
            Comparison::Weak => weak_eq(&tag, current),
        };
        let tail = trim_leading_ows(tail);
        match tail {
            [] => break,
            [b',', ..] => rest = tail,
            _ => return false,
        }
    }
    seen_any && matched
}

#[cfg(test)]
mod tests {
    use super::*;

    const LM: i64 = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT
    const LM_STR: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";
    const BEFORE: &[u8] = b"Sun, 06 Nov 1994 08:49:36 GMT";
    const AFTER: &[u8] = b"Sun, 06 Nov 1994 08:49:38 GMT";

    fn v() -> Validators<'static> {
        Validators {
            etag: b"\"1a-2b\"",
            last_modified: LM,
            last_modified_strong: true,
        }
    }

    fn eval(
        im: Option<&[u8]>,
        ius: Option<&[u8]>,
        inm: Option<&[u8]>,
        ims: Option<&[u8]>,
    ) -> Precondition {
        evaluate(im, ius, inm, ims, &v())
    }

    use Precondition::*;

    #[test]
    fn no_conditions_proceed() {
        assert_eq!(eval(None, None, None, None), Proceed);
    }

    #[test]
    fn if_match_uses_strong_comparison() {
        assert_eq!(eval(Some(b"\"1a-2b\""), None, None, None), Proceed);
        assert_eq!(eval(Some(b"*"), None, None, None), Proceed);
        assert_eq!(eval(Some(b" * "), None, None, None), Proceed);
        assert_eq!(eval(Some(b"\"x\", \"1a-2b\""), None, None, None), Proceed);
        assert_eq!(eval(Some(b"W/\"1a-2b\""), None, None, None), Failed);
        assert_eq!(eval(Some(b"\"other\""), None, None, None), Failed);
        assert_eq!(eval(Some(b""), None, None, None), Failed);
        // Malformed lists match nothing, even if a good member is present.
        assert_eq!(eval(Some(b"\"1a-2b\" junk"), None, None, None), Failed);
        assert_eq!(eval(Some(b"\"1a-2b\", *"), None, None, None), Failed);
        assert_eq!(eval(Some(b"1a-2b"), None, None, None), Failed);
        // If-Match wins over If-Unmodified-Since.
        assert_eq!(eval(Some(b"\"1a-2b\""), Some(BEFORE), None, None), Proceed);
    }

    #[test]
    fn strong_comparison_never_matches_weak_current_tag() {
        let weak = Validators {
            etag: b"W/\"1a-2b\"",
            last_modified: LM,
            last_modified_strong: true,
        };
        assert_eq!(
            evaluate(Some(b"W/\"1a-2b\""), None, None, None, &weak),
            Failed
        );
        assert_eq!(
            evaluate(Some(b"\"1a-2b\""), None, None, None, &weak),
            Failed
        );
        assert_eq!(
            evaluate(None, None, Some(b"\"1a-2b\""), None, &weak),
            NotModified
        );
        assert!(!if_range_allows_range(b"W/\"1a-2b\"", &weak));
    }

    #[test]
    fn if_unmodified_since() {
        assert_eq!(eval(None, Some(LM_STR), None, None), Proceed);
        assert_eq!(eval(None, Some(AFTER), None, None), Proceed);
        assert_eq!(eval(None, Some(BEFORE), None, None), Failed);
        assert_eq!(eval(None, Some(b"yesterday"), None, None), Proceed);
    }

    #[test]
    fn if_none_match_uses_weak_comparison() {
        assert_eq!(eval(None, None, Some(b"\"1a-2b\""), None), NotModified);
        assert_eq!(eval(None, None, Some(b"W/\"1a-2b\""), None), NotModified);
        assert_eq!(eval(None, None, Some(b"*"), None), NotModified);
        assert_eq!(
            eval(None, None, Some(b"\"a\",,\t\"1a-2b\" ,"), None),
            NotModified
        );
        assert_eq!(eval(None, None, Some(b"\"a\", \"b\""), None), Proceed);
        assert_eq!(eval(None, None, Some(b"\"1a-2b"), None), Proceed);
        assert_eq!(eval(None, None, Some(b"w/\"1a-2b\""), None), Proceed);
        assert_eq!(eval(None, None, Some(b"\"1a-2b\"\"1a-2b\""), None), Proceed);
        assert_eq!(eval(None, None, Some(b"\"1a 2b\""), None), Proceed);
        // If-None-Match present: If-Modified-Since is ignored.
        assert_eq!(eval(None, None, Some(b"\"zz\""), Some(AFTER)), Proceed);
    }

    #[test]
    fn if_modified_since() {
        assert_eq!(eval(None, None, None, Some(LM_STR)), NotModified);
        assert_eq!(eval(None, None, None, Some(AFTER)), NotModified);
        assert_eq!(eval(None, None, None, Some(BEFORE)), Proceed);
        assert_eq!(eval(None, None, None, Some(b"garbage")), Proceed);
        assert_eq!(
            eval(None, None, None, Some(b"Sun Nov  6 08:49:37 1994")),
            NotModified
        );
    }

    #[test]
    fn failed_wins_over_not_modified() {
        assert_eq!(eval(Some(b"\"nope\""), None, Some(b"*"), None), Failed);
        assert_eq!(eval(None, Some(BEFORE), None, Some(LM_STR)), Failed);
    }

    #[test]
    fn if_range() {
        let v = v();
        assert!(if_range_allows_range(b"\"1a-2b\"", &v));
        assert!(if_range_allows_range(b" \"1a-2b\" ", &v));
        assert!(!if_range_allows_range(b"W/\"1a-2b\"", &v));
        assert!(!if_range_allows_range(b"\"other\"", &v));
        assert!(!if_range_allows_range(b"\"1a-2b\", \"x\"", &v));
        assert!(!if_range_allows_range(b"\"1a-2b", &v));
        assert!(if_range_allows_range(LM_STR, &v));
        assert!(!if_range_allows_range(AFTER, &v));
        assert!(!if_range_allows_range(BEFORE, &v));
        assert!(!if_range_allows_range(b"", &v));
        assert!(!if_range_allows_range(b"*", &v));
        assert!(!if_range_allows_range(b"\xff\xff\xff", &v));
    }

    #[test]
    fn a_date_in_the_files_own_second_proves_nothing() {
        // Rewritten within the second the client saw: the date matches, the bytes may not.
        {
            let v = Validators {
                last_modified_strong: false,
                ..v()
            };
            assert!(!v.date_is_strong());
            assert!(!if_range_allows_range(LM_STR, &v));
            assert_eq!(evaluate(None, None, None, Some(LM_STR), &v), Proceed);
            assert_eq!(evaluate(None, None, None, Some(AFTER), &v), Proceed);
            assert_eq!(evaluate(None, Some(LM_STR), None, None, &v), Failed);
            assert_eq!(evaluate(None, Some(AFTER), None, None, &v), Failed);
            // The entity-tag is compared as sent, whatever the date.
            assert!(if_range_allows_range(b"\"1a-2b\"", &v));
            assert_eq!(
                evaluate(None, None, Some(b"\"1a-2b\""), None, &v),
                NotModified
            );
            assert_eq!(evaluate(Some(b"\"1a-2b\""), None, None, None, &v), Proceed);
        }
        // A version looked at after its second was over: the date is strong.
        let v = v();
        assert!(v.date_is_strong());
        assert!(if_range_allows_range(LM_STR, &v));
        assert_eq!(evaluate(None, None, None, Some(LM_STR), &v), NotModified);
        assert_eq!(evaluate(None, Some(LM_STR), None, None, &v), Proceed);
    }

    #[test]
    fn entity_tag_parsing_edges() {
        assert!(parse_entity_tag(b"\"\"").is_some());
        assert!(parse_entity_tag(b"W/").is_none());
        assert!(parse_entity_tag(b"W/\"").is_none());
        assert!(parse_entity_tag(b"\"").is_none());
        assert!(parse_entity_tag(b"").is_none());
        assert!(parse_entity_tag(b"\"\x7f\"").is_none());
        let (t, rest) = parse_entity_tag(b"W/\"\xc3\xa9\" tail").unwrap();
        assert!(t.weak);
        assert_eq!(t.opaque, b"\"\xc3\xa9\"");
        assert_eq!(rest, b" tail");
        // Empty tags are legal and compare like any other.
        let empty = Validators {
            etag: b"\"\"",
            last_modified: 0,
            last_modified_strong: true,
        };
        assert_eq!(
            evaluate(None, None, Some(b"\"\""), None, &empty),
            NotModified
        );
    }

    #[test]
    fn garbage_never_panics() {
        let v = v();
        let inputs: [&[u8]; 10] = [
            b",",
            b",,,",
            b"W",
            b"W/W/\"a\"",
            b"\"a\"W/",
            b"\xff",
            b"\"",
            b"\" ,",
            b"*,*",
            b" ",
        ];
        for s in inputs {
            let _ = evaluate(Some(s), Some(s), Some(s), Some(s), &v);
            let _ = evaluate(None, None, Some(s), Some(s), &v);
            let _ = if_range_allows_range(s, &v);
        }
        assert_eq!(eval(None, None, Some(b",,,"), None), Proceed);
    }
}
