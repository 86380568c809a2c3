//! `herald federation check DOMAIN`: what an outbound stream to DOMAIN would meet, step
//! by step, like `prosodyctl check connectivity` but from this machine and for any
//! domain: the policy that applies, discovery (static route or DNS), the TCP
//! connection, the stream and TLS (STARTTLS or direct TLS), the certificate the peer
//! presents, and the features it offers after TLS.
//!
//! The check never authenticates and never sends a stanza: it closes the stream once
//! the features after TLS are read. The TLS handshake records the certificate whatever
//! it is (`S2sVerifyMode::Record`), so an untrusted certificate is reported, not a
//! handshake failure.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Subcommand;
use herald_certs::{
    certificate_validity, check_peer, unix_now, CertPin, CertifiedIdentity, PeerRole, S2sTrust,
};
use herald_rules::federation::{
    decide_auth, AuthDecision, AuthFacts, Direction, DomainPolicy, Federation as Rules,
};
use herald_translate::ns;
use herald_translate::xml::Element;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;

use crate::app::load_config;
use crate::config::Config;
use crate::error::EdgeError;
use crate::s2s::dns::{Candidate, DnsConfig, Resolver};
use crate::s2s::srv::SrvRecord;

mod exchange;
mod report;

use exchange::Exchange;
pub use report::{Report, Status, Step, STEPS};

/// The federation tools.
#[derive(Debug, Subcommand)]
pub enum FederationAction {
    /// Resolve DOMAIN's server, connect, open a stream and negotiate TLS as an
    /// outbound stream would, and report each step, the certificate and the offered
    /// features (nothing is sent and nobody authenticates). Exits 0 only when every
    /// step passes.
    Check {
        /// The remote domain to check (`remote.example`).
        domain: String,
        /// Seconds each connection attempt, DNS answer or reply from the server may
        /// take.
        #[arg(long, value_name = "SECS", default_value_t = 10)]
        timeout: u64,
    },
}

/// Run a federation command and print its report.
pub fn run(config_path: Option<&Path>, action: FederationAction) -> Result<ExitCode, EdgeError> {
    let FederationAction::Check { domain, timeout } = action;
    let config = load_config(config_path)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| EdgeError::Command(format!("tokio runtime: {e}")))?;
    let timeout = Duration::from_secs(timeout.max(1));
    let report = runtime.block_on(check(&config, &domain, timeout))?;
    print!("{report}");
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Check `domain` under `config`; `timeout` bounds each connection attempt and each
/// wait for the server. Fails only when `domain` is not a domain name.
pub async fn check(config: &Config, domain: &str, timeout: Duration) -> Result<Report, EdgeError> {
    let domain = herald_translate::jid::domainprep(domain.strip_suffix('.').unwrap_or(domain))
        .map_err(|_| EdgeError::Command(format!("{domain:?} is not a domain name")))?;
    let rules = config.federation();
    let policy = rules.policy_for(&domain);
    let mut report = Report {
        domain: domain.clone(),
        steps: Vec::new(),
    };
    report.push(policy_step(config, &rules, &domain, &policy));

    let (step, candidates) = discovery_step(config, &rules, &domain, timeout).await;
    report.push(step);
    let Some(candidates) = candidates else {
        report.skip_rest();
        return Ok(report);
    };

    let (step, connected) = connect_step(&candidates, timeout).await;
    report.push(step);
    let Some((tcp, candidate)) = connected else {
        report.skip_rest();
        return Ok(report);
    };

    let local = rules
        .hosted
        .first()
        .cloned()
        .unwrap_or_else(|| "localhost".into());
    let trust = match S2sTrust::new(true, &config.s2s.trust) {
        Ok(t) => t,
        Err(e) => {
            let mut step = Step::new(STEPS[3]);
            step.fail(format!("trust anchors ([s2s] trust): {e}"));
            report.push(step);
            report.skip_rest();
            return Ok(report);
        }
    };
    let identity = our_identity(config, &local);
    let exchange = Exchange {
        local: &local,
        domain: &domain,
        timeout,
    };
    let (step, session) = exchange
        .stream_and_tls(tcp, &candidate, &trust, identity)
        .await;
    report.push(step);
    let Some(mut session) = session else {
        report.skip_rest();
        return Ok(report);
    };

    let pin = rules.pin_for(&domain).map(CertPin::from_bytes);
    report.push(certificate_step(
        &session.chain,
        &domain,
        &trust,
        pin.as_ref(),
        &policy,
        unix_now(),
    ));
    report.push(features_step(&session.features, &local));
    let _ = session.io.write(b"</stream:stream>").await;
    session.io.close().await;
    Ok(report)
}

