//! The server side of XMPP client stream negotiation (RFC 6120 §4-§7) as a sans-IO
//! state machine: header -> features -> STARTTLS -> restart -> SASL -> restart -> bind.
//!
//! The caller feeds [`StreamEvent`]s and answers requests (credentials, bind, TLS); the
//! machine queues [`Action`]s. Time is passed in: `poll_timeout` says when the caller must
//! call `handle_timeout` (negotiation deadline, delayed authentication failure). So is
//! randomness: stream ids and SCRAM nonces come from the generator given to
//! [`Negotiation::new`], so a seeded run is reproducible byte for byte.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use crate::jid::{nodeprep, resourceprep, Jid};
use crate::ns;
use crate::sasl::framing::{decode_sasl, sasl_element, sasl_failure};
use crate::sasl::{
    plain_parse, verify_password, DecoySecret, SaslError, ScramHash, ScramRecord, ScramServer,
};
use crate::stanza::{error_reply, StanzaError, StanzaErrorCondition};
use crate::stream_error::{StreamError, StreamErrorCondition as Cond};
use crate::xml::{Element, StreamEvent, StreamHeader, XmlError};

/// Settings for one listener's negotiations.
#[derive(Debug, Clone)]
pub struct NegotiationConfig {
    /// Hosted domains (normalized). The first is used when the client omits `to`.
    pub domains: Vec<String>,
    /// Offer SASL PLAIN (only ever offered over TLS).
    pub allow_plain: bool,
    /// Offer XEP-0198 stream management.
    pub stream_management: bool,
    /// From the first byte to a bound resource.
    pub negotiation_timeout: Duration,
    /// Delay before a SASL failure is reported (slows password guessing).
    pub auth_failure_delay: Duration,
    /// Failed SASL attempts allowed on one connection before it is closed.
    pub max_auth_attempts: u32,
    /// The secret unknown users' decoy salts are derived from. It must survive restarts
    /// (keep it with the accounts): with a new secret every decoy salt changes while
    /// real users' salts stay, which tells an observer who exists.
    pub decoy_secret: DecoySecret,
}

impl Default for NegotiationConfig {
    fn default() -> Self {
        Self {
            domains: vec!["localhost".into()],
            allow_plain: true,
            stream_management: true,
            negotiation_timeout: Duration::from_secs(30),
            auth_failure_delay: Duration::from_secs(2),
            max_auth_attempts: 3,
            // Random, so that a forgotten secret is no worse than a per-process one.
            decoy_secret: DecoySecret::generate(&mut rand::rng()),
        }
    }
}

/// What the caller must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes.
    Send(String),
    /// Flush, then run the TLS handshake as server and call [`Negotiation::tls_established`].
    /// Input already buffered after `<starttls/>` must be refused, not decrypted; only
    /// whitespace (see [`crate::StreamReader::only_whitespace_buffered`]) may be dropped.
    StartTls,
    /// Look up the SCRAM record and call [`Negotiation::credentials`].
    LookupCredentials { username: String, hash: ScramHash },
    /// SASL succeeded: reset the XML reader (stream restart) and raise limits.
    Authenticated { username: String },
    /// Pick or validate a resource and call [`Negotiation::bind_result`].
    Bind { resource: Option<String> },
    /// XEP-0198 resumption requested: find the detached session or call
    /// [`Negotiation::resume_failed`].
    Resume { previd: String, h: u32 },
    /// The session is bound to this full JID; negotiation is over.
    Established { jid: Jid },
    /// A SASL attempt failed (for metrics, logs and throttling; the failure is sent
    /// separately, after the failure delay). `username` is the normalized account name
    /// the attempt was for, `None` when the client's message was too malformed to name
    /// one. Also queued when the driver refused the attempt with
    /// [`Negotiation::credentials_refused`].
    AuthFailed { username: Option<String> },
    /// Close the connection after writing everything queued before.
    Close,
}

#[derive(Debug)]
enum State {
    AwaitHeader,
    AwaitStartTls,
    AwaitTls,
    AwaitAuth,
    ScramAwaitFirst {
        hash: ScramHash,
    },
    ScramLookup {
        server: Box<ScramServer>,
    },
    ScramFinal {
        server: Box<ScramServer>,
        username: String,
    },
    PlainLookup {
        username: String,
        password: Password,
    },
    AuthFailDelay {
        until: Instant,
        condition: &'static str,
    },
    AwaitBind,
    Binding {
        iq: Element,
    },
    Resuming,
    Done,
    Closed,
}

