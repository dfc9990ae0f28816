//! Test harness: a real Synapse (one per test binary), a LiveKit Twirp fake, a test CA,
//! and the real `lk-jwt-service` binary, all on 127.0.0.1.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::{Value, json};

pub const KEY: &str = "devkey";
pub const SECRET: &str = "devsecret";

/// A free loopback port (bound then released; good enough on a test machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("lkjwt-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CA and a server certificate for `names` signed by it, as PEM files in `dir`.
pub struct TestPki {
    pub ca_pem: PathBuf,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
}

pub fn make_pki(dir: &Path, names: &[&str]) -> TestPki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "lk-jwt-service test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    let pki = TestPki {
        ca_pem: dir.join("ca.pem"),
        cert_pem: dir.join("server.crt"),
        key_pem: dir.join("server.key"),
    };
    std::fs::write(&pki.ca_pem, ca.pem()).unwrap();
    std::fs::write(&pki.cert_pem, cert.pem()).unwrap();
    std::fs::write(&pki.key_pem, key.serialize_pem()).unwrap();
    pki
}

/// A running Synapse with a plain-HTTP client listener and a TLS federation listener.
pub struct Synapse {
    pub client_port: u16,
    pub federation_port: u16,
    pub server_name: String,
    pub ca_pem: PathBuf,
    pub dir: PathBuf,
    child: Mutex<Child>,
}

const SHARED_SECRET: &str = "registration-secret";

