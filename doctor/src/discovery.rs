//! The first steps of every client: `/.well-known/matrix/client`, the homeserver's
//! `/versions`, and (with a token) who the token belongs to.

use url::Url;

use crate::http::{Http, join};
use crate::report::Report;

/// What the well-known document told.
pub struct WellKnown {
    /// `m.homeserver.base_url`, or the target itself when the document is unusable.
    pub homeserver: Url,
    /// The first livekit `livekit_service_url` of `org.matrix.msc4143.rtc_foci`.
    pub rtc_foci: Option<Url>,
}

/// The logged-in user behind `--access-token`.
pub struct Session {
    /// `@user:server`.
    pub user_id: String,
    /// The token's device, when the homeserver says.
    pub device_id: Option<String>,
}

impl Session {
    /// The server part of the user id.
    pub fn server_name(&self) -> &str {
        self.user_id
            .split_once(':')
            .map(|(_, server)| server)
            .unwrap_or_default()
    }
}

/// Fetches and checks `/.well-known/matrix/client`.
pub async fn well_known(http: &Http, base: &Url, report: &mut Report) -> WellKnown {
    let url = join(base, "/.well-known/matrix/client");
    let fallback = WellKnown {
        homeserver: base.clone(),
        rtc_foci: None,
    };
    let answer = match http.get(&url, None).await {
        Ok(answer) => answer,
        Err(e) => {
            report.fail(
                "well-known",
                format!("cannot fetch {url}: {e}"),
                "serve /.well-known/matrix/client on the server name's host (HTTPS, port 443)",
            );
            return fallback;
        }
    };
    if answer.status != 200 {
        report.fail(
            "well-known",
            format!("{url} answered {}", answer.describe()),
            "route /.well-known/matrix/ on this host to the well-known responder with a \
             higher priority than the homeserver's catch-all rule",
        );
        return fallback;
    }
    let Some(document) = answer.json().filter(|d| d.is_object()) else {
        report.fail(
            "well-known",
            format!("{url} is not a JSON object"),
            "return a JSON object with Content-Type: application/json",
        );
        return fallback;
    };
    if !answer.cors_allows() {
        report.fail(
            "well-known-cors",
            format!("{url} has no Access-Control-Allow-Origin header"),
            "add `Access-Control-Allow-Origin: *`: Element Web and Element Call cannot read it otherwise",
        );
    }
    let homeserver = document
        .pointer("/m.homeserver/base_url")
        .and_then(|v| v.as_str())
        .and_then(|v| Url::parse(v).ok());
    let homeserver = match homeserver {
        Some(url) => {
            report.ok("well-known", format!("m.homeserver is {url}"));
            url
        }
        None => {
            report.fail(
                "well-known",
                format!("{url} has no usable m.homeserver.base_url"),
                "add {\"m.homeserver\": {\"base_url\": \"https://matrix.example.org\"}}",
            );
            base.clone()
        }
    };
    let rtc_foci = document
        .get("org.matrix.msc4143.rtc_foci")
        .and_then(|v| v.as_array())
        .and_then(|foci| {
            foci.iter().find_map(|focus| {
                (focus.get("type")?.as_str()? == "livekit")
                    .then(|| focus.get("livekit_service_url")?.as_str())
                    .flatten()
                    .and_then(|url| Url::parse(url).ok())
            })
        });
    match &rtc_foci {
        Some(url) => report.ok(
            "well-known-rtc-foci",
            format!("org.matrix.msc4143.rtc_foci names {url} (read by older clients only)"),
        ),
        None => report.warn(
            "well-known-rtc-foci",
            "no org.matrix.msc4143.rtc_foci entry",
            "older clients (Element Call before August 2026) find the JWT service only there; \
             keep it beside the transports endpoint",
        ),
    }
    WellKnown {
        homeserver,
        rtc_foci,
    }
}

/// Checks `/_matrix/client/versions` on the homeserver.
pub async fn versions(http: &Http, homeserver: &Url, report: &mut Report) -> bool {
    let url = join(homeserver, "/_matrix/client/versions");
    match http.get(&url, None).await {
        Ok(answer)
            if answer.status == 200 && answer.json().is_some_and(|v| v["versions"].is_array()) =>
        {
            report.ok("homeserver", format!("{url} answers"));
            true
        }
        Ok(answer) => {
            report.fail(
                "homeserver",
                format!("{url} answered {}", answer.describe()),
                "m.homeserver.base_url must point at the homeserver's client API",
            );
            false
        }
        Err(e) => {
            report.fail(
                "homeserver",
                e,
                "m.homeserver.base_url must point at the homeserver's client API, reachable from outside",
            );
            false
        }
    }
}

/// `GET /_matrix/client/v3/account/whoami` with the token.
pub async fn whoami(
    http: &Http,
    homeserver: &Url,
    token: &str,
    report: &mut Report,
) -> Option<Session> {
    let url = join(homeserver, "/_matrix/client/v3/account/whoami");
    let answer = match http.get(&url, Some(token)).await {
        Ok(answer) => answer,
        Err(e) => {
            report.fail("access-token", e, "check that the homeserver is reachable");
            return None;
        }
    };
    let user_id = answer
        .json()
        .filter(|_| answer.status == 200)
        .and_then(|v| {
            let user = v["user_id"].as_str()?.to_owned();
            Some((user, v["device_id"].as_str().map(str::to_owned)))
        });
    match user_id {
        Some((user_id, device_id)) => {
            report.ok("access-token", format!("the token belongs to {user_id}"));
            Some(Session { user_id, device_id })
        }
        None => {
            report.fail(
                "access-token",
                format!("whoami answered {}", answer.describe()),
                "give the access token of a logged-in user of this homeserver",
            );
            None
        }
    }
}
