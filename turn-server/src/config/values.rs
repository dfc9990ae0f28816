//! Parsers for option values: ports, numbers, coturn's booleans, addresses, ranges,
//! lifetimes, users. Each returns the typed value or a message that names the bad value;
//! the caller adds the file line and the option ([`super::Diagnostic`]).
//!
//! They accept what coturn accepts (its spellings, its `atoi` quirks where a real file
//! depends on them) and refuse what coturn would misread silently, such as host names
//! where an address is needed or a `#` that looks like a comment.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;

use rtc_auth::ip_range::IpRange;
use rtc_auth::long_term::parse_hex_key;
use rtc_auth::secret::Secret;

use super::model::{
    AddressFamilyPolicy, DEFAULT_STALE_NONCE, KernelOffload, LogFile, StaticUser, UserKey,
};

/// coturn's booleans: empty = true; first character `0`/`n`/`f` false, `y`/`t`/`1`-`9`
/// true; `on`/`off`; anything else is an error (coturn exits too).
pub(crate) fn boolean(value: &str) -> Result<bool, String> {
    match value.chars().next() {
        None => Ok(true),
        Some('0' | 'n' | 'N' | 'f' | 'F') => Ok(false),
        Some('y' | 'Y' | 't' | 'T' | '1'..='9') => Ok(true),
        _ if value.eq_ignore_ascii_case("on") => Ok(true),
        _ if value.eq_ignore_ascii_case("off") => Ok(false),
        _ => Err(format!(
            "{value:?} is not a boolean (use on/off, yes/no, true/false or 1/0)"
        )),
    }
}

/// Bounds of `relay-socket-buffer`: the kernel's own minimum, and 256 MiB (four times
/// that for each listener must still fit a u32).
const RELAY_SOCKET_BUFFER_RANGE: RangeInclusive<u32> = 4096..=256 << 20;

/// `relay-socket-buffer` in bytes, within [`RELAY_SOCKET_BUFFER_RANGE`].
pub(crate) fn socket_buffer(value: &str) -> Result<u32, String> {
    let bytes: u32 = number(value)?;
    if !RELAY_SOCKET_BUFFER_RANGE.contains(&bytes) {
        return Err(format!(
            "{bytes} is outside {}..={} bytes",
            RELAY_SOCKET_BUFFER_RANGE.start(),
            RELAY_SOCKET_BUFFER_RANGE.end()
        ));
    }
    Ok(bytes)
}

/// A non-negative whole number in digits only (no sign, no blanks), as large as `T` holds.
pub(crate) fn number<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{value:?} is not a non-negative whole number"));
    }
    value.parse().map_err(|_| format!("{value:?} is too large"))
}

/// A port, 1-65535.
pub(crate) fn port(value: &str) -> Result<u16, String> {
    match number::<u32>(value).map(u16::try_from) {
        Ok(Ok(p @ 1..)) => Ok(p),
        Ok(_) => Err(format!("port {value:?} is not between 1 and 65535")),
        Err(_) => Err(format!(
            "port {value:?} is not a number between 1 and 65535"
        )),
    }
}

/// `N` or `A-B` (inclusive).
pub(crate) fn port_range(value: &str) -> Result<RangeInclusive<u16>, String> {
    let (low, high) = value.split_once('-').unwrap_or((value, value));
    let (low, high) = (port(low.trim())?, port(high.trim())?);
    if low > high {
        return Err(format!("{value:?}: the range starts after its end"));
    }
    Ok(low..=high)
}

/// A port, or 0 for "unset" where the option allows it.
pub(crate) fn port_or_zero(value: &str) -> Result<u16, String> {
    if value == "0" { Ok(0) } else { port(value) }
}

/// A lifetime in seconds; empty means the default, as coturn's `get_int_value`.
pub(crate) fn lifetime(value: &str, default: u32) -> Result<u32, String> {
    if value.is_empty() {
        return Ok(default);
    }
    match number::<u32>(value)? {
        0 => Err("must be at least 1 second".to_owned()),
        seconds => Ok(seconds),
    }
}

/// `stale-nonce` with coturn's `atoi`: leading digits count, the rest is ignored, and
/// no digits at all is 0 (never stale). Both surprises get a warning.
pub(crate) fn stale_nonce(value: &str) -> Result<(u32, Option<String>), String> {
    if value.is_empty() {
        return Ok((DEFAULT_STALE_NONCE, None));
    }
    let trimmed = value.trim_start();
    if trimmed.starts_with('-') {
        return Err(format!("{value:?} is negative"));
    }
    let unsigned = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let digits_end = unsigned
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(unsigned.len());
    let digits = &unsigned[..digits_end];
    if digits.is_empty() {
        return Ok((
            0,
            Some(format!(
                "{value:?} is not a number; coturn reads it as 0, so nonces never expire"
            )),
        ));
    }
    let seconds: u32 = digits
        .parse()
        .map_err(|_| format!("{value:?} is too large"))?;
    let note = (digits_end != unsigned.len())
        .then(|| format!("{value:?}: only the leading number {seconds} is used"));
    Ok((seconds, note))
}

