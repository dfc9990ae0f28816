//! Configuration from the environment, with upstream lk-jwt-service's names, parsing
//! and precedence rules (spec §2), plus a few variables of our own (documented on
//! [`Config`]).
//!
//! Everything is read through a lookup function so the rules can be unit-tested without
//! touching the process environment. Every error names the variable at fault.

mod app_service;
mod outgoing;
mod rtc_transports;

pub use app_service::AppServiceConfig;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rtc_auth::ip_range::IpRangeSet;
use rtc_auth::secret::{Secret, trim};
use url::Url;

/// The magic value that turns off TLS verification of Matrix traffic; anything else
/// (including `true`) leaves verification on, as upstream.
pub const INSECURE_SKIP_VERIFY_MAGIC: &str = "YES_I_KNOW_WHAT_I_AM_DOING";

/// How long a verified OpenID token is reused by default: long enough for a client's
/// retries and its `/delegate_delayed_leave` after `/get_token`, short enough that a
/// token the homeserver stopped accepting is refused again within a minute.
pub const DEFAULT_OPENID_CACHE: Duration = Duration::from_secs(60);
/// Upper bound of `LIVEKIT_OPENID_CACHE_SECONDS`: Synapse's OpenID tokens live an hour.
pub const MAX_OPENID_CACHE: Duration = Duration::from_secs(3600);

/// Upstream's default listen address.
pub const DEFAULT_BIND: &str = ":8080";

/// Shortest API secret taken without a warning: LiveKit's own minimum (32 characters),
/// and the 256 bits an HS256 key should carry.
pub const MIN_SECRET_BYTES: usize = 32;

/// The fully parsed configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `LIVEKIT_URL`: returned verbatim to clients.
    pub livekit_url: String,
    /// Base URL of the SFU's Twirp API: `LIVEKIT_API_URL` (ours) if set, else
    /// `LIVEKIT_URL` with `ws` turned into `http`.
    pub livekit_api_url: Url,
    /// The API key (`iss` of every token).
    pub key: String,
    /// The API secret; HMAC key of every token.
    pub secret: Secret,
    /// `LIVEKIT_FULL_ACCESS_HOMESERVERS`.
    pub full_access: FullAccess,
    /// `LIVEKIT_CAN_UPDATE_OWN_METADATA`: `true` grants `canUpdateOwnMetadata` (upstream
    /// v0.7; off by default, as MSC4195 recommends).
    pub can_update_own_metadata: bool,
    /// `LIVEKIT_RESTRICTED_CAN_PUBLISH` (ours): `true` lets users of homeservers outside
    /// the full-access list publish on the standalone endpoints. Off by default, as
    /// upstream since v0.7 ("by design": one publishes on one's own deployment's SFU).
    pub restricted_can_publish: bool,
    /// `LIVEKIT_JWT_BIND` (or the deprecated `LIVEKIT_JWT_PORT`).
    pub bind: BindAddress,
    /// `LIVEKIT_INSECURE_SKIP_VERIFY_TLS` was the magic value. Matrix traffic only.
    pub insecure_skip_verify_tls: bool,
    /// `LIVEKIT_MATRIX_CA_FILE` (ours): extra trusted roots for Matrix traffic.
    pub matrix_ca_file: Option<PathBuf>,
    /// `LIVEKIT_LOG_LEVEL`.
    pub log_level: tracing::Level,
    /// What the configuration is worth a warning for (an unknown log level, a deprecated
    /// variable, a short secret): read before logging starts, so logged once it is up.
    pub warnings: Vec<String>,
    /// `LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS`; `None` when 0 or unset.
    pub sanity_check_interval: Option<Duration>,
    /// `LIVEKIT_CS_API_URL_OVERRIDES`: server name → client-server API base URL.
    pub cs_api_url_overrides: BTreeMap<String, String>,
    /// `LIVEKIT_FEDERATION_URL_OVERRIDES` (ours): server name → federation base URL used
    /// for the OpenID userinfo call instead of server discovery.
    pub federation_url_overrides: BTreeMap<String, Url>,
    /// `LIVEKIT_REDIS_URL`.
    pub redis_url: Option<String>,
    /// `LIVEKIT_REDIS_PASSWORD` (upstream v0.7): replaces a password in the URL.
    pub redis_password: Option<Secret>,
    /// Outgoing Matrix requests to these addresses are refused whatever the server name:
    /// the never-allowed ranges (link-local, cloud metadata, unspecified) plus
    /// `LIVEKIT_DENY_OUTGOING_IPS` (ours). Server names not in `full_access` or
    /// `private_homeservers` are also kept off loopback and private ranges
    /// ([`crate::openid::reach`]).
    pub outgoing_deny: IpRangeSet,
    /// `LIVEKIT_PRIVATE_HOMESERVERS` (ours): server names, besides those of
    /// `LIVEKIT_FULL_ACCESS_HOMESERVERS`, whose homeservers may be reached on loopback
    /// and private addresses.
    pub private_homeservers: Vec<String>,
    /// `LIVEKIT_TRUSTED_PROXIES` (ours): reverse proxies (CIDRs) whose
    /// `X-Forwarded-For`/`Forwarded` headers name the client for the rate limit and the
    /// logs. Empty (nobody trusted) by default.
    pub trusted_proxies: IpRangeSet,
    /// `LIVEKIT_RATE_LIMIT_PER_MINUTE` (ours): token requests per client IP and minute;
    /// `None` (the default) means unlimited, as upstream.
    pub rate_limit_per_minute: Option<u32>,
    /// `LIVEKIT_OPENID_CACHE_SECONDS` (ours): the longest a verified OpenID token is
    /// reused without asking its homeserver again (also bounded by its `expires_in`);
    /// `None` when 0, which asks on every request as upstream.
    pub openid_cache: Option<Duration>,
    /// Application-service mode (upstream v0.7), when configured.
    pub app_service: Option<AppServiceConfig>,
    /// `LIVEKIT_ENABLE_METRICS` (ours): serve `/metrics`. Off by default, so unknown
    /// paths stay 404 as upstream.
    pub metrics: bool,
    /// `LIVEKIT_RTC_TRANSPORTS_SERVICE_URL` (ours): this service's public base URL; when
    /// set, the MSC4143 transports paths answer with it (off by default).
    pub rtc_transports_service_url: Option<Url>,
}

