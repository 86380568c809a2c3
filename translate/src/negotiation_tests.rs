//! The negotiation machine driven on virtual time, without sockets.

use super::*;
use crate::sasl::{plain_encode, ScramClient};
use crate::xml::{StreamReader, XmlLimits};
use base64::engine::general_purpose::STANDARD as B64;
use rand::SeedableRng;

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
    /// Every byte the server sent, in order.
    wire: String,
    /// Answer credential lookups with `credentials_refused` (a throttled account).
    refuse_lookups: bool,
}

impl Harness {
    fn new(cfg: NegotiationConfig) -> Self {
        Self::seeded(cfg, 1)
    }

    fn seeded(cfg: NegotiationConfig, seed: u64) -> Self {
        let now = Instant::now();
        let mut server_out = StreamReader::new(XmlLimits::default());
        server_out.feed(b"");
        Self {
            neg: Negotiation::new(Arc::new(cfg), false, now, StdRng::seed_from_u64(seed)),
            reader: StreamReader::new(XmlLimits::default()),
            server_out,
            now,
            record: ScramRecord::derive(ScramHash::Sha256, "secret", b"0123456789abcdef", 4096)
                .expect("derive"),
            sent: Vec::new(),
            earlier: Vec::new(),
            wire: String::new(),
            refuse_lookups: false,
        }
    }

