//! Matrix server discovery (server-server API, "Resolving server names"): where to
//! connect for a server name, which name TLS must verify, and which `Host` to send.
//!
//! The order (spec §3): IP literal → that IP, port or 8448; name with port → direct;
//! else `/.well-known/matrix/server` delegation, whose target is resolved the same way
//! but without a second well-known step; SRV `_matrix-fed._tcp` then `_matrix._tcp`;
//! finally port 8448. DNS and the well-known fetch sit behind [`Lookup`] so the
//! algorithm is tested without a network.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::server_name::{Host, ServerName};

/// A boxed, sendable future (object-safe async trait methods).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The federation port when nothing else says otherwise.
pub const DEFAULT_PORT: u16 = 8448;

/// Where and how to reach a homeserver's federation API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The URL host: also the name TLS verifies (SNI when it is not an IP).
    pub tls_host: String,
    /// The TCP port.
    pub port: u16,
    /// The `Host` header.
    pub host_header: String,
    /// An SRV target to connect to instead of `tls_host`'s own addresses.
    pub connect_host: Option<String>,
}

/// An SRV lookup that did not give records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrvError {
    /// NXDOMAIN or no SRV records: try the next step.
    #[error("no SRV records")]
    NotFound,
    /// Any other DNS failure.
    #[error("SRV lookup failed: {0}")]
    Failed(String),
}

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    /// Lower is tried first (RFC 2782).
    pub priority: u16,
    /// The host to connect to; `.` means "no service here".
    pub target: String,
    /// The port.
    pub port: u16,
}

/// SRV records in answer order, and how long they may be cached (the DNS TTL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvAnswer {
    /// The records.
    pub records: Vec<SrvRecord>,
    /// Cache lifetime.
    pub ttl: Duration,
}

/// At most this many SRV targets are tried for one name: a name must not make one
/// token request fan out into connections to hundreds of hosts.
pub const MAX_SRV_TARGETS: usize = 3;

/// A well-known answer: `m.server` (`None` on any failure) and its cache lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WellKnown {
    /// The delegated server name.
    pub server: Option<String>,
    /// Cache lifetime: `Cache-Control: max-age` capped at 48 h, 24 h by default, 1 h for
    /// failures (the server-server spec's recommendations).
    pub ttl: Duration,
}

/// Cache lifetime of answers that need no look-up, and of failed look-ups.
pub const STATIC_TTL: Duration = Duration::from_secs(24 * 3600);
/// Cache lifetime after a failed look-up.
pub const ERROR_TTL: Duration = Duration::from_secs(3600);

/// The network look-ups discovery needs.
pub trait Lookup: Send + Sync {
    /// SRV records of `name`.
    fn srv<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<SrvAnswer, SrvError>>;
    /// `https://<server>/.well-known/matrix/server`.
    fn well_known<'a>(&'a self, server: &'a str) -> BoxFuture<'a, WellKnown>;
}

/// Where to go, and for how long that answer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// Destinations to try in order.
    pub destinations: Vec<Destination>,
    /// The shortest lifetime of the answers it was built from.
    pub ttl: Duration,
}

/// The destinations for `server`.
pub async fn discover(server: &ServerName, original: &str, lookup: &dyn Lookup) -> Discovery {
    let name = match (&server.host, direct(server, original)) {
        (_, Some(direct)) => {
            return Discovery {
                destinations: vec![direct],
                ttl: STATIC_TTL,
            };
        }
        (Host::Name(name), None) => name,
        // direct() answers every IP literal; an empty list just fails the request.
        (Host::Ip(_), None) => {
            return Discovery {
                destinations: Vec::new(),
                ttl: ERROR_TTL,
            };
        }
    };
    let well_known = lookup.well_known(name).await;
    if let Some(delegated_text) = &well_known.server {
        match ServerName::parse(delegated_text) {
            Ok(delegated) => {
                if let Some(direct) = direct(&delegated, delegated_text) {
                    return Discovery {
                        destinations: vec![direct],
                        ttl: well_known.ttl,
                    };
                }
                if let Host::Name(delegated_name) = &delegated.host {
                    let mut found = srv_or_default(delegated_name, lookup).await;
                    found.ttl = found.ttl.min(well_known.ttl);
                    return found;
                }
            }
            Err(e) => tracing::debug!(server = %name, "ignoring well-known delegation: {e}"),
        }
    }
    let mut found = srv_or_default(name, lookup).await;
    found.ttl = found.ttl.min(well_known.ttl);
    found
}

