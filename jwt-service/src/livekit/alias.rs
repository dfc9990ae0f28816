//! LiveKit room aliases and participant identities derived from Matrix ids (spec §4.2).
//!
//! `H(list)` is unpadded standard base64 of SHA-256 over the list serialised as a compact
//! JSON array *the way Go's `encoding/json` writes it*. Go escapes `<`, `>`, `&`, U+2028
//! and U+2029, which `serde_json` does not, so the serialisation is done here by hand:
//! an id containing `&` must hash to the same room as with the Go service, or users of
//! both would end up in different rooms.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use sha2::{Digest, Sha256};

use crate::go_json;

/// The slot the legacy endpoint uses, so legacy and MSC4195 clients share a room.
pub const LEGACY_SLOT: &str = "m.call#ROOM";

/// `H([room_id, slot_id])`: the LiveKit room for a Matrix room and slot.
pub fn room_alias(room_id: &str, slot_id: &str) -> String {
    hash_strings(&[room_id, slot_id])
}

/// `H([user_id, device_id, member_id])`: the LiveKit identity of an MSC4195 member.
pub fn member_identity(user_id: &str, device_id: &str, member_id: &str) -> String {
    hash_strings(&[user_id, device_id, member_id])
}

/// The legacy endpoint's plain identity: `<user_id>:<device_id>` (trailing colon when
/// the device is empty).
pub fn legacy_identity(user_id: &str, device_id: &str) -> String {
    format!("{user_id}:{device_id}")
}

/// `H(list)`: base64 (standard, unpadded) of SHA-256 of Go's JSON for `list`.
pub fn hash_strings(list: &[&str]) -> String {
    STANDARD_NO_PAD.encode(Sha256::digest(go_json::string_array(list)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vectors() {
        assert_eq!(
            room_alias("!roomid:example.com", "slot1234"),
            "O8437W3+jmzMVjoIP3tNwbm+XxHQk2iKpOA7aqw3qSc"
        );
        assert_eq!(
            member_identity("@alice:example.com", "DEVICE123", "memberABC"),
            "J+T45tGruxc+HrUOqJJlyQSV33m728Cme4+vt8/SWrU"
        );
        assert_eq!(
            room_alias("!room:example.com", "m.call#"),
            "hrQ0l3fv1RI0sCBUn3Nu59Bu/b3f7hWXbMLLfFMLNOY"
        );
        assert_eq!(
            room_alias("!room:example.com", LEGACY_SLOT),
            "krj2dgxw2K6EOm9he4GfQJ6JsSVWfJ8a7BkyjZcSmxs"
        );
    }

    #[test]
    fn hash_follows_go_escaping_not_serde() {
        let serde_form = serde_json::to_string(&["a&b"]).unwrap();
        assert_eq!(serde_form, r#"["a&b"]"#);
        let digest = STANDARD_NO_PAD.encode(Sha256::digest(r#"["a\u0026b"]"#));
        assert_eq!(hash_strings(&["a&b"]), digest);
    }

    #[test]
    fn legacy() {
        assert_eq!(legacy_identity("@a:b.c", "DEV"), "@a:b.c:DEV");
        assert_eq!(legacy_identity("@a:b.c", ""), "@a:b.c:");
    }
}
