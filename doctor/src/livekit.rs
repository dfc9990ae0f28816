//! The LiveKit URL lk-jwt-service hands out (`LIVEKIT_URL`): a `wss://` URL with a valid
//! certificate when the page is https, reachable through the proxy, and accepting the
//! token lk-jwt-service minted (`GET <url>/rtc/validate`, LiveKit's own pre-join check).

use url::Url;

use crate::http::{Http, join};
use crate::jwt::SfuAccess;
use crate::report::Report;

/// Checks `access.url` and the token against LiveKit.
pub async fn check(http: &Http, service: &Url, access: &SfuAccess, report: &mut Report) {
    let Ok(url) = Url::parse(&access.url) else {
        report.fail(
            "livekit-url",
            format!("LIVEKIT_URL {:?} is not a URL", access.url),
            "set LIVEKIT_URL to LiveKit's public wss:// URL",
        );
        return;
    };
    let http_scheme = match url.scheme() {
        "wss" => "https",
        "ws" => "http",
        other => {
            report.fail(
                "livekit-url",
                format!("LIVEKIT_URL {url} has scheme {other}:, not ws: or wss:"),
                "set LIVEKIT_URL to LiveKit's public wss:// URL",
            );
            return;
        }
    };
    if http_scheme == "http" && service.scheme() == "https" {
        report.fail(
            "livekit-url-insecure",
            format!("LIVEKIT_URL is {url} (ws://) behind an https JWT service"),
            "browsers refuse ws:// from an https page (mixed content): set LIVEKIT_URL to \
             wss://<public host>/<path> that the reverse proxy forwards to LiveKit",
        );
    } else {
        report.ok("livekit-url", format!("LIVEKIT_URL is {url}"));
    }
    let mut base = url.clone();
    if base.set_scheme(http_scheme).is_err() {
        return;
    }
    // livekit-client connects to `<url>/rtc`; `/rtc/validate` answers the same token
    // over plain HTTP.
    let mut validate = join(&base, "/rtc/validate");
    validate
        .query_pairs_mut()
        .append_pair("access_token", &access.jwt);
    match http.get(&validate, None).await {
        Ok(answer) if answer.status == 200 => report.ok(
            "livekit-token",
            format!("LiveKit at {base} accepts lk-jwt-service's token"),
        ),
        Ok(answer) if answer.status == 401 => report.fail(
            "livekit-token",
            format!("LiveKit at {base} refuses lk-jwt-service's token: {}", answer.body.trim()),
            "lk-jwt-service's LIVEKIT_KEY/LIVEKIT_SECRET (or key file) must be one of LiveKit's keys",
        ),
        Ok(answer) => report.fail(
            "livekit-reachable",
            format!("{base}rtc/validate answered {}: not LiveKit", answer.describe()),
            "route LIVEKIT_URL's path (with WebSocket upgrade) to LiveKit's port 7880",
        ),
        Err(e) => report.fail(
            "livekit-reachable",
            e,
            "LIVEKIT_URL must be reachable from clients, with a certificate valid for its host",
        ),
    }
}