/// IP literals and names with a port need no look-up.
fn direct(server: &ServerName, original: &str) -> Option<Destination> {
    match (&server.host, server.port) {
        (Host::Ip(_), port) => Some(Destination {
            tls_host: server.url_host(),
            port: port.unwrap_or(DEFAULT_PORT),
            host_header: original.to_owned(),
            connect_host: None,
        }),
        (Host::Name(name), Some(port)) => Some(Destination {
            tls_host: name.clone(),
            port,
            host_header: original.to_owned(),
            connect_host: None,
        }),
        (Host::Name(_), None) => None,
    }
}

async fn srv_or_default(name: &str, lookup: &dyn Lookup) -> Discovery {
    let answer = match lookup.srv(&format!("_matrix-fed._tcp.{name}")).await {
        Ok(answer) => Some(answer),
        Err(SrvError::NotFound) => lookup.srv(&format!("_matrix._tcp.{name}")).await.ok(),
        Err(SrvError::Failed(e)) => {
            tracing::debug!(server = %name, "{e}; falling back to port {DEFAULT_PORT}");
            None
        }
    };
    let ttl = answer.as_ref().map_or(ERROR_TTL, |a| a.ttl);
    let mut records = answer.map(|a| a.records).unwrap_or_default();
    // Stable: equal priorities keep the answer's order (weights are ignored, as upstream).
    records.sort_by_key(|record| record.priority);
    let destinations: Vec<Destination> = records
        .into_iter()
        .filter_map(|record| {
            let target = record.target.trim_end_matches('.');
            // A target of "." means "no service here" (RFC 2782).
            (!target.is_empty()).then(|| Destination {
                tls_host: name.to_owned(),
                port: record.port,
                host_header: name.to_owned(),
                connect_host: Some(target.to_ascii_lowercase()),
            })
        })
        .take(MAX_SRV_TARGETS)
        .collect();
    let destinations = if destinations.is_empty() {
        vec![Destination {
            tls_host: name.to_owned(),
            port: DEFAULT_PORT,
            host_header: name.to_owned(),
            connect_host: None,
        }]
    } else {
        destinations
    };
    Discovery { destinations, ttl }
}

