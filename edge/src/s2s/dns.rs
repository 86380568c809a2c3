//! Finding a remote XMPP server: SRV (RFC 6120 §3.2, XEP-0368), then A/AAAA.
//!
//! [`Resolver::xmpp_server_targets`] asks for `_xmpps-server._tcp.DOMAIN` and
//! `_xmpp-server._tcp.DOMAIN` at once, merges and orders the answers (see
//! [`super::srv`]), and resolves every target's addresses before returning.
//!
//! # Addresses are resolved eagerly
//!
//! Every target's A and AAAA records are looked up, in parallel, before the list is
//! returned, so a [`Candidate`] is plain data that [`super::connect::connect_first`] can
//! walk without DNS. The lists are short (at most [`MAX_TARGETS`] targets, usually one or
//! two), the answers are cached, and a target without an address is dropped from the
//! list rather than discovered to be dead in the middle of the failover. The cost is a
//! lookup for targets that are never tried when the first one answers.
//!
//! # Caching
//!
//! hickory's response cache does both kinds, keyed by name and record type, and Herald
//! relies on it instead of keeping one of its own:
//! - a positive answer is kept for the smallest TTL of its records (at most a day; a
//!   TTL of 0 is used once and not kept);
//! - a negative answer (NXDOMAIN, or no record of that type) is kept for the negative TTL
//!   of the SOA it carries (RFC 2308), clamped to
//!   [`DnsConfig::negative_ttl_min`]..=[`DnsConfig::negative_ttl_max`]; one without an SOA,
//!   which RFC 2308 says not to cache, is kept for the minimum, so that a burst of
//!   stanzas to a domain without SRV records is not a burst of queries;
//! - failures (timeout, SERVFAIL, REFUSED, no connection) are not cached;
//! - the cache holds at most [`DnsConfig::cache_size`] answers (moka, hickory's cache,
//!   evicts the ones least likely to be used again).
//!
//! Hickory's clock is the real one; the integration tests wait for short TTLs to expire.
//!
//! # Identity
//!
//! [`Candidate::host`] is where to connect, not whom to authenticate: the TLS
//! certificate must be checked against the remote XMPP domain (RFC 6120 §13.7.2.1), since
//! an unsigned SRV answer can point anywhere.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{Name, RData};
use hickory_resolver::TokioResolver;
use rand::Rng;
use tokio::task::JoinSet;

use super::srv::{self, Plan, SrvRecord, Target, DEFAULT_PORT};

/// At most this many SRV targets are kept (the first ones in connection order), so a
/// hostile answer cannot make one discovery into hundreds of lookups.
pub const MAX_TARGETS: usize = 16;

/// How to reach DNS and how long to trust its negative answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// Recursive nameservers to ask, each over UDP and TCP, without search domains or
    /// the hosts file. `None`: the system's configuration (`/etc/resolv.conf`, and
    /// `/etc/hosts` for addresses).
    pub nameservers: Option<Vec<SocketAddr>>,
    /// How long one query waits for an answer (also with the system configuration:
    /// this replaces resolv.conf's `timeout` option).
    pub timeout: Duration,
    /// How many times a query is sent before it fails (replaces resolv.conf's
    /// `attempts`).
    pub attempts: usize,
    /// How many answers the cache holds.
    pub cache_size: u64,
    /// The shortest time a negative answer is kept (see the module documentation).
    pub negative_ttl_min: Duration,
    /// The longest time a negative answer is kept, whatever its SOA says.
    pub negative_ttl_max: Duration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            nameservers: None,
            timeout: Duration::from_secs(5),
            attempts: 2,
            cache_size: 4096,
            negative_ttl_min: Duration::from_secs(30),
            negative_ttl_max: Duration::from_secs(3600),
        }
    }
}

/// One place to try, with its addresses, in connection order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The SRV target (or the domain itself, for the fallback), without the final dot.
    pub host: String,
    pub port: u16,
    /// TLS from the first byte (`_xmpps-server`); otherwise STARTTLS.
    pub direct_tls: bool,
    /// IPv6 addresses first, then IPv4; never empty in a list from the resolver.
    pub addrs: Vec<IpAddr>,
}

impl Candidate {
    /// The addresses with the port, in the order to try them.
    pub fn socket_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.addrs.iter().map(|ip| SocketAddr::new(*ip, self.port))
    }
}

