//! Owns this replica's delegated jobs: one per (room, identity), a newer request
//! replacing an older job (on whichever replica it ran), webhook events routed to the
//! job they concern (or forwarded to the replica owning it), persistence and leases kept
//! in step ([`super::store`]).
//!
//! The job map sits behind an async mutex that is also held across store writes, so a
//! replaced job's late write can never clobber or delete its successor's record.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

use super::job::{self, Event, JobDeps, JobKey, JobObserver, JobParams, Start};
use super::store::{JobRecord, LEASE_RENEWAL, Store};
use crate::openid::discovery::BoxFuture;

/// Jobs one Matrix user may start on one replica (a few devices in a few calls): each
/// job calls the user's homeserver every 80 % of its timeout, so one user must not start
/// thousands.
pub const MAX_JOBS_PER_USER: usize = 16;
/// Jobs one replica runs at once, taken-over ones included; past it, stored jobs are left
/// to other replicas (or to their own timeout).
pub const MAX_JOBS: usize = 10_000;

/// A job could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddError {
    /// The service is shutting down.
    #[error("Service is shutting down")]
    ShuttingDown,
    /// The user already has [`MAX_JOBS_PER_USER`] other jobs.
    #[error("Too many delegated leave jobs for this user")]
    TooManyForUser,
    /// The service already runs [`MAX_JOBS`] other jobs.
    #[error("Too many delegated leave jobs")]
    TooMany,
}

/// Where a webhook event went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    /// To a job of this replica.
    Here,
    /// To the replicas, one of which may hold the job.
    Forwarded,
    /// Nowhere: no such job.
    Nowhere,
}

struct Handle {
    id: u64,
    /// The Matrix user who asked for the job (unknown for restored and taken-over jobs).
    owner: Option<String>,
    params: JobParams,
    events: mpsc::UnboundedSender<Event>,
    task: JoinHandle<()>,
}

/// The job registry.
pub struct Manager {
    jobs: Mutex<HashMap<JobKey, Handle>>,
    store: Arc<dyn Store>,
    deps: Arc<JobDeps>,
    next_id: AtomicU64,
    /// [`MAX_JOBS`] and [`MAX_JOBS_PER_USER`] (smaller in tests).
    max_jobs: usize,
    max_jobs_per_user: usize,
    shutting_down: AtomicBool,
    this: Weak<Manager>,
}

