//! Request-head parsing (RFC 9112 2-3, 5-6).
//!
//! [`parse_head`] is called on every read, so it does not allocate: the
//! [`Request`] borrows from the input and header fields are collected into
//! a stack array. The request line is parsed here rather than by httparse
//! because httparse only knows HTTP/1.0 and 1.1, while RFC 9112 2.3 wants
//! any HTTP/1.x treated as 1.1 and other majors answered with 505. The
//! field section is parsed by `httparse::parse_headers`.
//!
//! Both size limits are enforced on incomplete input too, so a server can
//! stop buffering as soon as a head can no longer fit: [`Parsed::Partial`]
//! is only returned while the buffer is still within the limits.

use super::token::{parse_u64, trim_ows};
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    /// A method RFC 9110 9.3 or RFC 5789 defines that this server does not allow (POST, PUT,
    /// DELETE, CONNECT, OPTIONS, TRACE, PATCH): 405 with `Allow`.
    NotAllowed,
    /// Any other syntactically valid method token, `get` included (methods are
    /// case-sensitive): 501 Not Implemented (RFC 9110 9.1).
    Unknown,
}

impl Method {
    fn from_token(m: &[u8]) -> Method {
        match m {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" | b"PUT" | b"DELETE" | b"CONNECT" | b"OPTIONS" | b"TRACE" | b"PATCH" => {
                Method::NotAllowed
            }
            _ => Method::Unknown,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    /// HTTP/1.1 or any higher HTTP/1.x.
    Http11,
}

/// Why a head was rejected; each maps to one status (see [`HeadError::status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadError {
    BadRequest,
    UriTooLong,
    HeadersTooLarge,
    VersionNotSupported,
}

impl HeadError {
    pub fn status(self) -> u16 {
        match self {
            HeadError::BadRequest => 400,
            HeadError::UriTooLong => 414,
            HeadError::HeadersTooLarge => 431,
            HeadError::VersionNotSupported => 505,
        }
    }
}

/// A parsed request head. Conditional/range fields hold the raw (OWS
/// trimmed) field value.
///
/// Repeated fields: `Host`, `Content-Length`, `Range` and `If-Range` must
/// be single, so a repeat is a 400 (ambiguous framing, routing or byte
/// selection). A repeated `If-Modified-Since` or `If-Unmodified-Since` is a
/// list of dates, which RFC 9110 13.1.3-4 says to ignore: it is kept as an
/// empty value. For the other optional fields the first occurrence is kept:
/// combining list fields would need an allocation, and dropping later
/// members of `If-None-Match` only costs a 304 that becomes a 200.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: Method,
    pub version: Version,
    /// Raw request-target bytes as sent.
    pub target: &'a [u8],
    /// Whether the connection may be reused after this exchange.
    pub keep_alive: bool,
    /// A body follows the head (never for GET or HEAD, which refuse framing that announces one).
    pub has_body: bool,
    pub if_none_match: Option<&'a [u8]>,
    pub if_modified_since: Option<&'a [u8]>,
    pub if_match: Option<&'a [u8]>,
    pub if_unmodified_since: Option<&'a [u8]>,
    pub range: Option<&'a [u8]>,
    pub if_range: Option<&'a [u8]>,
    /// Read by `http::accept_encoding` only when the file has coded variants.
    pub accept_encoding: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    pub referer: Option<&'a [u8]>,
    /// The Host field (validated; possibly empty), for `--redirect-https`.
    pub host: Option<&'a [u8]>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// The head, and the bytes it occupied including the empty line.
    Complete(Request<'a>, usize),
    /// More input is needed; the buffer is still within every limit.
    Partial,
}

/// Longest request line accepted, excluding its line terminator.
pub const MAX_REQUEST_LINE: usize = 8192;
/// Longest field section accepted: all field lines with their terminators,
/// excluding the final empty line.
pub const MAX_HEADER_BYTES: usize = 8192;
/// Most header fields accepted.
pub const MAX_HEADERS: usize = 100;
/// Most empty lines skipped before the request line (RFC 9112 2.2 asks
/// for "at least one"); bounded so that a stream of CRLFs is an error.
pub const MAX_LEADING_EMPTY_LINES: usize = 8;

