//! Why a token flow refused: one variant per cause, each mapped to upstream's status,
//! `errcode` and message in one place (`From<FlowError> for ApiError`).

use crate::delegation::manager::AddError;

/// Why a flow ended without a token or a job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// The OpenID token was refused, or names another user than the claimed one.
    #[error("the request could not be authorised")]
    Unauthorized,
    /// Delegation asked for by a user outside the full-access list: 400 on the token
    /// endpoints, 403 on the delegation endpoint (upstream's two answers).
    #[error("delegation is only for full-access users")]
    DelegationRestricted {
        /// Asked on `/delegate_delayed_leave` (403) rather than with a token (400).
        delegation_endpoint: bool,
    },
    /// `/delegate_delayed_leave` without `delay_id`/`delay_timeout`.
    #[error("no delay parameters")]
    MissingDelay,
    /// The homeserver's client-server API could not be found.
    #[error("the client-server API could not be resolved")]
    CsApiUnresolvable,
    /// Signing the join token failed.
    #[error("signing failed")]
    Signing,
    /// CreateRoom failed.
    #[error("the SFU did not create the room")]
    RoomCreation,
    /// The service is shutting down and takes no new jobs.
    #[error("shutting down")]
    ShuttingDown,
    /// The service runs as many delegated jobs as it may.
    #[error("too many delegated jobs")]
    TooManyJobs,
    /// The user runs as many delegated jobs as one user may.
    #[error("too many delegated jobs for this user")]
    TooManyJobsForUser,
    /// The homeserver did not name a user (`X-Matrix-User-Identifier`) or origin.
    #[error("no authenticated user or origin")]
    MissingIdentity(&'static str),
    /// The user id or server name the homeserver gave is not one.
    #[error("malformed user identifier")]
    MalformedUser,
    /// The request's `url` is not this service's `LIVEKIT_URL`.
    #[error("the url is not this service's LiveKit URL")]
    UrlMismatch,
    /// The user (or server) is not joined to the room.
    #[error("not joined: {0}")]
    NotJoined(&'static str),
    /// The federated user does not belong to the origin server.
    #[error("the user does not belong to the origin server")]
    ForeignUser,
    /// Membership could not be checked.
    #[error("membership could not be verified")]
    MembershipUnknown,
    /// The remote server refused the relayed request (403 / 400 passed through).
    #[error("the remote server refused: {status} {errcode}")]
    RemoteRefused {
        /// 403 or 400.
        status: u16,
        /// Its errcode.
        errcode: String,
    },
    /// The remote server could not be asked, or answered something else.
    #[error("the remote server could not be reached")]
    RemoteUnreachable,
    /// The delayed event is unknown, or belongs to another room or user.
    #[error("unknown delay_id")]
    UnknownDelay,
    /// The delayed event could not be looked up.
    #[error("the delayed event could not be looked up")]
    DelayLookupFailed,
}

impl From<AddError> for FlowError {
    fn from(error: AddError) -> Self {
        match error {
            AddError::ShuttingDown => Self::ShuttingDown,
            AddError::TooMany => Self::TooManyJobs,
            AddError::TooManyForUser => Self::TooManyJobsForUser,
        }
    }
}
