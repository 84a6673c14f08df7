//! The pure HTTP/1.1 layer: parsing, decisions and header text, no I/O. The
//! response path (`crate::response`) strings these together; the file cache (`crate::files`)
//! uses none of them for text.
//!
//! - [`request`]: request-head parsing and framing checks (RFC 9112).
//! - [`host`]: `host [ ":" port ]` syntax for Host, absolute-form and CONNECT (RFC 3986).
//! - [`target`]: request-target resolution, path normalization, hidden-path
//!   policy and redirect `Location` construction.
//! - [`accept_encoding`]: which content codings a client accepts, and their weights.
//! - [`range`]: `Range` header evaluation (RFC 9110 14).
//! - [`conditional`]: precondition evaluation (RFC 9110 13).
//! - [`date`]: HTTP-date formatting and parsing (RFC 9110 5.6.7).
//! - [`head`]: writing response heads: the status line, a file's lines
//!   (Last-Modified, ETag, Accept-Ranges, configured ones), entity lines, Connection.
//! - [`status`]: reason phrases and canned error bodies.
//! - [`token`]: optional whitespace and decimal numbers, shared by the above.
//! - [`proxy_protocol`]: the PROXY protocol header (v1, v2) a load balancer sends first.

pub mod accept_encoding;
pub mod conditional;
pub mod date;
pub mod head;
pub mod host;
pub mod proxy_protocol;
pub mod range;
pub mod request;
pub mod status;
pub mod target;
pub mod token;
