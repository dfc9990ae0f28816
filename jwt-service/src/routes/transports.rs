//! The MSC4143 transports document, served by lk-jwt-service itself when
//! `LIVEKIT_RTC_TRANSPORTS_SERVICE_URL` is set (off by default): for homeservers without
//! native support, one reverse-proxy rule on the homeserver's host sends both paths here
//! and Element Call / Element X find this service. Answered to anyone (the document
//! holds only a public URL), with the CORS headers of the Matrix client API.

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

/// Parses `LIVEKIT_RTC_TRANSPORTS_SERVICE_URL`: this service's public http(s) base URL.
pub fn parse_service_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value.trim()).map_err(|e| format!("{value:?}: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(format!("{value:?} is not an http(s) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{value:?} must not have a query or fragment"));
    }
    if url.path().trim_end_matches('/').ends_with("/get_token") {
        return Err(format!(
            "{value:?} must be the service's base URL, without /get_token"
        ));
    }
    Ok(url)
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
    fn service_urls() {
        let url = parse_service_url("https://rtc.example.org/livekit/jwt/").unwrap();
        assert_eq!(
            TransportsDocument::new(&url).0,
            r#"{"rtc_transports":[{"type":"livekit","livekit_service_url":"https://rtc.example.org/livekit/jwt"}]}"#
        );
        assert!(parse_service_url("wss://rtc.example.org").is_err());
        assert!(parse_service_url("rtc.example.org").is_err());
        assert!(parse_service_url("https://rtc.example.org/livekit/jwt/get_token").is_err());
        assert!(parse_service_url("https://rtc.example.org/?a=b").is_err());
    }

    #[test]
    fn the_variable_is_off_by_default_and_a_bad_value_is_named() {
        let base = |extra: Option<&'static str>| {
            move |name: &str| match name {
                "LIVEKIT_URL" => Some("wss://rtc.example.org/livekit/sfu".to_owned()),
                "LIVEKIT_KEY" => Some("key".to_owned()),
                "LIVEKIT_SECRET" => Some("secret".to_owned()),
                "LIVEKIT_FULL_ACCESS_HOMESERVERS" => Some("example.org".to_owned()),
                "LIVEKIT_RTC_TRANSPORTS_SERVICE_URL" => extra.map(str::to_owned),
                _ => None,
            }
        };
        let config = crate::config::Config::from_lookup(base(None)).unwrap();
        assert!(config.rtc_transports_service_url.is_none());
        let config =
            crate::config::Config::from_lookup(base(Some("https://rtc.example.org/livekit/jwt")))
                .unwrap();
        assert_eq!(
            config.rtc_transports_service_url.unwrap().as_str(),
            "https://rtc.example.org/livekit/jwt"
        );
        let error = crate::config::Config::from_lookup(base(Some("rtc.example.org"))).unwrap_err();
        assert!(
            error.0.starts_with("LIVEKIT_RTC_TRANSPORTS_SERVICE_URL: "),
            "{error}"
        );
    }
}
