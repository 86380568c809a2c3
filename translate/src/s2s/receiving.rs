//! The receiving entity of a server-to-server stream: the side a peer connected to. See
//! the [module documentation](super) for the flow.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::common::{self, DbBody};
use super::{CertFacts, DialbackOutcome, S2sPolicy, TlsPolicy};
use crate::ns;
use crate::sasl::framing::{decode_sasl, sasl_failure};
use crate::stanza::StanzaErrorCondition as Sc;
use crate::stream_error::{StreamError, StreamErrorCondition as Cond};
use crate::xml::{Element, StreamEvent, StreamHeader, StreamReader, XmlLimits};

#[path = "receiving_dialback.rs"]
mod dialback;

/// Settings for one s2s listener.
#[derive(Debug, Clone)]
pub struct ReceivingConfig {
    /// Hosted domains (normalized) a peer may address.
    pub hosted: Vec<String>,
    /// Reader limits until a first domain is authenticated.
    pub limits_preauth: XmlLimits,
    /// Reader limits afterwards.
    pub limits: XmlLimits,
    /// From the first byte to the first authenticated domain.
    pub negotiation_timeout: Duration,
    /// How long one `<db:result/>` may wait for [`Receiving::dialback_verified`] before
    /// it is answered with `<remote-server-timeout/>`.
    pub dialback_timeout: Duration,
    /// Dialback requests (results and verifies together) awaiting the driver at once.
    pub max_pending_dialback: usize,
    /// Failed SASL attempts before the stream is closed.
    pub max_auth_attempts: u32,
}

impl Default for ReceivingConfig {
    fn default() -> Self {
        Self {
            hosted: vec!["localhost".into()],
            limits_preauth: XmlLimits {
                max_stanza_bytes: 8 * 1024,
                ..XmlLimits::default()
            },
            limits: XmlLimits::default(),
            negotiation_timeout: Duration::from_secs(60),
            dialback_timeout: Duration::from_secs(30),
            max_pending_dialback: 16,
            max_auth_attempts: 3,
        }
    }
}

/// What the driver of a [`Receiving`] machine must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceivingAction {
    /// Write these bytes.
    Send(String),
    /// Flush, then run the TLS handshake as server and call
    /// [`Receiving::tls_established`]. Nothing read before it is left to decrypt: the
    /// machine refused the stream if anything but whitespace followed `<starttls/>`.
    StartTls,
    /// A header arrived: compute the policy for `remote` (`None` when the peer did not
    /// say who it is) and, on TLS, whether its certificate is valid for `remote`; answer
    /// with [`Receiving::peer_checked`].
    CheckPeer {
        remote: Option<String>,
        hosted: String,
        tls: bool,
    },
    /// `remote` may now send stanzas on this stream.
    Authenticated { remote: String, method: AuthMethod },
    /// Ask `remote`'s authoritative server whether `key` is the dialback key for
    /// (receiving `hosted`, originating `remote`, `stream_id`), e.g. with
    /// [`super::Initiating::verify`]; answer with [`Receiving::dialback_verified`].
    VerifyDialbackKey {
        remote: String,
        hosted: String,
        stream_id: String,
        key: String,
    },
    /// We are the authoritative server: check `key` with
    /// `secret.verify(receiving, originating, stream_id, key)` and answer with
    /// [`Receiving::dialback_key_checked`].
    CheckDialbackKey {
        receiving: String,
        originating: String,
        stream_id: String,
        key: String,
    },
    /// A stanza from an authenticated domain (its `from` was checked, its `to` was not).
    Stanza { element: Element },
    /// Close the connection after writing everything queued before.
    Close,
}

/// How a remote domain proved its identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// SASL EXTERNAL with a certificate (XEP-0178).
    Pkix,
    /// Server dialback (XEP-0220).
    Dialback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitHeader,
    /// Our header is sent; waiting for [`Receiving::peer_checked`].
    CheckingPeer,
    /// Features sent; negotiation elements, dialback and stanzas are read.
    Open,
    /// `<auth mechanism='EXTERNAL'/>` came without an initial response.
    ExternalChallenge,
    AwaitTls,
    Closed,
}

