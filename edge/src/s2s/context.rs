//! What every s2s connection task shares: the federation rules, certificates and trust,
//! the dialback secret, the resolver, the machines' settings; and the small conversions
//! between the core's view of stanzas (`jabber:client`) and the wire's (`jabber:server`).
//!
//! The rules, the trust anchors and the machines' settings sit behind [`ArcSwap`]s: each
//! decision loads the ones in force, and a reload ([`S2sContext::prepare`], then
//! [`S2sContext::apply`]) swaps them and closes the live streams the new ACL denies.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use herald_certs::{
    check_peer, s2s_client_config, CertPin, CertifiedIdentity, PeerRole, ReloadableCerts, S2sTrust,
    S2sVerifyMode,
};
use herald_core::metrics_s2s::Direction as MetricDir;
use herald_core::Server;
use herald_rules::federation::{
    AuthPolicy, Direction as AclDirection, Federation as Rules, TlsPolicy as RulesTls,
};
use herald_translate::s2s::{
    CertFacts, DialbackSecret, InitiatingConfig, ReceivingConfig, S2sPolicy, TlsPolicy,
};
use herald_translate::xml::Node;
use herald_translate::{ns, Element, Envelope, StanzaError, StanzaErrorCondition, XmlLimits};
use tokio::sync::Notify;

use super::dns::{Candidate, Resolver};
use super::rate::Bucket;

/// ALPN protocol of XEP-0368 direct TLS between servers.
pub const ALPN_XMPP_SERVER: &[u8] = b"xmpp-server";

/// The shared state of federation.
pub struct S2sContext {
    /// Weak: the server owns the federation front, which owns this.
    pub server: Weak<Server>,
    /// Routes, ACL, policies and limits in force (swapped by a reload).
    pub rules: ArcSwap<Rules>,
    /// The trust anchors for peers' certificates (swapped by a reload).
    pub trust: ArcSwap<S2sTrust>,
    pub certs: Arc<ReloadableCerts>,
    /// The XEP-0185 secret: random per process (see `docs/ARCHITECTURE.md`). Keys
    /// handed out before a restart stop verifying after it, which only makes a peer
    /// redo dialback.
    pub secret: DialbackSecret,
    /// `None` when no resolver could be built: only static routes work then.
    pub resolver: Option<Resolver>,
    /// The machines' settings derived from the limits (swapped by a reload; a
    /// connection keeps the ones it started with).
    pub tuning: ArcSwap<Tuning>,
    pub tls_starttls: Arc<rustls::ServerConfig>,
    pub tls_direct: Arc<rustls::ServerConfig>,
    /// Authenticated streams: counted per remote domain, both directions
    /// (`max_connections`), and each with a way to ask it to close.
    pub streams: Mutex<Streams>,
    /// An authenticated inbound stream without input this long is closed.
    pub idle_timeout: Duration,
    /// Inbound connections not yet authenticated, per peer address.
    pub preauth: Mutex<HashMap<IpAddr, u32>>,
    /// Inbound rate buckets of domains with streams (dropped with their last stream).
    pub rates: Mutex<HashMap<String, Bucket>>,
}

impl std::fmt::Debug for S2sContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S2sContext").finish_non_exhaustive()
    }
}

/// The settings of the stream machines, from the limits.
#[derive(Debug)]
pub struct Tuning {
    pub initiating: Arc<InitiatingConfig>,
    pub receiving: Arc<ReceivingConfig>,
    /// One connection attempt (TCP, TLS, authentication) to one address.
    pub attempt_timeout: Duration,
    /// The most a peer may send before a first domain is authenticated.
    pub preauth_bytes: usize,
}

impl Tuning {
    pub fn new(rules: &Rules, secret: &DialbackSecret) -> Self {
        let limits = rules.limits;
        let negotiation = Duration::from_secs(limits.negotiation_timeout_secs.into());
        // The reader's bound; each stanza is then held to its domain's own limit.
        let max_stanza = usize::try_from(rules.largest_stanza_bytes()).unwrap_or(usize::MAX);
        let mut initiating = InitiatingConfig::new(secret.clone());
        initiating.negotiation_timeout = negotiation;
        initiating.limits.max_stanza_bytes = max_stanza;
        let preauth = usize::try_from(limits.preauth_bytes).unwrap_or(usize::MAX);
        let defaults = ReceivingConfig::default();
        let receiving = ReceivingConfig {
            hosted: rules.hosted.clone(),
            limits_preauth: XmlLimits {
                max_stanza_bytes: defaults.limits_preauth.max_stanza_bytes.min(preauth),
                ..defaults.limits_preauth
            },
            limits: XmlLimits {
                max_stanza_bytes: max_stanza,
                ..defaults.limits
            },
            negotiation_timeout: negotiation,
            ..defaults
        };
        Self {
            initiating: Arc::new(initiating),
            receiving: Arc::new(receiving),
            attempt_timeout: negotiation,
            preauth_bytes: preauth,
        }
    }
}

