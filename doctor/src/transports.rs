//! `GET /_matrix/client/unstable/org.matrix.msc4143/rtc/transports`: where Element Call
//! (since August 2026) and Element X find the JWT service. matrix-js-sdk's
//! `_unstable_getRTCTransports()` takes the first entry with `type: "livekit"` and a
//! `livekit_service_url`.

use url::Url;

use crate::http::{Http, join};
use crate::report::Report;

/// The path clients call today (MSC4143).
pub const UNSTABLE_PATH: &str = "/_matrix/client/unstable/org.matrix.msc4143/rtc/transports";

const FIX_MISSING: &str = "serve the transports endpoint: Synapse: experimental_features \
msc4143_enabled plus matrix_rtc.transports; Tuwunel 1.6+: [global.well_known] livekit_url; \
Continuwuity 0.5.6+: [global.matrix_rtc] foci; any homeserver: route the path to lk-jwt-service \
with LIVEKIT_RTC_TRANSPORTS_SERVICE_URL set (docs/element-call.md)";

/// Checks the endpoint; returns the JWT service URL clients will use (from the endpoint,
/// else from `rtc_foci` when the endpoint could not be read without a token).
pub async fn check(
    http: &Http,
    homeserver: &Url,
    token: Option<&str>,
    rtc_foci: Option<&Url>,
    report: &mut Report,
) -> Option<Url> {
    let url = join(homeserver, UNSTABLE_PATH);
    let answer = match http.get(&url, token).await {
        Ok(answer) => answer,
        Err(e) => {
            report.fail("transports", e, "the homeserver must answer this path");
            return None;
        }
    };
    let missing = answer.status == 404
        || (answer.status == 400 && answer.errcode().as_deref() == Some("M_UNRECOGNIZED"));
    if missing {
        match rtc_foci {
            Some(foci) => report.fail(
                "transports-rtc-foci-only",
                format!(
                    "{url} answered {}; only the well-known's rtc_foci names the JWT service ({foci}), \
                     which Element Call and Element X no longer read: they report MISSING_MATRIX_RTC_TRANSPORT",
                    answer.describe()
                ),
                FIX_MISSING,
            ),
            None => report.fail(
                "transports-missing",
                format!(
                    "{url} answered {}: clients find no JWT service (MISSING_MATRIX_RTC_TRANSPORT)",
                    answer.describe()
                ),
                FIX_MISSING,
            ),
        }
        return None;
    }
    if !answer.cors_allows() {
        report.fail(
            "transports-cors",
            format!("{url} answered without Access-Control-Allow-Origin"),
            "answer with `Access-Control-Allow-Origin: *` (lk-jwt-service's transports route does)",
        );
    }
    if answer.status == 401 && token.is_none() {
        report.ok(
            "transports",
            format!("{url} exists (401 without a token); give an access token to read it"),
        );
        return rtc_foci.cloned();
    }
    if answer.status != 200 {
        report.fail(
            "transports",
            format!("{url} answered {}", answer.describe()),
            "the endpoint must answer 200 to logged-in users",
        );
        return None;
    }
    let document = answer.json().unwrap_or_default();
    let entries = document["rtc_transports"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let service = entries.iter().find_map(|entry| {
        (entry["type"].as_str()? == "livekit")
            .then(|| entry["livekit_service_url"].as_str())
            .flatten()
    });
    let Some(service) = service else {
        let only_url = entries
            .iter()
            .any(|e| e["type"] == "livekit" && e["url"].is_string());
        report.fail(
            "transports-empty",
            if only_url {
                format!("{url} lists a livekit entry with `url` only; clients need livekit_service_url")
            } else {
                format!("{url} answered {} with no livekit transport", answer.body.trim())
            },
            "list {\"type\": \"livekit\", \"livekit_service_url\": \"https://rtc.example.org/livekit/jwt\"} \
             (Synapse: matrix_rtc.transports; the flag alone answers {})",
        );
        return None;
    };
    let Ok(service) = Url::parse(service) else {
        report.fail(
            "transports-empty",
            format!("livekit_service_url {service:?} is not a URL"),
            "give the JWT service's public https URL",
        );
        return None;
    };
    report.ok("transports", format!("livekit_service_url is {service}"));
    if let Some(foci) = rtc_foci
        && foci.as_str().trim_end_matches('/') != service.as_str().trim_end_matches('/')
    {
        report.warn(
            "transports-foci-differ",
            format!("rtc_foci names {foci}, the transports endpoint {service}"),
            "let both name the same JWT service, or older and newer clients end up in different calls",
        );
    }
    Some(service)
}
