//! Authentication: long-term credentials and `user=` accounts, TURN REST API shared
//! secrets, the realm.

use rtc_auth::secret::Secret;

use crate::config::model::{MAX_REALM_CHARS, MAX_SECRET_BYTES, UserKey};
use crate::config::values;

use super::Arg::{Flag, Required};
use super::Setter::{Bool, Custom, Text};
use super::{Pass, Spec, Target, row};

/// Credential mechanisms, accounts, secrets and the realm.
pub(super) const AUTH: &[Spec] = &[
    row(
        "lt-cred-mech",
        Some('a'),
        Flag,
        "long-term credentials",
        Bool(|c| &mut c.lt_cred_mech),
    ),
    row(
        "no-auth",
        Some('z'),
        Flag,
        "no authentication at all",
        Bool(|c| &mut c.no_auth),
    ),
    row(
        "user",
        Some('u'),
        Required,
        "static user name:password or name:0x<key> (repeatable)",
        Custom(user),
    )
    .in_pass(Pass::User),
    row(
        "use-auth-secret",
        None,
        Flag,
        "TURN REST API shared-secret credentials",
        Bool(|c| &mut c.use_auth_secret),
    ),
    row(
        "static-auth-secret",
        None,
        Required,
        "TURN REST API secret (repeatable, for rotation)",
        Custom(static_auth_secret),
    ),
    row(
        "rest-api-separator",
        Some('C'),
        Required,
        "separator of expiry and user id in REST user names (:)",
        Custom(rest_api_separator),
    ),
    row("realm", Some('r'), Required, "default realm", Custom(realm)),
    row(
        "server-name",
        None,
        Required,
        "server name (oAuth; default: realm)",
        Text(|c| &mut c.server_name),
    ),
];

/// `user=`: a `0x` key without a realm gets a warning (it only works for its realm).
fn user(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    let user = values::user(value)?;
    if matches!(user.key, UserKey::Key(_)) && t.config.realm.is_none() {
        t.warn(format!(
            "user {} has a 0x key, which only works for the realm it was computed with, \
             but no realm is set",
            user.name
        ));
    }
    t.config.users.push(user);
    Ok(())
}

/// `static-auth-secret`: one more secret (rotation), and shared-secret credentials on.
fn static_auth_secret(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    if value.len() > MAX_SECRET_BYTES {
        return Err(format!(
            "secret is {} bytes long; at most {MAX_SECRET_BYTES} are allowed",
            value.len()
        ));
    }
    t.config.static_auth_secrets.push(Secret::new(value));
    t.config.use_auth_secret = true;
    Ok(())
}

/// `rest-api-separator`: its first character, with a warning if there are more.
fn rest_api_separator(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    let mut chars = value.chars();
    // `apply` rejects empty values for options that need one.
    let first = chars.next().ok_or("needs a value")?;
    if chars.next().is_some() {
        t.warn(format!(
            "only the first character {first:?} is used as the separator"
        ));
    }
    t.config.rest_api_separator = first;
    Ok(())
}

/// `realm`: no longer than STUN allows.
fn realm(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    if value.chars().count() > MAX_REALM_CHARS {
        return Err(format!("realm is longer than {MAX_REALM_CHARS} characters"));
    }
    t.config.realm = Some(value.to_owned());
    Ok(())
}
