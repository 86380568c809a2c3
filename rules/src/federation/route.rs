//! Static routes: where the streams to a remote domain go, and the policy for them,
//! instead of (or on top of) DNS SRV discovery. The seed's federation model needs them
//! for peers that cannot be found through DNS, and a default route `*` sends all
//! federation through one host (an internal core sending everything to its edge).
//!
//! The most specific route wins: an exact domain, then the wildcard with the most
//! labels, then `*`. No route: DNS SRV decides.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Deserializer};

use super::limits::LimitOverrides;
use super::pattern::DomainPattern;
use super::policy::{AuthPolicy, TlsPolicy};

/// Where a route sends streams: `host:port`, host a DNS name or an IP address
/// (IPv6 in brackets).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Target {
    /// A normalized DNS name, an IPv4 address, or an IPv6 address without brackets.
    pub host: String,
    pub port: u16,
}

/// Why a route target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(pub String);

impl Target {
    pub fn parse(s: &str) -> Result<Self, TargetError> {
        let err = |why: &str| TargetError(format!("`{s}` is not a route target: {why}"));
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (ip, after) = rest
                .split_once(']')
                .ok_or_else(|| err("`]` is missing after the IPv6 address"))?;
            let ip: std::net::Ipv6Addr = ip.parse().map_err(|_| err("bad IPv6 address"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| TargetError(format!("`{s}` has no port: write `{s}:5269`")))?;
            (ip.to_string(), port)
        } else {
            let Some((host, port)) = s.rsplit_once(':') else {
                return Err(TargetError(format!("`{s}` has no port: write `{s}:5269`")));
            };
            if host.contains(':') {
                return Err(err(
                    "write an IPv6 address in brackets, e.g. `[2001:db8::7]:5269`",
                ));
            }
            let host = if host.parse::<std::net::Ipv4Addr>().is_ok() {
                host.to_string()
            } else {
                herald_translate::jid::domainprep(host)
                    .ok()
                    .filter(|h| !h.starts_with('['))
                    .ok_or_else(|| err("the host is neither a DNS name nor an IP address"))?
            };
            (host, port)
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| err("the port must be a number from 1 to 65535"))?;
        Ok(Self { host, port })
    }
}

impl TryFrom<String> for Target {
    type Error = TargetError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// One `[[s2s.route]]`: the domains it covers and what it sets for them. Every field
/// but the pattern is optional: a route without target only sets policy, and streams
/// still go where DNS says.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    #[serde(rename = "domain")]
    pub pattern: DomainPattern,
    #[serde(default)]
    pub target: Option<Target>,
    /// Connect to `target` with TLS from the first byte (XEP-0368), not STARTTLS.
    #[serde(default)]
    pub direct_tls: bool,
    #[serde(default)]
    pub tls: Option<TlsPolicy>,
    #[serde(default)]
    pub auth: Option<AuthPolicy>,
    /// SHA-256 of the peer's end-entity certificate (DER); written as 64 hex digits.
    /// When set, only that certificate is accepted for the route's domains.
    #[serde(default, deserialize_with = "pin_from_hex")]
    pub pin_sha256: Option<[u8; 32]>,
    #[serde(default)]
    pub limits: LimitOverrides,
}

impl Route {
    /// A route for `pattern` that sets nothing.
    pub fn new(pattern: DomainPattern) -> Self {
        Self {
            pattern,
            target: None,
            direct_tls: false,
            tls: None,
            auth: None,
            pin_sha256: None,
            limits: LimitOverrides::default(),
        }
    }
}

fn pin_from_hex<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
    let s = String::deserialize(d)?;
    parse_pin(&s).map(Some).map_err(serde::de::Error::custom)
}

