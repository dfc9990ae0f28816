//! LiveKit access tokens (spec §4.1): HS256 JWTs signed with the API secret, `iss` = the
//! API key, grants in the `video` claim.
//!
//! The claims are our own structs, in the order LiveKit's Go SDK writes them, so the
//! JSON is exactly what upstream produces; defaults are omitted as Go's `omitempty`
//! does (notably `roomCreate`, which must never be `true` in a join token).
//!
//! Tokens are put together here rather than by `jsonwebtoken::encode` (the tests check
//! they are byte for byte the same): the header is a constant, and the HMAC is keyed
//! once and cloned per token. That took signing from a sixth of a request's
//! instructions to a few percent.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rtc_auth::secret::Secret;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Lifetime of a join token.
pub const JOIN_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Lifetime of the service's own API tokens (the server SDK's default).
pub const API_TOKEN_TTL: Duration = Duration::from_secs(6 * 3600);

/// LiveKit's `VideoGrant`, only the fields this service sets.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoGrant {
    /// May create rooms (only the service's own CreateRoom token).
    #[serde(default, skip_serializing_if = "is_false")]
    pub room_create: bool,
    /// Administers `room` (GetParticipant).
    #[serde(default, skip_serializing_if = "is_false")]
    pub room_admin: bool,
    /// May join `room`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub room_join: bool,
    /// The LiveKit room alias.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub room: String,
    /// May publish tracks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_publish: Option<bool>,
    /// May subscribe to tracks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_subscribe: Option<bool>,
    /// May update its own metadata (upstream #202).
    #[serde(default, skip_serializing_if = "is_false")]
    pub can_update_own_metadata: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The JWT claims, in golang-jwt's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The API key.
    pub iss: String,
    /// The participant identity; absent in API tokens.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Not before, Unix seconds.
    pub nbf: u64,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// The identity again (LiveKit protocol adds it since 2025-07).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identity: String,
    /// The grants.
    pub video: VideoGrant,
}

/// What a join token allows beyond joining and subscribing (MSC4195 "Access token
/// properties"): publishing only on the SFU of one's own deployment, metadata updates only
/// where the operator wants them (upstream v0.7 turned both off by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinGrants {
    /// `canPublish`.
    pub can_publish: bool,
    /// `canUpdateOwnMetadata` (`LIVEKIT_CAN_UPDATE_OWN_METADATA`).
    pub can_update_own_metadata: bool,
}

/// Base64url of `{"typ":"JWT","alg":"HS256"}`, the header of every token (the one
/// `jsonwebtoken` writes for HS256).
const HEADER_B64: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9";