/// Who gets full access (room creation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FullAccess {
    /// The list was exactly `*`.
    Everyone,
    /// Exact, case-sensitive server names.
    Servers(Vec<String>),
}

impl FullAccess {
    /// Whether users of `server_name` get full access.
    pub fn allows(&self, server_name: &str) -> bool {
        match self {
            Self::Everyone => true,
            Self::Servers(servers) => servers.iter().any(|s| s == server_name),
        }
    }
}

/// A Go-style listen address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindAddress {
    /// `:port`: every interface, dual-stack where the host allows it.
    AllInterfaces(u16),
    /// `ip:port` or `[ipv6]:port`.
    Socket(SocketAddr),
    /// `hostname:port`, resolved when binding.
    Host(String, u16),
}

impl BindAddress {
    /// The port to listen on.
    pub fn port(&self) -> u16 {
        match self {
            Self::AllInterfaces(port) | Self::Host(_, port) => *port,
            Self::Socket(addr) => addr.port(),
        }
    }

    /// The URL of `/healthz` on this listener, as seen from the same host.
    pub fn healthz_url(&self) -> String {
        let host = match self {
            Self::AllInterfaces(_) => "127.0.0.1".to_owned(),
            Self::Socket(addr) if addr.ip().is_unspecified() && addr.is_ipv4() => {
                "127.0.0.1".to_owned()
            }
            Self::Socket(addr) if addr.ip().is_unspecified() => "[::1]".to_owned(),
            Self::Socket(SocketAddr::V6(addr)) => format!("[{}]", addr.ip()),
            Self::Socket(addr) => addr.ip().to_string(),
            Self::Host(host, _) => host.clone(),
        };
        format!("http://{host}:{}/healthz", self.port())
    }
}

/// A configuration error; the message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(message.into()))
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (a variable's value, or `None` if unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // An empty variable counts as unset, as with Go's os.Getenv.
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());

        let mut warnings = Vec::new();
        let (key, secret) = key_and_secret(&var)?;
        let livekit_url = var("LIVEKIT_URL")
            .map(|v| trim(&v).to_owned())
            .unwrap_or_default();
        let missing: Vec<&str> = [
            (
                key.is_empty(),
                "LIVEKIT_KEY (or LIVEKIT_KEY_FROM_FILE, or LIVEKIT_KEY_FILE)",
            ),
            (
                secret.is_empty(),
                "LIVEKIT_SECRET (or LIVEKIT_SECRET_FROM_FILE, or LIVEKIT_KEY_FILE)",
            ),
            (livekit_url.is_empty(), "LIVEKIT_URL"),
        ]
        .into_iter()
        .filter_map(|(missing, name)| missing.then_some(name))
        .collect();
        if !missing.is_empty() {
            return err(format!("{} must be set", missing.join(" and ")));
        }
        if secret.expose().len() < MIN_SECRET_BYTES {
            warnings.push(format!(
                "the LiveKit API secret is {} bytes long; use at least {MIN_SECRET_BYTES} random \
                 bytes (LiveKit itself refuses shorter secrets), anyone who guesses it can \
                 sign tokens",
                secret.expose().len()
            ));
        }
        let livekit_api_url = match var("LIVEKIT_API_URL") {
            Some(v) => parse_http_url(trim(&v))
                .map_err(|e| ConfigError(format!("LIVEKIT_API_URL is not an http(s) URL: {e}")))?,
            None => twirp_base_from_ws(&livekit_url).map_err(|e| {
                ConfigError(format!(
                    "LIVEKIT_URL {livekit_url:?} cannot be turned into the SFU API URL: {e}"
                ))
            })?,
        };

        let full_access = full_access(var("LIVEKIT_FULL_ACCESS_HOMESERVERS"))?;
        // Upstream: `true` turns it on, any other value leaves it off.
        let can_update_own_metadata = var("LIVEKIT_CAN_UPDATE_OWN_METADATA")
            .is_some_and(|v| trim(&v).eq_ignore_ascii_case("true"));
        let restricted_can_publish = flag(&var, "LIVEKIT_RESTRICTED_CAN_PUBLISH")?;
        let bind = bind_address(
            var("LIVEKIT_JWT_BIND"),
            var("LIVEKIT_JWT_PORT"),
            &mut warnings,
        )?;
        let insecure_skip_verify_tls =
            var("LIVEKIT_INSECURE_SKIP_VERIFY_TLS").as_deref() == Some(INSECURE_SKIP_VERIFY_MAGIC);
        let matrix_ca_file = var("LIVEKIT_MATRIX_CA_FILE").map(PathBuf::from);
        if let Some(path) = &matrix_ca_file {
            check_readable("LIVEKIT_MATRIX_CA_FILE", path)?;
        }
        let (log_level, log_level_warning) = log_level(var("LIVEKIT_LOG_LEVEL"));
        warnings.extend(log_level_warning);
        let sanity_check_interval =
            sanity_check_interval(var("LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS"))?;
        let cs_api_url_overrides = match var("LIVEKIT_CS_API_URL_OVERRIDES") {
            Some(v) => parse_overrides(&v)
                .map_err(|e| ConfigError(format!("LIVEKIT_CS_API_URL_OVERRIDES: {e}")))?,
            None => BTreeMap::new(),
        };
        let federation_url_overrides = match var("LIVEKIT_FEDERATION_URL_OVERRIDES") {
            Some(v) => parse_overrides(&v)
                .and_then(|map| {
                    map.into_iter()
                        .map(|(server, url)| {
                            parse_http_url(&url)
                                .map(|url| (server, url))
                                .map_err(|e| format!("{url:?}: {e}"))
                        })
                        .collect()
                })
                .map_err(|e| ConfigError(format!("LIVEKIT_FEDERATION_URL_OVERRIDES: {e}")))?,
            None => BTreeMap::new(),
        };
        let redis_url = var("LIVEKIT_REDIS_URL").map(|v| trim(&v).to_owned());
        let redis_password = var("LIVEKIT_REDIS_PASSWORD").map(|v| Secret::from_value(&v));
        if redis_password.is_some() && redis_url.is_none() {
            warnings
                .push("LIVEKIT_REDIS_PASSWORD is set without LIVEKIT_REDIS_URL; ignored".into());
        }
        let outgoing_deny = outgoing::deny_list(&var)?;
        let private_homeservers = outgoing::private_homeservers(&var);
        let trusted_proxies = match var("LIVEKIT_TRUSTED_PROXIES") {
            Some(v) => IpRangeSet::parse(split_list(&v))
                .map_err(|e| ConfigError(format!("LIVEKIT_TRUSTED_PROXIES: {e}")))?,
            None => IpRangeSet::new(),
        };
        let rate_limit_per_minute = match var("LIVEKIT_RATE_LIMIT_PER_MINUTE") {
            None => None,
            Some(v) => match trim(&v).parse::<u32>() {
                Ok(0) => None,
                Ok(n) => Some(n),
                Err(_) => {
                    return err(format!(
                        "LIVEKIT_RATE_LIMIT_PER_MINUTE must be a non-negative integer, got {v:?}"
                    ));
                }
            },
        };

        let openid_cache = match var("LIVEKIT_OPENID_CACHE_SECONDS") {
            None => Some(DEFAULT_OPENID_CACHE),
            Some(v) => match trim(&v).parse::<u64>() {
                Ok(0) => None,
                Ok(n) if n <= MAX_OPENID_CACHE.as_secs() => Some(Duration::from_secs(n)),
                _ => {
                    return err(format!(
                        "LIVEKIT_OPENID_CACHE_SECONDS must be an integer from 0 to {}, got {v:?}",
                        MAX_OPENID_CACHE.as_secs()
                    ));
                }
            },
        };

        let metrics = flag(&var, "LIVEKIT_ENABLE_METRICS")?;
        let app_service = app_service::app_service(&var)?;
        let rtc_transports_service_url = rtc_transports::service_url(&var)?;

        Ok(Self {
            livekit_url,
            livekit_api_url,
            key,
            secret,
            full_access,
            can_update_own_metadata,
            restricted_can_publish,
            bind,
            insecure_skip_verify_tls,
            matrix_ca_file,
            log_level,
            warnings,
            sanity_check_interval,
            cs_api_url_overrides,
            federation_url_overrides,
            redis_url,
            redis_password,
            outgoing_deny,
            private_homeservers,
            trusted_proxies,
            rate_limit_per_minute,
            openid_cache,
            app_service,
            metrics,
            rtc_transports_service_url,
        })
    }
}

