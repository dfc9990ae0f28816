//! The HTTP surface (spec §1): exact paths, Go `ServeMux` behaviour for everything else.

pub mod healthz;
pub mod token;
pub mod transports;
pub mod webhook;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use crate::state::AppState;

/// The router with every route and layer.
pub fn app(state: AppState) -> Router {
    let token_routes = Router::new()
        .route("/sfu/get", any(token::sfu_get))
        .route("/get_token", any(token::get_token))
        .route(
            "/delegate_delayed_leave",
            any(token::delegate_delayed_leave),
        )
        .layer(axum::middleware::map_response(cors_headers));
    let mut router = Router::new().merge(token_routes);
    if state.0.metrics_enabled {
        router = router.route("/metrics", axum::routing::get(metrics));
    }
    // Opt-in (LIVEKIT_RTC_TRANSPORTS_SERVICE_URL): the MSC4143 transports document.
    if let Some(document) = state.0.rtc_transports.clone() {
        let handler = move |method| transports::transports(document.clone(), method);
        router = router
            .route(transports::UNSTABLE_PATH, any(handler.clone()))
            .route(transports::V1_PATH, any(handler));
    }
    router
        .route("/healthz", any(healthz::healthz))
        .route("/sfu_webhook", any(webhook::sfu_webhook))
        .fallback(not_found)
        .with_state(state)
}

/// Prometheus exposition of the service's counters.
async fn metrics(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let jobs = state.0.delegation.len().await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.0.metrics.render(jobs),
    )
        .into_response()
}

/// Upstream's headers on every token-endpoint response, whatever the method or status.
async fn cors_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "Accept, Content-Type, Content-Length, Accept-Encoding, X-CSRF-Token",
        ),
    );
    response
}

/// Go's `ServeMux`: a path that is not clean is redirected to its clean form; anything
/// else unknown is `404 page not found`.
async fn not_found(request: Request) -> Response {
    let path = request.uri().path();
    let clean = clean_path(path);
    if clean != path {
        let location = match request.uri().query() {
            Some(query) => format!("{clean}?{query}"),
            None => clean,
        };
        if let Ok(location) = HeaderValue::from_str(&location) {
            return (
                StatusCode::MOVED_PERMANENTLY,
                [(header::LOCATION, location)],
            )
                .into_response();
        }
    }
    (
        StatusCode::NOT_FOUND,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Body::from("404 page not found\n"),
    )
        .into_response()
}

/// Go's `path.Clean` as `ServeMux` applies it: rooted, no `//`, `.` or `..`
/// elements, and a trailing slash kept.
fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut clean = format!("/{}", parts.join("/"));
    if path.ends_with('/') && clean != "/" {
        clean.push('/');
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::clean_path;

    #[test]
    fn go_path_cleaning() {
        assert_eq!(clean_path("/get_token"), "/get_token");
        assert_eq!(clean_path("//get_token"), "/get_token");
        assert_eq!(clean_path("/sfu/./get"), "/sfu/get");
        assert_eq!(clean_path("/a/../get_token"), "/get_token");
        assert_eq!(clean_path("/x/"), "/x/");
        assert_eq!(clean_path("/"), "/");
        assert_eq!(clean_path("/../.."), "/");
    }
}