/// The registry of authenticated streams.
#[derive(Debug, Default)]
pub struct Streams {
    /// Per remote domain, both directions.
    count: HashMap<String, u32>,
    /// Every live stream by its guard's number.
    live: HashMap<u64, LiveStream>,
    next: u64,
}

#[derive(Debug)]
struct LiveStream {
    domain: String,
    dir: MetricDir,
    close: Arc<Notify>,
}

impl Streams {
    /// How many streams `domain` has, both directions.
    pub fn count(&self, domain: &str) -> u32 {
        self.count.get(domain).copied().unwrap_or(0)
    }

    /// The live streams, `(number, remote domain, direction)`, in the order they
    /// came up; the number is the stream's own for as long as this process runs.
    pub fn live(&self) -> Vec<(u64, String, MetricDir)> {
        let mut live: Vec<_> = self
            .live
            .iter()
            .map(|(id, l)| (*id, l.domain.clone(), l.dir))
            .collect();
        live.sort_unstable_by_key(|l| l.0);
        live
    }
}

/// A reload, checked and built, not yet in force (see [`S2sContext::prepare`]).
pub struct Prepared {
    rules: Rules,
    trust: S2sTrust,
}

fn acl_direction(dir: MetricDir) -> AclDirection {
    match dir {
        MetricDir::In => AclDirection::Inbound,
        MetricDir::Out => AclDirection::Outbound,
    }
}

impl S2sContext {
    /// Build what a reload to `rules` and `trust_files` puts in force; nothing changes
    /// yet, and an error leaves the rules in force as they are. The hosted domains
    /// stay (they change with a restart).
    pub fn prepare(
        &self,
        mut rules: Rules,
        trust_files: &[std::path::PathBuf],
    ) -> Result<Prepared, herald_certs::CertError> {
        let trust = S2sTrust::new(true, trust_files)?;
        let current = self.rules.load();
        rules.hosted.clone_from(&current.hosted);
        rules.enabled = current.enabled;
        Ok(Prepared { rules, trust })
    }

    /// Put `prepared` in force, then close the live streams its ACL denies. Returns
    /// how many were asked to close.
    pub fn apply(&self, prepared: Prepared) -> usize {
        let Prepared { rules, trust } = prepared;
        self.tuning
            .store(Arc::new(Tuning::new(&rules, &self.secret)));
        self.trust.store(Arc::new(trust));
        self.rules.store(Arc::new(rules));
        self.close_denied()
    }

    /// Ask every live stream whose remote domain the ACL in force denies in its
    /// direction to close. Returns how many.
    pub fn close_denied(&self) -> usize {
        let rules = self.rules.load();
        let doomed: Vec<(String, MetricDir, Arc<Notify>)> = {
            let streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
            streams
                .live
                .values()
                .filter(|l| !rules.acl.decide(&l.domain, acl_direction(l.dir)).allowed)
                .map(|l| (l.domain.clone(), l.dir, Arc::clone(&l.close)))
                .collect()
        };
        for (domain, dir, close) in &doomed {
            tracing::info!(%domain, ?dir, "s2s stream closed: the reloaded ACL denies it");
            if let Some(s) = self.server() {
                s.metrics.s2s.acl_denied(domain, *dir);
            }
            close.notify_one();
        }
        doomed.len()
    }

    pub fn server(&self) -> Option<Arc<Server>> {
        self.server.upgrade()
    }

    /// The machines' policy for `domain` under the rules.
    pub fn policy(&self, domain: &str) -> S2sPolicy {
        let p = self.rules.load().policy_for(domain);
        let tls = match p.tls {
            RulesTls::Required => TlsPolicy::Required,
            RulesTls::Optional => TlsPolicy::Optional,
        };
        S2sPolicy {
            tls,
            pkix: matches!(p.auth, AuthPolicy::Pkix | AuthPolicy::Any),
            dialback: matches!(p.auth, AuthPolicy::Dialback | AuthPolicy::Any),
            // Where TLS is optional, dialback may run without it.
            dialback_requires_tls: tls == TlsPolicy::Required,
        }
    }

    pub fn pin(&self, domain: &str) -> Option<CertPin> {
        self.rules.load().pin_for(domain).map(CertPin::from_bytes)
    }

