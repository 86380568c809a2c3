//! Prometheus metrics of the core, all named `herald_*`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use herald_translate::StanzaKind;

type Labels = Vec<(&'static str, &'static str)>;

fn kind_index(kind: StanzaKind) -> usize {
    match kind {
        StanzaKind::Message => 0,
        StanzaKind::Presence => 1,
        StanzaKind::Iq => 2,
    }
}

/// Stream error conditions shown at zero before they first happen (others appear when
/// they do): the ones an operator alerts on.
const COMMON_STREAM_ERRORS: [&str; 7] = [
    "conflict",
    "connection-timeout",
    "not-well-formed",
    "policy-violation",
    "restricted-xml",
    "system-shutdown",
    "write-stalled",
];

/// The core's counters and gauges, and the registry that exposes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub connections: Gauge,
    pub sessions: Gauge,
    pub stanzas_in: Family<Labels, Counter>,
    pub stanzas_out: Family<Labels, Counter>,
    /// The counters of `stanzas_in` and `stanzas_out` per stanza kind, taken once: the
    /// per-stanza path neither builds a label nor locks the family.
    kind_in: [Counter; 3],
    kind_out: [Counter; 3],
    pub auth_failures: Counter,
    pub stream_errors: Family<Labels, Counter>,
    pub offline_queue: Gauge,
    pub connections_refused: Family<Labels, Counter>,
    pub auth_throttled: Family<Labels, Counter>,
    pub auth_blocks: Family<Labels, Counter>,
    /// Federation (`herald_s2s_*`).
    pub s2s: crate::metrics_s2s::S2sMetrics,
    /// SIP (`herald_sip_*`).
    pub sip: crate::metrics_sip::SipMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("herald");
        let connections = Gauge::default();
        let sessions = Gauge::default();
        let stanzas_in = Family::<Labels, Counter>::default();
        let stanzas_out = Family::<Labels, Counter>::default();
        let auth_failures = Counter::default();
        let stream_errors = Family::<Labels, Counter>::default();
        let offline_queue = Gauge::default();
        let connections_refused = Family::<Labels, Counter>::default();
        let auth_throttled = Family::<Labels, Counter>::default();
        let auth_blocks = Family::<Labels, Counter>::default();
        registry.register(
            "c2s_connections",
            "Open client connections",
            connections.clone(),
        );
        registry.register("c2s_sessions", "Bound client sessions", sessions.clone());
        registry.register(
            "stanzas_in",
            "Stanzas received from clients, by kind",
            stanzas_in.clone(),
        );
        registry.register(
            "stanzas_out",
            "Stanzas written to clients, by kind",
            stanzas_out.clone(),
        );
        registry.register(
            "auth_failures",
            "Failed SASL authentications",
            auth_failures.clone(),
        );
        registry.register(
            "stream_errors",
            "Stream errors sent, by condition",
            stream_errors.clone(),
        );
        registry.register(
            "offline_queue_messages",
            "Messages held in offline storage",
            offline_queue.clone(),
        );
        registry.register(
            "c2s_connections_refused",
            "Connections refused before negotiation, by reason",
            connections_refused.clone(),
        );
        registry.register(
            "auth_throttled",
            "Authentication attempts refused during a block, by what was blocked",
            auth_throttled.clone(),
        );
        registry.register(
            "auth_blocks",
            "Temporary authentication blocks started after repeated failures, by scope",
            auth_blocks.clone(),
        );
        // A family shows no series until a label is used: create every known label now,
        // so that a scrape (and an alert on it) finds each series at zero from the start.
        for r in crate::c2s::admission::Refusal::ALL {
            let _ = connections_refused.get_or_create(&vec![("reason", r.label())]);
        }
        for scope in crate::c2s::throttle::Scope::ALL {
            let _ = auth_throttled.get_or_create(&vec![("scope", scope.label())]);
            let _ = auth_blocks.get_or_create(&vec![("scope", scope.label())]);
        }
        for condition in COMMON_STREAM_ERRORS {
            let _ = stream_errors.get_or_create(&vec![("condition", condition)]);
        }
        let s2s = crate::metrics_s2s::S2sMetrics::register(
            &mut registry,
            crate::metrics_s2s::DEFAULT_MAX_DOMAINS,
        );
        let sip = crate::metrics_sip::SipMetrics::register(&mut registry);
        let per_kind = |family: &Family<Labels, Counter>| {
            [StanzaKind::Message, StanzaKind::Presence, StanzaKind::Iq]
                .map(|k| family.get_or_create(&vec![("kind", k.name())]).clone())
        };
        Self {
            sip,
            kind_in: per_kind(&stanzas_in),
            kind_out: per_kind(&stanzas_out),
            registry,
            auth_throttled,
            auth_blocks,
            connections,
            sessions,
            stanzas_in,
            stanzas_out,
            auth_failures,
            stream_errors,
            offline_queue,
            connections_refused,
            s2s,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    pub fn stanza_in(&self, kind: StanzaKind) {
        self.kind_in[kind_index(kind)].inc();
    }

    pub fn stanza_out(&self, kind: StanzaKind) {
        self.kind_out[kind_index(kind)].inc();
    }

    pub fn stream_error(&self, condition: &'static str) {
        self.stream_errors
            .get_or_create(&vec![("condition", condition)])
            .inc();
    }

    pub fn auth_throttled(&self, scope: &'static str) {
        self.auth_throttled
            .get_or_create(&vec![("scope", scope)])
            .inc();
    }

    pub fn auth_block(&self, scope: &'static str) {
        self.auth_blocks
            .get_or_create(&vec![("scope", scope)])
            .inc();
    }

    pub fn refused(&self, reason: &'static str) {
        self.connections_refused
            .get_or_create(&vec![("reason", reason)])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_are_prefixed() {
        let m = Metrics::new();
        m.stanza_in(StanzaKind::Message);
        m.sessions.inc();
        let text = m.render();
        assert!(
            text.contains("herald_stanzas_in_total{kind=\"message\"} 1"),
            "{text}"
        );
        assert!(text.contains("herald_c2s_sessions 1"), "{text}");
    }

    #[test]
    fn every_series_the_readme_lists_exists_before_first_use() {
        let text = Metrics::new().render();
        for series in [
            "herald_c2s_connections ",
            "herald_c2s_sessions ",
            "herald_stanzas_in_total{kind=\"presence\"} 0",
            "herald_stanzas_out_total{kind=\"iq\"} 0",
            "herald_auth_failures_total 0",
            "herald_offline_queue_messages ",
            "herald_c2s_connections_refused_total{reason=\"rate_limited\"} 0",
            "herald_c2s_connections_refused_total{reason=\"max_connections\"} 0",
            "herald_c2s_connections_refused_total{reason=\"max_unauthenticated\"} 0",
            "herald_c2s_connections_refused_total{reason=\"per_ip_unauthenticated\"} 0",
            "herald_auth_throttled_total{scope=\"address\"} 0",
            "herald_auth_blocks_total{scope=\"account\"} 0",
            "herald_stream_errors_total{condition=\"policy-violation\"} 0",
        ] {
            assert!(text.contains(series), "{series} missing from:\n{text}");
        }
    }
}
