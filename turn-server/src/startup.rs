//! From a loaded [`crate::config::Config`] to running parts: the core's settings, the
//! listener addresses, logging, the safe embedded default, and the kernel fast path.

pub mod core_config;
pub mod embedded_default;
pub mod kernel_offload;
pub mod logging;
