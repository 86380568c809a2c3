//! Property: whatever publishers and the clock do, the store never holds more than its
//! limits, every stored entity-tag is unique and never issued twice, its deadline
//! index matches its entries, and nothing panics.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::tests::{etag, initial, publish, refresh, remove, rng, OPEN};
use super::*;
use crate::sip::HeaderName;

const PRESENTITIES: [&str; 3] = [
    "sip:alice@herald.example",
    "sip:bob@herald.example",
    "sip:carol@herald.example",
];

#[derive(Debug, Clone)]
enum Op {
    Initial(usize, Option<u32>),
    /// Refresh with the n-th tag ever issued (stale ones included).
    Refresh(usize, usize, Option<u32>),
    Modify(usize, usize),
    Remove(usize, usize),
    Garbage(usize),
    Advance(u32),
    Timeout,
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0..PRESENTITIES.len();
    let expires = prop::option::of(prop_oneof![Just(0u32), 1u32..200, 60u32..5000]);
    prop_oneof![
        3 => (p.clone(), expires.clone()).prop_map(|(p, e)| Op::Initial(p, e)),
        2 => (p.clone(), 0usize..64, expires).prop_map(|(p, t, e)| Op::Refresh(p, t, e)),
        1 => (p.clone(), 0usize..64).prop_map(|(p, t)| Op::Modify(p, t)),
        1 => (p.clone(), 0usize..64).prop_map(|(p, t)| Op::Remove(p, t)),
        1 => p.prop_map(Op::Garbage),
        2 => (0u32..2000).prop_map(Op::Advance),
        1 => Just(Op::Timeout),
    ]
}

proptest! {
    #[test]
    fn store_keeps_its_invariants(ops in prop::collection::vec(op(), 1..80)) {
        let config = PublicationConfig {
            max_per_presentity: 3,
            max_total: 7,
            ..PublicationConfig::default()
        };
        let mut s = Publications::new(config.clone());
        let mut r = rng();
        let mut now = Instant::now();
        let mut issued: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for op in ops {
            let pick = |t: usize| issued.get(t % issued.len().max(1)).cloned()
                .unwrap_or_else(|| "none".into());
            let outcome = match op {
                Op::Initial(p, e) => Some((p, initial(OPEN, e))),
                Op::Refresh(p, t, e) => Some((p, refresh(&pick(t), e))),
                Op::Modify(p, t) => Some((p, publish(
                    Some("presence"), Some(&pick(t)), None,
                    Some("application/pidf+xml"), OPEN))),
                Op::Remove(p, t) => Some((p, remove(&pick(t)))),
                Op::Garbage(p) => Some((p, publish(
                    Some("presence"), None, None, Some("application/pidf+xml"), "<x"))),
                Op::Advance(secs) => {
                    now += Duration::from_secs(u64::from(secs));
                    None
                }
                Op::Timeout => {
                    if let Some(at) = s.poll_timeout() {
                        now = now.max(at);
                    }
                    s.handle_timeout(now);
                    None
                }
            }
            .map(|(p, m)| s.on_publish(PRESENTITIES[p], &m, now, &mut r));
            if let Some(o) = outcome {
                let code = o.response.status_line().map(|l| l.code);
                if code == Some(200) {
                    let tag = etag(&o);
                    prop_assert!(seen.insert(tag.clone()), "entity-tag issued twice");
                    issued.push(tag);
                    let granted: u32 = o.response.header(&HeaderName::Expires)
                        .and_then(|v| v.parse().ok()).unwrap_or(u32::MAX);
                    prop_assert!(granted <= config.max_expires);
                }
            }
            prop_assert!(s.len() <= config.max_total);
            for p in PRESENTITIES {
                prop_assert!(s.count(p) <= config.max_per_presentity);
            }
            let tags = s.all_etags();
            let unique: HashSet<_> = tags.iter().map(|(_, t)| *t).collect();
            prop_assert_eq!(unique.len(), tags.len());
            prop_assert!(s.index_consistent());
            if let Some(at) = s.poll_timeout() {
                prop_assert!(tags.iter().all(|(p, t)| s.expires_at(p, t).is_some_and(|e| e >= at)));
            }
        }
    }
}
