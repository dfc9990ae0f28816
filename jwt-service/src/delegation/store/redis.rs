//! The shared store in Redis: the job hash, the leases (Lua scripts, so each check and
//! write is one atomic step) and the event channel (see [`super`]).

use std::time::Duration;

use futures_util::StreamExt as _;
use redis::IntoConnectionInfo as _;
use rtc_auth::secret::Secret;
use tokio::sync::mpsc;

use super::{
    EVENTS, HASH, JobRecord, LEASE_TTL, OWNER_PREFIX, Store, StoreError, decode_event,
    decode_record, encode_event, encode_record, field,
};
use crate::delegation::job::{Event, JobKey};
use crate::openid::discovery::BoxFuture;

/// Jobs in Redis, shared by the replicas.
pub struct RedisStore {
    connection: redis::aio::ConnectionManager,
    client: redis::Client,
    /// This replica's id, the value of the owner keys it holds.
    replica: String,
}

impl RedisStore {
    /// Connects and PINGs; failure here is fatal at start-up, as upstream. `replica`
    /// names this replica in the leases.
    pub async fn connect(client: &redis::Client, replica: String) -> Result<Self, StoreError> {
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
        Ok(Self {
            connection,
            client: client.clone(),
            replica,
        })
    }

    /// Events other replicas forward to this one, for as long as the receiver lives.
    /// The subscription reconnects after a failure.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<(JobKey, Event)> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let client = self.client.clone();
        tokio::spawn(async move {
            while !sender.is_closed() {
                match client.get_async_pubsub().await {
                    Ok(mut pubsub) => match pubsub.subscribe(EVENTS).await {
                        Ok(()) => {
                            let mut messages = pubsub.into_on_message();
                            while let Some(message) = messages.next().await {
                                let payload: String = message.get_payload().unwrap_or_default();
                                match decode_event(&payload) {
                                    Some(event) => {
                                        if sender.send(event).is_err() {
                                            return;
                                        }
                                    }
                                    None => tracing::warn!("unreadable forwarded event"),
                                }
                            }
                            tracing::warn!("job event subscription ended; subscribing again");
                        }
                        Err(e) => tracing::warn!("cannot subscribe to job events: {e}"),
                    },
                    Err(e) => tracing::warn!("cannot subscribe to job events: {e}"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        receiver
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

/// `KEYS[1]` hash, `KEYS[2]` owner; `ARGV` field, replica, lease ms, record.
const TAKE: &str = r"
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
return 1";

/// Same keys and arguments: the write only while we hold the lease.
const UPDATE: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
return 1";

/// `KEYS[1]` hash, `KEYS[2]` owner; `ARGV` field, replica.
const FINISH: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1";

/// `KEYS` owner keys; `ARGV` replica, lease ms: 1 for each lease still ours (renewed).
const RENEW: &str = r"
local held = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    held[i] = 1
  else
    held[i] = 0
  end
end
return held";

/// `KEYS[1]` hash; `ARGV` replica, lease ms, owner prefix: takes every free (or our own)
/// lease in one step and returns `[field, record, …]` of the jobs taken. (The owner keys
/// are derived inside the script: fine on one Redis, not on a cluster.)
const CLAIM: &str = r"
local claimed = {}
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  local key = ARGV[3] .. field
  local owner = redis.call('GET', key)
  if not owner or owner == ARGV[1] then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    table.insert(claimed, field)
    table.insert(claimed, redis.call('HGET', KEYS[1], field))
  end
end
return claimed";

/// `KEYS[1]` hash, `KEYS[2]` owner; `ARGV[1]` field: drops an unreadable entry.
const DROP: &str = r"
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1";

/// `KEYS` owner keys; `ARGV[1]` replica.
const RELEASE: &str = r"
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 1";

fn lease_ms() -> u64 {
    u64::try_from(LEASE_TTL.as_millis()).unwrap_or(u64::MAX)
}

fn owner_key(key: &JobKey) -> String {
    format!("{OWNER_PREFIX}{}", field(key))
}

impl RedisStore {
    async fn script<T: redis::FromRedisValue>(
        &self,
        source: &str,
        keys: &[String],
        args: &[String],
    ) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        let script = redis::Script::new(source);
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(key);
        }
        for arg in args {
            invocation.arg(arg);
        }
        invocation
            .invoke_async(&mut connection)
            .await
            .map_err(|e| StoreError(format!("script failed: {}", describe(&e))))
    }

    async fn write(&self, source: &str, record: &JobRecord) -> Result<bool, StoreError> {
        let key = &record.params.key;
        let written: i64 = self
            .script(
                source,
                &[HASH.to_owned(), owner_key(key)],
                &[
                    field(key),
                    self.replica.clone(),
                    lease_ms().to_string(),
                    encode_record(record)?,
                ],
            )
            .await?;
        Ok(written == 1)
    }
}

impl Store for RedisStore {
    fn take<'a>(&'a self, record: &'a JobRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { self.write(TAKE, record).await.map(drop) })
    }

    fn update<'a>(&'a self, record: &'a JobRecord) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.write(UPDATE, record))
    }

    fn finish<'a>(&'a self, key: &'a JobKey) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.script::<i64>(
                FINISH,
                &[HASH.to_owned(), owner_key(key)],
                &[field(key), self.replica.clone()],
            )
            .await
            .map(drop)
        })
    }

    fn holds<'a>(&'a self, key: &'a JobKey) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let owner: Option<String> = redis::cmd("GET")
                .arg(owner_key(key))
                .query_async(&mut connection)
                .await
                .map_err(|e| StoreError(format!("GET failed: {}", describe(&e))))?;
            Ok(owner.as_deref() == Some(self.replica.as_str()))
        })
    }

    fn renew<'a>(&'a self, keys: &'a [JobKey]) -> BoxFuture<'a, Result<Vec<JobKey>, StoreError>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let owners: Vec<String> = keys.iter().map(owner_key).collect();
            let held: Vec<i64> = self
                .script(
                    RENEW,
                    &owners,
                    &[self.replica.clone(), lease_ms().to_string()],
                )
                .await?;
            Ok(keys
                .iter()
                .zip(held)
                .filter(|(_, held)| *held != 1)
                .map(|(key, _)| key.clone())
                .collect())
        })
    }

    fn claim_free(&self) -> BoxFuture<'_, Result<Vec<JobRecord>, StoreError>> {
        Box::pin(async move {
            let taken: Vec<String> = self
                .script(
                    CLAIM,
                    &[HASH.to_owned()],
                    &[
                        self.replica.clone(),
                        lease_ms().to_string(),
                        OWNER_PREFIX.to_owned(),
                    ],
                )
                .await?;
            let mut claimed = Vec::new();
            for pair in taken.chunks_exact(2) {
                let (field, value) = (&pair[0], &pair[1]);
                match decode_record(value) {
                    Ok(record) => claimed.push(record),
                    Err(e) => {
                        // As upstream: a job that cannot be read never will be.
                        tracing::warn!(%field, "dropping unreadable stored job: {e}");
                        self.script::<i64>(
                            DROP,
                            &[HASH.to_owned(), format!("{OWNER_PREFIX}{field}")],
                            std::slice::from_ref(field),
                        )
                        .await?;
                    }
                }
            }
            Ok(claimed)
        })
    }

    fn release<'a>(&'a self, keys: &'a [JobKey]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(());
            }
            let owners: Vec<String> = keys.iter().map(owner_key).collect();
            self.script::<i64>(RELEASE, &owners, std::slice::from_ref(&self.replica))
                .await
                .map(drop)
        })
    }

    fn forward<'a>(
        &'a self,
        key: &'a JobKey,
        event: Event,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            redis::cmd("PUBLISH")
                .arg(EVENTS)
                .arg(encode_event(key, event))
                .query_async::<i64>(&mut connection)
                .await
                .map_err(|e| StoreError(format!("PUBLISH failed: {}", describe(&e))))?;
            Ok(true)
        })
    }
}
