//! The command line of `lk-jwt-service doctor`, and what it is pointed at.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

/// Default bound on each network call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Environment variable for the access token, so it stays out of `ps` and shell history.
pub const ACCESS_TOKEN_ENV: &str = "MATRIX_ACCESS_TOKEN";

/// The usage text.
pub const USAGE: &str = "usage: lk-jwt-service doctor <server name or URL> [--json] \
[--access-token TOKEN] [--server-name NAME] [--ca-file PEM] [--timeout SECONDS] [--resolve HOST:ADDRESS]...
  Walks what Element Call walks: well-known, rtc/transports, the JWT service, LiveKit,
  TURN (with an access token) and federation. Exit code 1 when any check fails.
  The access token can also come from MATRIX_ACCESS_TOKEN.";

/// What to check and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server name (`example.org`) or URL (`https://example.org`) as given.
    pub target: String,
    /// Print JSON instead of text.
    pub json: bool,
    /// A logged-in user's access token: unlocks the transports content, the token flow,
    /// LiveKit and TURN checks.
    pub access_token: Option<String>,
    /// The Matrix server name, when it is not the target's host.
    pub server_name: Option<String>,
    /// Extra trusted CA certificates (PEM), for private CAs.
    pub ca_file: Option<PathBuf>,
    /// Bound on each network call.
    pub timeout: Duration,
    /// `--resolve HOST:ADDRESS`: use this address for the host instead of DNS, to check a
    /// deployment before its DNS records point at it (as curl's `--resolve`, no port).
    pub resolve: Vec<(String, IpAddr)>,
}

impl Options {
    /// The `--resolve` address of `host`, if any.
    pub fn resolved(&self, host: &str) -> Option<IpAddr> {
        self.resolve
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(host))
            .map(|(_, ip)| *ip)
    }
}

/// Parses `HOST:ADDRESS` (an IPv6 address in brackets or not).
fn parse_resolve(text: &str) -> Result<(String, IpAddr), String> {
    let (host, address) = text
        .split_once(':')
        .ok_or_else(|| format!("--resolve {text:?}: expected HOST:ADDRESS"))?;
    let address = address.trim_start_matches('[').trim_end_matches(']');
    let ip = address
        .parse()
        .map_err(|_| format!("--resolve {text:?}: {address:?} is not an IP address"))?;
    if host.is_empty() {
        return Err(format!("--resolve {text:?}: the host is empty"));
    }
    Ok((host.to_owned(), ip))
}

impl Options {
    /// Parses the arguments after `doctor`; `env` reads environment variables.
    pub fn parse(args: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut target = None;
        let mut options = Options {
            target: String::new(),
            json: false,
            access_token: env(ACCESS_TOKEN_ENV).filter(|t| !t.is_empty()),
            server_name: None,
            ca_file: None,
            timeout: DEFAULT_TIMEOUT,
            resolve: Vec::new(),
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match arg.as_str() {
                "--json" => options.json = true,
                "--access-token" => options.access_token = Some(value(arg)?),
                "--server-name" => options.server_name = Some(value(arg)?),
                "--ca-file" => options.ca_file = Some(PathBuf::from(value(arg)?)),
                "--resolve" => options.resolve.push(parse_resolve(&value(arg)?)?),
                "--timeout" => {
                    let text = value(arg)?;
                    let seconds: u64 = text
                        .parse()
                        .ok()
                        .filter(|s| (1..=300).contains(s))
                        .ok_or_else(|| {
                            format!("--timeout must be 1 to 300 seconds, got {text:?}")
                        })?;
                    options.timeout = Duration::from_secs(seconds);
                }
                other if other.starts_with('-') => return Err(format!("unknown option {other}")),
                other if target.is_none() => target = Some(other.to_owned()),
                other => return Err(format!("unexpected argument {other:?}")),
            }
        }
        options.target = target.ok_or("the server name or URL is missing")?;
        Ok(options)
    }
}

/// Where the well-known documents are, and the Matrix server name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https://<server name>` or the URL given (path dropped).
    pub base: Url,
    /// The Matrix server name (`--server-name`, else the target's host and port).
    pub server_name: String,
}

impl Target {
    /// `example.org` means `https://example.org`; a URL is taken as given.
    pub fn parse(text: &str, server_name: Option<&str>) -> Result<Self, String> {
        let with_scheme = if text.contains("://") {
            text.to_owned()
        } else {
            format!("https://{text}")
        };
        let mut base = Url::parse(&with_scheme).map_err(|e| format!("{text:?}: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(format!("{text:?} is not a server name or an http(s) URL"));
        }
        base.set_path("/");
        base.set_query(None);
        base.set_fragment(None);
        let host = base.host_str().unwrap_or_default();
        let server_name = match (server_name, base.port()) {
            (Some(name), _) => name.to_owned(),
            (None, Some(port)) => format!("{host}:{port}"),
            (None, None) => host.to_owned(),
        };
        Ok(Self { base, server_name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options_and_their_errors() {
        let options = Options::parse(
            &args(&[
                "example.org",
                "--json",
                "--timeout",
                "5",
                "--server-name",
                "e.org",
            ]),
            |_| Some("tok".into()),
        )
        .unwrap();
        assert_eq!(options.target, "example.org");
        assert!(options.json);
        assert_eq!(options.timeout, Duration::from_secs(5));
        assert_eq!(options.access_token.as_deref(), Some("tok"));
        assert_eq!(options.server_name.as_deref(), Some("e.org"));
        let no_env = |_: &str| None;
        assert!(Options::parse(&args(&[]), no_env).is_err());
        assert!(Options::parse(&args(&["a", "b"]), no_env).is_err());
        assert!(Options::parse(&args(&["a", "--timeout", "0"]), no_env).is_err());
        assert!(Options::parse(&args(&["a", "--timeout"]), no_env).is_err());
        assert!(Options::parse(&args(&["a", "--bogus"]), no_env).is_err());
        let options = Options::parse(
            &args(&[
                "a",
                "--resolve",
                "rtc.example.org:127.0.0.1",
                "--resolve",
                "b:[::1]",
            ]),
            no_env,
        )
        .unwrap();
        assert_eq!(
            options.resolved("RTC.example.org"),
            Some([127, 0, 0, 1].into())
        );
        assert_eq!(
            options.resolved("b"),
            Some(std::net::Ipv6Addr::LOCALHOST.into())
        );
        assert_eq!(options.resolved("c"), None);
        assert!(Options::parse(&args(&["a", "--resolve", "b"]), no_env).is_err());
        assert!(Options::parse(&args(&["a", "--resolve", "b:nothing"]), no_env).is_err());
    }

    #[test]
    fn targets() {
        let t = Target::parse("example.org", None).unwrap();
        assert_eq!(t.base.as_str(), "https://example.org/");
        assert_eq!(t.server_name, "example.org");
        let t = Target::parse("http://127.0.0.1:8080/some/path?q", None).unwrap();
        assert_eq!(t.base.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(t.server_name, "127.0.0.1:8080");
        let t = Target::parse("https://example.org", Some("other.org")).unwrap();
        assert_eq!(t.server_name, "other.org");
        assert!(Target::parse("ftp://example.org", None).is_err());
        assert!(Target::parse("https://", None).is_err());
    }
}