/// One of our on/off variables: `true`/`1`/`yes` or `false`/`0`/`no` (any case); unset
/// is off; anything else is an error naming the variable.
fn flag(var: &impl Fn(&str) -> Option<String>, name: &str) -> Result<bool, ConfigError> {
    match var(name).map(|v| trim(&v).to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if matches!(v.as_str(), "true" | "1" | "yes") => Ok(true),
        Some(v) if matches!(v.as_str(), "false" | "0" | "no") => Ok(false),
        Some(v) => err(format!("{name} must be true or false, got {v:?}")),
    }
}

/// The key and secret, from `LIVEKIT_KEY_FILE` (wins silently, as upstream), else each
/// from its `*_FROM_FILE` file or its plain variable (the file wins).
fn key_and_secret(var: &impl Fn(&str) -> Option<String>) -> Result<(String, Secret), ConfigError> {
    if let Some(path) = var("LIVEKIT_KEY_FILE") {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ConfigError(format!(
                "LIVEKIT_KEY_FILE: cannot read key file {path}: {e}"
            ))
        })?;
        let wanted = var("LIVEKIT_KEY").map(|k| trim(&k).to_owned());
        return parse_key_file(&text, wanted.as_deref())
            .map_err(|e| ConfigError(format!("LIVEKIT_KEY_FILE {path}: {e}")));
    }
    let key = match var("LIVEKIT_KEY_FROM_FILE") {
        Some(path) => read_trimmed("LIVEKIT_KEY_FROM_FILE", &path)?,
        None => var("LIVEKIT_KEY")
            .map(|v| trim(&v).to_owned())
            .unwrap_or_default(),
    };
    let secret = match var("LIVEKIT_SECRET_FROM_FILE") {
        Some(path) => Secret::new(read_trimmed("LIVEKIT_SECRET_FROM_FILE", &path)?),
        None => Secret::from_value(&var("LIVEKIT_SECRET").unwrap_or_default()),
    };
    Ok((key, secret))
}

fn read_trimmed(variable: &str, path: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map(|text| trim(&text).to_owned())
        .map_err(|e| ConfigError(format!("{variable}: cannot read {path}: {e}")))
}

fn check_readable(variable: &str, path: &Path) -> Result<(), ConfigError> {
    std::fs::metadata(path)
        .map(drop)
        .map_err(|e| ConfigError(format!("{variable}: cannot read {}: {e}", path.display())))
}