/// What [`Resolver::xmpp_server_discovery`] saw and concluded.
#[derive(Debug)]
pub struct Discovery {
    /// The `_xmpps-server._tcp` records (direct TLS), as published.
    pub xmpps: Vec<SrvRecord>,
    /// The `_xmpp-server._tcp` records (STARTTLS), as published.
    pub xmpp: Vec<SrvRecord>,
    /// Where to connect, in order, as [`Resolver::xmpp_server_targets`] returns it.
    pub result: Result<Vec<Candidate>, DnsError>,
}

/// Why discovery found nowhere to connect.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The resolver could not be built (for instance, no readable system configuration).
    #[error("DNS resolver configuration: {0}")]
    Config(#[source] NetError),
    #[error("{domain:?} is not a DNS domain name: {reason}")]
    InvalidDomain { domain: String, reason: String },
    /// The domain's `_xmpp-server` SRV answer is the single target `.`.
    #[error(
        "{domain} does not offer server-to-server XMPP (its _xmpp-server SRV target is \".\")"
    )]
    NotAvailable { domain: String },
    /// No SRV record, and no A or AAAA record at the domain either.
    #[error("{domain} has no XMPP server in DNS (no SRV, A or AAAA record)")]
    NotFound { domain: String },
    /// SRV records, but none of their targets has an address.
    #[error("none of the {targets} SRV targets of {domain} has an A or AAAA record")]
    NoAddresses { domain: String, targets: usize },
    /// A lookup failed (timeout, server failure, refused): the answer is not known.
    #[error("DNS lookup of {name}: {source}")]
    Lookup {
        name: String,
        #[source]
        source: NetError,
    },
}

