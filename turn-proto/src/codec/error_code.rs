//! ERROR-CODE values (RFC 8489 §14.8, RFC 8656 §19, RFC 6062 §6.3, RFC 8016 §3.2).

/// A STUN error code with its standard reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u16);

macro_rules! error_codes {
    ($($name:ident = $code:literal, $reason:literal;)*) => {
        impl ErrorCode {
            $(
                #[doc = $reason]
                pub const $name: Self = Self($code);
            )*

            /// The reason phrase sent with the code.
            pub fn reason(self) -> &'static str {
                match self.0 {
                    $($code => $reason,)*
                    _ => "",
                }
            }
        }
    };
}

error_codes! {
    TRY_ALTERNATE = 300, "Try Alternate";
    BAD_REQUEST = 400, "Bad Request";
    UNAUTHORIZED = 401, "Unauthorized";
    FORBIDDEN = 403, "Forbidden";
    MOBILITY_FORBIDDEN = 405, "Mobility Forbidden";
    UNKNOWN_ATTRIBUTE = 420, "Unknown Attribute";
    ALLOCATION_MISMATCH = 437, "Allocation Mismatch";
    STALE_NONCE = 438, "Stale Nonce";
    ADDRESS_FAMILY_NOT_SUPPORTED = 440, "Address Family not Supported";
    WRONG_CREDENTIALS = 441, "Wrong Credentials";
    UNSUPPORTED_TRANSPORT_PROTOCOL = 442, "Unsupported Transport Protocol";
    PEER_ADDRESS_FAMILY_MISMATCH = 443, "Peer Address Family Mismatch";
    CONNECTION_ALREADY_EXISTS = 446, "Connection Already Exists";
    CONNECTION_TIMEOUT_OR_FAILURE = 447, "Connection Timeout or Failure";
    ALLOCATION_QUOTA_REACHED = 486, "Allocation Quota Reached";
    ROLE_CONFLICT = 487, "Role Conflict";
    SERVER_ERROR = 500, "Server Error";
    INSUFFICIENT_CAPACITY = 508, "Insufficient Capacity";
}
