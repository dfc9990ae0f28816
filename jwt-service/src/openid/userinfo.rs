//! OpenID token verification: ask the claimed homeserver who the token belongs to
//! (`GET /_matrix/federation/v1/openid/userinfo`), then check the answer belongs to
//! that homeserver (spec §3).
//!
//! Every failure becomes the same 401 for the client, as upstream; the log gets the
//! precise cause (DNS, TLS, timeout, HTTP status and errcode, server mismatch) with the
//! token left out.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use url::Url;

use super::discovery::{self, BoxFuture, Destination, Lookup};
use super::net::{Denied, MatrixClient, REQUEST_TIMEOUT, describe};
use super::reach::{PerReach, Reach};
use super::server_name::ServerName;
use crate::request::OpenIdToken;

/// Cap on cached server names, so random names from clients cannot grow memory.
pub const DISCOVERY_CACHE_MAX: usize = 10_000;
/// Largest userinfo body read.
const USERINFO_MAX_BYTES: usize = 64 * 1024;

/// Why a token was not accepted (logged; the client sees one 401).
#[derive(Debug, thiserror::Error)]
pub enum OpenIdError {
    /// `matrix_server_name` is not a server name.
    #[error(transparent)]
    InvalidServerName(#[from] super::server_name::InvalidServerName),
    /// Discovery produced no destination.
    #[error("no federation destination for {0}")]
    NoDestination(String),
    /// The address is on the outgoing deny list.
    #[error("address {0} is on the outgoing deny list")]
    Denied(IpAddr),
    /// No answer from the homeserver (DNS, connect, TLS, timeout).
    #[error("cannot reach {destination}: {cause}")]
    Transport {
        /// `host:port` tried.
        destination: String,
        /// The cause chain.
        cause: String,
    },
    /// The homeserver refused (bad token, federation disabled, ...).
    #[error("homeserver answered HTTP {status} {errcode}")]
    Status {
        /// The status.
        status: u16,
        /// The Matrix errcode, if the body had one.
        errcode: String,
    },
    /// A 2xx body without a usable `sub`.
    #[error("bad userinfo body: {0}")]
    BadBody(String),
    /// `sub` belongs to another server than the one the client named.
    #[error("user {sub} does not belong to {server}")]
    ServerMismatch {
        /// The user id the homeserver returned.
        sub: String,
        /// The server the client named.
        server: String,
    },
}

impl OpenIdError {
    /// A short label for metrics.
    pub fn cause(&self) -> &'static str {
        match self {
            Self::InvalidServerName(_) => "invalid_server_name",
            Self::NoDestination(_) => "no_destination",
            Self::Denied(_) => "denied_address",
            Self::Transport { .. } => "unreachable",
            Self::Status { .. } => "homeserver_refused",
            Self::BadBody(_) => "bad_body",
            Self::ServerMismatch { .. } => "server_mismatch",
        }
    }
}

/// Verifies an OpenID token and returns the Matrix user id it belongs to.
pub trait Verifier: Send + Sync {
    /// The user id (`sub`), already checked to belong to `token.matrix_server_name`.
    fn verify<'a>(&'a self, token: &'a OpenIdToken) -> BoxFuture<'a, Result<String, OpenIdError>>;
}

/// A server name's federation destinations, in the order to try them.
type Destinations = Arc<[Destination]>;

/// The production verifier: federation discovery, one shared client per reach, cached
/// results.
pub struct FederationVerifier {
    clients: PerReach<MatrixClient>,
    lookups: PerReach<Arc<dyn Lookup>>,
    overrides: BTreeMap<String, Url>,
    /// Server name → (valid until, destinations). Shared, so a request takes the list
    /// without copying its strings.
    cache: Mutex<HashMap<String, (Instant, Destinations)>>,
}

impl FederationVerifier {
    /// Federation requests go through `clients` and discovery through `lookups`, each
    /// picked by the reach of the server name; `overrides` maps server names to
    /// federation base URLs that replace discovery (the operator's, so of private reach).
    pub fn new(
        clients: PerReach<MatrixClient>,
        lookups: PerReach<Arc<dyn Lookup>>,
        overrides: BTreeMap<String, Url>,
    ) -> Self {
        Self {
            clients,
            lookups,
            overrides,
            cache: Mutex::default(),
        }
    }

    async fn destinations(&self, server: &str) -> Result<Destinations, OpenIdError> {
        if let Some((until, cached)) = self.cache.lock().ok().and_then(|c| c.get(server).cloned())
            && Instant::now() < until
        {
            return Ok(cached);
        }
        let name = ServerName::parse(server)?;
        let lookup = self.lookups.for_server(server);
        let discovery = discovery::discover(&name, server, lookup.as_ref()).await;
        let found: Destinations = discovery.destinations.into();
        if found.is_empty() {
            return Err(OpenIdError::NoDestination(server.to_owned()));
        }
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= DISCOVERY_CACHE_MAX {
                let now = Instant::now();
                cache.retain(|_, (until, _)| now < *until);
                if cache.len() >= DISCOVERY_CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(
                server.to_owned(),
                (Instant::now() + discovery.ttl, found.clone()),
            );
        }
        Ok(found)
    }

