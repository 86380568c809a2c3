//! The negotiation machine driven on virtual time, without sockets.

use super::*;
use crate::sasl::{plain_encode, ScramClient};
use crate::xml::{StreamReader, XmlLimits};

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

/// A client-side view: feeds client bytes through a real reader into the machine and
/// parses what the machine sends back with a second reader.
struct Harness {
    neg: Negotiation,
    reader: StreamReader,
    server_out: StreamReader,
    now: Instant,
    record: ScramRecord,
    sent: Vec<Action>,
    /// Server output read before a stream restart reset `server_out`.
    earlier: Vec<StreamEvent>,
}

impl Harness {
    fn new(cfg: NegotiationConfig) -> Self {
        let now = Instant::now();
        let mut server_out = StreamReader::new(XmlLimits::default());
        server_out.feed(b"");
        Self {
            neg: Negotiation::new(Arc::new(cfg), false, now),
            reader: StreamReader::new(XmlLimits::default()),
            server_out,
            now,
            record: ScramRecord::derive(ScramHash::Sha256, "secret", b"0123456789abcdef", 4096)
                .expect("derive"),
            sent: Vec::new(),
            earlier: Vec::new(),
        }
    }

    fn cfg() -> NegotiationConfig {
        NegotiationConfig {
            auth_failure_delay: Duration::from_secs(2),
            ..NegotiationConfig::default()
        }
    }

    /// Feed client XML; answer lookups like a store holding user `alice`/`secret`.
    fn client(&mut self, xml: &str) {
        self.reader.feed(xml.as_bytes());
        loop {
            match self.reader.next_event() {
                Ok(Some(ev)) => self.neg.handle_event(ev, self.now),
                Ok(None) => break,
                Err(e) => {
                    self.neg.handle_xml_error(&e);
                    break;
                }
            }
            self.drive();
        }
        self.drive();
    }

    fn drive(&mut self) {
        while let Some(action) = self.neg.poll_action() {
            match &action {
                Action::Send(s) => self.server_out.feed(s.as_bytes()),
                Action::StartTls => {
                    self.reader.reset();
                    self.neg.tls_established();
                    self.restart_server_out();
                }
                Action::LookupCredentials { username, .. } => {
                    let rec = (username == "alice").then(|| self.record.clone());
                    self.neg.credentials(rec, self.now);
                }
                Action::Authenticated { .. } => {
                    self.reader.reset();
                    self.restart_server_out();
                }
                Action::Bind { resource } => {
                    let r = resource.clone().unwrap_or_else(|| "generated".into());
                    let jid = Jid::new(Some("alice"), "localhost", Some(&r)).expect("jid");
                    self.neg.bind_result(Ok(jid));
                }
                Action::Resume { .. } => self.neg.resume_failed(),
                Action::Established { .. } | Action::AuthFailed | Action::Close => {}
            }
            self.sent.push(action);
        }
    }

    fn restart_server_out(&mut self) {
        while let Ok(Some(ev)) = self.server_out.next_event() {
            self.earlier.push(ev);
        }
        self.server_out.reset();
    }

    /// Everything the server sent since the last call, as events.
    fn server_events(&mut self) -> Vec<StreamEvent> {
        let mut out = std::mem::take(&mut self.earlier);
        while let Ok(Some(ev)) = self.server_out.next_event() {
            out.push(ev);
        }
        out
    }

    fn last_stanza(&mut self) -> Element {
        self.server_events()
            .into_iter()
            .rev()
            .find_map(|ev| match ev {
                StreamEvent::Stanza(el) => Some(el),
                _ => None,
            })
            .expect("a stanza from the server")
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.neg.handle_timeout(self.now);
        self.drive();
    }

    fn closed_with(&mut self) -> Option<String> {
        if !self.sent.contains(&Action::Close) {
            return None;
        }
        let events = self.server_events();
        events.into_iter().find_map(|ev| match ev {
            StreamEvent::Stanza(el) if el.is("error", ns::STREAM) => {
                el.elements().next().map(|c| c.name.clone())
            }
            _ => None,
        })
    }

    fn reach_auth(&mut self) {
        self.client(HEADER);
        let features = self.last_stanza();
        assert!(features.has_child("starttls", ns::TLS));
        self.client("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        assert!(self.sent.contains(&Action::StartTls));
        self.client(HEADER);
        let features = self.last_stanza();
        let mechs = features.child("mechanisms", ns::SASL).expect("mechanisms");
        let names: Vec<String> = mechs.elements().map(Element::text).collect();
        assert_eq!(names, ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]);
    }

    fn scram(&mut self, password: &str) {
        let mut c = ScramClient::new(ScramHash::Sha256, "alice", password);
        let first = B64.encode(c.client_first());
        self.client(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{first}</auth>"
        ));
        let challenge = self.last_stanza();
        assert_eq!(challenge.name, "challenge");
        let data = B64.decode(challenge.text()).expect("b64");
        let fin = c.handle_server_first(&data).expect("server-first");
        self.client(&format!(
            "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
            B64.encode(fin)
        ));
    }
}

#[test]
fn full_negotiation_reaches_a_bound_session() {
    let mut h = Harness::new(Harness::cfg());
    h.reach_auth();
    h.scram("secret");
    assert!(h
        .sent
        .iter()
        .any(|a| matches!(a, Action::Authenticated { username } if username == "alice")));
    h.client(HEADER);
    let features = h.last_stanza();
    assert!(features.has_child("bind", ns::BIND));
    assert!(features.has_child("sm", ns::SM));
    h.client("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>phone</resource></bind></iq>");
    let result = h.last_stanza();
    assert_eq!(result.attr("type"), Some("result"));
    assert_eq!(
        result
            .child("bind", ns::BIND)
            .and_then(|b| b.child("jid", ns::BIND))
            .map(Element::text),
        Some("alice@localhost/phone".into())
    );
    assert!(h.neg.poll_timeout().is_none(), "no deadline once bound");
}

