//! Failed-authentication throttling, keyed by source address and by account.
//!
//! Each failed SASL attempt takes a cell from two governor limiters (the address's and
//! the account's). When a key runs out, it is blocked for a while: every attempt from
//! that address, or for that account, is refused with `temporary-auth-failure` before
//! any password work is done. Sessions that are already authenticated are never touched,
//! so an attacker guessing a user's password cannot end that user's open sessions.
//!
//! A failure is only known after the password check, so attempts running at the same
//! time could all pass `check` before the first failure counts: an account takes at
//! most `max_concurrent_auth_per_account` attempts at once (an [`Attempt`] guard holds
//! the place until the attempt ends, however it ends).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clock::{keyed_limiter, now, KeyedLimiter};
use crate::settings::C2sSettings;

/// Blocked keys kept at most (expired ones are dropped first).
const MAX_BLOCKED: usize = 100_000;

/// What a block applies to; the metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Address,
    Account,
}

impl Scope {
    /// Both scopes: the block counters have a series for each from the start.
    pub(crate) const ALL: [Self; 2] = [Self::Address, Self::Account];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Address => "address",
            Self::Account => "account",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Address(IpAddr),
    Account(String),
}

#[derive(Debug)]
pub(crate) struct AuthThrottle {
    by_address: KeyedLimiter<IpAddr>,
    by_account: KeyedLimiter<String>,
    blocked: Mutex<HashMap<Key, Instant>>,
    block_address: Duration,
    block_account: Duration,
    /// Attempts in progress per account.
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    max_in_flight: usize,
}

/// An authentication attempt in progress for an account; dropping it ends it.
#[derive(Debug)]
pub(crate) struct Attempt {
    account: String,
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for Attempt {
    fn drop(&mut self) {
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.account) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.account);
            }
        }
    }
}