/// LiveKit's key file: `key: secret` lines. Upstream accepts exactly one line with
/// exactly one colon ("invalid key secret file format!"); we also accept several lines
/// (LiveKit's own `keys:` format), `#` comments and secrets containing `:` (split at the
/// first colon). The entry named by `wanted` (`LIVEKIT_KEY`) is picked if the file has it,
/// else the first one: upstream ignores `LIVEKIT_KEY` when a key file is set.
fn parse_key_file(text: &str, wanted: Option<&str>) -> Result<(String, Secret), String> {
    let mut entries = Vec::new();
    for line in text.lines() {
        let line = trim(line);
        if line.is_empty() || line.starts_with('#') || line == "keys:" {
            continue;
        }
        let Some((key, secret)) = line.split_once(':') else {
            return Err("invalid key secret file format! (expected `key: secret` lines)".into());
        };
        // Upstream's trimming (spaces, CR, LF), not Rust's `trim` (which takes tabs too).
        let (key, secret) = (trim(key), trim(secret));
        if key.is_empty() || secret.is_empty() {
            return Err("invalid key secret file format! (empty key or secret)".into());
        }
        entries.push((key.to_owned(), Secret::new(secret)));
    }
    if entries.is_empty() {
        return Err("invalid key secret file format! (no `key: secret` line)".into());
    }
    let index = wanted
        .and_then(|wanted| entries.iter().position(|(key, _)| key == wanted))
        .unwrap_or(0);
    Ok(entries.swap_remove(index))
}

fn full_access(value: Option<String>) -> Result<FullAccess, ConfigError> {
    let servers: Vec<String> = value
        .as_deref()
        .map(split_list)
        .into_iter()
        .flatten()
        .map(str::to_owned)
        .collect();
    match servers.as_slice() {
        [] => err("LIVEKIT_FULL_ACCESS_HOMESERVERS must be set (a list of server names, or *)"),
        [only] if only == "*" => Ok(FullAccess::Everyone),
        _ => Ok(FullAccess::Servers(servers)),
    }
}

/// Splits on commas and whitespace, dropping empty items.
fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

fn bind_address(
    bind: Option<String>,
    port: Option<String>,
    warnings: &mut Vec<String>,
) -> Result<BindAddress, ConfigError> {
    let (text, variable) = match (bind, port) {
        (Some(_), Some(_)) => {
            return err("LIVEKIT_JWT_BIND and LIVEKIT_JWT_PORT cannot both be set");
        }
        (Some(bind), None) => (bind, "LIVEKIT_JWT_BIND"),
        (None, Some(port)) => {
            warnings.push(format!(
                "LIVEKIT_JWT_PORT is deprecated, use LIVEKIT_JWT_BIND=:{port}"
            ));
            (format!(":{port}"), "LIVEKIT_JWT_PORT")
        }
        (None, None) => (DEFAULT_BIND.to_owned(), "LIVEKIT_JWT_BIND"),
    };
    parse_bind(&text).map_err(|e| ConfigError(format!("{variable} {text:?}: {e}")))
}

/// Parses a Go listen address (`:8080`, `127.0.0.1:8080`, `[::1]:8080`, `host:8080`).
pub fn parse_bind(text: &str) -> Result<BindAddress, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(BindAddress::Socket(addr));
    }
    let (host, port) = text.rsplit_once(':').ok_or("expected host:port or :port")?;
    let port: u16 = port.parse().map_err(|_| format!("bad port {port:?}"))?;
    if host.is_empty() {
        return Ok(BindAddress::AllInterfaces(port));
    }
    if host.starts_with('[') || host.contains(':') {
        return Err("bad IPv6 address".into());
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(format!("bad host {host:?}"));
    }
    Ok(BindAddress::Host(host.to_owned(), port))
}

fn log_level(value: Option<String>) -> (tracing::Level, Option<String>) {
    let Some(value) = value else {
        return (tracing::Level::INFO, None);
    };
    let level = match value.to_ascii_lowercase().as_str() {
        "debug" => tracing::Level::DEBUG,
        "info" => tracing::Level::INFO,
        "warn" | "warning" => tracing::Level::WARN,
        "error" => tracing::Level::ERROR,
        _ => {
            let warning = format!(
                "LIVEKIT_LOG_LEVEL {value:?} is not one of debug, info, warn, error; using info"
            );
            return (tracing::Level::INFO, Some(warning));
        }
    };
    (level, None)
}

fn sanity_check_interval(value: Option<String>) -> Result<Option<Duration>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    match value.trim().parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(seconds) => Ok(Some(Duration::from_secs(seconds))),
        Err(_) => err(format!(
            "LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS must be a non-negative integer, got {value:?}"
        )),
    }
}

/// `server=url,server2=url2`: split at the first `=`, both sides trimmed, neither empty.
fn parse_overrides(value: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for entry in value.split(',') {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let (server, url) = entry
            .split_once('=')
            .ok_or_else(|| format!("entry {entry:?} has no `=`"))?;
        let (server, url) = (server.trim(), url.trim());
        if server.is_empty() || url.is_empty() {
            return Err(format!("entry {entry:?} has an empty side"));
        }
        map.insert(server.to_owned(), url.to_owned());
    }
    Ok(map)
}

fn parse_http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| e.to_string())?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err("need an http:// or https:// URL with a host".into()),
    }
}

