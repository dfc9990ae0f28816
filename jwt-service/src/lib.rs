//! `lk-jwt-service`: a drop-in replacement for Element's LiveKit token service.
//!
//! Element Call posts the Matrix OpenID token it got from its homeserver; the service
//! checks it against that homeserver over federation and answers with the LiveKit URL
//! and a signed LiveKit JWT, creating the room on the SFU for users of full-access
//! homeservers. Behaviour follows upstream `a375b13` (see the spec); improvements are
//! opt-in or invisible to clients.
//!
//! Layout: [`config`] (environment), [`routes`] (HTTP handlers), [`request`] (bodies and
//! validation), [`go_json`] (Go's JSON quirks), [`openid`] (federation discovery and
//! verification), [`livekit`] (tokens, aliases, Twirp), [`delegation`] (MSC4140 delayed
//! leaves, webhooks, Redis), [`metrics`], [`rate_limit`], [`serve`] (accept loop) and
//! [`server`] (wiring).
#![forbid(unsafe_code)]

pub mod appservice;
pub mod config;
pub mod delegation;
pub mod error;
pub mod extract;
pub mod flows;
pub mod go_json;
pub mod healthcheck;
pub mod livekit;
pub mod membership;
pub mod metrics;
pub mod openid;
pub mod rate_limit;
pub mod request;
pub mod routes;
pub mod serve;
pub mod server;
pub mod state;
