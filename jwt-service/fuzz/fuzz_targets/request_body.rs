//! The token request bodies as the handlers read them: the standalone endpoints'
//! Go-style bodies through the `GoJson` extractor's decoding, then each endpoint's
//! validation (`/get_token`, `/delegate_delayed_leave`, `/sfu/get`), and the
//! application-service routes' bodies through `MatrixJson`'s, then theirs. Every `~` in
//! the input becomes an access-token-like value first, so the fuzzer places tokens
//! anywhere; no decode error may quote one (issue #14, item 14).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lk_jwt_service::extract::go_json_body::GoJson;
use lk_jwt_service::extract::json_body::MatrixJson;
use lk_jwt_service::request::appservice::{CsDelegateBody, CsTokenBody, SsTokenBody};
use lk_jwt_service::request::{GetTokenBody, SfuGetBody};

const TOKEN: &[u8] = b"syt_dG9rZW4_s3cr3tT0k3n";
const TOKEN_MARK: &str = "s3cr3tT0k3n";

/// The error text outside the one place a body's text may appear: the quoted key of an
/// unknown field (keys are names, not values).
fn unquoted(error: &str) -> &str {
    match error.strip_prefix("unknown field ") {
        Some(rest) => rest.split('"').next().unwrap_or_default(),
        None => error,
    }
}

/// A decode error must not carry the token.
fn check(error: impl ToString) {
    let error = error.to_string();
    assert!(!unquoted(&error).contains(TOKEN_MARK), "{error}");
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
    match GoJson::<GetTokenBody>::decode(&body) {
        Ok(GoJson(parsed)) => {
            let _ = parsed.clone().validate();
            let _ = parsed.validate_delegation();
        }
        Err(error) => check(error),
    }
    match GoJson::<SfuGetBody>::decode(&body) {
        Ok(GoJson(parsed)) => {
            let _ = parsed.validate();
        }
        Err(error) => check(error),
    }
    match MatrixJson::<CsTokenBody>::decode(&body) {
        Ok(MatrixJson(parsed)) => {
            let _ = parsed.validate();
        }
        Err(error) => check(error),
    }
    match MatrixJson::<SsTokenBody>::decode(&body) {
        Ok(MatrixJson(parsed)) => {
            let _ = parsed.validate();
        }
        Err(error) => check(error),
    }
    match MatrixJson::<CsDelegateBody>::decode(&body) {
        Ok(MatrixJson(parsed)) => {
            let _ = parsed.validate();
        }
        Err(error) => check(error),
    }
});
