//! LiveKit webhooks as `/sfu_webhook` reads them: the `Authorization` JWT checked against
//! the body (the input's first line is the header), then the event parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lk_jwt_service::delegation::webhook;
use rtc_auth::secret::Secret;

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&data[..0], data),
    };
    let authorization = std::str::from_utf8(header).ok().filter(|h| !h.is_empty());
    let _ = webhook::verify(authorization, body, "devkey", &Secret::new("devsecret"));
    let _ = webhook::parse(body);
});