/// `LIVEKIT_URL` with a leading `ws` replaced by `http` (`wss://h/p` → `https://h/p`).
fn twirp_base_from_ws(livekit_url: &str) -> Result<Url, String> {
    let http = match livekit_url.strip_prefix("ws") {
        Some(rest) => format!("http{rest}"),
        None => livekit_url.to_owned(),
    };
    parse_http_url(&http)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    const BASE: &[(&str, &str)] = &[
        ("LIVEKIT_URL", "wss://rtc.example/livekit/sfu"),
        ("LIVEKIT_KEY", "devkey"),
        ("LIVEKIT_SECRET", "devsecret"),
        ("LIVEKIT_FULL_ACCESS_HOMESERVERS", "example.com"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut vars: Vec<_> = BASE
            .iter()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .copied()
            .collect();
        vars.extend(extra.iter().filter(|(_, v)| !v.is_empty()).copied());
        vars
    }

    fn error(vars: &[(&'static str, &'static str)]) -> String {
        config(&with(vars)).unwrap_err().0
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("lkjwt-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn file(&self, name: &str, content: &str) -> String {
            let path = self.0.join(name);
            std::fs::write(&path, content).unwrap();
            path.to_str().unwrap().to_owned()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn minimal_config_and_defaults() {
        let c = config(BASE).unwrap();
        assert_eq!(c.livekit_url, "wss://rtc.example/livekit/sfu");
        assert_eq!(
            c.livekit_api_url.as_str(),
            "https://rtc.example/livekit/sfu"
        );
        assert_eq!(c.key, "devkey");
        assert_eq!(c.secret.expose(), b"devsecret");
        assert_eq!(
            c.full_access,
            FullAccess::Servers(vec!["example.com".into()])
        );
        assert_eq!(c.bind, BindAddress::AllInterfaces(8080));
        assert!(!c.insecure_skip_verify_tls);
        assert_eq!(c.log_level, tracing::Level::INFO);
        assert_eq!(c.sanity_check_interval, None);
        assert!(c.cs_api_url_overrides.is_empty());
        assert!(c.redis_url.is_none());
        assert!(c.rate_limit_per_minute.is_none());
        assert!(c.trusted_proxies.is_empty());
        assert!(!c.can_update_own_metadata);
        assert!(!c.restricted_can_publish);
        assert_eq!(c.openid_cache, Some(DEFAULT_OPENID_CACHE));
        assert!(c.outgoing_deny.matches("169.254.169.254".parse().unwrap()));
        assert!(!c.outgoing_deny.matches("127.0.0.1".parse().unwrap()));
        assert!(!c.outgoing_deny.matches("10.1.2.3".parse().unwrap()));
        assert!(c.private_homeservers.is_empty());
    }

    #[test]
    fn required_values() {
        assert_eq!(error(&[("LIVEKIT_URL", "")]), "LIVEKIT_URL must be set");
        assert_eq!(
            error(&[("LIVEKIT_KEY", "")]),
            "LIVEKIT_KEY (or LIVEKIT_KEY_FROM_FILE, or LIVEKIT_KEY_FILE) must be set"
        );
        assert_eq!(
            error(&[("LIVEKIT_SECRET", " \r\n"), ("LIVEKIT_URL", "")]),
            "LIVEKIT_SECRET (or LIVEKIT_SECRET_FROM_FILE, or LIVEKIT_KEY_FILE) and \
             LIVEKIT_URL must be set"
        );
        assert!(
            error(&[("LIVEKIT_FULL_ACCESS_HOMESERVERS", "")])
                .contains("LIVEKIT_FULL_ACCESS_HOMESERVERS")
        );
        assert!(
            error(&[("LIVEKIT_FULL_ACCESS_HOMESERVERS", " , ")])
                .contains("LIVEKIT_FULL_ACCESS_HOMESERVERS")
        );
    }

    #[test]
    fn grant_variables() {
        let metadata = |v: &'static str| {
            config(&with(&[("LIVEKIT_CAN_UPDATE_OWN_METADATA", v)]))
                .unwrap()
                .can_update_own_metadata
        };
        assert!(metadata("true"));
        assert!(metadata(" TRUE\n"));
        // Upstream: any other value leaves it off.
        for off in ["false", "1", "yes", "on"] {
            assert!(!metadata(off), "{off}");
        }
        let publish = config(&with(&[("LIVEKIT_RESTRICTED_CAN_PUBLISH", "yes")])).unwrap();
        assert!(publish.restricted_can_publish);
        assert!(
            error(&[("LIVEKIT_RESTRICTED_CAN_PUBLISH", "maybe")])
                .starts_with("LIVEKIT_RESTRICTED_CAN_PUBLISH must be true or false")
        );
    }

    #[test]
    fn application_service_mode() {
        assert!(config(BASE).unwrap().app_service.is_none());
        let full = [
            ("LIVEKIT_AS_TOKEN", "as-token"),
            ("LIVEKIT_HS_TOKEN", "hs-token"),
            ("LIVEKIT_HS_SERVER_NAME", "example.com"),
        ];
        let c = config(&with(&full)).unwrap().app_service.unwrap();
        assert_eq!(c.as_token.expose(), b"as-token");
        assert_eq!(c.hs_token.expose(), b"hs-token");
        assert_eq!(c.server_name, "example.com");
        assert!(!c.require_membership);
        assert_eq!(c.membership_check_interval, None);
        // All or none, naming what is missing.
        let e = error(&[("LIVEKIT_AS_TOKEN", "as-token")]);
        assert!(e.contains("LIVEKIT_AS_TOKEN set"), "{e}");
        assert!(
            e.contains("LIVEKIT_HS_TOKEN (or LIVEKIT_AS_REGISTRATION_FILE)"),
            "{e}"
        );
        assert!(e.contains("LIVEKIT_HS_SERVER_NAME"), "{e}");
        let e = error(&full[..2]);
        assert!(e.ends_with("LIVEKIT_HS_SERVER_NAME missing"), "{e}");
        assert!(
            error(&[
                ("LIVEKIT_AS_TOKEN", "a"),
                ("LIVEKIT_HS_TOKEN", "h"),
                ("LIVEKIT_HS_SERVER_NAME", "bad name/x"),
            ])
            .starts_with("LIVEKIT_HS_SERVER_NAME")
        );
        assert!(
            error(&[("LIVEKIT_REQUIRE_MEMBERSHIP", "true")])
                .starts_with("LIVEKIT_REQUIRE_MEMBERSHIP needs application-service mode")
        );
        let mut extra = full.to_vec();
        extra.push(("LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS", "30"));
        extra.push(("LIVEKIT_REQUIRE_MEMBERSHIP", "true"));
        let c = config(&with(&extra)).unwrap().app_service.unwrap();
        assert_eq!(c.membership_check_interval, Some(Duration::from_secs(30)));
        assert!(c.require_membership);
    }

    #[test]
    fn registration_file_wins() {
        let dir = TempDir::new("registration");
        let file = dir.file(
            "registration.yaml",
            "id: lk-jwt-service\nurl: null\nas_token: \"from file\"  # comment\n\
             hs_token: hs-from-file\nsender_localpart: _lk_jwt_service\n\
             namespaces:\n  users:\n    - exclusive: false\n      regex: \".*\"\n",
        );
        let with_file = |file: &str, extra: &[(&'static str, &'static str)]| {
            let mut vars: Vec<(&str, &str)> = BASE.to_vec();
            vars.push(("LIVEKIT_AS_REGISTRATION_FILE", file));
            vars.push(("LIVEKIT_HS_SERVER_NAME", "example.com"));
            vars.extend(extra);
            config(&vars).map(|c| c.app_service.unwrap())
        };
        let c = with_file(&file, &[("LIVEKIT_AS_TOKEN", "ignored")]).unwrap();
        assert_eq!(c.as_token.expose(), b"from file");
        assert_eq!(c.hs_token.expose(), b"hs-from-file");
        let partial = dir.file("partial.yaml", "as_token: a\n");
        let e = with_file(&partial, &[]).unwrap_err().0;
        assert!(e.ends_with("no hs_token"), "{e}");
        let junk = dir.file("junk.yaml", "[unclosed");
        let e = with_file(&junk, &[]).unwrap_err().0;
        assert!(e.contains("not a registration file"), "{e}");
        assert!(
            error(&[("LIVEKIT_AS_REGISTRATION_FILE", "/nonexistent/reg.yaml")])
                .starts_with("LIVEKIT_AS_REGISTRATION_FILE: cannot read")
        );
    }

    #[test]
    fn short_secrets_are_warned_about() {
        let warnings = |secret: &'static str| {
            config(&with(&[("LIVEKIT_SECRET", secret)]))
                .unwrap()
                .warnings
        };
        let short = warnings("devsecret");
        assert_eq!(short.len(), 1);
        assert!(short[0].contains("9 bytes"), "{short:?}");
        assert!(
            !short[0].contains("devsecret"),
            "the secret itself is never shown"
        );
        assert!(warnings("0123456789abcdef0123456789abcdef").is_empty());
    }

    #[test]
    fn trimming_spaces_cr_lf_not_tabs() {
        let c = config(&with(&[
            ("LIVEKIT_KEY", " devkey\r\n"),
            ("LIVEKIT_SECRET", "\tsecret\t\n"),
        ]))
        .unwrap();
        assert_eq!(c.key, "devkey");
        assert_eq!(c.secret.expose(), b"\tsecret\t");
    }

    #[test]
    fn key_and_secret_from_files() {
        let dir = TempDir::new("files");
        let key = dir.file("key", "filekey\n");
        let secret = dir.file("secret", "  filesecret \r\n");
        let vars = [
            ("LIVEKIT_URL", "ws://sfu"),
            ("LIVEKIT_KEY", "envkey"),
            ("LIVEKIT_SECRET", "envsecret"),
            ("LIVEKIT_KEY_FROM_FILE", key.as_str()),
            ("LIVEKIT_SECRET_FROM_FILE", secret.as_str()),
            ("LIVEKIT_FULL_ACCESS_HOMESERVERS", "*"),
        ];
        let c = config(&vars).unwrap();
        assert_eq!(c.key, "filekey");
        assert_eq!(c.secret.expose(), b"filesecret");
        assert_eq!(c.full_access, FullAccess::Everyone);
        assert_eq!(c.livekit_api_url.as_str(), "http://sfu/");

        let missing = [("LIVEKIT_SECRET_FROM_FILE", "/nonexistent/secret")];
        assert!(error(&missing).starts_with("LIVEKIT_SECRET_FROM_FILE: cannot read"));
        let empty = dir.file("empty", "\n");
        let vars = [
            ("LIVEKIT_URL", "ws://sfu"),
            ("LIVEKIT_KEY", "k"),
            ("LIVEKIT_SECRET_FROM_FILE", empty.as_str()),
            ("LIVEKIT_FULL_ACCESS_HOMESERVERS", "*"),
        ];
        assert!(
            config(&vars)
                .unwrap_err()
                .0
                .starts_with("LIVEKIT_SECRET (or LIVEKIT_SECRET_FROM_FILE")
        );
    }

    #[test]
    fn key_file_takes_precedence() {
        let dir = TempDir::new("keyfile");
        let file = dir.file("keysecret.yaml", "key: secret\n");
        let mut vars = BASE.to_vec();
        vars.push(("LIVEKIT_KEY_FILE", file.as_str()));
        let c = config(&vars).unwrap();
        // LIVEKIT_KEY (devkey) is not in the file, so the file's entry wins, as upstream.
        assert_eq!(c.key, "key");
        assert_eq!(c.secret.expose(), b"secret");
    }

    #[test]
    fn key_file_formats() {
        let (key, secret) = parse_key_file("key: secret\n", None).unwrap();
        assert_eq!((key.as_str(), secret.expose()), ("key", &b"secret"[..]));
        let (key, secret) = parse_key_file("a: s:with:colons\r\n", None).unwrap();
        assert_eq!(
            (key.as_str(), secret.expose()),
            ("a", &b"s:with:colons"[..])
        );
        let (key, secret) = parse_key_file("k:\tsecret\t\n", None).unwrap();
        assert_eq!((key.as_str(), secret.expose()), ("k", &b"\tsecret\t"[..]));
        let (key, secret) = parse_key_file("a: s:with:colons\r\n", None).unwrap();
        assert_eq!(
            (key.as_str(), secret.expose()),
            ("a", &b"s:with:colons"[..])
        );
        let multi = "keys:\n  # comment\n  first: one\n  second: two\n";
        assert_eq!(parse_key_file(multi, None).unwrap().0, "first");
        let (key, secret) = parse_key_file(multi, Some("second")).unwrap();
        assert_eq!((key.as_str(), secret.expose()), ("second", &b"two"[..]));
        assert_eq!(parse_key_file(multi, Some("third")).unwrap().0, "first");
        for bad in ["", "no colon here", ": secret", "key:", "\n\n"] {
            let e = parse_key_file(bad, None).unwrap_err();
            assert!(
                e.starts_with("invalid key secret file format!"),
                "{bad:?}: {e}"
            );
        }
        assert!(
            error(&[("LIVEKIT_KEY_FILE", "/nonexistent/keyfile")])
                .starts_with("LIVEKIT_KEY_FILE: cannot read")
        );
    }

    #[test]
    fn full_access_list() {
        let c = config(&with(&[(
            "LIVEKIT_FULL_ACCESS_HOMESERVERS",
            "a.example, b.example:8448\tc.example,,",
        )]))
        .unwrap();
        assert!(c.full_access.allows("a.example"));
        assert!(c.full_access.allows("b.example:8448"));
        assert!(c.full_access.allows("c.example"));
        assert!(!c.full_access.allows("A.example"));
        assert!(!c.full_access.allows("b.example"));
        // `*` means everyone only when alone.
        let c = config(&with(&[(
            "LIVEKIT_FULL_ACCESS_HOMESERVERS",
            "*, a.example",
        )]))
        .unwrap();
        assert!(!c.full_access.allows("other.example"));
        assert!(c.full_access.allows("a.example"));
    }

    #[test]
    fn bind_and_port() {
        let bind = |v: &'static str| config(&with(&[("LIVEKIT_JWT_BIND", v)])).map(|c| c.bind);
        assert_eq!(bind(":9000").unwrap(), BindAddress::AllInterfaces(9000));
        assert_eq!(
            bind("127.0.0.1:9000").unwrap(),
            BindAddress::Socket("127.0.0.1:9000".parse().unwrap())
        );
        assert_eq!(
            bind("[::1]:9000").unwrap(),
            BindAddress::Socket("[::1]:9000".parse().unwrap())
        );
        assert_eq!(
            bind("localhost:9000").unwrap(),
            BindAddress::Host("localhost".into(), 9000)
        );
        for bad in ["9000", ":http", "1.2.3.4:99999", "[::1:9000", "a b:1"] {
            assert!(
                bind(bad).unwrap_err().0.starts_with("LIVEKIT_JWT_BIND"),
                "{bad}"
            );
        }
        let port = config(&with(&[("LIVEKIT_JWT_PORT", "9001")])).unwrap();
        assert_eq!(port.bind, BindAddress::AllInterfaces(9001));
        assert!(
            port.warnings
                .iter()
                .any(|w| w == "LIVEKIT_JWT_PORT is deprecated, use LIVEKIT_JWT_BIND=:9001"),
            "{:?}",
            port.warnings
        );
        assert!(error(&[("LIVEKIT_JWT_PORT", "x")]).starts_with("LIVEKIT_JWT_PORT"));
        assert_eq!(
            error(&[("LIVEKIT_JWT_BIND", ":1"), ("LIVEKIT_JWT_PORT", "2")]),
            "LIVEKIT_JWT_BIND and LIVEKIT_JWT_PORT cannot both be set"
        );
    }

    #[test]
    fn healthz_url_follows_bind() {
        let url = |t: &str| parse_bind(t).unwrap().healthz_url();
        assert_eq!(url(":8080"), "http://127.0.0.1:8080/healthz");
        assert_eq!(url("0.0.0.0:81"), "http://127.0.0.1:81/healthz");
        assert_eq!(url("[::]:82"), "http://[::1]:82/healthz");
        assert_eq!(url("[::1]:83"), "http://[::1]:83/healthz");
        assert_eq!(url("10.0.0.1:84"), "http://10.0.0.1:84/healthz");
        assert_eq!(url("localhost:85"), "http://localhost:85/healthz");
    }

    #[test]
    fn skip_verify_needs_the_exact_magic_value() {
        let skip = |v: &'static str| {
            config(&with(&[("LIVEKIT_INSECURE_SKIP_VERIFY_TLS", v)]))
                .unwrap()
                .insecure_skip_verify_tls
        };
        assert!(skip("YES_I_KNOW_WHAT_I_AM_DOING"));
        for other in [
            "true",
            "1",
            "yes",
            "yes_i_know_what_i_am_doing",
            " YES_I_KNOW_WHAT_I_AM_DOING",
        ] {
            assert!(!skip(other), "{other}");
        }
    }

    #[test]
    fn log_levels() {
        let level = |v: &'static str| {
            let c = config(&with(&[("LIVEKIT_LOG_LEVEL", v)])).unwrap();
            let warned = c
                .warnings
                .iter()
                .any(|w| w.starts_with("LIVEKIT_LOG_LEVEL"));
            (c.log_level, warned)
        };
        assert_eq!(level("DEBUG"), (tracing::Level::DEBUG, false));
        assert_eq!(level("Info"), (tracing::Level::INFO, false));
        assert_eq!(level("warning"), (tracing::Level::WARN, false));
        assert_eq!(level("warn"), (tracing::Level::WARN, false));
        assert_eq!(level("error"), (tracing::Level::ERROR, false));
        assert_eq!(level("verbose"), (tracing::Level::INFO, true));
    }

    #[test]
    fn sanity_interval() {
        let interval = |v: &'static str| {
            config(&with(&[("LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS", v)]))
                .map(|c| c.sanity_check_interval)
        };
        assert_eq!(interval("0").unwrap(), None);
        assert_eq!(interval("30").unwrap(), Some(Duration::from_secs(30)));
        for bad in ["-1", "abc", "1.5"] {
            assert!(
                interval(bad)
                    .unwrap_err()
                    .0
                    .starts_with("LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS")
            );
        }
    }

    #[test]
    fn cs_api_overrides() {
        let parsed = parse_overrides(
            " example.com = https://matrix.example.com ,127.0.0.1:8448=http://127.0.0.1:8008,[::1]:8448=http://[::1]:8008,a=b=c",
        )
        .unwrap();
        assert_eq!(parsed["example.com"], "https://matrix.example.com");
        assert_eq!(parsed["127.0.0.1:8448"], "http://127.0.0.1:8008");
        assert_eq!(parsed["[::1]:8448"], "http://[::1]:8008");
        assert_eq!(parsed["a"], "b=c");
        for bad in ["example.com", "=http://x", "example.com=", " = "] {
            let e = error(&[("LIVEKIT_CS_API_URL_OVERRIDES", bad)]);
            assert!(e.starts_with("LIVEKIT_CS_API_URL_OVERRIDES"), "{bad}: {e}");
        }
    }

    #[test]
    fn our_extra_variables() {
        let c = config(&with(&[
            ("LIVEKIT_API_URL", "http://127.0.0.1:7880"),
            (
                "LIVEKIT_FEDERATION_URL_OVERRIDES",
                "example.com=https://127.0.0.1:8448",
            ),
            (
                "LIVEKIT_DENY_OUTGOING_IPS",
                "10.0.0.0/8, 192.168.0.0-192.168.255.255",
            ),
            ("LIVEKIT_RATE_LIMIT_PER_MINUTE", "30"),
            ("LIVEKIT_REDIS_URL", "redis://127.0.0.1:6379/0"),
            ("LIVEKIT_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
        ]))
        .unwrap();
        assert!(c.trusted_proxies.contains("10.2.3.4".parse().unwrap()));
        assert!(c.trusted_proxies.contains("::1".parse().unwrap()));
        assert!(!c.trusted_proxies.contains("127.0.0.1".parse().unwrap()));
        assert!(
            error(&[("LIVEKIT_TRUSTED_PROXIES", "10.0.0.0/33")])
                .starts_with("LIVEKIT_TRUSTED_PROXIES")
        );
        assert_eq!(c.livekit_api_url.as_str(), "http://127.0.0.1:7880/");
        assert_eq!(
            c.federation_url_overrides["example.com"].as_str(),
            "https://127.0.0.1:8448/"
        );
        assert!(c.outgoing_deny.matches("10.1.1.1".parse().unwrap()));
        assert!(
            c.outgoing_deny
                .matches("::ffff:192.168.1.1".parse().unwrap())
        );
        assert!(c.outgoing_deny.matches("169.254.169.254".parse().unwrap()));
        assert_eq!(c.rate_limit_per_minute, Some(30));
        assert_eq!(c.redis_url.as_deref(), Some("redis://127.0.0.1:6379/0"));
        assert!(error(&[("LIVEKIT_API_URL", "ftp://x")]).starts_with("LIVEKIT_API_URL"));
        assert!(
            error(&[("LIVEKIT_FEDERATION_URL_OVERRIDES", "a=notaurl")])
                .starts_with("LIVEKIT_FEDERATION_URL_OVERRIDES")
        );
        assert!(
            error(&[("LIVEKIT_DENY_OUTGOING_IPS", "10.0.0.0/99")])
                .starts_with("LIVEKIT_DENY_OUTGOING_IPS")
        );
        assert!(
            error(&[("LIVEKIT_RATE_LIMIT_PER_MINUTE", "-1")])
                .starts_with("LIVEKIT_RATE_LIMIT_PER_MINUTE")
        );
        assert!(
            error(&[("LIVEKIT_MATRIX_CA_FILE", "/nonexistent/ca.pem")])
                .starts_with("LIVEKIT_MATRIX_CA_FILE")
        );
        assert!(error(&[("LIVEKIT_URL", "not a url")]).contains("LIVEKIT_URL"));
        assert!(
            config(&with(&[("LIVEKIT_ENABLE_METRICS", "TRUE")]))
                .unwrap()
                .metrics
        );
        assert!(
            !config(&with(&[("LIVEKIT_ENABLE_METRICS", "0")]))
                .unwrap()
                .metrics
        );
        assert!(
            error(&[("LIVEKIT_ENABLE_METRICS", "maybe")]).starts_with("LIVEKIT_ENABLE_METRICS")
        );
        let cache = |v: &'static str| config(&with(&[("LIVEKIT_OPENID_CACHE_SECONDS", v)]));
        assert_eq!(cache("0").unwrap().openid_cache, None);
        assert_eq!(
            cache(" 5\n").unwrap().openid_cache,
            Some(Duration::from_secs(5))
        );
        assert_eq!(cache("3600").unwrap().openid_cache, Some(MAX_OPENID_CACHE));
        for bad in ["3601", "-1", "soon"] {
            assert!(
                cache(bad)
                    .unwrap_err()
                    .0
                    .starts_with("LIVEKIT_OPENID_CACHE_SECONDS"),
                "{bad}"
            );
        }
    }
}