/// Step 1: the route, the outbound ACL, the TLS and authentication policy.
fn policy_step(config: &Config, rules: &Rules, domain: &str, policy: &DomainPolicy) -> Step {
    let mut step = Step::new(STEPS[0]);
    if !config.s2s.enabled() {
        step.note("note: [s2s] has no listener, so federation is off in this configuration");
    }
    if rules.is_hosted(domain) {
        step.note(format!(
            "note: {domain} is hosted here; stanzas to it never leave this server"
        ));
    }
    step.note(format!("route: {}", rules.routes.lookup(domain).reason()));
    let acl = rules.acl.decide(domain, Direction::Outbound);
    if acl.allowed {
        step.note(format!("outbound ACL: allow ({})", acl.reason));
    } else {
        step.fail(format!(
            "outbound ACL: deny ({}); stanzas to {domain} are refused, the check goes on",
            acl.reason
        ));
    }
    step.note(format!("tls = {} ({})", policy.tls, policy.tls_why));
    step.note(format!("auth = {} ({})", policy.auth, policy.auth_why));
    if let Some(pin) = rules.pin_for(domain) {
        step.note(format!(
            "the route pins the certificate {}",
            CertPin::from_bytes(pin)
        ));
    }
    step
}

fn srv_line(service: &str, domain: &str, records: &[SrvRecord]) -> String {
    let name = format!("{service}._tcp.{domain}");
    if records.is_empty() {
        return format!("{name}: no SRV record");
    }
    let list: Vec<String> = records
        .iter()
        .map(|r| format!("{} {} {} {}", r.priority, r.weight, r.port, r.target))
        .collect();
    format!("{name}: SRV {}", list.join("; "))
}

fn kind(candidate: &Candidate) -> &'static str {
    if candidate.direct_tls {
        "direct TLS"
    } else {
        "STARTTLS"
    }
}

