//! The standalone endpoints (spec §1.2-§1.4): `/get_token` (MSC4195 body, identity
//! `H([user, device, member])`), `/sfu/get` (legacy, identity `user:device`) and
//! `/delegate_delayed_leave`. The client proves who it is with an OpenID token that
//! its homeserver confirms over federation.
//!
//! Order of checks, as upstream (tests count homeserver calls): OpenID verification →
//! claimed user → authorisation → signing → CS-API resolution → room creation → job
//! registration.

use std::time::SystemTime;

use super::FlowError;
use crate::delegation::job::{JobKey, JobParams};
use crate::delegation::manager::timeout_from_ms;
use crate::livekit::alias;
use crate::livekit::token::JoinGrants;
use crate::livekit::twirp::RoomOutcome;
use crate::request::{DelayParams, Subject, TokenRequest};
use crate::state::Services;

/// A token for the client: the SFU's URL and the signed JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// `LIVEKIT_URL`, verbatim.
    pub url: String,
    /// The LiveKit join token.
    pub jwt: String,
}

/// `/get_token` and `/sfu/get` after validation: the token, the room for full-access
/// users, and the delegated leave when asked for.
pub async fn issue(services: &Services, request: TokenRequest) -> Result<Issued, FlowError> {
    let server = &request.openid.matrix_server_name;
    let user_id = verified_user(services, &request).await?;
    if let Some(app) = services
        .app_service
        .as_ref()
        .filter(|a| a.require_membership)
    {
        super::appservice::require_member(app, request.subject.room_id(), &user_id).await?;
    }
    let full_access = services.full_access.allows(server);
    if request.delay.is_some() && !full_access {
        tracing::warn!(%user_id, "delegation asked for by a restricted user");
        return Err(FlowError::DelegationRestricted {
            delegation_endpoint: false,
        });
    }
    let (room, identity) = derive_ids(&request.subject, &user_id);
    let grants = JoinGrants {
        can_publish: full_access || services.restricted_can_publish,
        can_update_own_metadata: services.can_update_own_metadata,
    };
    let jwt = sign(services, &identity, &room, grants)?;
    if full_access {
        // Resolved before the room is created, so a failure leaves no stray room.
        let job = match &request.delay {
            Some(delay) => Some(job_params(services, server, delay, &room, &identity).await?),
            None => None,
        };
        create_room(services, &room).await?;
        if let Some(job) = job {
            register(services, job, &user_id).await?;
        }
    }
    tracing::info!(%user_id, %room, %identity, full_access, "issued LiveKit token");
    if let Some(membership) = &services.membership {
        membership
            .track(&room, &identity, request.subject.room_id(), &user_id)
            .await;
    }
    Ok(Issued {
        url: services.livekit_url.clone(),
        jwt,
    })
}

/// `/delegate_delayed_leave` after validation: no token, no room; just the job.
pub async fn delegate(services: &Services, request: TokenRequest) -> Result<(), FlowError> {
    let server = &request.openid.matrix_server_name;
    let user_id = verified_user(services, &request).await?;
    if !services.full_access.allows(server) {
        tracing::warn!(%user_id, "delegation asked for by a restricted user");
        return Err(FlowError::DelegationRestricted {
            delegation_endpoint: true,
        });
    }
    let Some(delay) = &request.delay else {
        tracing::warn!(%user_id, "delegation without delay parameters");
        return Err(FlowError::MissingDelay);
    };
    let (room, identity) = derive_ids(&request.subject, &user_id);
    let job = job_params(services, server, delay, &room, &identity).await?;
    register(services, job, &user_id).await?;
    tracing::info!(%user_id, %room, "delegated delayed leave");
    Ok(())
}

/// Signs a join token.
pub(crate) fn sign(
    services: &Services,
    identity: &str,
    room: &str,
    grants: JoinGrants,
) -> Result<String, FlowError> {
    services
        .signer
        .join_token(identity, room, grants, SystemTime::now())
        .map_err(|e| {
            tracing::error!("{e}");
            FlowError::Signing
        })
}

/// Creates (or finds) the LiveKit room.
pub(crate) async fn create_room(services: &Services, room: &str) -> Result<(), FlowError> {
    match services.rooms.create_room(room).await {
        Ok(outcome) => {
            tracing::info!(%room, ?outcome, "LiveKit room ready");
            services.metrics.room(match outcome {
                RoomOutcome::Created => "created",
                RoomOutcome::Reused => "reused",
            });
            Ok(())
        }
        Err(e) => {
            tracing::error!(%room, "unable to create room on SFU: {e}");
            services.metrics.room("failed");
            Err(FlowError::RoomCreation)
        }
    }
}

/// Hands `user_id`'s job to the delegation manager (persisted before this returns).
pub(crate) async fn register(
    services: &Services,
    job: JobParams,
    user_id: &str,
) -> Result<(), FlowError> {
    let room = job.key.room.clone();
    services.delegation.add(job, user_id).await.map_err(|e| {
        tracing::warn!(%user_id, %room, "delegation refused: {e}");
        FlowError::from(e)
    })
}

/// The OpenID check plus, for MSC4195 bodies, the claimed-user check.
async fn verified_user(services: &Services, request: &TokenRequest) -> Result<String, FlowError> {
    let server = &request.openid.matrix_server_name;
    let user_id = services
        .verifier
        .verify(&request.openid)
        .await
        .map_err(|e| {
            tracing::warn!(%server, "OpenID token rejected: {e}");
            services.metrics.openid_failure(e.cause());
            FlowError::Unauthorized
        })?;
    if let Subject::Member {
        claimed_user_id, ..
    } = &request.subject
        && *claimed_user_id != user_id
    {
        tracing::warn!(%user_id, %claimed_user_id, "claimed user does not match the token");
        services.metrics.openid_failure("claimed_user_mismatch");
        return Err(FlowError::Unauthorized);
    }
    Ok(user_id)
}

/// The LiveKit room alias and identity for a verified user.
fn derive_ids(subject: &Subject, user_id: &str) -> (String, String) {
    match subject {
        Subject::Member {
            room_id,
            slot_id,
            member_id,
            claimed_device_id,
            ..
        } => (
            alias::room_alias(room_id, slot_id),
            alias::member_identity(user_id, claimed_device_id, member_id),
        ),
        Subject::Legacy { room, device_id } => (
            alias::room_alias(room, alias::LEGACY_SLOT),
            alias::legacy_identity(user_id, device_id),
        ),
    }
}

/// A job's parameters, once the homeserver's client-server API is known to resolve.
async fn job_params(
    services: &Services,
    server: &str,
    delay: &DelayParams,
    room: &str,
    identity: &str,
) -> Result<JobParams, FlowError> {
    if let Err(e) = services.cs_api.resolve(server).await {
        tracing::warn!(%server, "cannot resolve the client-server API: {e}");
        return Err(FlowError::CsApiUnresolvable);
    }
    Ok(JobParams {
        delay_id: delay.delay_id.clone(),
        delay_timeout: timeout_from_ms(delay.delay_timeout_ms),
        server_name: server.to_owned(),
        key: JobKey {
            room: room.to_owned(),
            identity: identity.to_owned(),
        },
    })
}
