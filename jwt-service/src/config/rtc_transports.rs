//! `LIVEKIT_RTC_TRANSPORTS_SERVICE_URL` (ours): this service's public base URL. When set,
//! the MSC4143 transports paths answer with it (`routes::transports`), for homeservers
//! without native support; unset (the default) leaves those paths 404.

use url::Url;

use super::ConfigError;

/// The service URL to announce, `None` when the variable is unset.
pub(super) fn service_url(
    var: &impl Fn(&str) -> Option<String>,
) -> Result<Option<Url>, ConfigError> {
    var("LIVEKIT_RTC_TRANSPORTS_SERVICE_URL")
        .map(|v| {
            parse_service_url(&v)
                .map_err(|e| ConfigError(format!("LIVEKIT_RTC_TRANSPORTS_SERVICE_URL: {e}")))
        })
        .transpose()
}

/// This service's public http(s) base URL: no query or fragment, and not the
/// `/get_token` endpoint itself (clients append that).
fn parse_service_url(value: &str) -> Result<Url, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_urls() {
        assert_eq!(
            parse_service_url(" https://rtc.example.org/livekit/jwt/\n")
                .unwrap()
                .as_str(),
            "https://rtc.example.org/livekit/jwt/"
        );
        assert!(parse_service_url("http://127.0.0.1:8080").is_ok());
        assert!(parse_service_url("wss://rtc.example.org").is_err());
        assert!(parse_service_url("rtc.example.org").is_err());
        assert!(parse_service_url("https://rtc.example.org/livekit/jwt/get_token").is_err());
        assert!(parse_service_url("https://rtc.example.org/?a=b").is_err());
        assert!(parse_service_url("https://rtc.example.org/#top").is_err());
    }

    #[test]
    fn the_variable_is_off_by_default_and_a_bad_value_is_named() {
        let lookup = |value: Option<&'static str>| {
            move |name: &str| match name {
                "LIVEKIT_RTC_TRANSPORTS_SERVICE_URL" => value.map(str::to_owned),
                _ => None,
            }
        };
        assert_eq!(service_url(&lookup(None)), Ok(None));
        assert_eq!(
            service_url(&lookup(Some("https://rtc.example.org/livekit/jwt")))
                .unwrap()
                .map(String::from),
            Some("https://rtc.example.org/livekit/jwt".to_owned())
        );
        let error = service_url(&lookup(Some("rtc.example.org"))).unwrap_err();
        assert!(
            error.0.starts_with("LIVEKIT_RTC_TRANSPORTS_SERVICE_URL: "),
            "{error}"
        );
    }
}