    fn cfg() -> NegotiationConfig {
        NegotiationConfig {
            auth_failure_delay: Duration::from_secs(2),
            decoy_secret: DecoySecret::from_bytes([9; 32]),
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
                Action::Send(s) => {
                    self.server_out.feed(s.as_bytes());
                    self.wire.push_str(s);
                }
                Action::StartTls => {
                    self.reader.reset();
                    self.neg.tls_established();
                    self.restart_server_out();
                }
                Action::LookupCredentials { .. } if self.refuse_lookups => {
                    self.neg.credentials_refused(self.now);
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
                Action::Established { .. } | Action::AuthFailed { .. } | Action::Close => {}
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
        self.scram_as("alice", password);
    }

    /// A SCRAM-SHA-256 exchange; returns the server-first-message.
    fn scram_as(&mut self, user: &str, password: &str) -> String {
        let mut c = ScramClient::with_nonce(ScramHash::Sha256, user, password, "clientnonce");
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
        String::from_utf8(data).expect("UTF-8")
    }

    fn plain(&mut self, user: &str, password: &str) {
        let msg = B64.encode(plain_encode(None, user, password));
        self.client(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{msg}</auth>"
        ));
    }

    /// The usernames of the `AuthFailed` actions so far.
    fn failures(&self) -> Vec<Option<String>> {
        self.sent
            .iter()
            .filter_map(|a| match a {
                Action::AuthFailed { username } => Some(username.clone()),
                _ => None,
            })
            .collect()
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

/// A full negotiation up to a bound resource.
fn full_run(seed: u64) -> String {
    let mut h = Harness::seeded(Harness::cfg(), seed);
    h.reach_auth();
    h.scram("secret");
    h.client(HEADER);
    h.client("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    assert!(h.neg.poll_timeout().is_none(), "bound");
    h.wire
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let a = full_run(42);
    assert_eq!(a, full_run(42));
    assert!(a.contains(" id='"), "stream ids are sent");
    assert_ne!(a, full_run(43), "ids and nonces come from the seed");
}

/// `(nonce length, salt, iteration count)` of a server-first-message.
fn server_first_shape(msg: &str) -> (usize, Vec<u8>, String) {
    let parts: Vec<&str> = msg.split(',').collect();
    assert_eq!(parts.len(), 3, "{msg}");
    let nonce = parts[0].strip_prefix("r=").expect("nonce").len();
    let salt = B64
        .decode(parts[1].strip_prefix("s=").expect("salt"))
        .expect("b64");
    (nonce, salt, parts[2].to_owned())
}

/// The salt an unknown user is shown by a fresh machine with this secret and seed.
fn unknown_user_salt(secret: [u8; 32], seed: u64, user: &str) -> Vec<u8> {
    let mut h = Harness::seeded(
        NegotiationConfig {
            decoy_secret: DecoySecret::from_bytes(secret),
            auth_failure_delay: Duration::ZERO,
            ..Harness::cfg()
        },
        seed,
    );
    h.reach_auth();
    let first = h.scram_as(user, "guess");
    assert!(h.last_stanza().has_child("not-authorized", ns::SASL));
    server_first_shape(&first).1
}

#[test]
fn unknown_users_keep_their_salt_across_restarts() {
    let salt = unknown_user_salt([1; 32], 1, "mallory");
    // Another process (another seed) with the same stored secret.
    assert_eq!(salt, unknown_user_salt([1; 32], 2, "mallory"));
    // The salt is derived from the normalized username.
    assert_eq!(salt, unknown_user_salt([1; 32], 3, "Mallory"));
    assert_ne!(salt, unknown_user_salt([1; 32], 1, "trudy"));
    assert_ne!(salt, unknown_user_salt([2; 32], 1, "mallory"));
}

#[test]
fn known_and_unknown_users_get_challenges_of_the_same_shape() {
    let mut h = Harness::new(NegotiationConfig {
        auth_failure_delay: Duration::ZERO,
        ..Harness::cfg()
    });
    h.reach_auth();
    let (known_nonce, known_salt, known_i) = server_first_shape(&h.scram_as("alice", "secret"));
    assert_eq!(h.neg.username(), Some("alice"));
    let mut h = Harness::new(NegotiationConfig {
        auth_failure_delay: Duration::ZERO,
        ..Harness::cfg()
    });
    h.reach_auth();
    let (nonce, salt, i) = server_first_shape(&h.scram_as("mallory", "secret"));
    assert_eq!(
        (nonce, salt.len(), i.as_str()),
        (known_nonce, known_salt.len(), known_i.as_str())
    );
    assert_eq!(i, format!("i={}", crate::sasl::DEFAULT_ITERATIONS));
}

/// Wall time of one PLAIN attempt for `user` (the fastest of three fresh machines).
fn plain_time(user: &str) -> Duration {
    (0..3)
        .map(|_| {
            let mut h = Harness::new(NegotiationConfig {
                auth_failure_delay: Duration::ZERO,
                ..Harness::cfg()
            });
            h.reach_auth();
            let start = Instant::now();
            h.plain(user, "wrong");
            let took = start.elapsed();
            assert!(h.last_stanza().has_child("not-authorized", ns::SASL));
            took
        })
        .min()
        .unwrap_or_default()
}

#[test]
fn plain_does_the_same_work_for_unknown_users() {
    // Both run one PBKDF2 of 4096 iterations, which dwarfs everything else; without the
    // decoy derivation the unknown user's attempt takes a tiny fraction of the known one.
    let known = plain_time("alice");
    let unknown = plain_time("mallory");
    assert!(
        unknown * 3 >= known && known * 3 >= unknown,
        "known {known:?}, unknown {unknown:?}"
    );
}

#[test]
fn auth_failures_name_the_account() {
    let mut h = Harness::new(NegotiationConfig {
        auth_failure_delay: Duration::ZERO,
        max_auth_attempts: 10,
        ..Harness::cfg()
    });
    h.reach_auth();
    h.scram_as("Alice", "wrong");
    h.plain("mallory", "x");
    h.client("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>!!</auth>");
    assert!(h.last_stanza().has_child("incorrect-encoding", ns::SASL));
    let no_user = B64.encode(b"n,,r=abc");
    h.client(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{no_user}</auth>"
    ));
    assert_eq!(
        h.failures(),
        [Some("alice".into()), Some("mallory".into()), None, None]
    );
}

#[test]
fn refused_lookups_fail_temporarily_after_the_delay() {
    let mut h = Harness::new(Harness::cfg());
    h.reach_auth();
    h.refuse_lookups = true;
    // Nothing pending: ignored.
    h.neg.credentials_refused(h.now);
    assert!(h.neg.poll_action().is_none());

    let mut c = ScramClient::with_nonce(ScramHash::Sha256, "alice", "secret", "n1");
    let first = B64.encode(c.client_first());
    h.client(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{first}</auth>"
    ));
    assert_eq!(h.failures(), [Some("alice".into())]);
    assert!(
        h.server_events().is_empty(),
        "no challenge, failure held back"
    );
    h.advance(Duration::from_millis(1999));
    assert!(h.server_events().is_empty());
    h.advance(Duration::from_millis(1));
    assert!(h
        .last_stanza()
        .has_child("temporary-auth-failure", ns::SASL));

    // PLAIN is refused the same way, and refusals count towards the attempt limit.
    h.plain("alice", "secret");
    h.advance(Duration::from_secs(2));
    assert!(h
        .last_stanza()
        .has_child("temporary-auth-failure", ns::SASL));
    assert_eq!(h.failures().len(), 2);
    h.refuse_lookups = false;
    h.plain("alice", "wrong");
    h.advance(Duration::from_secs(2));
    assert_eq!(h.closed_with().as_deref(), Some("policy-violation"));
}

#[test]
fn after_a_refusal_the_account_can_log_in() {
    let mut h = Harness::new(NegotiationConfig {
        auth_failure_delay: Duration::ZERO,
        ..Harness::cfg()
    });
    h.reach_auth();
    h.refuse_lookups = true;
    h.plain("alice", "secret");
    assert!(h
        .last_stanza()
        .has_child("temporary-auth-failure", ns::SASL));
    h.refuse_lookups = false;
    h.scram("secret");
    assert_eq!(h.neg.username(), Some("alice"));
}

#[test]
fn a_bad_application_error_element_ends_the_stream_instead_of_injecting() {
    let mut h = Harness::new(Harness::cfg());
    h.reach_auth();
    h.scram("secret");
    h.client(HEADER);
    h.server_events();
    h.reader
        .feed(b"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    let Ok(Some(ev)) = h.reader.next_event() else {
        panic!("bind iq")
    };
    h.neg.handle_event(ev, h.now);
    assert!(matches!(h.neg.poll_action(), Some(Action::Bind { .. })));
    let err = StanzaError::new(StanzaErrorCondition::Conflict)
        .with_app(Element::new("x'/><evil", "urn:app"));
    h.neg.bind_result(Err(err));
    h.drive();
    assert!(!h.wire.contains("<evil"), "{}", h.wire);
    assert_eq!(h.closed_with().as_deref(), Some("internal-server-error"));
}

#[test]
fn negotiation_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<Negotiation>();
    assert_send::<Action>();
}