/// 64 hex digits (colons between bytes allowed, as `openssl x509 -fingerprint` prints
/// them) into 32 bytes.
pub fn parse_pin(s: &str) -> Result<[u8; 32], String> {
    let digits: Vec<u8> = s.bytes().filter(|b| *b != b':').collect();
    let bad = || {
        format!(
            "`{s}` is not a SHA-256 pin: write 64 hex digits \
             (`openssl x509 -in peer.pem -outform DER | sha256sum`)"
        )
    };
    if digits.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16).ok_or_else(bad)?;
        let lo = (pair[1] as char).to_digit(16).ok_or_else(bad)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Ok(out)
}

/// The routes, indexed for a lookup that costs one hash probe per label.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    exact: HashMap<String, usize>,
    below: HashMap<String, usize>,
    any: Option<usize>,
}

/// Which route applies to a domain, or none (DNS), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteDecision<'a> {
    Static {
        /// Position in the route list (0-based).
        index: usize,
        route: &'a Route,
        reason: String,
    },
    Dns {
        reason: String,
    },
}

impl RouteDecision<'_> {
    pub fn reason(&self) -> &str {
        match self {
            Self::Static { reason, .. } | Self::Dns { reason } => reason,
        }
    }

    /// The route, when one matched.
    pub fn route(&self) -> Option<&Route> {
        match self {
            Self::Static { route, .. } => Some(route),
            Self::Dns { .. } => None,
        }
    }

    /// The fixed address to connect to; `None`: look it up in DNS.
    pub fn target(&self) -> Option<&Target> {
        self.route().and_then(|r| r.target.as_ref())
    }
}

/// How the address of `domain` is found when no route gives one.
pub fn dns_words(domain: &str) -> String {
    format!(
        "DNS SRV lookup of _xmpps-server._tcp.{domain} and _xmpp-server._tcp.{domain} \
         (XEP-0368, RFC 6120 §3.2), else {domain}:5269"
    )
}

impl RouteTable {
    /// Index `routes`. When two routes have the same pattern the first is used (the
    /// configuration check refuses that, see [`RouteTable::duplicates`]).
    pub fn new(routes: Vec<Route>) -> Self {
        let mut t = Self {
            routes,
            ..Self::default()
        };
        for (i, r) in t.routes.iter().enumerate() {
            match &r.pattern {
                DomainPattern::Exact(d) => {
                    t.exact.entry(d.clone()).or_insert(i);
                }
                DomainPattern::Below(d) => {
                    t.below.entry(d.clone()).or_insert(i);
                }
                DomainPattern::Any => {
                    t.any.get_or_insert(i);
                }
            }
        }
        t
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Each route whose pattern an earlier route already has: (its index, the earlier).
    pub fn duplicates(routes: &[Route]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (i, r) in routes.iter().enumerate() {
            if let Some(first) = routes[..i].iter().position(|o| o.pattern == r.pattern) {
                out.push((i, first));
            }
        }
        out
    }

    /// The route for a normalized `domain`.
    pub fn lookup(&self, domain: &str) -> RouteDecision<'_> {
        let found = |index: usize, why: String| RouteDecision::Static {
            index,
            route: &self.routes[index],
            reason: format!(
                "route {} ([[s2s.route]] entry {}) {why}; {}",
                self.routes[index].pattern,
                index + 1,
                self.connect_words(index, domain)
            ),
        };
        if let Some(&i) = self.exact.get(domain) {
            return found(i, format!("names {domain} exactly"));
        }
        let mut rest = domain;
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(&i) = self.below.get(parent) {
                return found(
                    i,
                    format!("is the most specific route covering {domain} (no exact route)"),
                );
            }
            rest = parent;
        }
        if let Some(i) = self.any {
            return found(
                i,
                format!("is the default route: no exact or wildcard route covers {domain}"),
            );
        }
        RouteDecision::Dns {
            reason: format!("no route covers {domain}: {}", dns_words(domain)),
        }
    }

    fn connect_words(&self, index: usize, domain: &str) -> String {
        match &self.routes[index].target {
            Some(t) => format!("streams go to {t}"),
            None => format!(
                "it has no target, so it only sets policy and the address comes from {}",
                dns_words(domain)
            ),
        }
    }
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
