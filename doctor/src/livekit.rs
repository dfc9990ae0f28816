//! The LiveKit URL lk-jwt-service hands out (`LIVEKIT_URL`): a `wss://` URL with a valid
//! certificate when the page is https, reachable through the proxy, accepting the token
//! lk-jwt-service minted (`GET <url>/rtc/validate`, LiveKit's own pre-join check), and
//! upgrading `<url>/rtc` to a WebSocket through the proxy.

use base64::Engine as _;
use sha1::Digest as _;

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
        Err(e) => {
            report.fail(
                "livekit-reachable",
                e,
                "LIVEKIT_URL must be reachable from clients, with a certificate valid for its host",
            );
            return;
        }
    }
    websocket(http, &base, &access.jwt, report).await;
}

/// The `Sec-WebSocket-Accept` value for `key` (RFC 6455 §4.2.2).
fn accept_value(key: &str) -> String {
    let digest = sha1::Sha1::digest(format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11"));
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// Opens `<url>/rtc` as livekit-client does and drops it after the handshake. LiveKit
/// then sees a participant of the check's own room leave at once.
async fn websocket(http: &Http, base: &Url, jwt: &str, report: &mut Report) {
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    let mut url = join(base, "/rtc");
    url.query_pairs_mut()
        .append_pair("access_token", jwt)
        .append_pair("auto_subscribe", "0");
    match http.websocket_handshake(&url, &key).await {
        Ok(answer)
            if answer.status == 101
                && answer.header("sec-websocket-accept") == Some(accept_value(&key).as_str()) =>
        {
            report.ok(
                "livekit-websocket",
                format!("{base}rtc upgrades to a WebSocket"),
            );
        }
        Ok(answer)
            if answer.body.contains("not using the websocket protocol") || answer.status == 101 =>
        {
            report.fail(
                "livekit-websocket",
                format!(
                    "{base}rtc answered {}: the WebSocket upgrade does not get through",
                    answer.describe()
                ),
                "the reverse proxy must pass the upgrade: nginx `proxy_http_version 1.1; \
                 proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\"` \
                 (Traefik passes it by itself)",
            );
        }
        Ok(answer) => report.warn(
            "livekit-websocket",
            format!(
                "{base}rtc answered {} to the WebSocket handshake: {}",
                answer.describe(),
                answer.body.trim()
            ),
            "see LiveKit's log for the refused join",
        ),
        Err(e) => report.fail(
            "livekit-websocket",
            e,
            "LIVEKIT_URL must be reachable from clients, with a certificate valid for its host",
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc6455_accept_value() {
        // RFC 6455 §1.3's example.
        assert_eq!(
            super::accept_value("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
