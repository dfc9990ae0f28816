//! The MSC4143 transports document, served by lk-jwt-service itself when
//! `LIVEKIT_RTC_TRANSPORTS_SERVICE_URL` is set (off by default): for homeservers without
//! native support, one reverse-proxy rule on the homeserver's host sends both paths here
//! and Element Call / Element X find this service. Answered to anyone (the document
//! holds only a public URL), with the CORS headers of the Matrix client API. The
//! variable is read in `config::rtc_transports`.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use url::Url;

/// The path clients call today (MSC4143).
pub const UNSTABLE_PATH: &str = "/_matrix/client/unstable/org.matrix.msc4143/rtc/transports";
/// The stable path of MSC4519.
pub const V1_PATH: &str = "/_matrix/client/v1/rtc/transports";

/// The prepared answer body.
#[derive(Debug, Clone)]
pub struct TransportsDocument(String);

impl TransportsDocument {
    /// `{"rtc_transports":[{"type":"livekit","livekit_service_url":URL}]}` for `service_url`
    /// (no trailing slash, as clients append `/get_token`).
    pub fn new(service_url: &Url) -> Self {
        let url = service_url.as_str().trim_end_matches('/');
        let body = serde_json::json!({
            "rtc_transports": [{"type": "livekit", "livekit_service_url": url}]
        });
        Self(body.to_string())
    }
}

/// GET/HEAD: the document; OPTIONS: the CORS preflight; other methods: 405 in Matrix
/// JSON. Every answer carries the CORS headers.
pub async fn transports(document: TransportsDocument, method: Method) -> Response {
    let mut response = if method == Method::GET || method == Method::HEAD {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            document.0,
        )
            .into_response()
    } else if method == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}"#,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("X-Requested-With, Content-Type, Authorization"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_names_the_base_url_without_a_trailing_slash() {
        let url = Url::parse("https://rtc.example.org/livekit/jwt/").unwrap();
        assert_eq!(
            TransportsDocument::new(&url).0,
            r#"{"rtc_transports":[{"type":"livekit","livekit_service_url":"https://rtc.example.org/livekit/jwt"}]}"#
        );
    }
}
