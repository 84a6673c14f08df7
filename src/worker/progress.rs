//! The one driver of a connection: after any event (bytes received, a send or poll completed,
//! a timeout, a drain) `progress` moves the connection as far forward as it can go without
//! waiting: send what is queued, answer requests held back, end it after its last response,
//! or wait for the next request. Every other handler ends by calling it; it calls `flush`,
//! which reports back instead of calling it again.

use super::send::Flushed;
use super::Worker;
use crate::conn::{Lifecycle, Writing};

impl Worker {
    pub(super) fn progress(&mut self, slot: u32) {
        loop {
            let Some(c) = self.conns.at(slot) else { return };
            if let Some((n, ms)) = c.all_sent(self.clock.now_ms) {
                self.site.counters.latency(ms, n);
            }
            if c.session.has_ended() {
                self.site.log_ended(c, false, &self.clock);
            }
            match c.life() {
                Lifecycle::Closing { .. } => return self.try_free(slot),
                Lifecycle::Lingering => {
                    if c.at_eof() {
                        self.begin_close(slot);
                        continue;
                    }
                    return;
                }
                Lifecycle::Open => {}
            }
            if c.writing() != Writing::Idle {
                return; // its completion calls us again
            }
            if !c.session.out().is_empty() || c.tls_wants_write() {
                match self.flush(slot) {
                    Flushed::Drained => continue,
                    Flushed::InFlight | Flushed::Closed => return,
                }
            }
            // Output drained.
            if c.session.ending().is_some() {
                // TLS: close_notify is the last record before our FIN.
                if let Some(t) = c.tls.as_mut().filter(|t| !t.close_notify_queued()) {
                    t.close_notify();
                    continue;
                }
                return self.start_linger(slot);
            }
            self.send_pool.lend(c);
            if self.site.resume(c, &self.cfg, &self.clock, self.draining)
                && (!c.session.out().is_empty() || c.session.ending().is_some())
            {
                continue;
            }
            if c.at_eof() {
                // Nothing more will come, and everything asked for is answered.
                return self.begin_close(slot);
            }
            if c.session.has_room() {
                c.resume_input();
            }
            // Idle until the next request: what the responses needed goes back to the pool.
            self.send_pool.take_back(c);
            if let Some(t) = c.tls.as_mut() {
                t.idle();
            }
            // Until a PROXY header is complete, or a TLS handshake done, the header timeout
            // keeps running from the accept.
            if c.proxy.is_none() && !c.tls_handshaking() {
                c.await_request(
                    self.clock.now_ms,
                    self.cfg.keepalive_timeout_ms,
                    self.cfg.header_timeout_ms,
                );
            }
            if c.wants_recv() {
                self.arm_recv(slot);
            }
            return;
        }
    }
}
