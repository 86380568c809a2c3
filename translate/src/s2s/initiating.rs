//! The initiating entity of a server-to-server stream: the side that connects out, to
//! deliver stanzas ([`Initiating::new`]) or to ask an authoritative server about a
//! dialback key ([`Initiating::verify`]). See the [module documentation](super).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::common::{self, DbBody};
use super::receiving::AuthMethod;
use super::{CertFacts, DialbackOutcome, DialbackSecret, S2sPolicy, TlsPolicy};
use crate::ns;
use crate::stanza::StanzaErrorCondition as Sc;
use crate::stream_error::{StreamError, StreamErrorCondition as Cond};
use crate::xml::{Element, StreamEvent, StreamHeader, StreamReader, XmlLimits};

/// Settings shared by outbound connections.
#[derive(Debug, Clone)]
pub struct InitiatingConfig {
    /// Our dialback secret; keys for `<db:result/>` are derived from it.
    pub secret: DialbackSecret,
    /// Reader limits until authenticated, and afterwards.
    pub limits_preauth: XmlLimits,
    pub limits: XmlLimits,
    /// From the first byte to an authenticated stream (or a verify answer); also the
    /// wait for each additional sender domain.
    pub negotiation_timeout: Duration,
    /// Stanzas held while the stream is being negotiated, in number and in bytes.
    pub max_queued_stanzas: usize,
    pub max_queued_bytes: usize,
}

impl InitiatingConfig {
    pub fn new(secret: DialbackSecret) -> Self {
        Self {
            secret,
            limits_preauth: XmlLimits {
                max_stanza_bytes: 16 * 1024,
                ..XmlLimits::default()
            },
            limits: XmlLimits::default(),
            negotiation_timeout: Duration::from_secs(60),
            max_queued_stanzas: 1000,
            max_queued_bytes: 1 << 20,
        }
    }
}

/// How the connection was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain TCP; STARTTLS when offered.
    Plain,
    /// Direct TLS (XEP-0368); the handshake is done and this is what the server's
    /// certificate showed.
    DirectTls(CertFacts),
}

/// Why an outbound stream ended without (or after) delivering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// Policy requires TLS and the peer does not offer it.
    TlsUnavailable,
    /// The peer answered `<starttls/>` with `<failure/>`.
    TlsRefused,
    /// No authentication method both the policy and the peer allow.
    NoAuthMethod,
    /// SASL EXTERNAL failed and dialback could not be tried.
    SaslFailed,
    /// The receiving server reported our dialback key as invalid.
    DialbackInvalid,
    /// The receiving server answered our dialback request with an error.
    DialbackError(Sc),
    /// The peer sent a stream error (`None`: a condition we do not know).
    PeerError(Option<Cond>),
    /// We closed the stream with this error: the peer broke the protocol, the
    /// negotiation timed out, or the driver called [`Initiating::fail`].
    LocalError(Cond),
    /// The peer closed the stream.
    PeerClosed,
    /// The driver reported the connection gone.
    ConnectionLost,
}

/// What the driver of an [`Initiating`] machine must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitiatingAction {
    /// Write these bytes.
    Send(String),
    /// Flush, run the TLS handshake as client, then call [`Initiating::tls_established`].
    StartTls,
    /// Stanzas from `local` may flow (queued ones follow as `Send`s).
    Established { local: String, method: AuthMethod },
    /// An additional sender domain ([`Initiating::add_sender_domain`]) was refused; the
    /// stream stays up for the others. Its queued stanzas come back.
    DomainFailed {
        local: String,
        outcome: DialbackOutcome,
        undelivered: Vec<Element>,
    },
    /// Verify mode: the authoritative server's answer.
    VerifyResult { outcome: DialbackOutcome },
    /// The stream ended; every stanza accepted but not written comes back.
    Failed {
        reason: FailReason,
        undelivered: Vec<Element>,
    },
    /// Close the connection after writing everything queued before.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitHeader,
    AwaitFeatures,
    AwaitProceed,
    AwaitTls,
    AwaitSasl,
    AwaitDialback,
    AwaitVerify,
    Established,
    Closed,
}

#[derive(Debug)]
enum Mode {
    Deliver,
    Verify { stream_id: String, key: String },
}

#[derive(Debug)]
struct Queued {
    domain: String,
    element: Element,
    xml: String,
}