/// The DNS resolver for federation. Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct Resolver {
    inner: TokioResolver,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver {
    pub fn new(config: &DnsConfig) -> Result<Self, DnsError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match &config.nameservers {
            Some(servers) => {
                let servers = servers.iter().map(|addr| {
                    let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                    for connection in &mut server.connections {
                        connection.port = addr.port();
                    }
                    server
                });
                let resolver_config =
                    ResolverConfig::from_parts(None, Vec::new(), servers.collect());
                let mut builder = TokioResolver::builder_with_config(resolver_config, provider);
                builder.options_mut().use_hosts_file = ResolveHosts::Never;
                builder
            }
            None => TokioResolver::builder(provider).map_err(DnsError::Config)?,
        };
        let options = builder.options_mut();
        options.timeout = config.timeout;
        options.attempts = config.attempts;
        options.cache_size = config.cache_size;
        options.negative_min_ttl = Some(config.negative_ttl_min);
        options.negative_max_ttl = Some(config.negative_ttl_max);
        let inner = builder.build().map_err(DnsError::Config)?;
        Ok(Self { inner })
    }

    /// Where to connect for server-to-server XMPP with `domain`, in order: SRV targets
    /// (both services, merged per XEP-0368) or else the domain itself on port 5269, each
    /// with its addresses. Weighted choices use the thread's random generator.
    pub async fn xmpp_server_targets(&self, domain: &str) -> Result<Vec<Candidate>, DnsError> {
        self.discover(domain, |xmpps, xmpp| {
            srv::plan(xmpps, xmpp, &mut rand::rng())
        })
        .await
    }

    /// As [`Self::xmpp_server_targets`], with the weighted choices drawn from `rng`.
    pub async fn xmpp_server_targets_with_rng<R: Rng + Send>(
        &self,
        domain: &str,
        rng: &mut R,
    ) -> Result<Vec<Candidate>, DnsError> {
        self.discover(domain, |xmpps, xmpp| srv::plan(xmpps, xmpp, rng))
            .await
    }

    /// As [`Self::xmpp_server_targets`], with the SRV records found for each service
    /// (`_xmpps-server`, `_xmpp-server`), for diagnostics (`herald federation check`).
    /// Records are empty when a lookup found none or failed.
    pub async fn xmpp_server_discovery(&self, domain: &str) -> Discovery {
        let mut seen = (Vec::new(), Vec::new());
        let result = self
            .discover(domain, |xmpps, xmpp| {
                seen = (xmpps.to_vec(), xmpp.to_vec());
                srv::plan(xmpps, xmpp, &mut rand::rng())
            })
            .await;
        Discovery {
            xmpps: seen.0,
            xmpp: seen.1,
            result,
        }
    }

    async fn discover(
        &self,
        domain: &str,
        plan: impl FnOnce(&[SrvRecord], &[SrvRecord]) -> Plan,
    ) -> Result<Vec<Candidate>, DnsError> {
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        if let Some(ip) = ip_literal(domain) {
            // RFC 6120 §3.2: an IP address needs no lookup.
            return Ok(vec![Candidate {
                host: domain.to_owned(),
                port: DEFAULT_PORT,
                direct_tls: false,
                addrs: vec![ip],
            }]);
        }
        let name = fqdn(domain)?;
        let xmpps_name = service_name("_xmpps-server", &name, domain)?;
        let xmpp_name = service_name("_xmpp-server", &name, domain)?;
        let (xmpps, xmpp) = tokio::join!(self.srv(&xmpps_name), self.srv(&xmpp_name));
        let mut failure = None;
        let mut answer = |result: Result<Vec<SrvRecord>, DnsError>| {
            result.unwrap_or_else(|error| {
                tracing::debug!(%error, "SRV lookup failed");
                failure = Some(error);
                Vec::new()
            })
        };
        let (xmpps, xmpp) = (answer(xmpps), answer(xmpp));
        match (plan(&xmpps, &xmpp), failure) {
            (Plan::Targets(targets), _) => self.resolve_targets(domain, targets).await,
            // Without records from the other service, a failed lookup leaves the plan
            // unknown: falling back (or giving up) could contradict the real answer.
            (_, Some(error)) => Err(error),
            (Plan::NotAvailable, None) => Err(DnsError::NotAvailable {
                domain: domain.to_owned(),
            }),
            (Plan::Fallback, None) => {
                let addrs = self.addresses(&name).await?;
                if addrs.is_empty() {
                    return Err(DnsError::NotFound {
                        domain: domain.to_owned(),
                    });
                }
                Ok(vec![Candidate {
                    host: domain.to_owned(),
                    port: DEFAULT_PORT,
                    direct_tls: false,
                    addrs,
                }])
            }
        }
    }

    /// The SRV records at `name`; none for NXDOMAIN or no SRV there.
    async fn srv(&self, name: &Name) -> Result<Vec<SrvRecord>, DnsError> {
        match self.inner.srv_lookup(name.clone()).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::SRV(srv) => Some(SrvRecord::new(
                        srv.priority,
                        srv.weight,
                        srv.port,
                        srv.target.to_ascii(),
                    )),
                    _ => None,
                })
                .collect()),
            Err(error) if error.is_no_records_found() => Ok(Vec::new()),
            Err(source) => Err(DnsError::Lookup {
                name: name.to_ascii(),
                source,
            }),
        }
    }

    /// The A and AAAA addresses of `name` (IPv6 first); none for NXDOMAIN or no record.
    async fn addresses(&self, name: &Name) -> Result<Vec<IpAddr>, DnsError> {
        lookup_ip(&self.inner, name.clone()).await
    }

    /// Resolves each distinct target host once, in parallel, and drops the targets
    /// without an address.
    async fn resolve_targets(
        &self,
        domain: &str,
        mut targets: Vec<Target>,
    ) -> Result<Vec<Candidate>, DnsError> {
        targets.truncate(MAX_TARGETS);
        let count = targets.len();
        let mut lookups = JoinSet::new();
        let mut started = HashSet::new();
        for target in &targets {
            if !started.insert(target.host.clone()) {
                continue;
            }
            let resolver = self.inner.clone();
            let host = target.host.clone();
            lookups.spawn(async move {
                let result = match Name::from_ascii(format!("{host}.")) {
                    Ok(name) => lookup_ip(&resolver, name).await,
                    Err(error) => Err(DnsError::InvalidDomain {
                        domain: host.clone(),
                        reason: error.to_string(),
                    }),
                };
                (host, result)
            });
        }
        let mut addresses = HashMap::new();
        while let Some(joined) = lookups.join_next().await {
            let Ok((host, result)) = joined else { continue };
            match result {
                Ok(addrs) => {
                    addresses.insert(host, addrs);
                }
                Err(error) => tracing::debug!(%host, %error, "SRV target not resolved"),
            }
        }
        let candidates: Vec<Candidate> = targets
            .into_iter()
            .filter_map(|t| {
                let addrs = addresses.get(&t.host).filter(|a| !a.is_empty())?.clone();
                Some(Candidate {
                    host: t.host,
                    port: t.port,
                    direct_tls: t.direct_tls,
                    addrs,
                })
            })
            .collect();
        if candidates.is_empty() {
            return Err(DnsError::NoAddresses {
                domain: domain.to_owned(),
                targets: count,
            });
        }
        Ok(candidates)
    }
}

