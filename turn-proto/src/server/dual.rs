//! Dual allocations (RFC 8656 §7.2, ADDITIONAL-ADDRESS-FAMILY): one IPv4 and one IPv6
//! relay address for a single allocation. Permissions, channels and peer data follow each
//! peer's address family; when one family cannot be had, the allocation succeeds with the
//! other and an ADDRESS-ERROR-CODE says why.

use super::Server;
use crate::RelayRequest;
use crate::codec::attribute::AttrType;
use crate::codec::{ErrorCode, Message};

/// Address family values (RFC 8656 §18.6).
const FAMILY_IPV4: u8 = 0x01;
pub(super) const FAMILY_IPV6: u8 = 0x02;

/// The ADDRESS-ERROR-CODE type to answer a dual allocation request with, None when
/// `message` asks for none: the RFC numbering, or coturn's draft one when the client used
/// it. Only IPv6 may be asked for as the additional family (400 otherwise).
pub(super) fn requested(message: &Message<'_>) -> Result<Option<AttrType>, ErrorCode> {
    let (value, answer) = match (
        message.attr(AttrType::ADDITIONAL_ADDRESS_FAMILY),
        message.attr(AttrType::ADDITIONAL_ADDRESS_FAMILY_DRAFT),
    ) {
        (Some(value), _) => (value, AttrType::ADDRESS_ERROR_CODE),
        (None, Some(value)) => (value, AttrType::ADDRESS_ERROR_CODE_DRAFT),
        (None, None) => return Ok(None),
    };
    match value {
        [FAMILY_IPV6, _, _, _] => Ok(Some(answer)),
        _ => Err(ErrorCode::BAD_REQUEST),
    }
}

impl Server {
    /// The second half of a dual allocation whose first relay address is `request` (an
    /// IPv6 one when `ipv6`: this server has no IPv4 relays): the IPv6 relay address to
    /// bind too, or the family that cannot be had with why. TCP relays stay
    /// single-family. (A bind that fails later answers 508 for that family.)
    pub(super) fn dual_half(
        &self,
        tcp: bool,
        ipv6: bool,
        request: RelayRequest,
    ) -> (Option<RelayRequest>, Option<(u8, ErrorCode)>) {
        let unsupported = ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED;
        if ipv6 {
            return (None, Some((FAMILY_IPV4, unsupported)));
        }
        if tcp || !self.config.relay_ipv6 {
            return (None, Some((FAMILY_IPV6, unsupported)));
        }
        let request = RelayRequest {
            ipv6: true,
            even_port: false,
            reserve_next: false,
            reserved: None,
            ..request
        };
        (Some(request), None)
    }
}
