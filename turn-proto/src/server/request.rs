//! The request pipeline: the abuse limits, Binding, authentication, unknown
//! comprehension-required attributes (420), the method's own handler, and the signed
//! answer.

use std::time::Instant;

use super::{Answer, Server, finish};
use crate::codec::attribute::AttrType;
use crate::codec::{Class, ErrorCode, Message, MessageWriter, Method};
use crate::names::FiveTuple;
use crate::ratelimit::Limited;
use crate::transmit::{Destination, Payload, Transmit};

/// The smallest request a client starts a session with: an Allocate carrying
/// REQUESTED-TRANSPORT (20-byte header, 8-byte attribute). A shorter unauthenticated UDP
/// request gets a bare 400 (28 bytes) instead of the 401 challenge (about 100 bytes),
/// so a spoofed source never gets more than about 4 bytes per byte it sent
/// (docs/security.md measures it).
pub(super) const MIN_CHALLENGED_LEN: usize = 28;

impl Server {
    pub(super) fn handle_request(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
        out: &mut Vec<u8>,
    ) -> Option<Transmit> {
        let fingerprint = self.config.fingerprint || message.has_fingerprint();
        let reply = Some(Transmit {
            destination: Destination::Client(tuple),
            payload: Payload::Output,
        });
        let method = message.method();
        let client = tuple.client.ip();
        // A UDP source may be spoofed: bound what it gets. A request counts as
        // unauthenticated until its MESSAGE-INTEGRITY verifies, so what cannot be verified
        // (no integrity, a Binding or other method that is never authenticated, a server
        // without credentials) counts before any work, and a signed TURN request counts
        // only when its integrity fails (a fake one included).
        let spoofable = !tuple.transport.is_stream() && self.config.challenge_rate > 0;
        let verifiable = message.has_integrity()
            && self.config.credentials.required()
            && is_authenticated_method(method);
        // The health check's Binding from loopback cannot come from a remote flood: a
        // spoofed flood that empties the all-sources bucket must not fail it.
        let probe = method == Method::BINDING && client.is_loopback();
        if spoofable && !verifiable && !self.admit(Limited::Unauthenticated, client, now, probe) {
            return None;
        }
        if method == Method::BINDING {
            self.stats.binding_requests += 1;
            let mut writer =
                MessageWriter::new(out, Method::BINDING, Class::Success, message.transaction());
            writer.xor_address(AttrType::XOR_MAPPED_ADDRESS, tuple.client);
            if fingerprint {
                writer.fingerprint();
            }
            return reply;
        }
        if !is_authenticated_method(method) {
            self.error(out, message, ErrorCode::BAD_REQUEST, None, fingerprint);
            return reply;
        }
        let auth = match self.authenticate(now, tuple, message) {
            // A mobility Refresh or a reservation Allocate naming another shard's
            // allocation goes there, and its 5-tuple after it; only once it has
            // authenticated, so spoofed ones cannot fill the handover table.
            Ok(_) if let Some(shard) = self.owner_elsewhere(now, tuple, message) => {
                return Some(Transmit {
                    destination: Destination::Shard { shard, tuple },
                    payload: Payload::Input(0..message.bytes().len()),
                });
            }
            Ok(auth) => auth,
            Err(code) => {
                if spoofable
                    && verifiable
                    && !self.admit(Limited::Unauthenticated, client, now, false)
                {
                    return None;
                }
                if matches!(code, ErrorCode::UNAUTHORIZED | ErrorCode::STALE_NONCE) {
                    if spoofable && !self.admit(Limited::Challenges, client, now, false) {
                        return None;
                    }
                    if spoofable && message.bytes().len() < MIN_CHALLENGED_LEN {
                        // No client starts with less; ~100 bytes to 20 would amplify.
                        MessageWriter::new(out, method, Class::Error, message.transaction())
                            .bare_error_code(ErrorCode::BAD_REQUEST);
                        return reply;
                    }
                    self.challenge(out, message, code, now, client, fingerprint);
                } else {
                    self.error(out, message, code, None, fingerprint);
                }
                return reply;
            }
        };
        let signing = auth.signing;
        let mut unknown = [AttrType(0); 16];
        let mut unknown_count = 0;
        for kind in message.attr_types() {
            if kind.is_comprehension_required()
                && !kind.is_understood()
                && unknown_count < unknown.len()
            {
                unknown[unknown_count] = kind;
                unknown_count += 1;
            }
        }
        if unknown_count > 0 {
            let mut writer = MessageWriter::new(out, method, Class::Error, message.transaction());
            writer
                .error_code(ErrorCode::UNKNOWN_ATTRIBUTE)
                .unknown_attributes(&unknown[..unknown_count]);
            finish(&mut writer, signing, fingerprint);
            return reply;
        }
        let result = match method {
            Method::ALLOCATE => self.allocate(now, tuple, message, auth, fingerprint, out),
            Method::REFRESH => self
                .refresh(now, tuple, message, &auth, out)
                .map(|()| Answer::Now),
            Method::CREATE_PERMISSION => self
                .create_permission(now, tuple, message, out)
                .map(|()| Answer::Now),
            Method::CONNECT => self.connect(now, tuple, message).map(|()| Answer::Later),
            Method::CONNECTION_BIND => self
                .connection_bind(tuple, message, out)
                .map(|()| Answer::Now),
            _ => self
                .channel_bind(now, tuple, message, out)
                .map(|()| Answer::Now),
        };
        match result {
            // Answered once the driver reports back (relay sockets bound, peer connected).
            Ok(Answer::Later) => return None,
            Ok(Answer::Now) => {
                let mut writer = MessageWriter::resume(out);
                finish(&mut writer, signing, fingerprint);
            }
            Err(code) => {
                tracing::debug!(
                    client = %tuple.client,
                    method = method.0,
                    code = code.0,
                    "request refused"
                );
                out.clear();
                self.error(out, message, code, signing, fingerprint);
            }
        }
        reply
    }
}

/// The methods that carry credentials (RFC 8656, RFC 6062); anything else is 400.
pub(super) fn is_authenticated_method(method: Method) -> bool {
    matches!(
        method,
        Method::ALLOCATE
            | Method::REFRESH
            | Method::CREATE_PERMISSION
            | Method::CHANNEL_BIND
            | Method::CONNECT
            | Method::CONNECTION_BIND
    )
}
