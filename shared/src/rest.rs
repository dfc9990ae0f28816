//! TURN REST API credentials (draft-uberti-behave-turn-rest-00), as coturn reads them.
//!
//! A homeserver (Synapse `turn_shared_secret`, conduwuit `turn_secret`) or LiveKit mints
//! `username = "<expiry>:<user>"` and `password = base64(HMAC-SHA1(secret, username))`;
//! the relay recomputes the password from the username, so it keeps no user table and any
//! number of relays can share one secret. Several secrets can be live at once for rotation.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::constant_time::ct_eq;
use crate::long_term::long_term_key;
use crate::secret::Secret;

/// coturn's `rest-api-separator` default.
pub const DEFAULT_SEPARATOR: char = ':';

/// coturn refuses longer usernames (`STUN_MAX_USERNAME_SIZE`).
pub const MAX_USERNAME_LEN: usize = 512;

/// Why a REST username or password was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    /// No part of the username is a Unix timestamp.
    #[error("username has no timestamp part")]
    NoTimestamp,
    /// The timestamp is in the past: the credential has expired.
    #[error("credential expired at {expiry} (now {now})")]
    Expired {
        /// The username's expiry, Unix seconds.
        expiry: u64,
        /// The clock reading it was compared with.
        now: u64,
    },
    /// The username holds bytes coturn refuses (blanks, quotes, backslash, line breaks,
    /// an SQL-injection pattern) or is too long; a STUN server answers 400.
    #[error("username is malformed")]
    Malformed,
    /// The password matches none of the configured secrets.
    #[error("password does not match any secret")]
    BadPassword,
}

/// A username split the way coturn splits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestUsername<'a> {
    /// Absolute expiry, Unix seconds.
    pub expiry: u64,
    /// The real user id (may be empty); quotas count per this id, not per username.
    pub user: &'a str,
}

/// A minted credential, ready for a client's `username`/`credential` fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestCredential {
    /// `<expiry><separator><user>`, or just `<expiry>` when the user is empty.
    pub username: String,
    /// Padded standard base64 of HMAC-SHA1(secret, username).
    pub password: String,
}

/// Splits a REST username with coturn's rules (`get_rest_api_timestamp`):
///
/// - a leading separator is skipped;
/// - no separator: the whole name is the timestamp;
/// - all digits before the first separator: that is the timestamp and the rest (which
///   may hold more separators, as Matrix ids do) is the user;
/// - otherwise the part after the first separator is the timestamp (`user:expiry`).
pub fn parse_username(username: &str, separator: char) -> Result<RestUsername<'_>, RestError> {
    let name = username.strip_prefix(separator).unwrap_or(username);
    let Some((head, tail)) = name.split_once(separator) else {
        return Ok(RestUsername {
            expiry: parse_timestamp(name)?,
            user: "",
        });
    };
    if is_all_digits(head) {
        Ok(RestUsername {
            expiry: parse_timestamp(head)?,
            user: tail,
        })
    } else {
        Ok(RestUsername {
            expiry: parse_timestamp(tail)?,
            user: head,
        })
    }
}

/// Checks the byte rules coturn applies to every username before any lookup.
pub fn validate_username(username: &str) -> Result<(), RestError> {
    if username.is_empty() || username.len() > MAX_USERNAME_LEN {
        return Err(RestError::Malformed);
    }
    if username
        .bytes()
        .any(|b| matches!(b, b' ' | b'\t' | b'"' | b'\'' | b'\\' | b'\r' | b'\n'))
    {
        return Err(RestError::Malformed);
    }
    let lower = username.to_ascii_lowercase();
    if lower.contains("union") && lower.contains("select") {
        return Err(RestError::Malformed);
    }
    Ok(())
}

/// The password for `username` under `secret`.
pub fn password(secret: &Secret, username: &str) -> String {
    STANDARD.encode(hmac_sha1(secret.expose(), username.as_bytes()))
}

