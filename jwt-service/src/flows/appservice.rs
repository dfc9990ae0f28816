//! The application-service routes (MSC4195 proxied by the homeserver, MSC4512; membership
//! from MSC4502). The homeserver authenticated the user (`X-Matrix-User-Identifier`) or
//! the origin server (`X-Matrix-Origin`); identities are the MSC's two-part
//! `H([user_id, member_id])`.

use super::FlowError;
use super::standalone::{create_room, register, sign};
use crate::appservice::AppService;
use crate::appservice::homeserver::{LookupError, Member, Relayed};
use crate::delegation::job::{JobKey, JobParams};
use crate::livekit::alias;
use crate::livekit::token::JoinGrants;
use crate::request::appservice::{CsDelegateRequest, CsTokenRequest, Slot, SsTokenRequest};
use crate::state::Services;

/// `POST /_matrix/client/…/get_token`: a token for this server's SFU, or one relayed
/// from `server_name`'s.
pub async fn get_token_cs(
    services: &Services,
    app: &AppService,
    user: Option<&str>,
    request: CsTokenRequest,
) -> Result<String, FlowError> {
    let user = user.ok_or(FlowError::MissingIdentity("Missing request authorization"))?;
    let remote = request
        .server_name
        .as_deref()
        .filter(|server| *server != app.server_name);
    if remote.is_none() {
        require_our_url(services, &request.url)?;
    }
    server_of(user)?;
    let room_id = &request.slot.room_id;
    require_joined(
        app,
        room_id,
        Member::User(user),
        "The requesting user is not a member of the room",
    )
    .await?;
    let Some(remote) = remote else {
        // Our own users publish on our SFU.
        return local_token(services, user, &request.slot, true).await;
    };
    require_joined(
        app,
        room_id,
        Member::Server(remote),
        "The target server is not joined to the room",
    )
    .await?;
    let body = serde_json::json!({
        "user_id": user,
        "url": request.url,
        "room_id": room_id,
        "slot_id": request.slot.slot_id,
        "member_id": request.slot.member_id,
    });
    match app.api.relay_get_token(remote, body).await {
        Ok(Relayed::Token(jwt)) => {
            tracing::info!(%user, %remote, "relayed a LiveKit token from a remote server");
            Ok(jwt)
        }
        Ok(Relayed::Refused { status, errcode })
            if (status, errcode.as_str()) == (403, "M_FORBIDDEN")
                || (status, errcode.as_str()) == (400, "M_INVALID_PARAM") =>
        {
            tracing::warn!(%user, %remote, status, %errcode, "the remote server refused");
            Err(FlowError::RemoteRefused { status, errcode })
        }
        Ok(Relayed::Refused { status, errcode }) => {
            tracing::warn!(%user, %remote, status, %errcode, "the remote server failed");
            Err(FlowError::RemoteUnreachable)
        }
        Err(e) => {
            tracing::warn!(%user, %remote, "cannot relay to the remote server: {e}");
            Err(FlowError::RemoteUnreachable)
        }
    }
}

/// `POST /_matrix/federation/…/get_token`: a token for a remote user who wants to
/// subscribe on our SFU (never to publish).
pub async fn get_token_ss(
    services: &Services,
    app: &AppService,
    origin: Option<&str>,
    request: SsTokenRequest,
) -> Result<String, FlowError> {
    let origin = origin.ok_or(FlowError::MissingIdentity("Missing request origin"))?;
    if server_of(&request.user_id)? != origin {
        tracing::warn!(user = %request.user_id, %origin, "user of another server");
        return Err(FlowError::ForeignUser);
    }
    let room_id = &request.slot.room_id;
    require_joined(
        app,
        room_id,
        Member::Server(&app.server_name),
        "This server is not joined to the room",
    )
    .await?;
    require_joined(
        app,
        room_id,
        Member::User(&request.user_id),
        "The requesting user is not a member of the room",
    )
    .await?;
    require_our_url(services, &request.url)?;
    local_token(services, &request.user_id, &request.slot, false).await
}

