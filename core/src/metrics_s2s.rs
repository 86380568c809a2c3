//! Federation metrics (`herald_s2s_*`). Series per remote domain are bounded: the
//! first `max_domains` domains seen (and every domain the configuration names, which
//! the edge admits first) get their own label, every other domain is counted as
//! `other`, so open federation cannot grow the exposition without bound.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Remote domains with their own label, by default.
pub const DEFAULT_MAX_DOMAINS: usize = 50;
/// The label of every domain beyond the bound.
pub const OTHER: &str = "other";

/// `domain` and `direction` (`in`, `out`).
type DomainDir = Vec<(&'static str, Arc<str>)>;
/// One fixed-vocabulary label (`reason`, `result`, `condition`).
type Reason = Vec<(&'static str, &'static str)>;

/// Which domains have a label of their own.
#[derive(Debug)]
pub struct DomainLabels {
    max: usize,
    admitted: Mutex<HashSet<Arc<str>>>,
    other: Arc<str>,
}

impl DomainLabels {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            admitted: Mutex::new(HashSet::new()),
            other: Arc::from(OTHER),
        }
    }

    /// Give `domain` a label of its own whatever the bound (a configured domain).
    pub fn admit(&self, domain: &str) {
        self.admitted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(Arc::from(domain));
    }

    /// The label `domain` is counted under.
    pub fn label(&self, domain: &str) -> Arc<str> {
        let mut admitted = self.admitted.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = admitted.get(domain) {
            return Arc::clone(d);
        }
        if admitted.len() < self.max {
            let d: Arc<str> = Arc::from(domain);
            admitted.insert(Arc::clone(&d));
            return d;
        }
        Arc::clone(&self.other)
    }
}

/// Direction of a stream or a stanza.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    fn label(self) -> Arc<str> {
        Arc::from(match self {
            Self::In => "in",
            Self::Out => "out",
        })
    }
}

/// The federation counters and gauges.
#[derive(Debug)]
pub struct S2sMetrics {
    pub domains: DomainLabels,
    streams: Family<DomainDir, Gauge>,
    stanzas: Family<DomainDir, Counter>,
    bytes: Family<DomainDir, Counter>,
    acl_denials: Family<DomainDir, Counter>,
    rate_limited: Family<DomainDir, Counter>,
    tls_failures: Family<Reason, Counter>,
    auth_failures: Family<Reason, Counter>,
    dns_lookups: Family<Reason, Counter>,
    bounces: Family<Reason, Counter>,
    /// Stanzas waiting for an outbound stream to be set up.
    pub queue_depth: Gauge,
}

