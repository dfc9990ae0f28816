//! The token request bodies as the handlers read them: Go-style decoding against each
//! endpoint's schema, then its validation (`/get_token`, `/delegate_delayed_leave`,
//! `/sfu/get`). Every `~` in the input becomes an access-token-like value first, so the
//! fuzzer places tokens anywhere; no decode error may quote one (issue #14, item 14).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lk_jwt_service::go_json::{DecodeError, decode};
use lk_jwt_service::request::{GET_TOKEN, GetTokenBody, SFU_GET, SfuGetBody};

const TOKEN: &[u8] = b"syt_dG9rZW4_s3cr3tT0k3n";
const TOKEN_MARK: &str = "s3cr3tT0k3n";

/// The error text outside the one place a body's text may appear: the quoted key of an
/// unknown field (keys are names, not values).
fn unquoted(error: &DecodeError) -> String {
    let text = error.to_string();
    match text.strip_prefix("unknown field ") {
        Some(rest) => rest.split('"').next().unwrap_or_default().to_owned(),
        None => text,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut body = Vec::with_capacity(data.len());
    for &byte in data {
        if byte == b'~' {
            body.extend_from_slice(TOKEN);
        } else {
            body.push(byte);
        }
    }
    match decode::<GetTokenBody>(&body, &GET_TOKEN) {
        Ok(parsed) => {
            let _ = parsed.clone().validate();
            let _ = parsed.validate_delegation();
        }
        Err(error) => assert!(!unquoted(&error).contains(TOKEN_MARK), "{error}"),
    }
    match decode::<SfuGetBody>(&body, &SFU_GET) {
        Ok(parsed) => {
            let _ = parsed.validate();
        }
        Err(error) => assert!(!unquoted(&error).contains(TOKEN_MARK), "{error}"),
    }
});