/// Parses one request head from the start of `buf`.
pub fn parse_head(buf: &[u8]) -> Result<Parsed<'_>, HeadError> {
    let (skipped, after_empty) = skip_leading_empty_lines(buf)?;

    // Only look as far as a maximal line could reach so that huge buffers
    // are not scanned: content, optional CR, LF.
    let window = after_empty
        .get(..MAX_REQUEST_LINE.saturating_add(2))
        .unwrap_or(after_empty);
    let Some(lf) = memchr::memchr(b'\n', window) else {
        let pending = after_empty.strip_suffix(b"\r").unwrap_or(after_empty);
        if pending.len() > MAX_REQUEST_LINE {
            return Err(HeadError::UriTooLong);
        }
        // Reject garbage (e.g. a TLS ClientHello) now instead of waiting
        // for the limit or a timeout.
        check_request_line(pending, false)?;
        return Ok(Parsed::Partial);
    };
    let (line_with_cr, fields) = after_empty.split_at(lf);
    let fields = fields.get(1..).unwrap_or_default();
    let line = line_with_cr.strip_suffix(b"\r").unwrap_or(line_with_cr);
    if line.len() > MAX_REQUEST_LINE {
        return Err(HeadError::UriTooLong);
    }
    let Some((method, target, version)) = check_request_line(line, true)? else {
        // A complete line always yields a result or an error.
        return Err(HeadError::BadRequest);
    };

    // As above, parse at most what a maximal field section could occupy:
    // MAX_HEADER_BYTES of field lines plus a CRLF empty line.
    let limit = MAX_HEADER_BYTES.saturating_add(2);
    let fields_window = fields.get(..limit).unwrap_or(fields);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let (fields_len, headers) = match httparse::parse_headers(fields_window, &mut headers) {
        Ok(httparse::Status::Complete((n, hs))) => {
            let terminator = if fields_window.get(..n).is_some_and(|f| f.ends_with(b"\r\n")) {
                2
            } else {
                1
            };
            if n.saturating_sub(terminator) > MAX_HEADER_BYTES {
                return Err(HeadError::HeadersTooLarge);
            }
            (n, hs)
        }
        Ok(httparse::Status::Partial) => {
            // Everything buffered so far is field-line bytes, except a lone
            // CR after a line end, which can only begin the empty line.
            let within = fields.len() <= MAX_HEADER_BYTES
                || (fields.len() == MAX_HEADER_BYTES + 1 && fields.ends_with(b"\n\r"));
            if !within {
                return Err(HeadError::HeadersTooLarge);
            }
            return Ok(Parsed::Partial);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::HeadersTooLarge),
        Err(_) => return Err(HeadError::BadRequest),
    };

    let mut req = Request {
        method,
        version,
        target,
        keep_alive: version == Version::Http11,
        has_body: false,
        if_none_match: None,
        if_modified_since: None,
        if_match: None,
        if_unmodified_since: None,
        range: None,
        if_range: None,
        accept_encoding: None,
        user_agent: None,
        referer: None,
        host: None,
    };
    apply_fields(&mut req, headers)?;

    let consumed = skipped
        .checked_add(lf)
        .and_then(|n| n.checked_add(1))
        .and_then(|n| n.checked_add(fields_len))
        .ok_or(HeadError::BadRequest)?;
    Ok(Parsed::Complete(req, consumed))
}

/// Skips up to [`MAX_LEADING_EMPTY_LINES`] CRLF or LF lines, returning how
/// many bytes were skipped and the rest.
fn skip_leading_empty_lines(buf: &[u8]) -> Result<(usize, &[u8]), HeadError> {
    let mut rest = buf;
    for _ in 0..MAX_LEADING_EMPTY_LINES {
        rest = match rest {
            [b'\r', b'\n', tail @ ..] | [b'\n', tail @ ..] => tail,
            _ => return Ok((buf.len() - rest.len(), rest)),
        };
    }
    match rest {
        [b'\r', b'\n', ..] | [b'\n', ..] => Err(HeadError::BadRequest),
        _ => Ok((buf.len() - rest.len(), rest)),
    }
}

/// tchar (RFC 9110 5.6.2).
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// Bytes accepted in a request-target: visible ASCII, plus obs-text that
/// some clients send unencoded (the same set httparse accepts).
/// `resolve_target` decides what the bytes mean.
fn is_target_byte(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) || b >= 0x80
}

/// Method, request-target and version of a request line.
type RequestLine<'a> = (Method, &'a [u8], Version);