/// Mints a credential valid until `expiry` (Unix seconds) for `user`.
pub fn mint(secret: &Secret, user: &str, expiry: u64, separator: char) -> RestCredential {
    let username = if user.is_empty() {
        expiry.to_string()
    } else {
        format!("{expiry}{separator}{user}")
    };
    let password = password(secret, &username);
    RestCredential { username, password }
}

/// Checks REST usernames against one or more live secrets.
///
/// Secrets are tried in order, so put the newest first when rotating.
#[derive(Debug, Clone)]
pub struct RestVerifier {
    secrets: Vec<Secret>,
    separator: char,
}

impl RestVerifier {
    /// A verifier for `secrets` with coturn's `rest-api-separator`.
    pub fn new(secrets: Vec<Secret>, separator: char) -> Self {
        Self { secrets, separator }
    }

    /// The configured secrets, in the order they are tried.
    pub fn secrets(&self) -> &[Secret] {
        &self.secrets
    }

    /// The separator between timestamp and user id.
    pub fn separator(&self) -> char {
        self.separator
    }

    /// Validates `username` and its expiry against `now` (Unix seconds, from the caller's
    /// clock). Accepted while `expiry >= now`, as coturn does (no grace period).
    pub fn check_username<'a>(
        &self,
        username: &'a str,
        now: u64,
    ) -> Result<RestUsername<'a>, RestError> {
        validate_username(username)?;
        let parsed = parse_username(username, self.separator)?;
        if parsed.expiry < now {
            return Err(RestError::Expired {
                expiry: parsed.expiry,
                now,
            });
        }
        Ok(parsed)
    }

    /// Long-term keys `MD5(username:realm:password)`, one per secret, for a STUN server
    /// to try against MESSAGE-INTEGRITY. Call [`Self::check_username`] first.
    pub fn long_term_keys<'s>(
        &'s self,
        username: &'s str,
        realm: &'s str,
    ) -> impl Iterator<Item = [u8; 16]> + 's {
        self.secrets
            .iter()
            .map(move |secret| long_term_key(username, realm, &password(secret, username)))
    }

    /// Verifies a plain username/password pair (HTTP-style use); returns the index of the
    /// secret that matched.
    pub fn verify_password(
        &self,
        username: &str,
        password_given: &str,
        now: u64,
    ) -> Result<usize, RestError> {
        self.check_username(username, now)?;
        self.secrets
            .iter()
            .position(|secret| {
                ct_eq(
                    password(secret, username).as_bytes(),
                    password_given.as_bytes(),
                )
            })
            .ok_or(RestError::BadPassword)
    }
}

fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = <Hmac<Sha1>>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn is_all_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