/// `m.server` of a `/.well-known/matrix/server` document, if it has a non-empty one.
pub fn parse_server_well_known(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Document {
        #[serde(rename = "m.server")]
        server: Option<String>,
    }
    serde_json::from_slice::<Document>(body)
        .ok()
        .and_then(|document| document.server)
        .filter(|server| !server.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    #[derive(Default)]
    struct FakeLookup {
        srv: HashMap<String, Result<Vec<SrvRecord>, SrvError>>,
        well_known: HashMap<String, String>,
        asked: Mutex<Vec<String>>,
    }

    impl Lookup for FakeLookup {
        fn srv<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<SrvAnswer, SrvError>> {
            self.asked.lock().unwrap().push(format!("srv {name}"));
            let answer = self
                .srv
                .get(name)
                .cloned()
                .unwrap_or(Err(SrvError::NotFound))
                .map(|records| SrvAnswer {
                    records,
                    ttl: Duration::from_secs(300),
                });
            Box::pin(async move { answer })
        }

        fn well_known<'a>(&'a self, server: &'a str) -> BoxFuture<'a, WellKnown> {
            self.asked.lock().unwrap().push(format!("wk {server}"));
            let answer = match self.well_known.get(server) {
                Some(found) => WellKnown {
                    server: Some(found.clone()),
                    ttl: Duration::from_secs(7200),
                },
                None => WellKnown {
                    server: None,
                    ttl: ERROR_TTL,
                },
            };
            Box::pin(async move { answer })
        }
    }

    /// Records of equal priority.
    fn records(list: &[(&str, u16)]) -> Vec<SrvRecord> {
        list.iter()
            .map(|(target, port)| SrvRecord {
                priority: 10,
                target: (*target).to_owned(),
                port: *port,
            })
            .collect()
    }

    fn dest(tls: &str, port: u16, host: &str, connect: Option<&str>) -> Destination {
        Destination {
            tls_host: tls.into(),
            port,
            host_header: host.into(),
            connect_host: connect.map(Into::into),
        }
    }

    async fn run(name: &str, lookup: &FakeLookup) -> Vec<Destination> {
        discover(&ServerName::parse(name).unwrap(), name, lookup)
            .await
            .destinations
    }

    async fn ttl(name: &str, lookup: &FakeLookup) -> u64 {
        discover(&ServerName::parse(name).unwrap(), name, lookup)
            .await
            .ttl
            .as_secs()
    }

    #[tokio::test]
    async fn lifetimes_follow_the_answers() {
        let mut lookup = FakeLookup::default();
        lookup
            .well_known
            .insert("a.example".into(), "fed.a.example:443".into());
        lookup
            .well_known
            .insert("b.example".into(), "fed.b.example".into());
        lookup.srv.insert(
            "_matrix-fed._tcp.fed.b.example".into(),
            Ok(records(&[("t", 1)])),
        );
        // Static answers last a day; a well-known answer its own lifetime; SRV its TTL;
        // failures an hour.
        assert_eq!(ttl("127.0.0.1:8448", &lookup).await, 24 * 3600);
        assert_eq!(ttl("a.example", &lookup).await, 7200);
        assert_eq!(ttl("b.example", &lookup).await, 300);
        assert_eq!(ttl("c.example", &lookup).await, 3600);
    }

    #[tokio::test]
    async fn ip_literals_and_explicit_ports_need_no_lookup() {
        let lookup = FakeLookup::default();
        assert_eq!(
            run("127.0.0.1", &lookup).await,
            [dest("127.0.0.1", 8448, "127.0.0.1", None)]
        );
        assert_eq!(
            run("127.0.0.1:8008", &lookup).await,
            [dest("127.0.0.1", 8008, "127.0.0.1:8008", None)]
        );
        assert_eq!(
            run("[::1]:9", &lookup).await,
            [dest("[::1]", 9, "[::1]:9", None)]
        );
        assert_eq!(
            run("example.com:1234", &lookup).await,
            [dest("example.com", 1234, "example.com:1234", None)]
        );
        assert!(lookup.asked.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn well_known_delegation() {
        let mut lookup = FakeLookup::default();
        lookup
            .well_known
            .insert("a.example".into(), "matrix.a.example:443".into());
        lookup
            .well_known
            .insert("b.example".into(), "10.0.0.1".into());
        lookup
            .well_known
            .insert("c.example".into(), "fed.c.example".into());
        lookup.srv.insert(
            "_matrix-fed._tcp.fed.c.example".into(),
            Ok(records(&[
                ("host1.c.example.", 8449),
                ("host2.c.example", 8450),
            ])),
        );
        lookup
            .well_known
            .insert("d.example".into(), "fed.d.example".into());
        lookup.srv.insert(
            "_matrix._tcp.fed.d.example".into(),
            Ok(records(&[("old.d.example", 1)])),
        );
        lookup
            .well_known
            .insert("e.example".into(), "fed.e.example".into());
        lookup
            .well_known
            .insert("f.example".into(), "not a name".into());

        assert_eq!(
            run("a.example", &lookup).await,
            [dest("matrix.a.example", 443, "matrix.a.example:443", None)]
        );
        assert_eq!(
            run("b.example", &lookup).await,
            [dest("10.0.0.1", 8448, "10.0.0.1", None)]
        );
        assert_eq!(
            run("c.example", &lookup).await,
            [
                dest(
                    "fed.c.example",
                    8449,
                    "fed.c.example",
                    Some("host1.c.example")
                ),
                dest(
                    "fed.c.example",
                    8450,
                    "fed.c.example",
                    Some("host2.c.example")
                ),
            ]
        );
        assert_eq!(
            run("d.example", &lookup).await,
            [dest(
                "fed.d.example",
                1,
                "fed.d.example",
                Some("old.d.example")
            )]
        );
        assert_eq!(
            run("e.example", &lookup).await,
            [dest("fed.e.example", 8448, "fed.e.example", None)]
        );
        // An invalid delegation is ignored: SRV and the default on the original name.
        assert_eq!(
            run("f.example", &lookup).await,
            [dest("f.example", 8448, "f.example", None)]
        );
        // The delegated name gets no second well-known lookup.
        let asked = lookup.asked.lock().unwrap();
        assert!(!asked.iter().any(|a| a == "wk fed.c.example"), "{asked:?}");
    }

    #[tokio::test]
    async fn srv_without_well_known() {
        let mut lookup = FakeLookup::default();
        lookup.srv.insert(
            "_matrix-fed._tcp.a.example".into(),
            Ok(records(&[("t.a.example", 8000)])),
        );
        lookup.srv.insert(
            "_matrix._tcp.a.example".into(),
            Ok(records(&[("legacy", 1)])),
        );
        lookup.srv.insert(
            "_matrix-fed._tcp.b.example".into(),
            Err(SrvError::Failed("SERVFAIL".into())),
        );
        lookup.srv.insert(
            "_matrix._tcp.b.example".into(),
            Ok(records(&[("legacy", 1)])),
        );
        lookup.srv.insert(
            "_matrix-fed._tcp.c.example".into(),
            Ok(records(&[(".", 0)])),
        );
        assert_eq!(
            run("a.example", &lookup).await,
            [dest("a.example", 8000, "a.example", Some("t.a.example"))]
        );
        // A failure other than "not found" skips the legacy SRV name.
        assert_eq!(
            run("b.example", &lookup).await,
            [dest("b.example", 8448, "b.example", None)]
        );
        assert_eq!(
            run("c.example", &lookup).await,
            [dest("c.example", 8448, "c.example", None)]
        );
        assert_eq!(
            run("Z.example", &lookup).await,
            [dest(
                "z.example",
                8448,
                "Z.example".to_ascii_lowercase().as_str(),
                None
            )]
        );
        let asked = lookup.asked.lock().unwrap();
        assert!(
            asked.contains(&"srv _matrix._tcp.z.example".to_owned()),
            "{asked:?}"
        );
        assert!(
            !asked.contains(&"srv _matrix._tcp.b.example".to_owned()),
            "{asked:?}"
        );
    }

    #[tokio::test]
    async fn a_few_srv_targets_by_priority() {
        let mut lookup = FakeLookup::default();
        let mut many: Vec<SrvRecord> = (0..200)
            .map(|i| SrvRecord {
                priority: 20,
                target: format!("t{i}.a.example"),
                port: 8000 + i,
            })
            .collect();
        many.push(SrvRecord {
            priority: 1,
            target: "first.a.example".into(),
            port: 443,
        });
        lookup
            .srv
            .insert("_matrix-fed._tcp.a.example".into(), Ok(many));
        let found = run("a.example", &lookup).await;
        let targets: Vec<(&str, u16)> = found
            .iter()
            .map(|d| (d.connect_host.as_deref().unwrap(), d.port))
            .collect();
        assert_eq!(
            targets,
            [
                ("first.a.example", 443),
                ("t0.a.example", 8000),
                ("t1.a.example", 8001)
            ]
        );
    }

    #[test]
    fn server_well_known_documents() {
        let parse = |body: &str| parse_server_well_known(body.as_bytes());
        assert_eq!(
            parse(r#"{"m.server":"matrix.example.com:443"}"#).as_deref(),
            Some("matrix.example.com:443")
        );
        assert_eq!(parse(r#"{"m.server":"a","other":1}"#).as_deref(), Some("a"));
        for bad in [
            "",
            "{}",
            r#"{"m.server":""}"#,
            r#"{"m.server":5}"#,
            "[]",
            "nonsense",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
