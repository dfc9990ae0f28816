//! `MatrixJson<T>`: a body of the application-service routes, read up to
//! [`MAX_BODY_BYTES`] and decoded leniently (unknown fields ignored); a body that is
//! not JSON of the right shape is `400 M_NOT_JSON`, as upstream.

use axum::body::to_bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

pub use super::go_json_body::MAX_BODY_BYTES;
use crate::error::ApiError;

/// A decoded body.
#[derive(Debug)]
pub struct MatrixJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for MatrixJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Self, ApiError> {
        let Ok(body) = to_bytes(request.into_body(), MAX_BODY_BYTES).await else {
            tracing::warn!("request body larger than {MAX_BODY_BYTES} bytes");
            return Err(ApiError::too_large());
        };
        serde_json::from_slice(&body).map(MatrixJson).map_err(|e| {
            tracing::warn!("request body is not acceptable JSON: {e}");
            ApiError::not_json()
        })
    }
}
