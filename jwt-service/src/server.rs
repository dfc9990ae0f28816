//! Wiring: configuration → services → router → listener, with graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;

use crate::appservice::AppService;
use crate::appservice::homeserver::HttpAppServiceApi;
use crate::config::{BindAddress, Config};
use crate::delegation::cs_api::CsApiResolver;
use crate::delegation::homeserver::HomeserverClient;
use crate::delegation::job::JobDeps;
use crate::delegation::manager::Manager;
use crate::delegation::store::{self, NoStore, RedisStore};
use crate::livekit::token::TokenSigner;
use crate::livekit::twirp::{RoomService, TwirpError};
use crate::membership::Membership;
use crate::membership::book::{Book, MemoryBook, RedisBook};
use crate::metrics::Metrics;
use crate::openid::discovery::Lookup;
use crate::openid::net::{self, MatrixClient, MatrixTls};
use crate::openid::reach::{PerReach, ReachPolicy};
use crate::openid::token_cache::CachingVerifier;
use crate::openid::userinfo::FederationVerifier;
use crate::rate_limit::RateLimiter;
use crate::routes;
use crate::routes::transports::TransportsDocument;
use crate::state::{AppState, Services};

/// Bound on handling one request (upstream has none); well above the outgoing timeouts.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A start-up failure, with the cause.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(String);

/// Builds the services from the configuration (connects to Redis when configured).
pub async fn services(config: &Config) -> Result<AppState, StartError> {
    let extra_roots_pem = match &config.matrix_ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            StartError(format!(
                "LIVEKIT_MATRIX_CA_FILE: cannot read {}: {e}",
                path.display()
            ))
        })?),
        None => None,
    };
    let tls = MatrixTls {
        skip_verify: config.insecure_skip_verify_tls,
        extra_roots_pem,
    };
    // One client per purpose and reach: federation (no redirects; SRV targets pinned in
    // its resolver) and well-known / client-server API traffic (its own resolver, so
    // federation's SRV targets never redirect these requests).
    let policy = Arc::new(ReachPolicy::from_config(config));
    let tls = &tls;
    let client = |redirects| {
        move |deny| MatrixClient::new(tls, deny, redirects).map_err(|e| StartError(e.to_string()))
    };
    let federation = PerReach::build(policy.clone(), client(0))?;
    let web = PerReach::build(policy, client(5))?;
    let dns = net::system_dns();
    let lookups = web.map(|http| -> Arc<dyn Lookup> {
        Arc::new(net::NetworkLookup::new(dns.clone(), http.clone()))
    });
    let verifier =
        FederationVerifier::new(federation, lookups, config.federation_url_overrides.clone());

    // LiveKit traffic keeps full TLS verification whatever the Matrix setting.
    let livekit_http = reqwest::Client::builder()
        .connect_timeout(net::CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| StartError(format!("cannot build the LiveKit HTTP client: {e}")))?;
    let signer = TokenSigner::new(&config.key, &config.secret);
    let rooms = RoomService::new(livekit_http, config.livekit_api_url.clone(), signer.clone());

    let cs_api = Arc::new(CsApiResolver::new(config.cs_api_url_overrides.clone(), web));
    let app_service = config.app_service.as_ref().map(|app| AppService {
        server_name: app.server_name.clone(),
        hs_token: app.hs_token.clone(),
        api: Arc::new(HttpAppServiceApi::new(
            cs_api.clone(),
            app.server_name.clone(),
            app.as_token.clone(),
        )),
        require_membership: app.require_membership,
    });
    let homeserver = HomeserverClient::new(cs_api.clone());
    let deps = Arc::new(JobDeps {
        homeserver: Arc::new(homeserver),
        participants: Arc::new(rooms.clone()),
        sanity_interval: config.sanity_check_interval,
    });
    let replica = replica_id(config.bind.port());
    let redis = match &config.redis_url {
        Some(url) => Some(
            store::client(url, config.redis_password.as_ref())
                .map_err(|e| StartError(format!("LIVEKIT_REDIS_URL: {e}")))?,
        ),
        None => None,
    };
    let delegation = match &redis {
        Some(client) => {
            let store = RedisStore::connect(client, replica.clone())
                .await
                .map_err(|e| StartError(format!("LIVEKIT_REDIS_URL: {e}")))?;
            let forwarded = store.subscribe();
            let delegation = Manager::new(Arc::new(store), deps);
            tokio::spawn(delegation.clone().maintain());
            tokio::spawn(delegation.clone().deliver(forwarded));
            tracing::info!(%replica, "delegated jobs are shared in Redis");
            delegation
        }
        None => Manager::new(Arc::new(NoStore), deps),
    };
    let membership = match (&config.app_service, &app_service) {
        (Some(settings), Some(app)) => match settings.membership_check_interval {
            Some(interval) => {
                let book: Arc<dyn Book> = match &redis {
                    Some(client) => Arc::new(RedisBook::new(
                        client.get_connection_manager().await.map_err(|e| {
                            StartError(format!("LIVEKIT_REDIS_URL: cannot connect: {e}"))
                        })?,
                        replica.clone(),
                    )),
                    None => Arc::new(MemoryBook::default()),
                };
                let membership = Arc::new(Membership::new(
                    book,
                    app.api.clone(),
                    Arc::new(rooms.clone()),
                    app.server_name.clone(),
                    interval,
                ));
                tokio::spawn(membership.clone().run());
                tracing::info!(?interval, "kick on leave is on");
                Some(membership)
            }
            None => None,
        },
        _ => None,
    };

    Ok(AppState(Arc::new(Services {
        livekit_url: config.livekit_url.clone(),
        full_access: config.full_access.clone(),
        can_update_own_metadata: config.can_update_own_metadata,
        restricted_can_publish: config.restricted_can_publish,
        signer,
        verifier: match config.openid_cache {
            Some(cap) => Arc::new(CachingVerifier::new(Arc::new(verifier), cap)),
            None => Arc::new(verifier),
        },
        rooms: Arc::new(rooms),
        rate_limit: config.rate_limit_per_minute.map(RateLimiter::new),
        trusted_proxies: config.trusted_proxies.clone(),
        delegation,
        cs_api,
        api_key: config.key.clone(),
        api_secret: config.secret.clone(),
        metrics: Metrics::default(),
        metrics_enabled: config.metrics,
        app_service,
        membership,
        rtc_transports: config
            .rtc_transports_service_url
            .as_ref()
            .map(TransportsDocument::new),
    })))
}

