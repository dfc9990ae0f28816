//! Where long-term keys come from: TURN REST secrets, static users, or nothing.

use std::collections::HashMap;

use rtc_auth::rest::{RestError, RestVerifier, validate_username};

/// The configured credential mechanism.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// `no-auth`: every request is accepted without MESSAGE-INTEGRITY.
    None,
    /// `lt-cred-mech` with `user=` lines: username → MD5(user:realm:password).
    Users(HashMap<String, [u8; 16]>),
    /// `use-auth-secret`: keys derived from the username and each shared secret.
    Rest(RestVerifier),
}

/// Why no key could be found for a username.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// Username refused outright (400).
    Malformed,
    /// Unknown user, expired REST credential or no timestamp (401).
    Unknown,
    /// REST credential past its expiry (401; counted apart).
    Expired,
}

/// Candidate keys for one username: one per REST secret, or the one static key.
pub enum Keys<'a> {
    /// A single stored key.
    One(Option<[u8; 16]>),
    /// Derived per secret, lazily.
    Derived(Box<dyn Iterator<Item = [u8; 16]> + 'a>),
}

impl Iterator for Keys<'_> {
    type Item = [u8; 16];

    fn next(&mut self) -> Option<[u8; 16]> {
        match self {
            Self::One(key) => key.take(),
            Self::Derived(keys) => keys.next(),
        }
    }
}

impl Credentials {
    /// True when requests must carry MESSAGE-INTEGRITY.
    pub fn required(&self) -> bool {
        !matches!(self, Self::None)
    }

    /// The keys to try for `username` in `realm` at wall-clock `unix_now`, and the real
    /// user id that quotas count (the REST timestamp stripped).
    pub fn keys<'k, 'u: 'k>(
        &'k self,
        username: &'u str,
        realm: &'k str,
        unix_now: u64,
    ) -> Result<(Keys<'k>, &'u str), KeyError> {
        validate_username(username).map_err(|_| KeyError::Malformed)?;
        match self {
            Self::None => Ok((Keys::One(None), username)),
            Self::Users(users) => users
                .get(username)
                .map(|key| (Keys::One(Some(*key)), username))
                .ok_or(KeyError::Unknown),
            Self::Rest(verifier) => match verifier.check_username(username, unix_now) {
                Ok(parsed) => Ok((
                    Keys::Derived(Box::new(verifier.long_term_keys(username, realm))),
                    parsed.user,
                )),
                Err(RestError::Expired { .. }) => Err(KeyError::Expired),
                Err(RestError::Malformed) => Err(KeyError::Malformed),
                Err(RestError::NoTimestamp | RestError::BadPassword) => Err(KeyError::Unknown),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_auth::long_term::long_term_key;
    use rtc_auth::secret::Secret;

    #[test]
    fn rest_keys_per_secret_and_expiry() {
        let creds = Credentials::Rest(RestVerifier::new(
            vec![Secret::new("a"), Secret::new("north")],
            ':',
        ));
        let (keys, user) = creds
            .keys(
                "1700000000:@alice:example.org",
                "example.org",
                1_600_000_000,
            )
            .ok()
            .unwrap();
        assert_eq!(user, "@alice:example.org");
        let keys: Vec<_> = keys.collect();
        assert_eq!(keys.len(), 2);
        assert_eq!(
            keys[1],
            long_term_key(
                "1700000000:@alice:example.org",
                "example.org",
                "b7c/MWmorxmLryRFjaJYkUW5nOo="
            )
        );
        assert!(matches!(
            creds.keys(
                "1700000000:@alice:example.org",
                "example.org",
                1_700_000_001
            ),
            Err(KeyError::Expired)
        ));
        assert!(matches!(
            creds.keys("alice", "example.org", 0),
            Err(KeyError::Unknown)
        ));
        assert!(matches!(
            creds.keys("1 2", "example.org", 0),
            Err(KeyError::Malformed)
        ));
    }

    #[test]
    fn static_users() {
        let key = long_term_key("bob", "r", "pw");
        let creds = Credentials::Users(HashMap::from([("bob".to_owned(), key)]));
        let (keys, user) = creds.keys("bob", "r", 0).ok().unwrap();
        assert_eq!((keys.collect::<Vec<_>>(), user), (vec![key], "bob"));
        assert!(matches!(creds.keys("eve", "r", 0), Err(KeyError::Unknown)));
    }
}
