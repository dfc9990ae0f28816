//! Counter slots: each installed binding owns one index of the per-CPU `traffic` array.

use std::collections::VecDeque;

/// Hands out indexes in `first..end` (each share of the fast path has its own range).
/// Freed slots are reused oldest first, so a packet the program was still counting for
/// a removed binding lands on a slot that has been idle longest (and is zeroed again
/// before reuse).
#[derive(Debug)]
pub(crate) struct Slots {
    next: u32,
    end: u32,
    capacity: u32,
    free: VecDeque<u32>,
}

impl Slots {
    pub(crate) fn new(first: u32, end: u32) -> Self {
        Self {
            next: first,
            end,
            capacity: end.saturating_sub(first),
            free: VecDeque::new(),
        }
    }

    /// How many slots the range holds.
    pub(crate) fn capacity(&self) -> u32 {
        self.capacity
    }

    /// A free slot, or `None` when all are in use.
    pub(crate) fn take(&mut self) -> Option<u32> {
        if let Some(slot) = self.free.pop_front() {
            return Some(slot);
        }
        (self.next < self.end).then(|| {
            self.next += 1;
            self.next - 1
        })
    }

    pub(crate) fn give_back(&mut self, slot: u32) {
        self.free.push_back(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_run_out_and_come_back_oldest_first() {
        let mut slots = Slots::new(0, 3);
        assert_eq!(
            [slots.take(), slots.take(), slots.take()],
            [Some(0), Some(1), Some(2)]
        );
        assert_eq!(slots.take(), None);
        slots.give_back(1);
        slots.give_back(0);
        assert_eq!(slots.take(), Some(1));
        assert_eq!(slots.take(), Some(0));
        assert_eq!(slots.take(), None);
    }

    #[test]
    fn ranges_stay_apart() {
        let mut slots = Slots::new(5, 7);
        assert_eq!(slots.capacity(), 2);
        assert_eq!(
            [slots.take(), slots.take(), slots.take()],
            [Some(5), Some(6), None]
        );
        assert_eq!(Slots::new(4, 4).capacity(), 0);
    }
}
