//! The request loop of one connection, without any I/O: bytes in, responses queued out.
//!
//! A `Session` holds what a connection has received but not yet answered (a partial head, or
//! pipelined heads held back) and the responses not yet sent, in order. `feed` parses every
//! complete head and asks a [`Handler`] for its response; the worker owns the socket and the
//! ring, sends what is queued and tells the session what left (`consume`). Nothing here knows
//! about fds, the ring or time, so the rules (pipelining, partial heads, back-pressure, the last
//! response of a connection) are unit-tested below with byte literals.

use std::collections::VecDeque;

use crate::files::body::Chunk;
use crate::http::request::{parse_head, Parsed, Request};
use crate::response::{Disposition, Reply};

/// Responses queued on one connection before we stop parsing its pipelined requests.
pub const MAX_QUEUED_CHUNKS: usize = 32;
/// Unanswered request bytes buffered before we stop receiving from that connection.
pub const MAX_INBUF: usize = 64 * 1024;
/// Access-log records held for responses not yet ended before we stop parsing pipelined
/// requests: a client that pipelines without reading cannot make us hold its heads' text twice.
pub const MAX_RECORDS: usize = 64 * 1024;
/// How much of an unparsable head the access log shows.
const BAD_HEAD_LOGGED: usize = 1024;

/// What answers requests: the response path and the access log, as the worker wires them.
pub trait Handler {
    /// Queues the response to a parsed request.
    fn respond(&mut self, req: &Request, out: &mut VecDeque<Chunk>) -> Reply;
    /// Queues the error response to a head that did not parse; returns its body bytes.
    fn refuse(&mut self, status: u16, out: &mut VecDeque<Chunk>) -> u64;
    /// One request was answered (counters). `head` is its raw head, `body_bytes` the body bytes
    /// planned. Returns whether its access-log line is wanted: then it appended to `record` what
    /// the line needs from the request, and the session keeps those bytes until the response
    /// ends (`Session::take_ended`). The answer must be the same for every request of a session.
    fn answered(
        &mut self,
        head: &[u8],
        req: Option<&Request>,
        status: u16,
        body_bytes: u64,
        record: &mut Vec<u8>,
    ) -> bool;
}

/// A response whose access-log line waits for its end.
struct Logged {
    /// Where the response ends in the output: bytes queued on the connection before it, plus its own.
    end: u64,
    /// Its body bytes: the last `body` before `end` (header bytes come first).
    body: u64,
    /// Its record's length, at the front of `records` once the responses before it are logged.
    record_len: usize,
}

/// How a connection ends after its last response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The client asked for the close (or HTTP/1.0): close once the response is out.
    Close,
    /// We refused the request: bytes we will never read may follow (its body), and closing with
    /// them unread would reset the connection and could destroy our answer in the client's
    /// buffers, so wait for the client's FIN first.
    Linger,
}

/// Whether the connection should keep receiving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intake {
    Open,
    /// Too many unanswered bytes are buffered: stop receiving until the responses are out.
    Full,
}

#[derive(Default)]
pub struct Session {
    /// Bytes of requests not yet answered: a partial head, or pipelined heads held back while
    /// the output queue is full. Empty (and unallocated) for an idle connection.
    inbuf: Vec<u8>,
    /// Responses not yet sent, in order. Unallocated while the connection is idle: the worker
    /// lends a queue with room before feeding and takes it back once everything has left.
    out: VecDeque<Chunk>,
    /// Complete requests wait in `inbuf` because the output queue was full.
    held_back: bool,
    /// Set once a response is the connection's last; nothing after it is parsed.
    ending: Option<Ending>,
    /// Bytes queued and bytes sent since the connection began: a response's end in the output
    /// tells how much of it left.
    queued: u64,
    sent: u64,
    /// Responses whose access-log line is not written yet, in order, and their records back to
    /// back. Both stay empty (and unallocated) when the access log is off.
    logged: VecDeque<Logged>,
    records: Vec<u8>,
}

impl Session {
    /// Takes newly received bytes: answers every complete head, keeps a partial head for later.
    pub fn feed(&mut self, data: &[u8], h: &mut impl Handler) -> Intake {
        if self.inbuf.is_empty() {
            let used = self.answer(data, h);
            if used < data.len() && self.ending.is_none() {
                self.inbuf.extend_from_slice(data[used..].as_ref());
            }
        } else {
            self.inbuf.extend_from_slice(data);
            let buf = std::mem::take(&mut self.inbuf);
            let used = self.answer(&buf, h);
            if self.ending.is_none() && used < buf.len() {
                let mut buf = buf;
                buf.drain(..used);
                self.inbuf = buf;
            }
        }
        self.intake()
    }

