//! The HTTP surface (spec §1): exact paths, Go `ServeMux` behaviour for everything else.

pub mod appservice;
pub mod healthz;
pub mod token;
pub mod transports;
pub mod webhook;

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, post};
use tracing::Instrument as _;

use crate::error::ApiError;
use crate::extract::client_addr::ClientAddr;
use crate::state::AppState;

/// The endpoints counted in `lk_jwt_requests_total` and named in request spans.
const COUNTED: &[&str] = &[
    "/get_token",
    "/sfu/get",
    "/delegate_delayed_leave",
    appservice::CS_GET_TOKEN,
    appservice::CS_DELEGATE,
    appservice::SS_GET_TOKEN,
];

/// The router with every route and layer.
pub fn app(state: AppState) -> Router {
    let token_routes = Router::new()
        .route("/sfu/get", post_only(token::sfu_get))
        .route("/get_token", post_only(token::get_token))
        .route(
            "/delegate_delayed_leave",
            post_only(token::delegate_delayed_leave),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            token_gate,
        ))
        .layer(axum::middleware::map_response(cors_headers));
    let mut router = Router::new().merge(token_routes);
    if state.0.app_service.is_some() {
        // Upstream sends its CORS headers on the client-server routes, not on the
        // federation route or the ping.
        let client_server = Router::new()
            .route(
                appservice::CS_GET_TOKEN,
                post_only(appservice::get_token_cs),
            )
            .route(appservice::CS_DELEGATE, post_only(appservice::delegate_cs))
            .layer(axum::middleware::map_response(cors_headers));
        let federation = Router::new()
            .route(
                appservice::SS_GET_TOKEN,
                post_only(appservice::get_token_ss),
            )
            .route(appservice::PING, any(appservice::ping));
        router = router.merge(client_server.merge(federation).route_layer(
            axum::middleware::from_fn_with_state(state.clone(), token_gate),
        ));
    }
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

/// Upstream's method handling of the token endpoints: POST runs `handler`, OPTIONS is
/// an empty 200 (the CORS preflight), anything else an empty 405.
fn post_only<H, T>(handler: H) -> MethodRouter<AppState>
where
    H: Handler<T, AppState>,
    T: 'static,
{
    post(handler)
        .options(|| async { StatusCode::OK })
        .fallback(|| async { StatusCode::METHOD_NOT_ALLOWED })
}

/// Around every token endpoint: the request span (upstream logs each request's origin
/// and client address; as span fields they prefix the one line a request logs), the
/// per-client rate limit on POSTs, and the request counter.
async fn token_gate(
    State(state): State<AppState>,
    client: ClientAddr,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let endpoint = COUNTED
        .iter()
        .copied()
        .find(|p| *p == path)
        .unwrap_or("other");
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .unwrap_or("");
    // The span writes its fields out when created, so `origin` need not outlive it.
    let span = tracing::info_span!("request", endpoint, client = ?client.0, origin);
    let response = async {
        if request.method() == Method::POST
            && let (Some(limiter), Some(ip)) = (&state.0.rate_limit, client.0)
            && !limiter.allow(ip, Instant::now())
        {
            tracing::warn!("rate limit exceeded");
            return ApiError::rate_limited().into_response();
        }
        next.run(request).await
    }
    .instrument(span)
    .await;
    state
        .0
        .metrics
        .request(endpoint, response.status().as_u16());
    response
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
