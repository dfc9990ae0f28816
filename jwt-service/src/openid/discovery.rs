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

/// The network look-ups discovery needs.
pub trait Lookup: Send + Sync {
    /// SRV records of `name` as `(target, port)`, in answer order (priority and weight
    /// are ignored, as upstream).
    fn srv<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<(String, u16)>, SrvError>>;
    /// `m.server` of `https://<server>/.well-known/matrix/server`, `None` on any failure.
    fn well_known<'a>(&'a self, server: &'a str) -> BoxFuture<'a, Option<String>>;
}

/// The destinations for `server`, to be tried in order.
pub async fn discover(
    server: &ServerName,
    original: &str,
    lookup: &dyn Lookup,
) -> Vec<Destination> {
    let name = match (&server.host, direct(server, original)) {
        (_, Some(direct)) => return vec![direct],
        (Host::Name(name), None) => name,
        // direct() answers every IP literal; an empty list just fails the request.
        (Host::Ip(_), None) => return Vec::new(),
    };
    if let Some(delegated_text) = lookup.well_known(name).await {
        match ServerName::parse(&delegated_text) {
            Ok(delegated) => {
                if let Some(direct) = direct(&delegated, &delegated_text) {
                    return vec![direct];
                }
                if let Host::Name(delegated_name) = &delegated.host {
                    return srv_or_default(delegated_name, lookup).await;
                }
            }
            Err(e) => tracing::debug!(server = %name, "ignoring well-known delegation: {e}"),
        }
    }
    srv_or_default(name, lookup).await
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

async fn srv_or_default(name: &str, lookup: &dyn Lookup) -> Vec<Destination> {
    let records = match lookup.srv(&format!("_matrix-fed._tcp.{name}")).await {
        Ok(records) => records,
        Err(SrvError::NotFound) => lookup
            .srv(&format!("_matrix._tcp.{name}"))
            .await
            .unwrap_or_default(),
        Err(SrvError::Failed(e)) => {
            tracing::debug!(server = %name, "{e}; falling back to port {DEFAULT_PORT}");
            Vec::new()
        }
    };
    let destinations: Vec<Destination> = records
        .into_iter()
        .filter_map(|(target, port)| {
            let target = target.trim_end_matches('.');
            // A target of "." means "no service here" (RFC 2782).
            (!target.is_empty()).then(|| Destination {
                tls_host: name.to_owned(),
                port,
                host_header: name.to_owned(),
                connect_host: Some(target.to_ascii_lowercase()),
            })
        })
        .collect();
    if destinations.is_empty() {
        vec![Destination {
            tls_host: name.to_owned(),
            port: DEFAULT_PORT,
            host_header: name.to_owned(),
            connect_host: None,
        }]
    } else {
        destinations
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    #[derive(Default)]
    struct FakeLookup {
        srv: HashMap<String, Result<Vec<(String, u16)>, SrvError>>,
        well_known: HashMap<String, String>,
        asked: Mutex<Vec<String>>,
    }

    impl Lookup for FakeLookup {
        fn srv<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<(String, u16)>, SrvError>> {
            self.asked.lock().unwrap().push(format!("srv {name}"));
            let answer = self
                .srv
                .get(name)
                .cloned()
                .unwrap_or(Err(SrvError::NotFound));
            Box::pin(async move { answer })
        }

        fn well_known<'a>(&'a self, server: &'a str) -> BoxFuture<'a, Option<String>> {
            self.asked.lock().unwrap().push(format!("wk {server}"));
            let answer = self.well_known.get(server).cloned();
            Box::pin(async move { answer })
        }
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
        discover(&ServerName::parse(name).unwrap(), name, lookup).await
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
            Ok(vec![
                ("host1.c.example.".into(), 8449),
                ("host2.c.example".into(), 8450),
            ]),
        );
        lookup
            .well_known
            .insert("d.example".into(), "fed.d.example".into());
        lookup.srv.insert(
            "_matrix._tcp.fed.d.example".into(),
            Ok(vec![("old.d.example".into(), 1)]),
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
            Ok(vec![("t.a.example".into(), 8000)]),
        );
        lookup.srv.insert(
            "_matrix._tcp.a.example".into(),
            Ok(vec![("legacy".into(), 1)]),
        );
        lookup.srv.insert(
            "_matrix-fed._tcp.b.example".into(),
            Err(SrvError::Failed("SERVFAIL".into())),
        );
        lookup.srv.insert(
            "_matrix._tcp.b.example".into(),
            Ok(vec![("legacy".into(), 1)]),
        );
        lookup.srv.insert(
            "_matrix-fed._tcp.c.example".into(),
            Ok(vec![(".".into(), 0)]),
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
}