/// An address without DNS: hostnames would need resolving at startup, which we don't do,
/// so they are reported with the value instead of silently failing later.
pub(crate) fn ip(value: &str) -> Result<IpAddr, String> {
    let bare = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    bare.parse().map_err(|_| {
        if bare.chars().any(|c| c.is_ascii_alphabetic()) && !bare.contains(':') {
            format!(
                "{value:?} is not an IP address (host names are not resolved; give the address)"
            )
        } else {
            format!("{value:?} is not an IP address")
        }
    })
}

/// A network interface name for SO_BINDTODEVICE.
pub(crate) fn device(value: &str) -> Result<String, String> {
    // Linux interface names: at most 15 bytes, no '/' or whitespace.
    if value.len() > 15 || value.contains(['/', ' ', '\t']) || value == "." || value == ".." {
        return Err(format!("{value:?} is not a valid network interface name"));
    }
    Ok(value.to_owned())
}

/// An IP address, `A-B` range or CIDR of a peer list.
pub(crate) fn ip_range(value: &str) -> Result<IpRange, String> {
    // Fail closed: coturn <= 4.10 ignored a bad line and relayed to what it meant to deny.
    value
        .parse()
        .map_err(|e: rtc_auth::ip_range::IpRangeError| {
            if value.contains('#') {
                format!(
                    "{e} (there are no inline comments: '#' only starts a comment at the start \
                 of a line)"
                )
            } else {
                e.to_string()
            }
        })
}

/// `addr`, `addr:port`, `[v6]:port` or a bare IPv6 address.
pub(crate) fn server_address(value: &str, default_port: u16) -> Result<SocketAddr, String> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return Err(format!(
                "port \"0\" of {value:?} is not between 1 and 65535"
            ));
        }
        return Ok(addr);
    }
    if let Ok(addr) = ip(value) {
        return Ok(SocketAddr::new(addr, default_port));
    }
    if let Some((host, p)) = value.rsplit_once(':') {
        let addr = ip(host)?;
        return Ok(SocketAddr::new(addr, port(p)?));
    }
    Err(ip(value)
        .err()
        .unwrap_or_else(|| format!("{value:?} is not an address")))
}

/// A `user=` account: `name:password` or `name:0x<32 hex digits>`.
pub(crate) fn user(value: &str) -> Result<StaticUser, String> {
    let Some((name, secret)) = value.split_once(':') else {
        return Err("expected name:password or name:0x<key> (no ':' found)".to_owned());
    };
    if name.is_empty() {
        return Err("the user name before ':' is empty".to_owned());
    }
    if secret.is_empty() {
        return Err(format!("user {name} has an empty password"));
    }
    let key = if secret.starts_with("0x") || secret.starts_with("0X") {
        let key = parse_hex_key(secret).ok_or_else(|| {
            format!("user {name}: a 0x key must be exactly 32 hex digits (turnadmin -k output)")
        })?;
        UserKey::Key(Secret::new(key.to_vec()))
    } else {
        UserKey::Password(Secret::new(secret))
    };
    Ok(StaticUser {
        name: name.to_owned(),
        key,
    })
}

/// `kernel-offload`: `off`, `auto` or `on`.
pub(crate) fn kernel_offload(value: &str) -> Result<KernelOffload, String> {
    match value {
        "off" => Ok(KernelOffload::Off),
        "auto" => Ok(KernelOffload::Auto),
        "on" => Ok(KernelOffload::On),
        other => Err(format!("{other:?} is not off, auto or on")),
    }
}

/// `allocation-default-address-family`: `ipv4`, `ipv6` or `keep`.
pub(crate) fn address_family(value: &str) -> Result<AddressFamilyPolicy, String> {
    match value {
        "ipv4" => Ok(AddressFamilyPolicy::Ipv4),
        "ipv6" => Ok(AddressFamilyPolicy::Ipv6),
        "keep" => Ok(AddressFamilyPolicy::Keep),
        other => Err(format!("{other:?} is not ipv4, ipv6 or keep")),
    }
}

/// `log-file`: `stdout` or `-`, `syslog`, or a path.
pub(crate) fn log_file(value: &str) -> LogFile {
    match value {
        "stdout" | "-" => LogFile::Stdout,
        "syslog" => LogFile::Syslog,
        path => LogFile::Path(PathBuf::from(path)),
    }
}
