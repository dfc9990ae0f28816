//! Matrix server names and the documents that name servers: a valid server name must
//! reach what was checked (a name stays a name for the URL parser, an IP literal stays that
//! IP); `m.server` of `/.well-known/matrix/server` goes through the same validation as in
//! discovery; `m.homeserver.base_url` of `/.well-known/matrix/client`, `Cache-Control` and
//! a 429's `Retry-After` or `retry_after_ms` are parsed, the delay never above its cap.
#![no_main]

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use lk_jwt_service::delegation::cs_api::parse_client_well_known;
use lk_jwt_service::delegation::homeserver::{MAX_RETRY_AFTER, Outcome, classify};
use lk_jwt_service::openid::discovery::parse_server_well_known;
use lk_jwt_service::openid::net::max_age;
use lk_jwt_service::openid::server_name::{Host, ServerName};
use reqwest::StatusCode;

fn check_server_name(text: &str) {
    let Ok(name) = ServerName::parse(text) else {
        return;
    };
    let port = name.port.unwrap_or(8448);
    let url = url::Url::parse(&format!("https://{}:{port}/", name.url_host()))
        .unwrap_or_else(|e| panic!("{text:?} is valid but makes no URL: {e}"));
    match (&name.host, url.host()) {
        (Host::Name(_), Some(url::Host::Domain(_))) => {}
        (Host::Ip(IpAddr::V4(ip)), Some(url::Host::Ipv4(reached))) => assert_eq!(*ip, reached),
        (Host::Ip(IpAddr::V6(ip)), Some(url::Host::Ipv6(reached))) => assert_eq!(*ip, reached),
        (checked, reached) => panic!("{text:?}: checked {checked:?}, would reach {reached:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(delegated) = parse_server_well_known(data) {
        check_server_name(&delegated);
    }
    let _ = parse_client_well_known(data);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let Ok(text) = std::str::from_utf8(data) else {
        if let Outcome::RetryAfter(delay) = classify(StatusCode::TOO_MANY_REQUESTS, None, data, now)
        {
            assert!(delay <= MAX_RETRY_AFTER);
        }
        return;
    };
    check_server_name(text);
    let _ = max_age(text);
    if let Outcome::RetryAfter(delay) =
        classify(StatusCode::TOO_MANY_REQUESTS, Some(text), data, now)
    {
        assert!(delay <= MAX_RETRY_AFTER, "{delay:?}");
    }
});
