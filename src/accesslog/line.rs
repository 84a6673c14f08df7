//! One access-log line, made in two steps because a line is written when its response ends
//! (all of it sent, or the client gone), long after the request that the line mostly describes
//! was parsed and its bytes reused.
//!
//! `begin`, when the request is answered, writes a *record* into the connection's buffer: the
//! line's text with everything the request says already escaped, and a small header saying when
//! it was answered and where the three values known only at the end go: the time, the body bytes
//! that actually left (nginx's `$body_bytes_sent`) and, in JSON, the request time. `finish` splices
//! them in. So the request head can be dropped at once, and a line costs two copies, no allocation
//! (the buffers are reused).
//!
//! Formats: nginx's `combined`, with its escaping (`"`, `\`, control bytes and bytes >= 0x7f
//! become `\xHH`); and `json`, one object per line: `time` (ISO 8601, UTC), `remote_addr`,
//! `request` (the request line), `status`, `body_bytes_sent`, `referer` and `user_agent` (`null`
//! when absent), `request_time` (seconds, millisecond resolution, from the answer to the end). JSON
//! strings are escaped per RFC 8259; a byte that is not part of valid UTF-8 is written as
//! `\u00XX` (its value as a code point), so every line parses and no byte is dropped.

use crate::config::LogFormat;
use crate::http::token::push_u64;

/// A record's header: the answer's monotonic ms, then three cut positions in the text.
const HEADER: usize = 8 + 3 * 4;
/// A cut that this format does not have.
const NO_CUT: u32 = u32::MAX;

/// What the request says, for `begin`.
pub struct Request<'a> {
    pub remote: &'a [u8],
    pub request_line: &'a [u8],
    pub status: u16,
    pub referer: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
}

/// Appends the record of one answered request to `record`.
pub fn begin(format: LogFormat, record: &mut Vec<u8>, now_ms: u64, r: &Request) {
    let base = record.len();
    record.extend_from_slice(&now_ms.to_le_bytes());
    record.extend_from_slice(&[0; 12]);
    let text = record.len();
    let remote = if r.remote.is_empty() { b"-" } else { r.remote };
    let mut cuts = [NO_CUT; 3];
    match format {
        LogFormat::Combined => {
            escape_combined(record, remote);
            record.extend_from_slice(b" - - [");
            cuts[0] = (record.len() - text) as u32;
            record.extend_from_slice(b"] \"");
            escape_combined(record, r.request_line);
            record.extend_from_slice(b"\" ");
            push_u64(record, r.status as u64);
            record.push(b' ');
            cuts[1] = (record.len() - text) as u32;
            record.extend_from_slice(b" \"");
            escape_combined(record, r.referer.unwrap_or(b"-"));
            record.extend_from_slice(b"\" \"");
            escape_combined(record, r.user_agent.unwrap_or(b"-"));
            record.extend_from_slice(b"\"\n");
        }
        LogFormat::Json => {
            record.extend_from_slice(b"{\"time\":\"");
            cuts[0] = (record.len() - text) as u32;
            record.extend_from_slice(b"\",\"remote_addr\":\"");
            escape_json(record, remote);
            record.extend_from_slice(b"\",\"request\":\"");
            escape_json(record, r.request_line);
            record.extend_from_slice(b"\",\"status\":");
            push_u64(record, r.status as u64);
            record.extend_from_slice(b",\"body_bytes_sent\":");
            cuts[1] = (record.len() - text) as u32;
            record.extend_from_slice(b",\"referer\":");
            json_string_or_null(record, r.referer);
            record.extend_from_slice(b",\"user_agent\":");
            json_string_or_null(record, r.user_agent);
            record.extend_from_slice(b",\"request_time\":");
            cuts[2] = (record.len() - text) as u32;
            record.extend_from_slice(b"}\n");
        }
    }
    for (i, c) in cuts.iter().enumerate() {
        record[base + 8 + 4 * i..base + 12 + 4 * i].copy_from_slice(&c.to_le_bytes());
    }
}

