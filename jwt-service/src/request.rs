//! The request bodies of the token endpoints and their validation (spec §1.2, §1.3),
//! with upstream's messages verbatim. Fields are `Option` because Go leaves absent and
//! `null` fields at their zero value; validation then treats them as empty.

pub mod appservice;

use serde::Deserialize;

use crate::extract::go_json_body::GoBody;
use crate::go_json::Schema;

static OPENID_TOKEN: Schema = Schema {
    fields: &[
        ("access_token", None),
        ("token_type", None),
        ("matrix_server_name", None),
        ("expires_in", None),
    ],
};

static MEMBER: Schema = Schema {
    fields: &[
        ("id", None),
        ("claimed_user_id", None),
        ("claimed_device_id", None),
    ],
};

/// The fields of a `/get_token` body.
pub static GET_TOKEN: Schema = Schema {
    fields: &[
        ("room_id", None),
        ("slot_id", None),
        ("openid_token", Some(&OPENID_TOKEN)),
        ("member", Some(&MEMBER)),
        ("delay_id", None),
        ("delay_timeout", None),
        ("delay_cs_api_url", None),
    ],
};

/// The fields of a legacy `/sfu/get` body.
pub static SFU_GET: Schema = Schema {
    fields: &[
        ("room", None),
        ("openid_token", Some(&OPENID_TOKEN)),
        ("device_id", None),
        ("delay_id", None),
        ("delay_timeout", None),
        ("delay_cs_api_url", None),
    ],
};

/// The OpenID token object a client got from its homeserver.
#[derive(Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenIdTokenBody {
    /// The token; never logged.
    pub access_token: Option<String>,
    /// Ignored.
    pub token_type: Option<String>,
    /// The homeserver that issued it.
    pub matrix_server_name: Option<String>,
    /// Seconds the token stays valid; bounds how long its verification is cached.
    pub expires_in: Option<i64>,
}

impl std::fmt::Debug for OpenIdTokenBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenIdTokenBody")
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "<redacted>"),
            )
            .field("token_type", &self.token_type)
            .field("matrix_server_name", &self.matrix_server_name)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// The MSC4195 member object.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberBody {
    /// The membership id.
    pub id: Option<String>,
    /// The user the client claims to be.
    pub claimed_user_id: Option<String>,
    /// The device the client claims to be.
    pub claimed_device_id: Option<String>,
}

/// `POST /get_token`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetTokenBody {
    /// The Matrix room.
    pub room_id: Option<String>,
    /// The call slot, e.g. `m.call#ROOM`.
    pub slot_id: Option<String>,
    /// The OpenID token.
    pub openid_token: Option<OpenIdTokenBody>,
    /// The member.
    pub member: Option<MemberBody>,
    /// MSC4140 delayed event id.
    pub delay_id: Option<String>,
    /// Milliseconds.
    pub delay_timeout: Option<i64>,
    /// Accepted and ignored (attacker-controlled; upstream #188).
    pub delay_cs_api_url: Option<String>,
}

/// `POST /sfu/get` (legacy).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SfuGetBody {
    /// The Matrix room.
    pub room: Option<String>,
    /// The OpenID token.
    pub openid_token: Option<OpenIdTokenBody>,
    /// The device; may be empty.
    pub device_id: Option<String>,
    /// MSC4140 delayed event id.
    pub delay_id: Option<String>,
    /// Milliseconds.
    pub delay_timeout: Option<i64>,
    /// Accepted and ignored.
    pub delay_cs_api_url: Option<String>,
}

impl GoBody for GetTokenBody {
    const SCHEMA: &'static Schema = &GET_TOKEN;
}

impl GoBody for SfuGetBody {
    const SCHEMA: &'static Schema = &SFU_GET;
}

/// A validated OpenID token.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenIdToken {
    /// The access token.
    pub access_token: String,
    /// The claimed homeserver.
    pub matrix_server_name: String,
    /// The token object's `expires_in`, as the client sent it.
    pub expires_in: Option<i64>,
}

impl std::fmt::Debug for OpenIdToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenIdToken")
            .field("access_token", &"<redacted>")
            .field("matrix_server_name", &self.matrix_server_name)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Validated delayed-leave parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayParams {
    /// The delayed event id.
    pub delay_id: String,
    /// Milliseconds, > 0.
    pub delay_timeout_ms: i64,
}

