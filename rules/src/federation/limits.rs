//! What one remote domain may use: connections, stanza size, rates, negotiation time.
//! `[s2s.limits]` sets the defaults; a route may override any of them for its domains.

use serde::Deserialize;

/// The limits applied to one remote domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DomainLimits {
    /// Streams with the domain at once, inbound and outbound together.
    pub max_connections: u32,
    /// The largest stanza accepted after authentication.
    pub max_stanza_bytes: u32,
    /// Stanzas per second from the domain (sustained; the burst is one second's worth).
    pub stanzas_per_sec: u32,
    /// Bytes per second from the domain (sustained; the burst is one second's worth).
    pub bytes_per_sec: u32,
    /// A stream that is not authenticated within this time is closed.
    pub negotiation_timeout_secs: u32,
    /// The most a peer may send before it is authenticated, in all.
    pub preauth_bytes: u32,
}

impl Default for DomainLimits {
    fn default() -> Self {
        Self {
            max_connections: 8,
            max_stanza_bytes: 262_144,
            stanzas_per_sec: 200,
            bytes_per_sec: 1_048_576,
            negotiation_timeout_secs: 30,
            preauth_bytes: 65_536,
        }
    }
}

/// A route's overrides; absent keys keep the `[s2s.limits]` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitOverrides {
    pub max_connections: Option<u32>,
    pub max_stanza_bytes: Option<u32>,
    pub stanzas_per_sec: Option<u32>,
    pub bytes_per_sec: Option<u32>,
    pub negotiation_timeout_secs: Option<u32>,
    pub preauth_bytes: Option<u32>,
}

impl LimitOverrides {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The bounds of each limit: (key, least, most).
const BOUNDS: [(&str, u32, u32); 6] = [
    ("max_connections", 1, 1_000),
    ("max_stanza_bytes", 1_024, 16 * 1_048_576),
    ("stanzas_per_sec", 1, 1_000_000),
    ("bytes_per_sec", 1_024, 1_073_741_824),
    ("negotiation_timeout_secs", 1, 3_600),
    ("preauth_bytes", 512, 16 * 1_048_576),
];

impl DomainLimits {
    /// These limits with a route's overrides applied.
    pub fn with(&self, o: &LimitOverrides) -> Self {
        Self {
            max_connections: o.max_connections.unwrap_or(self.max_connections),
            max_stanza_bytes: o.max_stanza_bytes.unwrap_or(self.max_stanza_bytes),
            stanzas_per_sec: o.stanzas_per_sec.unwrap_or(self.stanzas_per_sec),
            bytes_per_sec: o.bytes_per_sec.unwrap_or(self.bytes_per_sec),
            negotiation_timeout_secs: o
                .negotiation_timeout_secs
                .unwrap_or(self.negotiation_timeout_secs),
            preauth_bytes: o.preauth_bytes.unwrap_or(self.preauth_bytes),
        }
    }

    fn values(&self) -> [u32; 6] {
        [
            self.max_connections,
            self.max_stanza_bytes,
            self.stanzas_per_sec,
            self.bytes_per_sec,
            self.negotiation_timeout_secs,
            self.preauth_bytes,
        ]
    }

    /// Every limit out of range, as (key, message).
    pub fn validate(&self) -> Vec<(&'static str, String)> {
        let d = Self::default().values();
        let mut out = Vec::new();
        for (((key, min, max), value), default) in BOUNDS.iter().zip(self.values()).zip(d) {
            if value < *min || value > *max {
                out.push((
                    *key,
                    format!("{value} is out of range: write {min} to {max} (default {default})"),
                ));
            }
        }
        // A stanza of the largest size must fit in one second's byte budget, or it
        // could never be let through.
        if self.bytes_per_sec < self.max_stanza_bytes {
            out.push((
                "bytes_per_sec",
                format!(
                    "{} is smaller than max_stanza_bytes ({}): a stanza of that size could \
                     never pass; write at least {}",
                    self.bytes_per_sec, self.max_stanza_bytes, self.max_stanza_bytes
                ),
            ));
        }
        out
    }

    /// One line per limit, for `herald explain`.
    pub fn lines(&self) -> Vec<String> {
        vec![
            format!("max_connections = {}", self.max_connections),
            format!("max_stanza_bytes = {}", self.max_stanza_bytes),
            format!("stanzas_per_sec = {}", self.stanzas_per_sec),
            format!("bytes_per_sec = {}", self.bytes_per_sec),
            format!(
                "negotiation_timeout_secs = {}",
                self.negotiation_timeout_secs
            ),
            format!("preauth_bytes = {}", self.preauth_bytes),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert!(DomainLimits::default().validate().is_empty());
    }

    #[test]
    fn overrides_replace_only_what_they_name() {
        let d = DomainLimits::default();
        let o = LimitOverrides {
            max_connections: Some(2),
            ..LimitOverrides::default()
        };
        let l = d.with(&o);
        assert_eq!(l.max_connections, 2);
        assert_eq!(l.max_stanza_bytes, d.max_stanza_bytes);
        assert_eq!(d.with(&LimitOverrides::default()), d);
        assert!(LimitOverrides::default().is_empty() && !o.is_empty());
    }

    #[test]
    fn out_of_range_values_are_named() {
        let l = DomainLimits {
            max_connections: 0,
            negotiation_timeout_secs: 100_000,
            ..DomainLimits::default()
        };
        let keys: Vec<&str> = l.validate().iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["max_connections", "negotiation_timeout_secs"]);
        assert!(l.validate()[0].1.contains("write 1 to 1000 (default 8)"));
    }

    #[test]
    fn the_byte_rate_must_let_the_largest_stanza_through() {
        let l = DomainLimits {
            bytes_per_sec: 100_000,
            ..DomainLimits::default()
        };
        let v = l.validate();
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].0, "bytes_per_sec");
    }
}
