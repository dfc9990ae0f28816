//! Every parser that sees attacker bytes before authentication: STUN messages (with
//! FINGERPRINT and both integrity checks), ChannelData, stream framing, PROXY headers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use turn_proto::codec::address::decode_xor;
use turn_proto::codec::attribute::AttrType;
use turn_proto::codec::{ChannelData, Message};
use turn_proto::framing::frame_len;
use turn_proto::proxy_header;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::parse(data) {
        let _ = message.verify_integrity(b"key");
        let _ = message.verify_integrity_sha256(b"key");
        for kind in message.attr_types().collect::<Vec<_>>() {
            for value in message.attrs(kind) {
                let _ = decode_xor(value, &message.transaction());
            }
        }
        let _ = message.attr_range(AttrType::DATA);
    }
    let _ = ChannelData::parse(data);
    if let Ok(Some(len)) = frame_len(data) {
        assert!(len <= data.len());
    }
    if let Ok(Some((_, len))) = proxy_header::parse(data) {
        assert!(len <= data.len());
    }
});
