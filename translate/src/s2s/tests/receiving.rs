//! The receiving machine against hand-written peer input.

use proptest::prelude::*;

use super::*;
use crate::stanza::StanzaErrorCondition as Sc;
use crate::stream_error::StreamErrorCondition as Cond;

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
    xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
    from='a.example' to='b.example' version='1.0'>";

/// A receiving machine, a fixed answer to `CheckPeer`, TLS completed at once.
struct Peer {
    m: Receiving,
    now: Instant,
    policy: S2sPolicy,
    cert: CertFacts,
    wire: String,
    actions: Vec<ReceivingAction>,
}

impl Peer {
    fn new(policy: S2sPolicy) -> Self {
        Self::with(b_config(), policy, false)
    }

    fn with(cfg: ReceivingConfig, policy: S2sPolicy, direct_tls: bool) -> Self {
        let now = Instant::now();
        Self {
            m: Receiving::new(Arc::new(cfg), direct_tls, now, StdRng::seed_from_u64(3)),
            now,
            policy,
            cert: CertFacts::VALID,
            wire: String::new(),
            actions: Vec::new(),
        }
    }

    fn feed(&mut self, xml: &str) {
        self.m.receive(xml.as_bytes(), self.now);
        self.drive();
    }

    fn drive(&mut self) {
        while let Some(action) = self.m.poll_action() {
            match &action {
                ReceivingAction::Send(s) => self.wire.push_str(s),
                ReceivingAction::CheckPeer { .. } => {
                    self.m.peer_checked(self.policy, self.cert, self.now);
                }
                ReceivingAction::StartTls => self.m.tls_established(),
                _ => {}
            }
            self.actions.push(action);
        }
    }

