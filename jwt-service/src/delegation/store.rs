//! Persistence of delegated jobs so a restart does not lose them (spec §5.3): one Redis
//! hash `lk-jwt:jobs`, field = JSON `["<room>","<identity>"]` (Go's escaping, so the Go
//! service and this one share data), value = upstream's JSON record.

use std::time::{Duration, SystemTime};

use redis::IntoConnectionInfo as _;
use rtc_auth::secret::Secret;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::job::{JobKey, JobParams};
use crate::go_json;
use crate::openid::discovery::BoxFuture;

/// The hash holding every job.
pub const HASH: &str = "lk-jwt:jobs";

/// A persisted job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// Its parameters.
    pub params: JobParams,
    /// The last successful restart (or the creation time).
    pub restarted_at: SystemTime,
}

/// A store failure (logged; jobs keep running in memory).
#[derive(Debug, thiserror::Error)]
#[error("job store: {0}")]
pub struct StoreError(String);

/// Where jobs are persisted.
pub trait Store: Send + Sync {
    /// Inserts or replaces `record`.
    fn save<'a>(&'a self, record: &'a JobRecord) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Removes the job `key`.
    fn delete<'a>(&'a self, key: &'a JobKey) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Every stored job; unparseable entries are skipped (and logged).
    fn load_all(&self) -> BoxFuture<'_, Result<Vec<JobRecord>, StoreError>>;
}

/// No persistence (`LIVEKIT_REDIS_URL` unset): jobs live in memory only.
#[derive(Debug, Default)]
pub struct NoStore;

impl Store for NoStore {
    fn save<'a>(&'a self, _: &'a JobRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
    fn delete<'a>(&'a self, _: &'a JobKey) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
    fn load_all(&self) -> BoxFuture<'_, Result<Vec<JobRecord>, StoreError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// Jobs in Redis.
pub struct RedisStore {
    connection: redis::aio::ConnectionManager,
}

impl RedisStore {
    /// Connects and PINGs; failure here is fatal at start-up, as upstream.
    pub async fn connect(client: &redis::Client) -> Result<Self, StoreError> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2);
        let mut connection = tokio::time::timeout(
            Duration::from_secs(10),
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| StoreError("connection timed out".into()))?
        .map_err(|e| StoreError(format!("cannot connect: {}", describe(&e))))?;
        let pong: String = redis::cmd("PING")
            .query_async(&mut connection)
            .await
            .map_err(|e| StoreError(format!("PING failed: {}", describe(&e))))?;
        if pong != "PONG" {
            return Err(StoreError(format!("PING answered {pong:?}")));
        }
        Ok(Self { connection })
    }

    /// The connection, shared with the job leases.
    pub fn connection(&self) -> redis::aio::ConnectionManager {
        self.connection.clone()
    }
}

/// A Redis error, with a hint where the cause is a password.
fn describe(error: &redis::RedisError) -> String {
    if error.code() == Some("NOAUTH") {
        format!(
            "{error} (the server wants a password: LIVEKIT_REDIS_PASSWORD or redis://:PASSWORD@host)"
        )
    } else if error.code() == Some("WRONGPASS")
        || error.kind() == redis::ErrorKind::AuthenticationFailed
    {
        format!("{error} (wrong password: check LIVEKIT_REDIS_PASSWORD)")
    } else {
        error.to_string()
    }
}

/// A Redis client for `url`, with `password` (`LIVEKIT_REDIS_PASSWORD`) replacing any
/// password the URL carries.
pub fn client(url: &str, password: Option<&Secret>) -> Result<redis::Client, StoreError> {
    let mut info = url
        .into_connection_info()
        .map_err(|e| StoreError(format!("bad URL: {e}")))?;
    if let Some(password) = password {
        let password = std::str::from_utf8(password.expose())
            .map_err(|_| StoreError("LIVEKIT_REDIS_PASSWORD is not UTF-8".into()))?;
        let settings = info.redis_settings().clone().set_password(password);
        info = info.set_redis_settings(settings);
    }
    redis::Client::open(info).map_err(|e| StoreError(format!("bad URL: {e}")))
}

impl Store for RedisStore {
    fn save<'a>(&'a self, record: &'a JobRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let value = encode_record(record)?;
            redis::cmd("HSET")
                .arg(HASH)
                .arg(field(&record.params.key))
                .arg(value)
                .query_async::<()>(&mut connection)
                .await
                .map_err(|e| StoreError(format!("HSET failed: {e}")))
        })
    }

    fn delete<'a>(&'a self, key: &'a JobKey) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            redis::cmd("HDEL")
                .arg(HASH)
                .arg(field(key))
                .query_async::<()>(&mut connection)
                .await
                .map_err(|e| StoreError(format!("HDEL failed: {e}")))
        })
    }

    fn load_all(&self) -> BoxFuture<'_, Result<Vec<JobRecord>, StoreError>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let entries: Vec<(String, String)> = redis::cmd("HGETALL")
                .arg(HASH)
                .query_async(&mut connection)
                .await
                .map_err(|e| StoreError(format!("HGETALL failed: {e}")))?;
            Ok(entries
                .into_iter()
                .filter_map(|(field, value)| match decode_record(&value) {
                    Ok(record) => Some(record),
                    Err(e) => {
                        tracing::warn!(%field, "skipping unreadable stored job: {e}");
                        None
                    }
                })
                .collect())
        })
    }
}

