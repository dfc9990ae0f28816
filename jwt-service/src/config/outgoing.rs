//! Where outgoing Matrix requests may go (ours; applied by [`crate::openid::reach`]):
//! `LIVEKIT_DENY_OUTGOING_IPS`, ranges no request reaches on top of the never-allowed
//! ones, and `LIVEKIT_PRIVATE_HOMESERVERS`, server names (besides those of
//! `LIVEKIT_FULL_ACCESS_HOMESERVERS`) whose homeservers may be reached on loopback and
//! private addresses. Every other server name reaches public addresses only.

use rtc_auth::ip_range::{IpRange, IpRangeSet, NEVER_ALLOWED};

use super::{ConfigError, split_list};

/// The addresses refused to every request: the never-allowed ranges (link-local, cloud
/// metadata, unspecified) plus `LIVEKIT_DENY_OUTGOING_IPS`.
pub(super) fn deny_list(var: &impl Fn(&str) -> Option<String>) -> Result<IpRangeSet, ConfigError> {
    let mut deny: IpRangeSet = NEVER_ALLOWED.iter().copied().collect();
    if let Some(v) = var("LIVEKIT_DENY_OUTGOING_IPS") {
        let extra = IpRangeSet::parse(split_list(&v))
            .map_err(|e| ConfigError(format!("LIVEKIT_DENY_OUTGOING_IPS: {e}")))?;
        deny.extend(extra.ranges().collect::<Vec<IpRange>>());
    }
    Ok(deny)
}

/// `LIVEKIT_PRIVATE_HOMESERVERS`: exact server names, split on commas and whitespace.
pub(super) fn private_homeservers(var: &impl Fn(&str) -> Option<String>) -> Vec<String> {
    var("LIVEKIT_PRIVATE_HOMESERVERS")
        .as_deref()
        .map(split_list)
        .into_iter()
        .flatten()
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &'static str, value: &'static str) -> impl Fn(&str) -> Option<String> {
        move |asked: &str| (asked == name).then(|| value.to_owned())
    }

    #[test]
    fn private_homeservers_list() {
        let var = lookup(
            "LIVEKIT_PRIVATE_HOMESERVERS",
            "127.0.0.1:8448, hs.internal\tother.example",
        );
        assert_eq!(
            private_homeservers(&var),
            ["127.0.0.1:8448", "hs.internal", "other.example"]
        );
        assert!(private_homeservers(&|_: &str| None).is_empty());
    }

    #[test]
    fn deny_list_adds_to_the_never_allowed_ranges() {
        let none = deny_list(&|_: &str| None).unwrap();
        assert!(none.matches("169.254.169.254".parse().unwrap()));
        assert!(!none.matches("10.1.2.3".parse().unwrap()));
        let extra = deny_list(&lookup("LIVEKIT_DENY_OUTGOING_IPS", "10.0.0.0/8")).unwrap();
        assert!(extra.matches("10.1.2.3".parse().unwrap()));
        assert!(extra.matches("169.254.169.254".parse().unwrap()));
        let error = deny_list(&lookup("LIVEKIT_DENY_OUTGOING_IPS", "10.0.0.0/99")).unwrap_err();
        assert!(
            error.0.starts_with("LIVEKIT_DENY_OUTGOING_IPS: "),
            "{error}"
        );
    }
}