/// Validates `method SP request-target SP HTTP-version` (RFC 9112 3).
///
/// With `complete == false` the line may be cut anywhere: `Ok(None)` means
/// "a valid prefix so far". Exactly one SP separates the parts; the RFC
/// permits lenient whitespace parsing but strictness removes ambiguity
/// with intermediaries.
fn check_request_line(line: &[u8], complete: bool) -> Result<Option<RequestLine<'_>>, HeadError> {
    let bad = Err(HeadError::BadRequest);
    let Some(sp1) = memchr::memchr(b' ', line) else {
        return if !complete && line.iter().all(|&b| is_tchar(b)) {
            Ok(None)
        } else {
            bad
        };
    };
    let (method, rest) = (&line[..sp1], &line[sp1 + 1..]);
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return bad;
    }
    let Some(sp2) = memchr::memchr(b' ', rest) else {
        return if !complete && rest.iter().all(|&b| is_target_byte(b)) {
            Ok(None)
        } else {
            bad
        };
    };
    let (target, version) = (&rest[..sp2], &rest[sp2 + 1..]);
    if target.is_empty() || !target.iter().all(|&b| is_target_byte(b)) {
        return bad;
    }
    let Some(version) = check_version(version, complete)? else {
        return Ok(None);
    };
    // CONNECT's target is authority-form, `host:port` (RFC 9112 3.2.3); anything else is a
    // malformed request, whether or not we would allow the method.
    if method == b"CONNECT" && !super::host::is_valid_authority(target, true) {
        return bad;
    }
    Ok(Some((Method::from_token(method), target, version)))
}

/// `HTTP/<d>.<d>` (RFC 9112 2.3). The name is case-sensitive.
fn check_version(v: &[u8], complete: bool) -> Result<Option<Version>, HeadError> {
    const SHAPE: &[u8; 8] = b"HTTP/0.0";
    if v.len() > SHAPE.len() {
        return Err(HeadError::BadRequest);
    }
    let shape_ok = v.iter().zip(SHAPE).all(|(&b, &want)| {
        if want == b'0' {
            b.is_ascii_digit()
        } else {
            b == want
        }
    });
    if !shape_ok {
        return Err(HeadError::BadRequest);
    }
    // Only a complete line is judged: on a cut line, "HTTP/2.0" may still be followed by
    // more bytes that make it malformed (400, not 505), and the answer must not depend on how
    // the head was split into reads (found by the `head` fuzz target).
    match v {
        [.., major, b'.', minor] if complete && v.len() == SHAPE.len() => match (major, minor) {
            (b'1', b'0') => Ok(Some(Version::Http10)),
            (b'1', _) => Ok(Some(Version::Http11)),
            _ => Err(HeadError::VersionNotSupported),
        },
        _ if complete => Err(HeadError::BadRequest),
        _ => Ok(None),
    }
}

/// Records a field that may appear only once.
fn set_unique<'a>(slot: &mut Option<&'a [u8]>, v: &'a [u8]) -> Result<(), HeadError> {
    if slot.is_some() {
        return Err(HeadError::BadRequest);
    }
    *slot = Some(v);
    Ok(())
}

/// Records a date condition. RFC 9110 13.1.3-4: a field value with more than one member is
/// ignored, and a repeated field is such a list, so a repeat leaves an empty value, which is no
/// date and so is ignored.
fn set_date<'a>(slot: &mut Option<&'a [u8]>, v: &'a [u8]) {
    *slot = Some(if slot.is_some() { b"" } else { v });
}

fn set_first<'a>(slot: &mut Option<&'a [u8]>, v: &'a [u8]) {
    if slot.is_none() {
        *slot = Some(v);
    }
}