impl Synapse {
    /// The shared instance of this test binary, started on first use.
    pub fn shared() -> &'static Synapse {
        static SYNAPSE: OnceLock<Synapse> = OnceLock::new();
        SYNAPSE.get_or_init(|| Synapse::start("shared", ""))
    }

    /// Another instance, named `tag`, with `extra` appended to `homeserver.yaml` (new
    /// top-level keys such as `experimental_features`, `matrix_rtc`, `turn_uris`).
    pub fn start(tag: &str, extra: &str) -> Synapse {
        let dir = std::env::temp_dir().join(format!("lkjwt-synapse-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("media")).unwrap();
        let pki = make_pki(
            &dir,
            &[
                "127.0.0.1",
                "localhost",
                "matrix.example.test",
                "moved.example.test",
            ],
        );
        let client_port = free_port();
        let federation_port = free_port();
        let server_name = format!("127.0.0.1:{federation_port}");
        let d = dir.display();
        let config = format!(
            r#"server_name: "{server_name}"
pid_file: "{d}/homeserver.pid"
listeners:
  - port: {client_port}
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: false
    resources: [{{names: [client], compress: false}}]
  - port: {federation_port}
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: true
    resources: [{{names: [federation, client], compress: false}}]
tls_certificate_path: "{cert}"
tls_private_key_path: "{key}"
database:
  name: sqlite3
  args:
    database: "{d}/homeserver.db"
media_store_path: "{d}/media"
signing_key_path: "{d}/signing.key"
registration_shared_secret: "{SHARED_SECRET}"
public_baseurl: "https://127.0.0.1:{federation_port}/"
max_event_delay_duration: 24h
rc_delayed_event_mgmt: {{per_second: 1000, burst_count: 1000}}
report_stats: false
trusted_key_servers: []
suppress_key_server_warning: true
enable_metrics: false
presence:
  enabled: false
rc_message: {{per_second: 1000, burst_count: 1000}}
rc_registration: {{per_second: 1000, burst_count: 1000}}
rc_login:
  address: {{per_second: 1000, burst_count: 1000}}
  account: {{per_second: 1000, burst_count: 1000}}
  failed_attempts: {{per_second: 1000, burst_count: 1000}}
{extra}
"#,
            cert = pki.cert_pem.display(),
            key = pki.key_pem.display(),
        );
        std::fs::write(dir.join("homeserver.yaml"), config).unwrap();
        // An ed25519 signing key in Synapse's format: "ed25519 <key id> <unpadded base64 seed>".
        let seed: Vec<u8> = (0..32u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(federation_port as u8))
            .collect();
        use base64::Engine as _;
        let seed = base64::engine::general_purpose::STANDARD_NO_PAD.encode(seed);
        std::fs::write(dir.join("signing.key"), format!("ed25519 a_test {seed}\n")).unwrap();
        let log = std::fs::File::create(dir.join("synapse.log")).unwrap();
        // Statics are never dropped, so a watchdog shell stops Synapse once this test
        // process is gone (or a dropped instance created the `stop` file).
        let script = format!(
            "python3 -m synapse.app.homeserver -c '{d}/homeserver.yaml' & child=$!; \
             while kill -0 {pid} 2>/dev/null && kill -0 $child 2>/dev/null && [ ! -e '{d}/stop' ]; do sleep 0.5; done; \
             kill $child 2>/dev/null; wait $child; rm -rf '{d}'",
            pid = std::process::id()
        );
        let child = Command::new("sh")
            .args(["-c", &script])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start sh");
        let synapse = Synapse {
            client_port,
            federation_port,
            server_name,
            ca_pem: pki.ca_pem,
            dir,
            child: Mutex::new(child),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok((200, _)) = http(client_port, "GET", "/_matrix/client/versions", None, None) {
                break;
            }
            if let Ok(Some(status)) = synapse.child.lock().unwrap().try_wait() {
                panic!(
                    "Synapse exited with {status} (is matrix-synapse installed? see \
                     scripts/install-test-deps.sh); log:\n{}",
                    synapse.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "Synapse did not start; log:\n{}",
                synapse.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        synapse
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("synapse.log")).unwrap_or_default()
    }

    /// The client API's base URL (plain HTTP).
    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Registers `localpart` (once) with the shared-secret admin API and returns
    /// `(user_id, access_token)`.
    pub fn user(&self, localpart: &str) -> (String, String) {
        static USERS: OnceLock<Mutex<std::collections::HashMap<String, (String, String)>>> =
            OnceLock::new();
        let users = USERS.get_or_init(Mutex::default);
        let key = format!("{}/{localpart}", self.client_port);
        if let Some(found) = users.lock().unwrap().get(&key) {
            return found.clone();
        }
        let (status, nonce) = http(
            self.client_port,
            "GET",
            "/_synapse/admin/v1/register",
            None,
            None,
        )
        .unwrap();
        assert_eq!(status, 200, "{nonce}");
        let nonce = nonce["nonce"].as_str().unwrap().to_owned();
        let password = "correct horse battery staple";
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(SHARED_SECRET.as_bytes()).unwrap();
        mac.update(format!("{nonce}\0{localpart}\0{password}\0notadmin").as_bytes());
        let mac: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let body = json!({"nonce": nonce, "username": localpart, "password": password, "admin": false, "mac": mac});
        let (status, registered) = http(
            self.client_port,
            "POST",
            "/_synapse/admin/v1/register",
            Some(&body),
            None,
        )
        .unwrap();
        assert_eq!(status, 200, "{registered}");
        let user_id = registered["user_id"].as_str().unwrap().to_owned();
        // Log in as a client would, for a fresh device and access token.
        let login = json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": localpart},
            "password": password,
        });
        let (status, session) = http(
            self.client_port,
            "POST",
            "/_matrix/client/v3/login",
            Some(&login),
            None,
        )
        .unwrap();
        assert_eq!(status, 200, "{session}");
        let token = session["access_token"].as_str().unwrap().to_owned();
        let entry = (user_id, token);
        users.lock().unwrap().insert(key, entry.clone());
        entry
    }

    /// A fresh OpenID token for `localpart`, as the client forwards it.
    pub fn openid_token(&self, localpart: &str) -> Value {
        let (user_id, access_token) = self.user(localpart);
        let path = format!(
            "/_matrix/client/v3/user/{}/openid/request_token",
            user_id.replace('@', "%40").replace(':', "%3A")
        );
        let (status, token) = http(
            self.client_port,
            "POST",
            &path,
            Some(&json!({})),
            Some(&access_token),
        )
        .unwrap();
        assert_eq!(status, 200, "{token}");
        assert_eq!(token["matrix_server_name"], self.server_name.as_str());
        token
    }
}

impl Drop for Synapse {
    /// Stops an instance from [`Synapse::start`] through its watchdog (bounded wait).
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("stop"), b"");
        if let Ok(mut child) = self.child.lock() {
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
        }
    }
}

