//! RFC 5769 test vectors run through our parser and writer.

use super::address::decode_xor;
use super::attribute::AttrType;
use super::message::{Class, Message, Method};
use super::writer::MessageWriter;

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks_exact(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// RFC 5769 §2.1: short-term credential, password "VOkJxbRl1RmTxUk/WvJxBt".
const SAMPLE_REQUEST: &str = "
    00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
    00 24 00 04 6e 00 01 ff
    80 29 00 08 93 2f f9 b1 51 26 3b 36
    00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
    00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
    80 28 00 04 e5 7a 3b cf";

/// RFC 5769 §2.2: IPv4 response, same password, mapped address 192.0.2.1:32853.
const SAMPLE_IPV4_RESPONSE: &str = "
    01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 08 00 01 a1 47 e1 12 a6 43
    00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
    80 28 00 04 c0 7d 4c 96";

const PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";

#[test]
fn sample_request() {
    let bytes = hex(SAMPLE_REQUEST);
    let message = Message::parse(&bytes).unwrap();
    assert_eq!(
        (message.method(), message.class()),
        (Method::BINDING, Class::Request)
    );
    assert!(message.has_fingerprint());
    assert_eq!(message.attr(AttrType::USERNAME), Some(&b"evtj:h6vY"[..]));
    assert_eq!(
        message.attr(AttrType::SOFTWARE),
        Some(&b"STUN test client"[..])
    );
    assert!(message.verify_integrity(PASSWORD));
    assert!(!message.verify_integrity(b"VOkJxbRl1RmTxUk/WvJxBT"));
}

#[test]
fn sample_ipv4_response_and_rewrite() {
    let bytes = hex(SAMPLE_IPV4_RESPONSE);
    let message = Message::parse(&bytes).unwrap();
    assert_eq!(
        (message.method(), message.class()),
        (Method::BINDING, Class::Success)
    );
    assert!(message.verify_integrity(PASSWORD));
    let mapped = decode_xor(
        message.attr(AttrType::XOR_MAPPED_ADDRESS).unwrap(),
        &message.transaction(),
    )
    .unwrap();
    assert_eq!(mapped, "192.0.2.1:32853".parse().unwrap());

    // Our writer, fed the same fields, produces the same bytes except for SOFTWARE's
    // padding (spaces in the RFC, zeros here), which changes MI and FINGERPRINT too.
    let mut out = Vec::new();
    MessageWriter::new(
        &mut out,
        Method::BINDING,
        Class::Success,
        message.transaction(),
    )
    .attr(AttrType::SOFTWARE, b"test vector")
    .xor_address(AttrType::XOR_MAPPED_ADDRESS, mapped)
    .integrity(PASSWORD)
    .fingerprint();
    assert_eq!(out.len(), bytes.len());
    assert_eq!(out[..35], bytes[..35]);
    assert_eq!(out[36..48], bytes[36..48], "XOR-MAPPED-ADDRESS");
    let ours = Message::parse(&out).unwrap();
    assert!(ours.verify_integrity(PASSWORD));
    assert!(ours.has_fingerprint());
    // With the RFC's padding restored, MI and FINGERPRINT match the vector exactly.
    let mut padded = Vec::new();
    MessageWriter::new(
        &mut padded,
        Method::BINDING,
        Class::Success,
        message.transaction(),
    )
    .attr(AttrType::SOFTWARE, b"test vector ");
    padded[22..24].copy_from_slice(&[0, 11]);
    let mut writer = MessageWriter::resume(&mut padded);
    writer
        .xor_address(AttrType::XOR_MAPPED_ADDRESS, mapped)
        .integrity(PASSWORD)
        .fingerprint();
    assert_eq!(padded, bytes);
}

#[test]
fn corrupted_fingerprint_is_refused() {
    let mut bytes = hex(SAMPLE_REQUEST);
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert!(Message::parse(&bytes).is_err());
    // A changed attribute breaks both FINGERPRINT and integrity.
    let mut bytes = hex(SAMPLE_REQUEST);
    bytes[30] ^= 1;
    assert!(Message::parse(&bytes).is_err());
}