/// Who the token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// `/get_token`: hashed identity, claimed user checked.
    Member {
        /// Matrix room id.
        room_id: String,
        /// Slot id.
        slot_id: String,
        /// Member id.
        member_id: String,
        /// Claimed user id.
        claimed_user_id: String,
        /// Claimed device id.
        claimed_device_id: String,
    },
    /// `/sfu/get`: plain `sub:device` identity, slot `m.call#ROOM`.
    Legacy {
        /// Matrix room id.
        room: String,
        /// Device id (may be empty).
        device_id: String,
    },
}

impl Subject {
    /// The Matrix room.
    pub fn room_id(&self) -> &str {
        match self {
            Self::Member { room_id, .. } => room_id,
            Self::Legacy { room, .. } => room,
        }
    }
}

/// A validated token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// Who and where.
    pub subject: Subject,
    /// The OpenID token to verify.
    pub openid: OpenIdToken,
    /// Delegation parameters, when both were given.
    pub delay: Option<DelayParams>,
}

/// A validation failure: `400 M_BAD_JSON` with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub &'static str);

const PARTIAL_DELAY: &str = "The request body is missing `delay_id` or `delay_timeout`";

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// Both or neither: a `delay_timeout` ≤ 0 counts as absent (so a negative value alone is
/// accepted, as upstream).
fn delay(
    delay_id: &Option<String>,
    delay_timeout: Option<i64>,
) -> Result<Option<DelayParams>, Invalid> {
    let timeout = delay_timeout.filter(|t| *t > 0);
    match (non_empty(delay_id), timeout) {
        (Some(id), Some(ms)) => Ok(Some(DelayParams {
            delay_id: id.to_owned(),
            delay_timeout_ms: ms,
        })),
        (None, None) => Ok(None),
        _ => Err(Invalid(PARTIAL_DELAY)),
    }
}

impl GetTokenBody {
    /// Upstream's checks, in upstream's order.
    pub fn validate(self) -> Result<TokenRequest, Invalid> {
        let (Some(room_id), Some(slot_id)) = (non_empty(&self.room_id), non_empty(&self.slot_id))
        else {
            return Err(Invalid(
                "The request body is missing `room_id` or `slot_id`",
            ));
        };
        let member = self.member.unwrap_or_default();
        let (Some(id), Some(user), Some(device)) = (
            non_empty(&member.id),
            non_empty(&member.claimed_user_id),
            non_empty(&member.claimed_device_id),
        ) else {
            return Err(Invalid(
                "The request body `member` is missing a `id`, `claimed_user_id` or `claimed_device_id`",
            ));
        };
        let openid = openid(self.openid_token).ok_or(Invalid(
            "The request body `openid_token` is missing a `access_token` or `matrix_server_name`",
        ))?;
        let delay = delay(&self.delay_id, self.delay_timeout)?;
        Ok(TokenRequest {
            subject: Subject::Member {
                room_id: room_id.to_owned(),
                slot_id: slot_id.to_owned(),
                member_id: id.to_owned(),
                claimed_user_id: user.to_owned(),
                claimed_device_id: device.to_owned(),
            },
            openid,
            delay,
        })
    }
}

impl GetTokenBody {
    /// `/delegate_delayed_leave`'s checks: like `/get_token` with slightly different
    /// messages (no "a"), and the delay parameters required.
    pub fn validate_delegation(self) -> Result<TokenRequest, Invalid> {
        let (Some(room_id), Some(slot_id)) = (non_empty(&self.room_id), non_empty(&self.slot_id))
        else {
            return Err(Invalid(
                "The request body is missing `room_id` or `slot_id`",
            ));
        };
        let member = self.member.unwrap_or_default();
        let (Some(id), Some(user), Some(device)) = (
            non_empty(&member.id),
            non_empty(&member.claimed_user_id),
            non_empty(&member.claimed_device_id),
        ) else {
            return Err(Invalid(
                "The request body `member` is missing `id`, `claimed_user_id` or `claimed_device_id`",
            ));
        };
        let openid = openid(self.openid_token).ok_or(Invalid(
            "The request body `openid_token` is missing `access_token` or `matrix_server_name`",
        ))?;
        let delay = delay(&self.delay_id, self.delay_timeout)?.ok_or(Invalid(PARTIAL_DELAY))?;
        Ok(TokenRequest {
            subject: Subject::Member {
                room_id: room_id.to_owned(),
                slot_id: slot_id.to_owned(),
                member_id: id.to_owned(),
                claimed_user_id: user.to_owned(),
                claimed_device_id: device.to_owned(),
            },
            openid,
            delay: Some(delay),
        })
    }
}

