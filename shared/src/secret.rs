//! Secrets that never print: shared TURN secrets, LiveKit API secrets, tokens.
//!
//! Operators keep secrets in files (Docker/Kubernetes secrets) or environment variables;
//! both usually end with a newline the user did not mean. The one trimming rule here,
//! spaces, `\r` and `\n` at both ends (not tabs), is lk-jwt-service's.

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Secret bytes; `Debug` and `Display` print `<redacted>`, and memory is wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

/// Why a secret could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read.
    #[error("cannot read secret file {}: {source}", path.display())]
    Read {
        /// The file named by the user.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The environment variable holds bytes that are not UTF-8.
    #[error("environment variable {0} is not valid UTF-8")]
    NotUnicode(String),
    /// Nothing is left after trimming.
    #[error("secret from {0} is empty")]
    Empty(String),
}

impl Secret {
    /// A secret taken exactly as given (config values are already trimmed by their parser).
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// A secret from user-typed text, trimmed of spaces, `\r` and `\n`.
    pub fn from_value(value: &str) -> Self {
        Self::new(trim(value))
    }

    /// A secret read from a file, trimmed; an empty result is an error.
    pub fn from_file(path: &Path) -> Result<Self, SecretError> {
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| SecretError::Read {
            path: path.to_owned(),
            source,
        })?);
        let trimmed = trim_bytes(&bytes);
        if trimmed.is_empty() {
            return Err(SecretError::Empty(path.display().to_string()));
        }
        Ok(Self::new(trimmed))
    }

    /// A secret from the environment variable `name`: `Ok(None)` when unset or empty
    /// after trimming.
    pub fn from_env(name: &str) -> Result<Option<Self>, SecretError> {
        Self::from_env_lookup(name, std::env::var(name))
    }

    fn from_env_lookup(
        name: &str,
        lookup: Result<String, std::env::VarError>,
    ) -> Result<Option<Self>, SecretError> {
        match lookup {
            Ok(value) => {
                let secret = Self::from_value(&value);
                Ok((!secret.is_empty()).then_some(secret))
            }
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(SecretError::NotUnicode(name.into())),
        }
    }

    /// The secret's bytes, for the one place that needs them (an HMAC, a signature).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as text, when it is UTF-8.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// True when the secret has no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Length in bytes (coturn caps `static-auth-secret` at 256).
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Trims spaces, `\r` and `\n` at both ends (not tabs), lk-jwt-service's rule.
pub fn trim(text: &str) -> &str {
    text.trim_matches([' ', '\r', '\n'])
}

fn trim_bytes(bytes: &[u8]) -> &[u8] {
    let blank = |b: &u8| matches!(b, b' ' | b'\r' | b'\n');
    let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{secret}"), "<redacted>");
        assert_eq!(
            format!("{:?}", vec![secret.clone()]),
            "[Secret(<redacted>)]"
        );
        assert_eq!(secret.expose(), b"hunter2");
    }

    #[test]
    fn value_trimming() {
        assert_eq!(Secret::from_value(" abc \r\n").expose(), b"abc");
        assert_eq!(Secret::from_value("\tabc\t").expose(), b"\tabc\t");
        assert_eq!(Secret::from_value("a b").expose(), b"a b");
        assert!(Secret::from_value(" \n").is_empty());
    }

    #[test]
    fn file_trimming_and_errors() {
        let dir = std::env::temp_dir().join(format!("rtc-auth-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "s3cr3t:with:colons\n").unwrap();
        assert_eq!(
            Secret::from_file(&file).unwrap().expose_str(),
            Some("s3cr3t:with:colons")
        );
        std::fs::write(&file, "\r\n  \n").unwrap();
        assert!(matches!(
            Secret::from_file(&file),
            Err(SecretError::Empty(_))
        ));
        let missing = dir.join("missing");
        let err = Secret::from_file(&missing).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn env_variables() {
        use std::env::VarError;
        let lookup = |value: Result<String, VarError>| Secret::from_env_lookup("X", value);
        assert!(lookup(Err(VarError::NotPresent)).unwrap().is_none());
        assert_eq!(
            lookup(Ok(" from-env\n".into())).unwrap().unwrap().expose(),
            b"from-env"
        );
        assert!(lookup(Ok("  ".into())).unwrap().is_none());
        let bad = lookup(Err(VarError::NotUnicode("\u{fffd}".into()))).unwrap_err();
        assert_eq!(bad.to_string(), "environment variable X is not valid UTF-8");
        assert!(
            Secret::from_env("RTC_AUTH_SURELY_UNSET_VARIABLE")
                .unwrap()
                .is_none()
        );
    }
}