    fn forget(&self, server: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(server);
        }
    }

    async fn query(
        client: &MatrixClient,
        url: Url,
        host_header: Option<&str>,
    ) -> Result<String, OpenIdError> {
        let destination = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        );
        let mut request = client
            .request(reqwest::Method::GET, url)
            .map_err(|Denied(ip)| OpenIdError::Denied(ip))?
            .timeout(REQUEST_TIMEOUT);
        if let Some(host) = host_header {
            request = request.header(reqwest::header::HOST, host);
        }
        let transport = |e: reqwest::Error| OpenIdError::Transport {
            destination: destination.clone(),
            cause: describe(&e),
        };
        let mut response = request.send().await.map_err(transport)?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > USERINFO_MAX_BYTES {
                return Err(OpenIdError::BadBody("body too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            sub: Option<String>,
            errcode: Option<String>,
        }
        let answer = serde_json::from_slice::<Answer>(&body);
        if !status.is_success() {
            return Err(OpenIdError::Status {
                status: status.as_u16(),
                errcode: answer.ok().and_then(|a| a.errcode).unwrap_or_default(),
            });
        }
        answer
            .map_err(|e| OpenIdError::BadBody(e.to_string()))?
            .sub
            .filter(|s| !s.is_empty())
            .ok_or_else(|| OpenIdError::BadBody("no `sub`".into()))
    }

    async fn userinfo(&self, token: &OpenIdToken) -> Result<String, OpenIdError> {
        let server = &token.matrix_server_name;
        if let Some(base) = self.overrides.get(server) {
            let url = userinfo_url(base, &token.access_token)
                .ok_or_else(|| OpenIdError::NoDestination(server.clone()))?;
            return Self::query(self.clients.get(Reach::Private), url, None).await;
        }
        let client = self.clients.for_server(server);
        let destinations = self.destinations(server).await?;
        match Self::try_each(client, &destinations, token).await {
            Err(e @ OpenIdError::Transport { .. }) => {
                // Every destination failed: resolve once more (the cached answer may be
                // stale), as upstream does, and try again only if it changed.
                self.forget(server);
                let fresh = self.destinations(server).await?;
                if fresh == destinations {
                    self.forget(server);
                    return Err(e);
                }
                let result = Self::try_each(client, &fresh, token).await;
                if matches!(result, Err(OpenIdError::Transport { .. })) {
                    self.forget(server);
                }
                result
            }
            other => other,
        }
    }

    /// Tries `destinations` in order; only an unreachable one moves on to the next.
    async fn try_each(
        client: &MatrixClient,
        destinations: &[Destination],
        token: &OpenIdToken,
    ) -> Result<String, OpenIdError> {
        let mut last_error = OpenIdError::NoDestination(token.matrix_server_name.clone());
        for destination in destinations {
            if let Some(connect) = &destination.connect_host {
                client.set_connect_host(&destination.tls_host, connect);
            }
            let Some(url) = userinfo_at(
                format_args!("https://{}:{}", destination.tls_host, destination.port),
                &token.access_token,
            ) else {
                continue;
            };
            match Self::query(client, url, Some(&destination.host_header)).await {
                Err(e @ OpenIdError::Transport { .. }) => last_error = e,
                other => return other,
            }
        }
        Err(last_error)
    }
}

/// `<base>/_matrix/federation/v1/openid/userinfo?access_token=<token, URL-encoded>`.
pub fn userinfo_url(base: &Url, access_token: &str) -> Option<Url> {
    userinfo_at(
        format_args!(
            "{}{}",
            &base[..url::Position::BeforePath],
            base.path().trim_end_matches('/')
        ),
        access_token,
    )
}

/// The userinfo URL under `prefix` (scheme, authority and an optional path without a
/// trailing `/`, written straight into the URL's text), written out and parsed once:
/// `Url::set_path` and `query_pairs_mut` each re-serialise the URL, a measurable cost
/// per request.
fn userinfo_at(prefix: fmt::Arguments<'_>, access_token: &str) -> Option<Url> {
    let mut text = String::with_capacity(128 + access_token.len());
    text.write_fmt(prefix).ok()?;
    text.push_str("/_matrix/federation/v1/openid/userinfo?access_token=");
    text.extend(url::form_urlencoded::byte_serialize(
        access_token.as_bytes(),
    ));
    Url::parse(&text).ok()
}

/// Upstream's check: the part of `sub` after the first `:` must equal the server name
/// the client claimed, exactly (case and port included).
pub fn check_server(sub: &str, server: &str) -> Result<(), OpenIdError> {
    match sub.split_once(':') {
        Some((_, part)) if part == server => Ok(()),
        _ => Err(OpenIdError::ServerMismatch {
            sub: sub.to_owned(),
            server: server.to_owned(),
        }),
    }
}

impl Verifier for FederationVerifier {
    fn verify<'a>(&'a self, token: &'a OpenIdToken) -> BoxFuture<'a, Result<String, OpenIdError>> {
        Box::pin(async move {
            let sub = self.userinfo(token).await?;
            check_server(&sub, &token.matrix_server_name)?;
            Ok(sub)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_urls_encode_the_token() {
        let base = Url::parse("https://127.0.0.1:8448/").unwrap();
        assert_eq!(
            userinfo_url(&base, "a b&c=d/+").unwrap().as_str(),
            "https://127.0.0.1:8448/_matrix/federation/v1/openid/userinfo?access_token=a+b%26c%3Dd%2F%2B"
        );
        let prefixed = Url::parse("https://proxy.example/matrix/?x=1").unwrap();
        assert_eq!(
            userinfo_url(&prefixed, "t").unwrap().as_str(),
            "https://proxy.example/matrix/_matrix/federation/v1/openid/userinfo?access_token=t"
        );
    }

    #[test]
    fn server_part_must_match_exactly() {
        assert!(check_server("@alice:example.com", "example.com").is_ok());
        assert!(check_server("@alice:127.0.0.1:8448", "127.0.0.1:8448").is_ok());
        assert!(check_server("@alice:127.0.0.1:8448", "127.0.0.1").is_err());
        assert!(check_server("@alice:Example.com", "example.com").is_err());
        assert!(check_server("@alice:evil.com", "example.com").is_err());
        assert!(check_server("alice", "example.com").is_err());
        assert!(check_server("@alice:example.com.evil", "example.com").is_err());
    }
}
