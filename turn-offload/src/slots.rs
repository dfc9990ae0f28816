//! Counter slots: each installed binding owns one index of the per-CPU `traffic` array.

use std::collections::VecDeque;

/// Hands out indexes below a capacity. Freed slots are reused oldest first, so a packet
/// the program was still counting for a removed binding lands on a slot that has been
/// idle longest (and is zeroed again before reuse).
#[derive(Debug)]
pub(crate) struct Slots {
    capacity: u32,
    next: u32,
    free: VecDeque<u32>,
}

impl Slots {
    pub(crate) fn new(capacity: u32) -> Self {
        Self {
            capacity,
            next: 0,
            free: VecDeque::new(),
        }
    }

    /// A free slot, or `None` when all are in use.
    pub(crate) fn take(&mut self) -> Option<u32> {
        if let Some(slot) = self.free.pop_front() {
            return Some(slot);
        }
        (self.next < self.capacity).then(|| {
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
        let mut slots = Slots::new(3);
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
}
