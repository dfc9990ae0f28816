//! Shared state of the HTTP handlers: configuration they need and the services behind
//! traits (OpenID verification, room creation), so tests can swap in fakes.

use std::sync::Arc;

use rtc_auth::secret::Secret;

use crate::config::FullAccess;
use crate::delegation::cs_api::CsApiResolver;
use crate::delegation::manager::Manager;
use crate::livekit::token::TokenSigner;
use crate::livekit::twirp::RoomCreator;
use crate::metrics::Metrics;
use crate::openid::userinfo::Verifier;
use crate::rate_limit::RateLimiter;

/// Cheap to clone: everything is behind one `Arc`.
#[derive(Clone)]
pub struct AppState(pub Arc<Services>);

/// What handlers use.
pub struct Services {
    /// `LIVEKIT_URL`, returned verbatim.
    pub livekit_url: String,
    /// Who may create rooms.
    pub full_access: FullAccess,
    /// Signs join tokens.
    pub signer: TokenSigner,
    /// Checks OpenID tokens.
    pub verifier: Arc<dyn Verifier>,
    /// Creates rooms on the SFU.
    pub rooms: Arc<dyn RoomCreator>,
    /// Optional per-IP limit on token requests.
    pub rate_limit: Option<RateLimiter>,
    /// Delegated delayed-leave jobs.
    pub delegation: Arc<Manager>,
    /// Finds homeservers' client-server APIs.
    pub cs_api: Arc<CsApiResolver>,
    /// The API key, the only issuer webhooks may carry.
    pub api_key: String,
    /// The API secret, to verify webhooks.
    pub api_secret: Secret,
    /// Counters.
    pub metrics: Metrics,
    /// Serve `/metrics`.
    pub metrics_enabled: bool,
    /// The MSC4143 transports document, when `LIVEKIT_RTC_TRANSPORTS_SERVICE_URL` is set.
    pub rtc_transports: Option<crate::routes::transports::TransportsDocument>,
}
