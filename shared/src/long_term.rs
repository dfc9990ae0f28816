//! The STUN long-term credential key (RFC 8489 §9.2.2).

use md5::{Digest, Md5};
use sha2::Sha256;

/// `MD5(username ":" realm ":" password)`: the HMAC key for MESSAGE-INTEGRITY.
///
/// coturn's `user=name:0x<hex>` lines and `turnadmin -k` store this value instead of
/// the password, which is why the realm must be known before they are read.
pub fn long_term_key(username: &str, realm: &str, password: &str) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(username.as_bytes());
    md5.update(b":");
    md5.update(realm.as_bytes());
    md5.update(b":");
    md5.update(password.as_bytes());
    md5.finalize().into()
}

/// `SHA-256(username ":" realm ":" password)`: the key when a client picks the SHA-256
/// PASSWORD-ALGORITHM (RFC 8489 §18.5).
pub fn long_term_key_sha256(username: &str, realm: &str, password: &str) -> [u8; 32] {
    let mut sha = Sha256::new();
    sha.update(username.as_bytes());
    sha.update(b":");
    sha.update(realm.as_bytes());
    sha.update(b":");
    sha.update(password.as_bytes());
    sha.finalize().into()
}

/// `SHA-256(username ":" realm)`: USERHASH (RFC 8489 §14.4), which hides the username
/// from observers.
pub fn userhash(username: &str, realm: &str) -> [u8; 32] {
    let mut sha = Sha256::new();
    sha.update(username.as_bytes());
    sha.update(b":");
    sha.update(realm.as_bytes());
    sha.finalize().into()
}

/// Parses the 32 hex digits of a stored long-term key (`0x` prefix optional).
pub fn parse_hex_key(text: &str) -> Option<[u8; 16]> {
    let hex = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut key = [0u8; 16];
    for (byte, pair) in key.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        // The slice is two ASCII bytes, checked above, so it is valid UTF-8.
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn spec_vector() {
        // turn-anchors.md §2.1: secret `north`, realm `example.org`.
        let key = long_term_key(
            "1700000000:@alice:example.org",
            "example.org",
            "b7c/MWmorxmLryRFjaJYkUW5nOo=",
        );
        assert_eq!(hex(&key), "522ccc327c40cefd31bd88342b8a56c6");
    }

    #[test]
    fn sha256_keys() {
        // RFC 8489 Appendix B.1 (after OpaqueString): user "\u{30de}\u{30c8}\u{30ea}\u{30c3}\u{30af}\u{30b9}",
        // realm "example.org": its USERHASH is printed in the RFC.
        let user = "\u{30de}\u{30c8}\u{30ea}\u{30c3}\u{30af}\u{30b9}";
        assert_eq!(
            hex(&userhash(user, "example.org")),
            "4a3cf38fef6992bda952c6780417da0f24819415569e60b205c46e41407f1704"
        );
        assert_ne!(
            long_term_key_sha256("a", "r", "p"),
            long_term_key_sha256("a", "r", "q")
        );
        assert_eq!(long_term_key_sha256("a", "r", "p").len(), 32);
    }

    #[test]
    fn hex_keys() {
        let key = long_term_key("alice", "example.org", "pw");
        assert_eq!(parse_hex_key(&format!("0x{}", hex(&key))), Some(key));
        assert_eq!(parse_hex_key(&hex(&key).to_uppercase()), Some(key));
        assert_eq!(parse_hex_key("0x1234"), None);
        assert_eq!(parse_hex_key(&format!("0x{}", "zz".repeat(16))), None);
        assert_eq!(parse_hex_key(&"é".repeat(16)), None);
    }
}