impl Synapse {
    /// Creates a room as `localpart`.
    pub fn create_room(&self, localpart: &str) -> String {
        let (_, token) = self.user(localpart);
        let (status, room) = http(
            self.client_port,
            "POST",
            "/_matrix/client/v3/createRoom",
            Some(&json!({})),
            Some(&token),
        )
        .unwrap();
        assert_eq!(status, 200, "{room}");
        room["room_id"].as_str().unwrap().to_owned()
    }

    /// Schedules an empty `org.matrix.msc3401.call.member` state event (the "leave")
    /// `delay_ms` from now; returns the delay id.
    pub fn delayed_leave(
        &self,
        localpart: &str,
        room: &str,
        state_key: &str,
        delay_ms: u64,
    ) -> String {
        let (_, token) = self.user(localpart);
        let path = format!(
            "/_matrix/client/v3/rooms/{}/state/org.matrix.msc3401.call.member/{}?org.matrix.msc4140.delay={delay_ms}",
            encode(room),
            encode(state_key)
        );
        let (status, answer) = http(
            self.client_port,
            "PUT",
            &path,
            Some(&json!({})),
            Some(&token),
        )
        .unwrap();
        assert_eq!(status, 200, "{answer}");
        answer["delay_id"].as_str().expect("delay_id").to_owned()
    }

    /// Whether the leave state event has been sent.
    pub fn leave_sent(&self, localpart: &str, room: &str, state_key: &str) -> bool {
        let (_, token) = self.user(localpart);
        let path = format!(
            "/_matrix/client/v3/rooms/{}/state/org.matrix.msc3401.call.member/{}",
            encode(room),
            encode(state_key)
        );
        let (status, _) = http(self.client_port, "GET", &path, None, Some(&token)).unwrap();
        status == 200
    }
}

/// Percent-encodes a path segment (Matrix ids contain `!`, `@`, `:`).
pub fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A minimal blocking HTTP/1.1 client for Synapse's plain client listener.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
    token: Option<&str>,
) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Ok((
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    ))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// What the LiveKit fake saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRoomCall {
    pub name: String,
    pub empty_timeout: u32,
    pub max_participants: u32,
    pub departure_timeout: u32,
}

/// LiveKit's `CreateRoomRequest`, decoded with prost (independent of the service's
/// hand-written encoder).
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateRoomRequestProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(uint32, tag = "2")]
    pub empty_timeout: u32,
    #[prost(uint32, tag = "3")]
    pub max_participants: u32,
    #[prost(string, tag = "4")]
    pub node_id: String,
    #[prost(string, tag = "5")]
    pub metadata: String,
    #[prost(uint32, tag = "10")]
    pub departure_timeout: u32,
}

/// LiveKit's `RoomParticipantIdentity`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RoomParticipantIdentityProto {
    #[prost(string, tag = "1")]
    pub room: String,
    #[prost(string, tag = "2")]
    pub identity: String,
}

/// LiveKit's `Room` (the fields the fake fills in).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RoomProto {
    #[prost(string, tag = "1")]
    pub sid: String,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(uint32, tag = "3")]
    pub empty_timeout: u32,
    #[prost(int64, tag = "5")]
    pub creation_time: i64,
}

/// The service token's claims as LiveKit checks them.
#[derive(Debug, serde::Deserialize)]
pub struct ApiClaims {
    pub iss: String,
    pub exp: u64,
    pub video: Value,
}

/// A LiveKit Twirp fake: checks the route, headers and bearer JWT, decodes the real
/// protobuf request and answers with a protobuf `Room`.
pub struct LiveKitFake {
    pub addr: SocketAddr,
    /// Whether GetParticipant finds the participant.
    pub present: Arc<Mutex<bool>>,
    /// `(room, identity)` of each GetParticipant call with a valid roomAdmin token.
    pub lookups: Arc<Mutex<Vec<(String, String)>>>,
    pub calls: Arc<Mutex<Vec<CreateRoomCall>>>,
    pub rejected: Arc<Mutex<Vec<String>>>,
}

