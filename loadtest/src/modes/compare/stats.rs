//! Medians, ratios and number formatting for the report.

use crate::report::{AllocReport, TrafficReport};

pub(super) fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

pub(super) fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

pub(super) fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

pub(super) fn med_traffic(
    runs: Option<&Vec<TrafficReport>>,
    f: impl Fn(&TrafficReport) -> Option<f64>,
) -> Option<f64> {
    median(runs?.iter().filter_map(f).collect())
}

pub(super) fn med_alloc(
    runs: Option<&Vec<AllocReport>>,
    f: impl Fn(&AllocReport) -> Option<f64>,
) -> Option<f64> {
    median(runs?.iter().filter_map(f).collect())
}

/// The first run: RSS growth is only meaningful in a process that has not yet freed (and
/// so kept for reuse) the memory of an earlier run.
pub(super) fn first(runs: Option<&Vec<AllocReport>>) -> Option<&AllocReport> {
    runs?.first()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![f64::NAN]), None);
    }
}
