//! LiveKit webhooks (spec §1.5): verification against the one known API key and the
//! events that move delegated jobs. Events without a room or participant (egress,
//! ingress) are ignored rather than crashing the handler as upstream does.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rtc_auth::constant_time::ct_eq;
use rtc_auth::secret::Secret;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::job::{Event, JobKey};

/// Clock skew tolerated on `exp`/`nbf`.
pub const LEEWAY_SECS: u64 = 60;

/// Why a webhook was dropped.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No `Authorization` header.
    #[error("no Authorization header")]
    NoAuthorization,
    /// The JWT failed verification.
    #[error("bad webhook token: {0}")]
    BadToken(#[from] jsonwebtoken::errors::Error),
    /// The body's hash is not the signed one.
    #[error("body hash does not match the token's sha256 claim")]
    BodyMismatch,
    /// The body is not a webhook event.
    #[error("bad webhook body: {0}")]
    BadBody(#[from] serde_json::Error),
}

#[derive(Deserialize)]
struct WebhookClaims {
    #[serde(default)]
    sha256: String,
}

/// Checks the raw-JWT `Authorization` header (no `Bearer ` prefix) against the body.
pub fn verify(
    authorization: Option<&str>,
    body: &[u8],
    key: &str,
    secret: &Secret,
) -> Result<(), WebhookError> {
    let token = authorization.ok_or(WebhookError::NoAuthorization)?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.set_issuer(&[key]);
    let claims = jsonwebtoken::decode::<WebhookClaims>(
        token,
        &DecodingKey::from_secret(secret.expose()),
        &validation,
    )?
    .claims;
    let digest = STANDARD.encode(Sha256::digest(body));
    if ct_eq(claims.sha256.as_bytes(), digest.as_bytes()) {
        Ok(())
    } else {
        Err(WebhookError::BodyMismatch)
    }
}

#[derive(Debug, Default, Deserialize)]
struct WebhookEvent {
    #[serde(default)]
    event: String,
    room: Option<Room>,
    participant: Option<Participant>,
}

#[derive(Debug, Default, Deserialize)]
struct Room {
    #[serde(default)]
    name: String,
}

#[derive(Debug, Default, Deserialize)]
struct Participant {
    #[serde(default)]
    identity: String,
    #[serde(default, rename = "disconnectReason", alias = "disconnect_reason")]
    disconnect_reason: Option<serde_json::Value>,
}

/// The job event a webhook body carries, if any.
pub fn parse(body: &[u8]) -> Result<Option<(JobKey, Event)>, WebhookError> {
    let event: WebhookEvent = serde_json::from_slice(body)?;
    let (Some(room), Some(participant)) = (event.room, event.participant) else {
        return Ok(None);
    };
    let job_event = match event.event.as_str() {
        "participant_joined" => Event::Joined,
        "participant_left" | "participant_connection_aborted" => Event::Left {
            client_initiated: matches!(
                participant.disconnect_reason,
                Some(serde_json::Value::String(ref s)) if s == "CLIENT_INITIATED"
            ) || participant.disconnect_reason == Some(serde_json::json!(1)),
        },
        _ => return Ok(None),
    };
    Ok(Some((
        JobKey {
            room: room.name,
            identity: participant.identity,
        },
        job_event,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use std::time::{SystemTime, UNIX_EPOCH};

    fn token(secret: &str, iss: &str, body: &[u8], exp_offset: i64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let claims = serde_json::json!({
            "iss": iss, "nbf": now, "exp": now + exp_offset,
            "sha256": STANDARD.encode(Sha256::digest(body)),
        });
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn verification() {
        let secret = Secret::new("devsecret");
        let body = br#"{"event":"participant_joined"}"#;
        let good = token("devsecret", "devkey", body, 300);
        assert!(verify(Some(&good), body, "devkey", &secret).is_ok());
        assert!(matches!(
            verify(None, body, "devkey", &secret),
            Err(WebhookError::NoAuthorization)
        ));
        assert!(matches!(
            verify(Some(&good), b"{}", "devkey", &secret),
            Err(WebhookError::BodyMismatch)
        ));
        let other_key = token("devsecret", "otherkey", body, 300);
        assert!(verify(Some(&other_key), body, "devkey", &secret).is_err());
        let wrong_secret = token("wrong", "devkey", body, 300);
        assert!(verify(Some(&wrong_secret), body, "devkey", &secret).is_err());
        // Within the leeway an expired token still passes; beyond it, not.
        assert!(
            verify(
                Some(&token("devsecret", "devkey", body, -30)),
                body,
                "devkey",
                &secret
            )
            .is_ok()
        );
        assert!(
            verify(
                Some(&token("devsecret", "devkey", body, -120)),
                body,
                "devkey",
                &secret
            )
            .is_err()
        );
        assert!(verify(Some(&format!("Bearer {good}")), body, "devkey", &secret).is_err());
    }

    #[test]
    fn event_mapping() {
        let key = |room: &str, id: &str| JobKey {
            room: room.into(),
            identity: id.into(),
        };
        let joined = br#"{"event":"participant_joined","room":{"name":"R","sid":"RM"},"participant":{"identity":"I","state":"ACTIVE"},"createdAt":"1"}"#;
        assert_eq!(parse(joined).unwrap(), Some((key("R", "I"), Event::Joined)));
        let left = br#"{"event":"participant_left","room":{"name":"R"},"participant":{"identity":"I","disconnectReason":"CLIENT_INITIATED"}}"#;
        assert_eq!(
            parse(left).unwrap(),
            Some((
                key("R", "I"),
                Event::Left {
                    client_initiated: true
                }
            ))
        );
        let numeric = br#"{"event":"participant_left","room":{"name":"R"},"participant":{"identity":"I","disconnect_reason":1}}"#;
        assert_eq!(
            parse(numeric).unwrap(),
            Some((
                key("R", "I"),
                Event::Left {
                    client_initiated: true
                }
            ))
        );
        let aborted = br#"{"event":"participant_connection_aborted","room":{"name":"R"},"participant":{"identity":"I","disconnectReason":"SIGNAL_CLOSE"}}"#;
        assert_eq!(
            parse(aborted).unwrap(),
            Some((
                key("R", "I"),
                Event::Left {
                    client_initiated: false
                }
            ))
        );
        let no_reason =
            br#"{"event":"participant_left","room":{"name":"R"},"participant":{"identity":"I"}}"#;
        assert_eq!(
            parse(no_reason).unwrap(),
            Some((
                key("R", "I"),
                Event::Left {
                    client_initiated: false
                }
            ))
        );
        // Egress events have no room: ignored, no panic.
        assert_eq!(
            parse(br#"{"event":"egress_started","egressInfo":{}}"#).unwrap(),
            None
        );
        assert_eq!(
            parse(br#"{"event":"room_finished","room":{"name":"R"}}"#).unwrap(),
            None
        );
        assert!(parse(b"not json").is_err());
    }
}
