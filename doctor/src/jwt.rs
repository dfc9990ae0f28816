//! The JWT service behind `livekit_service_url`: reachable through the reverse proxy,
//! CORS for browsers, and `/get_token` answered by lk-jwt-service itself (Matrix JSON),
//! not by the homeserver or the proxy. With an access token, a real token flow.

use serde_json::{Value, json};
use url::Url;

use crate::discovery::Session;
use crate::http::{Http, join};
use crate::report::Report;

/// What a successful `/get_token` gave: the SFU URL clients connect to, and a token.
pub struct SfuAccess {
    /// `url` of the answer (`LIVEKIT_URL`).
    pub url: String,
    /// `jwt` of the answer.
    pub jwt: String,
}

/// The Matrix room id the checks use; no such room needs to exist.
fn room_id(server_name: &str) -> String {
    format!("!rtc-doctor:{server_name}")
}

fn token_body(openid_token: Value, user_id: &str, device_id: &str, server_name: &str) -> Value {
    json!({
        "room_id": room_id(server_name),
        "slot_id": "m.call#ROOM",
        "openid_token": openid_token,
        "member": {
            "id": "rtc-doctor",
            "claimed_user_id": user_id,
            "claimed_device_id": device_id,
        },
    })
}

/// `/healthz`, the CORS preflight of `/get_token`, and `/get_token` with a bogus token.
pub async fn check(http: &Http, service: &Url, base: &Url, server_name: &str, report: &mut Report) {
    if base.scheme() == "https" && service.scheme() != "https" {
        report.fail(
            "jwt-url-insecure",
            format!("livekit_service_url {service} is not https while the server is"),
            "browsers refuse plain http from an https page: publish the JWT service over https",
        );
    }
    let get_token = join(service, "/get_token");
    let user_id = format!("@rtc-doctor:{server_name}");
    let bogus = json!({
        "access_token": "rtc-doctor-not-a-real-token",
        "token_type": "Bearer",
        "matrix_server_name": server_name,
        "expires_in": 3600,
    });
    match http
        .post_json(&get_token, &token_body(bogus, &user_id, "RTCDOCTOR", server_name), None)
        .await
    {
        Ok(answer) if answer.status == 401 && answer.errcode().as_deref() == Some("M_UNAUTHORIZED") => {
            report.ok(
                "jwt-get-token",
                format!("{get_token} refuses a bogus OpenID token with M_UNAUTHORIZED (lk-jwt-service answers)"),
            );
        }
        Ok(answer) if answer.status == 404 => {
            let who = if answer.errcode().is_some() {
                "the homeserver (a Matrix JSON 404)"
            } else if answer.header("content-type").is_some_and(|t| t.contains("html")) {
                "an HTML page from the homeserver or the proxy, not lk-jwt-service"
            } else {
                "not lk-jwt-service (a plain 404)"
            };
            report.fail(
                "jwt-route-shadowed",
                format!("{get_token} answered {}: that is {who}", answer.describe()),
                "the reverse proxy sends the JWT service's path elsewhere: give its rule \
                 (e.g. PathPrefix(`/livekit/jwt`) with the prefix stripped) a higher priority \
                 than the homeserver's catch-all Host() rule",
            );
        }
        Ok(answer) if matches!(answer.status, 502..=504) => report.fail(
            "jwt-unreachable",
            format!("{get_token} answered {}: the proxy cannot reach lk-jwt-service", answer.describe()),
            "check that lk-jwt-service runs and shares a network with the reverse proxy",
        ),
        Ok(answer) => report.fail(
            "jwt-get-token",
            format!("{get_token} answered {} to a bogus OpenID token; expected 401 M_UNAUTHORIZED", answer.describe()),
            "livekit_service_url must be lk-jwt-service's public base URL (no /get_token at the end)",
        ),
        Err(e) => report.fail("jwt-unreachable", e, "publish lk-jwt-service at livekit_service_url"),
    }
    let healthz = join(service, "/healthz");
    match http.get(&healthz, None).await {
        Ok(answer) if answer.status == 200 => {
            report.ok("jwt-healthz", format!("{healthz} answers 200"))
        }
        Ok(answer) => report.fail(
            "jwt-healthz",
            format!("{healthz} answered {}", answer.describe()),
            "route livekit_service_url's whole prefix to lk-jwt-service",
        ),
        Err(e) => report.fail(
            "jwt-healthz",
            e,
            "publish lk-jwt-service at livekit_service_url",
        ),
    }
    match http.preflight(&get_token, "POST").await {
        Ok(answer) if (200..300).contains(&answer.status) && answer.cors_allows() => {
            report.ok("jwt-cors", "the CORS preflight of /get_token is allowed");
        }
        Ok(answer) => report.fail(
            "jwt-cors",
            format!(
                "OPTIONS {get_token} answered {} (Access-Control-Allow-Origin: {})",
                answer.describe(),
                answer
                    .header("access-control-allow-origin")
                    .unwrap_or("none")
            ),
            "let OPTIONS through to lk-jwt-service (it answers CORS itself); do not add a second \
             Access-Control-Allow-Origin in the proxy",
        ),
        Err(e) => report.fail(
            "jwt-cors",
            e,
            "publish lk-jwt-service at livekit_service_url",
        ),
    }
}