    /// What `chain` proves about `domain` (`role`: which end the peer is).
    pub fn cert_facts(
        &self,
        chain: &[rustls_pki_types::CertificateDer<'static>],
        domain: &str,
        role: PeerRole,
    ) -> CertFacts {
        if chain.is_empty() {
            return CertFacts::NONE;
        }
        let outcome = check_peer(
            chain,
            domain,
            &self.trust.load(),
            role,
            self.pin(domain).as_ref(),
        );
        tracing::debug!(%outcome, "s2s peer certificate");
        CertFacts {
            presented: true,
            valid_for_domain: outcome.authenticates(),
        }
    }

    /// The TLS client configuration for a stream from `local` to `remote`: strict
    /// when the policy wants TLS and PKIX only, pinned when the route pins, else
    /// recording (dialback may follow); our certificate for `local` is offered for
    /// SASL EXTERNAL.
    pub fn client_tls(
        &self,
        local: &str,
        remote: &str,
    ) -> Result<Arc<rustls::ClientConfig>, String> {
        let p = self.rules.load().policy_for(remote);
        let mode = match self.pin(remote) {
            Some(pin) => S2sVerifyMode::Pinned(pin),
            None if p.tls == RulesTls::Required && p.auth == AuthPolicy::Pkix => {
                S2sVerifyMode::Strict
            }
            None => S2sVerifyMode::Record,
        };
        let store = self.certs.current();
        let identity = store
            .lookup(local)
            .and_then(|key| CertifiedIdentity::from_certified_key(Arc::clone(key)).ok());
        s2s_client_config(
            &self.trust.load(),
            mode,
            identity.as_ref(),
            &[ALPN_XMPP_SERVER],
        )
        .map_err(|e| format!("TLS client configuration: {e}"))
    }

    /// Where to connect for `domain`: a static route's target, else DNS.
    pub async fn candidates(&self, domain: &str) -> Result<Vec<Candidate>, String> {
        let server = self.server();
        let rules = self.rules.load_full();
        let decision = rules.routes.lookup(domain);
        if let Some(target) = decision.target().cloned() {
            let direct_tls = decision.route().is_some_and(|r| r.direct_tls);
            let addrs: Vec<IpAddr> = match target.host.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) => tokio::net::lookup_host((target.host.as_str(), target.port))
                    .await
                    .map_err(|e| format!("route target {target}: {e}"))?
                    .map(|a: SocketAddr| a.ip())
                    .collect(),
            };
            return Ok(vec![Candidate {
                host: target.host.clone(),
                port: target.port,
                direct_tls,
                addrs,
            }]);
        }
        let Some(resolver) = &self.resolver else {
            return Err("no DNS resolver (see the log at startup)".into());
        };
        let found = resolver.xmpp_server_targets(domain).await;
        if let Some(s) = server {
            s.metrics.s2s.dns_lookup(match &found {
                Ok(_) => "ok",
                Err(super::dns::DnsError::NotFound { .. }) => "nxdomain",
                Err(_) => "error",
            });
        }
        found.map_err(|e| e.to_string())
    }

    /// A stream with `domain` is up: counted (gauge and `max_connections`) and
    /// registered until the guard drops; `close` is notified when a reload denies the
    /// domain. With `enforce`, `None` when the domain is at its limit.
    pub fn stream_guard(
        self: &Arc<Self>,
        domain: &str,
        dir: MetricDir,
        enforce: bool,
        close: &Arc<Notify>,
    ) -> Option<StreamGuard> {
        let id = {
            let max = self.rules.load().limits_for(domain).0.max_connections;
            let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
            let n = streams.count.entry(domain.to_string()).or_default();
            if enforce && *n >= max {
                return None;
            }
            *n += 1;
            let id = streams.next;
            streams.next += 1;
            streams.live.insert(
                id,
                LiveStream {
                    domain: domain.to_string(),
                    dir,
                    close: Arc::clone(close),
                },
            );
            id
        };
        // A stream set up while a reload denied its domain: checked after it is
        // registered, so that either this sees the new rules or the reload sees it.
        if !self
            .rules
            .load()
            .acl
            .decide(domain, acl_direction(dir))
            .allowed
        {
            tracing::info!(%domain, ?dir, "s2s stream closed: the ACL in force denies it");
            close.notify_one();
        }
        if let Some(s) = self.server() {
            // An authenticated peer gets its own metrics label (while there is room).
            s.metrics.s2s.domains.admit(domain);
            s.metrics.s2s.stream(domain, dir, 1);
        }
        Some(StreamGuard {
            ctx: Arc::clone(self),
            id,
            domain: domain.to_string(),
            dir,
        })
    }

    /// Count one unauthenticated inbound connection from `ip`; `None` when that address
    /// already has [`MAX_PREAUTH_PER_IP`].
    pub fn preauth_guard(self: &Arc<Self>, ip: IpAddr) -> Option<PreauthGuard> {
        let mut preauth = self.preauth.lock().unwrap_or_else(|e| e.into_inner());
        let n = preauth.entry(ip).or_default();
        if *n >= MAX_PREAUTH_PER_IP {
            return None;
        }
        *n += 1;
        Some(PreauthGuard {
            ctx: Arc::clone(self),
            ip,
        })
    }

    /// Charge one inbound stanza of `size` bytes to `domain`'s rates: how long the
    /// stream should stop reading.
    pub fn charge(&self, domain: &str, size: usize) -> Duration {
        let limits = self.rules.load().limits_for(domain).0;
        let (sps, bps) = (limits.stanzas_per_sec, limits.bytes_per_sec);
        let now = tokio::time::Instant::now().into_std();
        let mut rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        rates
            .entry(domain.to_string())
            .or_insert_with(|| Bucket::new(sps, bps, now))
            .charge(sps, bps, size, now)
    }

    /// Send an error for `element` (a stanza from one of our users, `jabber:server`
    /// or `jabber:client`) back to its sender.
    pub async fn bounce(&self, element: Element, condition: StanzaErrorCondition, text: &str) {
        let Some(server) = self.server() else { return };
        let Ok(env) = Envelope::parse(to_client(element)) else {
            return;
        };
        let error = StanzaError::new(condition).with_text(text);
        if let Some(reply) = env.error_reply(&error) {
            server.metrics.s2s.bounce(condition.name());
            server.route(reply).await;
        }
    }
}

