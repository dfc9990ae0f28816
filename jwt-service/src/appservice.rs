//! Application-service mode: the homeserver authenticates users and proxies the MSC4195
//! routes to this service (MSC4512), and this service asks the homeserver, with its
//! application-service token, who is joined where (MSC4502), what a delayed event is
//! and what a remote server says ([`homeserver`]).

pub mod homeserver;

use std::sync::Arc;

use rtc_auth::secret::Secret;

use homeserver::AppServiceApi;

/// What the application-service routes need.
pub struct AppService {
    /// `LIVEKIT_HS_SERVER_NAME`: the homeserver this service belongs to.
    pub server_name: String,
    /// The token the homeserver presents (checked in constant time).
    pub hs_token: Secret,
    /// The homeserver's answers.
    pub api: Arc<dyn AppServiceApi>,
    /// `LIVEKIT_REQUIRE_MEMBERSHIP`: the standalone endpoints check membership too.
    pub require_membership: bool,
}
