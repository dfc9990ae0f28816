//! The few protobuf messages the service exchanges with LiveKit's Twirp API, encoded by
//! hand: three request fields and two response fields do not justify a code generator.
//! Field numbers are those of `livekit_room.proto` / `livekit_models.proto`.

/// `CreateRoomRequest` (only the fields upstream sets; `max_participants` = 0 is the
/// proto3 default and therefore not written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRoomRequest<'a> {
    /// Field 1: the room alias.
    pub name: &'a str,
    /// Field 2: seconds an empty room is kept.
    pub empty_timeout: u32,
    /// Field 10: seconds a room is kept after the last participant left.
    pub departure_timeout: u32,
}

impl CreateRoomRequest<'_> {
    /// The wire encoding, fields in number order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.name.len() + 16);
        put_bytes(&mut out, 1, self.name.as_bytes());
        put_varint_field(&mut out, 2, u64::from(self.empty_timeout));
        put_varint_field(&mut out, 10, u64::from(self.departure_timeout));
        out
    }
}

/// `RoomParticipantIdentity` (GetParticipant's request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomParticipantIdentity<'a> {
    /// Field 1: the room alias.
    pub room: &'a str,
    /// Field 2: the participant identity.
    pub identity: &'a str,
}

impl RoomParticipantIdentity<'_> {
    /// The wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_bytes(&mut out, 1, self.room.as_bytes());
        put_bytes(&mut out, 2, self.identity.as_bytes());
        out
    }
}

/// `ListParticipantsRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListParticipantsRequest<'a> {
    /// Field 1: the room alias.
    pub room: &'a str,
}

impl ListParticipantsRequest<'_> {
    /// The wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_bytes(&mut out, 1, self.room.as_bytes());
        out
    }
}

/// The identities in a `ListParticipantsResponse` (field 1: repeated `ParticipantInfo`,
/// whose field 2 is the identity).
pub fn decode_participant_identities(mut buf: &[u8]) -> Result<Vec<String>, DecodeError> {
    let mut identities = Vec::new();
    while !buf.is_empty() {
        let key = get_varint(&mut buf)?;
        match (key >> 3, key & 7) {
            (1, 2) => {
                let mut info = get_slice(&mut buf)?;
                let mut identity = String::new();
                while !info.is_empty() {
                    let key = get_varint(&mut info)?;
                    match (key >> 3, key & 7) {
                        (2, 2) => identity = get_string(&mut info)?,
                        (_, wire_type) => skip(&mut info, wire_type)?,
                    }
                }
                identities.push(identity);
            }
            (_, wire_type) => skip(&mut buf, wire_type)?,
        }
    }
    Ok(identities)
}

/// The parts of LiveKit's `Room` the service looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Room {
    /// Field 1.
    pub sid: String,
    /// Field 2.
    pub name: String,
    /// Field 5: Unix seconds.
    pub creation_time: i64,
}

/// A malformed protobuf message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed protobuf: {0}")]
pub struct DecodeError(&'static str);

impl Room {
    /// Decodes a `Room`, skipping fields it does not know.
    pub fn decode(mut buf: &[u8]) -> Result<Self, DecodeError> {
        let mut room = Self::default();
        while !buf.is_empty() {
            let key = get_varint(&mut buf)?;
            let (number, wire_type) = (key >> 3, key & 7);
            match (number, wire_type) {
                (1, 2) => room.sid = get_string(&mut buf)?,
                (2, 2) => room.name = get_string(&mut buf)?,
                // int64 is two's complement in a varint.
                (5, 0) => room.creation_time = get_varint(&mut buf)? as i64,
                (_, wire_type) => skip(&mut buf, wire_type)?,
            }
        }
        Ok(room)
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_varint_field(out: &mut Vec<u8>, number: u32, value: u64) {
    if value != 0 {
        put_varint(out, u64::from(number) << 3);
        put_varint(out, value);
    }
}

fn put_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    if !bytes.is_empty() {
        put_varint(out, (u64::from(number) << 3) | 2);
        put_varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
}

fn get_varint(buf: &mut &[u8]) -> Result<u64, DecodeError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first().ok_or(DecodeError("truncated varint"))?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError("varint longer than 10 bytes"))
}

fn get_slice<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], DecodeError> {
    let len = usize::try_from(get_varint(buf)?).map_err(|_| DecodeError("length too large"))?;
    if len > buf.len() {
        return Err(DecodeError("length past the end"));
    }
    let (field, rest) = buf.split_at(len);
    *buf = rest;
    Ok(field)
}

fn get_string(buf: &mut &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(get_slice(buf)?.to_vec()).map_err(|_| DecodeError("string is not UTF-8"))
}

fn skip(buf: &mut &[u8], wire_type: u64) -> Result<(), DecodeError> {
    let fixed = |buf: &mut &[u8], n: usize| {
        if buf.len() < n {
            return Err(DecodeError("truncated fixed field"));
        }
        *buf = &buf[n..];
        Ok(())
    };
    match wire_type {
        0 => get_varint(buf).map(drop),
        1 => fixed(buf, 8),
        2 => get_slice(buf).map(drop),
        5 => fixed(buf, 4),
        _ => Err(DecodeError("unsupported wire type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_room_request_bytes() {
        let req = CreateRoomRequest {
            name: "abc",
            empty_timeout: 300,
            departure_timeout: 20,
        };
        // 1:"abc", 2:300 (0xac 0x02), 10:20 (key 0x50).
        assert_eq!(
            req.encode(),
            [0x0a, 3, b'a', b'b', b'c', 0x10, 0xac, 0x02, 0x50, 20]
        );
        let long = "x".repeat(200);
        let encoded = CreateRoomRequest {
            name: &long,
            empty_timeout: 0,
            departure_timeout: 0,
        }
        .encode();
        assert_eq!(&encoded[..3], &[0x0a, 0xc8, 0x01]);
        assert_eq!(encoded.len(), 203);
    }

    #[test]
    fn participant_identity_bytes() {
        let req = RoomParticipantIdentity {
            room: "r",
            identity: "id",
        };
        assert_eq!(req.encode(), [0x0a, 1, b'r', 0x12, 2, b'i', b'd']);
    }

    #[test]
    fn room_decoding_skips_unknown_fields() {
        let mut buf = vec![0x0a, 2, b'R', b'M', 0x12, 1, b'n'];
        buf.extend([0x18, 0x05]); // field 3 varint
        buf.extend([0x28, 0xd2, 0x85, 0xd8, 0xcc, 0x04]); // 5: 1234567890
        buf.extend([0x31, 1, 2, 3, 4, 5, 6, 7, 8]); // field 6 fixed64
        buf.extend([0x3d, 1, 2, 3, 4]); // field 7 fixed32
        let room = Room::decode(&buf).unwrap();
        assert_eq!(room.sid, "RM");
        assert_eq!(room.name, "n");
        assert_eq!(room.creation_time, 1_234_567_890);
        assert_eq!(Room::decode(&[]).unwrap(), Room::default());
    }

    #[test]
    fn malformed_rooms_are_errors_not_panics() {
        for bad in [
            &[0x0a, 5, b'a'][..],
            &[0x28, 0x80],
            &[0x0a, 1, 0xff],
            &[0x0b],
            &[0x31, 1, 2],
            &[
                0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
            ],
        ] {
            assert!(Room::decode(bad).is_err(), "{bad:?}");
        }
    }
}
