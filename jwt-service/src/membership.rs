//! Kick on leave (MSC4195 "Kicking users from the SFU on room leave/ban"): a user who
//! leaves or is banned from the Matrix room must not stay in its call. Every token this
//! service issues is written down ([`book`]: LiveKit room and identity → Matrix room and
//! user), and participants are removed from the SFU when their user is no longer joined:
//!
//! - every `LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS`, one replica (a turn taken in
//!   Redis) asks the homeserver for each tracked Matrix room's `joined_members` and
//!   LiveKit for each LiveKit room's participants (`ListParticipants`), and removes
//!   (`RemoveParticipant`) every participant whose user is not joined;
//! - on LiveKit's `participant_joined` webhook the user's membership is checked at once
//!   (MSC4502 `is_joined`): a removed participant whose token is still valid cannot
//!   simply come back.
//!
//! Failures leave everyone connected (a homeserver outage must not end every call), and
//! so does a room our homeserver is not in, where membership cannot be known. It needs
//! application-service mode (the homeserver answers the application service) and is off
//! by default.

pub mod book;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use book::{Book, Tracked};

use crate::appservice::homeserver::{AppServiceApi, Member};
use crate::livekit::token::JOIN_TOKEN_TTL;
use crate::livekit::twirp::{RoomService, TwirpError};
use crate::openid::discovery::BoxFuture;

/// What the SFU must do for kick on leave (a trait so it is tested without one).
pub trait SfuAdmin: Send + Sync {
    /// The identities in `room`.
    fn participants<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<Vec<String>, TwirpError>>;
    /// Disconnects `identity` from `room`.
    fn remove<'a>(
        &'a self,
        room: &'a str,
        identity: &'a str,
    ) -> BoxFuture<'a, Result<(), TwirpError>>;
}

impl SfuAdmin for RoomService {
    fn participants<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<Vec<String>, TwirpError>> {
        Box::pin(self.list_participants(room))
    }

    fn remove<'a>(
        &'a self,
        room: &'a str,
        identity: &'a str,
    ) -> BoxFuture<'a, Result<(), TwirpError>> {
        Box::pin(self.remove_participant(room, identity))
    }
}

/// The kick-on-leave enforcer.
pub struct Membership {
    book: Arc<dyn Book>,
    homeserver: Arc<dyn AppServiceApi>,
    sfu: Arc<dyn SfuAdmin>,
    /// Our homeserver's name (asked whether it is still in a room).
    server_name: String,
    interval: Duration,
}

impl Membership {
    /// An enforcer sweeping every `interval`.
    pub fn new(
        book: Arc<dyn Book>,
        homeserver: Arc<dyn AppServiceApi>,
        sfu: Arc<dyn SfuAdmin>,
        server_name: String,
        interval: Duration,
    ) -> Self {
        Self {
            book,
            homeserver,
            sfu,
            server_name,
            interval,
        }
    }

    /// Writes down a token just issued.
    pub async fn track(&self, room: &str, identity: &str, room_id: &str, user_id: &str) {
        let entry = Tracked {
            room: room.to_owned(),
            identity: identity.to_owned(),
            room_id: room_id.to_owned(),
            user_id: user_id.to_owned(),
            issued_at: SystemTime::now(),
        };
        if let Err(e) = self.book.track(&entry).await {
            tracing::warn!(%room, "cannot track the participant for kick on leave: {e}");
        }
    }

