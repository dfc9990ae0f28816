//! The JSON error body of the token endpoints: `{"errcode":…,"error":…}` plus a newline,
//! the way Go's JSON encoder writes it. Status, errcode and message together, so each
//! failure is named once.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::flows::FlowError;
use crate::go_json;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Matrix errcode.
    pub errcode: &'static str,
    /// Human-readable message (upstream's text, verbatim).
    pub message: String,
}

impl ApiError {
    /// An error answer of its own.
    pub fn new(status: StatusCode, errcode: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            errcode,
            message: message.into(),
        }
    }

    /// 400 M_NOT_JSON: the body did not decode.
    pub fn not_json() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "M_NOT_JSON",
            "Error reading request",
        )
    }

    /// 400 M_BAD_JSON with a validation message.
    pub fn bad_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_BAD_JSON", message)
    }

    /// 401 M_UNAUTHORIZED: any OpenID failure.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "M_UNAUTHORIZED",
            "The request could not be authorised.",
        )
    }

    /// 500 M_UNKNOWN: signing failed.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "M_UNKNOWN",
            "Internal Server Error",
        )
    }

    /// 500 M_UNKNOWN: CreateRoom failed.
    pub fn room_creation_failed() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "M_UNKNOWN",
            "Unable to create room on SFU",
        )
    }

    /// 403 M_FORBIDDEN: delegation for a restricted user.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "M_FORBIDDEN", message)
    }

    /// 400 M_BAD_JSON: the homeserver's client-server API could not be found.
    pub fn cs_api_unresolvable() -> Self {
        Self::bad_json("Unable to resolve client-server API")
    }

    /// 413 M_TOO_LARGE: the body is over our limit (upstream has none).
    pub fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "M_TOO_LARGE",
            "Request body too large",
        )
    }

    /// 429 M_LIMIT_EXCEEDED: the per-IP rate limit (ours, off by default).
    pub fn rate_limited() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "M_LIMIT_EXCEEDED",
            "Too many requests",
        )
    }
}

impl From<FlowError> for ApiError {
    /// The wire form of every flow failure: upstream's status, errcode and message.
    fn from(error: FlowError) -> Self {
        use StatusCode as S;
        match error {
            FlowError::Unauthorized => Self::unauthorized(),
            FlowError::DelegationRestricted {
                delegation_endpoint: false,
            } => Self::bad_json(DELEGATION_FULL_ACCESS_ONLY),
            FlowError::DelegationRestricted {
                delegation_endpoint: true,
            } => Self::forbidden(DELEGATION_FULL_ACCESS_ONLY),
            FlowError::MissingDelay => {
                Self::bad_json("The request body is missing `delay_id` or `delay_timeout`")
            }
            FlowError::CsApiUnresolvable => Self::cs_api_unresolvable(),
            FlowError::Signing => Self::internal(),
            FlowError::RoomCreation => Self::room_creation_failed(),
            FlowError::ShuttingDown => Self::new(
                S::SERVICE_UNAVAILABLE,
                "M_UNKNOWN",
                "Service is shutting down",
            ),
            FlowError::TooManyJobs => Self::new(
                S::SERVICE_UNAVAILABLE,
                "M_UNKNOWN",
                "Too many delegated leave jobs",
            ),
            FlowError::TooManyJobsForUser => Self::new(
                S::TOO_MANY_REQUESTS,
                "M_LIMIT_EXCEEDED",
                "Too many delegated leave jobs for this user",
            ),
            FlowError::MissingIdentity(message) => {
                Self::new(S::UNAUTHORIZED, "M_UNAUTHORIZED", message)
            }
            FlowError::MalformedUser => Self::new(
                S::BAD_REQUEST,
                "M_INVALID_PARAM",
                "Malformed user identifier",
            ),
            FlowError::UrlMismatch => Self::new(
                S::BAD_REQUEST,
                "M_INVALID_PARAM",
                "The request `url` does not match this service's LiveKit URL",
            ),
            FlowError::NotJoined(message) => Self::forbidden(message),
            FlowError::ForeignUser => {
                Self::forbidden("The user_id does not belong to the origin server")
            }
            FlowError::MembershipUnknown => Self::new(
                S::BAD_GATEWAY,
                "M_UNKNOWN",
                "Unable to verify room membership",
            ),
            FlowError::RemoteRefused { status: 403, .. } => Self::forbidden(
                "The requesting user is not a member of the room on the destination homeserver",
            ),
            FlowError::RemoteRefused { .. } => Self::new(
                S::BAD_REQUEST,
                "M_INVALID_PARAM",
                "The destination homeserver rejected the specified `url`",
            ),
            FlowError::RemoteUnreachable => Self::new(
                S::BAD_GATEWAY,
                "M_UNKNOWN",
                "Unable to reach the specified homeserver",
            ),
            FlowError::UnknownDelay => {
                Self::new(S::BAD_REQUEST, "M_INVALID_PARAM", "Unknown `delay_id`")
            }
            FlowError::DelayLookupFailed => Self::new(
                S::SERVICE_UNAVAILABLE,
                "M_UNKNOWN",
                "Unable to look up the delayed event",
            ),
        }
    }
}

/// The delegation rule's message, shared by the 400 (token endpoints) and the 403.
const DELEGATION_FULL_ACCESS_ONLY: &str =
    "Delegation of delayed events is only supported for full access users";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            go_json::string_object_line(&[("errcode", self.errcode), ("error", &self.message)]);
        (self.status, body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_verbatim() {
        assert_eq!(ApiError::not_json().message, "Error reading request");
        assert_eq!(ApiError::unauthorized().status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            ApiError::room_creation_failed().message,
            "Unable to create room on SFU"
        );
        let shutting_down = ApiError::from(FlowError::ShuttingDown);
        assert_eq!(
            (shutting_down.status, shutting_down.message.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "Service is shutting down")
        );
        let too_many = ApiError::from(FlowError::TooManyJobs);
        assert_eq!(
            (too_many.status, too_many.errcode),
            (StatusCode::SERVICE_UNAVAILABLE, "M_UNKNOWN")
        );
        let per_user = ApiError::from(FlowError::TooManyJobsForUser);
        assert_eq!(
            (per_user.status, per_user.errcode),
            (StatusCode::TOO_MANY_REQUESTS, "M_LIMIT_EXCEEDED")
        );
    }
}
