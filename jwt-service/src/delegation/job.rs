//! One delegated delayed leave (spec §5.1): a task per (room, identity) that keeps the
//! user's MSC4140 delayed "leave" event from firing while they are in the call, and
//! fires it as soon as they are gone.
//!
//! States: `Waiting` (until the participant shows up: webhook "joined" or a successful
//! GetParticipant poll) → `Connected` (restart the delayed event every 80 % of its
//! timeout) → `Disconnected` (send it now) or `Aborted` (leave it to its own timer).
//! Timers use tokio's clock so tests can run hours of job life in milliseconds.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until};

use super::backoff::Backoff;
use super::homeserver::{Action, DelayedEvents, Outcome};
use crate::openid::discovery::BoxFuture;

/// No job waits or retries longer than this; also the largest `delay_timeout` a job
/// works with.
pub const MAX_WAIT: Duration = Duration::from_secs(3600);
/// The smallest `delay_timeout` a job works with: restarts come every 80 % of it, so a
/// client asking for a millisecond must not make the service call its homeserver a
/// thousand times a second.
pub const MIN_DELAY_TIMEOUT: Duration = Duration::from_secs(1);
/// Least time a final send gets.
pub const MIN_SEND_BUDGET: Duration = Duration::from_secs(1);

/// What identifies a job: the LiveKit room alias and participant identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey {
    /// LiveKit room alias.
    pub room: String,
    /// LiveKit participant identity.
    pub identity: String,
}

/// A job's parameters (what is persisted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobParams {
    /// The MSC4140 delay id (the capability).
    pub delay_id: String,
    /// The delayed event's timeout.
    pub delay_timeout: Duration,
    /// The user's homeserver.
    pub server_name: String,
    /// Room and identity.
    pub key: JobKey,
}

/// Something that happened to the participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Webhook `participant_joined`.
    Joined,
    /// Webhook `participant_left` / `participant_connection_aborted`.
    Left {
        /// The disconnect reason was `CLIENT_INITIATED`.
        client_initiated: bool,
    },
}

/// Whether a participant is in a room, as far as the SFU says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// GetParticipant found it.
    Present,
    /// GetParticipant answered `not_found`.
    Absent,
    /// Any other failure.
    Unknown,
}

/// Asks the SFU about a participant.
pub trait ParticipantLookup: Send + Sync {
    /// Is `key.identity` in `key.room`?
    fn presence<'a>(&'a self, key: &'a JobKey) -> BoxFuture<'a, Presence>;
}

/// What a job tells its owner.
pub trait JobObserver: Send + Sync {
    /// A restart succeeded at `at` (persist it).
    fn restarted(&self, key: JobKey, id: u64, at: SystemTime) -> BoxFuture<'static, ()>;
    /// The job ended (forget and unpersist it).
    fn finished(&self, key: JobKey, id: u64) -> BoxFuture<'static, ()>;
    /// Asked right before the leave event is sent: is the job still this replica's?
    /// (Another replica may have taken it over; only one may send.)
    fn may_send(&self, key: JobKey, id: u64) -> BoxFuture<'static, bool>;
}

/// Where a job starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A new job: wait for the participant to show up.
    Waiting,
    /// A job taken over from a replica that saw the participant connected: ask the SFU
    /// at once, send if they are gone, keep the event alive otherwise.
    Connected,
}

/// What jobs need from the outside.
pub struct JobDeps {
    /// The homeserver calls.
    pub homeserver: Arc<dyn DelayedEvents>,
    /// The SFU look-ups.
    pub participants: Arc<dyn ParticipantLookup>,
    /// Phase-2 polling interval (`LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS`).
    pub sanity_interval: Option<Duration>,
}

/// How a job ended (returned for tests and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The leave event was sent (or was already gone).
    Sent,
    /// The send failed within its budget.
    SendFailed,
    /// Stopped without sending.
    Aborted,
    /// The owner dropped the job (replacement or shutdown).
    Dropped,
}

/// Aborts a helper task when the job ends, however it ends.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum Signal {
    Event(Event),
    Found,
    Gone,
    Dropped,
}