    /// Header, STARTTLS, restarted header: features after TLS are on the wire.
    fn over_tls(policy: S2sPolicy) -> Self {
        let mut p = Self::new(policy);
        p.feed(HEADER);
        p.feed("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        assert!(p.m.is_tls());
        p.feed(HEADER);
        p
    }

    fn closed_with(&self) -> Option<Cond> {
        self.actions
            .contains(&ReceivingAction::Close)
            .then(|| self.m.error())
            .flatten()
    }
}

#[test]
fn header_checks() {
    let cases = [
        (
            HEADER.replace("to='b.example'", "to='c.example'"),
            Cond::HostUnknown,
        ),
        (HEADER.replace(" to='b.example'", ""), Cond::HostUnknown),
        (
            HEADER.replace("xmlns='jabber:server'", "xmlns='jabber:client'"),
            Cond::InvalidNamespace,
        ),
        (
            HEADER.replace("version='1.0'>", "version='0.9'>"),
            Cond::UnsupportedVersion,
        ),
        (
            HEADER.replace("from='a.example'", "from='u@a.example'"),
            Cond::InvalidFrom,
        ),
    ];
    for (header, want) in cases {
        let mut p = Peer::new(S2sPolicy::default());
        p.feed(&header);
        assert_eq!(p.closed_with(), Some(want), "{header}");
        // Our header goes out before the error, as RFC 6120 §4.9.1.1 asks.
        assert!(p.wire.starts_with("<?xml version='1.0'?><stream:stream"));
        assert!(p.wire.ends_with("</stream:error></stream:stream>"));
    }
}

#[test]
fn features_follow_the_policy() {
    let mut p = Peer::new(S2sPolicy::default());
    p.feed(HEADER);
    assert!(p
        .wire
        .contains("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"));
    assert!(!p.wire.contains("dialback xmlns") && !p.wire.contains("EXTERNAL"));
    // TLS optional and dialback allowed in the clear: both offered.
    let relaxed = S2sPolicy {
        tls: TlsPolicy::Optional,
        dialback_requires_tls: false,
        ..S2sPolicy::default()
    };
    let mut p = Peer::new(relaxed);
    p.feed(HEADER);
    assert!(p
        .wire
        .contains("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"));
    assert!(p
        .wire
        .contains("<dialback xmlns='urn:xmpp:features:dialback'><errors/>"));
    let p = Peer::over_tls(S2sPolicy::default());
    let after_tls = p.wire.rsplit("<stream:features>").next().expect("features");
    assert!(after_tls.contains("<mechanism>EXTERNAL</mechanism>"));
    assert!(after_tls.contains("urn:xmpp:features:dialback"));
}

#[test]
fn stanzas_before_authentication_are_not_authorized() {
    let mut p = Peer::over_tls(S2sPolicy::default());
    p.feed("<message from='x@a.example' to='y@b.example'/>");
    assert_eq!(p.closed_with(), Some(Cond::NotAuthorized));
}

#[test]
fn dialback_before_required_tls_is_a_policy_violation_not_a_stream_error() {
    let mut p = Peer::new(S2sPolicy::default());
    p.feed(HEADER);
    p.feed("<db:result from='a.example' to='b.example'>abc</db:result>");
    assert!(p
        .wire
        .contains("type='error'><error type='modify'><policy-violation"));
    assert!(!p.m.is_closed());
    assert!(!p
        .actions
        .iter()
        .any(|a| matches!(a, ReceivingAction::VerifyDialbackKey { .. })));
}

#[test]
fn dialback_for_an_unhosted_target_is_item_not_found() {
    let mut p = Peer::over_tls(S2sPolicy::default());
    p.feed("<db:result from='a.example' to='c.example'>abc</db:result>");
    assert!(p.wire.ends_with(
        "<db:result from='c.example' to='a.example' type='error'><error type='cancel'>\
         <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>"
    ));
    assert!(!p.m.is_closed());
}

#[test]
fn unsolicited_dialback_answers_end_the_stream() {
    for el in [
        "<db:result from='a.example' to='b.example' type='valid'/>",
        "<db:verify from='a.example' to='b.example' id='x' type='valid'/>",
    ] {
        let mut p = Peer::over_tls(S2sPolicy::default());
        p.feed(el);
        assert_eq!(p.closed_with(), Some(Cond::NotAuthorized), "{el}");
        assert!(p.m.authenticated_domains().is_empty());
    }
}

#[test]
fn late_or_stray_verification_answers_are_dropped() {
    let mut p = Peer::over_tls(dialback_only());
    p.m.dialback_verified(A, B, DialbackOutcome::Valid);
    p.drive();
    assert!(p.m.authenticated_domains().is_empty());
    assert!(!p.wire.contains("type='valid'"));
}

#[test]
fn db_verify_is_answered_by_the_driver_check() {
    let mut p = Peer::over_tls(S2sPolicy::default());
    p.feed("<db:verify from='a.example' to='b.example' id='s1'> k3y </db:verify>");
    assert!(p.actions.contains(&ReceivingAction::CheckDialbackKey {
        receiving: A.into(),
        originating: B.into(),
        stream_id: "s1".into(),
        key: "k3y".into(),
    }));
    p.m.dialback_key_checked(A, B, "s1", true);
    p.drive();
    assert!(p
        .wire
        .ends_with("<db:verify from='b.example' to='a.example' id='s1' type='valid'/>"));
    // A second answer for the same request is not sent.
    p.m.dialback_key_checked(A, B, "s1", false);
    p.drive();
    assert!(!p.wire.contains("type='invalid'"));
}

#[test]
fn external_checks_the_authorization_identity() {
    let mut p = Peer::over_tls(S2sPolicy::default());
    // base64("c.example"): someone else.
    p.feed(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>Yy5leGFtcGxl</auth>",
    );
    assert!(p.wire.ends_with("<invalid-authzid/></failure>"));
    // No initial response: an empty challenge, then base64("a.example").
    p.feed("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'/>");
    assert!(p
        .wire
        .ends_with("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"));
    p.feed("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>YS5leGFtcGxl</response>");
    assert!(p
        .wire
        .ends_with("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"));
    assert_eq!(p.m.authenticated_domains(), [A]);
    p.feed(HEADER);
    p.feed("<message from='x@a.example' to='y@b.example'><body>hi</body></message>");
    assert!(matches!(
        p.actions.last(),
        Some(ReceivingAction::Stanza { .. })
    ));
}

#[test]
fn external_is_refused_without_a_valid_certificate() {
    let mut p = Peer::new(S2sPolicy::default());
    p.cert = CertFacts::NONE;
    p.feed(HEADER);
    p.feed("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    p.feed(HEADER);
    assert!(!p.wire.contains("EXTERNAL"));
    p.feed("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>");
    assert!(p.wire.ends_with("<invalid-mechanism/></failure>"));
    assert!(p.m.authenticated_domains().is_empty());
}

#[test]
fn stanzas_need_both_addresses() {
    let mut p = Peer::over_tls(S2sPolicy::default());
    p.feed("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>");
    p.feed(HEADER);
    let probe = Element::new("presence", crate::ns::SERVER).with_attr("from", "a.example");
    assert_eq!(
        p.m.check_from(&probe).map_err(|e| e.condition),
        Err(Cond::ImproperAddressing)
    );
    p.feed("<presence from='a.example'/>");
    assert_eq!(p.closed_with(), Some(Cond::ImproperAddressing));
}

#[test]
fn plaintext_pipelined_after_starttls_is_refused() {
    let mut p = Peer::new(S2sPolicy::default());
    p.feed(HEADER);
    p.feed("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><db:result from='a.example' to='b.example'>k</db:result>");
    assert_eq!(p.closed_with(), Some(Cond::PolicyViolation));
    assert!(!p.actions.contains(&ReceivingAction::StartTls));
}

#[test]
fn oversized_input_before_authentication_is_a_policy_violation() {
    let mut p = Peer::over_tls(S2sPolicy::default());
    let limit = b_config().limits_preauth.max_stanza_bytes;
    let big = format!(
        "<db:result from='a.example' to='b.example'>{}</db:result>",
        "k".repeat(limit)
    );
    p.feed(&big);
    assert_eq!(p.closed_with(), Some(Cond::PolicyViolation));
}

#[test]
fn authentication_raises_the_stanza_limit() {
    let mut p = Peer::over_tls(S2sPolicy::default());
    p.feed("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>");
    p.feed(HEADER);
    let limit = b_config().limits_preauth.max_stanza_bytes;
    let body = "b".repeat(limit);
    p.feed(&format!(
        "<message from='x@a.example' to='y@b.example'><body>{body}</body></message>"
    ));
    assert!(!p.m.is_closed());
    assert!(matches!(
        p.actions.last(),
        Some(ReceivingAction::Stanza { .. })
    ));
}

#[test]
fn too_many_pending_dialback_requests_are_refused() {
    let cfg = ReceivingConfig {
        max_pending_dialback: 1,
        ..b_config()
    };
    let mut p = Peer::with(cfg, dialback_only(), true);
    p.feed(HEADER);
    p.feed("<db:result from='a.example' to='b.example'>k</db:result>");
    p.feed("<db:result from='c.example' to='b.example'>k</db:result>");
    assert!(p.wire.ends_with(
        "<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>"
    ));
    // The same pair twice while the first is pending.
    p.feed("<db:result from='a.example' to='b.example'>k</db:result>");
    assert!(p.wire.contains("<unexpected-request"));
}

#[test]
fn negotiation_times_out_on_virtual_time() {
    let mut p = Peer::new(S2sPolicy::default());
    p.feed(HEADER);
    let deadline = p.m.poll_timeout().expect("deadline");
    assert_eq!(deadline, p.now + b_config().negotiation_timeout);
    p.m.handle_timeout(deadline - Duration::from_millis(1));
    assert!(!p.m.is_closed());
    p.m.handle_timeout(deadline);
    p.drive();
    assert_eq!(p.closed_with(), Some(Cond::ConnectionTimeout));
    assert_eq!(p.m.poll_timeout(), None);
}

#[test]
fn a_peer_stream_error_closes_without_an_answer() {
    let mut p = Peer::new(S2sPolicy::default());
    p.feed(HEADER);
    let before = p.wire.len();
    p.feed("<stream:error><host-gone xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
    assert!(p.m.is_closed());
    assert_eq!(p.wire.len(), before);
}

#[test]
fn dialback_error_reply_names_the_condition_type() {
    let mut p = Peer::over_tls(dialback_only());
    p.feed("<db:result from='a.example' to='b.example'>k</db:result>");
    p.m.dialback_verified(A, B, DialbackOutcome::Error(Sc::RemoteServerTimeout));
    p.drive();
    assert!(p.wire.ends_with(
        "type='error'><error type='wait'><remote-server-timeout \
         xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>"
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes, after a valid opening or not, in arbitrary chunks, never panic
    /// the machine, and it never emits a stanza nobody authenticated.
    #[test]
    fn arbitrary_input_never_panics(
        prefix in any::<bool>(),
        data in proptest::collection::vec(any::<u8>(), 0..2048),
        cut in 1usize..64,
    ) {
        let mut p = Peer::with(b_config(), S2sPolicy::default(), true);
        if prefix {
            p.feed(HEADER);
        }
        for chunk in data.chunks(cut) {
            p.m.receive(chunk, p.now);
            p.drive();
        }
        p.m.handle_timeout(p.now + Duration::from_secs(3600));
        p.drive();
        let stanzas = p.actions.iter().any(|a| matches!(a, ReceivingAction::Stanza { .. }));
        prop_assert!(!stanzas || !p.m.authenticated_domains().is_empty());
    }

    /// Arbitrary elements after a valid TLS opening: well-formed input with hostile
    /// content never panics either.
    #[test]
    fn arbitrary_elements_never_panic(
        name in "(result|verify|auth|message|starttls|response|x)",
        prefix in "(db:|)",
        attrs in "( from='[a-z.@]{0,12}'| to='[a-z.]{0,12}'| id='[a-z0-9]{0,4}'| type='(valid|invalid|error|)'| mechanism='EXTERNAL'){0,5}",
        text in "[a-zA-Z0-9=+/ ]{0,40}",
    ) {
        let mut p = Peer::over_tls(S2sPolicy::default());
        let xml = format!("<{prefix}{name}{attrs}>{text}</{prefix}{name}>");
        p.feed(&xml);
        for a in p.actions.clone() {
            match a {
                ReceivingAction::VerifyDialbackKey { remote, hosted, .. } => {
                    p.m.dialback_verified(&remote, &hosted, DialbackOutcome::Valid);
                }
                ReceivingAction::CheckDialbackKey { receiving, originating, stream_id, .. } => {
                    p.m.dialback_key_checked(&receiving, &originating, &stream_id, false);
                }
                _ => {}
            }
        }
        p.drive();
    }
}