/// Signing failed: the claims could not be serialised (never from input).
#[derive(Debug, thiserror::Error)]
#[error("cannot sign LiveKit token: {0}")]
pub struct SignError(#[from] serde_json::Error);

/// Signs LiveKit tokens with one key and secret.
#[derive(Clone)]
pub struct TokenSigner {
    key: String,
    /// HMAC-SHA256 already keyed with the API secret.
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// A signer for the API `key` and `secret`.
    pub fn new(key: &str, secret: &Secret) -> Self {
        Self {
            key: key.to_owned(),
            // HMAC accepts keys of any length (longer ones are hashed), so this cannot fail.
            mac: Hmac::new_from_slice(secret.expose()).expect("HMAC takes keys of any length"),
        }
    }

    /// The join token for `identity` in `room`. `canPublish` is always written, so a
    /// `false` is explicit (LiveKit's default for an absent grant is `true`).
    pub fn join_token(
        &self,
        identity: &str,
        room: &str,
        grants: JoinGrants,
        now: SystemTime,
    ) -> Result<String, SignError> {
        let grant = VideoGrant {
            room_join: true,
            room: room.to_owned(),
            can_publish: Some(grants.can_publish),
            can_subscribe: Some(true),
            can_update_own_metadata: grants.can_update_own_metadata,
            ..VideoGrant::default()
        };
        self.sign(identity, grant, JOIN_TOKEN_TTL, now)
    }

    /// The service's token for `CreateRoom`.
    pub fn room_create_token(&self, now: SystemTime) -> Result<String, SignError> {
        let grant = VideoGrant {
            room_create: true,
            ..VideoGrant::default()
        };
        self.sign("", grant, API_TOKEN_TTL, now)
    }

    /// The service's token for `GetParticipant` in `room`.
    pub fn room_admin_token(&self, room: &str, now: SystemTime) -> Result<String, SignError> {
        let grant = VideoGrant {
            room_admin: true,
            room: room.to_owned(),
            ..VideoGrant::default()
        };
        self.sign("", grant, API_TOKEN_TTL, now)
    }

    fn sign(
        &self,
        identity: &str,
        video: VideoGrant,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<String, SignError> {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let claims = Claims {
            iss: self.key.clone(),
            sub: identity.to_owned(),
            exp: now + ttl.as_secs(),
            nbf: now,
            iat: now,
            identity: identity.to_owned(),
            video,
        };
        let payload = serde_json::to_vec(&claims)?;
        let mut token = String::with_capacity(HEADER_B64.len() + payload.len() * 4 / 3 + 48);
        token.push_str(HEADER_B64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let mut mac = self.mac.clone();
        mac.update(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(mac.finalize().into_bytes(), &mut token);
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

    fn payload_json(token: &str) -> String {
        let payload = token.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    fn signer() -> TokenSigner {
        TokenSigner::new("devkey", &Secret::new("devsecret"))
    }

    const ALL: JoinGrants = JoinGrants {
        can_publish: true,
        can_update_own_metadata: true,
    };

    #[test]
    fn join_token_claims_exactly() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = signer().join_token("@a:b:DEV", "ROOM", ALL, now).unwrap();
        assert_eq!(
            payload_json(&token),
            r#"{"iss":"devkey","sub":"@a:b:DEV","exp":1700003600,"nbf":1700000000,"iat":1700000000,"identity":"@a:b:DEV","video":{"roomJoin":true,"room":"ROOM","canPublish":true,"canSubscribe":true,"canUpdateOwnMetadata":true}}"#
        );
        let least = JoinGrants {
            can_publish: false,
            can_update_own_metadata: false,
        };
        let token = signer().join_token("I", "ROOM", least, now).unwrap();
        assert_eq!(
            payload_json(&token),
            r#"{"iss":"devkey","sub":"I","exp":1700003600,"nbf":1700000000,"iat":1700000000,"identity":"I","video":{"roomJoin":true,"room":"ROOM","canPublish":false,"canSubscribe":true}}"#
        );
    }

    #[test]
    fn join_token_verifies_with_the_secret() {
        let token = signer()
            .join_token("ident", "room", ALL, SystemTime::now())
            .unwrap();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "sub"]);
        validation.set_issuer(&["devkey"]);
        let data = jsonwebtoken::decode::<Claims>(
            &token,
            &DecodingKey::from_secret(b"devsecret"),
            &validation,
        )
        .unwrap();
        assert!(!data.claims.video.room_create);
        assert_eq!(data.claims.exp - data.claims.iat, 3600);
        assert!(
            jsonwebtoken::decode::<Claims>(
                &token,
                &DecodingKey::from_secret(b"wrong"),
                &validation
            )
            .is_err()
        );
    }

    #[test]
    fn same_bytes_as_jsonwebtoken() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let ours = signer()
            .join_token("@a:b:DEV", "<&room>", ALL, now)
            .unwrap();
        let claims: Claims = serde_json::from_str(&payload_json(&ours)).unwrap();
        let theirs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"devsecret"),
        )
        .unwrap();
        assert_eq!(ours, theirs);
        // A secret longer than SHA-256's block is hashed first, by both.
        let long = "s".repeat(100);
        let ours = TokenSigner::new("k", &Secret::new(long.clone()))
            .room_create_token(now)
            .unwrap();
        let claims: Claims = serde_json::from_str(&payload_json(&ours)).unwrap();
        let theirs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(long.as_bytes()),
        )
        .unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn api_tokens() {
        let now = UNIX_EPOCH + Duration::from_secs(100);
        let create = signer().room_create_token(now).unwrap();
        assert_eq!(
            payload_json(&create),
            r#"{"iss":"devkey","exp":21700,"nbf":100,"iat":100,"video":{"roomCreate":true}}"#
        );
        let admin = signer().room_admin_token("R", now).unwrap();
        assert_eq!(
            payload_json(&admin),
            r#"{"iss":"devkey","exp":21700,"nbf":100,"iat":100,"video":{"roomAdmin":true,"room":"R"}}"#
        );
        assert!(!format!("{:?}", signer()).contains("devsecret"));
    }
}
