//! A short-lived cache of the HA1s digest authentication reads from the store.
//!
//! A SIP UA authenticates every request it sends (PUBLISH refreshes, SUBSCRIBEs,
//! MESSAGEs), not once per connection as an XMPP client does, so without a cache each
//! one is a store lookup on the blocking pool. Entries live `ttl` at most; the cache
//! holds at most `capacity` of them (when full, expired entries go first, then all of
//! them: it is a cache, a miss only costs a lookup). Only found HA1s are kept, so a new
//! account or a newly set password works at once; a removed account is forgotten at
//! once when it is removed through this server ([`CredentialCache::forget`]), and
//! within `ttl` when another process (`herald user del/passwd` on the same database)
//! changed it. `ttl` zero turns the cache off.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use herald_translate::digest::Algorithm;

#[derive(Debug)]
pub(crate) struct CredentialCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<(String, Algorithm), (String, Instant)>>,
}

impl CredentialCache {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Algorithm), (String, Instant)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.capacity > 0
    }

    /// `user`'s HA1 for `algorithm` if it was stored less than `ttl` before `now`.
    pub(crate) fn get(&self, user: &str, algorithm: Algorithm, now: Instant) -> Option<String> {
        if !self.enabled() {
            return None;
        }
        let mut entries = self.lock();
        let key = (user.to_owned(), algorithm);
        match entries.get(&key) {
            Some((ha1, at)) if now.saturating_duration_since(*at) < self.ttl => Some(ha1.clone()),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Keep `user`'s HA1 for `algorithm`, read from the store at `now`.
    pub(crate) fn put(&self, user: &str, algorithm: Algorithm, ha1: &str, now: Instant) {
        if !self.enabled() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| now.saturating_duration_since(*at) < ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert((user.to_owned(), algorithm), (ha1.to_owned(), now));
    }

    /// Drop everything kept for `user` (the account was removed).
    pub(crate) fn forget(&self, user: &str) {
        self.lock().retain(|(u, _), _| u != user);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Algorithm::{Md5, Sha256};

    #[test]
    fn an_entry_is_served_until_its_ttl_then_read_again() {
        let cache = CredentialCache::new(Duration::from_secs(60), 10);
        let t0 = Instant::now();
        assert_eq!(cache.get("alice", Md5, t0), None);
        cache.put("alice", Md5, "h1", t0);
        assert_eq!(
            cache
                .get("alice", Md5, t0 + Duration::from_secs(59))
                .as_deref(),
            Some("h1")
        );
        assert_eq!(cache.get("alice", Sha256, t0), None, "per algorithm");
        assert_eq!(cache.get("bob", Md5, t0), None, "per user");
        assert_eq!(cache.get("alice", Md5, t0 + Duration::from_secs(60)), None);
        assert_eq!(cache.len(), 0, "the expired entry was dropped");
    }

    #[test]
    fn forget_drops_every_algorithm_of_the_user_only() {
        let cache = CredentialCache::new(Duration::from_secs(60), 10);
        let t0 = Instant::now();
        cache.put("alice", Md5, "a1", t0);
        cache.put("alice", Sha256, "a2", t0);
        cache.put("bob", Md5, "b1", t0);
        cache.forget("alice");
        assert_eq!(cache.get("alice", Md5, t0), None);
        assert_eq!(cache.get("alice", Sha256, t0), None);
        assert_eq!(cache.get("bob", Md5, t0).as_deref(), Some("b1"));
    }

    #[test]
    fn it_never_holds_more_than_its_capacity() {
        let cache = CredentialCache::new(Duration::from_secs(60), 3);
        let t0 = Instant::now();
        for i in 0..3 {
            cache.put(&format!("u{i}"), Md5, "h", t0);
        }
        // Full of live entries: the next one empties it first.
        cache.put("u3", Md5, "h", t0);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get("u3", Md5, t0).as_deref(), Some("h"));
        // Full with expired entries: only those go.
        let later = t0 + Duration::from_secs(61);
        cache.put("u4", Md5, "h", t0 + Duration::from_secs(30));
        cache.put("u5", Md5, "h", t0 + Duration::from_secs(30));
        cache.put("u6", Md5, "h", later);
        assert_eq!(cache.len(), 3, "u3 expired and went; u4, u5 and u6 stay");
        assert!(cache.get("u4", Md5, later).is_some());
        for i in 0..1000 {
            cache.put(&format!("v{i}"), Md5, "h", later);
            assert!(cache.len() <= 3);
        }
    }

    #[test]
    fn a_zero_ttl_turns_it_off() {
        let cache = CredentialCache::new(Duration::ZERO, 10);
        let t0 = Instant::now();
        cache.put("alice", Md5, "h", t0);
        assert_eq!(cache.get("alice", Md5, t0), None);
        assert_eq!(cache.len(), 0);
    }
}