/// Unauthenticated inbound connections one address may hold at once.
pub const MAX_PREAUTH_PER_IP: u32 = 16;

/// One unauthenticated inbound connection (see [`S2sContext::preauth_guard`]).
pub struct PreauthGuard {
    ctx: Arc<S2sContext>,
    ip: IpAddr,
}

impl Drop for PreauthGuard {
    fn drop(&mut self) {
        let mut preauth = self.ctx.preauth.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = preauth.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                preauth.remove(&self.ip);
            }
        }
    }
}

/// One counted stream (see [`S2sContext::stream_guard`]).
pub struct StreamGuard {
    ctx: Arc<S2sContext>,
    id: u64,
    domain: String,
    dir: MetricDir,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut streams = self.ctx.streams.lock().unwrap_or_else(|e| e.into_inner());
        streams.live.remove(&self.id);
        if let Some(n) = streams.count.get_mut(&self.domain) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                streams.count.remove(&self.domain);
                let mut rates = self.ctx.rates.lock().unwrap_or_else(|e| e.into_inner());
                rates.remove(&self.domain);
            }
        }
        drop(streams);
        if let Some(s) = self.ctx.server() {
            s.metrics.s2s.stream(&self.domain, self.dir, -1);
        }
    }
}

/// The element with every `jabber:server` element (itself and descendants) moved to
/// `jabber:client`: stanzas from a peer enter the core.
pub fn to_client(el: Element) -> Element {
    rename_ns(el, ns::SERVER, ns::CLIENT)
}

/// The reverse, for stanzas leaving on an s2s stream.
pub fn to_server(el: Element) -> Element {
    rename_ns(el, ns::CLIENT, ns::SERVER)
}

fn rename_ns(mut el: Element, from: &str, to: &str) -> Element {
    fn walk(el: &mut Element, from: &str, to: &str) {
        if el.ns == from {
            el.ns = to.to_string();
        }
        for child in &mut el.children {
            if let Node::Element(child) = child {
                walk(child, from, to);
            }
        }
    }
    walk(&mut el, from, to);
    el
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanzas_change_namespace_at_the_edge_and_extensions_keep_theirs() {
        let el = Element::new("message", ns::SERVER)
            .with_attr("from", "a@remote.example")
            .with_child(Element::new("body", ns::SERVER).with_text("hi"))
            .with_child(Element::new("ping", ns::PING));
        let client = to_client(el.clone());
        assert_eq!(client.ns, ns::CLIENT);
        assert!(client.has_child("body", ns::CLIENT));
        assert!(client.has_child("ping", ns::PING));
        assert_eq!(
            client.to_xml(ns::CLIENT).expect("xml"),
            el.to_xml(ns::SERVER).expect("xml")
        );
        assert_eq!(to_server(client), el);
    }
}
