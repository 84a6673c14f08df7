//! Multipart boundaries (RFC 9110 14.6, RFC 2046 5.1.1): one per response, unpredictable.
//!
//! A boundary that a file's bytes contain lets that file forge parts: a client splitting the
//! body at the boundary would see ranges, or Content-Range lines, that the server never sent.
//! With one boundary per worker, anyone who saw it once could write it into a file they
//! upload elsewhere on the site. So each response gets its own: 32 hex digits, 128 bits of
//! SipHash output keyed by 128 bits the operating system chose when the worker started,
//! over a counter. Without the key the next boundary cannot be guessed, and a file of N bytes
//! holds a given 32-digit string at one of its N positions with probability below N / 2^128:
//! for a 1 TiB file, below 2^-88. A body in memory is also searched, and a boundary it
//! contains is replaced, so that case is excluded outright; bodies sent from their file are
//! covered by the argument above, which is why nothing reads them here.

use std::hash::{BuildHasher, Hasher};

/// Length of a boundary in bytes (hex digits).
pub const BOUNDARY_LEN: usize = 32;

/// A worker's boundary source: a secret key and a counter.
pub struct Boundaries {
    key: std::collections::hash_map::RandomState,
    counter: u64,
}

impl Default for Boundaries {
    fn default() -> Self {
        Self::new()
    }
}

impl Boundaries {
    /// A new source; the key comes from the operating system's random bytes (std seeds each
    /// `RandomState` from them).
    pub fn new() -> Boundaries {
        Boundaries {
            key: std::collections::hash_map::RandomState::new(),
            counter: 0,
        }
    }

    /// The next boundary: a different one for every call.
    pub fn fresh(&mut self) -> [u8; BOUNDARY_LEN] {
        self.counter = self.counter.wrapping_add(1);
        let mut out = [0u8; BOUNDARY_LEN];
        for (half, chunk) in out.chunks_mut(16).enumerate() {
            let mut h = self.key.build_hasher();
            h.write_u64(self.counter);
            h.write_u8(half as u8);
            let v = h.finish();
            for (i, b) in chunk.iter_mut().enumerate() {
                let nibble = (v >> (60 - 4 * i)) & 0xf;
                *b = b"0123456789abcdef"[nibble as usize];
            }
        }
        out
    }

    /// The next boundary that none of `parts` contains.
    pub fn next_absent_from(&mut self, parts: &[&[u8]]) -> [u8; BOUNDARY_LEN] {
        loop {
            let b = self.fresh();
            if !parts.iter().any(|p| memchr::memmem::find(p, &b).is_some()) {
                return b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_differ_per_call_and_per_worker() {
        let mut a = Boundaries::new();
        let mut b = Boundaries::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let x = a.fresh();
            assert!(x.iter().all(|c| c.is_ascii_hexdigit()));
            assert!(seen.insert(x));
            assert!(seen.insert(b.fresh()));
        }
    }

    #[test]
    fn a_boundary_never_appears_in_the_parts() {
        let mut a = Boundaries::new();
        // A body that contains the next few boundaries this source would give.
        let mut probe = Boundaries {
            key: a.key.clone(),
            counter: a.counter,
        };
        let mut body = Vec::new();
        for _ in 0..3 {
            body.extend_from_slice(b"--");
            body.extend_from_slice(&probe.fresh());
        }
        let b = a.next_absent_from(&[&body]);
        assert!(memchr::memmem::find(&body, &b).is_none());
        assert_eq!(a.counter, 4);
    }
}
