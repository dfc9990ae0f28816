//! Latency histograms with bounded memory (log-linear buckets, ~1.6 % resolution), so a
//! long flat-out run cannot grow loadtest's memory with every packet.

use serde::Serialize;

/// Sub-buckets per power of two.
const SUB: u64 = 64;
/// Values below this are stored exactly.
const LINEAR: u64 = 2 * SUB;
/// Powers of two above the linear range: octaves 7..=63, so every u64 has a bucket.
const OCTAVES: usize = 57;

/// A histogram of non-negative integer samples (microseconds here).
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; LINEAR as usize + OCTAVES * SUB as usize],
            total: 0,
            max: 0,
        }
    }
}

fn bucket_of(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let octave = 63 - u64::from(v.leading_zeros()); // >= 7
    let shift = octave - 6; // keep 6 bits below the leading one
    let sub = (v >> shift) - SUB; // 0..SUB
    let idx = LINEAR + (octave - 7) * SUB + sub;
    (idx as usize).min(LINEAR as usize + OCTAVES * SUB as usize - 1)
}

fn bucket_floor(idx: usize) -> u64 {
    let idx = idx as u64;
    if idx < LINEAR {
        return idx;
    }
    let octave = (idx - LINEAR) / SUB + 7;
    let sub = (idx - LINEAR) % SUB;
    (SUB + sub) << (octave - 6)
}

/// p50/p99/max summary.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
    /// Number of samples.
    pub count: u64,
}

impl Histogram {
    /// Records one sample.
    pub fn record(&mut self, v: u64) {
        self.counts[bucket_of(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Adds another histogram's samples.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The lower bound of the bucket holding quantile `q` (0..=1); 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_floor(i).min(self.max);
            }
        }
        self.max
    }

    /// p50/p99/max scaled by `scale` (e.g. 1e-3 for µs → ms).
    pub fn summary(&self, scale: f64) -> Percentiles {
        Percentiles {
            p50: self.quantile(0.5) as f64 * scale,
            p99: self.quantile(0.99) as f64 * scale,
            max: self.max as f64 * scale,
            count: self.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_small_values_and_bounded_error() {
        let mut h = Histogram::default();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.99), 99);
        assert_eq!(h.summary(1.0).max, 100.0);
        let mut big = Histogram::default();
        for v in [1_000u64, 50_000, 3_000_000, u64::MAX / 2] {
            big.record(v);
            let q = big.quantile(1.0);
            assert!(q <= v && q as f64 >= v as f64 * 0.98, "{v} -> {q}");
            big = Histogram::default();
        }
    }

    #[test]
    fn buckets_are_monotonic_and_merge_adds() {
        let mut last = 0;
        for v in (0..200_000u64).step_by(7) {
            let b = bucket_of(v);
            assert!(b >= last);
            assert!(bucket_floor(b) <= v);
            last = b;
        }
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        a.record(10);
        b.record(1000);
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.summary(1.0).max, 1000.0);
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }
}
