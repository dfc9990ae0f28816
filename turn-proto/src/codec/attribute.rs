//! Attribute types (RFC 8489 §18.3, RFC 8656 §18, RFC 6062 §6.2, RFC 8016 §3.1).

/// A STUN attribute type; unknown values are kept so they can be reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttrType(pub u16);

impl AttrType {
    /// RFC 8489 §14.1.
    pub const MAPPED_ADDRESS: Self = Self(0x0001);
    /// RFC 8489 §14.3.
    pub const USERNAME: Self = Self(0x0006);
    /// RFC 8489 §14.5.
    pub const MESSAGE_INTEGRITY: Self = Self(0x0008);
    /// RFC 8489 §14.8.
    pub const ERROR_CODE: Self = Self(0x0009);
    /// RFC 8489 §14.13.
    pub const UNKNOWN_ATTRIBUTES: Self = Self(0x000A);
    /// RFC 8656 §18.1.
    pub const CHANNEL_NUMBER: Self = Self(0x000C);
    /// RFC 8656 §18.2.
    pub const LIFETIME: Self = Self(0x000D);
    /// RFC 8656 §18.3.
    pub const XOR_PEER_ADDRESS: Self = Self(0x0012);
    /// RFC 8656 §18.4.
    pub const DATA: Self = Self(0x0013);
    /// RFC 8489 §14.9.
    pub const REALM: Self = Self(0x0014);
    /// RFC 8489 §14.10.
    pub const NONCE: Self = Self(0x0015);
    /// RFC 8656 §18.5.
    pub const XOR_RELAYED_ADDRESS: Self = Self(0x0016);
    /// RFC 8656 §18.6.
    pub const REQUESTED_ADDRESS_FAMILY: Self = Self(0x0017);
    /// RFC 8656 §18.7.
    pub const EVEN_PORT: Self = Self(0x0018);
    /// RFC 8656 §18.8.
    pub const REQUESTED_TRANSPORT: Self = Self(0x0019);
    /// RFC 8656 §18.9.
    pub const DONT_FRAGMENT: Self = Self(0x001A);
    /// RFC 8489 §14.6.
    pub const MESSAGE_INTEGRITY_SHA256: Self = Self(0x001C);
    /// RFC 8489 §14.12.
    pub const PASSWORD_ALGORITHM: Self = Self(0x001D);
    /// RFC 8489 §14.4.
    pub const USERHASH: Self = Self(0x001E);
    /// RFC 8489 §14.2.
    pub const XOR_MAPPED_ADDRESS: Self = Self(0x0020);
    /// RFC 8656 §18.10.
    pub const RESERVATION_TOKEN: Self = Self(0x0022);
    /// RFC 8445 §16.1 (ICE; sent to TURN servers by some stacks).
    pub const PRIORITY: Self = Self(0x0024);
    /// RFC 8445 §16.1.
    pub const USE_CANDIDATE: Self = Self(0x0025);
    /// RFC 5780 §7.6.
    pub const PADDING: Self = Self(0x0026);
    /// RFC 5780 §7.5.
    pub const RESPONSE_PORT: Self = Self(0x0027);
    /// RFC 6062 §6.2.1.
    pub const CONNECTION_ID: Self = Self(0x002A);
    /// RFC 8656 §18.11.
    pub const ADDITIONAL_ADDRESS_FAMILY: Self = Self(0x8000);
    /// RFC 8656 §18.12.
    pub const ADDRESS_ERROR_CODE: Self = Self(0x8001);
    /// ADDITIONAL-ADDRESS-FAMILY as draft-ietf-tram-turn-ipv6 numbered it; coturn (4.6
    /// and later) still sends and reads this value.
    pub const ADDITIONAL_ADDRESS_FAMILY_DRAFT: Self = Self(0x8032);
    /// ADDRESS-ERROR-CODE at coturn's draft value, answered to clients that used
    /// [`Self::ADDITIONAL_ADDRESS_FAMILY_DRAFT`].
    pub const ADDRESS_ERROR_CODE_DRAFT: Self = Self(0x8033);
    /// RFC 8489 §14.11.
    pub const PASSWORD_ALGORITHMS: Self = Self(0x8002);
    /// RFC 8489 §14.16.
    pub const ALTERNATE_DOMAIN: Self = Self(0x8003);
    /// RFC 8656 §18.13.
    pub const ICMP: Self = Self(0x8004);
    /// RFC 8489 §14.14.
    pub const SOFTWARE: Self = Self(0x8022);
    /// RFC 8489 §14.15.
    pub const ALTERNATE_SERVER: Self = Self(0x8023);
    /// RFC 8489 §14.7.
    pub const FINGERPRINT: Self = Self(0x8028);
    /// RFC 8445 §16.1.
    pub const ICE_CONTROLLED: Self = Self(0x8029);
    /// RFC 8445 §16.1.
    pub const ICE_CONTROLLING: Self = Self(0x802A);
    /// RFC 5780 §7.3.
    pub const RESPONSE_ORIGIN: Self = Self(0x802B);
    /// RFC 5780 §7.4.
    pub const OTHER_ADDRESS: Self = Self(0x802C);
    /// RFC 8016 §3.1.
    pub const MOBILITY_TICKET: Self = Self(0x8030);

    /// Comprehension-required attributes (0x0000-0x7FFF) must be understood or the request
    /// is refused with 420 (RFC 8489 §14).
    pub fn is_comprehension_required(self) -> bool {
        self.0 < 0x8000
    }

    /// Comprehension-required attributes this server understands in a request.
    pub fn is_understood(self) -> bool {
        matches!(
            self,
            Self::MAPPED_ADDRESS
                | Self::USERNAME
                | Self::MESSAGE_INTEGRITY
                | Self::ERROR_CODE
                | Self::UNKNOWN_ATTRIBUTES
                | Self::CHANNEL_NUMBER
                | Self::LIFETIME
                | Self::XOR_PEER_ADDRESS
                | Self::DATA
                | Self::REALM
                | Self::NONCE
                | Self::XOR_RELAYED_ADDRESS
                | Self::REQUESTED_ADDRESS_FAMILY
                | Self::EVEN_PORT
                | Self::REQUESTED_TRANSPORT
                | Self::DONT_FRAGMENT
                | Self::XOR_MAPPED_ADDRESS
                | Self::RESERVATION_TOKEN
                | Self::PRIORITY
                | Self::USE_CANDIDATE
                | Self::PADDING
                | Self::RESPONSE_PORT
                | Self::MESSAGE_INTEGRITY_SHA256
                | Self::PASSWORD_ALGORITHM
                | Self::USERHASH
                | Self::CONNECTION_ID
        )
    }
}
