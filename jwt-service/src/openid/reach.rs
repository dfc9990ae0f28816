//! Which addresses outgoing Matrix traffic may reach (the service's SSRF protection).
//!
//! Clients choose the URLs the service fetches: the server name in a token request picks
//! the well-known document, the SRV targets and the userinfo URL. So a server name
//! reaches public addresses only: loopback, private networks, shared address space and
//! the other special-purpose ranges ([`IpRangeSet::special_purpose`]) are refused. The
//! operator's own homeserver often lives on a private or container network, so the names
//! in `LIVEKIT_FULL_ACCESS_HOMESERVERS` (a list, not `*`), in
//! `LIVEKIT_PRIVATE_HOMESERVERS` and `LIVEKIT_HS_SERVER_NAME` (application-service mode),
//! and the URLs the operator configured
//! (`LIVEKIT_FEDERATION_URL_OVERRIDES`, `LIVEKIT_CS_API_URL_OVERRIDES`), reach those too.
//! Unspecified, link-local and cloud-metadata addresses ([`NEVER_ALLOWED`]) and
//! `LIVEKIT_DENY_OUTGOING_IPS` stay refused for everyone.

use std::collections::BTreeSet;
use std::sync::Arc;

use rtc_auth::ip_range::{IpRange, IpRangeSet};

use crate::config::{Config, FullAccess};

#[cfg(doc)]
use rtc_auth::ip_range::NEVER_ALLOWED;

/// What a request may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Public addresses only: a server name the operator did not name.
    Public,
    /// Public, loopback and private addresses: the operator's homeservers and URLs.
    Private,
}

/// The operator's choices: trusted server names and the addresses nobody reaches.
#[derive(Debug, Clone)]
pub struct ReachPolicy {
    trusted: BTreeSet<String>,
    always_denied: IpRangeSet,
}

impl ReachPolicy {
    /// `trusted` server names (exact, case-sensitive, as `LIVEKIT_FULL_ACCESS_HOMESERVERS`)
    /// reach private addresses; `always_denied` is refused for every request.
    pub fn new(trusted: impl IntoIterator<Item = String>, always_denied: IpRangeSet) -> Self {
        Self {
            trusted: trusted.into_iter().collect(),
            always_denied,
        }
    }

    /// The configured policy: `LIVEKIT_FULL_ACCESS_HOMESERVERS` (unless `*`, which names
    /// no homeserver), `LIVEKIT_PRIVATE_HOMESERVERS` and the application service's own
    /// homeserver are trusted, and [`Config::outgoing_deny`] is refused for everyone.
    pub fn from_config(config: &Config) -> Self {
        let full_access = match &config.full_access {
            FullAccess::Servers(servers) => servers.as_slice(),
            FullAccess::Everyone => &[],
        };
        let own = config.app_service.as_ref().map(|app| &app.server_name);
        let trusted = full_access
            .iter()
            .chain(&config.private_homeservers)
            .chain(own)
            .cloned();
        Self::new(trusted, config.outgoing_deny.clone())
    }

    /// The reach of requests made for `server`.
    pub fn reach(&self, server: &str) -> Reach {
        if self.trusted.contains(server) {
            Reach::Private
        } else {
            Reach::Public
        }
    }

    /// The addresses refused to requests of `reach`.
    pub fn deny_list(&self, reach: Reach) -> IpRangeSet {
        let mut deny = self.always_denied.clone();
        if reach == Reach::Public {
            deny.extend(
                IpRangeSet::special_purpose()
                    .ranges()
                    .collect::<Vec<IpRange>>(),
            );
        }
        deny
    }
}

/// One value per reach (an HTTP client, a discovery look-up), picked per server name.
pub struct PerReach<T> {
    public: T,
    private: T,
    policy: Arc<ReachPolicy>,
}

impl<T> PerReach<T> {
    /// Builds the value of each reach from its deny list.
    pub fn build<E>(
        policy: Arc<ReachPolicy>,
        mut make: impl FnMut(IpRangeSet) -> Result<T, E>,
    ) -> Result<Self, E> {
        Ok(Self {
            public: make(policy.deny_list(Reach::Public))?,
            private: make(policy.deny_list(Reach::Private))?,
            policy,
        })
    }

    /// The value for requests made for `server`.
    pub fn for_server(&self, server: &str) -> &T {
        self.get(self.policy.reach(server))
    }

    /// The value of `reach`.
    pub fn get(&self, reach: Reach) -> &T {
        match reach {
            Reach::Public => &self.public,
            Reach::Private => &self.private,
        }
    }

    /// The same policy applied to other values.
    pub fn map<U>(&self, mut f: impl FnMut(&T) -> U) -> PerReach<U> {
        PerReach {
            public: f(&self.public),
            private: f(&self.private),
            policy: self.policy.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn configured_names_are_trusted_but_not_a_wildcard() {
        let config = |full_access: &str| {
            let vars = [
                ("LIVEKIT_URL", "wss://sfu.example"),
                ("LIVEKIT_KEY", "k"),
                ("LIVEKIT_SECRET", "s"),
                ("LIVEKIT_FULL_ACCESS_HOMESERVERS", full_access),
                ("LIVEKIT_PRIVATE_HOMESERVERS", "127.0.0.1:8448"),
                ("LIVEKIT_AS_TOKEN", "as"),
                ("LIVEKIT_HS_TOKEN", "hs"),
                ("LIVEKIT_HS_SERVER_NAME", "own.example"),
            ];
            Config::from_lookup(|name| {
                vars.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            })
            .unwrap()
        };
        let listed = ReachPolicy::from_config(&config("hs.example"));
        assert_eq!(listed.reach("hs.example"), Reach::Private);
        assert_eq!(listed.reach("127.0.0.1:8448"), Reach::Private);
        assert_eq!(listed.reach("stranger.example"), Reach::Public);
        let everyone = ReachPolicy::from_config(&config("*"));
        assert_eq!(everyone.reach("*"), Reach::Public);
        assert_eq!(everyone.reach("stranger.example"), Reach::Public);
        assert_eq!(everyone.reach("127.0.0.1:8448"), Reach::Private);
        assert_eq!(everyone.reach("own.example"), Reach::Private);
        assert!(
            everyone
                .deny_list(Reach::Private)
                .matches(ip("169.254.169.254"))
        );
    }

    #[test]
    fn strangers_reach_public_addresses_only() {
        let always = IpRangeSet::parse(["203.0.113.7", "169.254.0.0/16"]).unwrap();
        let policy = ReachPolicy::new(["hs.example".to_owned()], always);
        assert_eq!(policy.reach("hs.example"), Reach::Private);
        assert_eq!(policy.reach("HS.example"), Reach::Public);
        assert_eq!(policy.reach("hs.example:8448"), Reach::Public);
        let public = policy.deny_list(Reach::Public);
        let private = policy.deny_list(Reach::Private);
        for inside in [
            "127.0.0.1",
            "10.1.2.3",
            "172.17.0.2",
            "192.168.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "2002:7f00:1::1",
        ] {
            assert!(public.matches(ip(inside)), "{inside}");
        }
        for reachable in ["127.0.0.1", "10.1.2.3", "172.17.0.2", "::1"] {
            assert!(!private.matches(ip(reachable)), "{reachable}");
        }
        for everyone in ["203.0.113.7", "169.254.169.254"] {
            assert!(public.matches(ip(everyone)) && private.matches(ip(everyone)));
        }
        assert!(!public.matches(ip("93.184.215.14")));
        assert!(!public.matches(ip("2a00:1450::1")));
    }
}