/// A `<db:result/>` waiting for the authoritative server's answer.
#[derive(Debug)]
struct PendingResult {
    remote: String,
    hosted: String,
    deadline: Instant,
}

/// The receiving side of one inbound s2s connection.
pub struct Receiving {
    cfg: Arc<ReceivingConfig>,
    rng: StdRng,
    reader: StreamReader,
    state: State,
    tls: bool,
    policy: S2sPolicy,
    cert: CertFacts,
    /// The `from` of the stream header.
    remote: Option<String>,
    hosted: Option<String>,
    stream_id: Option<String>,
    header_sent: bool,
    sasl_done: bool,
    auth_failures: u32,
    authenticated: Vec<String>,
    pending_results: Vec<PendingResult>,
    /// `<db:verify/>` requests handed to the driver: (receiving, originating, id).
    pending_checks: Vec<(String, String, String)>,
    /// Until the first domain is authenticated.
    deadline: Option<Instant>,
    error: Option<Cond>,
    actions: VecDeque<ReceivingAction>,
}

impl std::fmt::Debug for Receiving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiving")
            .field("state", &self.state)
            .field("tls", &self.tls)
            .field("remote", &self.remote)
            .field("hosted", &self.hosted)
            .field("authenticated", &self.authenticated)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl Receiving {
    /// A new inbound stream. `direct_tls` is true on a XEP-0368 listener, where TLS ran
    /// before the first byte. `rng` provides stream ids.
    pub fn new(cfg: Arc<ReceivingConfig>, direct_tls: bool, now: Instant, rng: StdRng) -> Self {
        Self {
            reader: StreamReader::new(cfg.limits_preauth),
            deadline: Some(now + cfg.negotiation_timeout),
            cfg,
            rng,
            state: State::AwaitHeader,
            tls: direct_tls,
            policy: S2sPolicy::default(),
            cert: CertFacts::NONE,
            remote: None,
            hosted: None,
            stream_id: None,
            header_sent: false,
            sasl_done: false,
            auth_failures: 0,
            authenticated: Vec::new(),
            pending_results: Vec::new(),
            pending_checks: Vec::new(),
            error: None,
            actions: VecDeque::new(),
        }
    }

    /// [`new`](Self::new) with a generator seeded from the OS.
    pub fn from_entropy(cfg: Arc<ReceivingConfig>, direct_tls: bool, now: Instant) -> Self {
        Self::new(cfg, direct_tls, now, StdRng::from_rng(&mut rand::rng()))
    }

    pub fn poll_action(&mut self) -> Option<ReceivingAction> {
        self.actions.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        let pending = self.pending_results.iter().map(|p| p.deadline);
        self.deadline.into_iter().chain(pending).min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if self.deadline.is_some_and(|d| now >= d) {
            self.fail(StreamError::with_text(
                Cond::ConnectionTimeout,
                "stream negotiation took too long",
            ));
            return;
        }
        let (expired, kept) = std::mem::take(&mut self.pending_results)
            .into_iter()
            .partition(|p| now >= p.deadline);
        self.pending_results = kept;
        for p in expired {
            let outcome = DialbackOutcome::Error(Sc::RemoteServerTimeout);
            let body = DbBody::Outcome(outcome);
            let xml = common::db_element("result", &p.hosted, &p.remote, None, body);
            self.send(xml);
        }
    }

    /// Bytes from the peer (after TLS decryption), in any chunking.
    pub fn receive(&mut self, bytes: &[u8], now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if self.state == State::AwaitTls {
            // The driver owes us a handshake, not application data.
            self.fail(StreamError::with_text(
                Cond::PolicyViolation,
                "data during the TLS handshake",
            ));
            return;
        }
        self.reader.feed(bytes);
        self.pump(now);
    }

    /// The TLS handshake requested by [`ReceivingAction::StartTls`] completed. The
    /// certificate is judged when the restarted header says who the peer is.
    pub fn tls_established(&mut self) {
        if self.state == State::AwaitTls {
            self.tls = true;
            self.reader.reset();
            self.header_sent = false;
            self.state = State::AwaitHeader;
        }
    }

    /// The answer to [`ReceivingAction::CheckPeer`]. `cert` is ignored on a stream
    /// without TLS.
    pub fn peer_checked(&mut self, policy: S2sPolicy, cert: CertFacts, now: Instant) {
        if self.state != State::CheckingPeer {
            return;
        }
        self.policy = policy;
        self.cert = if self.tls { cert } else { CertFacts::NONE };
        self.send_features();
        if self.state == State::CheckingPeer {
            self.state = State::Open;
        }
        self.pump(now);
    }

    /// The answer to [`ReceivingAction::VerifyDialbackKey`]. An answer for a pair that
    /// is not pending (already answered, timed out) is dropped.
    pub fn dialback_verified(&mut self, remote: &str, hosted: &str, outcome: DialbackOutcome) {
        let Some(i) = self
            .pending_results
            .iter()
            .position(|p| p.remote == remote && p.hosted == hosted)
        else {
            return;
        };
        self.pending_results.remove(i);
        if self.state == State::Closed {
            return;
        }
        let xml = common::db_element("result", hosted, remote, None, DbBody::Outcome(outcome));
        self.send(xml);
        match outcome {
            DialbackOutcome::Valid => self.authenticate(remote.to_string(), AuthMethod::Dialback),
            // XEP-0220 §2.2.1: a spoofing attempt ends the stream.
            DialbackOutcome::Invalid => self.close(),
            DialbackOutcome::Error(_) => {}
        }
    }

    /// The answer to [`ReceivingAction::CheckDialbackKey`].
    pub fn dialback_key_checked(
        &mut self,
        receiving: &str,
        originating: &str,
        stream_id: &str,
        valid: bool,
    ) {
        let wanted = (receiving, originating, stream_id);
        let Some(i) = self
            .pending_checks
            .iter()
            .position(|(r, o, id)| (r.as_str(), o.as_str(), id.as_str()) == wanted)
        else {
            return;
        };
        self.pending_checks.remove(i);
        if self.state == State::Closed {
            return;
        }
        let body = DbBody::Outcome(DialbackOutcome::from_bool(valid));
        let xml = common::db_element("verify", originating, receiving, Some(stream_id), body);
        self.send(xml);
    }

    /// Remote domains authenticated on this stream, in order.
    pub fn authenticated_domains(&self) -> &[String] {
        &self.authenticated
    }

    /// Whether `stanza` may arrive on this stream: `from` and `to` present (else
    /// `improper-addressing`), `from` in an authenticated domain (else `invalid-from`).
    pub fn check_from(&self, stanza: &Element) -> Result<(), StreamError> {
        let (Some(from), Some(_)) = (stanza.attr("from"), stanza.attr("to")) else {
            return Err(StreamError::with_text(
                Cond::ImproperAddressing,
                "s2s stanzas need from and to",
            ));
        };
        let domain = crate::Jid::parse(from)
            .map_err(|_| StreamError::with_text(Cond::InvalidFrom, "malformed from"))?;
        if self.authenticated.iter().any(|d| d == domain.domain()) {
            Ok(())
        } else {
            Err(StreamError::with_text(
                Cond::InvalidFrom,
                "that domain is not authenticated on this stream",
            ))
        }
    }

    /// The id of the current stream header we sent.
    pub fn stream_id(&self) -> Option<&str> {
        self.stream_id.as_deref()
    }

    /// The `from` the peer gave in its header.
    pub fn remote_domain(&self) -> Option<&str> {
        self.remote.as_deref()
    }

    pub fn hosted_domain(&self) -> Option<&str> {
        self.hosted.as_deref()
    }

    pub fn is_tls(&self) -> bool {
        self.tls
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The stream error the stream closed with (ours), if any.
    pub fn error(&self) -> Option<Cond> {
        self.error
    }

    /// Close the stream with `err` (also for the driver, e.g. `system-shutdown`).
    pub fn fail(&mut self, err: StreamError) {
        if self.state == State::Closed {
            return;
        }
        if !self.header_sent {
            let from = (self.hosted.clone())
                .or_else(|| self.cfg.hosted.first().cloned())
                .unwrap_or_default();
            self.send_header(&from);
        }
        self.send(err.to_xml());
        self.error = Some(err.condition);
        self.actions.push_back(ReceivingAction::Close);
        self.state = State::Closed;
    }

    /// Close the stream without an error.
    pub fn close(&mut self) {
        if self.state == State::Closed {
            return;
        }
        self.send("</stream:stream>".into());
        self.actions.push_back(ReceivingAction::Close);
        self.state = State::Closed;
    }

    fn pump(&mut self, now: Instant) {
        while matches!(
            self.state,
            State::AwaitHeader | State::Open | State::ExternalChallenge
        ) {
            match self.reader.next_event() {
                Ok(Some(StreamEvent::Open(header))) => self.on_header(&header),
                Ok(Some(StreamEvent::Stanza(el))) => self.on_element(el, now),
                Ok(Some(StreamEvent::Close)) => self.close(),
                Ok(None) => break,
                Err(e) => self.fail(StreamError::from(&e)),
            }
        }
    }

    fn send(&mut self, s: String) {
        self.actions.push_back(ReceivingAction::Send(s));
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

    fn send_header(&mut self, from: &str) {
        let id = common::stream_id(&mut self.rng);
        let xml = common::header(from, self.remote.as_deref(), Some(&id));
        self.send(xml);
        self.stream_id = Some(id);
        self.header_sent = true;
    }

    fn on_header(&mut self, header: &StreamHeader) {
        if self.state != State::AwaitHeader {
            return self.fail(StreamError::new(Cond::BadFormat));
        }
        if let Err(e) = common::check_header(header) {
            return self.fail(e);
        }
        let hosted = header
            .attr("to")
            .and_then(common::domain)
            .filter(|d| self.cfg.hosted.contains(d));
        let Some(hosted) = hosted else {
            return self.fail(StreamError::with_text(
                Cond::HostUnknown,
                "this server does not serve that domain",
            ));
        };
        if self.hosted.as_ref().is_some_and(|h| *h != hosted) {
            return self.fail(StreamError::new(Cond::HostUnknown));
        }
        self.hosted = Some(hosted.clone());
        let remote = match header.attr("from") {
            None => None,
            Some(from) => match common::domain(from) {
                Some(d) => Some(d),
                None => return self.fail(StreamError::new(Cond::InvalidFrom)),
            },
        };
        // The peer may not change its name across a restart.
        if self.remote.is_some() && remote != self.remote {
            return self.fail(StreamError::with_text(
                Cond::InvalidFrom,
                "from changed across a restart",
            ));
        }
        self.remote = remote.clone();
        self.send_header(&hosted);
        if !common::version_ok(header.attr("version")) {
            return self.fail(StreamError::with_text(
                Cond::UnsupportedVersion,
                "XMPP 1.0 is required",
            ));
        }
        self.state = State::CheckingPeer;
        self.actions.push_back(ReceivingAction::CheckPeer {
            remote,
            hosted,
            tls: self.tls,
        });
    }

    fn tls_missing(&self) -> bool {
        !self.tls && self.policy.tls == TlsPolicy::Required
    }

    fn external_offered(&self) -> bool {
        self.tls
            && !self.sasl_done
            && self.policy.pkix
            && self.cert.valid_for_domain
            && self.remote.is_some()
    }

    fn dialback_offered(&self) -> bool {
        !self.tls_missing() && self.policy.dialback_allowed(self.tls)
    }

    fn send_features(&mut self) {
        let mut features = Vec::new();
        if !self.tls {
            let mut starttls = Element::new("starttls", ns::TLS);
            if self.policy.tls == TlsPolicy::Required {
                starttls.push_child(Element::new("required", ns::TLS));
            }
            features.push(starttls);
        }
        if self.external_offered() {
            let mech = Element::new("mechanism", ns::SASL).with_text("EXTERNAL");
            features.push(Element::new("mechanisms", ns::SASL).with_child(mech));
        }
        if self.dialback_offered() {
            let errors = Element::new("errors", ns::DIALBACK_FEATURE);
            features.push(Element::new("dialback", ns::DIALBACK_FEATURE).with_child(errors));
        }
        let mut out = String::from("<stream:features>");
        for f in &features {
            if let Err(e) = f.write_to(&mut out, ns::SERVER) {
                let err = StreamError::with_text(Cond::InternalServerError, e.to_string());
                return self.fail(err);
            }
        }
        out.push_str("</stream:features>");
        self.send(out);
    }

    fn on_element(&mut self, el: Element, now: Instant) {
        if el.is("error", ns::STREAM) {
            // The peer gave up; nothing to answer.
            self.actions.push_back(ReceivingAction::Close);
            self.state = State::Closed;
            return;
        }
        if self.state == State::ExternalChallenge {
            if el.is("response", ns::SASL) {
                self.state = State::Open;
                return self.external(&el);
            }
            self.state = State::Open;
            if el.is("abort", ns::SASL) {
                return self.send_el(&sasl_failure("aborted"));
            }
        }
        if el.is("starttls", ns::TLS) {
            self.on_starttls();
        } else if el.is("auth", ns::SASL) {
            self.on_auth(&el);
        } else if el.is("result", ns::DIALBACK) {
            self.on_db_result(&el, now);
        } else if el.is("verify", ns::DIALBACK) {
            self.on_db_verify(&el);
        } else if common::is_stanza(&el) {
            if self.authenticated.is_empty() {
                return self.fail(StreamError::with_text(
                    Cond::NotAuthorized,
                    "authenticate first",
                ));
            }
            match self.check_from(&el) {
                Ok(()) => self
                    .actions
                    .push_back(ReceivingAction::Stanza { element: el }),
                Err(e) => self.fail(e),
            }
        } else if self.authenticated.is_empty() {
            self.fail(StreamError::with_text(
                Cond::NotAuthorized,
                "authenticate first",
            ));
        } else {
            self.fail(StreamError::new(Cond::UnsupportedStanzaType));
        }
    }

    fn on_starttls(&mut self) {
        if self.tls {
            return self.fail(StreamError::with_text(
                Cond::PolicyViolation,
                "TLS is already in place",
            ));
        }
        if !self.reader.only_whitespace_buffered() {
            // Plaintext pipelined behind <starttls/> must not be read as if protected.
            return self.fail(StreamError::with_text(
                Cond::PolicyViolation,
                "data after <starttls/>",
            ));
        }
        self.send_el(&Element::new("proceed", ns::TLS));
        self.actions.push_back(ReceivingAction::StartTls);
        self.state = State::AwaitTls;
    }

    fn on_auth(&mut self, el: &Element) {
        let mechanism = el.attr("mechanism").unwrap_or_default();
        if mechanism != "EXTERNAL" || !self.external_offered() {
            return self.sasl_failed("invalid-mechanism");
        }
        if el.text().trim().is_empty() {
            // No initial response: ask for one with an empty challenge.
            self.state = State::ExternalChallenge;
            return self.send_el(&Element::new("challenge", ns::SASL));
        }
        self.external(el);
    }

    /// Finishes EXTERNAL with the authorization identity in `el` (XEP-0178 §4): empty
    /// (`=`) or the stream's `from` domain.
    fn external(&mut self, el: &Element) {
        let Some(remote) = self.remote.clone() else {
            return self.sasl_failed("invalid-mechanism");
        };
        let Ok(authzid) = decode_sasl(el) else {
            return self.sasl_failed("incorrect-encoding");
        };
        let ok = authzid.is_empty()
            || std::str::from_utf8(&authzid)
                .ok()
                .and_then(common::domain)
                .is_some_and(|d| d == remote);
        if !ok {
            return self.sasl_failed("invalid-authzid");
        }
        self.send_el(&Element::new("success", ns::SASL));
        self.sasl_done = true;
        self.authenticate(remote, AuthMethod::Pkix);
        // Stream restart (RFC 6120 §6.4.6).
        self.reader.reset();
        self.header_sent = false;
        self.state = State::AwaitHeader;
    }

    fn sasl_failed(&mut self, condition: &str) {
        self.send_el(&sasl_failure(condition));
        self.auth_failures += 1;
        if self.auth_failures >= self.cfg.max_auth_attempts {
            self.fail(StreamError::with_text(
                Cond::PolicyViolation,
                "too many authentication failures",
            ));
        }
    }

    fn authenticate(&mut self, remote: String, method: AuthMethod) {
        if !self.authenticated.contains(&remote) {
            self.authenticated.push(remote.clone());
        }
        self.deadline = None;
        self.reader.set_limits(self.cfg.limits);
        self.actions
            .push_back(ReceivingAction::Authenticated { remote, method });
    }
}
