//! Attribute types (RFC 8489 §18.3, RFC 8656 §18, RFC 6062 §6.2, RFC 8016 §3.1).

/// A STUN attribute type; unknown values are kept so they can be reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttrType(pub u16);

/// One table of every attribute the server knows: its constant, and, for a
/// comprehension-required one, that requests carrying it are understood. Adding an
/// attribute here is the one step; nothing else lists them.
macro_rules! attributes {
    ($($(#[doc = $doc:literal])* $name:ident = $code:literal;)*) => {
        impl AttrType {
            $(
                $(#[doc = $doc])*
                pub const $name: Self = Self($code);
            )*

            /// True for an attribute in the table: a comprehension-required one is
            /// understood (anything else comprehension-required gets 420).
            pub fn is_understood(self) -> bool {
                matches!(self.0, $($code)|*)
            }
        }
    };
}

attributes! {
    /// RFC 8489 §14.1.
    MAPPED_ADDRESS = 0x0001;
    /// RFC 8489 §14.3.
    USERNAME = 0x0006;
    /// RFC 8489 §14.5.
    MESSAGE_INTEGRITY = 0x0008;
    /// RFC 8489 §14.8.
    ERROR_CODE = 0x0009;
    /// RFC 8489 §14.13.
    UNKNOWN_ATTRIBUTES = 0x000A;
    /// RFC 8656 §18.1.
    CHANNEL_NUMBER = 0x000C;
    /// RFC 8656 §18.2.
    LIFETIME = 0x000D;
    /// RFC 8656 §18.3.
    XOR_PEER_ADDRESS = 0x0012;
    /// RFC 8656 §18.4.
    DATA = 0x0013;
    /// RFC 8489 §14.9.
    REALM = 0x0014;
    /// RFC 8489 §14.10.
    NONCE = 0x0015;
    /// RFC 8656 §18.5.
    XOR_RELAYED_ADDRESS = 0x0016;
    /// RFC 8656 §18.6.
    REQUESTED_ADDRESS_FAMILY = 0x0017;
    /// RFC 8656 §18.7.
    EVEN_PORT = 0x0018;
    /// RFC 8656 §18.8.
    REQUESTED_TRANSPORT = 0x0019;
    /// RFC 8656 §18.9.
    DONT_FRAGMENT = 0x001A;
    /// RFC 8489 §14.6.
    MESSAGE_INTEGRITY_SHA256 = 0x001C;
    /// RFC 8489 §14.12.
    PASSWORD_ALGORITHM = 0x001D;
    /// RFC 8489 §14.4.
    USERHASH = 0x001E;
    /// RFC 8489 §14.2.
    XOR_MAPPED_ADDRESS = 0x0020;
    /// RFC 8656 §18.10.
    RESERVATION_TOKEN = 0x0022;
    /// RFC 8445 §16.1 (ICE; sent to TURN servers by some stacks).
    PRIORITY = 0x0024;
    /// RFC 8445 §16.1.
    USE_CANDIDATE = 0x0025;
    /// RFC 5780 §7.6.
    PADDING = 0x0026;
    /// RFC 5780 §7.5.
    RESPONSE_PORT = 0x0027;
    /// RFC 6062 §6.2.1.
    CONNECTION_ID = 0x002A;
    /// RFC 8656 §18.11.
    ADDITIONAL_ADDRESS_FAMILY = 0x8000;
    /// RFC 8656 §18.12.
    ADDRESS_ERROR_CODE = 0x8001;
    /// ADDITIONAL-ADDRESS-FAMILY as draft-ietf-tram-turn-ipv6 numbered it; coturn (4.6
    /// and later) still sends and reads this value.
    ADDITIONAL_ADDRESS_FAMILY_DRAFT = 0x8032;
    /// ADDRESS-ERROR-CODE at coturn's draft value, answered to clients that used
    /// [`Self::ADDITIONAL_ADDRESS_FAMILY_DRAFT`].
    ADDRESS_ERROR_CODE_DRAFT = 0x8033;
    /// RFC 8489 §14.11.
    PASSWORD_ALGORITHMS = 0x8002;
    /// RFC 8489 §14.16.
    ALTERNATE_DOMAIN = 0x8003;
    /// RFC 8656 §18.13.
    ICMP = 0x8004;
    /// RFC 8489 §14.14.
    SOFTWARE = 0x8022;
    /// RFC 8489 §14.15.
    ALTERNATE_SERVER = 0x8023;
    /// RFC 8489 §14.7.
    FINGERPRINT = 0x8028;
    /// RFC 8445 §16.1.
    ICE_CONTROLLED = 0x8029;
    /// RFC 8445 §16.1.
    ICE_CONTROLLING = 0x802A;
    /// RFC 5780 §7.3.
    RESPONSE_ORIGIN = 0x802B;
    /// RFC 5780 §7.4.
    OTHER_ADDRESS = 0x802C;
    /// RFC 8016 §3.1.
    MOBILITY_TICKET = 0x8030;
}

impl AttrType {
    /// Comprehension-required attributes (0x0000-0x7FFF) must be understood or the request
    /// is refused with 420 (RFC 8489 §14).
    pub fn is_comprehension_required(self) -> bool {
        self.0 < 0x8000
    }
}