/// The hash field of `key`.
pub fn field(key: &JobKey) -> String {
    go_json::string_array(&[&key.room, &key.identity])
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StoredParams {
    delay_id: String,
    /// Nanoseconds, Go's `time.Duration`.
    delay_timeout: i64,
    server_name: String,
    #[serde(rename = "LiveKitRoom")]
    livekit_room: String,
    #[serde(rename = "LiveKitIdentity")]
    livekit_identity: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StoredJob {
    params: StoredParams,
    /// RFC 3339 with nanoseconds.
    restarted_at: String,
}

/// Upstream's JSON for `record`.
pub fn encode_record(record: &JobRecord) -> Result<String, StoreError> {
    let params = &record.params;
    let restarted_at = OffsetDateTime::from(record.restarted_at)
        .format(&Rfc3339)
        .map_err(|e| StoreError(format!("cannot format time: {e}")))?;
    let stored = StoredJob {
        params: StoredParams {
            delay_id: params.delay_id.clone(),
            delay_timeout: i64::try_from(params.delay_timeout.as_nanos()).unwrap_or(i64::MAX),
            server_name: params.server_name.clone(),
            livekit_room: params.key.room.clone(),
            livekit_identity: params.key.identity.clone(),
        },
        restarted_at,
    };
    serde_json::to_string(&stored).map_err(|e| StoreError(e.to_string()))
}

/// Parses upstream's JSON.
pub fn decode_record(value: &str) -> Result<JobRecord, StoreError> {
    let stored: StoredJob = serde_json::from_str(value).map_err(|e| StoreError(e.to_string()))?;
    let timeout = u64::try_from(stored.params.delay_timeout)
        .ok()
        .filter(|ns| *ns > 0)
        .ok_or_else(|| StoreError("DelayTimeout must be positive".into()))?;
    let restarted_at = OffsetDateTime::parse(&stored.restarted_at, &Rfc3339)
        .map_err(|e| StoreError(format!("bad RestartedAt: {e}")))?;
    Ok(JobRecord {
        params: JobParams {
            delay_id: stored.params.delay_id,
            delay_timeout: Duration::from_nanos(timeout),
            server_name: stored.params.server_name,
            key: JobKey {
                room: stored.params.livekit_room,
                identity: stored.params.livekit_identity,
            },
        },
        restarted_at: restarted_at.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> JobRecord {
        JobRecord {
            params: JobParams {
                delay_id: "syd_abc".into(),
                delay_timeout: Duration::from_secs(10),
                server_name: "example.com".into(),
                key: JobKey {
                    room: "room<&>".into(),
                    identity: "id".into(),
                },
            },
            restarted_at: SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
        }
    }

    #[test]
    fn upstream_format() {
        let json = encode_record(&record()).unwrap();
        assert_eq!(
            json,
            r#"{"Params":{"DelayId":"syd_abc","DelayTimeout":10000000000,"ServerName":"example.com","LiveKitRoom":"room<&>","LiveKitIdentity":"id"},"RestartedAt":"2023-11-14T22:13:20.123456789Z"}"#
        );
        assert_eq!(decode_record(&json).unwrap(), record());
        assert_eq!(
            field(&record().params.key),
            r#"["room\u003c\u0026\u003e","id"]"#
        );
    }

    #[test]
    fn go_written_records_parse() {
        let go = r#"{"Params":{"DelayId":"d","DelayTimeout":5000000000,"ServerName":"hs","LiveKitRoom":"r","LiveKitIdentity":"i"},"RestartedAt":"2026-07-23T10:00:00.5+02:00"}"#;
        let parsed = decode_record(go).unwrap();
        assert_eq!(parsed.params.delay_timeout, Duration::from_secs(5));
        let expected = OffsetDateTime::parse("2026-07-23T08:00:00.5Z", &Rfc3339).unwrap();
        assert_eq!(parsed.restarted_at, SystemTime::from(expected));
        for bad in [
            "",
            "{}",
            r#"{"Params":{"DelayTimeout":-1},"RestartedAt":"x"}"#,
        ] {
            assert!(decode_record(bad).is_err(), "{bad}");
        }
    }
}
