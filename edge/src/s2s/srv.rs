//! SRV target selection for server-to-server connections: pure, no I/O.
//!
//! # RFC 2782 order
//!
//! Records are tried lowest priority first. Among records of one priority the order is a
//! weighted random draw, repeated until none is left: the remaining records are arranged
//! with the weight-0 ones first, a number is drawn uniformly from `0..=sum of weights`,
//! and the first record whose running sum of weights reaches it goes next. A weight-0
//! record is thus picked only when the draw is 0, a small chance once any record of the
//! priority has a positive weight. The RFC lets the arrangement before that be "any
//! order"; it is shuffled here, so records that all weigh 0 share the load evenly.
//!
//! # "Decidedly not available"
//!
//! An answer that is a single record with the target `.` says that the service is not
//! offered at that domain (RFC 2782, RFC 6120 §3.2.1). A `.` among other records carries
//! no such meaning and is dropped.
//!
//! # XEP-0368: direct TLS and STARTTLS in one list
//!
//! XEP-0368 §3 asks for the `_xmpps-server` (direct TLS) and `_xmpp-server` (STARTTLS)
//! records to be "treated as the same record with regard to connection order", their
//! priorities and weights mixed, so that the operator of the remote domain decides which
//! kind of connection is preferred. Herald's reading:
//!
//! - both answers are pooled into one set, each record tagged with its kind, and that
//!   set is ordered as one RFC 2782 set: at equal priority a direct-TLS record and a
//!   STARTTLS record compete by weight alone; the XEP allows a client to prefer one kind
//!   and Herald does not;
//! - a `.` answer declines only its own service: with `_xmpps-server` declined, the
//!   `_xmpp-server` records (or, without any, the RFC 6120 fallback to the domain itself
//!   on port 5269) still apply;
//! - whether to fall back to the domain's own address is RFC 6120's rule and so follows
//!   the `_xmpp-server` answer: when no usable record is left, a declined
//!   `_xmpp-server` means the service is not available at all, and an absent one means
//!   fall back (direct TLS records are an addition to RFC 6120, not a replacement).

use rand::seq::SliceRandom;
use rand::Rng;

/// The port of the RFC 6120 fallback, when a domain publishes no SRV record.
pub const DEFAULT_PORT: u16 = 5269;

/// One SRV record, as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// The target host name in presentation form, with or without the final dot; `.`
    /// alone is the root.
    pub target: String,
}

impl SrvRecord {
    pub fn new(priority: u16, weight: u16, port: u16, target: impl Into<String>) -> Self {
        Self {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    /// Whether the target is the root, `.`.
    pub fn is_root(&self) -> bool {
        self.target == "." || self.target.is_empty()
    }
}

/// One place to connect to, in the order chosen.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The host name, without the final dot.
    pub host: String,
    pub port: u16,
    /// `true` from `_xmpps-server` (TLS from the first byte), `false` from
    /// `_xmpp-server` or the fallback (plain TCP, then STARTTLS).
    pub direct_tls: bool,
}

/// What the SRV answers of a domain say to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Connect to these, in this order.
    Targets(Vec<Target>),
    /// No SRV record: connect to the domain itself on [`DEFAULT_PORT`] with STARTTLS.
    Fallback,
    /// The domain declines server-to-server XMPP (`_xmpp-server` is `.`): do not connect.
    NotAvailable,
}

/// Whether an answer is the single-record "decidedly not available".
pub fn declines(records: &[SrvRecord]) -> bool {
    matches!(records, [only] if only.is_root())
}

/// Orders records per RFC 2782: priority ascending, weighted random within a priority.
/// Records with the root as target are kept; callers drop them first.
pub fn order<T, R>(mut items: Vec<T>, record: impl Fn(&T) -> &SrvRecord, rng: &mut R) -> Vec<T>
where
    R: Rng + ?Sized,
{
    // Shuffle before the stable sort: within a priority the arrangement is random,
    // then weight-0 records go first, as the RFC's algorithm wants.
    items.shuffle(rng);
    items.sort_by_key(|item| {
        let r = record(item);
        (r.priority, r.weight != 0)
    });
    let mut ordered = Vec::with_capacity(items.len());
    let mut rest = items.into_iter().peekable();
    while let Some(first) = rest.next() {
        let priority = record(&first).priority;
        let mut group = vec![first];
        while let Some(next) = rest.next_if(|item| record(item).priority == priority) {
            group.push(next);
        }
        while !group.is_empty() {
            let sum: u64 = group.iter().map(|i| u64::from(record(i).weight)).sum();
            let draw = rng.random_range(0..=sum);
            let mut running = 0u64;
            let mut chosen = group.len() - 1;
            for (index, item) in group.iter().enumerate() {
                running += u64::from(record(item).weight);
                if running >= draw {
                    chosen = index;
                    break;
                }
            }
            // `remove`, not `swap_remove`: the weight-0 records must stay in front.
            ordered.push(group.remove(chosen));
        }
    }
    ordered
}