async fn lookup_ip(resolver: &TokioResolver, name: Name) -> Result<Vec<IpAddr>, DnsError> {
    match resolver.lookup_ip(name.clone()).await {
        Ok(lookup) => Ok(lookup.iter().collect()),
        Err(error) if error.is_no_records_found() => Ok(Vec::new()),
        Err(source) => Err(DnsError::Lookup {
            name: name.to_ascii(),
            source,
        }),
    }
}

/// An IP address as a domain (RFC 7622 §3.2: IPv6 in brackets).
fn ip_literal(domain: &str) -> Option<IpAddr> {
    let bare = domain
        .strip_prefix('[')
        .and_then(|d| d.strip_suffix(']'))
        .unwrap_or(domain);
    bare.parse().ok()
}

/// The domain as an absolute DNS name (IDNA A-labels), so that no search domain of the
/// system's configuration is ever appended.
fn fqdn(domain: &str) -> Result<Name, DnsError> {
    let invalid = |reason: String| DnsError::InvalidDomain {
        domain: domain.to_owned(),
        reason,
    };
    if domain.is_empty() {
        return Err(invalid("empty".into()));
    }
    let mut name = Name::from_utf8(domain).map_err(|e| invalid(e.to_string()))?;
    if name.is_root() {
        return Err(invalid("the root".into()));
    }
    name.set_fqdn(true);
    Ok(name)
}

fn service_name(service: &str, name: &Name, domain: &str) -> Result<Name, DnsError> {
    Name::from_ascii(format!("{service}._tcp"))
        .and_then(|prefix| prefix.append_domain(name))
        .map_err(|e| DnsError::InvalidDomain {
            domain: domain.to_owned(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_absolute_and_idna_encoded() {
        let name = fqdn("bücher.example").expect("a valid name");
        assert!(name.is_fqdn());
        assert_eq!(name.to_ascii(), "xn--bcher-kva.example.");
        let srv = service_name("_xmpp-server", &name, "bücher.example").expect("a valid name");
        assert_eq!(srv.to_ascii(), "_xmpp-server._tcp.xn--bcher-kva.example.");
    }

    #[test]
    fn empty_and_overlong_domains_are_refused() {
        assert!(matches!(fqdn(""), Err(DnsError::InvalidDomain { .. })));
        let label = "a".repeat(64);
        assert!(matches!(
            fqdn(&format!("{label}.example")),
            Err(DnsError::InvalidDomain { .. })
        ));
    }

    #[test]
    fn ip_literals_are_recognised() {
        assert_eq!(ip_literal("192.0.2.1"), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(
            ip_literal("[2001:db8::1]"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(ip_literal("a.example"), None);
    }

    #[test]
    fn building_needs_no_runtime() {
        let config = DnsConfig {
            nameservers: Some(vec!["127.0.0.1:53".parse().unwrap()]),
            ..DnsConfig::default()
        };
        Resolver::new(&config).expect("resolver outside a runtime");
    }

    #[test]
    fn the_system_configuration_is_read_when_no_nameserver_is_given() {
        // Only building: no query leaves the machine.
        if std::path::Path::new("/etc/resolv.conf").exists() {
            Resolver::new(&DnsConfig::default()).expect("resolver from /etc/resolv.conf");
        }
    }

    #[tokio::test]
    async fn an_ip_literal_domain_needs_no_lookup() {
        let config = DnsConfig {
            // Nothing listens there; a lookup would fail.
            nameservers: Some(vec!["127.0.0.1:9".parse().unwrap()]),
            timeout: Duration::from_millis(200),
            attempts: 1,
            ..DnsConfig::default()
        };
        let resolver = Resolver::new(&config).expect("resolver");
        let targets = resolver
            .xmpp_server_targets("[::1]")
            .await
            .expect("no lookup needed");
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].addrs, ["::1".parse::<IpAddr>().unwrap()]);
        assert_eq!(targets[0].port, 5269);
        assert!(!targets[0].direct_tls);
    }
}
