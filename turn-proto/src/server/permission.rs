//! CreatePermission (RFC 8656 §9) and the checks every peer a request names goes through:
//! address family (443) and peer policy (403).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::Server;
use crate::codec::address::decode_xor;
use crate::codec::attribute::AttrType;
use crate::codec::{Class, ErrorCode, Message, MessageWriter, Method};
use crate::names::{AllocId, FiveTuple};

impl Server {
    pub(super) fn create_permission(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), ErrorCode> {
        let (id, _) = self.allocation_for(tuple)?;
        let transaction = message.transaction();
        // Validate every peer before installing any: the request succeeds or fails whole.
        let mut peers: Vec<IpAddr> = Vec::new();
        for value in message.attrs(AttrType::XOR_PEER_ADDRESS) {
            let peer = decode_xor(value, &transaction).map_err(|_| ErrorCode::BAD_REQUEST)?;
            let peer = self.internal_peer(peer);
            self.check_peer(peer, id)?;
            peers.push(peer.ip());
        }
        if peers.is_empty() {
            return Err(ErrorCode::BAD_REQUEST);
        }
        let expires = now + self.config.permission_lifetime;
        let max = self.config.max_permissions;
        let allocation = self.allocation_mut(id).ok_or(ErrorCode::SERVER_ERROR)?;
        for ip in peers {
            if !allocation.permit(ip, expires, max) {
                return Err(ErrorCode::INSUFFICIENT_CAPACITY);
            }
        }
        self.sync_routes(id, now);
        MessageWriter::new(out, Method::CREATE_PERMISSION, Class::Success, transaction);
        Ok(())
    }

    /// Family match (443: allocation `id` has no relay address of the peer's family) and
    /// peer policy (403) for a peer named in a request.
    pub(super) fn check_peer(&mut self, peer: SocketAddr, id: AllocId) -> Result<(), ErrorCode> {
        let reachable = self
            .allocation(id)
            .is_some_and(|allocation| allocation.relay_for(peer).is_some());
        if !reachable {
            return Err(ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH);
        }
        match self.config.policy.check(peer) {
            Ok(()) => Ok(()),
            Err(denial) => {
                self.stats.peers_denied += 1;
                tracing::info!(%peer, ?denial, "peer denied");
                Err(ErrorCode::FORBIDDEN)
            }
        }
    }

    /// The request's XOR-PEER-ADDRESS as the relay reaches it (see `internal_peer`);
    /// 400 when missing or malformed.
    pub(super) fn requested_peer(&self, message: &Message<'_>) -> Result<SocketAddr, ErrorCode> {
        let value = message
            .attr(AttrType::XOR_PEER_ADDRESS)
            .ok_or(ErrorCode::BAD_REQUEST)?;
        let peer = decode_xor(value, &message.transaction()).map_err(|_| ErrorCode::BAD_REQUEST)?;
        Ok(self.internal_peer(peer))
    }
}
