//! The SFU's Twirp API (`/twirp/livekit.RoomService/*`), protobuf over HTTP POST.
//!
//! Upstream's only timeout is the incoming request's; ours bounds every call, so a
//! wrong `LIVEKIT_URL` gives a fast "Unable to create room on SFU" with the cause in the
//! log (status, Twirp code and message) instead of a hanging client.

use std::time::{Duration, SystemTime};

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use url::Url;

use crate::delegation::job::{JobKey, ParticipantLookup, Presence};
use crate::openid::discovery::BoxFuture;

use super::protobuf::{
    CreateRoomRequest, DecodeError, ListParticipantsRequest, Room, RoomParticipantIdentity,
    decode_participant_identities,
};
use super::token::{SignError, TokenSigner};

/// Seconds LiveKit keeps an empty room (spec §4.3).
pub const EMPTY_TIMEOUT_SECS: u32 = 300;
/// Seconds LiveKit keeps a room after the last participant left (spec §4.3).
pub const DEPARTURE_TIMEOUT_SECS: u32 = 20;
/// Bound on one Twirp call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The Twirp version LiveKit's Go SDK announces.
const TWIRP_VERSION: &str = "v8.1.3";
const PROTOBUF: &str = "application/protobuf";

/// Why a Twirp call failed.
#[derive(Debug, thiserror::Error)]
pub enum TwirpError {
    /// Signing the API token failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// No HTTP response (connection refused, TLS, timeout).
    #[error("request to the SFU failed: {0}")]
    Transport(#[source] reqwest::Error),
    /// A non-200 answer; `code`/`msg` from the Twirp JSON error when there is one.
    #[error("SFU answered HTTP {status}: code {code:?}, msg {msg:?}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// Twirp's error code, e.g. `not_found`.
        code: String,
        /// Twirp's message.
        msg: String,
    },
    /// A 200 whose body is not the expected message.
    #[error("SFU answer is not the expected protobuf message: {0}")]
    Decode(#[from] DecodeError),
}

impl TwirpError {
    /// True for Twirp's `not_found` (GetParticipant: the participant is absent).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Status { status: 404, code, .. } if code == "not_found")
    }
}

/// Whether CreateRoom made the room or found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomOutcome {
    /// The room's creation time is not before the call started.
    Created,
    /// The room existed already.
    Reused,
}

/// Creates rooms on the SFU (a trait so handlers can be tested without one).
pub trait RoomCreator: Send + Sync {
    /// Creates `alias` or finds it existing.
    fn create_room<'a>(&'a self, alias: &'a str) -> BoxFuture<'a, Result<RoomOutcome, TwirpError>>;
}

impl RoomCreator for RoomService {
    fn create_room<'a>(&'a self, alias: &'a str) -> BoxFuture<'a, Result<RoomOutcome, TwirpError>> {
        Box::pin(RoomService::create_room(self, alias))
    }
}

impl ParticipantLookup for RoomService {
    fn presence<'a>(&'a self, key: &'a JobKey) -> BoxFuture<'a, Presence> {
        Box::pin(async move {
            match self.get_participant(&key.room, &key.identity).await {
                Ok(()) => Presence::Present,
                Err(e) if e.is_not_found() => Presence::Absent,
                Err(e) => {
                    tracing::debug!(?key, "GetParticipant failed: {e}");
                    Presence::Unknown
                }
            }
        })
    }
}

/// A client for one SFU.
#[derive(Debug, Clone)]
pub struct RoomService {
    http: reqwest::Client,
    base: Url,
    signer: TokenSigner,
}

impl RoomService {
    /// A client for the SFU whose HTTP base is `base` (path kept).
    pub fn new(http: reqwest::Client, base: Url, signer: TokenSigner) -> Self {
        Self { http, base, signer }
    }

    /// The full URL of `method`.
    pub fn method_url(&self, method: &str) -> String {
        let base = self.base.as_str().trim_end_matches('/');
        format!("{base}/twirp/livekit.RoomService/{method}")
    }

