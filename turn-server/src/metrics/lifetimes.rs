//! Allocation lifetime histogram, without a hook in the core: the driver calls
//! [`LifetimeTracker::observe`] once per timer tick (1 s) with the live allocation ids;
//! an id that disappears ended, and its lifetime is the time since it was first seen.
//!
//! Resolution is the tick: lifetimes are under-counted by less than one tick, and an
//! allocation created and ended between two ticks (never seen) is counted from the
//! core's `allocations_ended` counter as lasting 0 s.

use std::time::{Duration, Instant};

use turn_proto::AllocId;

/// Upper bounds of the buckets, in seconds: a failed call setup (< 10 s), short calls,
/// the default 600 s allocation, hour-long and day-long meetings.
pub const BOUNDS_SECS: [f64; 10] = [
    10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21_600.0, 86_400.0,
];

/// Counts of ended allocations per lifetime bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LifetimeHistogram {
    /// Per bucket of [`BOUNDS_SECS`], plus the overflow bucket last (not cumulative).
    pub counts: [u64; BOUNDS_SECS.len() + 1],
    /// Sum of lifetimes, seconds.
    pub sum_secs: f64,
}

impl LifetimeHistogram {
    /// Records one ended allocation.
    pub fn record(&mut self, lifetime: Duration) {
        let secs = lifetime.as_secs_f64();
        let bucket = BOUNDS_SECS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(BOUNDS_SECS.len());
        self.counts[bucket] += 1;
        self.sum_secs += secs;
    }

    /// Adds another shard's histogram.
    pub fn merge(&mut self, other: &LifetimeHistogram) {
        for (count, more) in self.counts.iter_mut().zip(other.counts) {
            *count += more;
        }
        self.sum_secs += other.sum_secs;
    }

    /// Allocations recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Watches allocation ids appear and disappear.
#[derive(Debug, Default)]
pub struct LifetimeTracker {
    /// Indexed by the allocation's slot: a Vec rather than a map, since the core reuses
    /// slot numbers densely (10 000 allocations: 0.2 ms per call, 2 ms with a HashMap).
    live: Vec<Option<Tracked>>,
    round: u64,
    /// The core's `allocations_ended` already accounted for.
    accounted_ended: u64,
    histogram: LifetimeHistogram,
}

#[derive(Debug, Clone, Copy)]
struct Tracked {
    generation: u32,
    first_seen: Instant,
    last_round: u64,
}

impl LifetimeTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Compares `live` (every live allocation now) with the previous call; `ended_total`
    /// is the core's cumulative `allocations_ended`. Cost: one pass over the slots.
    pub fn observe(&mut self, now: Instant, live: impl Iterator<Item = AllocId>, ended_total: u64) {
        self.round += 1;
        let round = self.round;
        let mut seen_ending = 0u64;
        for id in live {
            let index = id.index as usize;
            if index >= self.live.len() {
                self.live.resize(index + 1, None);
            }
            let slot = &mut self.live[index];
            match slot {
                Some(tracked) if tracked.generation == id.generation => {
                    tracked.last_round = round;
                }
                _ => {
                    // The slot's previous allocation (if any) ended since the last call.
                    if let Some(ended) = slot.take() {
                        self.histogram
                            .record(now.saturating_duration_since(ended.first_seen));
                        seen_ending += 1;
                    }
                    *slot = Some(Tracked {
                        generation: id.generation,
                        first_seen: now,
                        last_round: round,
                    });
                }
            }
        }
        for slot in &mut self.live {
            if let Some(tracked) = slot
                && tracked.last_round != round
            {
                self.histogram
                    .record(now.saturating_duration_since(tracked.first_seen));
                seen_ending += 1;
                *slot = None;
            }
        }
        let unseen = ended_total
            .saturating_sub(self.accounted_ended)
            .saturating_sub(seen_ending);
        // Lifetime 0 s lands in the first bucket and adds nothing to the sum.
        self.histogram.counts[0] += unseen;
        self.accounted_ended = self.accounted_ended.max(ended_total);
    }

    /// The histogram so far.
    pub fn histogram(&self) -> &LifetimeHistogram {
        &self.histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(index: u32) -> AllocId {
        AllocId {
            index,
            generation: 0,
        }
    }

    #[test]
    fn buckets_by_upper_bound() {
        let mut histogram = LifetimeHistogram::default();
        histogram.record(Duration::from_secs(10));
        histogram.record(Duration::from_secs(11));
        histogram.record(Duration::from_secs(100_000));
        assert_eq!(histogram.counts[0], 1);
        assert_eq!(histogram.counts[1], 1);
        assert_eq!(histogram.counts[BOUNDS_SECS.len()], 1);
        assert_eq!(histogram.count(), 3);
        assert_eq!(histogram.sum_secs, 100_021.0);
    }

    #[test]
    fn ended_allocations_are_recorded_once() {
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let mut tracker = LifetimeTracker::new();
        tracker.observe(at(0), [id(1), id(2)].into_iter(), 0);
        tracker.observe(at(45), [id(2)].into_iter(), 1);
        assert_eq!(
            tracker.histogram().counts[2],
            1,
            "45 s is in the 60 s bucket"
        );
        // A slot reused with a new generation is a new allocation.
        let reused = AllocId {
            index: 2,
            generation: 1,
        };
        tracker.observe(at(700), [reused].into_iter(), 2);
        assert_eq!(
            tracker.histogram().counts[5],
            1,
            "700 s is in the 1800 s bucket"
        );
        // One created and ended between ticks: never seen, counted as 0 s.
        tracker.observe(at(701), [reused].into_iter(), 3);
        assert_eq!(tracker.histogram().counts[0], 1);
        tracker.observe(at(702), [reused].into_iter(), 3);
        assert_eq!(tracker.histogram().count(), 3);
    }
}
