//! `lk-jwt-service`: a drop-in replacement for Element's LiveKit token service.
//!
//! Element Call posts the Matrix OpenID token it got from its homeserver; the service
//! checks it against that homeserver over federation and answers with the LiveKit URL
//! and a signed LiveKit JWT, creating the room on the SFU for users of full-access
//! homeservers. In application-service mode the homeserver serves MSC4195 itself and
//! proxies the requests here (MSC4512), answering membership questions (MSC4502).
//! Behaviour follows upstream (the Go service at `a375b13`, the Rust rewrite's v0.7);
//! improvements are opt-in or invisible to clients.
//!
//! Layout: [`config`] (environment), [`routes`] (handlers that only translate HTTP),
//! [`extract`] (bodies, client address, homeserver credentials), [`flows`] (what each
//! endpoint does, with domain errors), [`request`] (bodies and validation), [`go_json`]
//! (Go's JSON quirks), [`openid`] (federation discovery and verification),
//! [`appservice`] (calls to our homeserver), [`livekit`] (tokens, aliases, Twirp),
//! [`delegation`] (MSC4140 delayed leaves, webhooks, Redis shared by replicas),
//! [`membership`] (kick on leave), [`metrics`], [`rate_limit`], [`serve`] (accept loop)
//! and [`server`] (wiring).
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