    /// `CreateRoom` with upstream's parameters; idempotent on LiveKit's side.
    pub async fn create_room(&self, alias: &str) -> Result<RoomOutcome, TwirpError> {
        let started = SystemTime::now();
        let token = self.signer.room_create_token(started)?;
        let body = CreateRoomRequest {
            name: alias,
            empty_timeout: EMPTY_TIMEOUT_SECS,
            departure_timeout: DEPARTURE_TIMEOUT_SECS,
        }
        .encode();
        let answer = self.call("CreateRoom", &token, body).await?;
        let room = Room::decode(&answer)?;
        let started_secs = started
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Ok(if room.creation_time >= started_secs {
            RoomOutcome::Created
        } else {
            RoomOutcome::Reused
        })
    }

    /// `GetParticipant`: `Ok(())` when the participant is in the room.
    pub async fn get_participant(&self, alias: &str, identity: &str) -> Result<(), TwirpError> {
        let token = self.signer.room_admin_token(alias, SystemTime::now())?;
        let body = RoomParticipantIdentity {
            room: alias,
            identity,
        }
        .encode();
        self.call("GetParticipant", &token, body).await.map(drop)
    }

    /// `ListParticipants`: the identities in `alias`.
    pub async fn list_participants(&self, alias: &str) -> Result<Vec<String>, TwirpError> {
        let token = self.signer.room_admin_token(alias, SystemTime::now())?;
        let body = ListParticipantsRequest { room: alias }.encode();
        let answer = self.call("ListParticipants", &token, body).await?;
        Ok(decode_participant_identities(&answer)?)
    }

    /// `RemoveParticipant`: disconnects `identity` from `alias`.
    pub async fn remove_participant(&self, alias: &str, identity: &str) -> Result<(), TwirpError> {
        let token = self.signer.room_admin_token(alias, SystemTime::now())?;
        let body = RoomParticipantIdentity {
            room: alias,
            identity,
        }
        .encode();
        self.call("RemoveParticipant", &token, body).await.map(drop)
    }

    async fn call(&self, method: &str, token: &str, body: Vec<u8>) -> Result<Vec<u8>, TwirpError> {
        let response = self
            .http
            .post(self.method_url(method))
            .bearer_auth(token)
            .header(CONTENT_TYPE, PROTOBUF)
            .header(ACCEPT, PROTOBUF)
            .header("Twirp-Version", TWIRP_VERSION)
            .timeout(CALL_TIMEOUT)
            .body(body)
            .send()
            .await
            .map_err(TwirpError::Transport)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(TwirpError::Transport)?;
        if status != 200 {
            #[derive(serde::Deserialize, Default)]
            struct TwirpJson {
                #[serde(default)]
                code: String,
                #[serde(default)]
                msg: String,
            }
            let error: TwirpJson = serde_json::from_slice(&bytes).unwrap_or_default();
            return Err(TwirpError::Status {
                status,
                code: error.code,
                msg: error.msg,
            });
        }
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_auth::secret::Secret;

    fn service(base: &str) -> RoomService {
        RoomService::new(
            reqwest::Client::new(),
            Url::parse(base).unwrap(),
            TokenSigner::new("k", &Secret::new("s")),
        )
    }

    #[test]
    fn urls_keep_the_base_path() {
        assert_eq!(
            service("https://rtc.example/livekit/sfu").method_url("CreateRoom"),
            "https://rtc.example/livekit/sfu/twirp/livekit.RoomService/CreateRoom"
        );
        assert_eq!(
            service("http://127.0.0.1:7880").method_url("GetParticipant"),
            "http://127.0.0.1:7880/twirp/livekit.RoomService/GetParticipant"
        );
    }

    #[test]
    fn not_found_classification() {
        let err = |status, code: &str| TwirpError::Status {
            status,
            code: code.into(),
            msg: String::new(),
        };
        assert!(err(404, "not_found").is_not_found());
        assert!(!err(404, "").is_not_found());
        assert!(!err(500, "not_found").is_not_found());
    }
}
