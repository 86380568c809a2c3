//! Initiating and receiving machines talking to each other.

use super::*;
use crate::stanza::StanzaErrorCondition as Sc;
use crate::stream_error::StreamErrorCondition as Cond;

#[test]
fn pkix_with_starttls_delivers_queued_stanzas() {
    let mut p = Pair::new(S2sPolicy::default(), Transport::Plain);
    let msg = message("alice@a.example", "bob@b.example", "hi");
    p.out.send_stanza(msg.clone()).expect("queued");
    assert_eq!(p.out.queued(), 1);
    p.run();
    assert_eq!(p.established(), [(A.to_string(), AuthMethod::Pkix)]);
    assert!(p.out.is_tls() && p.inb.is_tls());
    assert_eq!(p.inb.authenticated_domains(), [A]);
    assert_eq!(p.delivered(), [msg]);
    assert_eq!(p.out.queued(), 0);
    assert!(p.b_wire.contains("<mechanism>EXTERNAL</mechanism>"));
    assert!(p.a_wire.contains("mechanism='EXTERNAL'>=</auth>"));
    // After establishment stanzas go straight out.
    let later = message("alice@a.example", "bob@b.example", "again");
    p.out.send_stanza(later.clone()).expect("sent");
    p.run();
    assert_eq!(p.delivered().last(), Some(&later));
    assert_eq!(p.out.poll_timeout(), None);
    assert_eq!(p.inb.poll_timeout(), None);
}

#[test]
fn dialback_when_the_certificate_does_not_convince() {
    let mut p = Pair::new(S2sPolicy::default(), Transport::Plain);
    p.b_sees_cert = CertFacts {
        presented: true,
        valid_for_domain: false,
    };
    let msg = message("alice@a.example", "bob@b.example", "hi");
    p.out.send_stanza(msg.clone()).expect("queued");
    p.run();
    assert!(!p.b_wire.contains("EXTERNAL"));
    assert!(p
        .b_wire
        .contains("<dialback xmlns='urn:xmpp:features:dialback'><errors/>"));
    assert!(p
        .a_wire
        .contains("<db:result from='a.example' to='b.example'>"));
    assert!(p
        .b_wire
        .contains("<db:result from='b.example' to='a.example' type='valid'/>"));
    assert_eq!(p.established(), [(A.to_string(), AuthMethod::Dialback)]);
    assert_eq!(p.delivered(), [msg]);
    // The key B was asked to verify is the XEP-0185 key over B's stream id.
    let id = p.inb.stream_id().expect("stream id").to_string();
    let key = p.a_secret.key(B, A, &id);
    assert!(p.in_actions.contains(&ReceivingAction::VerifyDialbackKey {
        remote: A.into(),
        hosted: B.into(),
        stream_id: id,
        key,
    }));
}

#[test]
fn direct_tls_skips_starttls() {
    let mut p = Pair::new(dialback_only(), Transport::DirectTls(CertFacts::VALID));
    p.run();
    assert!(!p.a_wire.contains("starttls") && !p.b_wire.contains("starttls"));
    assert_eq!(p.established(), [(A.to_string(), AuthMethod::Dialback)]);
}

#[test]
fn invalid_dialback_closes_and_bounces_everything() {
    let mut p = Pair::new(dialback_only(), Transport::Plain);
    p.authority = Authority::Say(DialbackOutcome::Invalid);
    let m1 = message("alice@a.example", "bob@b.example", "1");
    let m2 = message("carol@a.example", "bob@b.example", "2");
    p.out.send_stanza(m1.clone()).expect("queued");
    p.out.send_stanza(m2.clone()).expect("queued");
    p.run();
    assert!(p.b_wire.contains("type='invalid'/></stream:stream>"));
    assert!(p.inb.is_closed() && p.inb.authenticated_domains().is_empty());
    let (reason, undelivered) = p.failed().expect("failed");
    assert_eq!(reason, FailReason::DialbackInvalid);
    assert_eq!(undelivered, [m1, m2]);
    assert!(p.delivered().is_empty());
    assert_eq!(p.out_actions.last(), Some(&InitiatingAction::Close));
    // Nothing is accepted any more; the stanza comes straight back.
    let m3 = message("alice@a.example", "bob@b.example", "3");
    assert_eq!(p.out.send_stanza(m3.clone()), Err(m3));
}