/// `POST /_matrix/client/…/delegate_delayed_leave`: the delay is looked up on the
/// homeserver (as the user), never taken from the client.
pub async fn delegate_cs(
    services: &Services,
    app: &AppService,
    user: Option<&str>,
    request: CsDelegateRequest,
) -> Result<(), FlowError> {
    let user = user.ok_or(FlowError::MissingIdentity("Missing request authorization"))?;
    if let Some(url) = &request.url {
        require_our_url(services, url)?;
    }
    let event = match app.api.delayed_event(&request.delay_id, user).await {
        Ok(event) if event.room_id == request.slot.room_id => event,
        Ok(event) => {
            tracing::warn!(%user, room = %event.room_id, "the delayed event is for another room");
            return Err(FlowError::UnknownDelay);
        }
        Err(LookupError::NotFound) => {
            tracing::warn!(%user, "no such delayed event");
            return Err(FlowError::UnknownDelay);
        }
        Err(LookupError::Failed(e)) => {
            tracing::warn!(%user, "cannot look up the delayed event: {e}");
            return Err(FlowError::DelayLookupFailed);
        }
    };
    let (room, identity) = ids(user, &request.slot);
    register(
        services,
        JobParams {
            delay_id: request.delay_id,
            delay_timeout: event.delay,
            server_name: app.server_name.clone(),
            key: JobKey {
                room: room.clone(),
                identity,
            },
        },
        user,
    )
    .await?;
    tracing::info!(%user, %room, delay = ?event.delay, "delegated delayed leave");
    Ok(())
}

/// `LIVEKIT_REQUIRE_MEMBERSHIP` on the standalone endpoints: the verified user must be
/// joined to the room.
pub async fn require_member(app: &AppService, room_id: &str, user: &str) -> Result<(), FlowError> {
    require_joined(
        app,
        room_id,
        Member::User(user),
        "The requesting user is not a member of the room",
    )
    .await
}

/// Signs a token for our SFU and makes sure the room exists.
async fn local_token(
    services: &Services,
    user: &str,
    slot: &Slot,
    can_publish: bool,
) -> Result<String, FlowError> {
    let (room, identity) = ids(user, slot);
    let grants = JoinGrants {
        can_publish,
        can_update_own_metadata: services.can_update_own_metadata,
    };
    let jwt = sign(services, &identity, &room, grants)?;
    create_room(services, &room).await?;
    tracing::info!(%user, %room, %identity, can_publish, "issued LiveKit token");
    if let Some(membership) = &services.membership {
        membership
            .track(&room, &identity, &slot.room_id, user)
            .await;
    }
    Ok(jwt)
}

/// The LiveKit room and the MSC4195 identity `H([user_id, member_id])`.
fn ids(user: &str, slot: &Slot) -> (String, String) {
    (
        alias::room_alias(&slot.room_id, &slot.slot_id),
        alias::hash_strings(&[user, &slot.member_id]),
    )
}

fn require_our_url(services: &Services, url: &str) -> Result<(), FlowError> {
    if url == services.livekit_url {
        Ok(())
    } else {
        tracing::warn!(%url, "the request names another SFU than LIVEKIT_URL");
        Err(FlowError::UrlMismatch)
    }
}

/// The server part of a user id (`@local:server`).
fn server_of(user: &str) -> Result<&str, FlowError> {
    user.strip_prefix('@')
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, server)| server)
        .filter(|server| !server.is_empty())
        .ok_or(FlowError::MalformedUser)
}

async fn require_joined(
    app: &AppService,
    room_id: &str,
    member: Member<'_>,
    refusal: &'static str,
) -> Result<(), FlowError> {
    match app.api.is_joined(room_id, member).await {
        Ok(true) => Ok(()),
        Ok(false) => {
            tracing::warn!(%room_id, ?member, "not joined");
            Err(FlowError::NotJoined(refusal))
        }
        Err(e) => {
            tracing::error!(%room_id, ?member, "cannot check membership: {e}");
            Err(FlowError::MembershipUnknown)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_follow_msc4195() {
        let slot = Slot {
            room_id: "!r".into(),
            slot_id: "m.call#".into(),
            member_id: "memberABC".into(),
        };
        assert_eq!(
            ids("@alice:example.com", &slot).1,
            "M3VnsLXrkbxIDINXO64u8PZzFyD9ZYFiQULR2dshWYs"
        );
    }

    #[test]
    fn user_servers() {
        assert_eq!(server_of("@a:example.com:8448"), Ok("example.com:8448"));
        for bad in ["a:b", "@a", "@a:", "not-an-mxid"] {
            assert_eq!(server_of(bad), Err(FlowError::MalformedUser), "{bad}");
        }
    }
}