/// Step 2: where to connect, as the outbound connector finds it.
async fn discovery_step(
    config: &Config,
    rules: &Rules,
    domain: &str,
    timeout: Duration,
) -> (Step, Option<Vec<Candidate>>) {
    let mut step = Step::new(STEPS[1]);
    let decision = rules.routes.lookup(domain);
    let candidates = if let Some(target) = decision.target() {
        let direct_tls = decision.route().is_some_and(|r| r.direct_tls);
        let how = if direct_tls { ", direct TLS" } else { "" };
        step.note(format!(
            "static route target {target}{how} (DNS is not asked)"
        ));
        let addrs: Result<Vec<IpAddr>, String> = match target.host.parse::<IpAddr>() {
            Ok(ip) => Ok(vec![ip]),
            Err(_) => {
                let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
                match tokio::time::timeout(timeout, lookup).await {
                    Ok(Ok(found)) => Ok(found.map(|a: SocketAddr| a.ip()).collect()),
                    Ok(Err(e)) => Err(format!("{}: {e}", target.host)),
                    Err(_) => Err(format!("{}: no answer within {timeout:?}", target.host)),
                }
            }
        };
        match addrs {
            Ok(addrs) if !addrs.is_empty() => vec![Candidate {
                host: target.host.clone(),
                port: target.port,
                direct_tls,
                addrs,
            }],
            Ok(_) => {
                step.fail(format!("{} has no address", target.host));
                return (step, None);
            }
            Err(why) => {
                step.fail(format!("address lookup failed: {why}"));
                return (step, None);
            }
        }
    } else {
        let dns = DnsConfig {
            nameservers: (!config.dns.nameservers.is_empty())
                .then(|| config.dns.nameservers.clone()),
            timeout,
            ..DnsConfig::default()
        };
        let resolver = match Resolver::new(&dns) {
            Ok(r) => r,
            Err(e) => {
                step.fail(e.to_string());
                return (step, None);
            }
        };
        let found = resolver.xmpp_server_discovery(domain).await;
        step.note(srv_line("_xmpps-server", domain, &found.xmpps));
        step.note(srv_line("_xmpp-server", domain, &found.xmpp));
        match found.result {
            Ok(c) => {
                if found.xmpps.is_empty() && found.xmpp.is_empty() {
                    step.note(format!(
                        "no SRV record: the fallback, {domain} (A/AAAA) on port 5269"
                    ));
                }
                c
            }
            Err(e) => {
                step.fail(e.to_string());
                return (step, None);
            }
        }
    };
    for (i, c) in candidates.iter().enumerate() {
        let addrs: Vec<String> = c.addrs.iter().map(ToString::to_string).collect();
        step.note(format!(
            "candidate {}: {}:{} ({}) at {}",
            i + 1,
            c.host,
            c.port,
            kind(c),
            addrs.join(", ")
        ));
    }
    (step, Some(candidates))
}

/// Step 3: each address in order until one accepts the TCP connection.
async fn connect_step(
    candidates: &[Candidate],
    timeout: Duration,
) -> (Step, Option<(TcpStream, Candidate)>) {
    let mut step = Step::new(STEPS[2]);
    for c in candidates {
        for addr in c.socket_addrs() {
            let started = Instant::now();
            let what = if c.host == addr.ip().to_string() {
                format!("{addr} ({})", kind(c))
            } else {
                format!("{addr} ({}:{}, {})", c.host, c.port, kind(c))
            };
            match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                Ok(Ok(tcp)) => {
                    let _ = tcp.set_nodelay(true);
                    step.note(format!(
                        "{what}: connected in {} ms",
                        started.elapsed().as_millis()
                    ));
                    return (step, Some((tcp, c.clone())));
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    step.note(format!("{what}: refused"));
                }
                Ok(Err(e)) => step.note(format!("{what}: {e}")),
                Err(_) => step.note(format!("{what}: timeout after {timeout:?}")),
            }
        }
    }
    step.fail("no address accepted a connection");
    (step, None)
}

/// Our certificate for `local`, offered to the peer as a real outbound stream does
/// (it decides whether the peer offers SASL EXTERNAL). Only certificates that exist
/// already are used: configured ones, or a development PKI already issued.
fn our_identity(config: &Config, local: &str) -> Option<CertifiedIdentity> {
    if config.tls.certificates.is_empty() && !config.server.data_dir.join("tls").is_dir() {
        return None;
    }
    let (store, _) = crate::app::certificates(config).ok()?;
    let key = store.lookup(local)?;
    CertifiedIdentity::from_certified_key(Arc::clone(key)).ok()
}

/// The stream features as short words.
pub fn describe_features(features: &Element) -> Vec<String> {
    let mut out = Vec::new();
    for f in features.elements() {
        let required = f.elements().any(|c| c.name == "required");
        let words = match (f.name.as_str(), f.ns.as_str()) {
            ("starttls", ns::TLS) => "starttls".to_string(),
            ("mechanisms", ns::SASL) => {
                let m: Vec<String> = f
                    .elements()
                    .filter(|c| c.is("mechanism", ns::SASL))
                    .map(Element::text)
                    .collect();
                format!("SASL {}", m.join(" "))
            }
            ("dialback", ns::DIALBACK_FEATURE) => "dialback".to_string(),
            (name, ns) => format!("{name} ({ns})"),
        };
        out.push(if required {
            format!("{words} (required)")
        } else {
            words
        });
    }
    if out.is_empty() {
        out.push("none".into());
    }
    out
}

