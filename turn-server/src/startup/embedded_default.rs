//! The safe default when nothing is configured: loopback only, a random shared secret,
//! and a ready-to-use credential printed once so a first-time user can try the relay.

use std::fmt::Write as _;
use std::net::SocketAddr;

use rand::Rng;
use rand::distr::Alphanumeric;

use rtc_auth::rest::mint;
use rtc_auth::secret::Secret;

use crate::config::Config;

/// Realm of the embedded default (clients such as `turnutils_uclient` need a non-empty one).
pub const REALM: &str = "turn-server";

/// Settings of the embedded default on top of what was configured: a realm, and
/// loopback peers allowed so that two local clients can relay to each other. That is
/// safe only because the embedded default listens on loopback: its clients are local
/// users who reach loopback services directly anyway.
pub fn apply(config: &mut Config) {
    config.realm.get_or_insert_with(|| REALM.to_owned());
    config.allow_loopback_peers = true;
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
pub fn banner(secret: &Secret, listen: SocketAddr, realm: &str, unix_now: u64) -> String {
    let credential = mint(secret, "trial", unix_now + TRIAL_CREDENTIAL_LIFETIME, ':');
    let secret_text = secret.expose_str().unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "No credentials configured: started the embedded default."
    );
    let _ = writeln!(out, "  listening on   udp {listen} (loopback only)");
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
        listen.port(),
        listen.ip()
    );
    let _ = writeln!(out, "or through a UDP echo peer:");
    let _ = writeln!(out, "  turnutils_peer -L 127.0.0.1 -p 3480 &");
    let _ = writeln!(
        out,
        "  turnutils_uclient -e 127.0.0.1 -r 3480 -n 10 -l 200 -W {secret_text} -u trial -p {} {}",
        listen.port(),
        listen.ip()
    );
    let _ = writeln!(
        out,
        "Loopback peers are allowed only in this loopback-only mode; configure a realm,"
    );
    let _ = writeln!(out, "static-auth-secret and listening-ip for real use.");
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
    }
}