/// A PLAIN password awaiting its record; `Debug` does not show it.
struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// One client stream's negotiation.
pub struct Negotiation {
    cfg: Arc<NegotiationConfig>,
    /// Stream ids and SCRAM server nonces.
    rng: StdRng,
    state: State,
    tls: bool,
    username: Option<String>,
    domain: Option<String>,
    header_sent: bool,
    deadline: Instant,
    auth_failures: u32,
    pending_user: Option<String>,
    /// The stream error the negotiation closed with, if any.
    error: Option<Cond>,
    actions: VecDeque<Action>,
}

impl std::fmt::Debug for Negotiation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the generator: its state would predict the nonces.
        f.debug_struct("Negotiation")
            .field("state", &self.state)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("domain", &self.domain)
            .field("auth_failures", &self.auth_failures)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl Negotiation {
    /// A new negotiation. `tls_active` is true on a direct-TLS (XEP-0368) listener. `rng`
    /// provides stream ids and SCRAM server nonces; seed it from the OS
    /// ([`from_entropy`](Self::from_entropy) does) except in tests.
    pub fn new(cfg: Arc<NegotiationConfig>, tls_active: bool, now: Instant, rng: StdRng) -> Self {
        let deadline = now + cfg.negotiation_timeout;
        Self {
            cfg,
            rng,
            state: State::AwaitHeader,
            tls: tls_active,
            username: None,
            domain: None,
            header_sent: false,
            deadline,
            auth_failures: 0,
            pending_user: None,
            error: None,
            actions: VecDeque::new(),
        }
    }

    /// [`new`](Self::new) with a generator seeded from the thread's OS-seeded generator.
    pub fn from_entropy(cfg: Arc<NegotiationConfig>, tls_active: bool, now: Instant) -> Self {
        Self::new(cfg, tls_active, now, StdRng::from_rng(&mut rand::rng()))
    }

    /// The next action to perform, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Done | State::Closed => None,
            State::AuthFailDelay { until, .. } => Some(until.min(self.deadline)),
            _ => Some(self.deadline),
        }
    }

    /// The authenticated username, once SASL succeeded.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// The domain the client addressed.
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The stream error condition sent when the negotiation failed.
    pub fn error(&self) -> Option<Cond> {
        self.error
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.state, State::Done | State::Closed) {
            return;
        }
        if now >= self.deadline {
            self.fail(StreamError::with_text(
                Cond::ConnectionTimeout,
                "stream negotiation took too long",
            ));
            return;
        }
        if let State::AuthFailDelay { until, condition } = self.state {
            if now >= until {
                self.send_el(&sasl_failure(condition));
                if self.auth_failures >= self.cfg.max_auth_attempts {
                    self.fail(StreamError::with_text(
                        Cond::PolicyViolation,
                        "too many authentication failures",
                    ));
                } else {
                    self.state = State::AwaitAuth;
                }
            }
        }
    }

    /// The reader failed: answer with the matching stream error.
    pub fn handle_xml_error(&mut self, err: &XmlError) {
        self.fail(StreamError::from(err));
    }

    /// Close the stream with `err` (also used by the caller, e.g. `system-shutdown`).
    pub fn fail(&mut self, err: StreamError) {
        if matches!(self.state, State::Closed) {
            return;
        }
        if !self.header_sent {
            let domain = self.cfg.domains.first().cloned().unwrap_or_default();
            self.send_header(&domain);
        }
        self.send(err.to_xml());
        self.error = Some(err.condition);
        self.actions.push_back(Action::Close);
        self.state = State::Closed;
    }

    pub fn handle_event(&mut self, ev: StreamEvent, now: Instant) {
        match ev {
            StreamEvent::Open(header) => self.on_header(&header),
            StreamEvent::Close => {
                self.send("</stream:stream>".into());
                self.actions.push_back(Action::Close);
                self.state = State::Closed;
            }
            StreamEvent::Stanza(el) => self.on_element(el, now),
        }
    }

    /// The TLS handshake requested by [`Action::StartTls`] completed.
    pub fn tls_established(&mut self) {
        if matches!(self.state, State::AwaitTls) {
            self.tls = true;
            self.header_sent = false;
            self.state = State::AwaitHeader;
        }
    }

    /// The answer to [`Action::LookupCredentials`]: `None` when the user is unknown.
    ///
    /// An unknown user is answered with a decoy record derived from
    /// [`NegotiationConfig::decoy_secret`]: SCRAM shows a stable salt and the default
    /// iteration count, PLAIN runs the same key derivation, and both fail like a wrong
    /// password.
    pub fn credentials(&mut self, record: Option<ScramRecord>, now: Instant) {
        match std::mem::replace(&mut self.state, State::Closed) {
            State::ScramLookup { mut server } => {
                let username = self.pending_user.take().unwrap_or_default();
                let decoy = self.cfg.decoy_secret.record(server.hash(), &username);
                let first = server.server_first(record.as_ref(), &decoy);
                self.state = State::ScramFinal { server, username };
                self.send_el(&sasl_element("challenge", &first));
            }
            State::PlainLookup { username, password } => {
                let decoy = self.cfg.decoy_secret.record(ScramHash::Sha256, &username);
                let known = record.is_some();
                let used = record.as_ref().unwrap_or(&decoy);
                // The derivation runs whether or not the user exists.
                if verify_password(used, &password.0) && known {
                    self.succeed(username, None);
                } else {
                    self.auth_failed(SaslError::NotAuthorized, Some(username), now);
                }
            }
            other => self.state = other,
        }
    }

    /// Refuses the attempt that [`Action::LookupCredentials`] asked about, before any
    /// password work, because the account or the client is temporarily blocked (the
    /// driver's throttle). The client gets `<temporary-auth-failure/>` (RFC 6120
    /// §6.5.12) after the usual failure delay; the attempt counts towards
    /// [`NegotiationConfig::max_auth_attempts`] and queues [`Action::AuthFailed`] like any
    /// failure. Ignored unless a lookup is pending.
    pub fn credentials_refused(&mut self, now: Instant) {
        match std::mem::replace(&mut self.state, State::Closed) {
            State::ScramLookup { .. } => {
                let username = self.pending_user.take();
                self.auth_failed(SaslError::TemporaryAuthFailure, username, now);
            }
            State::PlainLookup { username, .. } => {
                self.auth_failed(SaslError::TemporaryAuthFailure, Some(username), now);
            }
            other => self.state = other,
        }
    }

    /// The answer to [`Action::Bind`].
    pub fn bind_result(&mut self, result: Result<Jid, StanzaError>) {
        let State::Binding { iq } = std::mem::replace(&mut self.state, State::AwaitBind) else {
            return;
        };
        match result {
            Ok(jid) => {
                let bind = Element::new("bind", ns::BIND)
                    .with_child(Element::new("jid", ns::BIND).with_text(jid.to_string()));
                let mut reply = Element::new("iq", ns::CLIENT)
                    .with_attr("type", "result")
                    .with_child(bind);
                if let Some(id) = iq.attr("id") {
                    reply.set_attr("id", id);
                }
                self.state = State::Done;
                self.send_el(&reply);
                if !self.is_closed() {
                    self.actions.push_back(Action::Established { jid });
                }
            }
            Err(err) => self.send_el(&error_reply(&iq, &err, None)),
        }
    }

    /// Resumption requested by [`Action::Resume`] is not possible.
    pub fn resume_failed(&mut self) {
        if matches!(self.state, State::Resuming) {
            let failed = Element::new("failed", ns::SM)
                .with_child(Element::new("item-not-found", ns::STANZA_ERRORS));
            self.state = State::AwaitBind;
            self.send_el(&failed);
        }
    }

    /// Resumption succeeded: the caller took over the old session.
    pub fn resumed(&mut self) {
        if matches!(self.state, State::Resuming) {
            self.state = State::Done;
        }
    }

    fn send(&mut self, s: String) {
        self.actions.push_back(Action::Send(s));
    }

    /// Queues an element. One that cannot be serialized (possible only with a bad
    /// application element from the caller, e.g. in a bind error) ends the stream.
    fn send_el(&mut self, el: &Element) {
        match el.to_xml(ns::CLIENT) {
            Ok(xml) => self.send(xml),
            Err(e) => self.fail(StreamError::with_text(
                Cond::InternalServerError,
                e.to_string(),
            )),
        }
    }

    fn send_header(&mut self, domain: &str) {
        let mut from = String::new();
        crate::xml::escape(&mut from, domain, true);
        let id = id_from(&mut self.rng);
        self.send(format!(
            "<?xml version='1.0'?><stream:stream xmlns='{}' xmlns:stream='{}' id='{id}' from='{from}' version='1.0' xml:lang='en'>",
            ns::CLIENT,
            ns::STREAM,
        ));
        self.header_sent = true;
    }

    fn on_header(&mut self, header: &StreamHeader) {
        if !matches!(self.state, State::AwaitHeader) {
            self.fail(StreamError::new(Cond::BadFormat));
            return;
        }
        if header.name != "stream" || header.ns != ns::STREAM {
            self.fail(StreamError::with_text(
                Cond::InvalidNamespace,
                "expected a stream",
            ));
            return;
        }
        if header.default_ns.as_deref() != Some(ns::CLIENT) {
            self.fail(StreamError::with_text(
                Cond::InvalidNamespace,
                "the content namespace must be jabber:client",
            ));
            return;
        }
        let domain = match header.attr("to") {
            None => self.cfg.domains.first().cloned().unwrap_or_default(),
            Some(to) => match Jid::parse(to) {
                Ok(j) if j.is_domain() && self.cfg.domains.iter().any(|d| d == j.domain()) => {
                    j.domain().to_string()
                }
                _ => {
                    self.fail(StreamError::with_text(
                        Cond::HostUnknown,
                        "this server does not serve that domain",
                    ));
                    return;
                }
            },
        };
        if let Some(previous) = &self.domain {
            if *previous != domain {
                self.fail(StreamError::new(Cond::HostUnknown));
                return;
            }
        }
        self.send_header(&domain);
        self.domain = Some(domain);
        if !version_ok(header.attr("version")) {
            self.fail(StreamError::with_text(
                Cond::UnsupportedVersion,
                "XMPP 1.0 is required",
            ));
            return;
        }
        let features = if self.username.is_some() {
            self.state = State::AwaitBind;
            self.bind_features()
        } else if self.tls {
            self.state = State::AwaitAuth;
            self.auth_features()
        } else {
            self.state = State::AwaitStartTls;
            vec![Element::new("starttls", ns::TLS).with_child(Element::new("required", ns::TLS))]
        };
        let mut out = String::from("<stream:features>");
        for f in &features {
            if let Err(e) = f.write_to(&mut out, ns::CLIENT) {
                self.fail(StreamError::with_text(
                    Cond::InternalServerError,
                    e.to_string(),
                ));
                return;
            }
        }
        out.push_str("</stream:features>");
        self.send(out);
    }

    fn auth_features(&self) -> Vec<Element> {
        let mut mechs = Element::new("mechanisms", ns::SASL);
        let mut names = vec!["SCRAM-SHA-256", "SCRAM-SHA-1"];
        if self.cfg.allow_plain {
            names.push("PLAIN");
        }
        for name in names {
            mechs.push_child(Element::new("mechanism", ns::SASL).with_text(name));
        }
        vec![mechs]
    }

    fn bind_features(&self) -> Vec<Element> {
        let mut features = vec![
            Element::new("bind", ns::BIND),
            Element::new("session", ns::SESSION).with_child(Element::new("optional", ns::SESSION)),
            Element::new("ver", ns::ROSTER_VER),
            Element::new("sub", ns::PRE_APPROVAL),
        ];
        if self.cfg.stream_management {
            features.push(Element::new("sm", ns::SM));
        }
        features
    }

    fn on_element(&mut self, el: Element, now: Instant) {
        match &self.state {
            State::AwaitStartTls => {
                if el.is("starttls", ns::TLS) {
                    self.send_el(&Element::new("proceed", ns::TLS));
                    self.actions.push_back(Action::StartTls);
                    self.state = State::AwaitTls;
                } else if el.is("auth", ns::SASL) {
                    self.send_el(&sasl_failure(SaslError::EncryptionRequired.condition()));
                } else {
                    self.fail(StreamError::with_text(
                        Cond::NotAuthorized,
                        "STARTTLS is required first",
                    ));
                }
            }
            State::AwaitAuth => self.on_auth(&el, now),
            State::ScramAwaitFirst { hash } => {
                let hash = *hash;
                if el.is("response", ns::SASL) {
                    match decode_sasl(&el) {
                        Ok(bytes) => self.scram_first(hash, &bytes, now),
                        Err(e) => self.auth_failed(e, None, now),
                    }
                } else {
                    self.not_sasl(&el, None, now);
                }
            }
            State::ScramFinal { username, .. } => {
                if !el.is("response", ns::SASL) {
                    let username = Some(username.clone());
                    self.not_sasl(&el, username, now);
                    return;
                }
                let State::ScramFinal {
                    mut server,
                    username,
                } = std::mem::replace(&mut self.state, State::AwaitAuth)
                else {
                    return;
                };
                let outcome = decode_sasl(&el).and_then(|bytes| server.client_final(&bytes));
                match outcome {
                    Ok(server_final) => self.succeed(username, Some(server_final)),
                    Err(e) => self.auth_failed(e, Some(username), now),
                }
            }
            State::AwaitBind => self.on_bind_stage(el),
            State::AwaitHeader
            | State::AwaitTls
            | State::ScramLookup { .. }
            | State::PlainLookup { .. }
            | State::AuthFailDelay { .. }
            | State::Binding { .. }
            | State::Resuming => self.fail(StreamError::with_text(
                Cond::PolicyViolation,
                "data sent out of turn",
            )),
            State::Done | State::Closed => {}
        }
    }

    /// Something other than a `<response/>` during a SCRAM exchange.
    fn not_sasl(&mut self, el: &Element, username: Option<String>, now: Instant) {
        if el.is("abort", ns::SASL) {
            self.state = State::AwaitAuth;
            self.send_el(&sasl_failure(SaslError::Aborted.condition()));
        } else if el.ns == ns::SASL {
            let err = SaslError::MalformedRequest("unexpected SASL element");
            self.auth_failed(err, username, now);
        } else {
            self.fail(StreamError::new(Cond::NotAuthorized));
        }
    }

    fn on_auth(&mut self, el: &Element, now: Instant) {
        if el.is("abort", ns::SASL) {
            self.send_el(&sasl_failure(SaslError::Aborted.condition()));
            return;
        }
        if !el.is("auth", ns::SASL) {
            self.fail(StreamError::with_text(
                Cond::NotAuthorized,
                "authenticate first",
            ));
            return;
        }
        let mechanism = el.attr("mechanism").unwrap_or_default();
        let payload = match decode_sasl(el) {
            Ok(p) => p,
            Err(e) => return self.auth_failed(e, None, now),
        };
        if let Some(hash) = ScramHash::from_mechanism(mechanism) {
            if payload.is_empty() {
                self.state = State::ScramAwaitFirst { hash };
                self.send_el(&sasl_element("challenge", b""));
            } else {
                self.scram_first(hash, &payload, now);
            }
        } else if mechanism == "PLAIN" && self.cfg.allow_plain && self.tls {
            match plain_parse(&payload) {
                Ok((authzid, authcid, password)) => match self.check_identity(&authcid, authzid) {
                    Ok(username) => {
                        self.actions.push_back(Action::LookupCredentials {
                            username: username.clone(),
                            hash: ScramHash::Sha256,
                        });
                        let password = Password(password);
                        self.state = State::PlainLookup { username, password };
                    }
                    Err((e, username)) => self.auth_failed(e, username, now),
                },
                Err(e) => self.auth_failed(e, None, now),
            }
        } else {
            self.send_el(&sasl_failure(SaslError::InvalidMechanism.condition()));
        }
    }

    fn scram_first(&mut self, hash: ScramHash, payload: &[u8], now: Instant) {
        let mut server = Box::new(ScramServer::new(hash, &mut self.rng));
        let first = match server.client_first(payload) {
            Ok(f) => f,
            Err(e) => return self.auth_failed(e, None, now),
        };
        match self.check_identity(&first.username, first.authzid) {
            Ok(username) => {
                self.actions.push_back(Action::LookupCredentials {
                    username: username.clone(),
                    hash,
                });
                self.pending_user = Some(username);
                self.state = State::ScramLookup { server };
            }
            Err((e, username)) => self.auth_failed(e, username, now),
        }
    }

    /// Normalize the authentication identity; an authorization identity other than the
    /// user's own bare JID is refused. The error carries the normalized username when
    /// there is one.
    fn check_identity(
        &self,
        authcid: &str,
        authzid: Option<String>,
    ) -> Result<String, (SaslError, Option<String>)> {
        let username = nodeprep(authcid).map_err(|_| (SaslError::NotAuthorized, None))?;
        if let Some(z) = authzid.filter(|z| !z.is_empty()) {
            let domain = self.domain.clone().unwrap_or_default();
            let own = Jid::new(Some(&username), &domain, None).ok();
            if Jid::parse(&z).ok() != own {
                return Err((SaslError::InvalidAuthzid, Some(username)));
            }
        }
        Ok(username)
    }

    fn succeed(&mut self, username: String, server_final: Option<Vec<u8>>) {
        let success = match server_final {
            Some(data) => sasl_element("success", &data),
            None => Element::new("success", ns::SASL),
        };
        self.send_el(&success);
        self.actions.push_back(Action::Authenticated {
            username: username.clone(),
        });
        self.username = Some(username);
        self.header_sent = false;
        self.state = State::AwaitHeader;
    }

    fn auth_failed(&mut self, err: SaslError, username: Option<String>, now: Instant) {
        self.auth_failures += 1;
        self.actions.push_back(Action::AuthFailed { username });
        self.state = State::AuthFailDelay {
            until: now + self.cfg.auth_failure_delay,
            condition: err.condition(),
        };
        if self.cfg.auth_failure_delay.is_zero() {
            self.handle_timeout(now);
        }
    }

    fn on_bind_stage(&mut self, el: Element) {
        if el.is("resume", ns::SM) && self.cfg.stream_management {
            let previd = el.attr("previd").unwrap_or_default().to_string();
            match el.attr("h").and_then(|h| h.parse::<u32>().ok()) {
                Some(h) if !previd.is_empty() => {
                    self.actions.push_back(Action::Resume { previd, h });
                    self.state = State::Resuming;
                }
                _ => {
                    let failed = Element::new("failed", ns::SM)
                        .with_child(Element::new("bad-request", ns::STANZA_ERRORS));
                    self.send_el(&failed);
                }
            }
            return;
        }
        if el.is("enable", ns::SM) {
            let failed = Element::new("failed", ns::SM)
                .with_child(Element::new("unexpected-request", ns::STANZA_ERRORS));
            self.send_el(&failed);
            return;
        }
        let is_iq = el.is("iq", ns::CLIENT);
        let bind = el.child("bind", ns::BIND);
        match (is_iq, el.attr("type"), bind) {
            (true, Some("set"), Some(bind)) => {
                let requested = bind.child("resource", ns::BIND).map(Element::text);
                let resource = match requested.filter(|r| !r.is_empty()) {
                    None => None,
                    Some(r) => match resourceprep(&r) {
                        Ok(r) => Some(r),
                        Err(_) => {
                            let err = StanzaError::new(StanzaErrorCondition::BadRequest)
                                .with_text("invalid resource");
                            self.send_el(&error_reply(&el, &err, None));
                            return;
                        }
                    },
                };
                self.actions.push_back(Action::Bind { resource });
                self.state = State::Binding { iq: el };
            }
            (true, Some("get" | "set"), _) => {
                let err = StanzaError::new(StanzaErrorCondition::NotAuthorized)
                    .with_text("bind a resource first");
                self.send_el(&error_reply(&el, &err, None));
            }
            _ => self.fail(StreamError::with_text(
                Cond::NotAuthorized,
                "bind a resource first",
            )),
        }
    }
}

fn version_ok(version: Option<&str>) -> bool {
    let Some((major, _minor)) = version.and_then(|v| v.split_once('.')) else {
        return false;
    };
    major.trim() == "1"
}

/// A random stream or session identifier from the thread's OS-seeded generator: 16 bytes,
/// URL-safe base64, no padding. Negotiations draw theirs from their own generator.
pub fn random_id() -> String {
    id_from(&mut rand::rng())
}

/// An identifier like [`random_id`]'s, from `rng`.
pub fn id_from(rng: &mut (impl RngCore + ?Sized)) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
#[path = "negotiation_tests.rs"]
mod tests;
