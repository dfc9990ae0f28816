//! The Prometheus text exposition format, version 0.0.4: `# HELP` and `# TYPE` once per
//! family, then one line per sample with escaped label values.

use std::fmt::Write;

/// The content type scrapers expect for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (resets on restart).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Cumulative `_bucket{le}` samples with `_sum` and `_count`.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// Builds one exposition document.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// An empty document.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family: its help text and type. Samples of it follow.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Self {
        // Writing to a String cannot fail.
        let _ = writeln!(self.out, "# HELP {name} {}", escape(help, false));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
        self
    }

    /// One sample with an integer value.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) -> &mut Self {
        self.name_and_labels(name, labels);
        let _ = writeln!(self.out, " {value}");
        self
    }

    /// One sample with a fractional value (histogram sums in seconds).
    pub fn sample_f64(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.name_and_labels(name, labels);
        let _ = writeln!(self.out, " {}", format_f64(value));
        self
    }

    /// A whole histogram family: `bounds` are the buckets' upper bounds (ascending),
    /// `counts` the observations per bucket (not cumulative; one more than `bounds` for
    /// the overflow bucket), `sum` the sum of observations.
    pub fn histogram(&mut self, name: &str, help: &str, bounds: &[f64], counts: &[u64], sum: f64) {
        self.family(name, Kind::Histogram, help);
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (bound, count) in bounds.iter().zip(counts) {
            cumulative += count;
            self.sample(&bucket, &[("le", &format_f64(*bound))], cumulative);
        }
        let total: u64 = counts.iter().sum();
        self.sample(&bucket, &[("le", "+Inf")], total);
        self.sample_f64(&format!("{name}_sum"), &[], sum);
        self.sample(&format!("{name}_count"), &[], total);
    }

    /// The document.
    pub fn finish(self) -> String {
        self.out
    }

    fn name_and_labels(&mut self, name: &str, labels: &[(&str, &str)]) {
        self.out.push_str(name);
        if labels.is_empty() {
            return;
        }
        self.out.push('{');
        for (index, (key, value)) in labels.iter().enumerate() {
            if index > 0 {
                self.out.push(',');
            }
            let _ = write!(self.out, "{key}=\"{}\"", escape(value, true));
        }
        self.out.push('}');
    }
}

/// Backslash and newline are escaped everywhere; double quotes in label values only.
fn escape(text: &str, label: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if label => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// Shortest form that reads back the same: `1`, `0.5`, `+Inf`.
fn format_f64(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if value.is_nan() {
        return "NaN".to_owned();
    }
    format!("{value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escaping() {
        let mut doc = Exposition::new();
        doc.family(
            "turn_allocations",
            Kind::Gauge,
            "Live allocations.\nPer transport.",
        )
        .sample("turn_allocations", &[("transport", "udp")], 3)
        .sample("turn_allocations", &[("user", "a\"b\\c\nd"), ("x", "y")], 0);
        doc.family("stun_binding_request", Kind::Counter, "Bindings.")
            .sample("stun_binding_request", &[], 42);
        assert_eq!(
            doc.finish(),
            "# HELP turn_allocations Live allocations.\\nPer transport.\n\
             # TYPE turn_allocations gauge\n\
             turn_allocations{transport=\"udp\"} 3\n\
             turn_allocations{user=\"a\\\"b\\\\c\\nd\",x=\"y\"} 0\n\
             # HELP stun_binding_request Bindings.\n\
             # TYPE stun_binding_request counter\n\
             stun_binding_request 42\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut doc = Exposition::new();
        doc.histogram("h", "Lifetimes.", &[1.0, 2.5], &[2, 0, 3], 11.5);
        assert_eq!(
            doc.finish(),
            "# HELP h Lifetimes.\n# TYPE h histogram\n\
             h_bucket{le=\"1\"} 2\nh_bucket{le=\"2.5\"} 2\nh_bucket{le=\"+Inf\"} 5\n\
             h_sum 11.5\nh_count 5\n"
        );
    }

    #[test]
    fn special_floats() {
        assert_eq!(format_f64(f64::INFINITY), "+Inf");
        assert_eq!(format_f64(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_f64(f64::NAN), "NaN");
        assert_eq!(format_f64(3600.0), "3600");
    }
}
