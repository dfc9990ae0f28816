//! Message boundaries on stream transports (RFC 8656 §5, §12.5): STUN messages and
//! ChannelData (padded to 4 bytes) back to back on one TCP or TLS connection.
//!
//! A frame longer than [`MAX_MESSAGE_LEN`] is refused as soon as its length field is in:
//! a STUN header can announce 20 + 65 535 bytes, but nothing that long fits the codec's
//! 16-bit offsets (or a UDP datagram), so such a stream is closed before it is buffered.

use super::codec::{HEADER_LEN, MAGIC_COOKIE, MAX_MESSAGE_LEN};

/// Why a stream cannot be framed: the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Neither STUN nor ChannelData.
    #[error("stream does not carry STUN or ChannelData")]
    NotTurn,
    /// A message announcing more than [`MAX_MESSAGE_LEN`] bytes.
    #[error("message of {0} bytes is longer than {MAX_MESSAGE_LEN}")]
    TooLong(usize),
}

/// Length of the first complete message in `buf`: `Ok(None)` when more bytes are needed.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let total = match first >> 6 {
        0b00 => {
            if buf.len() >= 8
                && u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) != MAGIC_COOKIE
            {
                return Err(FrameError::NotTurn);
            }
            if buf.len() < 4 {
                return Ok(None);
            }
            let length = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            if length % 4 != 0 {
                return Err(FrameError::NotTurn);
            }
            HEADER_LEN + length
        }
        0b01 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            let length = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            4 + ((length + 3) & !3)
        }
        _ => return Err(FrameError::NotTurn),
    };
    if total > MAX_MESSAGE_LEN {
        return Err(FrameError::TooLong(total));
    }
    Ok((buf.len() >= total).then_some(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_and_channel_data_boundaries() {
        let mut stun = vec![0x00, 0x01, 0x00, 0x04];
        stun.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        stun.extend_from_slice(&[0; 12]);
        stun.extend_from_slice(&[0x80, 0x22, 0, 0]);
        for cut in 0..stun.len() {
            assert_eq!(frame_len(&stun[..cut]), Ok(None), "partial at {cut}");
        }
        assert_eq!(frame_len(&stun), Ok(Some(24)));
        let mut two = stun.clone();
        two.extend_from_slice(&[0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0]);
        assert_eq!(frame_len(&two), Ok(Some(24)));
        assert_eq!(frame_len(&two[24..]), Ok(Some(12)), "padded to 4");
        assert_eq!(frame_len(&two[24..35]), Ok(None));
        assert_eq!(frame_len(&[0x40, 0x00, 0x00, 0x00]), Ok(Some(4)));
    }

    #[test]
    fn garbage_closes() {
        // "GE" reads as channel 0x4745 with a 0x5420-byte body: only a timeout on the
        // incomplete frame (the driver's) ends that; bytes 0x80-0xFF end it at once.
        assert_eq!(frame_len(b"GET / HTTP/1.1\r\n"), Ok(None));
        assert_eq!(frame_len(&[0xC0, 0, 0, 0]), Err(FrameError::NotTurn));
        assert_eq!(frame_len(&[0x80]), Err(FrameError::NotTurn));
        assert_eq!(
            frame_len(&[0x16, 0x03, 0x01, 0x00]),
            Ok(None),
            "needs the cookie to judge"
        );
        assert_eq!(
            frame_len(&[0x16, 0x03, 0x01, 0x00, 1, 2, 3, 4]),
            Err(FrameError::NotTurn)
        );
        let mut odd = vec![0x00, 0x01, 0x00, 0x03];
        odd.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        assert_eq!(frame_len(&odd), Err(FrameError::NotTurn));
    }

    /// 20 + 65 532 bytes would overflow the codec's 16-bit attribute offsets (an
    /// attribute past 65 535 would be read at its offset modulo 65 536): refused from
    /// the four header bytes on, before anything is buffered.
    #[test]
    fn messages_longer_than_65535_bytes_are_refused() {
        let longest_stun = 0xFFFF - 20 - 3; // a multiple of 4
        let mut stun = vec![0x00, 0x01];
        stun.extend_from_slice(&u16::try_from(longest_stun).unwrap().to_be_bytes());
        stun.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        assert_eq!(frame_len(&stun), Ok(None), "65532 bytes in all: fine");
        stun[2..4].copy_from_slice(&u16::try_from(longest_stun + 4).unwrap().to_be_bytes());
        assert_eq!(frame_len(&stun[..4]), Err(FrameError::TooLong(65_536)));
        stun[2..4].copy_from_slice(&0xFFFCu16.to_be_bytes());
        assert_eq!(frame_len(&stun), Err(FrameError::TooLong(20 + 0xFFFC)));
        assert_eq!(
            frame_len(&[0x40, 0x00, 0xFF, 0xF8]),
            Ok(None),
            "65532 bytes"
        );
        assert_eq!(
            frame_len(&[0x40, 0x00, 0xFF, 0xFC]),
            Err(FrameError::TooLong(65_536))
        );
        assert_eq!(
            frame_len(&[0x7F, 0xFF, 0xFF, 0xFF]),
            Err(FrameError::TooLong(65_540))
        );
    }
}