impl LiveKitFake {
    pub async fn start() -> Self {
        use axum::body::Bytes;
        use axum::http::{HeaderMap, StatusCode};
        use axum::routing::post;
        use prost::Message as _;

        let calls: Arc<Mutex<Vec<CreateRoomCall>>> = Arc::default();
        let rejected: Arc<Mutex<Vec<String>>> = Arc::default();
        let (calls2, rejected2) = (calls.clone(), rejected.clone());
        let handler = move |headers: HeaderMap, body: Bytes| {
            let calls = calls2.clone();
            let rejected = rejected2.clone();
            async move {
                let reject = |why: String| {
                    rejected.lock().unwrap().push(why.clone());
                    let body = json!({"code": "unauthenticated", "msg": why}).to_string();
                    (
                        StatusCode::UNAUTHORIZED,
                        [("content-type", "application/json")],
                        body.into_bytes(),
                    )
                };
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                if header("content-type") != "application/protobuf" {
                    return reject(format!("content-type {:?}", header("content-type")));
                }
                let Some(jwt) = header("authorization")
                    .strip_prefix("Bearer ")
                    .map(str::to_owned)
                else {
                    return reject("no bearer token".into());
                };
                let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
                validation.set_issuer(&[KEY]);
                validation.leeway = 60;
                let claims = match jsonwebtoken::decode::<ApiClaims>(
                    &jwt,
                    &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
                    &validation,
                ) {
                    Ok(data) => data.claims,
                    Err(e) => return reject(format!("bad token: {e}")),
                };
                if claims.video["roomCreate"] != json!(true) {
                    return reject(format!("no roomCreate grant: {}", claims.video));
                }
                let request = match CreateRoomRequestProto::decode(body) {
                    Ok(request) => request,
                    Err(e) => return reject(format!("bad protobuf: {e}")),
                };
                calls.lock().unwrap().push(CreateRoomCall {
                    name: request.name.clone(),
                    empty_timeout: request.empty_timeout,
                    max_participants: request.max_participants,
                    departure_timeout: request.departure_timeout,
                });
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64;
                let room = RoomProto {
                    sid: "RM_test".into(),
                    name: request.name,
                    empty_timeout: request.empty_timeout,
                    creation_time: now,
                };
                (
                    StatusCode::OK,
                    [("content-type", "application/protobuf")],
                    room.encode_to_vec(),
                )
            }
        };
        let present: Arc<Mutex<bool>> = Arc::default();
        let lookups: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let (present2, lookups2) = (present.clone(), lookups.clone());
        let get_participant = move |headers: HeaderMap, body: Bytes| {
            let present = present2.clone();
            let lookups = lookups2.clone();
            async move {
                let jwt = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or("")
                    .to_owned();
                let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
                validation.set_issuer(&[KEY]);
                let claims = jsonwebtoken::decode::<ApiClaims>(
                    &jwt,
                    &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
                    &validation,
                );
                let request = RoomParticipantIdentityProto::decode(body);
                let (Ok(claims), Ok(request)) = (claims, request) else {
                    let body = json!({"code": "unauthenticated", "msg": "bad request"}).to_string();
                    return (StatusCode::UNAUTHORIZED, body.into_bytes());
                };
                if claims.claims.video["roomAdmin"] != json!(true)
                    || claims.claims.video["room"] != json!(request.room)
                {
                    let body =
                        json!({"code": "permission_denied", "msg": "no roomAdmin"}).to_string();
                    return (StatusCode::FORBIDDEN, body.into_bytes());
                }
                lookups
                    .lock()
                    .unwrap()
                    .push((request.room, request.identity));
                if *present.lock().unwrap() {
                    (StatusCode::OK, Vec::new())
                } else {
                    let body =
                        json!({"code": "not_found", "msg": "participant not found"}).to_string();
                    (StatusCode::NOT_FOUND, body.into_bytes())
                }
            }
        };
        // LiveKit's pre-join check: `GET /rtc/validate?access_token=JWT` answers 200
        // "success" for a token signed with one of its keys, 401 otherwise.
        let validate = |axum::extract::Query(query): axum::extract::Query<
            std::collections::HashMap<String, String>,
        >| async move {
            let token = query.get("access_token").cloned().unwrap_or_default();
            let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
            validation.set_issuer(&[KEY]);
            validation.validate_aud = false;
            match jsonwebtoken::decode::<ApiClaims>(
                &token,
                &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
                &validation,
            ) {
                Ok(_) => (StatusCode::OK, "success".to_owned()),
                Err(e) => (StatusCode::UNAUTHORIZED, format!("invalid token: {e}")),
            }
        };
        // LiveKit's signalling socket: gorilla/websocket's checks and messages, then 101
        // with the RFC 6455 accept value (the connection is not used further).
        let rtc = |headers: HeaderMap,
                   axum::extract::Query(query): axum::extract::Query<
            std::collections::HashMap<String, String>,
        >| async move {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_ascii_lowercase()
            };
            if !header("connection")
                .split(',')
                .any(|t| t.trim() == "upgrade")
            {
                return (
                    StatusCode::BAD_REQUEST,
                    [("sec-websocket-accept", String::new())],
                    "websocket: the client is not using the websocket protocol: 'upgrade' token not found in 'Connection' header".to_owned(),
                );
            }
            let key = headers
                .get("sec-websocket-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let token = query.get("access_token").cloned().unwrap_or_default();
            let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
            validation.set_issuer(&[KEY]);
            validation.validate_aud = false;
            if header("upgrade") != "websocket" || key.is_empty() {
                return (
                    StatusCode::BAD_REQUEST,
                    [("sec-websocket-accept", String::new())],
                    "websocket: not a websocket handshake".to_owned(),
                );
            }
            if let Err(e) = jsonwebtoken::decode::<ApiClaims>(
                &token,
                &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
                &validation,
            ) {
                return (
                    StatusCode::UNAUTHORIZED,
                    [("sec-websocket-accept", String::new())],
                    format!("invalid token: {e}"),
                );
            }
            use base64::Engine as _;
            use sha1::Digest as _;
            let accept = base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(
                format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11"),
            ));
            (
                StatusCode::SWITCHING_PROTOCOLS,
                [("sec-websocket-accept", accept)],
                String::new(),
            )
        };
        let rtc = move |headers, query| async move {
            let (status, accept, body) = rtc(headers, query).await;
            let mut response = axum::response::IntoResponse::into_response((status, accept, body));
            if status == StatusCode::SWITCHING_PROTOCOLS {
                let headers = response.headers_mut();
                headers.insert("upgrade", axum::http::HeaderValue::from_static("websocket"));
                headers.insert(
                    "connection",
                    axum::http::HeaderValue::from_static("Upgrade"),
                );
            }
            response
        };
        let app = axum::Router::new()
            .route("/rtc", axum::routing::get(rtc))
            .route("/rtc/validate", axum::routing::get(validate))
            .route("/twirp/livekit.RoomService/CreateRoom", post(handler))
            .route(
                "/twirp/livekit.RoomService/GetParticipant",
                post(get_participant),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            present,
            lookups,
            calls,
            rejected,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    pub fn calls(&self) -> Vec<CreateRoomCall> {
        self.calls.lock().unwrap().clone()
    }
}

/// The real binary, killed on drop.
pub struct Service {
    pub port: u16,
    child: Child,
    log: PathBuf,
    _dir: TempDir,
}

impl Service {
    /// Stops the process abruptly (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (through `kill(1)`) and waits up to `limit` for the exit status.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(sent, "kill -TERM failed");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Starts the binary with `env` (on top of a cleared `LIVEKIT_*` environment) and
    /// waits for `/healthz`.
    pub async fn start(env: &[(&str, String)]) -> Self {
        let dir = TempDir::new("service");
        let port = free_port();
        let log = dir.path("service.log");
        let file = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_lk-jwt-service"));
        // Only the test's own settings, and no proxy between loopback peers.
        for (name, _) in std::env::vars() {
            if name.starts_with("LIVEKIT_") || name.to_ascii_lowercase().ends_with("_proxy") {
                command.env_remove(name);
            }
        }
        command
            .env("LIVEKIT_JWT_BIND", format!("127.0.0.1:{port}"))
            .env("LIVEKIT_LOG_LEVEL", "debug")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        let child = command.spawn().expect("cannot start lk-jwt-service");
        let mut service = Self {
            port,
            child,
            log,
            _dir: dir,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let url = format!("http://127.0.0.1:{port}/healthz");
            if let Ok(r) = client.get(&url).send().await
                && r.status() == 200
            {
                return service;
            }
            if let Ok(Some(status)) = service.child.try_wait() {
                panic!("lk-jwt-service exited with {status}: {}", service.log());
            }
            assert!(
                Instant::now() < deadline,
                "lk-jwt-service did not start: {}",
                service.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// POSTs `body` to `path`; returns status and body text.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, String) {
        let response = reqwest::Client::new()
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `redis-server` on a free loopback port, stopped on drop.
pub struct Redis {
    pub port: u16,
    child: Child,
}

impl Redis {
    pub fn start() -> Self {
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start redis-server (scripts/install-test-deps.sh installs it)");
        let redis = Self { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `HGETALL lk-jwt:jobs`.
    pub async fn jobs(&self) -> Vec<(String, String)> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("HGETALL")
            .arg("lk-jwt:jobs")
            .query_async(&mut connection)
            .await
            .unwrap()
    }

    /// `HSET lk-jwt:jobs field value`.
    pub async fn put_job(&self, field: &str, value: &str) {
        let client = redis::Client::open(self.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("HSET")
            .arg("lk-jwt:jobs")
            .arg(field)
            .arg(value)
            .query_async::<()>(&mut connection)
            .await
            .unwrap();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A LiveKit webhook as the SFU signs it: raw JWT in `Authorization`, body hash in the
/// `sha256` claim.
pub async fn send_webhook(
    service: &Service,
    event: &str,
    room: &str,
    identity: &str,
    reason: &str,
) -> u16 {
    use base64::Engine as _;
    use sha2::Digest as _;
    let body = json!({
        "event": event,
        "room": {"sid": "RM_test", "name": room},
        "participant": {"sid": "PA_test", "identity": identity, "state": "ACTIVE", "disconnectReason": reason},
        "id": "EV_test",
        "createdAt": "1700000000",
    })
    .to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": KEY, "nbf": now, "exp": now + 300,
        "sha256": base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body.as_bytes())),
    });
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    reqwest::Client::new()
        .post(service.url("/sfu_webhook"))
        .header("authorization", token)
        .header("content-type", "application/webhook+json")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Polls `check` every 100 ms until it is true or `limit` passes.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends SIGTERM to `child` (through `kill(1)`), waits up to 10 s, then SIGKILL.
fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits until something accepts TCP connections on `127.0.0.1:port`.
fn wait_for_tcp(port: u16, what: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The variables of `docker/nginx/element-call.conf.template`, in the order the docs list.
pub const NGINX_VARIABLES: [&str; 9] = [
    "LISTEN",
    "SERVER_NAME",
    "MATRIX_DOMAIN",
    "RTC_DOMAIN",
    "TLS_CERT",
    "TLS_KEY",
    "HOMESERVER_UPSTREAM",
    "JWT_UPSTREAM",
    "LIVEKIT_UPSTREAM",
];

/// Debian's nginx running the shipped `docker/nginx/element-call.conf.template`,
/// rendered with `envsubst` as the docs say, on `127.0.0.1:port`; stopped on drop.
pub struct Nginx {
    pub port: u16,
    child: Child,
    dir: TempDir,
}

impl Nginx {
    /// Renders the template with `values` (every name of [`NGINX_VARIABLES`] but
    /// `LISTEN`, which is `127.0.0.1:port`), passes the text through
    /// `edit` (to reproduce a deployment mistake) and starts nginx.
    pub fn start(
        port: u16,
        values: &[(&str, String)],
        edit: impl FnOnce(String) -> String,
    ) -> Self {
        let dir = TempDir::new("nginx");
        let template = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docker/nginx/element-call.conf.template"
        );
        let list: String = NGINX_VARIABLES
            .iter()
            .map(|v| format!("${{{v}}} "))
            .collect();
        let rendered = Command::new("envsubst")
            .arg(list)
            .stdin(std::fs::File::open(template).expect("the nginx template"))
            .env("LISTEN", format!("127.0.0.1:{port}"))
            .envs(values.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("envsubst (gettext-base) is missing");
        assert!(rendered.status.success(), "envsubst failed");
        let site = edit(String::from_utf8(rendered.stdout).unwrap());
        std::fs::write(dir.path("element-call.conf"), site).unwrap();
        let d = dir.0.display();
        for sub in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            let path = dir.path(sub);
            std::fs::create_dir_all(&path).unwrap();
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let main = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/client_body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  \
             scgi_temp_path {d}/scgi;\n  include {d}/element-call.conf;\n}}\n"
        );
        std::fs::write(dir.path("nginx.conf"), main).unwrap();
        let output = std::fs::File::create(dir.path("output.log")).unwrap();
        let mut child = Command::new("nginx")
            .args(["-p", &d.to_string(), "-e", &format!("{d}/error.log"), "-c"])
            .arg(dir.path("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .expect("cannot start nginx (scripts/install-test-deps.sh installs it)");
        wait_for_tcp(port, "nginx", &mut child, &dir.path("error.log"));
        Self { port, child, dir }
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// Our turn-server binary on `127.0.0.1` (UDP and TCP, TLS when given a certificate)
/// with a TURN REST secret; stopped on drop.
pub struct TurnServer {
    pub port: u16,
    /// The TLS listener's port (0 without a certificate).
    pub tls_port: u16,
    child: Child,
    _dir: TempDir,
}

impl TurnServer {
    /// The workspace's `turn-server` binary, built beside this crate's binaries (cargo
    /// builds it with `--workspace`; otherwise it is built here once).
    fn binary() -> PathBuf {
        let path = Path::new(env!("CARGO_BIN_EXE_lk-jwt-service")).with_file_name("turn-server");
        static BUILT: OnceLock<()> = OnceLock::new();
        BUILT.get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "turn-server",
                    "--bin",
                    "turn-server",
                ])
                .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
                .status()
                .expect("cannot run cargo to build turn-server");
            assert!(status.success(), "cargo build -p turn-server failed");
        });
        path
    }

    pub fn start(secret: &str) -> Self {
        Self::start_with(secret, None)
    }

    /// With `tls` = `(certificate chain, key)` PEM files, TLS on its own port too.
    pub fn start_with(secret: &str, tls: Option<(&Path, &Path)>) -> Self {
        let dir = TempDir::new("turn");
        let port = free_port();
        let (tls_port, tls_lines) = match tls {
            Some((cert, key)) => {
                let tls_port = free_port();
                (
                    tls_port,
                    format!(
                        "tls-listening-port={tls_port}\ncert={}\npkey={}\n",
                        cert.display(),
                        key.display()
                    ),
                )
            }
            None => (0, "no-tls\n".to_owned()),
        };
        let config = format!(
            "listening-ip=127.0.0.1\nrelay-ip=127.0.0.1\nlistening-port={port}\n\
             min-port={}\nmax-port={}\nrealm=turn.example.test\nuse-auth-secret\n\
             static-auth-secret={secret}\n{tls_lines}fingerprint\nlog-file=stdout\n",
            port.saturating_add(1),
            port.saturating_add(40)
        );
        std::fs::write(dir.path("turnserver.conf"), config).unwrap();
        let log = dir.path("turn.log");
        let file = std::fs::File::create(&log).unwrap();
        let mut child = Command::new(Self::binary())
            .arg("-c")
            .arg(dir.path("turnserver.conf"))
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("cannot start turn-server");
        wait_for_tcp(port, "turn-server", &mut child, &log);
        if tls_port != 0 {
            wait_for_tcp(tls_port, "turn-server (TLS)", &mut child, &log);
        }
        Self {
            port,
            tls_port,
            child,
            _dir: dir,
        }
    }
}

impl Drop for TurnServer {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// A fenced block of `docs/element-call.md`: the first one after the line
/// `<!-- tested: NAME -->`, with each `(example, actual)` replaced, so tests run the
/// configuration exactly as the docs show it.
pub fn docs_block(name: &str, replacements: &[(&str, String)]) -> String {
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/element-call.md"
    ))
    .expect("docs/element-call.md");
    let marker = format!("<!-- tested: {name} -->");
    let after = docs
        .split_once(&marker)
        .unwrap_or_else(|| panic!("docs/element-call.md has no {marker}"))
        .1;
    let start = after.find("```").expect("a fenced block after the marker");
    let body = &after[start..];
    let body = &body[body.find('\n').expect("fence line") + 1..];
    let mut block = body[..body.find("```").expect("closing fence")].to_owned();
    for (example, actual) in replacements {
        assert!(
            block.contains(example),
            "{name}: {example:?} is not in the docs block"
        );
        block = block.replace(example, actual);
    }
    block
}