impl SfuGetBody {
    /// Upstream's checks, in upstream's order.
    pub fn validate(self) -> Result<TokenRequest, Invalid> {
        let room = non_empty(&self.room).ok_or(Invalid("Missing room parameter"))?;
        let openid = openid(self.openid_token).ok_or(Invalid("Missing OpenID token parameters"))?;
        let delay = delay(&self.delay_id, self.delay_timeout)?;
        Ok(TokenRequest {
            subject: Subject::Legacy {
                room: room.to_owned(),
                device_id: self.device_id.unwrap_or_default(),
            },
            openid,
            delay,
        })
    }
}

fn openid(body: Option<OpenIdTokenBody>) -> Option<OpenIdToken> {
    let body = body?;
    Some(OpenIdToken {
        access_token: non_empty(&body.access_token)?.to_owned(),
        matrix_server_name: non_empty(&body.matrix_server_name)?.to_owned(),
        expires_in: body.expires_in,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::go_json::decode;

    fn get_token(body: &str) -> Result<TokenRequest, Invalid> {
        decode::<GetTokenBody>(body.as_bytes(), &GET_TOKEN)
            .unwrap()
            .validate()
    }

    fn sfu_get(body: &str) -> Result<TokenRequest, Invalid> {
        decode::<SfuGetBody>(body.as_bytes(), &SFU_GET)
            .unwrap()
            .validate()
    }

    const OPENID: &str = r#""openid_token":{"access_token":"t","token_type":"Bearer","matrix_server_name":"hs","expires_in":3600}"#;
    const MEMBER: &str = r#""member":{"id":"m","claimed_user_id":"@u:hs","claimed_device_id":"D"}"#;

    #[test]
    fn get_token_valid() {
        let body = format!(
            r#"{{"room_id":"!r","slot_id":"m.call#ROOM",{OPENID},{MEMBER},"delay_cs_api_url":"https://evil"}}"#
        );
        let req = get_token(&body).unwrap();
        assert_eq!(req.openid.access_token, "t");
        assert_eq!(req.openid.matrix_server_name, "hs");
        assert_eq!(req.delay, None);
        assert!(
            matches!(req.subject, Subject::Member { ref claimed_user_id, .. } if claimed_user_id == "@u:hs")
        );
        assert!(!format!("{req:?}").contains("\"t\""));
    }

    #[test]
    fn bodies_never_print_the_token() {
        let body = format!(r#"{{"room_id":"!r","slot_id":"s",{OPENID},{MEMBER}}}"#)
            .replace(r#""access_token":"t""#, r#""access_token":"syt_SECRET""#);
        let parsed = decode::<GetTokenBody>(body.as_bytes(), &GET_TOKEN).unwrap();
        let printed = format!("{parsed:?}");
        assert!(!printed.contains("syt_SECRET"), "{printed}");
        assert!(printed.contains("<redacted>"), "{printed}");
    }

    #[test]
    fn get_token_messages_in_order() {
        let room = "The request body is missing `room_id` or `slot_id`";
        let member =
            "The request body `member` is missing a `id`, `claimed_user_id` or `claimed_device_id`";
        let openid =
            "The request body `openid_token` is missing a `access_token` or `matrix_server_name`";
        assert_eq!(get_token("null").unwrap_err().0, room);
        assert_eq!(get_token(r#"{"room_id":"!r"}"#).unwrap_err().0, room);
        assert_eq!(
            get_token(r#"{"room_id":"!r","slot_id":""}"#).unwrap_err().0,
            room
        );
        assert_eq!(
            get_token(r#"{"room_id":"!r","slot_id":"s"}"#)
                .unwrap_err()
                .0,
            member
        );
        let body = format!(
            r#"{{"room_id":"!r","slot_id":"s","member":{{"id":"m","claimed_user_id":"@u:hs","claimed_device_id":""}},{OPENID}}}"#
        );
        assert_eq!(get_token(&body).unwrap_err().0, member);
        let body = format!(r#"{{"room_id":"!r","slot_id":"s",{MEMBER}}}"#);
        assert_eq!(get_token(&body).unwrap_err().0, openid);
        let body = format!(
            r#"{{"room_id":"!r","slot_id":"s",{MEMBER},"openid_token":{{"access_token":"t"}}}}"#
        );
        assert_eq!(get_token(&body).unwrap_err().0, openid);
    }

    #[test]
    fn delay_rules() {
        let with = |extra: &str| {
            get_token(&format!(
                r#"{{"room_id":"!r","slot_id":"s",{OPENID},{MEMBER}{extra}}}"#
            ))
        };
        assert_eq!(
            with(r#","delay_id":"d","delay_timeout":10000"#)
                .unwrap()
                .delay,
            Some(DelayParams {
                delay_id: "d".into(),
                delay_timeout_ms: 10000
            })
        );
        assert_eq!(with(r#","delay_id":"d""#).unwrap_err().0, PARTIAL_DELAY);
        assert_eq!(
            with(r#","delay_id":"d","delay_timeout":0"#).unwrap_err().0,
            PARTIAL_DELAY
        );
        assert_eq!(with(r#","delay_timeout":5"#).unwrap_err().0, PARTIAL_DELAY);
        assert_eq!(
            with(r#","delay_id":"","delay_timeout":5"#).unwrap_err().0,
            PARTIAL_DELAY
        );
        // A negative timeout alone counts as absent.
        assert_eq!(with(r#","delay_timeout":-5"#).unwrap().delay, None);
    }

    #[test]
    fn delegation_rules() {
        let delegate = |body: &str| {
            decode::<GetTokenBody>(body.as_bytes(), &GET_TOKEN)
                .unwrap()
                .validate_delegation()
        };
        let member =
            "The request body `member` is missing `id`, `claimed_user_id` or `claimed_device_id`";
        let openid =
            "The request body `openid_token` is missing `access_token` or `matrix_server_name`";
        assert_eq!(
            delegate(r#"{"room_id":"!r","slot_id":"s"}"#).unwrap_err().0,
            member
        );
        assert_eq!(
            delegate(&format!(r#"{{"room_id":"!r","slot_id":"s",{MEMBER}}}"#))
                .unwrap_err()
                .0,
            openid
        );
        let no_delay =
            format!(r#"{{"room_id":"!r","slot_id":"s",{MEMBER},{OPENID},"delay_cs_api_url":"x"}}"#);
        assert_eq!(delegate(&no_delay).unwrap_err().0, PARTIAL_DELAY);
        let full = format!(
            r#"{{"room_id":"!r","slot_id":"s",{MEMBER},{OPENID},"delay_id":"d","delay_timeout":500}}"#
        );
        assert_eq!(
            delegate(&full).unwrap().delay.unwrap().delay_timeout_ms,
            500
        );
    }

    #[test]
    fn sfu_get_rules() {
        assert_eq!(sfu_get("{}").unwrap_err().0, "Missing room parameter");
        assert_eq!(
            sfu_get(r#"{"room":"!r"}"#).unwrap_err().0,
            "Missing OpenID token parameters"
        );
        let req = sfu_get(&format!(r#"{{"room":"!r",{OPENID}}}"#)).unwrap();
        assert_eq!(
            req.subject,
            Subject::Legacy {
                room: "!r".into(),
                device_id: String::new()
            }
        );
        let req = sfu_get(&format!(r#"{{"room":"!r",{OPENID},"device_id":"D"}}"#)).unwrap();
        assert_eq!(
            req.subject,
            Subject::Legacy {
                room: "!r".into(),
                device_id: "D".into()
            }
        );
        assert_eq!(
            sfu_get(&format!(r#"{{"room":"!r",{OPENID},"delay_timeout":5}}"#))
                .unwrap_err()
                .0,
            PARTIAL_DELAY
        );
        // The MSC4195 shape is not accepted on the legacy endpoint.
        let body = format!(r#"{{"room_id":"!r","slot_id":"s",{OPENID},{MEMBER}}}"#);
        assert!(decode::<SfuGetBody>(body.as_bytes(), &SFU_GET).is_err());
    }
}
