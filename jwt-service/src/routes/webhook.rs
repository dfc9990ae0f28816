//! `/sfu_webhook`: LiveKit's participant events for delegated jobs. Always `200` with an
//! empty body, whatever happens (upstream parity: LiveKit retries otherwise); failures
//! are logged.

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};

use crate::delegation::job::Event;
use crate::delegation::manager::Routed;
use crate::delegation::webhook;
use crate::state::AppState;

/// Largest webhook body read.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The webhook receiver.
pub async fn sfu_webhook(State(state): State<AppState>, request: Request) -> StatusCode {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Ok(body) = to_bytes(request.into_body(), MAX_BODY_BYTES).await else {
        tracing::warn!("webhook body too large; dropped");
        return StatusCode::OK;
    };
    let services = &state.0;
    if let Err(e) = webhook::verify(
        authorization.as_deref(),
        &body,
        &services.api_key,
        &services.api_secret,
    ) {
        tracing::warn!("webhook dropped: {e}");
        services.metrics.webhook("rejected");
        return StatusCode::OK;
    }
    match webhook::parse(&body) {
        Ok(Some((key, event))) => {
            if let (Some(membership), Event::Joined) = (&services.membership, event) {
                // MSC4195: a removed participant may come back with its still valid
                // token; its membership is checked again (off the webhook's answer).
                let membership = membership.clone();
                let key = key.clone();
                tokio::spawn(async move {
                    membership
                        .participant_joined(&key.room, &key.identity)
                        .await;
                });
            }
            let routed = services.delegation.notify(&key, event).await;
            tracing::debug!(?key, ?event, ?routed, "webhook event");
            services.metrics.webhook(match routed {
                Routed::Here => "routed",
                Routed::Forwarded => "forwarded",
                Routed::Nowhere => "unrouted",
            });
        }
        Ok(None) => {
            tracing::debug!("webhook event not relevant to delegation");
            services.metrics.webhook("ignored");
        }
        Err(e) => {
            tracing::warn!("webhook dropped: {e}");
            services.metrics.webhook("rejected");
        }
    }
    StatusCode::OK
}
