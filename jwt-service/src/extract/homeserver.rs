//! What the homeserver adds to the requests it proxies to an application service
//! (MSC4512): `Authorization: Bearer <hs_token>` (checked in constant time), the user
//! it authenticated (`X-Matrix-User-Identifier`) or the server whose signature it
//! checked (`X-Matrix-Origin`).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use rtc_auth::constant_time::ct_eq;

use crate::error::ApiError;
use crate::state::AppState;

/// The header naming the user on a proxied client-server request.
pub const USER_HEADER: &str = "x-matrix-user-identifier";
/// The header naming the origin server on a proxied federation request.
pub const ORIGIN_HEADER: &str = "x-matrix-origin";

/// Proof that the request came from our homeserver.
#[derive(Debug, Clone, Copy)]
pub struct FromHomeserver;

impl FromRequestParts<AppState> for FromHomeserver {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(app) = &state.0.app_service else {
            // The routes exist only in application-service mode.
            return Err(ApiError::internal());
        };
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if token.is_empty() {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "M_MISSING_TOKEN",
                "Missing homeserver access token",
            ));
        }
        if !ct_eq(token.as_bytes(), app.hs_token.expose()) {
            tracing::warn!("request with a wrong homeserver token");
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "M_UNKNOWN_TOKEN",
                "Unrecognised homeserver access token",
            ));
        }
        Ok(Self)
    }
}

/// The user the homeserver authenticated, if it named one.
#[derive(Debug, Clone)]
pub struct MatrixUser(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for MatrixUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(header(&parts.headers, USER_HEADER)))
    }
}

/// The origin server the homeserver authenticated, if it named one.
#[derive(Debug, Clone)]
pub struct MatrixOrigin(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for MatrixOrigin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(header(&parts.headers, ORIGIN_HEADER)))
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}