/// Runs the job to its end. `events` closing means the owner dropped it.
pub async fn run(
    params: JobParams,
    id: u64,
    deps: Arc<JobDeps>,
    mut events: mpsc::UnboundedReceiver<Event>,
    observer: Arc<dyn JobObserver>,
    start: Start,
) -> End {
    // The timeout the job works with, whatever the client asked for.
    let params = JobParams {
        delay_timeout: params.delay_timeout.clamp(MIN_DELAY_TIMEOUT, MAX_WAIT),
        ..params
    };
    let (lookup_tx, mut lookup_rx) = mpsc::unbounded_channel();
    let _lookup = AbortOnDrop(tokio::spawn(lookup_participant(
        params.key.clone(),
        params.delay_timeout,
        deps.clone(),
        lookup_tx,
    )));
    let deadline = Instant::now() + params.delay_timeout;
    if start == Start::Connected {
        if deps.participants.presence(&params.key).await == Presence::Absent {
            tracing::info!(key = ?params.key, "taken-over participant is gone; sending the leave event");
            let end = send(&params, id, &deps, &observer, deadline).await;
            return finish(&params, id, &observer, end).await;
        }
    } else if let Some(end) = wait(&params, id, &deps, &mut events, &mut lookup_rx, &observer).await
    {
        return end;
    }
    connected(&params, id, &deps, &mut events, &mut lookup_rx, &observer).await
}

/// `Waiting`: until the participant shows up (`None`), or the job ends.
async fn wait(
    params: &JobParams,
    id: u64,
    deps: &JobDeps,
    events: &mut mpsc::UnboundedReceiver<Event>,
    lookup_rx: &mut mpsc::UnboundedReceiver<Signal>,
    observer: &Arc<dyn JobObserver>,
) -> Option<End> {
    let wait_until = Instant::now() + params.delay_timeout;
    let deadline = wait_until;
    loop {
        let signal = tokio::select! {
            () = sleep_until(wait_until) => None,
            signal = next_signal(events, lookup_rx) => Some(signal),
        };
        match signal {
            None => {
                tracing::info!(key = ?params.key, "participant never showed up; sending the leave event");
                let end = send(params, id, deps, observer, deadline).await;
                return Some(finish(params, id, observer, end).await);
            }
            Some(Signal::Event(Event::Joined) | Signal::Found) => return None,
            Some(Signal::Event(Event::Left {
                client_initiated: false,
            })) => {
                tracing::info!(key = ?params.key, "connection aborted before joining; leaving the delayed event alone");
                return Some(finish(params, id, observer, End::Aborted).await);
            }
            // A client-initiated leave while waiting is an earlier session leaving.
            Some(
                Signal::Event(Event::Left {
                    client_initiated: true,
                })
                | Signal::Gone,
            ) => {}
            Some(Signal::Dropped) => return Some(End::Dropped),
        }
    }
}

/// `Connected`: restart the delayed event every 80 % of its timeout until the
/// participant leaves.
async fn connected(
    params: &JobParams,
    id: u64,
    deps: &JobDeps,
    events: &mut mpsc::UnboundedReceiver<Event>,
    lookup_rx: &mut mpsc::UnboundedReceiver<Signal>,
    observer: &Arc<dyn JobObserver>,
) -> End {
    tracing::info!(key = ?params.key, "participant connected; keeping the delayed event alive");
    let mut deadline = Instant::now() + params.delay_timeout;
    loop {
        match retry(params, deps, Action::Restart, deadline).await {
            Outcome::Done => {
                deadline = Instant::now() + params.delay_timeout;
                observer
                    .restarted(params.key.clone(), id, SystemTime::now())
                    .await;
            }
            other => {
                tracing::warn!(key = ?params.key, "restart failed ({other:?}); aborting the job");
                return finish(params, id, observer, End::Aborted).await;
            }
        }
        let next_restart = Instant::now() + params.delay_timeout.mul_f64(0.8);
        loop {
            let signal = tokio::select! {
                () = sleep_until(next_restart) => None,
                signal = next_signal(events, lookup_rx) => Some(signal),
            };
            match signal {
                None => break,
                Some(Signal::Event(Event::Left { .. }) | Signal::Gone) => {
                    tracing::info!(key = ?params.key, "participant left; sending the leave event");
                    let end = send(params, id, deps, observer, deadline).await;
                    return finish(params, id, observer, end).await;
                }
                Some(Signal::Event(Event::Joined) | Signal::Found) => {}
                Some(Signal::Dropped) => return End::Dropped,
            }
        }
    }
}