impl Manager {
    /// A manager persisting to `store`.
    pub fn new(store: Arc<dyn Store>, deps: Arc<JobDeps>) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            jobs: Mutex::default(),
            store,
            deps,
            next_id: AtomicU64::new(1),
            max_jobs: MAX_JOBS,
            max_jobs_per_user: MAX_JOBS_PER_USER,
            shutting_down: AtomicBool::new(false),
            this: this.clone(),
        })
    }

    /// Persists and starts a job for `owner` (a Matrix user id), replacing any job with
    /// the same key (here or on another replica). The record is written before this
    /// returns, so the HTTP answer comes after persistence.
    pub async fn add(&self, params: JobParams, owner: &str) -> Result<(), AddError> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(AddError::ShuttingDown);
        }
        let mut jobs = self.jobs.lock().await;
        // A replacement takes its predecessor's place. Counting the owner's jobs walks
        // the map (at most MAX_JOBS entries, one add per delegating token request).
        let others = |job: &(&JobKey, &Handle)| *job.0 != params.key;
        if jobs.iter().filter(others).count() >= self.max_jobs {
            return Err(AddError::TooMany);
        }
        let owned = jobs
            .iter()
            .filter(others)
            .filter(|(_, handle)| handle.owner.as_deref() == Some(owner))
            .count();
        if owned >= self.max_jobs_per_user {
            return Err(AddError::TooManyForUser);
        }
        let record = JobRecord {
            params: params.clone(),
            restarted_at: SystemTime::now(),
            connected: false,
        };
        if let Err(e) = self.store.take(&record).await {
            tracing::warn!(key = ?params.key, "{e}; the job runs in memory only");
        }
        self.start_locked(&mut jobs, params, Some(owner.to_owned()), Start::Waiting);
        Ok(())
    }

    fn start_locked(
        &self,
        jobs: &mut HashMap<JobKey, Handle>,
        params: JobParams,
        owner: Option<String>,
        start: Start,
    ) {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let (events, receiver) = mpsc::unbounded_channel();
        let observer: Arc<dyn JobObserver> = Arc::new(Observer(self.this.clone()));
        let task = tokio::spawn({
            let params = params.clone();
            let deps = self.deps.clone();
            async move {
                job::run(params, id, deps, receiver, observer, start).await;
            }
        });
        let key = params.key.clone();
        if let Some(old) = jobs.insert(
            key.clone(),
            Handle {
                id,
                owner,
                params,
                events,
                task,
            },
        ) {
            tracing::info!(?key, "replacing the previous delegated leave job");
            old.task.abort();
        }
    }

    /// Routes a webhook event to the job for `key`: here if this replica runs it, else
    /// to the other replicas (with a shared store).
    pub async fn notify(&self, key: &JobKey, event: Event) -> Routed {
        if self.notify_here(key, event).await {
            return Routed::Here;
        }
        match self.store.forward(key, event).await {
            Ok(true) => Routed::Forwarded,
            Ok(false) => Routed::Nowhere,
            Err(e) => {
                tracing::warn!(?key, "cannot forward the event: {e}");
                Routed::Nowhere
            }
        }
    }

    async fn notify_here(&self, key: &JobKey, event: Event) -> bool {
        let jobs = self.jobs.lock().await;
        match jobs.get(key) {
            Some(handle) => handle.events.send(event).is_ok(),
            None => false,
        }
    }

    /// Number of running jobs.
    pub async fn len(&self) -> usize {
        self.jobs.lock().await.len()
    }

    /// True when no job runs.
    pub async fn is_empty(&self) -> bool {
        self.len().await == 0
    }

    /// Takes the stored jobs nobody holds: expired ones are deleted unsent, the rest
    /// start over (connected ones check the SFU at once) while this replica runs fewer
    /// than [`MAX_JOBS`]. At start, and then every [`LEASE_RENEWAL`] to take over the
    /// jobs of replicas that died.
    pub async fn restore(&self) -> usize {
        // At the cap nothing is claimed: other replicas may take the jobs.
        if self.shutting_down.load(Ordering::SeqCst) || self.len().await >= self.max_jobs {
            return 0;
        }
        let records = match self.store.claim_free().await {
            Ok(records) => records,
            Err(e) => {
                tracing::warn!("cannot restore jobs: {e}");
                return 0;
            }
        };
        let mut jobs = self.jobs.lock().await;
        let now = SystemTime::now();
        let mut restored = 0;
        let mut over_cap = Vec::new();
        for record in records {
            if jobs.contains_key(&record.params.key) {
                continue;
            }
            let expires = record.restarted_at + record.params.delay_timeout;
            if expires < now {
                tracing::info!(key = ?record.params.key, "dropping expired stored job");
                if let Err(e) = self.store.finish(&record.params.key).await {
                    tracing::warn!("{e}");
                }
                continue;
            }
            if jobs.len() >= self.max_jobs {
                over_cap.push(record.params.key);
                continue;
            }
            tracing::info!(key = ?record.params.key, connected = record.connected, "took over a delegated leave job");
            let start = if record.connected {
                Start::Connected
            } else {
                Start::Waiting
            };
            self.start_locked(&mut jobs, record.params, None, start);
            restored += 1;
        }
        if !over_cap.is_empty() {
            tracing::warn!(
                "{} jobs already running; {} stored jobs are left to another replica or \
                 their own timeout",
                self.max_jobs,
                over_cap.len()
            );
            if let Err(e) = self.store.release(&over_cap).await {
                tracing::warn!("cannot release job leases: {e}");
            }
        }
        restored
    }

    /// Keeps this replica's leases and takes over free jobs, every [`LEASE_RENEWAL`],
    /// until shutdown; jobs another replica took are stopped here without sending.
    pub async fn maintain(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(LEASE_RENEWAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        while !self.shutting_down.load(Ordering::SeqCst) {
            ticks.tick().await;
            let keys: Vec<JobKey> = self.jobs.lock().await.keys().cloned().collect();
            match self.store.renew(&keys).await {
                Ok(lost) => self.drop_lost(&lost).await,
                Err(e) => tracing::warn!("cannot renew job leases: {e}"),
            }
            self.restore().await;
        }
    }

    /// Forwarded events, to this replica's jobs.
    pub async fn deliver(self: Arc<Self>, mut forwarded: mpsc::UnboundedReceiver<(JobKey, Event)>) {
        while let Some((key, event)) = forwarded.recv().await {
            if self.notify_here(&key, event).await {
                tracing::debug!(?key, ?event, "forwarded webhook event delivered");
            }
        }
    }

    async fn drop_lost(&self, lost: &[JobKey]) {
        let mut jobs = self.jobs.lock().await;
        for key in lost {
            if let Some(handle) = jobs.remove(key) {
                tracing::info!(?key, "another replica holds the job now; stopping it here");
                handle.task.abort();
            }
        }
    }

    /// Refuses new jobs from now on ([`AddError::ShuttingDown`]).
    pub fn stop_accepting(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Stops taking jobs and stops every job without unpersisting it, and lets go of
    /// their leases, so another replica (or the next start) takes them at once.
    pub async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        let mut jobs = self.jobs.lock().await;
        let keys: Vec<JobKey> = jobs.keys().cloned().collect();
        for (_, handle) in jobs.drain() {
            handle.task.abort();
        }
        if let Err(e) = self.store.release(&keys).await {
            tracing::warn!("cannot release job leases: {e}");
        }
    }

    async fn restarted(&self, key: JobKey, id: u64, at: SystemTime) {
        let mut jobs = self.jobs.lock().await;
        let Some(handle) = jobs.get(&key).filter(|h| h.id == id) else {
            return;
        };
        let record = JobRecord {
            params: handle.params.clone(),
            restarted_at: at,
            connected: true,
        };
        match self.store.update(&record).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(?key, "another replica holds the job now; stopping it here");
                if let Some(handle) = jobs.remove(&key) {
                    handle.task.abort();
                }
            }
            Err(e) => tracing::warn!(?key, "{e}"),
        }
    }

    async fn finished(&self, key: JobKey, id: u64) {
        let mut jobs = self.jobs.lock().await;
        if jobs.get(&key).is_some_and(|h| h.id == id) {
            jobs.remove(&key);
            if let Err(e) = self.store.finish(&key).await {
                tracing::warn!(?key, "{e}");
            }
        }
    }

    async fn may_send(&self, key: JobKey, id: u64) -> bool {
        let current = self.jobs.lock().await.get(&key).is_some_and(|h| h.id == id);
        // A store that cannot answer does not stop the leave: a second send of the same
        // delayed event is refused by the homeserver (404), a missing one is not noticed.
        current && self.store.holds(&key).await.unwrap_or(true)
    }
}

