//! A short-lived cache of verified OpenID tokens, so a client that sends the same token
//! again (a retry, a reconnect, `/get_token` then `/delegate_delayed_leave`) does not
//! cost a homeserver round trip each time. Upstream asks the homeserver on every request.
//!
//! An entry lives for `min(expires_in, cap)` from the moment the homeserver was asked,
//! where `expires_in` is the lifetime the client's token object states and `cap` is
//! `LIVEKIT_OPENID_CACHE_SECONDS` (0 turns the cache off). The client does not say when
//! its token was issued, so the cap is what bounds the difference to upstream: a token
//! that expires, or that the homeserver stops accepting, is still accepted for at most
//! `cap` after the homeserver last confirmed it. Only successes are cached, so failures
//! (and their error bodies) are exactly upstream's; tokens without a positive
//! `expires_in` are never cached. Entries are keyed by a SHA-256 of server name and token,
//! so the cache holds no usable token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::discovery::BoxFuture;
use super::userinfo::{OpenIdError, Verifier};
use crate::request::OpenIdToken;

/// Cap on cached tokens, so many distinct tokens cannot grow memory (~100 bytes each).
pub const MAX_ENTRIES: usize = 10_000;

type Key = [u8; 32];

/// A [`Verifier`] that remembers the answers of another one (module docs).
pub struct CachingVerifier {
    inner: Arc<dyn Verifier>,
    cap: Duration,
    entries: Mutex<HashMap<Key, (Instant, String)>>,
}

impl CachingVerifier {
    /// Caches `inner`'s successes for at most `cap` (and the token's `expires_in`).
    pub fn new(inner: Arc<dyn Verifier>, cap: Duration) -> Self {
        Self {
            inner,
            cap,
            entries: Mutex::default(),
        }
    }

    fn lookup(&self, key: &Key, now: Instant) -> Option<String> {
        let entries = self.entries.lock().ok()?;
        match entries.get(key) {
            Some((until, sub)) if now < *until => Some(sub.clone()),
            _ => None,
        }
    }

    fn insert(&self, key: Key, until: Instant, sub: String) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            let now = Instant::now();
            entries.retain(|_, (until, _)| now < *until);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (until, sub));
    }
}

/// SHA-256 of the server name, a separator no server name contains, and the token.
fn key(token: &OpenIdToken) -> Key {
    let mut hash = Sha256::new();
    hash.update(token.matrix_server_name.as_bytes());
    hash.update([0xff]);
    hash.update(token.access_token.as_bytes());
    hash.finalize().into()
}

impl Verifier for CachingVerifier {
    fn verify<'a>(&'a self, token: &'a OpenIdToken) -> BoxFuture<'a, Result<String, OpenIdError>> {
        Box::pin(async move {
            let lifetime = match token.expires_in {
                Some(seconds) if seconds > 0 => {
                    Duration::from_secs(seconds.unsigned_abs()).min(self.cap)
                }
                _ => return self.inner.verify(token).await,
            };
            let key = key(token);
            // Counted from before the question: the homeserver's yes holds from then on.
            let asked = Instant::now();
            if let Some(sub) = self.lookup(&key, asked) {
                return Ok(sub);
            }
            let sub = self.inner.verify(token).await?;
            self.insert(key, asked + lifetime, sub.clone());
            Ok(sub)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Accepts `good` for `@u:<server>`, counts calls.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl Verifier for Counting {
        fn verify<'a>(
            &'a self,
            token: &'a OpenIdToken,
        ) -> BoxFuture<'a, Result<String, OpenIdError>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            let answer = if token.access_token == "good" {
                Ok(format!("@u:{}", token.matrix_server_name))
            } else {
                Err(OpenIdError::Status {
                    status: 401,
                    errcode: "M_UNKNOWN_TOKEN".into(),
                })
            };
            Box::pin(async move { answer })
        }
    }

    fn token(access: &str, server: &str, expires_in: Option<i64>) -> OpenIdToken {
        OpenIdToken {
            access_token: access.into(),
            matrix_server_name: server.into(),
            expires_in,
        }
    }

    fn verifier(cap: Duration) -> (Arc<Counting>, CachingVerifier) {
        let inner = Arc::new(Counting::default());
        (inner.clone(), CachingVerifier::new(inner, cap))
    }

    #[tokio::test]
    async fn successes_are_reused_failures_are_not() {
        let (inner, cache) = verifier(Duration::from_secs(60));
        let good = token("good", "hs", Some(3600));
        assert_eq!(cache.verify(&good).await.unwrap(), "@u:hs");
        assert_eq!(cache.verify(&good).await.unwrap(), "@u:hs");
        assert_eq!(inner.0.load(Ordering::SeqCst), 1);
        // Another server name is another entry, with its own answer.
        assert_eq!(
            cache
                .verify(&token("good", "hs2", Some(3600)))
                .await
                .unwrap(),
            "@u:hs2"
        );
        assert_eq!(inner.0.load(Ordering::SeqCst), 2);
        let bad = token("bad", "hs", Some(3600));
        for _ in 0..2 {
            assert!(matches!(
                cache.verify(&bad).await,
                Err(OpenIdError::Status { status: 401, .. })
            ));
        }
        assert_eq!(inner.0.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn no_positive_expires_in_means_no_caching() {
        let (inner, cache) = verifier(Duration::from_secs(60));
        for expires_in in [None, Some(0), Some(-5)] {
            let t = token("good", "hs", expires_in);
            cache.verify(&t).await.unwrap();
            cache.verify(&t).await.unwrap();
        }
        assert_eq!(inner.0.load(Ordering::SeqCst), 6);
    }

    #[tokio::test]
    async fn entries_end_with_expires_in_or_the_cap() {
        // expires_in shorter than the cap.
        let (inner, cache) = verifier(Duration::from_secs(60));
        let short = token("good", "hs", Some(1));
        cache.verify(&short).await.unwrap();
        cache.verify(&short).await.unwrap();
        assert_eq!(inner.0.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        cache.verify(&short).await.unwrap();
        assert_eq!(inner.0.load(Ordering::SeqCst), 2);
        // The cap shorter than expires_in.
        let (inner, cache) = verifier(Duration::from_millis(200));
        let long = token("good", "hs", Some(3600));
        cache.verify(&long).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        cache.verify(&long).await.unwrap();
        assert_eq!(inner.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn memory_is_bounded() {
        let (_, cache) = verifier(Duration::from_secs(60));
        let later = Instant::now() + Duration::from_secs(60);
        for i in 0..MAX_ENTRIES + 5 {
            cache.insert(
                key(&token(&i.to_string(), "hs", None)),
                later,
                "@u:hs".into(),
            );
        }
        assert!(cache.entries.lock().unwrap().len() <= MAX_ENTRIES);
    }
}