/// An additional sender domain awaiting its dialback answer.
#[derive(Debug)]
struct PendingDomain {
    local: String,
    deadline: Instant,
}

/// One outbound s2s connection.
#[derive(Debug)]
pub struct Initiating {
    cfg: Arc<InitiatingConfig>,
    local: String,
    remote: String,
    policy: S2sPolicy,
    mode: Mode,
    reader: StreamReader,
    state: State,
    tls: bool,
    server_cert: CertFacts,
    /// The id of the peer's current stream header.
    stream_id: Option<String>,
    sasl_done: bool,
    external_failed: bool,
    /// Sender domains that may send, the primary first.
    established: Vec<String>,
    pending: Vec<PendingDomain>,
    queue: VecDeque<Queued>,
    queued_bytes: usize,
    deadline: Option<Instant>,
    actions: VecDeque<InitiatingAction>,
}

impl Initiating {
    /// A stream from `local` to `remote` for delivering stanzas. The header is queued
    /// at once.
    pub fn new(
        cfg: Arc<InitiatingConfig>,
        local: &str,
        remote: &str,
        policy: S2sPolicy,
        transport: Transport,
        now: Instant,
    ) -> Self {
        Self::start(cfg, local, remote, policy, transport, Mode::Deliver, now)
    }

    /// A stream to `remote`'s authoritative server asking whether `key` is the key it
    /// would have sent us (`local`) on stream `stream_id` (XEP-0220 §2.1.2). The answer
    /// is [`InitiatingAction::VerifyResult`].
    #[allow(clippy::too_many_arguments)]
    pub fn verify(
        cfg: Arc<InitiatingConfig>,
        local: &str,
        remote: &str,
        stream_id: &str,
        key: &str,
        policy: S2sPolicy,
        transport: Transport,
        now: Instant,
    ) -> Self {
        let mode = Mode::Verify {
            stream_id: stream_id.to_string(),
            key: key.to_string(),
        };
        Self::start(cfg, local, remote, policy, transport, mode, now)
    }