/// Merges the `_xmpps-server` (direct TLS) and `_xmpp-server` (STARTTLS) answers into
/// one plan, per XEP-0368 as read in the module documentation. An empty slice is an
/// answer without records (NXDOMAIN or no SRV at the name).
pub fn plan<R: Rng + ?Sized>(xmpps: &[SrvRecord], xmpp: &[SrvRecord], rng: &mut R) -> Plan {
    let mut pool: Vec<(SrvRecord, bool)> = Vec::with_capacity(xmpps.len() + xmpp.len());
    for (records, direct_tls) in [(xmpps, true), (xmpp, false)] {
        pool.extend(
            records
                .iter()
                .filter(|r| !r.is_root())
                .map(|r| (r.clone(), direct_tls)),
        );
    }
    if pool.is_empty() {
        return if declines(xmpp) {
            Plan::NotAvailable
        } else {
            Plan::Fallback
        };
    }
    let targets = order(pool, |(r, _)| r, rng)
        .into_iter()
        .map(|(r, direct_tls)| Target {
            host: r.target.trim_end_matches('.').to_owned(),
            port: r.port,
            direct_tls,
        })
        .collect();
    Plan::Targets(targets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn rec(priority: u16, weight: u16, target: &str) -> SrvRecord {
        SrvRecord::new(priority, weight, 5269, target)
    }

    fn hosts(plan: &Plan) -> Vec<String> {
        match plan {
            Plan::Targets(t) => t.iter().map(|t| t.host.clone()).collect(),
            other => panic!("expected targets, got {other:?}"),
        }
    }

    #[test]
    fn lower_priority_always_comes_first() {
        let records = vec![
            rec(20, 100, "c.example."),
            rec(10, 0, "b.example."),
            rec(5, 1, "a.example."),
            rec(20, 0, "d.example."),
        ];
        for seed in 0..200 {
            let mut rng = StdRng::seed_from_u64(seed);
            let ordered = order(records.clone(), |r| r, &mut rng);
            let priorities: Vec<u16> = ordered.iter().map(|r| r.priority).collect();
            assert_eq!(priorities, [5, 10, 20, 20], "seed {seed}");
        }
    }

    #[test]
    fn a_seeded_rng_gives_a_repeatable_order() {
        let records: Vec<SrvRecord> = (0..6)
            .map(|i| rec(1, 10 * i + 1, &format!("h{i}.example.")))
            .collect();
        let a = order(records.clone(), |r| r, &mut StdRng::seed_from_u64(7));
        let b = order(records.clone(), |r| r, &mut StdRng::seed_from_u64(7));
        assert_eq!(a, b);
        let mut sorted = a.clone();
        sorted.sort_by(|x, y| x.target.cmp(&y.target));
        let mut expected = records;
        expected.sort_by(|x, y| x.target.cmp(&y.target));
        assert_eq!(sorted, expected, "every record exactly once");
    }

    #[test]
    fn first_choice_follows_the_weights() {
        let records = vec![
            rec(0, 10, "light.example"),
            rec(0, 30, "medium.example"),
            rec(0, 60, "heavy.example"),
        ];
        let mut rng = StdRng::seed_from_u64(2782);
        let rounds = 20_000;
        let mut firsts = [0u32; 3];
        for _ in 0..rounds {
            let ordered = order(records.clone(), |r| r, &mut rng);
            let index = records
                .iter()
                .position(|r| r == &ordered[0])
                .expect("a known record");
            firsts[index] += 1;
        }
        for (count, expected) in firsts.iter().zip([0.10, 0.30, 0.60]) {
            let share = f64::from(*count) / f64::from(rounds);
            assert!(
                (share - expected).abs() < 0.03,
                "share {share:.3} for expected {expected}: {firsts:?}"
            );
        }
    }

    #[test]
    fn weight_zero_has_a_small_chance_among_weighted_records() {
        let records = vec![rec(0, 0, "zero.example"), rec(0, 99, "weighted.example")];
        let mut rng = StdRng::seed_from_u64(1);
        let rounds = 20_000;
        let zero_first = (0..rounds)
            .filter(|_| order(records.clone(), |r| r, &mut rng)[0].target == "zero.example")
            .count();
        // The chance is 1 / (99 + 1): about 200 of 20 000.
        assert!(
            (80..=350).contains(&zero_first),
            "weight 0 first {zero_first} times of {rounds}"
        );
    }

    #[test]
    fn records_that_all_weigh_zero_share_the_first_place() {
        let records = vec![rec(0, 0, "a.example"), rec(0, 0, "b.example")];
        let mut rng = StdRng::seed_from_u64(3);
        let rounds = 4_000;
        let a_first = (0..rounds)
            .filter(|_| order(records.clone(), |r| r, &mut rng)[0].target == "a.example")
            .count();
        assert!(
            (1_600..=2_400).contains(&a_first),
            "a first {a_first} times"
        );
    }

    #[test]
    fn a_single_root_target_declines_the_service() {
        let mut rng = StdRng::seed_from_u64(0);
        assert!(declines(&[rec(0, 0, ".")]));
        assert!(!declines(&[rec(0, 0, "."), rec(1, 0, "x.example.")]));
        assert!(!declines(&[]));
        assert_eq!(plan(&[], &[rec(0, 0, ".")], &mut rng), Plan::NotAvailable);
        assert_eq!(
            plan(&[rec(0, 0, ".")], &[rec(0, 0, ".")], &mut rng),
            Plan::NotAvailable
        );
    }

    #[test]
    fn a_root_target_among_others_is_dropped() {
        let mut rng = StdRng::seed_from_u64(0);
        let plan = plan(&[], &[rec(0, 0, "."), rec(5, 0, "x.example.")], &mut rng);
        assert_eq!(hosts(&plan), ["x.example"]);
    }

    #[test]
    fn no_records_means_fallback_even_when_direct_tls_declines() {
        let mut rng = StdRng::seed_from_u64(0);
        assert_eq!(plan(&[], &[], &mut rng), Plan::Fallback);
        assert_eq!(plan(&[rec(0, 0, ".")], &[], &mut rng), Plan::Fallback);
    }

    #[test]
    fn declined_direct_tls_leaves_starttls_records() {
        let mut rng = StdRng::seed_from_u64(0);
        let plan = plan(&[rec(0, 0, ".")], &[rec(0, 0, "s.example.")], &mut rng);
        assert_eq!(
            plan,
            Plan::Targets(vec![Target {
                host: "s.example".into(),
                port: 5269,
                direct_tls: false
            }])
        );
    }

    #[test]
    fn both_services_merge_by_priority_and_keep_their_kind() {
        let xmpps = [
            SrvRecord::new(10, 0, 443, "tls-b.example."),
            SrvRecord::new(0, 0, 5270, "tls-a.example."),
        ];
        let xmpp = [
            SrvRecord::new(5, 0, 5269, "plain-a.example."),
            SrvRecord::new(20, 0, 5269, "plain-b.example."),
        ];
        let mut rng = StdRng::seed_from_u64(9);
        let Plan::Targets(targets) = plan(&xmpps, &xmpp, &mut rng) else {
            panic!("expected targets");
        };
        let got: Vec<(&str, u16, bool)> = targets
            .iter()
            .map(|t| (t.host.as_str(), t.port, t.direct_tls))
            .collect();
        assert_eq!(
            got,
            [
                ("tls-a.example", 5270, true),
                ("plain-a.example", 5269, false),
                ("tls-b.example", 443, true),
                ("plain-b.example", 5269, false),
            ]
        );
    }

    #[test]
    fn at_equal_priority_the_two_kinds_compete_by_weight() {
        let xmpps = [SrvRecord::new(0, 75, 5223, "tls.example.")];
        let xmpp = [SrvRecord::new(0, 25, 5269, "plain.example.")];
        let mut rng = StdRng::seed_from_u64(368);
        let rounds = 10_000;
        let tls_first = (0..rounds)
            .filter(|_| match plan(&xmpps, &xmpp, &mut rng) {
                Plan::Targets(t) => t[0].direct_tls,
                other => panic!("expected targets, got {other:?}"),
            })
            .count();
        let share = tls_first as f64 / f64::from(rounds);
        assert!((share - 0.75).abs() < 0.03, "direct TLS first {share:.3}");
    }
}