#[test]
fn a_dialback_error_on_the_primary_domain_bounces_too() {
    let mut p = Pair::new(dialback_only(), Transport::Plain);
    p.authority = Authority::Say(DialbackOutcome::Error(Sc::RemoteServerNotFound));
    let m = message("alice@a.example", "bob@b.example", "1");
    p.out.send_stanza(m.clone()).expect("queued");
    p.run();
    assert!(p.b_wire.contains("<remote-server-not-found"));
    let (reason, undelivered) = p.failed().expect("failed");
    assert_eq!(reason, FailReason::DialbackError(Sc::RemoteServerNotFound));
    assert_eq!(undelivered, [m]);
}

#[test]
fn two_sender_domains_share_one_stream() {
    let mut p = Pair::new(dialback_only(), Transport::Plain);
    p.run();
    assert!(p.out.is_established());
    assert!(p.out.add_sender_domain("chat.a.example", p.now));
    let from_chat = message("room@chat.a.example/nick", "bob@b.example", "muc");
    p.out.send_stanza(from_chat.clone()).expect("queued");
    let from_a = message("alice@a.example", "bob@b.example", "direct");
    p.out.send_stanza(from_a.clone()).expect("sent at once");
    assert_eq!(p.out.queued(), 1);
    p.run();
    assert_eq!(p.inb.authenticated_domains(), [A, "chat.a.example"]);
    assert_eq!(p.out.established_domains(), [A, "chat.a.example"]);
    assert_eq!(p.delivered(), [from_a, from_chat]);
    // A domain nobody authenticated is refused by the initiating side...
    let stray = message("x@c.example", "bob@b.example", "no");
    assert_eq!(p.out.send_stanza(stray.clone()), Err(stray));
    // ...and by the receiving side, should it be written anyway.
    p.inb
        .receive(b"<message from='x@c.example' to='bob@b.example'/>", p.now);
    assert_eq!(p.inb.error(), Some(Cond::InvalidFrom));
}

#[test]
fn a_refused_extra_domain_leaves_the_stream_up() {
    let mut p = Pair::new(dialback_only(), Transport::Plain);
    p.run();
    p.authority = Authority::Say(DialbackOutcome::Error(Sc::RemoteServerTimeout));
    assert!(p.out.add_sender_domain("chat.a.example", p.now));
    let m = message("room@chat.a.example", "bob@b.example", "muc");
    p.out.send_stanza(m.clone()).expect("queued");
    p.run();
    assert!(p.out_actions.contains(&InitiatingAction::DomainFailed {
        local: "chat.a.example".into(),
        outcome: DialbackOutcome::Error(Sc::RemoteServerTimeout),
        undelivered: vec![m],
    }));
    assert!(p.out.is_established() && !p.inb.is_closed());
    assert_eq!(p.inb.authenticated_domains(), [A]);
}

#[test]
fn tls_required_but_not_offered_bounces_the_queue() {
    let now = Instant::now();
    let cfg = Arc::new(a_config());
    let mut out = Initiating::new(cfg, A, B, S2sPolicy::default(), Transport::Plain, now);
    let m = message("alice@a.example", "bob@b.example", "1");
    out.send_stanza(m.clone()).expect("queued");
    out.receive(
        b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
          xmlns:db='jabber:server:dialback' from='b.example' id='s1' version='1.0'>\
          <stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>\
          </stream:features>",
        now,
    );
    let actions: Vec<_> = std::iter::from_fn(|| out.poll_action()).collect();
    assert!(actions.contains(&InitiatingAction::Failed {
        reason: FailReason::TlsUnavailable,
        undelivered: vec![m],
    }));
    assert_eq!(actions.last(), Some(&InitiatingAction::Close));
    assert!(!actions
        .iter()
        .any(|a| matches!(a, InitiatingAction::Send(s) if s.contains("db:result"))));
}

#[test]
fn pkix_only_against_a_dialback_only_peer_finds_no_method() {
    let mut p = Pair::new(pkix_only(), Transport::Plain);
    p.b_sees_cert = CertFacts::NONE;
    let m = message("alice@a.example", "bob@b.example", "1");
    p.out.send_stanza(m.clone()).expect("queued");
    p.run();
    assert_eq!(p.failed(), Some((FailReason::NoAuthMethod, vec![m])));
}

