//! Status reason phrases and canned error bodies.
//!
//! Bodies are compile-time string literals so error paths never allocate.

/// Reason phrase for the status codes this server emits.
pub fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        412 => "Precondition Failed",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

macro_rules! page {
    ($title:literal) => {
        concat!(
            "<html><head><title>",
            $title,
            "</title></head><body><h1>",
            $title,
            "</h1><hr><center>ringstatic</center></body></html>\n"
        )
        .as_bytes()
    };
}

/// A small complete HTML page for an error (or redirect) status, in the
/// style of nginx's. Codes without a page of their own get a generic one;
/// 1xx/204/304 must not carry a body at all, which is the caller's concern.
pub fn error_body(code: u16) -> &'static [u8] {
    match code {
        301 => page!("301 Moved Permanently"),
        308 => page!("308 Permanent Redirect"),
        400 => page!("400 Bad Request"),
        403 => page!("403 Forbidden"),
        404 => page!("404 Not Found"),
        405 => page!("405 Method Not Allowed"),
        408 => page!("408 Request Timeout"),
        412 => page!("412 Precondition Failed"),
        414 => page!("414 URI Too Long"),
        416 => page!("416 Range Not Satisfiable"),
        431 => page!("431 Request Header Fields Too Large"),
        500 => page!("500 Internal Server Error"),
        501 => page!("501 Not Implemented"),
        503 => page!("503 Service Unavailable"),
        505 => page!("505 HTTP Version Not Supported"),
        _ => page!("Error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons() {
        assert_eq!(reason(200), "OK");
        assert_eq!(reason(206), "Partial Content");
        assert_eq!(reason(304), "Not Modified");
        assert_eq!(reason(416), "Range Not Satisfiable");
        assert_eq!(reason(431), "Request Header Fields Too Large");
        assert_eq!(reason(505), "HTTP Version Not Supported");
        assert_eq!(reason(0), "Unknown");
        assert_eq!(reason(999), "Unknown");
        assert_eq!(reason(u16::MAX), "Unknown");
    }

    #[test]
    fn bodies() {
        assert_eq!(
            error_body(404),
            b"<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1>\
              <hr><center>ringstatic</center></body></html>\n"
        );
        assert_eq!(
            error_body(1),
            b"<html><head><title>Error</title></head><body><h1>Error</h1>\
              <hr><center>ringstatic</center></body></html>\n"
        );
    }

    #[test]
    fn every_error_page_matches_its_reason() {
        for code in 300..600u16 {
            let body = std::str::from_utf8(error_body(code)).unwrap();
            if reason(code) == "Unknown" {
                assert!(body.contains("<title>Error</title>"));
                continue;
            }
            let title = format!("<title>{code} {}</title>", reason(code));
            if code == 304 {
                assert!(!body.contains(&title));
            } else {
                assert!(body.contains(&title), "{code}");
                assert!(body.contains(&format!("<h1>{code} {}</h1>", reason(code))));
            }
        }
    }
}
