//! From a loaded [`crate::config::Config`] to running parts: the core's settings, the
//! listener addresses, logging, and the safe embedded default.

pub mod core_config;
pub mod embedded_default;
pub mod logging;
