//! Prometheus metrics (coturn's `prometheus` options, turn-anchors.md §1.3 and §3).
//!
//! Values are read from the core when a scrape arrives, so gauges are exact and counters
//! live without adding work to the relay path:
//! - [`exposition`]: the Prometheus text format (escaping, families, histograms);
//! - [`lifetimes`]: the allocation lifetime histogram, fed by watching allocations end;
//! - [`report`]: the metric set, coturn's names first, rendered from a [`turn_proto::Server`];
//! - [`http`]: the minimal HTTP/1.1 responder on `prometheus-port` (`/` is a health check).

pub mod exposition;
pub mod http;
pub mod lifetimes;
pub mod report;
