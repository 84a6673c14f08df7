//! Typed, generation-checked completion keys.
//!
//! Every submission carries a `Key` packed into the 64-bit user_data: what kind of operation it is,
//! which slot (connection or listener) it belongs to, and that slot's generation when it was
//! submitted. A completion that arrives after its connection was closed and the slot reused carries
//! an old generation and is recognised as stale instead of landing on the new connection.

/// What an operation in flight is, so its completion can be dispatched without a lookup table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// Multishot accept on listener `slot`.
    Accept = 1,
    /// Multishot recv into the provided-buffer ring for connection `slot`.
    Recv = 2,
    /// A send or sendmsg of memory for connection `slot`.
    Send = 3,
    /// A POLLOUT wait before the next sendfile(2) for connection `slot`.
    Writable = 4,
    /// The worker's periodic clock tick.
    Tick = 5,
    /// The worker's signalfd became readable.
    Signal = 6,
    /// An AsyncCancel request; its own completion carries nothing we need.
    Cancel = 7,
    /// A batch of access-log lines being written.
    LogWrite = 8,
    /// The close of a connection's socket, submitted and forgotten: batched with the other
    /// submissions instead of costing a system call of its own.
    Teardown = 9,
}

impl Op {
    fn from_u8(v: u8) -> Option<Op> {
        Some(match v {
            1 => Op::Accept,
            2 => Op::Recv,
            3 => Op::Send,
            4 => Op::Writable,
            5 => Op::Tick,
            6 => Op::Signal,
            7 => Op::Cancel,
            8 => Op::LogWrite,
            9 => Op::Teardown,
            _ => return None,
        })
    }
}

/// A decoded user_data value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub op: Op,
    /// Low 24 bits of the slot's generation at submission time.
    pub gen: u32,
    pub slot: u32,
}

pub const GEN_MASK: u32 = 0x00ff_ffff;

impl Key {
    pub fn new(op: Op, slot: u32, gen: u32) -> Key {
        Key {
            op,
            gen: gen & GEN_MASK,
            slot,
        }
    }

    pub fn encode(self) -> u64 {
        (self.op as u64) << 56 | ((self.gen & GEN_MASK) as u64) << 32 | self.slot as u64
    }

    pub fn decode(v: u64) -> Option<Key> {
        let op = Op::from_u8((v >> 56) as u8)?;
        Some(Key {
            op,
            gen: ((v >> 32) as u32) & GEN_MASK,
            slot: v as u32,
        })
    }

    /// Whether this key was issued for the slot's current occupant.
    pub fn is_current(self, gen: u32) -> bool {
        self.gen == gen & GEN_MASK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for op in [
            Op::Accept,
            Op::Recv,
            Op::Send,
            Op::Writable,
            Op::Tick,
            Op::Signal,
            Op::Cancel,
            Op::LogWrite,
            Op::Teardown,
        ] {
            let k = Key::new(op, 0xdead_beef, 0x0123_4567);
            let d = Key::decode(k.encode()).unwrap();
            assert_eq!(d, k);
            assert_eq!(d.gen, 0x23_4567);
        }
    }

    #[test]
    fn stale_generation_is_detected() {
        let k = Key::new(Op::Recv, 5, 41);
        assert!(k.is_current(41));
        assert!(!k.is_current(42));
        // Wrapping at 24 bits still compares the bits that were sent.
        assert!(Key::new(Op::Recv, 5, 0x0100_0001).is_current(1));
    }

    #[test]
    fn garbage_user_data_is_rejected() {
        assert_eq!(Key::decode(0), None);
        assert_eq!(Key::decode(u64::MAX), None);
    }
}