fn parse_timestamp(text: &str) -> Result<u64, RestError> {
    if !is_all_digits(text) {
        return Err(RestError::NoTimestamp);
    }
    text.parse().map_err(|_| RestError::NoTimestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn north() -> Secret {
        Secret::new("north")
    }

    #[test]
    fn spec_password_vectors() {
        // turn-anchors.md §2.1, secret `north`.
        let cases = [
            (
                "1700000000:@alice:example.org",
                "b7c/MWmorxmLryRFjaJYkUW5nOo=",
            ),
            ("1700000000", "CWyHi3zCeWqXBir9thl4m+iZPRY="),
            ("1700000000:alice", "Cd/49soE35ICqcJF/bCTn8Z4OyE="),
        ];
        for (username, expected) in cases {
            assert_eq!(password(&north(), username), expected, "{username}");
        }
    }

    #[test]
    fn mint_matches_vectors_and_format() {
        let cred = mint(&north(), "@alice:example.org", 1_700_000_000, ':');
        assert_eq!(cred.username, "1700000000:@alice:example.org");
        assert_eq!(cred.password, "b7c/MWmorxmLryRFjaJYkUW5nOo=");
        let bare = mint(&north(), "", 1_700_000_000, ':');
        assert_eq!(bare.username, "1700000000");
        assert_eq!(bare.password, "CWyHi3zCeWqXBir9thl4m+iZPRY=");
        let dashed = mint(&north(), "bob", 5, '-');
        assert_eq!(dashed.username, "5-bob");
    }

    #[test]
    fn long_term_key_vector_through_verifier() {
        let verifier = RestVerifier::new(vec![north()], ':');
        let keys: Vec<_> = verifier
            .long_term_keys("1700000000:@alice:example.org", "example.org")
            .collect();
        let hex: String = keys[0].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "522ccc327c40cefd31bd88342b8a56c6");
    }

    #[test]
    fn parsing_follows_coturn() {
        let p = |u| parse_username(u, ':');
        assert_eq!(
            p("1700000000:@alice:example.org"),
            Ok(RestUsername {
                expiry: 1_700_000_000,
                user: "@alice:example.org"
            })
        );
        assert_eq!(
            p("alice:1700000000"),
            Ok(RestUsername {
                expiry: 1_700_000_000,
                user: "alice"
            })
        );
        assert_eq!(
            p("1700000000"),
            Ok(RestUsername {
                expiry: 1_700_000_000,
                user: ""
            })
        );
        assert_eq!(
            p(":1700000000:bob"),
            Ok(RestUsername {
                expiry: 1_700_000_000,
                user: "bob"
            })
        );
        assert_eq!(
            p("1700000000:"),
            Ok(RestUsername {
                expiry: 1_700_000_000,
                user: ""
            })
        );
        assert_eq!(p("alice"), Err(RestError::NoTimestamp));
        assert_eq!(p("@alice:example.org"), Err(RestError::NoTimestamp));
        assert_eq!(p("99999999999999999999999:x"), Err(RestError::NoTimestamp));
        assert_eq!(
            parse_username("1700000000-@alice:example.org", '-'),
            Ok(RestUsername {
                expiry: 1_700_000_000,
                user: "@alice:example.org"
            })
        );
        // With another separator, a colon is an ordinary character.
        assert_eq!(
            parse_username("1700000000:alice", '-'),
            Err(RestError::NoTimestamp)
        );
    }

    #[test]
    fn expiry_uses_the_injected_clock() {
        let verifier = RestVerifier::new(vec![north()], ':');
        let name = "1700000000:@alice:example.org";
        assert!(verifier.check_username(name, 1_699_999_999).is_ok());
        assert!(verifier.check_username(name, 1_700_000_000).is_ok());
        assert_eq!(
            verifier.check_username(name, 1_700_000_001),
            Err(RestError::Expired {
                expiry: 1_700_000_000,
                now: 1_700_000_001
            })
        );
    }

    #[test]
    fn rotation_tries_every_secret() {
        let old = Secret::new("old-secret");
        let cred = mint(&old, "@bob:example.org", 2_000_000_000, ':');
        let verifier = RestVerifier::new(vec![Secret::new("new-secret"), old], ':');
        assert_eq!(
            verifier.verify_password(&cred.username, &cred.password, 1_900_000_000),
            Ok(1)
        );
        let only_new = RestVerifier::new(vec![Secret::new("new-secret")], ':');
        assert_eq!(
            only_new.verify_password(&cred.username, &cred.password, 1_900_000_000),
            Err(RestError::BadPassword)
        );
        assert_eq!(verifier.long_term_keys(&cred.username, "r").count(), 2);
    }

    #[test]
    fn malformed_usernames() {
        for bad in [
            "",
            "1 :a",
            "1:a\tb",
            "1:a\"",
            "1:a'",
            "1:a\\b",
            "1:a\r",
            "1:a\n",
            "1:UNION all SeLeCt",
        ] {
            assert_eq!(validate_username(bad), Err(RestError::Malformed), "{bad:?}");
        }
        assert_eq!(
            validate_username(&format!("1:{}", "a".repeat(511))),
            Err(RestError::Malformed)
        );
        assert!(validate_username(&format!("1:{}", "a".repeat(510))).is_ok());
        assert!(validate_username("1:union-only").is_ok());
        assert!(validate_username("1700000000:@alice:example.org").is_ok());
    }
}
