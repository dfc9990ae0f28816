//! The long-term credential mechanism (RFC 8489 §9.2) with coturn's session-key caching,
//! the 401/438 challenge, and the abuse limits that bound what unauthenticated input gets.

use std::net::IpAddr;
use std::time::Instant;

use super::tcp;
use super::{Auth, Server, Signing};
use crate::auth::{KeyError, LongTermKey, OFFERED_ALGORITHMS, PasswordAlgorithm};
use crate::codec::attribute::AttrType;
use crate::codec::{Class, ErrorCode, Message, MessageWriter, Method};
use crate::names::FiveTuple;
use crate::ratelimit::Limited;

impl Server {
    /// Asks the shared limits about spoofable input, counting what they refuse.
    pub(super) fn admit(
        &mut self,
        what: Limited,
        source: IpAddr,
        now: Instant,
        probe: bool,
    ) -> bool {
        let admitted = self.limits.admit(what, source, now, probe);
        if !admitted {
            match what {
                Limited::Unauthenticated => self.rate_limited.0 += 1,
                Limited::Challenges => self.rate_limited.1 += 1,
            }
        }
        admitted
    }

    /// The long-term credential mechanism (RFC 8489 §9.2.4) with coturn's session-key
    /// caching: once a 5-tuple has an allocation, its requests are checked against the
    /// key that created it, so a REST credential expiring mid-call does not end the call.
    /// A ConnectionBind is checked the same way against the allocation that owns its
    /// CONNECTION-ID (RFC 6062 §5.4: same credentials as the control connection).
    /// RFC 8489 additions: PASSWORD-ALGORITHM (MD5 or SHA-256 keys), USERHASH for static
    /// users, and MESSAGE-INTEGRITY-SHA256, answered in kind.
    pub(super) fn authenticate(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
    ) -> Result<Auth, ErrorCode> {
        if !self.config.credentials.required() {
            return Ok(Auth {
                signing: None,
                username: String::new(),
                user: String::new(),
            });
        }
        if !message.has_integrity() {
            return Err(ErrorCode::UNAUTHORIZED);
        }
        let text = |kind| message.text_attr(kind).and_then(Result::ok);
        let (Some(realm), Some(nonce)) = (text(AttrType::REALM), message.attr(AttrType::NONCE))
        else {
            return Err(ErrorCode::BAD_REQUEST);
        };
        if self.nonces.check(nonce, now, tuple.client.ip()).is_err() {
            self.stats.stale_nonces += 1;
            return Err(ErrorCode::STALE_NONCE);
        }
        if realm != self.config.realm {
            self.stats.auth_failures += 1;
            return Err(ErrorCode::UNAUTHORIZED);
        }
        // RFC 8489 §9.2.4: the client's choice, and our offer echoed back unchanged.
        let offered = message.attr(AttrType::PASSWORD_ALGORITHMS);
        if offered.is_some_and(|offered| offered != OFFERED_ALGORITHMS) {
            return Err(ErrorCode::BAD_REQUEST);
        }
        let algorithm = match message.attr(AttrType::PASSWORD_ALGORITHM) {
            None => PasswordAlgorithm::Md5,
            Some(_) if offered.is_none() => return Err(ErrorCode::BAD_REQUEST),
            Some(value) => PasswordAlgorithm::parse(value).ok_or(ErrorCode::BAD_REQUEST)?,
        };
        let username: String = match (text(AttrType::USERNAME), message.attr(AttrType::USERHASH)) {
            (Some(username), _) => username.to_owned(),
            (None, Some(hash)) => match <[u8; 32]>::try_from(hash)
                .ok()
                .and_then(|hash| self.userhashes.get(&hash))
            {
                Some(username) => username.clone(),
                None => {
                    self.stats.auth_failures += 1;
                    return Err(ErrorCode::UNAUTHORIZED);
                }
            },
            (None, None) => return Err(ErrorCode::BAD_REQUEST),
        };
        let sha256 = message.has_integrity_sha256();
        let verify = |key: &LongTermKey| {
            if sha256 {
                message.verify_integrity_sha256(key.as_bytes())
            } else {
                message.verify_integrity(key.as_bytes())
            }
        };
        let session = if message.method() == Method::CONNECTION_BIND {
            tcp::connection_id(message)
                .and_then(|connection| self.connections.get(&connection))
                .map(|connection| connection.allocation)
        } else {
            self.by_tuple.get(&tuple).copied()
        };
        if let Some(allocation) = session.and_then(|id| self.allocation(id)) {
            if *allocation.username != *username {
                self.stats.auth_failures += 1;
                return Err(if message.method() == Method::ALLOCATE {
                    ErrorCode::ALLOCATION_MISMATCH
                } else {
                    ErrorCode::WRONG_CREDENTIALS
                });
            }
            if let Some(key) = allocation.key.filter(|key| verify(key)) {
                let user = allocation.user.to_string();
                return Ok(Auth {
                    signing: Some(Signing { key, sha256 }),
                    username,
                    user,
                });
            }
            self.stats.auth_failures += 1;
            return Err(ErrorCode::UNAUTHORIZED);
        }
        let unix_now = self.unix_now(now);
        let found =
            match self
                .config
                .credentials
                .keys(&username, &self.config.realm, unix_now, algorithm)
            {
                Ok((mut keys, user)) => keys
                    .find(|key| verify(key))
                    .map(|key| (key, user.to_owned())),
                Err(KeyError::Malformed) => return Err(ErrorCode::BAD_REQUEST),
                Err(KeyError::Unknown | KeyError::Expired) => None,
            };
        match found {
            Some((key, user)) => Ok(Auth {
                signing: Some(Signing { key, sha256 }),
                username,
                user,
            }),
            None => {
                self.stats.auth_failures += 1;
                Err(ErrorCode::UNAUTHORIZED)
            }
        }
    }

    /// 401 or 438 with REALM, a fresh NONCE and PASSWORD-ALGORITHMS (RFC 8489 §9.2.4), and
    /// nothing else a spoofed source could use for amplification: no reason phrase.
    pub(super) fn challenge(
        &self,
        out: &mut Vec<u8>,
        message: &Message<'_>,
        code: ErrorCode,
        now: Instant,
        client: IpAddr,
        fingerprint: bool,
    ) {
        let nonce = self.nonces.issue(now, client);
        let mut writer =
            MessageWriter::new(out, message.method(), Class::Error, message.transaction());
        writer
            .bare_error_code(code)
            .attr(AttrType::REALM, self.config.realm.as_bytes())
            .attr(AttrType::NONCE, &nonce)
            .attr(AttrType::PASSWORD_ALGORITHMS, &OFFERED_ALGORITHMS);
        if fingerprint {
            writer.fingerprint();
        }
    }
}
