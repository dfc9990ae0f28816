//! `MatrixJson<T>`: a body of the application-service routes, read up to
//! [`MAX_BODY_BYTES`] and decoded leniently (unknown fields ignored); a body that is
//! not JSON of the right shape is `400 M_NOT_JSON`, as upstream. As for the Go-style
//! bodies, the logged reason names the place and never the value there.

use axum::body::to_bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

pub use super::go_json_body::MAX_BODY_BYTES;
use crate::error::ApiError;

/// A decoded body.
#[derive(Debug)]
pub struct MatrixJson<T>(pub T);

impl<T: DeserializeOwned> MatrixJson<T> {
    /// Decodes a body read in full as serde_json does, as the extractor does (public for
    /// the fuzz targets). The error names the kind of failure, its line and column and,
    /// for a value of the wrong type, the field; never a value (serde_json's own messages
    /// quote it): it is logged.
    pub fn decode(body: &[u8]) -> Result<Self, String> {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let value = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|e| describe(&e.path().to_string(), e.inner()))?;
        deserializer.end().map_err(|e| describe(".", &e))?;
        Ok(Self(value))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for MatrixJson<T> {
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

/// A decode failure at `path` (`.` for the body itself), without serde_json's message.
/// A data error (a known field with a value of the wrong type) names that field; a syntax
/// error only its line and column, since it may lie in an ignored field whose key is the
/// client's text.
fn describe(path: &str, error: &serde_json::Error) -> String {
    let (line, column) = (error.line(), error.column());
    match error.classify() {
        Category::Data if path == "." => {
            format!("data error in the body at line {line} column {column}")
        }
        Category::Data => format!("data error in field {path} at line {line} column {column}"),
        Category::Syntax => format!("syntax error at line {line} column {column}"),
        Category::Eof => format!("unexpected end of the body at line {line} column {column}"),
        Category::Io => "read error".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::appservice::CsTokenBody;

    fn decode(body: &[u8]) -> Result<CsTokenBody, String> {
        MatrixJson::decode(body).map(|MatrixJson(body)| body)
    }

    #[test]
    fn errors_name_the_place_not_the_value() {
        const SECRET: &str = "syt_c2VjcmV0_VALUE";
        let error = decode(format!(r#"{{"member":"{SECRET}"}}"#).as_bytes()).unwrap_err();
        assert_eq!(error, "data error in field member at line 1 column 30");
        assert_eq!(
            decode(br#"{"room_id":"!r""#).unwrap_err(),
            "unexpected end of the body at line 1 column 15"
        );
        for body in [
            format!(r#"{{"x_{SECRET}":"\u0001\x"}}"#),
            format!(r#"{{"room_id":{{"{SECRET}":1}}}}"#),
            format!(r#"{{"member":{{"id":["{SECRET}"]}}}}"#),
            format!(r#"{{"room_id":"{SECRET}\x"}}"#),
            format!(r#"{{"room_id":"!r"}} "{SECRET}""#),
        ] {
            let error = decode(body.as_bytes()).unwrap_err();
            assert!(!error.contains("c2VjcmV0"), "{body} -> {error}");
        }
        assert!(decode(br#"{"room_id":"!r","other":1}"#).is_ok());
    }
}
