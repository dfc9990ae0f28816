//! Load generators for the TURN relay and the side-by-side benchmark against coturn.
//!
//! The binary (`src/main.rs`) is a thin command-line front end; the modes live here so
//! the benchmark driver can call them directly; STUN/TURN messages are built and read with
//! `turn_proto::codec`, the relay core's sans-IO codec.
#![forbid(unsafe_code)]

pub mod args;
pub mod batch;
pub mod chart;
pub mod client;
pub mod datapath;
pub mod homeserver;
pub mod modes;
pub mod peer;
pub mod procfs;
pub mod report;
pub mod stats;
pub mod stream;