impl S2sMetrics {
    pub(crate) fn register(registry: &mut Registry, max_domains: usize) -> Self {
        let m = Self {
            domains: DomainLabels::new(max_domains),
            streams: Family::default(),
            stanzas: Family::default(),
            bytes: Family::default(),
            acl_denials: Family::default(),
            rate_limited: Family::default(),
            tls_failures: Family::default(),
            auth_failures: Family::default(),
            dns_lookups: Family::default(),
            bounces: Family::default(),
            queue_depth: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("s2s");
        r.register(
            "streams",
            "Established s2s streams, by remote domain and direction",
            m.streams.clone(),
        );
        r.register(
            "stanzas",
            "Stanzas over s2s streams, by remote domain and direction",
            m.stanzas.clone(),
        );
        r.register(
            "bytes",
            "Bytes over s2s streams, by remote domain and direction",
            m.bytes.clone(),
        );
        r.register(
            "acl_denials",
            "Streams or stanzas refused by a domain ACL",
            m.acl_denials.clone(),
        );
        r.register(
            "rate_limited",
            "Stanzas or connections over a per-domain limit",
            m.rate_limited.clone(),
        );
        r.register(
            "tls_failures",
            "TLS failures on s2s streams, by reason",
            m.tls_failures.clone(),
        );
        r.register(
            "auth_failures",
            "s2s authentication failures, by reason",
            m.auth_failures.clone(),
        );
        r.register(
            "dns_lookups",
            "Server discovery lookups, by result",
            m.dns_lookups.clone(),
        );
        r.register(
            "bounces",
            "Stanzas bounced to local senders, by condition",
            m.bounces.clone(),
        );
        r.register(
            "queue_depth",
            "Stanzas waiting for an outbound stream",
            m.queue_depth.clone(),
        );
        for result in ["ok", "nxdomain", "error"] {
            let _ = m.dns_lookups.get_or_create(&vec![("result", result)]);
        }
        m
    }

    fn key(&self, domain: &str, dir: Direction) -> DomainDir {
        vec![
            ("domain", self.domains.label(domain)),
            ("direction", dir.label()),
        ]
    }

    /// A stream to or from `domain` was established (`+1`) or ended (`-1`).
    pub fn stream(&self, domain: &str, dir: Direction, delta: i64) {
        self.streams
            .get_or_create(&self.key(domain, dir))
            .inc_by(delta);
    }

    /// One stanza of `bytes` bytes went over a stream.
    pub fn stanza(&self, domain: &str, dir: Direction, bytes: u64) {
        let key = self.key(domain, dir);
        self.stanzas.get_or_create(&key).inc();
        self.bytes.get_or_create(&key).inc_by(bytes);
    }

    pub fn acl_denied(&self, domain: &str, dir: Direction) {
        self.acl_denials.get_or_create(&self.key(domain, dir)).inc();
    }

    pub fn rate_limited(&self, domain: &str, dir: Direction) {
        self.rate_limited
            .get_or_create(&self.key(domain, dir))
            .inc();
    }

    pub fn tls_failure(&self, reason: &'static str) {
        self.tls_failures
            .get_or_create(&vec![("reason", reason)])
            .inc();
    }

    pub fn auth_failure(&self, reason: &'static str) {
        self.auth_failures
            .get_or_create(&vec![("reason", reason)])
            .inc();
    }

    /// `result`: `ok`, `nxdomain` or `error`.
    pub fn dns_lookup(&self, result: &'static str) {
        self.dns_lookups
            .get_or_create(&vec![("result", result)])
            .inc();
    }

    /// A stanza bounced with `condition` (e.g. `remote-server-not-found`).
    pub fn bounce(&self, condition: &'static str) {
        self.bounces
            .get_or_create(&vec![("condition", condition)])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_beyond_the_bound_share_one_label() {
        let labels = DomainLabels::new(2);
        labels.admit("partner.example");
        assert_eq!(&*labels.label("a.example"), "a.example");
        assert_eq!(
            &*labels.label("b.example"),
            OTHER,
            "the bound counts admitted ones"
        );
        assert_eq!(&*labels.label("partner.example"), "partner.example");
        assert_eq!(
            &*labels.label("a.example"),
            "a.example",
            "labels are stable"
        );
        labels.admit("configured.example");
        assert_eq!(&*labels.label("configured.example"), "configured.example");
    }

    #[test]
    fn the_exposition_stays_bounded_under_open_federation() {
        let mut registry = Registry::with_prefix("herald");
        let m = S2sMetrics::register(&mut registry, 5);
        for i in 0..1000 {
            m.stanza(&format!("d{i}.example"), Direction::In, 100);
        }
        m.stream("d1.example", Direction::Out, 1);
        m.bounce("remote-server-not-found");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        let series = text
            .lines()
            .filter(|l| l.starts_with("herald_s2s_stanzas_total{"))
            .count();
        assert_eq!(series, 6, "five domains and `other`:\n{text}");
        assert!(text.contains("herald_s2s_stanzas_total{domain=\"other\",direction=\"in\"} 995"));
        assert!(text.contains("herald_s2s_streams{domain=\"d1.example\",direction=\"out\"} 1"));
        assert!(text.contains("herald_s2s_dns_lookups_total{result=\"nxdomain\"} 0"));
        assert!(text.contains("herald_s2s_bounces_total{condition=\"remote-server-not-found\"} 1"));
    }
}
