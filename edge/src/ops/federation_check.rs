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

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Subcommand;
use herald_certs::{
    certificate_validity, check_peer, s2s_client_config, unix_now, CertPin, CertifiedIdentity,
    PeerRole, S2sTrust, S2sVerifyMode,
};
use herald_rules::federation::{
    decide_auth, AuthDecision, AuthFacts, Direction, DomainPolicy, Federation as Rules,
};
use herald_translate::ns;
use herald_translate::xml::{escape, Element, StreamEvent, StreamHeader, StreamReader, XmlLimits};
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;

use crate::app::load_config;
use crate::config::Config;
use crate::error::EdgeError;
use crate::s2s::context::ALPN_XMPP_SERVER;
use crate::s2s::dns::{Candidate, DnsConfig, Resolver};
use crate::s2s::io::{S2sIo, READ_SIZE};
use crate::s2s::srv::SrvRecord;

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

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Fail,
    /// Not run: an earlier step failed in a way that leaves nothing to check.
    Skipped,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ok => "ok",
            Self::Fail => "FAIL",
            Self::Skipped => "skipped",
        })
    }
}

/// One step of the check, with what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: &'static str,
    pub status: Status,
    pub details: Vec<String>,
}

impl Step {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            status: Status::Ok,
            details: Vec::new(),
        }
    }

    fn note(&mut self, line: impl Into<String>) {
        self.details.push(line.into());
    }

    fn fail(&mut self, line: impl Into<String>) {
        self.status = Status::Fail;
        self.details.push(line.into());
    }

    /// Whether any detail line contains `text`.
    pub fn mentions(&self, text: &str) -> bool {
        self.details.iter().any(|d| d.contains(text))
    }
}

/// The step names, in order.
pub const STEPS: [&str; 6] = [
    "policy",
    "discovery",
    "connect",
    "stream + TLS",
    "certificate",
    "features after TLS",
];

/// The whole check of one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub domain: String,
    pub steps: Vec<Step>,
}

impl Report {
    /// Every step ran and passed.
    pub fn passed(&self) -> bool {
        self.steps.len() == STEPS.len() && self.steps.iter().all(|s| s.status == Status::Ok)
    }

    /// The step called `name`.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    fn push(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// The steps not run yet, marked skipped.
    fn skip_rest(&mut self) {
        for name in &STEPS[self.steps.len()..] {
            self.steps.push(Step {
                name,
                status: Status::Skipped,
                details: Vec::new(),
            });
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "federation check of {}", self.domain)?;
        for (i, step) in self.steps.iter().enumerate() {
            writeln!(f, "{}. {}: {}", i + 1, step.name, step.status)?;
            for line in &step.details {
                writeln!(f, "   - {line}")?;
            }
        }
        let failed: Vec<String> = self
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.status == Status::Fail)
            .map(|(i, s)| format!("{} ({})", i + 1, s.name))
            .collect();
        if self.passed() {
            writeln!(f, "result: ok, all {} steps passed", self.steps.len())
        } else if failed.is_empty() {
            writeln!(f, "result: FAIL, not every step ran")
        } else {
            writeln!(f, "result: FAIL at step {}", failed.join(", "))
        }
    }
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
    let candidates = if let Some(target) = rules.routes.lookup(domain).target() {
        step.note(format!("static route target {target} (DNS is not asked)"));
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
                direct_tls: false,
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

/// An open stream over TLS, after the features were read.
struct Session {
    io: S2sIo,
    chain: Vec<CertificateDer<'static>>,
    features: Element,
}

/// The stream-level exchange of step 4.
struct Exchange<'a> {
    local: &'a str,
    domain: &'a str,
    timeout: Duration,
}

