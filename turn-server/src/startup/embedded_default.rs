//! The safe default when nothing is configured: loopback only (unless `listening-ip`
//! says otherwise), a random shared secret, and a ready-to-use credential printed once so
//! a first-time user can try the relay.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use rand::Rng;
use rand::distr::Alphanumeric;

use rtc_auth::rest::mint;
use rtc_auth::secret::Secret;

use crate::config::Config;

/// Realm of the embedded default (clients such as `turnutils_uclient` need a non-empty one).
pub const REALM: &str = "turn-server";

/// Settings of the embedded default on top of what was configured: a realm, and, when
/// it listens on loopback only, loopback peers allowed so that two local clients can
/// relay to each other. That is safe only there: its clients are local users who reach
/// loopback services directly anyway. Listening elsewhere (`listening-ip`), loopback
/// stays closed like on any server.
pub fn apply(config: &mut Config, loopback_only: bool) {
    config.realm.get_or_insert_with(|| REALM.to_owned());
    if loopback_only {
        config.allow_loopback_peers = true;
    }
}

/// How long the printed trial credential is valid.
pub const TRIAL_CREDENTIAL_LIFETIME: u64 = 24 * 3600;

/// A fresh random shared secret (32 alphanumeric characters, ~190 bits).
pub fn generate_secret() -> Secret {
    let text: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    Secret::new(text)
}

/// The banner printed at start: the secret (once, on purpose: nothing else knows it), a
/// credential and the commands that exercise the server with coturn's own client.
/// `loopback_only` says whether every listener is on loopback; the banner says so only
/// then.
pub fn banner(
    secret: &Secret,
    listen: SocketAddr,
    loopback_only: bool,
    realm: &str,
    unix_now: u64,
) -> String {
    let credential = mint(secret, "trial", unix_now + TRIAL_CREDENTIAL_LIFETIME, ':');
    let secret_text = secret.expose_str().unwrap_or_default();
    // The commands below run on this machine: a wildcard listener is reached on loopback.
    let target = if listen.ip().is_unspecified() {
        let loopback: IpAddr = if listen.is_ipv6() {
            Ipv6Addr::LOCALHOST.into()
        } else {
            Ipv4Addr::LOCALHOST.into()
        };
        SocketAddr::new(loopback, listen.port())
    } else {
        listen
    };
    let reach = if loopback_only {
        "loopback only"
    } else {
        "REACHABLE FROM THE NETWORK: anyone with a credential can relay"
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "No credentials configured: started the embedded default."
    );
    let _ = writeln!(out, "  listening on   udp {listen} ({reach})");
    let _ = writeln!(
        out,
        "  shared secret  {secret_text}   (static-auth-secret; new at every start)"
    );
    let _ = writeln!(out, "  realm          {realm:?}");
    let _ = writeln!(out, "  username       {}", credential.username);
    let _ = writeln!(out, "  password       {}", credential.password);
    let _ = writeln!(
        out,
        "Try it with coturn's test client (package coturn), client to client:"
    );
    let _ = writeln!(
        out,
        "  turnutils_uclient -y -n 10 -l 200 -W {secret_text} -u trial -p {} {}",
        target.port(),
        target.ip()
    );
    let _ = writeln!(out, "or through a UDP echo peer:");
    let _ = writeln!(out, "  turnutils_peer -L 127.0.0.1 -p 3480 &");
    let _ = writeln!(
        out,
        "  turnutils_uclient -e 127.0.0.1 -r 3480 -n 10 -l 200 -W {secret_text} -u trial -p {} {}",
        target.port(),
        target.ip()
    );
    if loopback_only {
        let _ = writeln!(
            out,
            "Loopback peers are allowed only in this loopback-only mode; configure a realm,"
        );
        let _ = writeln!(out, "static-auth-secret and listening-ip for real use.");
    } else {
        let _ = writeln!(
            out,
            "Loopback peers stay closed here (the echo peer above is refused); configure a"
        );
        let _ = writeln!(
            out,
            "realm and static-auth-secret for real use: this secret is new at every start."
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_auth::rest::RestVerifier;

    #[test]
    fn banner_credential_verifies() {
        let secret = generate_secret();
        assert_eq!(secret.len(), 32);
        assert_ne!(generate_secret(), secret, "random per start");
        let text = banner(
            &secret,
            "127.0.0.1:3478".parse().unwrap(),
            true,
            "",
            1_700_000_000,
        );
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.trim().strip_prefix(name))
                .map(|rest| rest.trim().to_owned())
                .unwrap()
        };
        let username = field("username");
        let password = field("password");
        let verifier = RestVerifier::new(vec![secret.clone()], ':');
        assert_eq!(
            verifier.verify_password(&username, &password, 1_700_000_000),
            Ok(0)
        );
        assert!(text.contains(&format!("-W {}", secret.expose_str().unwrap())));
        assert!(text.contains("-p 3478 127.0.0.1"));
        assert!(text.contains("(loopback only)"));
    }

    /// `turn-server -L 0.0.0.0` without credentials: the embedded default listens on the
    /// network, and its banner must not say otherwise (nor open loopback peers).
    #[test]
    fn banner_and_settings_off_loopback() {
        let secret = generate_secret();
        let text = banner(
            &secret,
            "0.0.0.0:3478".parse().unwrap(),
            false,
            REALM,
            1_700_000_000,
        );
        assert!(!text.contains("loopback only"), "{text}");
        assert!(text.contains("REACHABLE FROM THE NETWORK"), "{text}");
        assert!(text.contains("-p 3478 127.0.0.1"), "run locally: {text}");
        let mut config = Config::default();
        apply(&mut config, false);
        assert!(!config.allow_loopback_peers);
        assert_eq!(config.realm.as_deref(), Some(REALM));
        apply(&mut config, true);
        assert!(config.allow_loopback_peers);
    }
}