/// The next thing that happens: a webhook event, a look-up result, or the owner
/// dropping the job. Both receivers are cancel-safe.
async fn next_signal(
    events: &mut mpsc::UnboundedReceiver<Event>,
    lookup: &mut mpsc::UnboundedReceiver<Signal>,
) -> Signal {
    tokio::select! {
        event = events.recv() => event.map_or(Signal::Dropped, Signal::Event),
        Some(signal) = lookup.recv() => signal,
    }
}

async fn finish(params: &JobParams, id: u64, observer: &Arc<dyn JobObserver>, end: End) -> End {
    if end == End::Dropped {
        return end;
    }
    tracing::info!(key = ?params.key, ?end, "delegated leave job ended");
    observer.finished(params.key.clone(), id).await;
    end
}

/// Sends the leave event within `clamp(deadline − now, 1 s, 1 h)`; a 404 counts as sent.
/// A job that is no longer this replica's sends nothing ([`End::Dropped`]).
async fn send(
    params: &JobParams,
    id: u64,
    deps: &JobDeps,
    observer: &Arc<dyn JobObserver>,
    deadline: Instant,
) -> End {
    if !observer.may_send(params.key.clone(), id).await {
        tracing::info!(key = ?params.key, "another replica holds the job now; not sending");
        return End::Dropped;
    }
    let budget = deadline
        .saturating_duration_since(Instant::now())
        .clamp(MIN_SEND_BUDGET, MAX_WAIT);
    match retry(params, deps, Action::Send, Instant::now() + budget).await {
        Outcome::Done | Outcome::NotFound => End::Sent,
        other => {
            tracing::warn!(key = ?params.key, "could not send the leave event: {other:?}");
            End::SendFailed
        }
    }
}

/// Retries `action` with backoff (or the server's `Retry-After`, at most [`MAX_WAIT`])
/// until `until`. Returns the last outcome: `Done`, `NotFound`, `Unresolvable`, or a
/// retryable one when the next wait would end after `until`.
async fn retry(params: &JobParams, deps: &JobDeps, action: Action, until: Instant) -> Outcome {
    let mut backoff = Backoff::new();
    loop {
        let outcome = deps
            .homeserver
            .act(&params.server_name, &params.delay_id, action)
            .await;
        let wait = match &outcome {
            Outcome::Done | Outcome::NotFound | Outcome::Unresolvable(_) => return outcome,
            Outcome::RetryAfter(delay) => *delay,
            Outcome::Transient(why) => {
                tracing::debug!(key = ?params.key, ?action, "retrying: {why}");
                backoff.next_delay()
            }
        };
        let wait = wait.min(MAX_WAIT);
        if until.saturating_duration_since(Instant::now()) <= wait {
            return outcome;
        }
        sleep(wait).await;
    }
}

