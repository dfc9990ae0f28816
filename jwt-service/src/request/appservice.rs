//! The bodies of the application-service routes (MSC4195 as proxied by the homeserver)
//! and their validation. Unlike the standalone endpoints these are read leniently
//! (unknown fields ignored, as upstream's Rust service does), and two shapes of the
//! member are accepted: the MSC's `member_id`, and `member: {id, …}` that
//! matrix-js-sdk 43 and Element Call send.

use serde::Deserialize;

use super::Invalid;

/// `member: {id, claimed_device_id, …}`; only `id` matters (the homeserver names the
/// user).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct MemberRef {
    /// The membership id.
    pub id: Option<String>,
}

/// `POST /_matrix/client/…/rtc/livekit/get_token`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct CsTokenBody {
    /// The SFU the token is for.
    pub url: Option<String>,
    /// The Matrix room.
    pub room_id: Option<String>,
    /// The slot.
    pub slot_id: Option<String>,
    /// The member id (MSC4195).
    pub member_id: Option<String>,
    /// The member object (matrix-js-sdk 43).
    pub member: Option<MemberRef>,
    /// The server whose SFU it is; this server when absent.
    pub server_name: Option<String>,
}

/// `POST /_matrix/federation/…/rtc/livekit/get_token`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct SsTokenBody {
    /// The remote user.
    pub user_id: Option<String>,
    /// The SFU the token is for.
    pub url: Option<String>,
    /// The Matrix room.
    pub room_id: Option<String>,
    /// The slot.
    pub slot_id: Option<String>,
    /// The member id.
    pub member_id: Option<String>,
    /// The member object.
    pub member: Option<MemberRef>,
}

/// `POST /_matrix/client/…/rtc/livekit/delegate_delayed_leave`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct CsDelegateBody {
    /// The SFU the user is connected to (absent in matrix-js-sdk 43's request).
    pub url: Option<String>,
    /// The Matrix room.
    pub room_id: Option<String>,
    /// The slot.
    pub slot_id: Option<String>,
    /// The member id.
    pub member_id: Option<String>,
    /// The member object.
    pub member: Option<MemberRef>,
    /// The delayed leave event.
    pub delay_id: Option<String>,
}

/// Where and as whom: the parts every application-service request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The Matrix room.
    pub room_id: String,
    /// The slot.
    pub slot_id: String,
    /// The member id.
    pub member_id: String,
}

/// A validated client-server token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsTokenRequest {
    /// The SFU URL asked for.
    pub url: String,
    /// Room, slot, member.
    pub slot: Slot,
    /// Another server's SFU, when named.
    pub server_name: Option<String>,
}

/// A validated federation token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsTokenRequest {
    /// The remote user.
    pub user_id: String,
    /// The SFU URL asked for.
    pub url: String,
    /// Room, slot, member.
    pub slot: Slot,
}

/// A validated delegation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsDelegateRequest {
    /// The SFU URL, when given.
    pub url: Option<String>,
    /// Room, slot, member.
    pub slot: Slot,
    /// The delayed leave event.
    pub delay_id: String,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

fn slot(
    room_id: Option<String>,
    slot_id: Option<String>,
    member_id: Option<String>,
    member: Option<MemberRef>,
) -> Option<Slot> {
    Some(Slot {
        room_id: non_empty(room_id)?,
        slot_id: non_empty(slot_id)?,
        member_id: non_empty(member_id).or_else(|| non_empty(member?.id))?,
    })
}

impl CsTokenBody {
    /// All of `url`, `room_id`, `slot_id` and a member id are required.
    pub fn validate(self) -> Result<CsTokenRequest, Invalid> {
        let missing =
            Invalid("The request body is missing `url`, `room_id`, `slot_id` or `member_id`");
        let url = non_empty(self.url).ok_or(missing.clone())?;
        let slot = slot(self.room_id, self.slot_id, self.member_id, self.member).ok_or(missing)?;
        Ok(CsTokenRequest {
            url,
            slot,
            server_name: non_empty(self.server_name),
        })
    }
}

impl SsTokenBody {
    /// All fields are required.
    pub fn validate(self) -> Result<SsTokenRequest, Invalid> {
        let missing = Invalid(
            "The request body is missing `user_id`, `url`, `room_id`, `slot_id` or `member_id`",
        );
        let user_id = non_empty(self.user_id).ok_or(missing.clone())?;
        let url = non_empty(self.url).ok_or(missing.clone())?;
        let slot = slot(self.room_id, self.slot_id, self.member_id, self.member).ok_or(missing)?;
        Ok(SsTokenRequest { user_id, url, slot })
    }
}

impl CsDelegateBody {
    /// Room, slot, member and `delay_id` are required; `url` is checked when given.
    pub fn validate(self) -> Result<CsDelegateRequest, Invalid> {
        let missing =
            Invalid("The request body is missing `room_id`, `slot_id`, `member_id` or `delay_id`");
        let delay_id = non_empty(self.delay_id).ok_or(missing.clone())?;
        let slot = slot(self.room_id, self.slot_id, self.member_id, self.member).ok_or(missing)?;
        Ok(CsDelegateRequest {
            url: non_empty(self.url),
            slot,
            delay_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs(body: &str) -> Result<CsTokenRequest, Invalid> {
        serde_json::from_str::<CsTokenBody>(body)
            .unwrap()
            .validate()
    }

    #[test]
    fn both_member_shapes() {
        let msc =
            cs(r#"{"url":"wss://s","room_id":"!r","slot_id":"m.call#","member_id":"M"}"#).unwrap();
        let sdk = cs(
            r#"{"url":"wss://s","room_id":"!r","slot_id":"m.call#","member":{"id":"M","claimed_device_id":"D"},"extra":1}"#,
        )
        .unwrap();
        assert_eq!(msc, sdk);
        assert_eq!(msc.slot.member_id, "M");
        assert_eq!(msc.server_name, None);
        let remote = cs(
            r#"{"url":"wss://s","room_id":"!r","slot_id":"s","member_id":"M","server_name":"b.example"}"#,
        )
        .unwrap();
        assert_eq!(remote.server_name.as_deref(), Some("b.example"));
    }

    #[test]
    fn missing_fields() {
        for body in [
            r#"{"room_id":"!r","slot_id":"s","member_id":"M"}"#,
            r#"{"url":"","room_id":"!r","slot_id":"s","member_id":"M"}"#,
            r#"{"url":"u","slot_id":"s","member_id":"M"}"#,
            r#"{"url":"u","room_id":"!r","slot_id":"s","member":{}}"#,
            r#"{"url":"u","room_id":"!r","slot_id":"s"}"#,
        ] {
            assert!(cs(body).is_err(), "{body}");
        }
        let delegate = |body: &str| {
            serde_json::from_str::<CsDelegateBody>(body)
                .unwrap()
                .validate()
        };
        let sdk = delegate(r#"{"room_id":"!r","slot_id":"s","member":{"id":"M"},"delay_id":"d"}"#)
            .unwrap();
        assert_eq!(sdk.url, None);
        assert!(delegate(r#"{"room_id":"!r","slot_id":"s","member_id":"M"}"#).is_err());
        let ss = |body: &str| {
            serde_json::from_str::<SsTokenBody>(body)
                .unwrap()
                .validate()
        };
        assert!(ss(r#"{"url":"u","room_id":"!r","slot_id":"s","member_id":"M"}"#).is_err());
        assert_eq!(
            ss(r#"{"user_id":"@a:b","url":"u","room_id":"!r","slot_id":"s","member_id":"M"}"#)
                .unwrap()
                .user_id,
            "@a:b"
        );
    }
}