impl AuthThrottle {
    pub(crate) fn new(s: &C2sSettings) -> Self {
        Self {
            by_address: keyed_limiter(s.auth_failures_per_ip_per_min, s.auth_failures_per_ip_burst),
            by_account: keyed_limiter(
                s.auth_failures_per_account_per_min,
                s.auth_failures_per_account_burst,
            ),
            blocked: Mutex::new(HashMap::new()),
            block_address: Duration::from_secs(s.auth_block_ip_secs),
            block_account: Duration::from_secs(s.auth_block_account_secs),
            in_flight: Arc::new(Mutex::new(HashMap::new())),
            max_in_flight: s.max_concurrent_auth_per_account.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Instant>> {
        self.blocked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether an attempt from `ip` for `account` may proceed (the attempt, held until
    /// it ends), or the scope that refuses it.
    pub(crate) fn check(&self, ip: IpAddr, account: &str) -> Result<Attempt, Scope> {
        let now = now();
        {
            let mut blocked = self.lock();
            for (key, scope) in [
                (Key::Address(ip), Scope::Address),
                (Key::Account(account.to_string()), Scope::Account),
            ] {
                match blocked.get(&key) {
                    Some(&until) if until > now => return Err(scope),
                    Some(_) => {
                        blocked.remove(&key);
                    }
                    None => {}
                }
            }
        }
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        let n = in_flight.entry(account.to_string()).or_insert(0);
        if *n >= self.max_in_flight {
            return Err(Scope::Account);
        }
        *n += 1;
        Ok(Attempt {
            account: account.to_string(),
            in_flight: Arc::clone(&self.in_flight),
        })
    }

    /// The scope under a block for `ip` or `account`, if any, without taking a place
    /// among the account's attempts in progress: for SIP, whose UAs authenticate every
    /// request and send several at once, the per-account cap on attempts in progress
    /// would refuse legitimate traffic; a digest check needs no slow password work.
    pub(crate) fn blocked_scope(&self, ip: IpAddr, account: &str) -> Option<Scope> {
        if self.is_blocked(&Key::Address(ip)) {
            return Some(Scope::Address);
        }
        self.is_blocked(&Key::Account(account.to_string()))
            .then_some(Scope::Account)
    }

    /// Record a failed attempt. Returns the scopes that became blocked by it. An attempt
    /// refused during a block neither counts again nor extends the block.
    pub(crate) fn failed(&self, ip: IpAddr, account: Option<&str>) -> Vec<Scope> {
        let mut started = Vec::new();
        let address = Key::Address(ip);
        if !self.is_blocked(&address) && self.by_address.check_key(&ip).is_err() {
            self.block(address, self.block_address);
            started.push(Scope::Address);
        }
        if let Some(account) = account {
            let key = Key::Account(account.to_string());
            if !self.is_blocked(&key) && self.by_account.check_key(&account.to_string()).is_err() {
                self.block(key, self.block_account);
                started.push(Scope::Account);
            }
        }
        started
    }

    fn is_blocked(&self, key: &Key) -> bool {
        self.lock().get(key).is_some_and(|until| *until > now())
    }

    fn block(&self, key: Key, for_: Duration) {
        let now = now();
        let mut blocked = self.lock();
        if blocked.len() >= MAX_BLOCKED {
            blocked.retain(|_, until| *until > now);
        }
        if blocked.len() < MAX_BLOCKED {
            blocked.insert(key, now + for_);
        }
    }

    /// Drop expired blocks and limiter state that no longer limits anyone.
    pub(crate) fn prune(&self) {
        let now = now();
        self.lock().retain(|_, until| *until > now);
        self.by_address.retain_recent();
        self.by_account.retain_recent();
        self.by_address.shrink_to_fit();
        self.by_account.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 9));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 10));

    fn throttle() -> AuthThrottle {
        AuthThrottle::new(&C2sSettings {
            auth_failures_per_ip_per_min: 6,
            auth_failures_per_ip_burst: 5,
            auth_failures_per_account_per_min: 2,
            auth_failures_per_account_burst: 3,
            auth_block_ip_secs: 300,
            auth_block_account_secs: 60,
            ..C2sSettings::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn an_account_is_blocked_after_its_burst_and_unblocked_later() {
        let t = throttle();
        for i in 0..3 {
            // Different addresses: only the account's budget runs out.
            let ip = IpAddr::V4(std::net::Ipv4Addr::new(127, 1, 0, i));
            assert!(t.failed(ip, Some("alice")).is_empty());
        }
        assert_eq!(t.failed(IP, Some("alice")), vec![Scope::Account]);
        assert_eq!(t.check(OTHER, "alice").err(), Some(Scope::Account));
        // Attempts refused during the block do not start another one.
        assert!(t.failed(OTHER, Some("alice")).is_empty());
        assert!(t.check(OTHER, "bob").is_ok());
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(t.check(OTHER, "alice").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_is_blocked_for_every_account() {
        let t = throttle();
        for i in 0..5 {
            assert!(t.failed(IP, Some(&format!("user{i}"))).is_empty());
        }
        assert_eq!(t.failed(IP, None), vec![Scope::Address]);
        assert_eq!(t.check(IP, "anyone").err(), Some(Scope::Address));
        assert!(t.check(OTHER, "anyone").is_ok());
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(t.check(IP, "anyone").err(), Some(Scope::Address));
        tokio::time::advance(Duration::from_secs(2)).await;
        t.prune();
        assert!(t.check(IP, "anyone").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_attempts_per_account_are_capped_until_they_end() {
        let t = AuthThrottle::new(&C2sSettings {
            max_concurrent_auth_per_account: 2,
            ..C2sSettings::default()
        });
        let a = t.check(IP, "alice").expect("first");
        let b = t.check(OTHER, "alice").expect("second");
        assert_eq!(t.check(IP, "alice").err(), Some(Scope::Account));
        assert!(
            t.check(IP, "bob").is_ok(),
            "other accounts are not affected"
        );
        drop(a);
        let _c = t.check(IP, "alice").expect("a place came back");
        drop(b);
        assert!(t.in_flight.lock().expect("lock").get("alice") == Some(&1));
    }

    #[tokio::test(start_paused = true)]
    async fn blocked_scope_sees_blocks_and_takes_no_place() {
        let t = AuthThrottle::new(&C2sSettings {
            max_concurrent_auth_per_account: 1,
            auth_failures_per_account_burst: 1,
            ..C2sSettings::default()
        });
        let _held = t.check(IP, "alice").expect("one attempt in progress");
        assert_eq!(
            t.blocked_scope(OTHER, "alice"),
            None,
            "in-flight attempts do not count"
        );
        assert_eq!(t.check(OTHER, "alice").err(), Some(Scope::Account));
        assert!(t.failed(IP, Some("bob")).is_empty());
        assert_eq!(t.failed(IP, Some("bob")), vec![Scope::Account]);
        assert_eq!(t.blocked_scope(OTHER, "bob"), Some(Scope::Account));
        assert_eq!(t.blocked_scope(OTHER, "carol"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_failures_never_block() {
        let t = throttle();
        for _ in 0..20 {
            assert!(t.failed(IP, Some("alice")).is_empty());
            tokio::time::advance(Duration::from_secs(31)).await;
        }
    }
}
