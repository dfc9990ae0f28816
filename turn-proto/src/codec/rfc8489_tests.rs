//! RFC 8489 Appendix B.1 (MESSAGE-INTEGRITY-SHA256, PASSWORD-ALGORITHM and USERHASH) run
//! through our parser and writer, with the key and USERHASH from `rtc-auth`.
//!
//! The vector is B.1 as corrected in the RFC's errata: the printed message says 0x9c
//! bytes of attributes but carries 0x88 (its HMAC was computed over that wrong header);
//! the corrected one adds PASSWORD-ALGORITHM (SHA-256), which gives 0x90. Every value
//! below was recomputed outside this code base, with Python's standard library:
//!
//! ```text
//! user, realm = "マトリックス".encode(), b"example.org"   # password after OpaqueString: TheMatrIX
//! hashlib.sha256(user + b":" + realm).hexdigest()                    # USERHASH
//! key = hashlib.sha256(user + b":" + realm + b":TheMatrIX").digest() # SHA-256 long-term key
//! hmac.new(key, header_with_length_0x90 + attributes, hashlib.sha256).hexdigest()
//! ```

use super::attribute::AttrType;
use super::message::{Class, Message, Method, TransactionId};
use super::writer::MessageWriter;
use rtc_auth::long_term::{long_term_key_sha256, userhash};

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks_exact(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

const USER: &str = "\u{30de}\u{30c8}\u{30ea}\u{30c3}\u{30af}\u{30b9}";
const REALM: &str = "example.org";
const PASSWORD: &str = "TheMatrIX";
const NONCE: &[u8] = b"obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA";

/// RFC 8489 B.1 with its erratum: a Binding request.
const SAMPLE_REQUEST: &str = "
    00 01 00 90 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
    00 1e 00 20 4a 3c f3 8f ef 69 92 bd a9 52 c6 78 04 17 da 0f
                24 81 94 15 56 9e 60 b2 05 c4 6e 41 40 7f 17 04
    00 15 00 29 6f 62 4d 61 74 4a 6f 73 32 41 41 41 43 66 2f 2f
                34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39
                46 53 54 76 79 36 34 73 41 00 00 00
    00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
    00 1d 00 04 00 02 00 00
    00 1c 00 20 b5 c7 bf 00 5b 6c 52 a2 1c 51 c5 e8 92 f8 19 24
                13 62 96 cb 92 7c 43 14 93 09 27 8c c6 51 8e 65";

#[test]
fn key_and_userhash_match_the_independent_values() {
    assert_eq!(
        long_term_key_sha256(USER, REALM, PASSWORD),
        hex("dd295a613b9058c3c23d6dc7165bda072304d989c9d0af3a8c7e184b4f9bb4a1")[..]
    );
    assert_eq!(
        userhash(USER, REALM),
        hex("4a3cf38fef6992bda952c6780417da0f24819415569e60b205c46e41407f1704")[..]
    );
}

#[test]
fn sample_request_verifies_and_is_rebuilt_byte_for_byte() {
    let bytes = hex(SAMPLE_REQUEST);
    let message = Message::parse(&bytes).unwrap();
    assert_eq!(
        (message.method(), message.class()),
        (Method::BINDING, Class::Request)
    );
    let key = long_term_key_sha256(USER, REALM, PASSWORD);
    assert!(message.has_integrity_sha256());
    assert!(message.verify_integrity_sha256(&key));
    assert!(!message.verify_integrity_sha256(&long_term_key_sha256(USER, REALM, "TheMatrix")));
    assert_eq!(
        message.attr(AttrType::USERHASH),
        Some(&userhash(USER, REALM)[..])
    );
    assert_eq!(
        message.attr(AttrType::PASSWORD_ALGORITHM),
        Some(&[0, 2, 0, 0][..]),
        "SHA-256"
    );

    let mut out = Vec::new();
    MessageWriter::new(
        &mut out,
        Method::BINDING,
        Class::Request,
        TransactionId(bytes[8..20].try_into().unwrap()),
    )
    .attr(AttrType::USERHASH, &userhash(USER, REALM))
    .attr(AttrType::NONCE, NONCE)
    .attr(AttrType::REALM, REALM.as_bytes())
    .attr(AttrType::PASSWORD_ALGORITHM, &[0, 2, 0, 0])
    .integrity_sha256(&key);
    assert_eq!(out, bytes);

    // Any covered byte changed (here the realm's first letter) breaks the integrity.
    let mut tampered = bytes.clone();
    tampered[108] ^= 1;
    let tampered = Message::parse(&tampered).unwrap();
    assert!(!tampered.verify_integrity_sha256(&key));
}