    /// LiveKit says `identity` joined `room`: still a member of the Matrix room?
    pub async fn participant_joined(&self, room: &str, identity: &str) {
        let entry = match self.book.get(room, identity).await {
            Ok(Some(entry)) => entry,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(%room, "cannot read the tracked participant: {e}");
                return;
            }
        };
        match self
            .homeserver
            .is_joined(&entry.room_id, Member::User(&entry.user_id))
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(user = %entry.user_id, %room, "joined the call without being in the room");
                self.kick(&entry).await;
            }
            Err(e) => tracing::warn!(%room, "cannot check membership of a new participant: {e}"),
        }
    }

    /// Sweeps every `interval` while this replica has the turn, forever.
    pub async fn run(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            match self.book.sweep_turn(self.interval).await {
                Ok(true) => self.sweep().await,
                Ok(false) => {}
                Err(e) => tracing::warn!("cannot take the membership sweep turn: {e}"),
            }
        }
    }

    /// One reconciliation of every tracked participant.
    pub async fn sweep(&self) {
        let tracked = match self.book.all().await {
            Ok(tracked) => tracked,
            Err(e) => {
                tracing::warn!("cannot read the tracked participants: {e}");
                return;
            }
        };
        let mut by_matrix_room: BTreeMap<String, Vec<Tracked>> = BTreeMap::new();
        for entry in tracked {
            by_matrix_room
                .entry(entry.room_id.clone())
                .or_default()
                .push(entry);
        }
        for (room_id, entries) in by_matrix_room {
            // Unknown membership removes nobody, but entries of tokens that expired
            // unused are still forgotten, so the book cannot grow without bound.
            let members = self.members(&room_id).await;
            let mut by_livekit_room: BTreeMap<&str, Vec<&Tracked>> = BTreeMap::new();
            for entry in &entries {
                by_livekit_room.entry(&entry.room).or_default().push(entry);
            }
            for (room, entries) in by_livekit_room {
                let present: HashSet<String> = match self.sfu.participants(room).await {
                    Ok(identities) => identities.into_iter().collect(),
                    Err(e) => {
                        tracing::warn!(%room, "cannot list the SFU's participants: {e}");
                        continue;
                    }
                };
                for entry in entries {
                    if present.contains(&entry.identity) {
                        if members
                            .as_ref()
                            .is_some_and(|members| !members.contains(&entry.user_id))
                        {
                            tracing::info!(user = %entry.user_id, %room, "left the Matrix room; removing them from the call");
                            self.kick(entry).await;
                        }
                    } else if entry
                        .issued_at
                        .elapsed()
                        .is_ok_and(|age| age > JOIN_TOKEN_TTL)
                    {
                        // Gone, and their token can no longer bring them back.
                        if let Err(e) = self.book.forget(&entry.room, &entry.identity).await {
                            tracing::warn!("{e}");
                        }
                    }
                }
            }
        }
    }

    /// The joined members of `room_id`, or `None` where they cannot be known.
    async fn members(&self, room_id: &str) -> Option<HashSet<String>> {
        match self.homeserver.joined_members(room_id).await {
            Ok(Some(members)) => Some(members),
            Ok(None) => {
                // None of our users is in the room: our homeserver may have left, or
                // never was in it (a remote room); either way we cannot tell who is.
                let ours = self
                    .homeserver
                    .is_joined(room_id, Member::Server(&self.server_name))
                    .await;
                tracing::debug!(%room_id, ?ours, "membership unknown: our homeserver is not in the room");
                None
            }
            Err(e) => {
                tracing::warn!(%room_id, "cannot read the room's members: {e}");
                None
            }
        }
    }

    async fn kick(&self, entry: &Tracked) {
        match self.sfu.remove(&entry.room, &entry.identity).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                tracing::warn!(room = %entry.room, "cannot remove the participant: {e}");
                return;
            }
        }
        tracing::info!(user = %entry.user_id, room = %entry.room, "removed from the call");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::appservice::homeserver::{DelayedEvent, LookupError, Relayed};
    use book::MemoryBook;
    use std::sync::Mutex;

    /// Room `!r` has `members` (`None`: the homeserver refuses, `Err`: fails).
    struct Homeserver(Mutex<Result<Option<HashSet<String>>, String>>);

    impl AppServiceApi for Homeserver {
        fn is_joined<'a>(
            &'a self,
            _: &'a str,
            member: Member<'a>,
        ) -> BoxFuture<'a, Result<bool, String>> {
            let answer = match (&*self.0.lock().unwrap(), member) {
                (Ok(Some(members)), Member::User(user)) => Ok(members.contains(user)),
                (Ok(_), _) => Ok(false),
                (Err(e), _) => Err(e.clone()),
            };
            Box::pin(async move { answer })
        }
        fn relay_get_token<'a>(
            &'a self,
            _: &'a str,
            _: serde_json::Value,
        ) -> BoxFuture<'a, Result<Relayed, String>> {
            Box::pin(async { Err("unused".into()) })
        }
        fn delayed_event<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
        ) -> BoxFuture<'a, Result<DelayedEvent, LookupError>> {
            Box::pin(async { Err(LookupError::NotFound) })
        }
        fn joined_members<'a>(
            &'a self,
            _: &'a str,
        ) -> BoxFuture<'a, Result<Option<HashSet<String>>, String>> {
            let answer = self.0.lock().unwrap().clone();
            Box::pin(async move { answer })
        }
    }

    /// Room `R` has `present`; removals are recorded.
    #[derive(Default)]
    struct Sfu {
        present: Mutex<Vec<String>>,
        removed: Mutex<Vec<String>>,
    }

    impl SfuAdmin for Sfu {
        fn participants<'a>(
            &'a self,
            _: &'a str,
        ) -> BoxFuture<'a, Result<Vec<String>, TwirpError>> {
            let present = self.present.lock().unwrap().clone();
            Box::pin(async move { Ok(present) })
        }
        fn remove<'a>(
            &'a self,
            _: &'a str,
            identity: &'a str,
        ) -> BoxFuture<'a, Result<(), TwirpError>> {
            self.removed.lock().unwrap().push(identity.to_owned());
            Box::pin(async { Ok(()) })
        }
    }

    fn members(users: &[&str]) -> Result<Option<HashSet<String>>, String> {
        Ok(Some(users.iter().map(|u| (*u).to_owned()).collect()))
    }

    async fn setup() -> (Membership, Arc<Homeserver>, Arc<Sfu>) {
        let homeserver = Arc::new(Homeserver(Mutex::new(members(&["@a:hs", "@b:hs"]))));
        let sfu = Arc::new(Sfu::default());
        *sfu.present.lock().unwrap() = vec!["IA".into(), "IB".into()];
        let membership = Membership::new(
            Arc::new(MemoryBook::default()),
            homeserver.clone(),
            sfu.clone(),
            "hs".into(),
            Duration::from_secs(1),
        );
        membership.track("R", "IA", "!r", "@a:hs").await;
        membership.track("R", "IB", "!r", "@b:hs").await;
        (membership, homeserver, sfu)
    }

    #[tokio::test]
    async fn the_sweep_removes_only_who_left() {
        let (membership, homeserver, sfu) = setup().await;
        membership.sweep().await;
        assert!(sfu.removed.lock().unwrap().is_empty());
        *homeserver.0.lock().unwrap() = members(&["@a:hs"]);
        membership.sweep().await;
        assert_eq!(*sfu.removed.lock().unwrap(), ["IB"]);
    }

    #[tokio::test]
    async fn unknown_membership_fails_open() {
        let (membership, homeserver, sfu) = setup().await;
        *homeserver.0.lock().unwrap() = Err("HTTP 502".to_owned());
        membership.sweep().await;
        membership.participant_joined("R", "IB").await;
        // The homeserver refuses the member list: none of our users is in the room.
        *homeserver.0.lock().unwrap() = Ok(None);
        membership.sweep().await;
        assert!(sfu.removed.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn expired_tokens_of_absent_participants_are_forgotten() {
        let (membership, homeserver, sfu) = setup().await;
        *homeserver.0.lock().unwrap() = Err("HTTP 502".to_owned());
        let old = Tracked {
            room: "R".into(),
            identity: "OLD".into(),
            room_id: "!r".into(),
            user_id: "@c:hs".into(),
            issued_at: SystemTime::now() - JOIN_TOKEN_TTL - Duration::from_secs(1),
        };
        membership.book.track(&old).await.unwrap();
        membership.sweep().await;
        assert_eq!(membership.book.all().await.unwrap().len(), 2);
        assert!(membership.book.get("R", "OLD").await.unwrap().is_none());
        assert!(sfu.removed.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_returning_non_member_is_removed_when_they_join() {
        let (membership, homeserver, sfu) = setup().await;
        membership.participant_joined("R", "IB").await;
        assert!(sfu.removed.lock().unwrap().is_empty());
        *homeserver.0.lock().unwrap() = members(&["@a:hs"]);
        membership.participant_joined("R", "IB").await;
        membership.participant_joined("R", "untracked").await;
        assert_eq!(*sfu.removed.lock().unwrap(), ["IB"]);
    }
}
