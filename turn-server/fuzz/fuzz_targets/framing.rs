//! Stream framing (TCP/TLS clients): the frames found in a whole buffer are the frames
//! found when the same bytes arrive in fuzz-chosen chunks, none is longer than a message
//! may be, and each parses as what its first bits say.
#![no_main]

use libfuzzer_sys::fuzz_target;
use turn_proto::codec::{ChannelData, MAX_MESSAGE_LEN, Message, ParseError};
use turn_proto::framing::{FrameError, frame_len};

/// Frames at the start of `buf`, as the stream reader takes them, and how it stopped:
/// `Ok` = waiting for more bytes at that offset.
fn frames(buf: &[u8]) -> (Vec<usize>, Result<usize, FrameError>) {
    let mut found = Vec::new();
    let mut at = 0;
    loop {
        match frame_len(&buf[at..]) {
            Ok(Some(len)) => {
                assert!(len > 0 && len <= MAX_MESSAGE_LEN);
                found.push(len);
                at += len;
            }
            Ok(None) => return (found, Ok(at)),
            Err(error) => return (found, Err(error)),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let whole = frames(stream);
    // The reader's way: append a chunk, take every complete frame, keep the rest.
    let chunk = usize::from(chunk).max(1);
    let mut buffer = Vec::new();
    let mut taken = Vec::new();
    let mut outcome = Ok(0);
    let mut consumed = 0;
    for piece in stream.chunks(chunk) {
        buffer.extend_from_slice(piece);
        let (lens, end) = frames(&buffer);
        let used: usize = lens.iter().sum();
        taken.extend(lens);
        buffer.drain(..used);
        consumed += used;
        outcome = end.map(|_| consumed);
        if outcome.is_err() {
            break;
        }
    }
    assert_eq!(
        taken, whole.0,
        "frames differ when the bytes come in pieces"
    );
    assert_eq!(
        outcome, whole.1,
        "verdicts differ when the bytes come in pieces"
    );
    let mut at = 0;
    for len in whole.0 {
        let frame = &stream[at..at + len];
        at += len;
        if frame[0] >> 6 == 0b01 {
            assert!(ChannelData::parse(frame).is_some(), "a ChannelData frame");
        } else {
            assert_ne!(Message::parse(frame).err(), Some(ParseError::BadLength));
        }
    }
});