impl Exchange<'_> {
    /// Step 4: open the stream, STARTTLS (or TLS first), open the stream again.
    async fn stream_and_tls(
        &self,
        tcp: TcpStream,
        candidate: &Candidate,
        trust: &S2sTrust,
        identity: Option<CertifiedIdentity>,
    ) -> (Step, Option<Session>) {
        let mut step = Step::new(STEPS[3]);
        match &identity {
            Some(_) => step.note(format!(
                "our certificate for {} is offered to the peer",
                self.local
            )),
            None => step.note(format!(
                "no certificate of ours for {} exists yet: none is offered",
                self.local
            )),
        }
        let mut io = S2sIo::Plain(tcp);
        let mut reader = StreamReader::new(XmlLimits::default());
        let result = self
            .negotiate(&mut step, &mut io, &mut reader, candidate, trust, identity)
            .await;
        match result {
            Ok(features) => {
                let chain = io.peer_chain();
                (
                    step,
                    Some(Session {
                        io,
                        chain,
                        features,
                    }),
                )
            }
            Err(why) => {
                step.fail(why);
                io.close().await;
                (step, None)
            }
        }
    }

    async fn negotiate(
        &self,
        step: &mut Step,
        io: &mut S2sIo,
        reader: &mut StreamReader,
        candidate: &Candidate,
        trust: &S2sTrust,
        identity: Option<CertifiedIdentity>,
    ) -> Result<Element, String> {
        let alpn: &[&[u8]] = if candidate.direct_tls {
            &[ALPN_XMPP_SERVER]
        } else {
            &[]
        };
        let config = s2s_client_config(trust, S2sVerifyMode::Record, identity.as_ref(), alpn)
            .map_err(|e| format!("TLS client configuration: {e}"))?;
        if !candidate.direct_tls {
            let features = self.open_stream(step, io, reader, false).await?;
            let offered = features.child("starttls", ns::TLS);
            let Some(starttls) = offered else {
                return Err(format!(
                    "the server does not offer STARTTLS (features: {})",
                    describe_features(&features).join(", ")
                ));
            };
            let required = if starttls.has_child("required", ns::TLS) {
                " (required)"
            } else {
                ""
            };
            step.note(format!(
                "<starttls/> offered{required}; sending <starttls/>"
            ));
            io.write(format!("<starttls xmlns='{}'/>", ns::TLS).as_bytes())
                .await
                .map_err(|e| format!("write: {e}"))?;
            match self.next(io, reader).await? {
                StreamEvent::Stanza(el) if el.is("proceed", ns::TLS) => {
                    step.note("<proceed/>: starting TLS");
                }
                StreamEvent::Stanza(el) => {
                    return Err(format!(
                        "the server answered <{}/>, not <proceed/>",
                        el.name
                    ))
                }
                StreamEvent::Open(_) | StreamEvent::Close => {
                    return Err("the server closed the stream instead of <proceed/>".into())
                }
            }
        }
        let started = Instant::now();
        let handshake = tokio::time::timeout(self.timeout, io.connect_tls(config, self.domain));
        match handshake.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("TLS handshake: {e}")),
            Err(_) => return Err(format!("TLS handshake: timeout after {:?}", self.timeout)),
        }
        if let S2sIo::Tls(tls) = &*io {
            let s = tls.session();
            let version = match s.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_string(),
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_string(),
                Some(v) => format!("{v:?}"),
                None => "unknown version".to_string(),
            };
            let suite = s
                .negotiated_cipher_suite()
                .map_or("unknown".to_string(), |c| format!("{:?}", c.suite()));
            let alpn = s.alpn_protocol().map_or("none".to_string(), |p| {
                String::from_utf8_lossy(p).into_owned()
            });
            step.note(format!(
                "TLS handshake done in {} ms: {version}, cipher suite {suite}, ALPN {alpn}",
                started.elapsed().as_millis()
            ));
        }
        reader.reset();
        self.open_stream(step, io, reader, true).await
    }

    /// Send our stream header, read the server's and its features.
    async fn open_stream(
        &self,
        step: &mut Step,
        io: &mut S2sIo,
        reader: &mut StreamReader,
        tls: bool,
    ) -> Result<Element, String> {
        let over = if tls { " over TLS" } else { "" };
        io.write(stream_header(self.local, self.domain).as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let StreamEvent::Open(header) = self.next(io, reader).await? else {
            return Err("the server did not open a stream".into());
        };
        header_ok(&header)?;
        step.note(format!(
            "stream{over} opened by the server: from {}, id {}, version {}",
            header.attr("from").unwrap_or("(none)"),
            header.attr("id").unwrap_or("(none)"),
            header.attr("version").unwrap_or("(none)")
        ));
        match self.next(io, reader).await? {
            StreamEvent::Stanza(el) if el.is("features", ns::STREAM) => {
                // The features after TLS are step 6's.
                if !tls {
                    step.note(format!("features: {}", describe_features(&el).join(", ")));
                }
                Ok(el)
            }
            StreamEvent::Stanza(el) if el.is("error", ns::STREAM) => Err(format!(
                "stream error from the server: {}",
                stream_error(&el)
            )),
            StreamEvent::Stanza(el) => Err(format!(
                "the server sent <{}/> instead of <stream:features/>",
                el.name
            )),
            _ => Err("the server closed the stream before its features".into()),
        }
    }

    /// The next event of the stream, within the timeout.
    async fn next(&self, io: &mut S2sIo, reader: &mut StreamReader) -> Result<StreamEvent, String> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut scratch = vec![0u8; READ_SIZE];
        loop {
            if let Some(event) = reader
                .next_event()
                .map_err(|e| format!("XML from the server: {e}"))?
            {
                return Ok(event);
            }
            let mut got = Vec::new();
            let read = io.read(&mut scratch, |b: &[u8]| got.extend_from_slice(b));
            match tokio::time::timeout_at(deadline, read).await {
                Ok(Ok(true)) => reader.feed(&got),
                Ok(Ok(false)) => return Err("the server closed the connection".into()),
                Ok(Err(e)) => return Err(format!("read: {e}")),
                Err(_) => return Err(format!("no answer within {:?}", self.timeout)),
            }
        }
    }
}

