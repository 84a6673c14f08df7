//! The worker's connection table. A slot's index and generation travel in every completion key,
//! so a completion that arrives after its connection was freed and the slot reused is seen as
//! stale (the generation moved on) instead of landing on the new connection.

use crate::conn::Conn;
use crate::ring::key::Key;

#[derive(Default)]
pub struct Slots {
    conns: Vec<Option<Box<Conn>>>,
    gens: Vec<u32>,
    free: Vec<u32>,
    live: usize,
}

impl Slots {
    /// Connections open now.
    pub fn live(&self) -> usize {
        self.live
    }

    /// The connection a completion belongs to, unless its slot has moved on since.
    pub fn get(&self, key: Key) -> Option<&Conn> {
        match self.conns.get(key.slot as usize) {
            Some(Some(c)) if key.is_current(c.gen()) => Some(c),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: Key) -> Option<&mut Conn> {
        match self.conns.get_mut(key.slot as usize) {
            Some(Some(c)) if key.is_current(c.gen()) => Some(c),
            _ => None,
        }
    }

    /// The connection in `slot`, whoever it is (for the worker's own bookkeeping).
    pub fn at(&mut self, slot: u32) -> Option<&mut Conn> {
        self.conns.get_mut(slot as usize)?.as_deref_mut()
    }

    /// Takes a free slot for a new connection built by `make` from the slot's generation.
    pub fn insert(&mut self, make: impl FnOnce(u32) -> Conn) -> u32 {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.conns.push(None);
                self.gens.push(0);
                (self.conns.len() - 1) as u32
            }
        };
        let gen = self.gens[slot as usize];
        self.conns[slot as usize] = Some(Box::new(make(gen)));
        self.live += 1;
        slot
    }

    /// Frees `slot`; its generation moves on, so late completions for it are recognised.
    pub fn remove(&mut self, slot: u32) -> Option<Box<Conn>> {
        let c = self.conns.get_mut(slot as usize)?.take()?;
        self.gens[slot as usize] = self.gens[slot as usize].wrapping_add(1);
        self.free.push(slot);
        self.live -= 1;
        Some(c)
    }

    /// Every open connection.
    pub fn iter(&self) -> impl Iterator<Item = &Conn> {
        self.conns.iter().filter_map(|c| c.as_deref())
    }

    /// The slots whose connection satisfies `pick`.
    pub fn select(&self, mut pick: impl FnMut(&Conn) -> bool) -> Vec<u32> {
        self.conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c {
                Some(c) if pick(c) => Some(i as u32),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::key::Op;

    #[test]
    fn a_reused_slot_does_not_answer_to_old_keys() {
        let mut s = Slots::default();
        let a = s.insert(|gen| Conn::new(-1, gen, 0, 1));
        let old = Key::new(
            Op::Recv,
            a,
            s.get_mut(Key::new(Op::Recv, a, 0)).unwrap().gen(),
        );
        assert!(s.remove(a).is_some());
        assert_eq!(s.live(), 0);
        let b = s.insert(|gen| Conn::new(-1, gen, 0, 1));
        assert_eq!(a, b, "the slot is reused");
        assert!(s.get(old).is_none(), "a stale completion finds nothing");
        assert!(s.get(Key::new(Op::Recv, b, 1)).is_some());
        assert!(s.remove(99).is_none());
    }
}