/// Step 5: what the certificate proves about the domain, and how a stream would be
/// authenticated with it.
pub fn certificate_step(
    chain: &[CertificateDer<'_>],
    domain: &str,
    trust: &S2sTrust,
    pin: Option<&CertPin>,
    policy: &DomainPolicy,
    now: i64,
) -> Step {
    let mut step = Step::new(STEPS[4]);
    let Some(leaf) = chain.first() else {
        step.fail("the server presented no certificate");
        return step;
    };
    let outcome = check_peer(chain, domain, trust, PeerRole::Server, pin);
    match &outcome.chain_valid {
        Ok(()) => step.note(format!("chain: valid ({} certificate(s))", chain.len())),
        Err(why) => step.note(format!("chain: invalid, {why}")),
    }
    let names = outcome.identity.describe_names();
    if names.is_empty() {
        step.note("presents no DNS-ID, SRV-ID or XmppAddr");
    } else {
        step.note(format!("presents {}", names.join(", ")));
    }
    match (outcome.identity.matched, outcome.identity.unreadable) {
        (Some(kind), _) => step.note(format!("identity: {domain} matched by {kind}")),
        (None, Some(why)) => step.note(format!("identity: names unreadable ({why})")),
        (None, None) => step.note(format!("identity: nothing matches {domain}")),
    }
    match (pin, outcome.pinned) {
        (Some(pin), Some(true)) => step.note(format!("pin: matches {pin}")),
        (Some(pin), _) => step.note(format!("pin: does NOT match {pin}")),
        _ => {}
    }
    match certificate_validity(leaf.as_ref()) {
        Ok((_, not_after)) => {
            let date = herald_core::time::xep0082(not_after.saturating_mul(1000));
            let days = (not_after - now).div_euclid(86_400);
            if not_after < now {
                step.note(format!("expired on {date}"));
            } else {
                step.note(format!("expires {date} ({days} day(s) left)"));
            }
        }
        Err(why) => step.note(format!("validity unreadable: {why}")),
    }
    let facts = AuthFacts {
        tls_established: true,
        peer_cert_presented: true,
        peer_cert_valid_for_domain: outcome.authenticates(),
    };
    let decision = decide_auth(policy, domain, Direction::Outbound, facts);
    let auth = match &decision {
        AuthDecision::SaslExternal { reason } => format!("SASL EXTERNAL possible: {reason}"),
        AuthDecision::Dialback { reason } => format!("dialback only: {reason}"),
        AuthDecision::Refuse { reason, .. } => format!("refused: {reason}"),
    };
    if outcome.authenticates() {
        step.note(format!("verdict: {outcome}"));
    } else {
        step.fail(format!("verdict: {outcome}"));
    }
    if decision.is_refused() {
        step.fail(format!("authentication: {auth}"));
    } else {
        step.note(format!("authentication: {auth}"));
    }
    step
}

/// Step 6: the features after TLS, and whether they leave a way to authenticate.
pub fn features_step(features: &Element, local: &str) -> Step {
    let mut step = Step::new(STEPS[5]);
    step.note(format!(
        "offered: {}",
        describe_features(features).join(", ")
    ));
    let external = features
        .child("mechanisms", ns::SASL)
        .is_some_and(|m| m.elements().any(|c| c.text().trim() == "EXTERNAL"));
    let dialback = features.has_child("dialback", ns::DIALBACK_FEATURE);
    if external {
        step.note(format!(
            "SASL EXTERNAL offered: the server accepts our certificate for {local}"
        ));
    } else {
        step.note(format!(
            "no SASL EXTERNAL: the server does not accept our certificate for {local} \
             (or none was offered)"
        ));
    }
    if dialback {
        step.note("Server Dialback (XEP-0220) offered");
    }
    if !external && !dialback {
        step.fail("neither SASL EXTERNAL nor dialback: an outbound stream cannot authenticate");
    }
    step
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
