//! Where long-term keys come from: TURN REST secrets, static users, or nothing; and the
//! RFC 8489 password algorithms (MD5, SHA-256) they are derived with.

use std::collections::BTreeMap;

use rtc_auth::long_term::{long_term_key, long_term_key_sha256};
use rtc_auth::rest::{RestError, RestVerifier, password, validate_username};

/// PASSWORD-ALGORITHM values (RFC 8489 §18.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordAlgorithm {
    /// 0x0001: the classic MD5(user:realm:password).
    Md5,
    /// 0x0002: SHA-256(user:realm:password).
    Sha256,
}

impl PasswordAlgorithm {
    /// Parses a PASSWORD-ALGORITHM value (algorithm, parameter length 0).
    pub fn parse(value: &[u8]) -> Option<Self> {
        match value {
            [0, 1, 0, 0] => Some(Self::Md5),
            [0, 2, 0, 0] => Some(Self::Sha256),
            _ => None,
        }
    }
}

/// The PASSWORD-ALGORITHMS this server offers, SHA-256 first (RFC 8489 §14.11); a client
/// must echo it unchanged, which exposes a downgrade by a man in the middle.
pub const OFFERED_ALGORITHMS: [u8; 8] = [0, 2, 0, 0, 0, 1, 0, 0];

/// A long-term key for one password algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongTermKey {
    /// 16 bytes (MD5).
    Md5([u8; 16]),
    /// 32 bytes (SHA-256).
    Sha256([u8; 32]),
}

impl LongTermKey {
    /// The HMAC key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Md5(key) => key,
            Self::Sha256(key) => key,
        }
    }
}

/// A static user's keys: MD5 always; SHA-256 only when the password is known (a stored
/// `0x` key is MD5 and cannot be turned into SHA-256).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserKeys {
    /// MD5(user:realm:password).
    pub md5: [u8; 16],
    /// SHA-256(user:realm:password).
    pub sha256: Option<[u8; 32]>,
}

impl UserKeys {
    /// Both keys from a plain password.
    pub fn from_password(user: &str, realm: &str, password: &str) -> Self {
        Self {
            md5: long_term_key(user, realm, password),
            sha256: Some(long_term_key_sha256(user, realm, password)),
        }
    }

    fn key(&self, algorithm: PasswordAlgorithm) -> Option<LongTermKey> {
        match algorithm {
            PasswordAlgorithm::Md5 => Some(LongTermKey::Md5(self.md5)),
            PasswordAlgorithm::Sha256 => self.sha256.map(LongTermKey::Sha256),
        }
    }
}

/// The configured credential mechanism.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// `no-auth`: every request is accepted without MESSAGE-INTEGRITY.
    None,
    /// `lt-cred-mech` with `user=` lines.
    Users(BTreeMap<String, UserKeys>),
    /// `use-auth-secret`: keys derived from the username and each shared secret.
    Rest(RestVerifier),
}

/// Why no key could be found for a username.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// Username refused outright (400).
    Malformed,
    /// Unknown user, no timestamp, or no key for the algorithm (401).
    Unknown,
    /// REST credential past its expiry (401; counted apart).
    Expired,
}

/// Candidate keys for one username: one per REST secret, or the one static key.
pub enum Keys<'a> {
    /// A single stored key.
    One(Option<LongTermKey>),
    /// Derived per secret, lazily.
    Derived(Box<dyn Iterator<Item = LongTermKey> + 'a>),
}

impl Iterator for Keys<'_> {
    type Item = LongTermKey;

    fn next(&mut self) -> Option<LongTermKey> {
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
        algorithm: PasswordAlgorithm,
    ) -> Result<(Keys<'k>, &'u str), KeyError> {
        validate_username(username).map_err(|_| KeyError::Malformed)?;
        match self {
            Self::None => Ok((Keys::One(None), username)),
            Self::Users(users) => users
                .get(username)
                .and_then(|keys| keys.key(algorithm))
                .map(|key| (Keys::One(Some(key)), username))
                .ok_or(KeyError::Unknown),
            Self::Rest(verifier) => match verifier.check_username(username, unix_now) {
                Ok(parsed) => {
                    let keys = verifier.secrets().iter().map(move |secret| {
                        let password = password(secret, username);
                        match algorithm {
                            PasswordAlgorithm::Md5 => {
                                LongTermKey::Md5(long_term_key(username, realm, &password))
                            }
                            PasswordAlgorithm::Sha256 => LongTermKey::Sha256(long_term_key_sha256(
                                username, realm, &password,
                            )),
                        }
                    });
                    Ok((Keys::Derived(Box::new(keys)), parsed.user))
                }
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
    use rtc_auth::secret::Secret;

    #[test]
    fn rest_keys_per_secret_algorithm_and_expiry() {
        let creds = Credentials::Rest(RestVerifier::new(
            vec![Secret::new("a"), Secret::new("north")],
            ':',
        ));
        let name = "1700000000:@alice:example.org";
        let (keys, user) = creds
            .keys(name, "example.org", 1_600_000_000, PasswordAlgorithm::Md5)
            .ok()
            .unwrap();
        assert_eq!(user, "@alice:example.org");
        let keys: Vec<_> = keys.collect();
        assert_eq!(keys.len(), 2);
        let password = "b7c/MWmorxmLryRFjaJYkUW5nOo=";
        assert_eq!(
            keys[1],
            LongTermKey::Md5(long_term_key(name, "example.org", password))
        );
        let (sha, _) = creds
            .keys(name, "example.org", 0, PasswordAlgorithm::Sha256)
            .ok()
            .unwrap();
        assert_eq!(
            sha.last(),
            Some(LongTermKey::Sha256(long_term_key_sha256(
                name,
                "example.org",
                password
            )))
        );
        assert!(matches!(
            creds.keys(name, "example.org", 1_700_000_001, PasswordAlgorithm::Md5),
            Err(KeyError::Expired)
        ));
        assert!(matches!(
            creds.keys("alice", "example.org", 0, PasswordAlgorithm::Md5),
            Err(KeyError::Unknown)
        ));
        assert!(matches!(
            creds.keys("1 2", "example.org", 0, PasswordAlgorithm::Md5),
            Err(KeyError::Malformed)
        ));
    }

    #[test]
    fn static_users_and_stored_md5_keys() {
        let bob = UserKeys::from_password("bob", "r", "pw");
        let carol = UserKeys {
            md5: long_term_key("carol", "r", "pw"),
            sha256: None,
        };
        let creds = Credentials::Users(BTreeMap::from([
            ("bob".to_owned(), bob),
            ("carol".to_owned(), carol),
        ]));
        let (keys, user) = creds
            .keys("bob", "r", 0, PasswordAlgorithm::Sha256)
            .ok()
            .unwrap();
        assert_eq!(
            (keys.collect::<Vec<_>>(), user),
            (
                vec![LongTermKey::Sha256(long_term_key_sha256("bob", "r", "pw"))],
                "bob"
            )
        );
        assert!(matches!(
            creds.keys("carol", "r", 0, PasswordAlgorithm::Sha256),
            Err(KeyError::Unknown)
        ));
        assert!(creds.keys("carol", "r", 0, PasswordAlgorithm::Md5).is_ok());
        assert!(matches!(
            creds.keys("eve", "r", 0, PasswordAlgorithm::Md5),
            Err(KeyError::Unknown)
        ));
        assert_eq!(
            PasswordAlgorithm::parse(&[0, 2, 0, 0]),
            Some(PasswordAlgorithm::Sha256)
        );
        assert_eq!(PasswordAlgorithm::parse(&[0, 3, 0, 0]), None);
    }
}