    /// Answers requests held back while the output queue was full, now that it has drained.
    /// Returns whether there were any.
    pub fn resume(&mut self, h: &mut impl Handler) -> bool {
        if !self.held_back {
            return false;
        }
        self.held_back = false;
        self.feed(&[], h);
        true
    }

    /// Whether receiving may go on (`Full` while too much is buffered).
    pub fn intake(&self) -> Intake {
        if self.inbuf.len() >= MAX_INBUF {
            Intake::Full
        } else {
            Intake::Open
        }
    }

    /// Whether a paused connection may receive again (hysteresis: half the limit).
    pub fn has_room(&self) -> bool {
        self.inbuf.len() < MAX_INBUF / 2
    }

    /// Answers complete heads at the front of `buf`; returns how many bytes were used.
    fn answer(&mut self, buf: &[u8], h: &mut impl Handler) -> usize {
        let mut pos = 0;
        while pos < buf.len() && self.ending.is_none() {
            if self.out.len() >= MAX_QUEUED_CHUNKS || self.records.len() >= MAX_RECORDS {
                // Answered once the queue drains (`resume`); meanwhile the bytes wait in `inbuf`.
                self.held_back = true;
                break;
            }
            match parse_head(&buf[pos..]) {
                Ok(Parsed::Complete(req, used)) => {
                    let before = self.out.len();
                    let reply = h.respond(&req, &mut self.out);
                    if reply.disposition == Disposition::Close {
                        self.ending = Some(if req.has_body || reply.status >= 400 {
                            Ending::Linger
                        } else {
                            Ending::Close
                        });
                    }
                    let rec = self.records.len();
                    let logged = h.answered(
                        &buf[pos..pos + used],
                        Some(&req),
                        reply.status,
                        reply.body_bytes,
                        &mut self.records,
                    );
                    self.queued(before, reply.body_bytes, logged.then_some(rec));
                    pos += used;
                }
                Ok(Parsed::Partial) => break,
                Err(e) => {
                    let before = self.out.len();
                    let bytes = h.refuse(e.status(), &mut self.out);
                    self.ending = Some(Ending::Linger);
                    let shown = &buf[pos..buf.len().min(pos + BAD_HEAD_LOGGED)];
                    let rec = self.records.len();
                    let logged = h.answered(shown, None, e.status(), bytes, &mut self.records);
                    self.queued(before, bytes, logged.then_some(rec));
                }
            }
        }
        if self.ending.is_some() {
            buf.len()
        } else {
            pos
        }
    }

    /// The header timeout ran out. A head that was half-sent is answered with 408 Request
    /// Timeout (RFC 9110 15.5.9), the connection's last response; returns whether it was. With
    /// nothing received, or with requests still being answered, there is nothing to say: the
    /// connection is just closed (an idle keep-alive connection ends silently).
    pub fn time_out(&mut self, h: &mut impl Handler) -> bool {
        if self.inbuf.is_empty() || self.held_back || self.ending.is_some() || !self.out.is_empty()
        {
            return false;
        }
        let before = self.out.len();
        let bytes = h.refuse(408, &mut self.out);
        // Bytes may still be on their way: wait for the client's FIN before closing.
        self.ending = Some(Ending::Linger);
        let inbuf = std::mem::take(&mut self.inbuf);
        let shown = &inbuf[..inbuf.len().min(BAD_HEAD_LOGGED)];
        let rec = self.records.len();
        let logged = h.answered(shown, None, 408, bytes, &mut self.records);
        self.queued(before, bytes, logged.then_some(rec));
        true
    }

    /// Counts the response just queued (the chunks from index `before` on, `body` of its bytes
    /// the body); with `record` (where its record starts), its line waits for its end.
    fn queued(&mut self, before: usize, body: u64, record: Option<usize>) {
        let len: u64 = self.out.range(before..).map(Chunk::remaining).sum();
        self.queued += len;
        if let Some(start) = record {
            self.logged.push_back(Logged {
                end: self.queued,
                body: body.min(len),
                record_len: self.records.len() - start,
            });
        }
    }

