//! Who each issued token is for: LiveKit room and identity (hashes, not reversible) →
//! Matrix room and user. In this process, or in the Redis hash
//! `lk-jwt:participants` (field `["<room>","<identity>"]`) so every replica sees the
//! tokens the others issued; the sweep turn is `lk-jwt:membership-sweep`, held for one
//! interval, so one replica sweeps at a time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::go_json;
use crate::openid::discovery::BoxFuture;

/// The hash of tracked participants.
pub const HASH: &str = "lk-jwt:participants";
/// The sweep turn.
pub const SWEEP_TURN: &str = "lk-jwt:membership-sweep";

/// One issued token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    /// LiveKit room.
    pub room: String,
    /// LiveKit identity.
    pub identity: String,
    /// Matrix room.
    pub room_id: String,
    /// Matrix user.
    pub user_id: String,
    /// When the token was issued.
    pub issued_at: SystemTime,
}

/// Where tracked participants are kept.
pub trait Book: Send + Sync {
    /// Writes down (or renews) `entry`.
    fn track<'a>(&'a self, entry: &'a Tracked) -> BoxFuture<'a, Result<(), String>>;
    /// The entry for `room`/`identity`.
    fn get<'a>(
        &'a self,
        room: &'a str,
        identity: &'a str,
    ) -> BoxFuture<'a, Result<Option<Tracked>, String>>;
    /// Every entry.
    fn all(&self) -> BoxFuture<'_, Result<Vec<Tracked>, String>>;
    /// Forgets an entry.
    fn forget<'a>(&'a self, room: &'a str, identity: &'a str) -> BoxFuture<'a, Result<(), String>>;
    /// True when this replica sweeps now (for `interval`).
    fn sweep_turn(&self, interval: Duration) -> BoxFuture<'_, Result<bool, String>>;
}

/// In this process only (no Redis).
#[derive(Debug, Default)]
pub struct MemoryBook(Mutex<HashMap<(String, String), Tracked>>);

impl Book for MemoryBook {
    fn track<'a>(&'a self, entry: &'a Tracked) -> BoxFuture<'a, Result<(), String>> {
        if let Ok(mut map) = self.0.lock() {
            map.insert((entry.room.clone(), entry.identity.clone()), entry.clone());
        }
        Box::pin(async { Ok(()) })
    }

    fn get<'a>(
        &'a self,
        room: &'a str,
        identity: &'a str,
    ) -> BoxFuture<'a, Result<Option<Tracked>, String>> {
        let found = self
            .0
            .lock()
            .ok()
            .and_then(|map| map.get(&(room.to_owned(), identity.to_owned())).cloned());
        Box::pin(async move { Ok(found) })
    }

    fn all(&self) -> BoxFuture<'_, Result<Vec<Tracked>, String>> {
        let all = self
            .0
            .lock()
            .map(|map| map.values().cloned().collect())
            .unwrap_or_default();
        Box::pin(async move { Ok(all) })
    }

    fn forget<'a>(&'a self, room: &'a str, identity: &'a str) -> BoxFuture<'a, Result<(), String>> {
        if let Ok(mut map) = self.0.lock() {
            map.remove(&(room.to_owned(), identity.to_owned()));
        }
        Box::pin(async { Ok(()) })
    }

    fn sweep_turn(&self, _: Duration) -> BoxFuture<'_, Result<bool, String>> {
        Box::pin(async { Ok(true) })
    }
}

/// In Redis, shared by the replicas.
pub struct RedisBook {
    connection: redis::aio::ConnectionManager,
    /// This replica's name, the value of the sweep turn it takes.
    replica: String,
}

impl RedisBook {
    /// A book on `connection`.
    pub fn new(connection: redis::aio::ConnectionManager, replica: String) -> Self {
        Self {
            connection,
            replica,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    room_id: String,
    user_id: String,
    /// Unix seconds.
    issued_at: u64,
}

fn field(room: &str, identity: &str) -> String {
    go_json::string_array(&[room, identity])
}

fn decode(field: &str, value: &str) -> Option<Tracked> {
    let [room, identity]: [String; 2] = serde_json::from_str(field).ok()?;
    let stored: Stored = serde_json::from_str(value).ok()?;
    Some(Tracked {
        room,
        identity,
        room_id: stored.room_id,
        user_id: stored.user_id,
        issued_at: UNIX_EPOCH + Duration::from_secs(stored.issued_at),
    })
}

impl Book for RedisBook {
    fn track<'a>(&'a self, entry: &'a Tracked) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let stored = Stored {
                room_id: entry.room_id.clone(),
                user_id: entry.user_id.clone(),
                issued_at: entry
                    .issued_at
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs(),
            };
            let value = serde_json::to_string(&stored).map_err(|e| e.to_string())?;
            let mut connection = self.connection.clone();
            redis::cmd("HSET")
                .arg(HASH)
                .arg(field(&entry.room, &entry.identity))
                .arg(value)
                .query_async::<()>(&mut connection)
                .await
                .map_err(|e| format!("HSET failed: {e}"))
        })
    }

    fn get<'a>(
        &'a self,
        room: &'a str,
        identity: &'a str,
    ) -> BoxFuture<'a, Result<Option<Tracked>, String>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let key = field(room, identity);
            let value: Option<String> = redis::cmd("HGET")
                .arg(HASH)
                .arg(&key)
                .query_async(&mut connection)
                .await
                .map_err(|e| format!("HGET failed: {e}"))?;
            Ok(value.and_then(|value| decode(&key, &value)))
        })
    }

    fn all(&self) -> BoxFuture<'_, Result<Vec<Tracked>, String>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let entries: Vec<(String, String)> = redis::cmd("HGETALL")
                .arg(HASH)
                .query_async(&mut connection)
                .await
                .map_err(|e| format!("HGETALL failed: {e}"))?;
            Ok(entries
                .iter()
                .filter_map(|(field, value)| decode(field, value))
                .collect())
        })
    }

    fn forget<'a>(&'a self, room: &'a str, identity: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            redis::cmd("HDEL")
                .arg(HASH)
                .arg(field(room, identity))
                .query_async::<()>(&mut connection)
                .await
                .map_err(|e| format!("HDEL failed: {e}"))
        })
    }

    fn sweep_turn(&self, interval: Duration) -> BoxFuture<'_, Result<bool, String>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            // Held a little under one interval, so the next tick is free again.
            let ms = u64::try_from(interval.as_millis() * 9 / 10)
                .unwrap_or(u64::MAX)
                .max(1);
            let taken: Option<String> = redis::cmd("SET")
                .arg(SWEEP_TURN)
                .arg(&self.replica)
                .arg("NX")
                .arg("PX")
                .arg(ms)
                .query_async(&mut connection)
                .await
                .map_err(|e| format!("SET failed: {e}"))?;
            Ok(taken.is_some())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_entries_round_trip() {
        let value = r#"{"room_id":"!r:hs","user_id":"@a:hs","issued_at":1700000000}"#;
        let entry = decode(&field("R<", "I"), value).unwrap();
        assert_eq!(
            entry,
            Tracked {
                room: "R<".into(),
                identity: "I".into(),
                room_id: "!r:hs".into(),
                user_id: "@a:hs".into(),
                issued_at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            }
        );
        assert!(decode("not json", value).is_none());
        assert!(decode(&field("R", "I"), "{}").is_none());
    }
}