/// The s2s stream header from `local` to `remote`, announcing dialback support.
fn stream_header(local: &str, remote: &str) -> String {
    let (mut from, mut to) = (String::new(), String::new());
    escape(&mut from, local, true);
    escape(&mut to, remote, true);
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='{}' xmlns:stream='{}' xmlns:db='{}' \
         from='{from}' to='{to}' version='1.0'>",
        ns::SERVER,
        ns::STREAM,
        ns::DIALBACK
    )
}

/// An XMPP server-to-server stream header, version 1.0 (features follow).
fn header_ok(h: &StreamHeader) -> Result<(), String> {
    if h.name != "stream" || h.ns != ns::STREAM {
        return Err(format!("not an XMPP stream: <{}> in {}", h.name, h.ns));
    }
    if h.default_ns.as_deref() != Some(ns::SERVER) {
        return Err(format!(
            "the stream's namespace is {}, not jabber:server",
            h.default_ns.as_deref().unwrap_or("(none)")
        ));
    }
    if h.attr("version") != Some("1.0") {
        return Err("the server's stream has no version='1.0': no TLS or features".into());
    }
    Ok(())
}

/// `<stream:error>` as `condition (text)`.
fn stream_error(el: &Element) -> String {
    let condition = el
        .elements()
        .find(|c| c.ns == ns::STREAM_ERRORS && c.name != "text")
        .map_or("unknown condition".to_string(), |c| c.name.clone());
    match el.child("text", ns::STREAM_ERRORS) {
        Some(t) => format!("{condition} ({})", t.text()),
        None => condition,
    }
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
mod tests {
    use super::*;
    use herald_rules::federation::{AuthPolicy, TlsPolicy};

    fn report() -> Report {
        let mut r = Report {
            domain: "remote.example".into(),
            steps: Vec::new(),
        };
        let mut policy = Step::new(STEPS[0]);
        policy.note("route: DNS");
        r.push(policy);
        let mut discovery = Step::new(STEPS[1]);
        discovery.note("candidate 1: remote.example:5269 (STARTTLS) at 127.0.0.1");
        r.push(discovery);
        r
    }

    #[test]
    fn steps_are_numbered_with_their_details_and_a_result() {
        let mut r = report();
        let mut connect = Step::new(STEPS[2]);
        connect.fail("no address accepted a connection");
        r.push(connect);
        r.skip_rest();
        let text = r.to_string();
        assert!(!r.passed());
        assert!(
            text.starts_with(
                "federation check of remote.example\n1. policy: ok\n   - route: DNS\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("3. connect: FAIL\n   - no address accepted"),
            "{text}"
        );
        assert!(text.contains("4. stream + TLS: skipped\n"), "{text}");
        assert!(text.contains("6. features after TLS: skipped\n"), "{text}");
        assert!(
            text.ends_with("result: FAIL at step 3 (connect)\n"),
            "{text}"
        );
    }

    #[test]
    fn all_six_steps_ok_is_a_pass() {
        let mut r = report();
        for name in &STEPS[2..] {
            r.push(Step::new(name));
        }
        assert!(r.passed());
        assert!(r.to_string().ends_with("result: ok, all 6 steps passed\n"));
        let mut short = report();
        short.push(Step::new(STEPS[2]));
        assert!(!short.passed(), "steps that did not run are no pass");
    }

    #[test]
    fn features_are_described_and_judged() {
        let features = Element::new("features", ns::STREAM)
            .with_child(
                Element::new("mechanisms", ns::SASL)
                    .with_child(Element::new("mechanism", ns::SASL).with_text("EXTERNAL")),
            )
            .with_child(Element::new("dialback", ns::DIALBACK_FEATURE))
            .with_child(
                Element::new("starttls", ns::TLS).with_child(Element::new("required", ns::TLS)),
            );
        assert_eq!(
            describe_features(&features),
            ["SASL EXTERNAL", "dialback", "starttls (required)"]
        );
        let step = features_step(&features, "a.example");
        assert_eq!(step.status, Status::Ok);
        assert!(step.mentions("SASL EXTERNAL offered"), "{step:?}");
        let none = features_step(&Element::new("features", ns::STREAM), "a.example");
        assert_eq!(none.status, Status::Fail);
        assert!(none.mentions("offered: none"), "{none:?}");
    }

    #[test]
    fn no_certificate_fails_and_a_self_signed_one_is_unknown() {
        let trust = S2sTrust::from_certs(&[]).expect("trust");
        let policy = DomainPolicy {
            tls: TlsPolicy::Required,
            auth: AuthPolicy::Any,
            tls_why: "test".into(),
            auth_why: "test".into(),
        };
        let step = certificate_step(&[], "b.example", &trust, None, &policy, 0);
        assert_eq!(step.status, Status::Fail);
        let dir = std::env::temp_dir().join(format!("herald-fcheck-{}", std::process::id()));
        let pki = herald_certs::ensure_dev_pki(&dir, &["b.example".to_owned()]).expect("pki");
        let chain = herald_certs::read_certs(&pki.cert).expect("chain");
        let _ = std::fs::remove_dir_all(&dir);
        let step = certificate_step(&chain, "b.example", &trust, None, &policy, unix_now());
        assert_eq!(step.status, Status::Fail);
        assert!(step.mentions("unknown certificate authority"), "{step:?}");
        assert!(step.mentions("presents DNS-ID b.example"), "{step:?}");
        assert!(step.mentions("matched by DNS-ID"), "{step:?}");
        assert!(step.mentions("day(s) left"), "{step:?}");
        assert!(step.mentions("dialback only"), "{step:?}");
        let pin = CertPin::of(chain[0].as_ref());
        let step = certificate_step(&chain, "b.example", &trust, Some(&pin), &policy, unix_now());
        assert_eq!(step.status, Status::Ok, "{step:?}");
        assert!(step.mentions("pin: matches"), "{step:?}");
    }

    #[test]
    fn the_stream_header_is_escaped() {
        let h = stream_header("a.example", "b'.example");
        assert!(h.contains("from='a.example' to='b&apos;.example'"), "{h}");
        assert!(h.contains("xmlns='jabber:server'"), "{h}");
    }
}
