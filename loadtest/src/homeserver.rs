//! A fake Matrix homeserver for the `jwt` mode: HTTPS on loopback with a self-signed
//! certificate made at start, answering only the federation OpenID userinfo call
//! (`GET /_matrix/federation/v1/openid/userinfo?access_token=…`) that lk-jwt-service
//! makes for every token it verifies.
//!
//! Its server name is its own `127.0.0.1:PORT`: an IP literal with a port needs no
//! well-known or SRV look-up, so the service connects straight to it. The service must
//! skip certificate verification for Matrix traffic (`LIVEKIT_INSECURE_SKIP_VERIFY_TLS`).
//!
//! Tokens are `loadtest-token-<user>-<serial>`; the answer is `@loadtest-<user>:<server
//! name>`. Anything else gets Synapse's 401 `M_UNKNOWN_TOKEN`, so a service that mangles
//! the token shows up as errors instead of as speed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

/// The prefix of every access token the fake homeserver accepts.
pub const TOKEN_PREFIX: &str = "loadtest-token-";
const USERINFO_PATH: &str = "/_matrix/federation/v1/openid/userinfo";

/// A running fake homeserver; stopped when dropped.
pub struct FakeHomeserver {
    /// Where it listens (always loopback).
    pub addr: SocketAddr,
    /// The Matrix server name clients put in `matrix_server_name`.
    pub server_name: String,
    requests: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHomeserver {
    /// Starts on an ephemeral loopback port, on its own thread and runtime so its work
    /// never delays loadtest's clients.
    pub fn start() -> Result<Self, String> {
        let acceptor = TlsAcceptor::from(Arc::new(tls_config()?));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("fake homeserver: bind: {e}"))?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| format!("fake homeserver: {e}"))?;
        let addr = std_listener
            .local_addr()
            .map_err(|e| format!("fake homeserver: {e}"))?;
        let server_name = addr.to_string();
        let requests = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = oneshot::channel();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("fake homeserver runtime: {e}"))?;
        let state = Arc::new(State {
            server_name: server_name.clone(),
            requests: requests.clone(),
            connections: connections.clone(),
        });
        let thread = std::thread::Builder::new()
            .name("fake-homeserver".into())
            .spawn(move || {
                rt.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(std_listener) else {
                        return;
                    };
                    tokio::select! {
                        () = accept_loop(listener, acceptor, state) => {}
                        _ = stopped => {}
                    }
                });
            })
            .map_err(|e| format!("fake homeserver thread: {e}"))?;
        Ok(Self {
            addr,
            server_name,
            requests,
            connections,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Userinfo requests answered so far (good and bad tokens).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// TCP connections accepted so far: with keep-alive, a pooling client needs about as
    /// many as it has requests in flight, however many requests it sends.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// The access token of request `serial` of user `user`.
    pub fn token(user: usize, serial: u64) -> String {
        format!("{TOKEN_PREFIX}{user}-{serial}")
    }

    /// The Matrix user id the fake homeserver returns for `user`'s tokens.
    pub fn user_id(&self, user: usize) -> String {
        format!("@loadtest-{user}:{}", self.server_name)
    }
}

impl Drop for FakeHomeserver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct State {
    server_name: String,
    requests: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
}

/// A self-signed certificate for 127.0.0.1, made fresh for each run.
fn tls_config() -> Result<rustls::ServerConfig, String> {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()])
        .map_err(|e| format!("fake homeserver certificate: {e}"))?;
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|b| b.with_no_client_auth().with_single_cert(vec![cert], key))
    .map_err(|e| format!("fake homeserver TLS: {e}"))
}

/// Accepts until the runtime stops; each connection is served with keep-alive, as a
/// pooled client expects.
async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        state.connections.fetch_add(1, Ordering::Relaxed);
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&state, &req)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

fn answer(state: &State, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() != USERINFO_PATH {
        return json(
            StatusCode::NOT_FOUND,
            r#"{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}"#.into(),
        );
    }
    state.requests.fetch_add(1, Ordering::Relaxed);
    let user = req.uri().query().and_then(user_of);
    match user {
        Some(user) => json(
            StatusCode::OK,
            format!(r#"{{"sub":"@loadtest-{user}:{}"}}"#, state.server_name),
        ),
        None => json(
            StatusCode::UNAUTHORIZED,
            r#"{"errcode":"M_UNKNOWN_TOKEN","error":"Access token unknown or expired"}"#.into(),
        ),
    }
}

/// The user number in a `loadtest-token-<user>-<serial>` access token of `query`.
fn user_of(query: &str) -> Option<usize> {
    let token = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("access_token="))?;
    let (user, serial) = token.strip_prefix(TOKEN_PREFIX)?.split_once('-')?;
    serial.parse::<u64>().ok()?;
    user.parse().ok()
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loadtest_tokens_name_a_user() {
        let token = FakeHomeserver::token(7, 42);
        assert_eq!(user_of(&format!("access_token={token}")), Some(7));
        assert_eq!(user_of(&format!("x=1&access_token={token}")), Some(7));
        assert_eq!(user_of("access_token=loadtest-token-7"), None);
        assert_eq!(user_of("access_token=loadtest-token-x-1"), None);
        assert_eq!(user_of("access_token=other-7-1"), None);
        assert_eq!(user_of("token=loadtest-token-7-1"), None);
    }
}
