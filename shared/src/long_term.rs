//! The STUN long-term credential key (RFC 8489 §9.2.2).

use md5::{Digest, Md5};

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
    fn hex_keys() {
        let key = long_term_key("alice", "example.org", "pw");
        assert_eq!(parse_hex_key(&format!("0x{}", hex(&key))), Some(key));
        assert_eq!(parse_hex_key(&hex(&key).to_uppercase()), Some(key));
        assert_eq!(parse_hex_key("0x1234"), None);
        assert_eq!(parse_hex_key(&format!("0x{}", "zz".repeat(16))), None);
        assert_eq!(parse_hex_key(&"é".repeat(16)), None);
    }
}
