//! ChannelData messages (RFC 8656 §12.4): the 4-byte-header fast path for media.

/// Channel numbers a client may bind. RFC 8656 §12 narrowed the range to 0x4000-0x4FFF,
/// but RFC 5766 clients still in use (coturn 4.6's own `turnutils_uclient`, libre/baresip)
/// pick numbers up to 0x7FFF, and refusing them breaks their calls; every number in the
/// RFC 5766 range is still unambiguous ChannelData (leading bits 01).
pub const CHANNEL_RANGE: std::ops::RangeInclusive<u16> = 0x4000..=0x7FFF;

/// A parsed ChannelData message borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelData<'a> {
    /// The channel number.
    pub channel: u16,
    /// The application data, without padding.
    pub data: &'a [u8],
}

impl<'a> ChannelData<'a> {
    /// True when the first two bits say ChannelData (0b01).
    pub fn is_channel_data(bytes: &[u8]) -> bool {
        bytes.first().is_some_and(|b| b & 0xC0 == 0x40)
    }

    /// Parses one ChannelData message at the start of `bytes`. Over UDP the datagram may
    /// carry padding after the data; a datagram shorter than the length field is refused.
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        if bytes.len() < 4 || !Self::is_channel_data(bytes) {
            return None;
        }
        let channel = u16::from_be_bytes([bytes[0], bytes[1]]);
        let len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        let data = bytes.get(4..4 + len)?;
        Some(Self { channel, data })
    }

    /// Bytes the message occupies on a stream transport, where it is padded to 4 (§12.5).
    pub fn stream_len(data_len: usize) -> usize {
        4 + ((data_len + 3) & !3)
    }

    /// The 4-byte header for `len` bytes of data on `channel`, to frame data in place;
    /// None when `len` does not fit the 16-bit length field.
    pub fn header(channel: u16, len: usize) -> Option<[u8; 4]> {
        let [c0, c1] = channel.to_be_bytes();
        let [l0, l1] = u16::try_from(len).ok()?.to_be_bytes();
        Some([c0, c1, l0, l1])
    }

    /// Writes header and `data` into `out` (cleared first); `pad` adds the stream padding.
    /// False, with `out` empty, when the message would be longer than
    /// [`super::MAX_MESSAGE_LEN`] (the length field is 16 bits; nothing is truncated).
    pub fn write(channel: u16, data: &[u8], pad: bool, out: &mut Vec<u8>) -> bool {
        out.clear();
        let total = if pad {
            Self::stream_len(data.len())
        } else {
            4 + data.len()
        };
        let Ok(len) = u16::try_from(data.len()) else {
            return false;
        };
        if total > super::MAX_MESSAGE_LEN {
            return false;
        }
        out.extend_from_slice(&channel.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(data);
        out.resize(total, 0);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_write() {
        let mut out = Vec::new();
        assert!(ChannelData::write(0x4001, b"hello", false, &mut out));
        assert_eq!(out, [0x40, 0x01, 0, 5, b'h', b'e', b'l', b'l', b'o']);
        let parsed = ChannelData::parse(&out).unwrap();
        assert_eq!((parsed.channel, parsed.data), (0x4001, &b"hello"[..]));
        assert!(ChannelData::write(0x4001, b"hello", true, &mut out));
        assert_eq!(out.len(), 12);
        assert_eq!(ChannelData::parse(&out).unwrap().data, b"hello");
        assert_eq!(ChannelData::parse(&[0x40, 1, 0, 5, 1, 2]), None);
        assert_eq!(ChannelData::parse(&[0x40, 1, 0]), None);
        assert_eq!(ChannelData::parse(&[0x00, 1, 0, 0]), None);
        assert_eq!(ChannelData::parse(&[0x40, 1, 0, 0]).unwrap().data, b"");
        assert_eq!(ChannelData::header(0x4001, 5), Some([0x40, 0x01, 0, 5]));
        assert_eq!(ChannelData::header(0x4001, 65_536), None);
    }

    #[test]
    fn nothing_longer_than_a_message_is_written() {
        let mut out = vec![1];
        let most = vec![7u8; super::super::MAX_MESSAGE_LEN - 4];
        assert!(ChannelData::write(0x4001, &most, false, &mut out));
        assert_eq!(ChannelData::parse(&out).unwrap().data.len(), most.len());
        assert!(
            !ChannelData::write(0x4001, &most, true, &mut out),
            "padding"
        );
        assert!(out.is_empty());
        assert!(!ChannelData::write(0x4001, &[0; 65_536], false, &mut out));
    }
}
