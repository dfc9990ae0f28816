//! Message boundaries on stream transports (RFC 8656 §5, §12.5): STUN messages and
//! ChannelData (padded to 4 bytes) back to back on one TCP or TLS connection.

use super::codec::{HEADER_LEN, MAGIC_COOKIE};

/// The stream carries something that is neither STUN nor ChannelData: close it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stream does not carry STUN or ChannelData")]
pub struct NotTurn;

/// Length of the first complete message in `buf`: `Ok(None)` when more bytes are needed.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, NotTurn> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    match first >> 6 {
        0b00 => {
            if buf.len() >= 8
                && u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) != MAGIC_COOKIE
            {
                return Err(NotTurn);
            }
            if buf.len() < 4 {
                return Ok(None);
            }
            let length = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            if length % 4 != 0 {
                return Err(NotTurn);
            }
            let total = HEADER_LEN + length;
            Ok((buf.len() >= total).then_some(total))
        }
        0b01 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            let length = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            let total = 4 + ((length + 3) & !3);
            Ok((buf.len() >= total).then_some(total))
        }
        _ => Err(NotTurn),
    }
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
        assert_eq!(frame_len(&[0xC0, 0, 0, 0]), Err(NotTurn));
        assert_eq!(frame_len(&[0x80]), Err(NotTurn));
        assert_eq!(
            frame_len(&[0x16, 0x03, 0x01, 0x00]),
            Ok(None),
            "needs the cookie to judge"
        );
        assert_eq!(
            frame_len(&[0x16, 0x03, 0x01, 0x00, 1, 2, 3, 4]),
            Err(NotTurn)
        );
        let mut odd = vec![0x00, 0x01, 0x00, 0x03];
        odd.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        assert_eq!(frame_len(&odd), Err(NotTurn));
    }
}