#[test]
fn a_slow_authority_gets_a_dialback_timeout_on_virtual_time() {
    let mut p = Pair::new(dialback_only(), Transport::Plain);
    p.authority = Authority::Silent;
    let m = message("alice@a.example", "bob@b.example", "1");
    p.out.send_stanza(m.clone()).expect("queued");
    p.run();
    let dialback_timeout = b_config().dialback_timeout;
    assert_eq!(p.inb.poll_timeout(), Some(p.now + dialback_timeout));
    p.advance(dialback_timeout - Duration::from_millis(1));
    assert!(p.failed().is_none());
    p.advance(Duration::from_millis(1));
    assert!(p.b_wire.contains("<remote-server-timeout"));
    let (reason, undelivered) = p.failed().expect("failed");
    assert_eq!(reason, FailReason::DialbackError(Sc::RemoteServerTimeout));
    assert_eq!(undelivered, [m]);
}

#[test]
fn negotiation_deadlines_close_both_sides() {
    let b = ReceivingConfig {
        dialback_timeout: Duration::from_secs(600),
        ..b_config()
    };
    let mut p = Pair::with(a_config(), b, dialback_only(), Transport::Plain);
    p.authority = Authority::Silent;
    let m = message("alice@a.example", "bob@b.example", "1");
    p.out.send_stanza(m.clone()).expect("queued");
    p.run();
    let deadline = p.out.poll_timeout().expect("deadline");
    p.advance(deadline - p.now);
    assert_eq!(
        p.failed(),
        Some((FailReason::LocalError(Cond::ConnectionTimeout), vec![m]))
    );
    assert_eq!(p.inb.error(), Some(Cond::ConnectionTimeout));
    assert_eq!(p.out.poll_timeout(), None);
}

#[test]
fn byte_by_byte_feeding_changes_nothing() {
    let run = |bytewise: bool| {
        let mut p = Pair::new(S2sPolicy::default(), Transport::Plain);
        p.bytewise = bytewise;
        p.out
            .send_stanza(message("alice@a.example", "bob@b.example", "x"))
            .expect("queued");
        p.run();
        assert_eq!(p.delivered().len(), 1);
        (p.a_wire, p.b_wire)
    };
    assert_eq!(run(true), run(false));
}

#[test]
fn verify_mode_asks_the_authoritative_server() {
    let now = Instant::now();
    for (key_ok, want) in [
        (true, DialbackOutcome::Valid),
        (false, DialbackOutcome::Invalid),
    ] {
        let b_secret = DialbackSecret::new(b"secret of b");
        let key = if key_ok {
            b_secret.key(A, B, "stream-7")
        } else {
            "00".repeat(32)
        };
        let cfg = Arc::new(a_config());
        let policy = S2sPolicy::default();
        let out = Initiating::verify(cfg, A, B, "stream-7", &key, policy, Transport::Plain, now);
        let mut p = Pair::around(out);
        p.run();
        assert!(p
            .a_wire
            .contains("<db:verify from='a.example' to='b.example' id='stream-7'>"));
        assert!(p
            .out_actions
            .contains(&InitiatingAction::VerifyResult { outcome: want }));
        assert!(p.out.is_closed());
        // Verifying is not authenticating.
        assert!(p.inb.authenticated_domains().is_empty());
    }
}

#[test]
fn the_queue_is_bounded_in_count_and_bytes() {
    let a = InitiatingConfig {
        max_queued_stanzas: 2,
        max_queued_bytes: 200,
        ..a_config()
    };
    let now = Instant::now();
    let mut out = Initiating::new(
        Arc::new(a),
        A,
        B,
        S2sPolicy::default(),
        Transport::Plain,
        now,
    );
    let small = |n: &str| message("a@a.example", "b@b.example", n);
    out.send_stanza(small("1")).expect("fits");
    let big = message("a@a.example", "b@b.example", &"x".repeat(200));
    assert_eq!(out.send_stanza(big.clone()), Err(big));
    out.send_stanza(small("2")).expect("fits");
    assert_eq!(out.send_stanza(small("3")), Err(small("3")));
    // A stanza from a domain this stream is not for is refused outright.
    let other = message("a@elsewhere.example", "b@b.example", "1");
    assert_eq!(out.send_stanza(other.clone()), Err(other));
    out.connection_lost();
    assert!(std::iter::from_fn(|| out.poll_action()).any(|a| a
        == InitiatingAction::Failed {
            reason: FailReason::ConnectionLost,
            undelivered: vec![small("1"), small("2")],
        }));
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let run = || {
        let mut p = Pair::new(dialback_only(), Transport::Plain);
        p.run();
        (p.a_wire, p.b_wire)
    };
    assert_eq!(run(), run());
}