    /// Whether a response with a pending access-log line has ended (all of it sent).
    pub fn has_ended(&self) -> bool {
        self.logged.front().is_some_and(|l| l.end <= self.sent)
    }

    /// Hands each response that ended to `f`, in order, with its record and the body bytes that
    /// left. `gone`: the connection ends now, so every response still waiting ends too, with
    /// what left of it (nothing, for those behind the one in progress).
    pub fn take_ended(&mut self, gone: bool, mut f: impl FnMut(&[u8], u64)) {
        let mut used = 0;
        while let Some(l) = self.logged.front() {
            if l.end > self.sent && !gone {
                break;
            }
            let body_start = l.end - l.body;
            let left = self.sent.clamp(body_start, l.end) - body_start;
            f(&self.records[used..used + l.record_len], left);
            used += l.record_len;
            self.logged.pop_front();
        }
        self.records.drain(..used);
    }

    /// How the connection ends, once a response was its last.
    pub fn ending(&self) -> Option<Ending> {
        self.ending
    }

    /// The responses still to send.
    pub fn out(&self) -> &VecDeque<Chunk> {
        &self.out
    }

    pub fn out_mut(&mut self) -> &mut VecDeque<Chunk> {
        &mut self.out
    }

    /// Whether the output queue has room allocated (lent by the worker's pool).
    pub fn has_queue(&self) -> bool {
        self.out.capacity() > 0
    }

    /// Takes a queue with room for the output, when it has none and nothing is queued.
    pub fn set_queue(&mut self, q: VecDeque<Chunk>) {
        if self.out.capacity() == 0 && self.out.is_empty() {
            self.out = q;
        }
    }

    /// Gives the output queue's room back (emptied: what it still held is dropped), leaving none.
    pub fn take_queue(&mut self) -> Option<VecDeque<Chunk>> {
        if self.out.capacity() == 0 {
            return None;
        }
        let mut q = std::mem::take(&mut self.out);
        q.clear();
        Some(q)
    }

    /// Drops `n` sent bytes from the front of the output.
    pub fn consume(&mut self, n: u64) {
        self.sent += n;
        consume(&mut self.out, n)
    }

    /// `n` bytes left that the front chunk had already given up (splice: taken from the file
    /// into a pipe earlier, delivered to the socket now).
    pub fn delivered(&mut self, n: u64) {
        self.sent += n;
    }

    /// Whether unanswered request bytes are buffered (a partial head, or held-back requests).
    pub fn has_input(&self) -> bool {
        !self.inbuf.is_empty()
    }

    /// Forgets unanswered input (the connection is lingering or closing: it will not be read).
    pub fn discard_input(&mut self) {
        self.inbuf = Vec::new();
    }
}