fn apply_fields<'a>(
    req: &mut Request<'a>,
    headers: &[httparse::Header<'a>],
) -> Result<(), HeadError> {
    let mut host: Option<&[u8]> = None;
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    // Whether the last coding of the last Transfer-Encoding field seen is `chunked`.
    let mut chunked_last = false;
    let mut conn_close = false;
    let mut conn_keep_alive = false;

    for h in headers {
        let name = h.name.as_bytes();
        let value = trim_ows(h.value);
        // Dispatching on length first keeps the common case (fields we do
        // not care about) to one comparison.
        let is = |lit: &[u8]| name.eq_ignore_ascii_case(lit);
        match name.len() {
            4 if is(b"host") => {
                if !super::host::is_valid_host_field(value) {
                    return Err(HeadError::BadRequest);
                }
                set_unique(&mut host, value)?;
            }
            5 if is(b"range") => set_unique(&mut req.range, value)?,
            7 if is(b"referer") => set_first(&mut req.referer, value),
            8 if is(b"if-match") => set_first(&mut req.if_match, value),
            8 if is(b"if-range") => set_unique(&mut req.if_range, value)?,
            10 if is(b"connection") => {
                for token in value.split(|&b| b == b',') {
                    let token = trim_ows(token);
                    if token.eq_ignore_ascii_case(b"close") {
                        conn_close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        conn_keep_alive = true;
                    }
                }
            }
            10 if is(b"user-agent") => set_first(&mut req.user_agent, value),
            13 if is(b"if-none-match") => set_first(&mut req.if_none_match, value),
            14 if is(b"content-length") => {
                // Repeats are refused even when equal: simpler, and no
                // legitimate client sends them (RFC 9112 6.3 lets us).
                if content_length.is_some() {
                    return Err(HeadError::BadRequest);
                }
                // 1*DIGIT (RFC 9110 8.6): "00" is a zero like "0".
                content_length = Some(parse_u64(value).ok_or(HeadError::BadRequest)?);
            }
            15 if is(b"accept-encoding") => set_first(&mut req.accept_encoding, value),
            17 if is(b"if-modified-since") => set_date(&mut req.if_modified_since, value),
            17 if is(b"transfer-encoding") => {
                transfer_encoding = true;
                // Fields combine as one list; an empty field adds nothing to it.
                if let Some(last) = value
                    .rsplit(|&b| b == b',')
                    .map(trim_ows)
                    .find(|t| !t.is_empty())
                {
                    chunked_last = last.eq_ignore_ascii_case(b"chunked");
                }
            }
            19 if is(b"if-unmodified-since") => set_date(&mut req.if_unmodified_since, value),
            _ => {}
        }
    }

    if req.version == Version::Http11 && host.is_none() {
        return Err(HeadError::BadRequest);
    }
    req.host = host;
    // RFC 9112 6.1: both framing fields at once is a smuggling attempt.
    if transfer_encoding && content_length.is_some() {
        return Err(HeadError::BadRequest);
    }
    // RFC 9112 6.3: a request whose final coding is not chunked has no knowable length.
    if transfer_encoding && !chunked_last {
        return Err(HeadError::BadRequest);
    }
    match req.method {
        Method::Get | Method::Head => {
            // A body on GET/HEAD has no meaning here and only serves to
            // desynchronize intermediaries, so framing that announces one
            // is refused outright rather than skipped. A zero length (some
            // clients send one) announces no body.
            if transfer_encoding || content_length.is_some_and(|n| n != 0) {
                return Err(HeadError::BadRequest);
            }
        }
        Method::NotAllowed | Method::Unknown => {
            req.has_body = transfer_encoding || content_length.is_some_and(|n| n > 0);
        }
    }
    req.keep_alive = match req.version {
        Version::Http11 => !conn_close,
        Version::Http10 => conn_keep_alive && !conn_close,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (Request<'_>, usize) {
        match parse_head(buf) {
            Ok(Parsed::Complete(r, n)) => (r, n),
            other => panic!("{:?} -> {other:?}", String::from_utf8_lossy(buf)),
        }
    }

    fn err(buf: &[u8]) -> HeadError {
        match parse_head(buf) {
            Err(e) => e,
            other => panic!("{:?} -> {other:?}", String::from_utf8_lossy(buf)),
        }
    }

    fn partial(buf: &[u8]) {
        assert_eq!(
            parse_head(buf),
            Ok(Parsed::Partial),
            "{:?}",
            String::from_utf8_lossy(buf)
        );
    }

    #[test]
    fn status_codes() {
        assert_eq!(HeadError::BadRequest.status(), 400);
        assert_eq!(HeadError::UriTooLong.status(), 414);
        assert_eq!(HeadError::HeadersTooLarge.status(), 431);
        assert_eq!(HeadError::VersionNotSupported.status(), 505);
    }

    #[test]
    fn simple_get() {
        let buf = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\nNEXT";
        let (r, n) = complete(buf);
        assert_eq!(n, buf.len() - 4);
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.version, Version::Http11);
        assert_eq!(r.target, b"/index.html");
        assert!(r.keep_alive);
        assert!(!r.has_body);
        assert_eq!(r.range, None);
    }

    #[test]
    fn bare_lf_and_leading_empty_lines() {
        let buf = b"\r\n\nHEAD / HTTP/1.0\nUser-Agent: x\n\n";
        let (r, n) = complete(buf);
        assert_eq!(n, buf.len());
        assert_eq!(r.method, Method::Head);
        assert_eq!(r.version, Version::Http10);
        assert_eq!(r.user_agent, Some(&b"x"[..]));
        assert!(!r.keep_alive);

        let mut many = b"\r\n".repeat(MAX_LEADING_EMPTY_LINES);
        many.extend_from_slice(b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(complete(&many).1, many.len());
        let mut too_many = b"\n".repeat(MAX_LEADING_EMPTY_LINES + 1);
        too_many.extend_from_slice(b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(err(&too_many), HeadError::BadRequest);
        assert_eq!(err(&b"\n".repeat(100)), HeadError::BadRequest);
        assert_eq!(err(b"\r\r\nGET / HTTP/1.0\r\n\r\n"), HeadError::BadRequest);
    }

    #[test]
    fn partial_inputs() {
        let full = b"GET /a HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\n\r\n";
        for i in 0..full.len() {
            partial(&full[..i]);
        }
        assert_eq!(complete(full).1, full.len());
        partial(b"");
        partial(b"\r");
        partial(b"\r\n");
        partial(b"\r\n\r");
        partial(b"GET");
        partial(b"GET / HTTP/2");
        partial(b"OPTIONS * HTTP/1.");
    }

    #[test]
    fn partial_garbage_is_rejected_early() {
        assert_eq!(err(b"\x16\x03\x01\x02\x00"), HeadError::BadRequest);
        assert_eq!(err(b"GET /a\x01"), HeadError::BadRequest);
        assert_eq!(err(b"GET / HTTPS"), HeadError::BadRequest);
        assert_eq!(err(b"GET / HTTP/1.1x"), HeadError::BadRequest);
        assert_eq!(err(b"GET / http/"), HeadError::BadRequest);
        assert_eq!(err(b"GET  /"), HeadError::BadRequest);
        assert_eq!(err(b"GET / HTTP/1.1\r\nHo st"), HeadError::BadRequest);
    }

    #[test]
    fn versions() {
        let v = |line: &[u8]| {
            let mut b = line.to_vec();
            b.extend_from_slice(b"\r\nHost: h\r\n\r\n");
            match parse_head(&b) {
                Ok(Parsed::Complete(r, _)) => Ok(r.version),
                Ok(Parsed::Partial) => panic!("partial"),
                Err(e) => Err(e),
            }
        };
        assert_eq!(v(b"GET / HTTP/1.0"), Ok(Version::Http10));
        assert_eq!(v(b"GET / HTTP/1.1"), Ok(Version::Http11));
        assert_eq!(v(b"GET / HTTP/1.9"), Ok(Version::Http11));
        assert_eq!(v(b"GET / HTTP/2.0"), Err(HeadError::VersionNotSupported));
        assert_eq!(v(b"GET / HTTP/0.9"), Err(HeadError::VersionNotSupported));
        assert_eq!(v(b"GET / HTTP/9.9"), Err(HeadError::VersionNotSupported));
        for bad in [
            &b"GET / HTTP/1"[..],
            b"GET / HTTP/1.10",
            b"GET / HTTP/11",
            b"GET / http/1.1",
            b"GET / HTTP/1.1 ",
            b"GET / HTTP/a.1",
            b"GET / HTTP/1.x",
            b"GET / HTTP/2",
            b"GET /",
            b"GET / ",
            b"GET",
            b"GET / HTTP/1.1 extra",
        ] {
            assert_eq!(
                v(bad),
                Err(HeadError::BadRequest),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn methods_and_targets() {
        let m = |line: &[u8]| {
            let mut b = line.to_vec();
            b.extend_from_slice(b"\r\nHost: h\r\n\r\n");
            parse_head(&b).map(|p| match p {
                Parsed::Complete(r, _) => (r.method, r.target.to_vec()),
                Parsed::Partial => panic!("partial"),
            })
        };
        assert_eq!(m(b"GET / HTTP/1.1"), Ok((Method::Get, b"/".to_vec())));
        assert_eq!(m(b"HEAD /x HTTP/1.1"), Ok((Method::Head, b"/x".to_vec())));
        assert_eq!(m(b"get / HTTP/1.1").map(|r| r.0), Ok(Method::Unknown));
        assert_eq!(m(b"Head / HTTP/1.1").map(|r| r.0), Ok(Method::Unknown));
        assert_eq!(m(b"M-SEARCH * HTTP/1.1").map(|r| r.0), Ok(Method::Unknown));
        for known in ["POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"] {
            let line = format!("{known} / HTTP/1.1");
            assert_eq!(m(line.as_bytes()).map(|r| r.0), Ok(Method::NotAllowed));
        }
        assert_eq!(
            m(b"CONNECT example.com:443 HTTP/1.1").map(|r| r.0),
            Ok(Method::NotAllowed)
        );
        assert_eq!(
            m(b"CONNECT [::1]:443 HTTP/1.1").map(|r| r.0),
            Ok(Method::NotAllowed)
        );
        for not_authority in [
            &b"CONNECT / HTTP/1.1"[..],
            b"CONNECT example.com HTTP/1.1",
            b"CONNECT http://example.com:443/ HTTP/1.1",
            b"CONNECT * HTTP/1.1",
        ] {
            assert_eq!(m(not_authority), Err(HeadError::BadRequest));
        }
        assert_eq!(
            m(b"GET /\xc3\xa9 HTTP/1.1").map(|r| r.1),
            Ok(b"/\xc3\xa9".to_vec())
        );
        assert_eq!(
            m(b"GET http://h/a?b HTTP/1.1").map(|r| r.1),
            Ok(b"http://h/a?b".to_vec())
        );
        for bad in [
            &b"GET  / HTTP/1.1"[..],
            b" GET / HTTP/1.1",
            b"GET\t/ HTTP/1.1",
            b"G(T / HTTP/1.1",
            b"GET /a\x7fb HTTP/1.1",
            b"GET /a\x00b HTTP/1.1",
            b"GET /a\rb HTTP/1.1",
            b"GET / \rHTTP/1.1",
        ] {
            assert_eq!(
                m(bad),
                Err(HeadError::BadRequest),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn request_line_limit() {
        let mut line = b"GET /".to_vec();
        line.resize(MAX_REQUEST_LINE - b" HTTP/1.1".len(), b'a');
        line.extend_from_slice(b" HTTP/1.1");
        assert_eq!(line.len(), MAX_REQUEST_LINE);

        let mut ok = line.clone();
        ok.extend_from_slice(b"\r\nHost: h\r\n\r\n");
        assert_eq!(complete(&ok).1, ok.len());
        // Still partial right up to the limit, CR included.
        partial(&line);
        let mut with_cr = line.clone();
        with_cr.push(b'\r');
        partial(&with_cr);

        let mut long = b"GET /".to_vec();
        long.resize(MAX_REQUEST_LINE + 1 - b" HTTP/1.1".len(), b'a');
        long.extend_from_slice(b" HTTP/1.1");
        assert_eq!(err(&long), HeadError::UriTooLong);
        let mut long_complete = long.clone();
        long_complete.extend_from_slice(b"\r\nHost: h\r\n\r\n");
        assert_eq!(err(&long_complete), HeadError::UriTooLong);
        let mut lf_only = long.clone();
        lf_only.extend_from_slice(b"\nHost: h\n\n");
        assert_eq!(err(&lf_only), HeadError::UriTooLong);
        // Partial with no newline at all, long target still arriving.
        let mut arriving = b"GET /".to_vec();
        arriving.resize(MAX_REQUEST_LINE + 1, b'a');
        assert_eq!(err(&arriving), HeadError::UriTooLong);
        arriving.truncate(MAX_REQUEST_LINE);
        partial(&arriving);
        // Leading empty lines do not count against the line.
        let mut led = b"\r\n".to_vec();
        led.extend_from_slice(&ok);
        assert_eq!(complete(&led).1, led.len());
    }

    fn with_fields(total_field_bytes: usize, crlf: bool) -> Vec<u8> {
        // One field padded so that the field lines total exactly the
        // requested size, including their terminators.
        let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
        let mut b = b"GET / HTTP/1.1".to_vec();
        b.extend_from_slice(eol);
        let start = b.len();
        b.extend_from_slice(b"Host: h");
        b.extend_from_slice(eol);
        b.extend_from_slice(b"X-Pad: ");
        let pad = total_field_bytes - (b.len() - start) - eol.len();
        b.resize(b.len() + pad, b'p');
        b.extend_from_slice(eol);
        assert_eq!(b.len() - start, total_field_bytes);
        b.extend_from_slice(eol);
        b
    }

    #[test]
    fn header_bytes_limit() {
        for crlf in [true, false] {
            let ok = with_fields(MAX_HEADER_BYTES, crlf);
            assert_eq!(complete(&ok).1, ok.len());
            // Every prefix of an acceptable head is Partial.
            for cut in [ok.len() - 1, ok.len() - 2, ok.len() - 3, ok.len() / 2] {
                partial(&ok[..cut]);
            }
            let too_big = with_fields(MAX_HEADER_BYTES + 1, crlf);
            assert_eq!(err(&too_big), HeadError::HeadersTooLarge);
            // ...and is detected before the head ends.
            assert_eq!(
                err(&too_big[..too_big.len() - 1]),
                HeadError::HeadersTooLarge
            );
        }
        let mut endless = b"GET / HTTP/1.1\r\nX: ".to_vec();
        endless.resize(100_000, b'a');
        assert_eq!(err(&endless), HeadError::HeadersTooLarge);
    }

    #[test]
    fn header_count_limit() {
        let build = |n: usize| {
            let mut b = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
            for i in 1..n {
                b.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
            }
            b
        };
        let mut ok = build(MAX_HEADERS);
        ok.extend_from_slice(b"\r\n");
        assert_eq!(complete(&ok).1, ok.len());
        let mut too_many = build(MAX_HEADERS + 1);
        // Detected while the head is still incomplete.
        assert_eq!(err(&too_many), HeadError::HeadersTooLarge);
        too_many.extend_from_slice(b"\r\n");
        assert_eq!(err(&too_many), HeadError::HeadersTooLarge);
    }

    #[test]
    fn host_rules() {
        assert_eq!(err(b"GET / HTTP/1.1\r\n\r\n"), HeadError::BadRequest);
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"),
            HeadError::BadRequest
        );
        assert_eq!(
            err(b"GET / HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n"),
            HeadError::BadRequest
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
            HeadError::BadRequest
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"),
            HeadError::BadRequest
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: u@h\r\n\r\n"),
            HeadError::BadRequest
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\xc3\xa9\r\n\r\n"),
            HeadError::BadRequest
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost : h\r\n\r\n"),
            HeadError::BadRequest
        );
        complete(b"GET / HTTP/1.0\r\n\r\n");
        complete(b"GET / HTTP/1.1\r\nHost:\r\n\r\n");
        complete(b"GET / HTTP/1.1\r\nhOsT: [::1]:8080\r\n\r\n");
        complete(b"GET / HTTP/1.1\r\nHost:  example.com  \r\n\r\n");
        // RFC 3986 host syntax, not just its characters (the rest is in `host`'s tests).
        for bad in [
            &b"a:b:c"[..],
            b"[::1",
            b"123.40.56.78:9000:80",
            b"[ab..cd::ef98:0:7654:321]",
        ] {
            let mut b = b"GET / HTTP/1.1\r\nHost: ".to_vec();
            b.extend_from_slice(bad);
            b.extend_from_slice(b"\r\n\r\n");
            assert_eq!(err(&b), HeadError::BadRequest);
        }
    }

    #[test]
    fn framing_rules() {
        let e = |s: &[u8]| parse_head(s).err();
        assert_eq!(
            e(b"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Some(HeadError::BadRequest)
        );
        assert_eq!(
            e(b"HEAD / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\n"),
            Some(HeadError::BadRequest)
        );
        assert_eq!(
            e(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 00\r\n\r\n"),
            None
        );
        assert_eq!(
            e(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"),
            None
        );
        assert_eq!(
            e(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n"),
            Some(HeadError::BadRequest)
        );
        assert_eq!(
            e(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Some(HeadError::BadRequest)
        );
        for bad_cl in [
            &b""[..],
            b"-1",
            b"+1",
            b"1,1",
            b"1 1",
            b"0x10",
            b"18446744073709551616",
        ] {
            let mut b = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ".to_vec();
            b.extend_from_slice(bad_cl);
            b.extend_from_slice(b"\r\n\r\n");
            assert_eq!(
                e(&b),
                Some(HeadError::BadRequest),
                "{:?}",
                String::from_utf8_lossy(bad_cl)
            );
        }
        let body = |s: &[u8]| complete(s).0.has_body;
        assert!(!body(b"POST / HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert!(!body(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(body(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551615\r\n\r\n"
        ));
        assert!(body(
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));
        assert!(body(
            b"PUT / HTTP/1.0\r\ntransfer-encoding: gzip, Chunked\r\n\r\n"
        ));
        assert!(body(
            b"PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked,\r\n\r\n"
        ));
        assert!(!body(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 00\r\n\r\n"
        ));
    }

    #[test]
    fn transfer_encoding_must_end_in_chunked() {
        for te in [
            &b"gzip"[..],
            b"chunked, gzip",
            b"chunked,gzip ,",
            b"identity",
            b"",
            b"chunkedx",
        ] {
            for method in ["POST", "PUT", "FOO"] {
                let mut b =
                    format!("{method} / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ").into_bytes();
                b.extend_from_slice(te);
                b.extend_from_slice(b"\r\n\r\n");
                assert_eq!(
                    err(&b),
                    HeadError::BadRequest,
                    "{method} {:?}",
                    String::from_utf8_lossy(te)
                );
            }
        }
        // The last field decides: chunked then gzip is refused.
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"),
            HeadError::BadRequest
        );
    }

    #[test]
    fn connection_handling() {
        let ka = |s: &[u8]| complete(s).0.keep_alive;
        assert!(ka(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert!(!ka(
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        ));
        assert!(!ka(
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n"
        ));
        assert!(!ka(
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: te\r\nconnection: close\r\n\r\n"
        ));
        assert!(ka(
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n"
        ));
        assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(ka(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(ka(
            b"GET / HTTP/1.0\r\nConnection: foo ,\tkeep-alive ,\r\n\r\n"
        ));
        assert!(!ka(
            b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"
        ));
        assert!(!ka(
            b"GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n"
        ));
    }

    #[test]
    fn conditional_and_range_fields() {
        let (r, _) = complete(
            b"GET / HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"a\"\r\nif-none-match: \"b\"\r\n\
              IF-MODIFIED-SINCE: Sun, 06 Nov 1994 08:49:37 GMT\r\nIf-Match: *\r\n\
              If-Unmodified-Since: x\r\nRange: bytes=0-1 \r\nIf-Range: \"a\"\r\n\
              Referer: /r\r\nReferer: /other\r\nUser-Agent: ua/1\r\n\r\n",
        );
        assert_eq!(r.if_none_match, Some(&b"\"a\""[..]));
        assert_eq!(
            r.if_modified_since,
            Some(&b"Sun, 06 Nov 1994 08:49:37 GMT"[..])
        );
        assert_eq!(r.if_match, Some(&b"*"[..]));
        assert_eq!(r.if_unmodified_since, Some(&b"x"[..]));
        assert_eq!(r.range, Some(&b"bytes=0-1"[..]));
        assert_eq!(r.if_range, Some(&b"\"a\""[..]));
        assert_eq!(r.referer, Some(&b"/r"[..]));
        assert_eq!(r.user_agent, Some(&b"ua/1"[..]));
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\nRange: bytes=2-3\r\n\r\n"),
            HeadError::BadRequest
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: h\r\nIf-Range: \"a\"\r\nIf-Range: \"a\"\r\n\r\n"),
            HeadError::BadRequest
        );
        // A repeated date field is a list of dates, which is ignored.
        let (r, _) = complete(
            b"GET / HTTP/1.1\r\nHost: h\r\nIf-Modified-Since: x\r\nIf-Modified-Since: y\r\n\
              If-Unmodified-Since: x\r\nIf-Unmodified-Since: y\r\n\r\n",
        );
        assert_eq!(r.if_modified_since, Some(&b""[..]));
        assert_eq!(r.if_unmodified_since, Some(&b""[..]));
        // An empty value is kept as present-but-empty.
        let (r, _) = complete(b"GET / HTTP/1.1\r\nHost: h\r\nRange:\r\n\r\n");
        assert_eq!(r.range, Some(&b""[..]));
    }

    #[test]
    fn malformed_fields() {
        for bad in [
            &b"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tfolded\r\n\r\n",
            b"GET / HTTP/1.1\r\n Host: h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\n: empty-name\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX\x7f: v\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\r\n\r\n",
        ] {
            assert_eq!(
                err(bad),
                HeadError::BadRequest,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // obs-text in values is allowed.
        complete(b"GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: caf\xe9\r\n\r\n");
    }

    #[test]
    fn a_version_is_judged_on_the_complete_line_only() {
        // Cut after "HTTP/0.1" this once said 505, whole it says 400.
        let whole = b"GET / HTTP/0.1\x1d\r\nHost: h\r\n\r\n";
        assert_eq!(err(whole), HeadError::BadRequest);
        partial(&whole[..14]);
        assert_eq!(err(b"GET / HTTP/2.0\r\n"), HeadError::VersionNotSupported);
        partial(b"GET / HTTP/2.0");
        crate::invariants::head(whole);
    }

    #[test]
    fn pipelined_requests_consume_exactly_one_head() {
        let buf = b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
        let (r1, n1) = complete(buf);
        assert_eq!(r1.target, b"/1");
        let (r2, n2) = complete(&buf[n1..]);
        assert_eq!(r2.target, b"/2");
        assert_eq!(n1 + n2, buf.len());
    }

    #[test]
    fn never_panics_on_adversarial_bytes() {
        // Deterministic xorshift so the test needs no extra crates.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet: &[u8] = b"GET HEAD/ HTTP/1.1\r\n:Host: hContent-Length0\t,\x00\xff";
        let seed = b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
        for _ in 0..20_000 {
            let mut buf = seed.to_vec();
            let edits = (next() % 6) as usize;
            for _ in 0..edits {
                let pos = (next() as usize) % (buf.len() + 1);
                let byte = alphabet[(next() as usize) % alphabet.len()];
                match next() % 3 {
                    0 => buf.insert(pos, byte),
                    1 if pos < buf.len() => buf[pos] = byte,
                    _ if pos < buf.len() => {
                        buf.remove(pos);
                    }
                    _ => {}
                }
            }
            if let Ok(Parsed::Complete(r, n)) = parse_head(&buf) {
                assert!(n <= buf.len());
                assert!(!r.target.is_empty());
            }
            for cut in [0, buf.len() / 3, buf.len() / 2, buf.len().saturating_sub(1)] {
                let _ = parse_head(&buf[..cut]);
            }
        }
    }
}