/// Appends the finished line of `record` to `out`: `time` is the end's, already formatted for
/// this format; `body_bytes` what left.
pub fn finish(out: &mut Vec<u8>, record: &[u8], time: &[u8], now_ms: u64, body_bytes: u64) {
    if record.len() < HEADER {
        return;
    }
    let at = |i: usize| u32::from_le_bytes(record[i..i + 4].try_into().expect("4 bytes")) as usize;
    let started = u64::from_le_bytes(record[..8].try_into().expect("8 bytes"));
    let (t, b, rt) = (at(8), at(12), at(16));
    let text = &record[HEADER..];
    out.extend_from_slice(&text[..t]);
    out.extend_from_slice(time);
    out.extend_from_slice(&text[t..b]);
    push_u64(out, body_bytes);
    if rt == NO_CUT as usize {
        out.extend_from_slice(&text[b..]);
        return;
    }
    out.extend_from_slice(&text[b..rt]);
    let ms = now_ms.saturating_sub(started);
    push_u64(out, ms / 1000);
    out.push(b'.');
    let frac = ms % 1000;
    out.extend_from_slice(&[
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
    out.extend_from_slice(&text[rt..]);
}

/// The time as this format writes it, for the wall-clock second `secs` (UTC).
pub fn format_time(format: LogFormat, secs: i64, out: &mut Vec<u8>) {
    // IMF-fixdate: "Thu, 26 Nov 2026 03:20:44 GMT"
    let d = crate::http::date::format_http_date(secs);
    out.clear();
    match format {
        LogFormat::Combined => {
            // 26/Nov/2026:03:20:44 +0000
            out.extend_from_slice(&d[5..7]);
            out.push(b'/');
            out.extend_from_slice(&d[8..11]);
            out.push(b'/');
            out.extend_from_slice(&d[12..16]);
            out.push(b':');
            out.extend_from_slice(&d[17..25]);
            out.extend_from_slice(b" +0000");
        }
        LogFormat::Json => {
            // 2026-11-26T03:20:44+00:00, as nginx's $time_iso8601
            const MONTHS: &[&[u8; 3]; 12] = &[
                b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct",
                b"Nov", b"Dec",
            ];
            let m = MONTHS.iter().position(|m| m[..] == d[8..11]).unwrap_or(0) + 1;
            out.extend_from_slice(&d[12..16]);
            out.extend_from_slice(&[b'-', b'0' + (m / 10) as u8, b'0' + (m % 10) as u8, b'-']);
            out.extend_from_slice(&d[5..7]);
            out.push(b'T');
            out.extend_from_slice(&d[17..25]);
            out.extend_from_slice(b"+00:00");
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// As nginx's log escaping: `"`, `\`, control bytes and bytes >= 0x7f become `\xHH`.
fn escape_combined(out: &mut Vec<u8>, s: &[u8]) {
    let plain = |c: &u8| *c != b'"' && *c != b'\\' && (0x20..0x7f).contains(c);
    // Nearly every field needs no escaping: copy it in one go.
    if s.iter().all(plain) {
        out.extend_from_slice(s);
        return;
    }
    for &c in s {
        if plain(&c) {
            out.push(c);
        } else {
            let hex = b"0123456789ABCDEF";
            out.extend_from_slice(&[b'\\', b'x', hex[(c >> 4) as usize], hex[(c & 15) as usize]]);
        }
    }
}

fn json_string_or_null(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => {
            out.push(b'"');
            escape_json(out, s);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// The inside of a JSON string: valid UTF-8 is kept, `"` and `\` and control characters are
/// escaped, every byte of invalid UTF-8 becomes `\u00XX`.
fn escape_json(out: &mut Vec<u8>, s: &[u8]) {
    let plain = |c: &u8| *c != b'"' && *c != b'\\' && (0x20..0x7f).contains(c);
    if s.iter().all(plain) {
        out.extend_from_slice(s);
        return;
    }
    let u = |out: &mut Vec<u8>, c: u8| {
        out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[(c >> 4) as usize],
            HEX[(c & 15) as usize],
        ]);
    };
    for chunk in s.utf8_chunks() {
        for &c in chunk.valid().as_bytes() {
            match c {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0..=0x1f | 0x7f => u(out, c),
                _ => out.push(c),
            }
        }
        for &c in chunk.invalid() {
            u(out, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(format: LogFormat, r: &Request, body: u64, started: u64, ended: u64) -> String {
        let mut rec = Vec::new();
        begin(format, &mut rec, started, r);
        let mut t = Vec::new();
        format_time(format, 784111777, &mut t);
        let mut out = Vec::new();
        finish(&mut out, &rec, &t, ended, body);
        String::from_utf8(out).unwrap()
    }

    const REQ: Request = Request {
        remote: b"127.0.0.1",
        request_line: b"GET /a\"b HTTP/1.1",
        status: 200,
        referer: None,
        user_agent: Some(b"curl/8\x01"),
    };

    #[test]
    fn combined() {
        assert_eq!(
            line(LogFormat::Combined, &REQ, 1024, 0, 5),
            "127.0.0.1 - - [06/Nov/1994:08:49:37 +0000] \"GET /a\\x22b HTTP/1.1\" 200 1024 \"-\" \"curl/8\\x01\"\n"
        );
    }

    #[test]
    fn json() {
        assert_eq!(
            line(LogFormat::Json, &REQ, 7, 1000, 3042),
            "{\"time\":\"1994-11-06T08:49:37+00:00\",\"remote_addr\":\"127.0.0.1\",\
             \"request\":\"GET /a\\\"b HTTP/1.1\",\"status\":200,\"body_bytes_sent\":7,\
             \"referer\":null,\"user_agent\":\"curl/8\\u0001\",\"request_time\":2.042}\n"
        );
    }

    #[test]
    fn json_escapes_every_hostile_byte() {
        let mut o = Vec::new();
        escape_json(&mut o, "a\"b\\c\n\r\t\x00\x1f\x7f é €".as_bytes());
        assert_eq!(
            String::from_utf8(o).unwrap(),
            "a\\\"b\\\\c\\n\\r\\t\\u0000\\u001f\\u007f é €"
        );
        let mut o = Vec::new();
        escape_json(&mut o, b"x\xff\xc3(\xe2\x82y");
        assert_eq!(
            String::from_utf8(o).unwrap(),
            "x\\u00ff\\u00c3(\\u00e2\\u0082y"
        );
    }

    #[test]
    fn records_queue_back_to_back() {
        let mut rec = Vec::new();
        begin(LogFormat::Combined, &mut rec, 0, &REQ);
        let first = rec.len();
        begin(LogFormat::Json, &mut rec, 0, &REQ);
        let mut out = Vec::new();
        finish(&mut out, &rec[first..], b"T", 0, 0);
        assert!(
            out.starts_with(b"{\"time\":\"T\""),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
}
