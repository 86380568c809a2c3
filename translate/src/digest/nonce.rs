//! Server nonces that check themselves, and `nc` replay protection in bounded memory.
//!
//! A nonce is base64url of `issued (8 bytes, big-endian seconds) || salt (8 random
//! bytes) || HMAC-SHA-256(secret, issued || salt)[..16]`. Any server holding the secret
//! can tell its own nonces and their age without a table, across restarts too if the
//! secret is kept.
//!
//! Replay: with `qop=auth` each response carries a nonce count that must grow. The
//! highest count seen is kept per nonce in a table of at most
//! [`NonceConfig::max_tracked`] entries; the least recently used entry is dropped when
//! it is full. A dropped nonce could otherwise be replayed from count 1, so the manager
//! remembers the newest issue time it dropped, and an untracked nonce issued at or
//! before it is answered as stale: the client takes a fresh nonce and nothing is
//! replayed. Responses without `qop` (RFC 2069) carry no count; their nonce is checked
//! for origin and age only.

use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Issue time and salt: what identifies a nonce.
type NonceId = [u8; 16];

const TAG_LEN: usize = 16;
const RAW_LEN: usize = 16 + TAG_LEN;

/// How long nonces live and how many are tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceConfig {
    /// Seconds after issue when a nonce becomes stale.
    pub lifetime_secs: u64,
    /// Seconds a nonce's issue time may lie in the future (clock steps between
    /// servers sharing a secret).
    pub max_skew_secs: u64,
    /// Nonces whose highest count is remembered.
    pub max_tracked: usize,
}

impl Default for NonceConfig {
    fn default() -> Self {
        Self {
            lifetime_secs: 300,
            max_skew_secs: 5,
            max_tracked: 16_384,
        }
    }
}

/// What a nonce check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NonceVerdict {
    /// Ours, in time, and (with a count) the count is new.
    Fresh,
    /// Ours but expired (or no longer tracked): challenge again with `stale=true`.
    Stale,
    /// Not a nonce this secret made, or issued in the future: challenge again without
    /// `stale`.
    Invalid,
    /// A count not higher than one already accepted for this nonce: refuse.
    Replayed,
}

#[derive(Debug, Clone, Copy)]
struct Tracked {
    highest_nc: u32,
    issued: u64,
    /// Position in the recency order.
    tick: u64,
}

/// Issues and checks nonces. Sans-IO: time (seconds since the Unix epoch) and
/// randomness come from the caller.
pub struct NonceManager {
    secret: [u8; 32],
    config: NonceConfig,
    tracked: HashMap<NonceId, Tracked>,
    /// Recency order: tick -> nonce, oldest first.
    recency: BTreeMap<u64, NonceId>,
    next_tick: u64,
    /// The newest issue time of a nonce dropped from the table.
    dropped_up_to: Option<u64>,
}

impl std::fmt::Debug for NonceManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceManager")
            .field("config", &self.config)
            .field("tracked", &self.tracked.len())
            .field("dropped_up_to", &self.dropped_up_to)
            .finish_non_exhaustive()
    }
}

impl NonceManager {
    pub fn new(secret: [u8; 32], config: NonceConfig) -> Self {
        Self {
            secret,
            config,
            tracked: HashMap::new(),
            recency: BTreeMap::new(),
            next_tick: 0,
            dropped_up_to: None,
        }
    }

    /// A new nonce issued at `now`.
    pub fn issue(&self, now: u64, rng: &mut impl RngCore) -> String {
        let mut raw = [0u8; RAW_LEN];
        raw[..8].copy_from_slice(&now.to_be_bytes());
        rng.fill_bytes(&mut raw[8..16]);
        let tag = self.tag(&raw[..16]);
        raw[16..].copy_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Whether `nonce` is ours and in time, without recording anything.
    pub fn check(&self, nonce: &str, now: u64) -> NonceVerdict {
        match self.decode(nonce) {
            Some((_, issued)) => self.age_verdict(issued, now),
            None => NonceVerdict::Invalid,
        }
    }

    /// Checks `nonce` and records the count `nc` of a response already verified (call
    /// it after [`verify_response`](super::verify_response) succeeded, so a wrong
    /// password cannot burn counts). `nc` is `None` for RFC 2069 responses.
    pub fn accept(&mut self, nonce: &str, nc: Option<u32>, now: u64) -> NonceVerdict {
        let Some((id, issued)) = self.decode(nonce) else {
            return NonceVerdict::Invalid;
        };
        let verdict = self.age_verdict(issued, now);
        let Some(nc) = nc else {
            return verdict;
        };
        if verdict != NonceVerdict::Fresh {
            return verdict;
        }
        let tick = self.next_tick;
        self.next_tick += 1;
        if let Some(entry) = self.tracked.get_mut(&id) {
            if nc <= entry.highest_nc {
                return NonceVerdict::Replayed;
            }
            self.recency.remove(&entry.tick);
            entry.highest_nc = nc;
            entry.tick = tick;
            self.recency.insert(tick, id);
            return NonceVerdict::Fresh;
        }
        if nc == 0 {
            return NonceVerdict::Replayed;
        }
        if self.dropped_up_to.is_some_and(|t| issued <= t) {
            return NonceVerdict::Stale;
        }
        while self.tracked.len() >= self.config.max_tracked.max(1) {
            self.drop_oldest();
        }
        self.tracked.insert(
            id,
            Tracked {
                highest_nc: nc,
                issued,
                tick,
            },
        );
        self.recency.insert(tick, id);
        NonceVerdict::Fresh
    }

    /// Nonces whose count is remembered.
    pub fn tracked_len(&self) -> usize {
        self.tracked.len()
    }

    /// Forgets expired nonces (they answer stale anyway). Call now and then to keep the
    /// table small below its cap; it is bounded without it.
    pub fn purge_expired(&mut self, now: u64) {
        let lifetime = self.config.lifetime_secs;
        let expired: Vec<NonceId> = self
            .tracked
            .iter()
            .filter(|(_, t)| now.saturating_sub(t.issued) > lifetime)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(t) = self.tracked.remove(&id) {
                self.recency.remove(&t.tick);
            }
        }
    }

    fn drop_oldest(&mut self) {
        let Some((_, id)) = self.recency.pop_first() else {
            return;
        };
        if let Some(t) = self.tracked.remove(&id) {
            self.dropped_up_to = Some(self.dropped_up_to.map_or(t.issued, |d| d.max(t.issued)));
        }
    }

    fn age_verdict(&self, issued: u64, now: u64) -> NonceVerdict {
        if issued > now.saturating_add(self.config.max_skew_secs) {
            NonceVerdict::Invalid
        } else if now.saturating_sub(issued) > self.config.lifetime_secs {
            NonceVerdict::Stale
        } else {
            NonceVerdict::Fresh
        }
    }

    /// The nonce's id and issue time, if this secret made it.
    fn decode(&self, nonce: &str) -> Option<(NonceId, u64)> {
        if nonce.len() > 64 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(nonce).ok()?;
        if raw.len() != RAW_LEN {
            return None;
        }
        let mut mac = self.mac();
        mac.update(&raw[..16]);
        mac.verify_truncated_left(&raw[16..]).ok()?;
        let mut id = [0u8; 16];
        id.copy_from_slice(&raw[..16]);
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&raw[..8]);
        Some((id, u64::from_be_bytes(issued)))
    }

    fn tag(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .expect("HMAC accepts keys of any length")
    }
}
