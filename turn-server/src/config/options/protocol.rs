//! Protocol behaviour: FINGERPRINT, RFC 8016 mobility, the lifetimes of nonces,
//! allocations, channels and permissions, ORIGIN checks and the relay address family.

use crate::config::model::{
    AddressFamilyPolicy, DEFAULT_CHANNEL_LIFETIME, DEFAULT_MAX_ALLOCATE_LIFETIME,
    DEFAULT_PERMISSION_LIFETIME,
};
use crate::config::values::{self, address_family, boolean};

use super::Arg::{Flag, Optional, Required};
use super::Setter::{Bool, Custom, Lifetime};
use super::{Spec, Target, row, set};

/// FINGERPRINT, mobility and the protocol's lifetimes.
pub(super) const MESSAGES: &[Spec] = &[
    row(
        "fingerprint",
        Some('f'),
        Flag,
        "always add FINGERPRINT to responses",
        Bool(|c| &mut c.fingerprint),
    ),
    row(
        "mobility",
        None,
        Flag,
        "RFC 8016 mobility tickets",
        Bool(|c| &mut c.mobility),
    ),
    row(
        "stale-nonce",
        None,
        Optional,
        "nonce lifetime in seconds (600; 0 = never stale)",
        Custom(stale_nonce),
    ),
    row(
        "max-allocate-lifetime",
        None,
        Optional,
        "max allocation lifetime in seconds (3600)",
        Lifetime(
            |c| &mut c.max_allocate_lifetime,
            DEFAULT_MAX_ALLOCATE_LIFETIME,
        ),
    ),
    row(
        "channel-lifetime",
        None,
        Optional,
        "channel binding lifetime in seconds (600)",
        Lifetime(|c| &mut c.channel_lifetime, DEFAULT_CHANNEL_LIFETIME),
    ),
    row(
        "permission-lifetime",
        None,
        Optional,
        "permission lifetime in seconds (300)",
        Lifetime(|c| &mut c.permission_lifetime, DEFAULT_PERMISSION_LIFETIME),
    ),
];

/// ORIGIN checks and the relay address family of an allocation.
pub(super) const ALLOCATIONS: &[Spec] = &[
    row(
        "check-origin-consistency",
        None,
        Flag,
        "check ORIGIN consistency",
        Bool(|c| &mut c.check_origin_consistency),
    ),
    row(
        "keep-address-family",
        Some('K'),
        Flag,
        "relay family follows the client's",
        Custom(keep_address_family),
    ),
    row(
        "allocation-default-address-family",
        Some('A'),
        Required,
        "ipv4, ipv6 or keep",
        Custom(|t, v| {
            set(
                &mut t.config.allocation_default_address_family,
                address_family(v),
            )
        }),
    ),
];

/// `stale-nonce`: coturn's reading of the number, with a warning where it surprises.
fn stale_nonce(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    let (seconds, note) = values::stale_nonce(value)?;
    if let Some(note) = note {
        t.warn(note);
    }
    t.config.stale_nonce = seconds;
    Ok(())
}

/// `keep-address-family`: the relay family follows the client's; off changes nothing.
fn keep_address_family(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    if boolean(value)? {
        t.config.allocation_default_address_family = AddressFamilyPolicy::Keep;
    }
    Ok(())
}