/// Phase 1: poll GetParticipant with backoff until found or `give_up` passes. Phase 2
/// (with a sanity interval): poll at that interval and report when the participant is
/// gone.
async fn lookup_participant(
    key: JobKey,
    give_up: Duration,
    deps: Arc<JobDeps>,
    report: mpsc::UnboundedSender<Signal>,
) {
    let stop = Instant::now() + give_up;
    let mut backoff = Backoff::new();
    loop {
        if deps.participants.presence(&key).await == Presence::Present {
            let _ = report.send(Signal::Found);
            break;
        }
        let wait = backoff.next_delay();
        if stop.saturating_duration_since(Instant::now()) <= wait {
            return;
        }
        sleep(wait).await;
    }
    let Some(interval) = deps.sanity_interval else {
        return;
    };
    loop {
        sleep(interval).await;
        if deps.participants.presence(&key).await == Presence::Absent {
            let _ = report.send(Signal::Gone);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// Records calls with their (paused-clock) time; answers from a queue, then `Done`.
    #[derive(Default)]
    struct FakeHomeserver {
        calls: Mutex<Vec<(Action, Duration)>>,
        answers: Mutex<VecDeque<(Action, Outcome)>>,
        start: Mutex<Option<Instant>>,
    }

    impl FakeHomeserver {
        fn answer(&self, action: Action, outcome: Outcome) {
            self.answers.lock().unwrap().push_back((action, outcome));
        }
        fn calls(&self) -> Vec<(Action, u64)> {
            self.calls
                .lock()
                .unwrap()
                .iter()
                .map(|(a, t)| (*a, t.as_secs()))
                .collect()
        }
    }

    impl DelayedEvents for FakeHomeserver {
        fn act<'a>(
            &'a self,
            server: &'a str,
            delay_id: &'a str,
            action: Action,
        ) -> BoxFuture<'a, Outcome> {
            assert_eq!((server, delay_id), ("hs.example", "syd_1"));
            let start = self.start.lock().unwrap().expect("start set");
            self.calls.lock().unwrap().push((action, start.elapsed()));
            let mut answers = self.answers.lock().unwrap();
            let outcome = match answers.front() {
                Some((a, _)) if *a == action => {
                    answers.pop_front().map(|(_, o)| o).unwrap_or(Outcome::Done)
                }
                _ => Outcome::Done,
            };
            Box::pin(async move { outcome })
        }
    }

    struct FakeSfu(Mutex<Presence>);

    impl ParticipantLookup for FakeSfu {
        fn presence<'a>(&'a self, _: &'a JobKey) -> BoxFuture<'a, Presence> {
            let presence = *self.0.lock().unwrap();
            Box::pin(async move { presence })
        }
    }

    #[derive(Default)]
    struct Recorder {
        restarted: Mutex<u32>,
        finished: Mutex<u32>,
        /// Another replica took the job.
        lost: Mutex<bool>,
    }

    impl JobObserver for Recorder {
        fn restarted(&self, _: JobKey, _: u64, _: SystemTime) -> BoxFuture<'static, ()> {
            *self.restarted.lock().unwrap() += 1;
            Box::pin(async {})
        }
        fn finished(&self, _: JobKey, _: u64) -> BoxFuture<'static, ()> {
            *self.finished.lock().unwrap() += 1;
            Box::pin(async {})
        }
        fn may_send(&self, _: JobKey, _: u64) -> BoxFuture<'static, bool> {
            let may = !*self.lost.lock().unwrap();
            Box::pin(async move { may })
        }
    }

    struct Run {
        homeserver: Arc<FakeHomeserver>,
        sfu: Arc<FakeSfu>,
        recorder: Arc<Recorder>,
        events: mpsc::UnboundedSender<Event>,
        task: JoinHandle<End>,
    }

    fn start(timeout_secs: u64, presence: Presence, sanity: Option<u64>) -> Run {
        start_at(timeout_secs, presence, sanity, Start::Waiting)
    }

    fn start_at(timeout_secs: u64, presence: Presence, sanity: Option<u64>, at: Start) -> Run {
        start_with(Duration::from_secs(timeout_secs), presence, sanity, at)
    }

    fn start_with(
        delay_timeout: Duration,
        presence: Presence,
        sanity: Option<u64>,
        at: Start,
    ) -> Run {
        let homeserver = Arc::new(FakeHomeserver::default());
        *homeserver.start.lock().unwrap() = Some(Instant::now());
        let sfu = Arc::new(FakeSfu(Mutex::new(presence)));
        let recorder = Arc::new(Recorder::default());
        let deps = Arc::new(JobDeps {
            homeserver: homeserver.clone(),
            participants: sfu.clone(),
            sanity_interval: sanity.map(Duration::from_secs),
        });
        let params = JobParams {
            delay_id: "syd_1".into(),
            delay_timeout,
            server_name: "hs.example".into(),
            key: JobKey {
                room: "R".into(),
                identity: "I".into(),
            },
        };
        let (events, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(params, 1, deps, receiver, recorder.clone(), at));
        Run {
            homeserver,
            sfu,
            recorder,
            events,
            task,
        }
    }

    async fn at(secs: u64) {
        // Let the job reach its next await point, then jump the paused clock.
        tokio::task::yield_now().await;
        sleep(Duration::from_secs(secs)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn never_joined_sends_when_the_wait_ends() {
        let run = start(10, Presence::Unknown, None);
        assert_eq!(run.task.await.unwrap(), End::Sent);
        assert_eq!(run.homeserver.calls(), [(Action::Send, 10)]);
        assert_eq!(*run.recorder.finished.lock().unwrap(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_is_capped_at_an_hour() {
        let run = start(7200, Presence::Unknown, None);
        assert_eq!(run.task.await.unwrap(), End::Sent);
        assert_eq!(run.homeserver.calls(), [(Action::Send, 3600)]);
    }

    #[tokio::test(start_paused = true)]
    async fn connected_restarts_every_80_percent_then_sends_on_leave() {
        let run = start(10, Presence::Unknown, None);
        at(2).await;
        run.events.send(Event::Joined).unwrap();
        at(20).await;
        run.events
            .send(Event::Left {
                client_initiated: true,
            })
            .unwrap();
        assert_eq!(run.task.await.unwrap(), End::Sent);
        assert_eq!(
            run.homeserver.calls(),
            [
                (Action::Restart, 2),
                (Action::Restart, 10),
                (Action::Restart, 18),
                (Action::Send, 22)
            ]
        );
        assert_eq!(*run.recorder.restarted.lock().unwrap(), 3);
        assert_eq!(*run.recorder.finished.lock().unwrap(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn taken_over_jobs_check_the_sfu_at_once() {
        let gone = start_at(100, Presence::Absent, None, Start::Connected);
        assert_eq!(gone.task.await.unwrap(), End::Sent);
        assert_eq!(gone.homeserver.calls(), [(Action::Send, 0)]);
        let present = start_at(100, Presence::Present, None, Start::Connected);
        at(1).await;
        present
            .events
            .send(Event::Left {
                client_initiated: true,
            })
            .unwrap();
        assert_eq!(present.task.await.unwrap(), End::Sent);
        assert_eq!(
            present.homeserver.calls(),
            [(Action::Restart, 0), (Action::Send, 1)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_another_replica_took_never_sends() {
        let run = start(10, Presence::Unknown, None);
        *run.recorder.lost.lock().unwrap() = true;
        assert_eq!(run.task.await.unwrap(), End::Dropped);
        assert!(run.homeserver.calls().is_empty());
        assert_eq!(*run.recorder.finished.lock().unwrap(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn aborted_connection_while_waiting_sends_nothing() {
        let run = start(10, Presence::Unknown, None);
        at(1).await;
        run.events
            .send(Event::Left {
                client_initiated: false,
            })
            .unwrap();
        assert_eq!(run.task.await.unwrap(), End::Aborted);
        assert!(run.homeserver.calls().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn client_initiated_leave_while_waiting_is_ignored() {
        let run = start(10, Presence::Unknown, None);
        at(1).await;
        run.events
            .send(Event::Left {
                client_initiated: true,
            })
            .unwrap();
        assert_eq!(run.task.await.unwrap(), End::Sent);
        assert_eq!(run.homeserver.calls(), [(Action::Send, 10)]);
    }

    #[tokio::test(start_paused = true)]
    async fn polling_finds_the_participant_and_phase_two_notices_it_gone() {
        let run = start(100, Presence::Present, Some(30));
        at(45).await;
        *run.sfu.0.lock().unwrap() = Presence::Absent;
        assert_eq!(run.task.await.unwrap(), End::Sent);
        let calls = run.homeserver.calls();
        assert_eq!(calls[0], (Action::Restart, 0));
        assert_eq!(calls.last(), Some(&(Action::Send, 60)));
    }

    #[tokio::test(start_paused = true)]
    async fn restart_not_found_aborts_without_sending() {
        let run = start(10, Presence::Unknown, None);
        run.homeserver.answer(Action::Restart, Outcome::NotFound);
        at(1).await;
        run.events.send(Event::Joined).unwrap();
        assert_eq!(run.task.await.unwrap(), End::Aborted);
        assert_eq!(run.homeserver.calls(), [(Action::Restart, 1)]);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_and_not_found_on_send() {
        let run = start(10, Presence::Unknown, None);
        run.homeserver
            .answer(Action::Restart, Outcome::RetryAfter(Duration::from_secs(3)));
        run.homeserver.answer(Action::Restart, Outcome::Done);
        at(1).await;
        run.events.send(Event::Joined).unwrap();
        at(2).await;
        run.homeserver.answer(Action::Send, Outcome::NotFound);
        run.events
            .send(Event::Left {
                client_initiated: false,
            })
            .unwrap();
        assert_eq!(run.task.await.unwrap(), End::Sent);
        assert_eq!(
            run.homeserver.calls(),
            [
                (Action::Restart, 1),
                (Action::Restart, 4),
                (Action::Send, 4)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_retry_until_the_budget_runs_out() {
        let run = start(10, Presence::Unknown, None);
        for _ in 0..100 {
            run.homeserver
                .answer(Action::Send, Outcome::Transient("HTTP 502".into()));
        }
        assert_eq!(run.task.await.unwrap(), End::SendFailed);
        let calls = run.homeserver.calls();
        // Waiting ended at 10 s; the send budget is the 1 s minimum.
        assert!(
            calls
                .iter()
                .all(|(a, t)| *a == Action::Send && (10..=11).contains(t)),
            "{calls:?}"
        );
        assert_eq!(*run.recorder.finished.lock().unwrap(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn dropped_jobs_stop_silently() {
        let run = start(10, Presence::Unknown, None);
        at(1).await;
        drop(run.events);
        assert_eq!(run.task.await.unwrap(), End::Dropped);
        assert!(run.homeserver.calls().is_empty());
        assert_eq!(*run.recorder.finished.lock().unwrap(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_huge_retry_after_ends_the_job_instead_of_panicking() {
        let run = start(10, Presence::Unknown, None);
        run.homeserver.answer(
            Action::Send,
            Outcome::RetryAfter(Duration::from_secs(u64::MAX)),
        );
        assert_eq!(run.task.await.unwrap(), End::SendFailed);
        assert_eq!(run.homeserver.calls(), [(Action::Send, 10)]);
        assert_eq!(*run.recorder.finished.lock().unwrap(), 1);

        let run = start(10, Presence::Unknown, None);
        run.homeserver
            .answer(Action::Restart, Outcome::RetryAfter(Duration::MAX));
        at(1).await;
        run.events.send(Event::Joined).unwrap();
        assert_eq!(run.task.await.unwrap(), End::Aborted);
        assert_eq!(run.homeserver.calls(), [(Action::Restart, 1)]);
    }

    #[tokio::test(start_paused = true)]
    async fn tiny_delay_timeouts_are_floored() {
        let run = start_with(
            Duration::from_millis(1),
            Presence::Present,
            None,
            Start::Waiting,
        );
        at(10).await;
        run.events
            .send(Event::Left {
                client_initiated: true,
            })
            .unwrap();
        assert_eq!(run.task.await.unwrap(), End::Sent);
        let restarts = run
            .homeserver
            .calls()
            .iter()
            .filter(|(action, _)| *action == Action::Restart)
            .count();
        // One restart at the start, then one every 0.8 s of the 1 s floor.
        assert!((12..=14).contains(&restarts), "{restarts} restarts in 10 s");
    }

    #[tokio::test(start_paused = true)]
    async fn huge_delay_timeouts_are_capped() {
        let run = start_with(
            Duration::from_millis(i64::MAX as u64),
            Presence::Unknown,
            None,
            Start::Waiting,
        );
        assert_eq!(run.task.await.unwrap(), End::Sent);
        assert_eq!(run.homeserver.calls(), [(Action::Send, 3600)]);
    }
}