/// A job's view of its manager (weak, so jobs do not keep it alive).
struct Observer(Weak<Manager>);

impl JobObserver for Observer {
    fn restarted(&self, key: JobKey, id: u64, at: SystemTime) -> BoxFuture<'static, ()> {
        let manager = self.0.upgrade();
        Box::pin(async move {
            if let Some(manager) = manager {
                manager.restarted(key, id, at).await;
            }
        })
    }

    fn finished(&self, key: JobKey, id: u64) -> BoxFuture<'static, ()> {
        let manager = self.0.upgrade();
        Box::pin(async move {
            if let Some(manager) = manager {
                manager.finished(key, id).await;
            }
        })
    }

    fn may_send(&self, key: JobKey, id: u64) -> BoxFuture<'static, bool> {
        let manager = self.0.upgrade();
        Box::pin(async move {
            match manager {
                Some(manager) => manager.may_send(key, id).await,
                None => false,
            }
        })
    }
}

/// `delay_timeout` in milliseconds as a duration (positive by validation).
pub fn timeout_from_ms(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delegation::homeserver::{Action, DelayedEvents, Outcome};
    use crate::delegation::job::{ParticipantLookup, Presence};
    use crate::delegation::store::StoreError;
    use std::collections::BTreeMap;
    use std::sync::Mutex as StdMutex;

    /// Records which delay ids were acted on.
    #[derive(Default)]
    struct Homeserver(StdMutex<Vec<(String, Action)>>);

    impl DelayedEvents for Homeserver {
        fn act<'a>(
            &'a self,
            _: &'a str,
            delay_id: &'a str,
            action: Action,
        ) -> BoxFuture<'a, Outcome> {
            self.0.lock().unwrap().push((delay_id.to_owned(), action));
            Box::pin(async { Outcome::Done })
        }
    }

    struct Absent;

    impl ParticipantLookup for Absent {
        fn presence<'a>(&'a self, _: &'a JobKey) -> BoxFuture<'a, Presence> {
            Box::pin(async { Presence::Absent })
        }
    }

    /// An in-memory store of one replica that holds every job: the records, and the
    /// keys it was asked to release.
    #[derive(Default)]
    struct MemoryStore(StdMutex<BTreeMap<JobKey, JobRecord>>, StdMutex<Vec<JobKey>>);

    impl Store for MemoryStore {
        fn take<'a>(&'a self, record: &'a JobRecord) -> BoxFuture<'a, Result<(), StoreError>> {
            self.0
                .lock()
                .unwrap()
                .insert(record.params.key.clone(), record.clone());
            Box::pin(async { Ok(()) })
        }
        fn update<'a>(&'a self, record: &'a JobRecord) -> BoxFuture<'a, Result<bool, StoreError>> {
            self.0
                .lock()
                .unwrap()
                .insert(record.params.key.clone(), record.clone());
            Box::pin(async { Ok(true) })
        }
        fn finish<'a>(&'a self, key: &'a JobKey) -> BoxFuture<'a, Result<(), StoreError>> {
            self.0.lock().unwrap().remove(key);
            Box::pin(async { Ok(()) })
        }
        fn holds<'a>(&'a self, _: &'a JobKey) -> BoxFuture<'a, Result<bool, StoreError>> {
            Box::pin(async { Ok(true) })
        }
        fn renew<'a>(&'a self, _: &'a [JobKey]) -> BoxFuture<'a, Result<Vec<JobKey>, StoreError>> {
            Box::pin(async { Ok(Vec::new()) })
        }
        fn claim_free(&self) -> BoxFuture<'_, Result<Vec<JobRecord>, StoreError>> {
            let all = self.0.lock().unwrap().values().cloned().collect();
            Box::pin(async move { Ok(all) })
        }
        fn release<'a>(&'a self, keys: &'a [JobKey]) -> BoxFuture<'a, Result<(), StoreError>> {
            self.1.lock().unwrap().extend_from_slice(keys);
            Box::pin(async { Ok(()) })
        }
        fn forward<'a>(
            &'a self,
            _: &'a JobKey,
            _: Event,
        ) -> BoxFuture<'a, Result<bool, StoreError>> {
            Box::pin(async { Ok(false) })
        }
    }

    fn key() -> JobKey {
        JobKey {
            room: "R".into(),
            identity: "I".into(),
        }
    }

    fn params(delay_id: &str, secs: u64) -> JobParams {
        JobParams {
            delay_id: delay_id.into(),
            delay_timeout: Duration::from_secs(secs),
            server_name: "hs".into(),
            key: key(),
        }
    }

    fn manager(store: Arc<MemoryStore>) -> (Arc<Manager>, Arc<Homeserver>) {
        let homeserver = Arc::new(Homeserver::default());
        let deps = Arc::new(JobDeps {
            homeserver: homeserver.clone(),
            participants: Arc::new(Absent),
            sanity_interval: None,
        });
        (Manager::new(store, deps), homeserver)
    }

    #[tokio::test(start_paused = true)]
    async fn replacement_only_affects_the_latest_job() {
        let store = Arc::new(MemoryStore::default());
        let (manager, homeserver) = manager(store.clone());
        manager.add(params("old", 10), "@u:hs").await.unwrap();
        assert_eq!(store.0.lock().unwrap()[&key()].params.delay_id, "old");
        tokio::time::sleep(Duration::from_secs(2)).await;
        manager.add(params("new", 10), "@u:hs").await.unwrap();
        assert_eq!(manager.len().await, 1);
        assert_eq!(store.0.lock().unwrap()[&key()].params.delay_id, "new");
        assert_eq!(manager.notify(&key(), Event::Joined).await, Routed::Here);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            manager
                .notify(
                    &key(),
                    Event::Left {
                        client_initiated: true
                    }
                )
                .await,
            Routed::Here
        );
        tokio::time::sleep(Duration::from_secs(30)).await;
        // Only the new job called the homeserver; the old one never did, even after its
        // own wait would have ended.
        assert_eq!(
            *homeserver.0.lock().unwrap(),
            [
                ("new".to_owned(), Action::Restart),
                ("new".to_owned(), Action::Send)
            ]
        );
        assert!(manager.is_empty().await);
        assert!(store.0.lock().unwrap().is_empty());
        assert_eq!(manager.notify(&key(), Event::Joined).await, Routed::Nowhere);
    }

    #[tokio::test(start_paused = true)]
    async fn restore_purges_expired_jobs_and_resumes_the_rest() {
        let store = Arc::new(MemoryStore::default());
        let mut expired = JobRecord {
            params: params("expired", 10),
            restarted_at: SystemTime::now() - Duration::from_secs(60),
            connected: false,
        };
        expired.params.key.identity = "gone".into();
        store
            .0
            .lock()
            .unwrap()
            .insert(expired.params.key.clone(), expired);
        let live = JobRecord {
            params: params("live", 600),
            restarted_at: SystemTime::now(),
            connected: false,
        };
        store.0.lock().unwrap().insert(key(), live);
        let (manager, homeserver) = manager(store.clone());
        assert_eq!(manager.restore().await, 1);
        assert_eq!(store.0.lock().unwrap().len(), 1);
        assert!(store.0.lock().unwrap().contains_key(&key()));
        // The resumed job waits, and sends when its wait ends.
        tokio::time::sleep(Duration::from_secs(601)).await;
        assert_eq!(
            *homeserver.0.lock().unwrap(),
            [("live".to_owned(), Action::Send)]
        );
        assert!(store.0.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_keeps_records_and_refuses_new_jobs() {
        let store = Arc::new(MemoryStore::default());
        let (manager, homeserver) = manager(store.clone());
        manager.add(params("d", 10), "@u:hs").await.unwrap();
        manager.shutdown().await;
        assert_eq!(
            manager.add(params("e", 10), "@u:hs").await,
            Err(AddError::ShuttingDown)
        );
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(homeserver.0.lock().unwrap().is_empty());
        assert_eq!(store.0.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn jobs_are_capped_per_user() {
        let (manager, _) = manager(Arc::new(MemoryStore::default()));
        let job = |n: usize| {
            let mut job = params(&format!("d{n}"), 600);
            job.key.room = format!("room{n}");
            job
        };
        for n in 0..MAX_JOBS_PER_USER {
            manager.add(job(n), "@greedy:hs").await.unwrap();
        }
        assert_eq!(
            manager.add(job(MAX_JOBS_PER_USER), "@greedy:hs").await,
            Err(AddError::TooManyForUser)
        );
        // Replacing one of them is fine, and other users are not affected.
        manager.add(job(0), "@greedy:hs").await.unwrap();
        manager
            .add(job(MAX_JOBS_PER_USER), "@other:hs")
            .await
            .unwrap();
        assert_eq!(manager.len().await, MAX_JOBS_PER_USER + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn jobs_are_capped_in_total() {
        let store = Arc::new(MemoryStore::default());
        let deps = Arc::new(JobDeps {
            homeserver: Arc::new(Homeserver::default()),
            participants: Arc::new(Absent),
            sanity_interval: None,
        });
        let manager = Arc::new_cyclic(|this| Manager {
            jobs: Mutex::default(),
            store: store.clone(),
            deps,
            next_id: AtomicU64::new(1),
            max_jobs: 50,
            max_jobs_per_user: MAX_JOBS_PER_USER,
            shutting_down: AtomicBool::new(false),
            this: this.clone(),
        });
        for n in 0..49 {
            let mut job = params("d", 600);
            job.key.identity = format!("id{n}");
            manager.add(job, &format!("@u{n}:hs")).await.unwrap();
        }
        // Taking over stops at the cap too: of two stored jobs one starts, the other is
        // let go for another replica.
        for n in 0..2 {
            let mut stored = params("stored", 600);
            stored.key.identity = format!("stored{n}");
            store.0.lock().unwrap().insert(
                stored.key.clone(),
                JobRecord {
                    params: stored,
                    restarted_at: SystemTime::now(),
                    connected: false,
                },
            );
        }
        assert_eq!(manager.restore().await, 1);
        assert_eq!(manager.len().await, 50);
        assert_eq!(store.1.lock().unwrap().len(), 1);
        let mut one_more = params("d", 600);
        one_more.key.identity = "one more".into();
        assert_eq!(
            manager.add(one_more, "@new:hs").await,
            Err(AddError::TooMany)
        );
        // At the cap nothing is claimed at all.
        assert_eq!(manager.restore().await, 0);
        assert_eq!(store.1.lock().unwrap().len(), 1);
        manager.shutdown().await;
    }
}