/// Drops `n` sent bytes from the front of the queue.
pub fn consume(out: &mut VecDeque<Chunk>, mut n: u64) {
    while n > 0 {
        let Some(front) = out.front_mut() else { return };
        let r = front.remaining();
        if n >= r {
            n -= r;
            out.pop_front();
        } else {
            front.advance(n);
            n = 0;
        }
    }
    // Chunks that were empty from the start (an empty body) are dropped too.
    while out.front().is_some_and(|c| c.remaining() == 0) {
        out.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// Answers every request with its target as the body; HTTP errors as "E<status>". Records
    /// what it was asked, in order.
    #[derive(Default)]
    struct Echo {
        answered: Vec<(String, u16)>,
    }

    impl Handler for Echo {
        fn respond(&mut self, req: &Request, out: &mut VecDeque<Chunk>) -> Reply {
            let status = if req.target == b"/missing" { 404 } else { 200 };
            out.push_back(Chunk::Owned {
                buf: req.target.to_vec(),
                pos: 0,
            });
            Reply {
                status,
                body_bytes: req.target.len() as u64,
                coding: crate::files::entry::Coding::Identity,
                disposition: if req.keep_alive && status == 200 {
                    Disposition::KeepAlive
                } else {
                    Disposition::Close
                },
            }
        }
        fn refuse(&mut self, status: u16, out: &mut VecDeque<Chunk>) -> u64 {
            out.push_back(Chunk::Owned {
                buf: format!("E{status}").into_bytes(),
                pos: 0,
            });
            4
        }
        fn answered(
            &mut self,
            head: &[u8],
            _: Option<&Request>,
            status: u16,
            _: u64,
            record: &mut Vec<u8>,
        ) -> bool {
            let line = head.split(|&b| b == b'\r').next().unwrap_or(b"");
            self.answered
                .push((String::from_utf8_lossy(line).into_owned(), status));
            record.extend_from_slice(line);
            true
        }
    }

    fn sent(s: &mut Session) -> String {
        let mut all = String::new();
        while let Some(c) = s.out.pop_front() {
            all.push_str(std::str::from_utf8(&c.remaining_bytes().unwrap()).unwrap());
            all.push('|');
        }
        all
    }

    const A: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    const B: &[u8] = b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n";

    #[test]
    fn pipelined_heads_are_answered_in_order() {
        let (mut s, mut h) = (Session::default(), Echo::default());
        let both = [A, B].concat();
        assert_eq!(s.feed(&both, &mut h), Intake::Open);
        assert_eq!(sent(&mut s), "/a|/b|");
        assert!(!s.has_input());
        assert_eq!(s.ending(), None);
        assert_eq!(h.answered.len(), 2);
    }

    #[test]
    fn a_partial_head_waits_for_the_rest_at_any_split() {
        let both = [A, B].concat();
        for at in 0..=both.len() {
            let (mut s, mut h) = (Session::default(), Echo::default());
            s.feed(&both[..at], &mut h);
            s.feed(&both[at..], &mut h);
            assert_eq!(sent(&mut s), "/a|/b|", "split at {at}");
            assert!(!s.has_input(), "split at {at}");
        }
    }

    #[test]
    fn a_full_output_queue_holds_requests_back_until_resumed() {
        let (mut s, mut h) = (Session::default(), Echo::default());
        let many: Vec<u8> = (0..MAX_QUEUED_CHUNKS + 3)
            .flat_map(|_| A.to_vec())
            .collect();
        s.feed(&many, &mut h);
        assert_eq!(s.out().len(), MAX_QUEUED_CHUNKS);
        assert!(s.has_input(), "the rest waits");
        // While the queue is still full, resuming answers nothing more.
        s.resume(&mut h);
        assert_eq!(s.out().len(), MAX_QUEUED_CHUNKS);
        assert!(s.has_input());
        s.out.clear();
        assert!(s.resume(&mut h));
        assert_eq!(s.out().len(), 3);
        assert!(!s.has_input());
        assert!(!s.resume(&mut h), "nothing held back any more");
    }

    #[test]
    fn connection_close_ends_the_session_and_drops_what_follows() {
        let (mut s, mut h) = (Session::default(), Echo::default());
        let c = b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        s.feed(&[&c[..], A].concat(), &mut h);
        assert_eq!(sent(&mut s), "/c|");
        assert_eq!(s.ending(), Some(Ending::Close));
        assert!(!s.has_input(), "bytes after the last request are not kept");
        s.feed(B, &mut h);
        assert!(
            s.out.is_empty(),
            "nothing is parsed after the last response"
        );
    }

    #[test]
    fn a_refused_request_lingers() {
        let (mut s, mut h) = (Session::default(), Echo::default());
        s.feed(b"GET /missing HTTP/1.0\r\n\r\n", &mut h);
        assert_eq!(s.ending(), Some(Ending::Linger));
        let (mut s, mut h) = (Session::default(), Echo::default());
        s.feed(b"GARBAGE\x01\r\n\r\n", &mut h);
        assert_eq!(sent(&mut s), "E400|");
        assert_eq!(s.ending(), Some(Ending::Linger));
        assert_eq!(h.answered[0].1, 400);
    }

    #[test]
    fn a_half_sent_head_times_out_with_408_and_an_idle_one_silently() {
        // Nothing received: silent.
        let (mut s, mut h) = (Session::default(), Echo::default());
        assert!(!s.time_out(&mut h));
        assert_eq!(sent(&mut s), "");
        // Everything answered, nothing more received (idle keep-alive): silent.
        s.feed(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n", &mut h);
        assert_eq!(sent(&mut s), "/a|");
        assert!(!s.time_out(&mut h));
        assert_eq!(s.ending(), None);
        // Half a head: 408, the last response, logged with what was received.
        s.feed(b"GET /b HTTP/1.1\r\nHo", &mut h);
        assert!(s.time_out(&mut h));
        assert_eq!(sent(&mut s), "E408|");
        assert_eq!(s.ending(), Some(Ending::Linger));
        assert!(!s.has_input());
        assert_eq!(
            h.answered.last().unwrap(),
            &("GET /b HTTP/1.1".to_string(), 408)
        );
        assert!(!s.time_out(&mut h), "only once");
    }

    #[test]
    fn too_much_unanswered_input_fills_the_intake() {
        let (mut s, mut h) = (Session::default(), Echo::default());
        // A client pipelining faster than it reads: the queue fills, the rest is buffered.
        let n = MAX_INBUF / A.len() + MAX_QUEUED_CHUNKS + 2;
        let many: Vec<u8> = (0..n).flat_map(|_| A.to_vec()).collect();
        assert_eq!(s.feed(&many[..A.len() * 40], &mut h), Intake::Open);
        assert_eq!(s.feed(&many[A.len() * 40..], &mut h), Intake::Full);
        assert!(!s.has_room());
        s.discard_input();
        assert!(s.has_room());
        assert_eq!(s.intake(), Intake::Open);
    }

    /// What `take_ended` hands out: (record, body bytes that left).
    fn ended(s: &mut Session, gone: bool) -> Vec<(String, u64)> {
        let mut v = Vec::new();
        s.take_ended(gone, |r, n| {
            v.push((String::from_utf8_lossy(r).into_owned(), n))
        });
        v
    }

    #[test]
    fn a_line_waits_for_its_response_to_end_and_counts_body_bytes_only() {
        // Echo's responses are all body: "/a" is 2 bytes.
        let (mut s, mut h) = (Session::default(), Echo::default());
        s.feed(&[A, B].concat(), &mut h);
        assert!(!s.has_ended());
        s.consume(1);
        assert!(!s.has_ended(), "half of /a left");
        assert!(ended(&mut s, false).is_empty());
        s.consume(2);
        assert!(s.has_ended());
        assert_eq!(ended(&mut s, false), [("GET /a HTTP/1.1".to_string(), 2)]);
        // The client goes away with 1 byte of /b sent.
        assert_eq!(ended(&mut s, true), [("GET /b HTTP/1.1".to_string(), 1)]);
        assert!(ended(&mut s, true).is_empty(), "each line once");
    }

    #[test]
    fn pipelined_lines_keep_their_order_and_those_not_started_log_zero() {
        let (mut s, mut h) = (Session::default(), Echo::default());
        s.feed(&[A, B, A].concat(), &mut h);
        // Everything of /a and nothing else left; then the connection ends.
        s.consume(2);
        let got = ended(&mut s, true);
        assert_eq!(
            got,
            [
                ("GET /a HTTP/1.1".to_string(), 2),
                ("GET /b HTTP/1.1".to_string(), 0),
                ("GET /a HTTP/1.1".to_string(), 0)
            ]
        );
    }

    #[test]
    fn records_held_for_unsent_responses_hold_back_more_requests() {
        let (mut s, mut h) = (Session::default(), Echo::default());
        let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "x".repeat(4096));
        let many: Vec<u8> = (0..20).flat_map(|_| long.as_bytes().to_vec()).collect();
        s.feed(&many, &mut h);
        let answered = s.out().len();
        assert!(
            answered < 20,
            "held back by the records, not the queue: {answered}"
        );
        assert!(s.has_input(), "the rest waits");
        let all: u64 = s.out().iter().map(Chunk::remaining).sum();
        s.consume(all);
        assert_eq!(ended(&mut s, false).len(), answered);
        assert!(s.resume(&mut h));
        assert_eq!(s.out().len(), 20 - answered);
    }

    #[test]
    fn spliced_bytes_count_when_delivered() {
        let (mut s, mut h) = (Session::default(), Echo::default());
        s.feed(A, &mut h);
        s.delivered(2);
        assert_eq!(ended(&mut s, false), [("GET /a HTTP/1.1".to_string(), 2)]);
    }

    #[test]
    fn consume_across_chunks() {
        let mut q = VecDeque::new();
        q.push_back(Chunk::Owned {
            buf: b"abc".to_vec(),
            pos: 0,
        });
        q.push_back(Chunk::Shared {
            buf: Rc::from(&b"defgh"[..]),
            pos: 1,
            end: 5,
        });
        consume(&mut q, 4);
        assert_eq!(q.len(), 1);
        assert_eq!(q.front().unwrap().remaining_bytes().unwrap(), b"fgh");
        consume(&mut q, 3);
        assert!(q.is_empty());
        consume(&mut q, 3);
        assert!(q.is_empty());
    }
}