/// The real flow: an OpenID token from the homeserver, then `/get_token` with it.
pub async fn token_flow(
    http: &Http,
    homeserver: &Url,
    service: &Url,
    session: &Session,
    token: &str,
    report: &mut Report,
) -> Option<SfuAccess> {
    let encoded =
        percent_encoding::utf8_percent_encode(&session.user_id, percent_encoding::NON_ALPHANUMERIC);
    let openid_url = join(
        homeserver,
        &format!("/_matrix/client/v3/user/{encoded}/openid/request_token"),
    );
    let openid = match http.post_json(&openid_url, &json!({}), Some(token)).await {
        Ok(answer) if answer.status == 200 => answer.json()?,
        Ok(answer) => {
            report.fail(
                "jwt-token-flow",
                format!(
                    "the homeserver refused an OpenID token: {}",
                    answer.describe()
                ),
                "the user must be able to request OpenID tokens",
            );
            return None;
        }
        Err(e) => {
            report.fail("jwt-token-flow", e, "the homeserver must be reachable");
            return None;
        }
    };
    let device = session.device_id.as_deref().unwrap_or("RTCDOCTOR");
    let body = token_body(openid, &session.user_id, device, session.server_name());
    let get_token = join(service, "/get_token");
    let answer = match http.post_json(&get_token, &body, None).await {
        Ok(answer) => answer,
        Err(e) => {
            report.fail(
                "jwt-token-flow",
                e,
                "publish lk-jwt-service at livekit_service_url",
            );
            return None;
        }
    };
    let access = answer
        .json()
        .filter(|_| answer.status == 200)
        .and_then(|v| {
            Some(SfuAccess {
                url: v["url"].as_str()?.to_owned(),
                jwt: v["jwt"].as_str()?.to_owned(),
            })
        });
    match access {
        Some(access) => {
            report.ok(
                "jwt-token-flow",
                format!(
                    "a real OpenID token gets a LiveKit token for {}",
                    access.url
                ),
            );
            Some(access)
        }
        None => {
            report.fail(
                "jwt-token-flow",
                format!(
                    "/get_token with a real OpenID token answered {}",
                    answer.describe()
                ),
                "see the jwt-* checks above when they failed too; else lk-jwt-service could not \
                 verify the token over the homeserver's federation API: see the federation check \
                 and lk-jwt-service's log (a homeserver on a private network is reached only when \
                 named in LIVEKIT_FULL_ACCESS_HOMESERVERS or LIVEKIT_PRIVATE_HOMESERVERS)",
            );
            None
        }
    }
}