#[test]
fn wrong_password_fails_only_after_the_delay() {
    let mut h = Harness::new(Harness::cfg());
    h.reach_auth();
    h.scram("wrong");
    assert!(h.server_events().is_empty(), "failure is held back");
    h.advance(Duration::from_millis(1999));
    assert!(h.server_events().is_empty());
    h.advance(Duration::from_millis(1));
    let failure = h.last_stanza();
    assert!(failure.is("failure", ns::SASL));
    assert!(failure.has_child("not-authorized", ns::SASL));
    // A retry with the right password still works.
    h.scram("secret");
    assert!(h.neg.username() == Some("alice"));
}

#[test]
fn too_many_failures_close_the_stream() {
    let mut h = Harness::new(NegotiationConfig {
        auth_failure_delay: Duration::ZERO,
        ..Harness::cfg()
    });
    h.reach_auth();
    for _ in 0..3 {
        h.scram("wrong");
    }
    assert_eq!(h.closed_with().as_deref(), Some("policy-violation"));
}

#[test]
fn unknown_user_fails_like_a_wrong_password() {
    let mut h = Harness::new(NegotiationConfig {
        auth_failure_delay: Duration::ZERO,
        ..Harness::cfg()
    });
    h.reach_auth();
    let mut c = ScramClient::new(ScramHash::Sha256, "mallory", "x");
    let first = B64.encode(c.client_first());
    h.client(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{first}</auth>"
    ));
    let challenge = h.last_stanza();
    assert_eq!(
        challenge.name, "challenge",
        "no early refusal that reveals the user"
    );
    let fin = c
        .handle_server_first(&B64.decode(challenge.text()).expect("b64"))
        .expect("final");
    h.client(&format!(
        "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
        B64.encode(fin)
    ));
    assert!(h.last_stanza().has_child("not-authorized", ns::SASL));
}

#[test]
fn plain_works_over_tls() {
    let mut h = Harness::new(Harness::cfg());
    h.reach_auth();
    let msg = B64.encode(plain_encode(None, "alice", "secret"));
    h.client(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{msg}</auth>"
    ));
    assert!(h.last_stanza().is("success", ns::SASL));
}

#[test]
fn auth_before_starttls_is_refused_with_encryption_required() {
    let mut h = Harness::new(Harness::cfg());
    h.client(HEADER);
    h.server_events();
    let msg = B64.encode(plain_encode(None, "alice", "secret"));
    h.client(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{msg}</auth>"
    ));
    let failure = h.last_stanza();
    assert!(failure.has_child("encryption-required", ns::SASL));
    assert!(h.neg.username().is_none());
}

#[test]
fn stanza_before_auth_is_not_authorized() {
    let mut h = Harness::new(Harness::cfg());
    h.reach_auth();
    h.client("<message to='bob@localhost'><body>hi</body></message>");
    assert_eq!(h.closed_with().as_deref(), Some("not-authorized"));
}

#[test]
fn unknown_host_and_bad_namespace_and_version() {
    let mut h = Harness::new(Harness::cfg());
    h.client("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='elsewhere.example' version='1.0'>");
    assert_eq!(h.closed_with().as_deref(), Some("host-unknown"));

    let mut h = Harness::new(Harness::cfg());
    h.client("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>");
    assert_eq!(h.closed_with().as_deref(), Some("invalid-namespace"));

    let mut h = Harness::new(Harness::cfg());
    h.client("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost'>");
    assert_eq!(h.closed_with().as_deref(), Some("unsupported-version"));
}

#[test]
fn restricted_xml_gets_a_header_then_the_error() {
    let mut h = Harness::new(Harness::cfg());
    h.client("<!-- hello --><stream:stream>");
    let events = h.server_events();
    assert!(matches!(events.first(), Some(StreamEvent::Open(_))));
    let err = events
        .iter()
        .find_map(|e| match e {
            StreamEvent::Stanza(el) if el.is("error", ns::STREAM) => Some(el.clone()),
            _ => None,
        })
        .expect("stream error");
    assert!(err.has_child("restricted-xml", ns::STREAM_ERRORS));
}

#[test]
fn negotiation_times_out_on_virtual_time() {
    let mut h = Harness::new(Harness::cfg());
    h.client(HEADER);
    h.server_events();
    h.advance(Duration::from_secs(29));
    assert!(!h.sent.contains(&Action::Close));
    h.advance(Duration::from_secs(1));
    assert_eq!(h.closed_with().as_deref(), Some("connection-timeout"));
}

#[test]
fn failed_resumption_lets_the_client_bind() {
    let mut h = Harness::new(Harness::cfg());
    h.reach_auth();
    h.scram("secret");
    h.client(HEADER);
    h.server_events();
    h.client("<resume xmlns='urn:xmpp:sm:3' previd='nope' h='0'/>");
    assert!(h.last_stanza().is("failed", ns::SM));
    h.client("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    assert!(h
        .sent
        .iter()
        .any(|a| matches!(a, Action::Established { jid } if jid.resource() == Some("generated"))));
}

#[test]
fn authzid_for_someone_else_is_refused() {
    let mut h = Harness::new(NegotiationConfig {
        auth_failure_delay: Duration::ZERO,
        ..Harness::cfg()
    });
    h.reach_auth();
    let msg = B64.encode(plain_encode(Some("bob@localhost"), "alice", "secret"));
    h.client(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{msg}</auth>"
    ));
    assert!(h.last_stanza().has_child("invalid-authzid", ns::SASL));
}
