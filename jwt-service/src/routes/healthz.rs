//! `/healthz`: GET and HEAD answer 200 with an empty body (no CORS headers); other
//! methods 405. Probes log at debug level, not info as upstream, to keep logs readable.

use axum::http::{Method, StatusCode};

/// The liveness probe.
pub async fn healthz(method: Method) -> StatusCode {
    if method == Method::GET || method == Method::HEAD {
        tracing::debug!("health check");
        StatusCode::OK
    } else {
        StatusCode::METHOD_NOT_ALLOWED
    }
}
