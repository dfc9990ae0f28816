//! `GoJson<T>`: a request body read up to [`MAX_BODY_BYTES`] and decoded the way
//! upstream's Go decoder does ([`crate::go_json`]); its rejections are upstream's error
//! bodies (413 is ours: upstream reads without limit).

use axum::body::to_bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::go_json::{self, DecodeError, Schema};

/// Largest body read (real bodies are under 2 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A body type with its Go field schema.
pub trait GoBody: DeserializeOwned {
    /// The field names Go's decoder matches (case-insensitively).
    const SCHEMA: &'static Schema;
}

/// A decoded body.
#[derive(Debug)]
pub struct GoJson<T>(pub T);

impl<T: GoBody> GoJson<T> {
    /// Decodes a body read in full, as the extractor does (public for the fuzz targets).
    /// The error names places and kinds of values, never a value: it is logged.
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        go_json::decode::<T>(body, T::SCHEMA).map(GoJson)
    }
}

impl<S: Send + Sync, T: GoBody> FromRequest<S> for GoJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Self, ApiError> {
        let Ok(body) = to_bytes(request.into_body(), MAX_BODY_BYTES).await else {
            tracing::warn!("request body larger than {MAX_BODY_BYTES} bytes");
            return Err(ApiError::too_large());
        };
        Self::decode(&body).map_err(|e| {
            tracing::warn!("request body is not acceptable JSON: {e}");
            ApiError::not_json()
        })
    }
}
