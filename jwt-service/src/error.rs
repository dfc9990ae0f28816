//! The JSON error body of the token endpoints: `{"errcode":…,"error":…}` plus a newline,
//! the way Go's JSON encoder writes it. Status, errcode and message together, so each
//! failure is named once.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::delegation::manager::AddError;
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
    fn new(status: StatusCode, errcode: &'static str, message: impl Into<String>) -> Self {
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

impl From<AddError> for ApiError {
    /// 503 while shutting down or when the service runs too many jobs; 429 when the
    /// user has too many.
    fn from(error: AddError) -> Self {
        let message = error.to_string();
        match error {
            AddError::ShuttingDown | AddError::TooMany => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "M_UNKNOWN", message)
            }
            AddError::TooManyForUser => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "M_LIMIT_EXCEEDED", message)
            }
        }
    }
}

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
        let shutting_down = ApiError::from(AddError::ShuttingDown);
        assert_eq!(
            (shutting_down.status, shutting_down.message.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "Service is shutting down")
        );
        let per_user = ApiError::from(AddError::TooManyForUser);
        assert_eq!(
            (per_user.status, per_user.errcode),
            (StatusCode::TOO_MANY_REQUESTS, "M_LIMIT_EXCEEDED")
        );
    }
}