    fn start(
        cfg: Arc<InitiatingConfig>,
        local: &str,
        remote: &str,
        policy: S2sPolicy,
        transport: Transport,
        mode: Mode,
        now: Instant,
    ) -> Self {
        let (tls, server_cert) = match transport {
            Transport::Plain => (false, CertFacts::NONE),
            Transport::DirectTls(facts) => (true, facts),
        };
        let mut machine = Self {
            reader: StreamReader::new(cfg.limits_preauth),
            deadline: Some(now + cfg.negotiation_timeout),
            cfg,
            local: local.to_string(),
            remote: remote.to_string(),
            policy,
            mode,
            state: State::AwaitHeader,
            tls,
            server_cert,
            stream_id: None,
            sasl_done: false,
            external_failed: false,
            established: Vec::new(),
            pending: Vec::new(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            actions: VecDeque::new(),
        };
        machine.send_header();
        machine
    }

    pub fn poll_action(&mut self) -> Option<InitiatingAction> {
        self.actions.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        let pending = self.pending.iter().map(|p| p.deadline);
        self.deadline.into_iter().chain(pending).min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if self.deadline.is_some_and(|d| now >= d) {
            let err = StreamError::with_text(Cond::ConnectionTimeout, "negotiation took too long");
            return self.fail(err);
        }
        let expired: Vec<String> = (self.pending.iter())
            .filter(|p| now >= p.deadline)
            .map(|p| p.local.clone())
            .collect();
        for local in expired {
            self.domain_failed(&local, DialbackOutcome::Error(Sc::RemoteServerTimeout));
        }
    }

    /// Bytes from the peer (after TLS decryption), in any chunking.
    pub fn receive(&mut self, bytes: &[u8], now: Instant) {
        match self.state {
            State::Closed => return,
            State::AwaitTls => {
                let err = StreamError::with_text(Cond::PolicyViolation, "data during TLS");
                return self.fail(err);
            }
            _ => {}
        }
        self.reader.feed(bytes);
        while self.state != State::Closed && self.state != State::AwaitTls {
            match self.reader.next_event() {
                Ok(Some(StreamEvent::Open(header))) => self.on_header(&header),
                Ok(Some(StreamEvent::Stanza(el))) => self.on_element(&el, now),
                Ok(Some(StreamEvent::Close)) => self.failed(FailReason::PeerClosed, true),
                Ok(None) => break,
                Err(e) => self.fail(StreamError::from(&e)),
            }
        }
    }

    /// The handshake requested by [`InitiatingAction::StartTls`] completed; `server`
    /// says whether the server's certificate is valid for the remote domain (kept for
    /// the driver, see [`server_certificate`](Self::server_certificate)).
    pub fn tls_established(&mut self, server: CertFacts) {
        if self.state == State::AwaitTls {
            self.tls = true;
            self.server_cert = server;
            self.restart();
        }
    }

    /// The connection broke: report everything queued as undelivered.
    pub fn connection_lost(&mut self) {
        if self.state != State::Closed {
            self.failed(FailReason::ConnectionLost, false);
        }
    }

    /// Close the stream with `err` and report the queue as undelivered.
    pub fn fail(&mut self, err: StreamError) {
        if self.state == State::Closed {
            return;
        }
        self.send(err.to_xml());
        self.failed(FailReason::LocalError(err.condition), false);
    }

    /// Hands over a stanza from one of our domains (`from` decides which). Written at
    /// once when that domain is established, queued while it is being negotiated;
    /// refused (given back) when the queue is full, the stream is closed, or the sender
    /// domain is neither the primary one nor one added with
    /// [`add_sender_domain`](Self::add_sender_domain).
    pub fn send_stanza(&mut self, element: Element) -> Result<(), Element> {
        if self.state == State::Closed || matches!(self.mode, Mode::Verify { .. }) {
            return Err(element);
        }
        let Some(domain) = element.attr("from").and_then(sender_domain) else {
            return Err(element);
        };
        let Ok(xml) = element.to_xml(ns::SERVER) else {
            return Err(element);
        };
        if self.established.contains(&domain) {
            self.send(xml);
            return Ok(());
        }
        let waiting = (domain == self.local && self.established.is_empty())
            || self.pending.iter().any(|p| p.local == domain);
        let full = self.queue.len() >= self.cfg.max_queued_stanzas
            || self.queued_bytes + xml.len() > self.cfg.max_queued_bytes;
        if !waiting || full {
            return Err(element);
        }
        self.queued_bytes += xml.len();
        self.queue.push_back(Queued {
            domain,
            element,
            xml,
        });
        Ok(())
    }

    /// Starts dialback for another of our domains on this established stream (sender
    /// multiplexing, XEP-0220 §2.5.1). Returns false when that is not possible here.
    pub fn add_sender_domain(&mut self, local: &str, now: Instant) -> bool {
        let Some(stream_id) = self.stream_id.clone() else {
            return false;
        };
        let known = self.established.iter().any(|d| d == local)
            || self.pending.iter().any(|p| p.local == local);
        if self.state != State::Established || known || !self.policy.dialback_allowed(self.tls) {
            return false;
        }
        let key = self.cfg.secret.key(&self.remote, local, &stream_id);
        let xml = common::db_element("result", local, &self.remote, None, DbBody::Key(&key));
        self.send(xml);
        self.pending.push(PendingDomain {
            local: local.to_string(),
            deadline: now + self.cfg.negotiation_timeout,
        });
        true
    }

    /// Our domains that may send on this stream, the primary first.
    pub fn established_domains(&self) -> &[String] {
        &self.established
    }

    /// What the server's certificate showed (after STARTTLS or direct TLS).
    pub fn server_certificate(&self) -> CertFacts {
        self.server_cert
    }

    pub fn is_tls(&self) -> bool {
        self.tls
    }

    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Stanzas waiting for their sender domain to be established.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    fn send(&mut self, s: String) {
        self.actions.push_back(InitiatingAction::Send(s));
    }

    fn send_el(&mut self, el: &Element) {
        match el.to_xml(ns::SERVER) {
            Ok(xml) => self.send(xml),
            Err(e) => self.fail(StreamError::with_text(
                Cond::InternalServerError,
                e.to_string(),
            )),
        }
    }

    fn send_header(&mut self) {
        let xml = common::header(&self.local, Some(&self.remote), None);
        self.send(xml);
    }

    /// Stream restart after TLS or SASL: a fresh reader, a fresh header.
    fn restart(&mut self) {
        self.reader.reset();
        self.stream_id = None;
        self.state = State::AwaitHeader;
        self.send_header();
    }

    /// Ends the stream: `Failed` with the whole queue, then `Close`. `close_tag`: our
    /// stream is still open and gets its end tag.
    fn failed(&mut self, reason: FailReason, close_tag: bool) {
        if close_tag {
            self.send("</stream:stream>".into());
        }
        self.queued_bytes = 0;
        let undelivered = self.queue.drain(..).map(|q| q.element).collect();
        self.actions.push_back(InitiatingAction::Failed {
            reason,
            undelivered,
        });
        self.actions.push_back(InitiatingAction::Close);
        self.state = State::Closed;
    }

    fn on_header(&mut self, header: &StreamHeader) {
        if self.state != State::AwaitHeader {
            return self.fail(StreamError::new(Cond::BadFormat));
        }
        if let Err(e) = common::check_header(header) {
            return self.fail(e);
        }
        self.stream_id = header.attr("id").map(str::to_string);
        if common::version_ok(header.attr("version")) {
            self.state = State::AwaitFeatures;
        } else {
            // A pre-1.0 server sends no features: no TLS, dialback only.
            self.on_features(&Element::new("features", ns::STREAM));
        }
    }

    fn on_element(&mut self, el: &Element, now: Instant) {
        if el.is("error", ns::STREAM) {
            let condition = common::stream_error_condition(el);
            return self.failed(FailReason::PeerError(condition), true);
        }
        match self.state {
            State::AwaitFeatures if el.is("features", ns::STREAM) => self.on_features(el),
            State::AwaitProceed if el.is("proceed", ns::TLS) => {
                if !self.reader.only_whitespace_buffered() {
                    let text = "data after <proceed/>";
                    return self.fail(StreamError::with_text(Cond::PolicyViolation, text));
                }
                self.actions.push_back(InitiatingAction::StartTls);
                self.state = State::AwaitTls;
            }
            State::AwaitProceed if el.is("failure", ns::TLS) => {
                self.failed(FailReason::TlsRefused, false);
            }
            State::AwaitSasl if el.is("success", ns::SASL) => {
                self.sasl_done = true;
                self.restart();
            }
            State::AwaitSasl if el.is("failure", ns::SASL) => {
                self.external_failed = true;
                if !self.try_dialback() {
                    self.failed(FailReason::SaslFailed, true);
                }
            }
            State::AwaitSasl if el.is("challenge", ns::SASL) => {
                // Only an empty challenge makes sense for EXTERNAL: answer with the empty
                // response.
                self.send_el(&Element::new("response", ns::SASL).with_text("="));
            }
            State::AwaitDialback | State::Established if el.is("result", ns::DIALBACK) => {
                self.on_db_result(el, now);
            }
            State::AwaitVerify if el.is("verify", ns::DIALBACK) => self.on_db_verify(el),
            _ => self.fail(StreamError::with_text(
                Cond::UnsupportedStanzaType,
                "unexpected element on an outbound stream",
            )),
        }
    }

    fn on_features(&mut self, features: &Element) {
        if !self.tls {
            if features.has_child("starttls", ns::TLS) {
                self.send_el(&Element::new("starttls", ns::TLS));
                self.state = State::AwaitProceed;
                return;
            }
            if self.policy.tls == TlsPolicy::Required {
                return self.failed(FailReason::TlsUnavailable, true);
            }
        }
        if let Mode::Verify { stream_id, key } = &self.mode {
            let body = DbBody::Key(key);
            let xml =
                common::db_element("verify", &self.local, &self.remote, Some(stream_id), body);
            self.send(xml);
            self.state = State::AwaitVerify;
            return;
        }
        if self.sasl_done {
            return self.establish(self.local.clone(), AuthMethod::Pkix);
        }
        let external = features
            .child("mechanisms", ns::SASL)
            .is_some_and(|m| m.elements().any(|c| c.text().trim() == "EXTERNAL"));
        // Only with a certificate valid for us would the peer have offered EXTERNAL.
        if external && self.tls && self.policy.pkix && !self.external_failed {
            let auth = Element::new("auth", ns::SASL)
                .with_attr("mechanism", "EXTERNAL")
                .with_text("=");
            self.send_el(&auth);
            self.state = State::AwaitSasl;
            return;
        }
        if !self.try_dialback() {
            self.failed(FailReason::NoAuthMethod, true);
        }
    }

    /// Sends `<db:result/>` for the primary domain if policy and stream allow.
    fn try_dialback(&mut self) -> bool {
        let Some(stream_id) = self.stream_id.clone() else {
            return false;
        };
        if !self.policy.dialback_allowed(self.tls) {
            return false;
        }
        let key = self.cfg.secret.key(&self.remote, &self.local, &stream_id);
        let body = DbBody::Key(&key);
        let xml = common::db_element("result", &self.local, &self.remote, None, body);
        self.send(xml);
        self.state = State::AwaitDialback;
        true
    }

    fn establish(&mut self, local: String, method: AuthMethod) {
        self.deadline = None;
        self.state = State::Established;
        self.reader.set_limits(self.cfg.limits);
        self.pending.retain(|p| p.local != local);
        self.established.push(local.clone());
        self.actions.push_back(InitiatingAction::Established {
            local: local.clone(),
            method,
        });
        let (ready, waiting): (VecDeque<Queued>, VecDeque<Queued>) =
            std::mem::take(&mut self.queue)
                .into_iter()
                .partition(|q| q.domain == local);
        self.queue = waiting;
        for q in ready {
            self.queued_bytes -= q.xml.len();
            self.send(q.xml);
        }
    }

    fn domain_failed(&mut self, local: &str, outcome: DialbackOutcome) {
        self.pending.retain(|p| p.local != local);
        let (gone, kept): (VecDeque<Queued>, VecDeque<Queued>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|q| q.domain == local);
        self.queue = kept;
        self.queued_bytes -= gone.iter().map(|q| q.xml.len()).sum::<usize>();
        self.actions.push_back(InitiatingAction::DomainFailed {
            local: local.to_string(),
            outcome,
            undelivered: gone.into_iter().map(|q| q.element).collect(),
        });
    }

    fn on_db_result(&mut self, el: &Element, _now: Instant) {
        let from = el.attr("from").and_then(common::domain);
        let to = el.attr("to").and_then(common::domain);
        let outcome = common::parse_outcome(el);
        let (Some(from), Some(to), Some(outcome)) = (from, to, outcome) else {
            let text = "malformed dialback answer";
            return self.fail(StreamError::with_text(Cond::BadFormat, text));
        };
        let primary = self.state == State::AwaitDialback && to == self.local;
        let extra = self.pending.iter().any(|p| p.local == to);
        if from != self.remote || !(primary || extra) {
            // XEP-0220 §4.2: answers to nothing we asked are refused.
            let text = "unsolicited dialback answer";
            return self.fail(StreamError::with_text(Cond::NotAuthorized, text));
        }
        match (outcome, primary) {
            (DialbackOutcome::Valid, _) => self.establish(to, AuthMethod::Dialback),
            // The receiving server closes the stream after an invalid key (§2.2.1).
            (DialbackOutcome::Invalid, _) => self.failed(FailReason::DialbackInvalid, true),
            (DialbackOutcome::Error(c), true) => self.failed(FailReason::DialbackError(c), true),
            (outcome @ DialbackOutcome::Error(_), false) => self.domain_failed(&to, outcome),
        }
    }

    fn on_db_verify(&mut self, el: &Element) {
        let Mode::Verify { stream_id, .. } = &self.mode else {
            return;
        };
        let matches = el.attr("id") == Some(stream_id.as_str())
            && el.attr("from").and_then(common::domain).as_deref() == Some(self.remote.as_str())
            && el.attr("to").and_then(common::domain).as_deref() == Some(self.local.as_str());
        let Some(outcome) = common::parse_outcome(el).filter(|_| matches) else {
            let text = "unsolicited dialback answer";
            return self.fail(StreamError::with_text(Cond::NotAuthorized, text));
        };
        self.deadline = None;
        self.actions
            .push_back(InitiatingAction::VerifyResult { outcome });
        self.send("</stream:stream>".into());
        self.actions.push_back(InitiatingAction::Close);
        self.state = State::Closed;
    }
}

/// The domain of a stanza's `from`.
fn sender_domain(from: &str) -> Option<String> {
    crate::Jid::parse(from).ok().map(|j| j.domain().to_string())
}
