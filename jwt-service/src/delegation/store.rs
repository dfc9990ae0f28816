//! Persistence of delegated jobs, shared by every replica (spec §5.3): one Redis hash
//! `lk-jwt:jobs`, field = JSON `["<room>","<identity>"]` (Go's escaping, so the Go
//! service and this one share data), value = upstream's JSON record.
//!
//! Ours on top: a job belongs to one replica at a time. `lk-jwt:owner:<field>` holds the
//! owning replica's id with an expiry ([`LEASE_TTL`]) that its owner keeps renewing; a
//! replica that dies stops renewing, and another one takes the job once the lease has
//! run out. A new request for the same key takes the lease at once (the newest
//! delegation wins, as in one process). Every write a job makes after that checks the
//! lease first, in one Lua script, so a replica that lost a job can neither overwrite
//! nor delete its successor's record. Webhooks reach any replica; the job's events are
//! forwarded to its owner over the `lk-jwt:events` channel.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::job::{Event, JobKey, JobParams};
use crate::go_json;
use crate::openid::discovery::BoxFuture;

mod redis;

pub use redis::{RedisStore, client};

/// The hash holding every job.
pub const HASH: &str = "lk-jwt:jobs";
/// Prefix of the per-job owner keys.
pub const OWNER_PREFIX: &str = "lk-jwt:owner:";
/// The channel webhook events travel on to the replica owning the job.
pub const EVENTS: &str = "lk-jwt:events";
/// How long a lease lasts without renewal: how long a dead replica's jobs wait before
/// another replica takes them.
pub const LEASE_TTL: Duration = Duration::from_secs(10);
/// How often leases are renewed and free jobs looked for (a third of the lease, so two
/// renewals may fail before the lease runs out).
pub const LEASE_RENEWAL: Duration = Duration::from_secs(3);

/// A persisted job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// Its parameters.
    pub params: JobParams,
    /// The last successful restart (or the creation time).
    pub restarted_at: SystemTime,
    /// The participant was seen connected (a replica taking the job over asks the SFU
    /// at once instead of waiting for them to show up).
    pub connected: bool,
}

/// A store failure (logged; jobs keep running in memory).
#[derive(Debug, thiserror::Error)]
#[error("job store: {0}")]
pub struct StoreError(pub(crate) String);

/// Where jobs are persisted, and who owns them.
pub trait Store: Send + Sync {
    /// Persists a new job and takes it, from whichever replica held it.
    fn take<'a>(&'a self, record: &'a JobRecord) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Updates a job we hold; `Ok(false)` when another replica holds it now.
    fn update<'a>(&'a self, record: &'a JobRecord) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Removes a job we hold (record and lease); one held by another is left alone.
    fn finish<'a>(&'a self, key: &'a JobKey) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Do we still hold `key`?
    fn holds<'a>(&'a self, key: &'a JobKey) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Extends our leases on `keys`; returns the keys we no longer hold.
    fn renew<'a>(&'a self, keys: &'a [JobKey]) -> BoxFuture<'a, Result<Vec<JobKey>, StoreError>>;
    /// Takes every stored job nobody holds (or we held before a restart); unreadable
    /// entries are skipped (and logged).
    fn claim_free(&self) -> BoxFuture<'_, Result<Vec<JobRecord>, StoreError>>;
    /// Lets go of `keys` (shutdown), so other replicas take them at once.
    fn release<'a>(&'a self, keys: &'a [JobKey]) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Sends `event` for `key` to the replica holding it; `Ok(false)` without replicas.
    fn forward<'a>(
        &'a self,
        key: &'a JobKey,
        event: Event,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
}

/// No persistence (`LIVEKIT_REDIS_URL` unset): jobs live in this process only.
#[derive(Debug, Default)]
pub struct NoStore;

impl Store for NoStore {
    fn take<'a>(&'a self, _: &'a JobRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
    fn update<'a>(&'a self, _: &'a JobRecord) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async { Ok(true) })
    }
    fn finish<'a>(&'a self, _: &'a JobKey) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
    fn holds<'a>(&'a self, _: &'a JobKey) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async { Ok(true) })
    }
    fn renew<'a>(&'a self, _: &'a [JobKey]) -> BoxFuture<'a, Result<Vec<JobKey>, StoreError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn claim_free(&self) -> BoxFuture<'_, Result<Vec<JobRecord>, StoreError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn release<'a>(&'a self, _: &'a [JobKey]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
    fn forward<'a>(&'a self, _: &'a JobKey, _: Event) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async { Ok(false) })
    }
}

/// A forwarded event: `{"room":…,"identity":…,"event":"joined"|"left"|"aborted"}`.
pub(crate) fn encode_event(key: &JobKey, event: Event) -> String {
    let name = match event {
        Event::Joined => "joined",
        Event::Left {
            client_initiated: true,
        } => "left",
        Event::Left {
            client_initiated: false,
        } => "aborted",
    };
    serde_json::json!({"room": key.room, "identity": key.identity, "event": name}).to_string()
}

pub(crate) fn decode_event(text: &str) -> Option<(JobKey, Event)> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let event = match value["event"].as_str()? {
        "joined" => Event::Joined,
        "left" => Event::Left {
            client_initiated: true,
        },
        "aborted" => Event::Left {
            client_initiated: false,
        },
        _ => return None,
    };
    let key = JobKey {
        room: value["room"].as_str()?.to_owned(),
        identity: value["identity"].as_str()?.to_owned(),
    };
    Some((key, event))
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
    /// Ours; only written when true, so records stay upstream's otherwise (upstream
    /// ignores unknown fields).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    connected: bool,
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
        connected: record.connected,
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
        connected: stored.connected,
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
            connected: false,
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
        let connected = JobRecord {
            connected: true,
            ..record()
        };
        let json = encode_record(&connected).unwrap();
        assert!(json.ends_with(r#","Connected":true}"#), "{json}");
        assert_eq!(decode_record(&json).unwrap(), connected);
        assert_eq!(
            decode_event(&encode_event(
                &connected.params.key,
                Event::Left {
                    client_initiated: false
                }
            )),
            Some((
                connected.params.key.clone(),
                Event::Left {
                    client_initiated: false
                }
            ))
        );
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
