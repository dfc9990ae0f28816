//! The application-service routes, present only in application-service mode: the
//! homeserver's ping and the MSC4195 routes it proxies (MSC4512). The handlers translate
//! between HTTP and [`crate::flows::appservice`].

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;
use crate::extract::homeserver::{FromHomeserver, MatrixOrigin, MatrixUser};
use crate::extract::json_body::MatrixJson;
use crate::flows::appservice;
use crate::request::Invalid;
use crate::request::appservice::{CsDelegateBody, CsTokenBody, SsTokenBody};
use crate::state::AppState;

/// The client-server `get_token` path (MSC4195, unstable prefix).
pub const CS_GET_TOKEN: &str = "/_matrix/client/unstable/io.element.msc4195/rtc/livekit/get_token";
/// The client-server delegation path.
pub const CS_DELEGATE: &str =
    "/_matrix/client/unstable/io.element.msc4195/rtc/livekit/delegate_delayed_leave";
/// The federation `get_token` path.
pub const SS_GET_TOKEN: &str =
    "/_matrix/federation/unstable/io.element.msc4195/rtc/livekit/get_token";
/// The application-service ping.
pub const PING: &str = "/_matrix/app/v1/ping";

/// `/_matrix/app/v1/ping`: `{}` to our homeserver.
pub async fn ping(_: FromHomeserver) -> Json<serde_json::Value> {
    Json(json!({}))
}

/// The client-server `get_token`.
pub async fn get_token_cs(
    State(state): State<AppState>,
    _: FromHomeserver,
    MatrixUser(user): MatrixUser,
    MatrixJson(body): MatrixJson<CsTokenBody>,
) -> Result<Response, ApiError> {
    let app = app(&state)?;
    let request = validated(body.validate())?;
    let jwt = appservice::get_token_cs(&state.0, app, user.as_deref(), request).await?;
    Ok(Json(json!({ "jwt": jwt })).into_response())
}

/// The federation `get_token`.
pub async fn get_token_ss(
    State(state): State<AppState>,
    _: FromHomeserver,
    MatrixOrigin(origin): MatrixOrigin,
    MatrixJson(body): MatrixJson<SsTokenBody>,
) -> Result<Response, ApiError> {
    let app = app(&state)?;
    let request = validated(body.validate())?;
    let jwt = appservice::get_token_ss(&state.0, app, origin.as_deref(), request).await?;
    Ok(Json(json!({ "jwt": jwt })).into_response())
}

/// The client-server `delegate_delayed_leave`.
pub async fn delegate_cs(
    State(state): State<AppState>,
    _: FromHomeserver,
    MatrixUser(user): MatrixUser,
    MatrixJson(body): MatrixJson<CsDelegateBody>,
) -> Result<Response, ApiError> {
    let app = app(&state)?;
    let request = validated(body.validate())?;
    appservice::delegate_cs(&state.0, app, user.as_deref(), request).await?;
    Ok(Json(json!({})).into_response())
}

fn app(state: &AppState) -> Result<&crate::appservice::AppService, ApiError> {
    // The routes are only mounted in application-service mode.
    state.0.app_service.as_ref().ok_or_else(ApiError::internal)
}

fn validated<T>(result: Result<T, Invalid>) -> Result<T, ApiError> {
    result.map_err(|e| {
        tracing::warn!("invalid request: {e}");
        ApiError::bad_json(e.0)
    })
}
