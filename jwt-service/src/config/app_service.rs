//! Application-service mode (upstream v0.7): `LIVEKIT_AS_TOKEN` + `LIVEKIT_HS_TOKEN`
//! (or `LIVEKIT_AS_REGISTRATION_FILE`, which wins) + `LIVEKIT_HS_SERVER_NAME`: all or
//! none. With them the homeserver proxies the MSC4195 client-server and federation
//! routes to this service (MSC4512) and answers its membership questions (MSC4502).

use std::time::Duration;

use rtc_auth::secret::{Secret, trim};
use serde::Deserialize;

use super::ConfigError;
use crate::openid::server_name::ServerName;

/// What application-service mode needs.
#[derive(Debug, Clone)]
pub struct AppServiceConfig {
    /// The token this service presents to the homeserver.
    pub as_token: Secret,
    /// The token the homeserver presents to this service.
    pub hs_token: Secret,
    /// `LIVEKIT_HS_SERVER_NAME`: the homeserver whose client-server API is asked (found
    /// from this name, never from a request).
    pub server_name: String,
    /// `LIVEKIT_REQUIRE_MEMBERSHIP`: the standalone token endpoints also ask the
    /// homeserver whether the verified user is joined to the room.
    pub require_membership: bool,
    /// `LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS`: how often participants are
    /// reconciled with room membership (kick on leave); `None` is off.
    pub membership_check_interval: Option<Duration>,
}

/// The `as_token`/`hs_token` of a registration file; its other keys are the
/// homeserver's business.
#[derive(Deserialize)]
struct Registration {
    as_token: Option<String>,
    hs_token: Option<String>,
}

const MODE_VARIABLES: [&str; 4] = [
    "LIVEKIT_AS_TOKEN",
    "LIVEKIT_HS_TOKEN",
    "LIVEKIT_AS_REGISTRATION_FILE",
    "LIVEKIT_HS_SERVER_NAME",
];

/// The application-service settings, `None` when none of them is set.
pub(super) fn app_service(
    var: &impl Fn(&str) -> Option<String>,
) -> Result<Option<AppServiceConfig>, ConfigError> {
    let set: Vec<&str> = MODE_VARIABLES
        .into_iter()
        .filter(|name| var(name).is_some())
        .collect();
    let dependent = [
        "LIVEKIT_REQUIRE_MEMBERSHIP",
        "LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS",
    ];
    if set.is_empty() {
        if let Some(name) = dependent.into_iter().find(|name| var(name).is_some()) {
            return Err(ConfigError(format!(
                "{name} needs application-service mode (LIVEKIT_AS_TOKEN + LIVEKIT_HS_TOKEN \
                 or LIVEKIT_AS_REGISTRATION_FILE, and LIVEKIT_HS_SERVER_NAME)"
            )));
        }
        return Ok(None);
    }
    let (as_token, hs_token) = match var("LIVEKIT_AS_REGISTRATION_FILE") {
        Some(path) => registration_tokens(&path)?,
        None => (
            var("LIVEKIT_AS_TOKEN").map(|v| Secret::from_value(&v)),
            var("LIVEKIT_HS_TOKEN").map(|v| Secret::from_value(&v)),
        ),
    };
    let server_name = var("LIVEKIT_HS_SERVER_NAME").map(|v| trim(&v).to_owned());
    let mut missing = Vec::new();
    if as_token.as_ref().is_none_or(Secret::is_empty) {
        missing.push("LIVEKIT_AS_TOKEN (or LIVEKIT_AS_REGISTRATION_FILE)");
    }
    if hs_token.as_ref().is_none_or(Secret::is_empty) {
        missing.push("LIVEKIT_HS_TOKEN (or LIVEKIT_AS_REGISTRATION_FILE)");
    }
    if server_name.as_deref().is_none_or(str::is_empty) {
        missing.push("LIVEKIT_HS_SERVER_NAME");
    }
    let (Some(as_token), Some(hs_token), Some(server_name)) = (as_token, hs_token, server_name)
    else {
        return Err(incomplete(&set, &missing));
    };
    if !missing.is_empty() {
        return Err(incomplete(&set, &missing));
    }
    ServerName::parse(&server_name)
        .map_err(|e| ConfigError(format!("LIVEKIT_HS_SERVER_NAME: {e}")))?;
    let require_membership = super::flag(var, "LIVEKIT_REQUIRE_MEMBERSHIP")?;
    let membership_check_interval = match var("LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS") {
        None => None,
        Some(v) => match trim(&v).parse::<u64>() {
            Ok(0) => None,
            Ok(seconds) => Some(Duration::from_secs(seconds)),
            Err(_) => {
                return Err(ConfigError(format!(
                    "LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS must be a non-negative \
                     integer, got {v:?}"
                )));
            }
        },
    };
    Ok(Some(AppServiceConfig {
        as_token,
        hs_token,
        server_name,
        require_membership,
        membership_check_interval,
    }))
}

fn incomplete(set: &[&str], missing: &[&str]) -> ConfigError {
    ConfigError(format!(
        "application-service mode is half configured: {} set, but {} missing",
        set.join(", "),
        missing.join(" and ")
    ))
}

/// The two tokens of a registration file.
fn registration_tokens(path: &str) -> Result<(Option<Secret>, Option<Secret>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(format!(
            "LIVEKIT_AS_REGISTRATION_FILE: cannot read {path}: {e}"
        ))
    })?;
    let registration: Registration = serde_yaml_ng::from_str(&text).map_err(|e| {
        ConfigError(format!(
            "LIVEKIT_AS_REGISTRATION_FILE {path}: not a registration file: {e}"
        ))
    })?;
    let token = |value: Option<String>, key: &str| match value.filter(|v| !trim(v).is_empty()) {
        Some(value) => Ok(Some(Secret::from_value(&value))),
        None => Err(ConfigError(format!(
            "LIVEKIT_AS_REGISTRATION_FILE {path}: no {key}"
        ))),
    };
    Ok((
        token(registration.as_token, "as_token")?,
        token(registration.hs_token, "hs_token")?,
    ))
}
