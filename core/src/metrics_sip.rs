//! SIP metrics (`herald_sip_*`). Every label has a fixed vocabulary: the method (the
//! RFC 3261 and extension methods Herald knows, else `other`) and the status class.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `method` and `class` (`1xx`...`6xx`).
type MethodClass = Vec<(&'static str, &'static str)>;

/// Methods with their own label.
const METHODS: [&str; 8] = [
    "REGISTER",
    "OPTIONS",
    "PUBLISH",
    "SUBSCRIBE",
    "NOTIFY",
    "MESSAGE",
    "INVITE",
    "other",
];
const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"];

/// The SIP service's series.
#[derive(Debug, Clone, Default)]
pub struct SipMetrics {
    /// Requests answered, by method and status class.
    pub responses: Family<MethodClass, Counter>,
    /// Open TCP and TLS connections.
    pub connections: Gauge,
    /// Accounts with at least one live registration.
    pub registered_users: Gauge,
    /// Subscriptions held (presence and presence.winfo).
    pub subscriptions: Gauge,
    /// Publications held.
    pub publications: Gauge,
    /// Messages refused by the codec before any processing.
    pub malformed: Counter,
}

impl SipMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let sub = registry.sub_registry_with_prefix("sip");
        sub.register(
            "responses",
            "SIP requests answered, by method and status class",
            m.responses.clone(),
        );
        sub.register(
            "connections",
            "Open SIP TCP and TLS connections",
            m.connections.clone(),
        );
        sub.register(
            "registered_users",
            "Accounts with at least one live SIP registration",
            m.registered_users.clone(),
        );
        sub.register(
            "subscriptions",
            "SIP subscriptions held",
            m.subscriptions.clone(),
        );
        sub.register(
            "publications",
            "SIP publications held",
            m.publications.clone(),
        );
        sub.register(
            "malformed",
            "SIP messages refused by the codec",
            m.malformed.clone(),
        );
        for method in METHODS {
            for class in CLASSES {
                let _ = m
                    .responses
                    .get_or_create(&vec![("method", method), ("class", class)]);
            }
        }
        m
    }

    /// Count the answer `code` to a `method` request.
    pub fn answered(&self, method: &str, code: u16) {
        let method = METHODS
            .iter()
            .find(|m| m.eq_ignore_ascii_case(method))
            .copied()
            .unwrap_or("other");
        let class = CLASSES
            .get(usize::from(code / 100).saturating_sub(1))
            .copied()
            .unwrap_or("6xx");
        self.responses
            .get_or_create(&vec![("method", method), ("class", class)])
            .inc();
    }
}