/// This replica's name in the job leases: host name and listening port, unique among
/// the live replicas (two cannot listen on one port of one host) and the same after a
/// restart, so a replica that restarts at once takes its jobs back without waiting for
/// its old leases to run out.
fn replica_id(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{port}")
}

/// A separate SFU client for the start-up probe (the state's is behind a trait object).
fn rooms_for_probe(config: &Config) -> Result<RoomService, StartError> {
    let http = reqwest::Client::builder()
        .connect_timeout(net::CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| StartError(format!("cannot build the LiveKit HTTP client: {e}")))?;
    Ok(RoomService::new(
        http,
        config.livekit_api_url.clone(),
        TokenSigner::new(&config.key, &config.secret),
    ))
}

/// Asks the SFU about a participant that does not exist, so a wrong URL or API key shows
/// in the log at start instead of at the first call ("Unable to create room on SFU").
pub async fn probe_sfu(rooms: RoomService) {
    let url = rooms.method_url("GetParticipant");
    match rooms
        .get_participant("lk-jwt-service-probe", "lk-jwt-service-probe")
        .await
    {
        Ok(()) => tracing::info!(%url, "SFU API reachable"),
        Err(e) if e.is_not_found() => tracing::info!(%url, "SFU API reachable"),
        Err(TwirpError::Status {
            status: 401 | 403, ..
        }) => {
            tracing::error!(%url, "SFU API refused our key/secret: check LIVEKIT_KEY and LIVEKIT_SECRET");
        }
        Err(e) => tracing::warn!(%url, "SFU API not usable yet: {e}"),
    }
}

/// Binds the configured address; `:port` tries dual-stack `[::]` first, then `0.0.0.0`.
pub async fn bind(bind: &BindAddress) -> std::io::Result<TcpListener> {
    match bind {
        BindAddress::AllInterfaces(port) => {
            match TcpListener::bind(SocketAddr::from(([0u16; 8], *port))).await {
                Ok(listener) => Ok(listener),
                Err(_) => TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], *port))).await,
            }
        }
        BindAddress::Socket(addr) => TcpListener::bind(addr).await,
        BindAddress::Host(host, port) => TcpListener::bind((host.as_str(), *port)).await,
    }
}

/// Runs the service until SIGINT or SIGTERM, then drains in-flight requests.
pub async fn run(config: Config) -> Result<(), StartError> {
    let state = services(&config).await?;
    let restored = state.0.delegation.restore().await;
    if restored > 0 {
        tracing::info!(restored, "resumed delegated leave jobs");
    }
    let delegation = state.0.delegation.clone();
    tokio::spawn(probe_sfu(rooms_for_probe(&config)?));
    let listener = bind(&config.bind)
        .await
        .map_err(|e| StartError(format!("cannot listen on {:?}: {e}", config.bind)))?;
    let local = listener
        .local_addr()
        .map_err(|e| StartError(format!("listener has no address: {e}")))?;
    tracing::info!(
        livekit_url = %config.livekit_url,
        bind = %local,
        full_access = ?config.full_access,
        app_service = config.app_service.as_ref().map(|a| a.server_name.as_str()),
        "lk-jwt-service listening"
    );
    if config.insecure_skip_verify_tls {
        tracing::warn!(
            "TLS verification of Matrix traffic is OFF (LIVEKIT_INSECURE_SKIP_VERIFY_TLS)"
        );
    }
    let app = routes::app(state).layer(TimeoutLayer::with_status_code(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        REQUEST_TIMEOUT,
    ));
    crate::serve::serve(listener, app, crate::serve::HEADER_READ_TIMEOUT, {
        let delegation = delegation.clone();
        async move {
            shutdown_signal().await;
            // Requests still draining get 503 instead of starting jobs.
            delegation.stop_accepting();
        }
    })
    .await;
    // Jobs stay persisted (with Redis) and resume on the next start.
    delegation.shutdown().await;
    tracing::info!("shut down");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down, draining requests");
}
