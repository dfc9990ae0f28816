//! Federation reachability of the server name: lk-jwt-service checks every OpenID token
//! with `GET /_matrix/federation/v1/openid/userinfo` on the user's homeserver, found the
//! way servers find each other. A homeserver with federation off or unreachable makes
//! every `/get_token` fail with 401.

use url::Url;

use crate::http::{Http, join};
use crate::report::Report;

const FIX: &str = "lk-jwt-service verifies OpenID tokens over the federation API: enable \
federation (the OpenID userinfo endpoint at least), publish port 8448 or \
/.well-known/matrix/server, or point LIVEKIT_FEDERATION_URL_OVERRIDES at the homeserver";

/// Where the federation API of `server_name` is: an explicit port or IP literal as is,
/// else `/.well-known/matrix/server`, else port 8448 (SRV records are not looked up).
async fn federation_base(http: &Http, server_name: &str) -> Result<(Url, String), String> {
    let has_port = server_name
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
    let literal = server_name.trim_start_matches('[').trim_end_matches(']');
    let is_ip = literal.parse::<std::net::IpAddr>().is_ok();
    if has_port || is_ip {
        let url = Url::parse(&format!("https://{server_name}"))
            .map_err(|e| format!("server name {server_name:?}: {e}"))?;
        return Ok((url, "the server name itself".into()));
    }
    let well_known = Url::parse(&format!("https://{server_name}/.well-known/matrix/server"))
        .map_err(|e| format!("server name {server_name:?}: {e}"))?;
    if let Ok(answer) = http.get(&well_known, None).await
        && answer.status == 200
        && let Some(delegated) = answer
            .json()
            .and_then(|v| v["m.server"].as_str().map(str::to_owned))
    {
        let with_port = if delegated
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            delegated.clone()
        } else {
            format!("{delegated}:8448")
        };
        let url = Url::parse(&format!("https://{with_port}"))
            .map_err(|e| format!("m.server {delegated:?}: {e}"))?;
        return Ok((url, format!("/.well-known/matrix/server ({delegated})")));
    }
    let url = Url::parse(&format!("https://{server_name}:8448"))
        .map_err(|e| format!("server name {server_name:?}: {e}"))?;
    Ok((
        url,
        "the default port 8448 (no /.well-known/matrix/server)".into(),
    ))
}

/// `GET /_matrix/federation/v1/version` where lk-jwt-service will look.
pub async fn check(http: &Http, server_name: &str, report: &mut Report) {
    let (base, how) = match federation_base(http, server_name).await {
        Ok(found) => found,
        Err(e) => {
            report.fail("federation", e, FIX);
            return;
        }
    };
    let url = join(&base, "/_matrix/federation/v1/version");
    match http.get(&url, None).await {
        Ok(answer)
            if answer.status == 200 && answer.json().is_some_and(|v| v["server"].is_object()) =>
        {
            report.ok("federation", format!("{url} answers (found through {how})"));
        }
        Ok(answer) => report.fail(
            "federation",
            format!("{url} (found through {how}) answered {}", answer.describe()),
            FIX,
        ),
        Err(e) => report.fail("federation", format!("{e} (found through {how})"), FIX),
    }
}
