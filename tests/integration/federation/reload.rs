//! SIGHUP with federation: rules swapped under running streams, denied streams closed.

use super::*;

use herald_core::metrics_s2s::Direction as StreamDir;
use herald_rules::federation::{AclRule, RuleDirection};

/// An ACL rule that denies `domain` in `direction`.
fn deny(domain: &str, direction: RuleDirection) -> AclRule {
    AclRule {
        pattern: DomainPattern::parse(domain).expect("pattern"),
        action: AclAction::Deny,
        direction,
    }
}

/// `from` sends `to` a message with `text`, which arrives.
async fn deliver(from: &mut XmppClient, to: &mut XmppClient, text: &str) {
    from.send_message(&to.jid.clone(), text).await;
    let got = to.recv_message_with_body(text).await;
    assert_eq!(got.attr("from"), Some(from.jid.as_str()));
}

/// Whether `server` has a live stream with `domain` in `dir`.
fn has_stream(server: &TestServer, domain: &str, dir: StreamDir) -> bool {
    server
        .s2s_streams()
        .iter()
        .any(|(_, d, s)| d == domain && *s == dir)
}

/// Streams both ways; a reload at `a.example` that denies `b.example` closes both of
/// its streams with it (the inbound one with `policy-violation`), while alice's client
/// session stays; messages bounce until a second reload lifts the deny.
#[tokio::test]
async fn a_reload_that_denies_a_peer_closes_its_streams_and_lifting_it_restores_them() {
    let (mut a, b) = pair(|_| {}).await;
    let (mut alice, mut bob) = users(&a, &b).await;
    deliver(&mut alice, &mut bob, "before, a to b").await;
    deliver(&mut bob, &mut alice, "before, b to a").await;
    assert!(has_stream(&a, B, StreamDir::Out) && has_stream(&a, B, StreamDir::In));

    let restart = a
        .reload(|c| c.s2s.acl = vec![deny(B, RuleDirection::Both)])
        .expect("the reload");
    assert!(
        restart.is_empty(),
        "nothing waits for a restart: {restart:?}"
    );
    herald_tests::wait_until("a.example has no stream with b.example", || {
        a.s2s_streams().is_empty()
    })
    .await;
    herald_tests::wait_until("b.example has no stream with a.example", || {
        b.s2s_streams().is_empty()
    })
    .await;
    let text = a.server.metrics.render();
    for line in [
        "herald_s2s_streams{domain=\"b.example\",direction=\"out\"} 0",
        "herald_s2s_streams{domain=\"b.example\",direction=\"in\"} 0",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
    // Alice's session is untouched: the bounce reaches her on it.
    alice.send_message(&bob.jid.clone(), "denied now").await;
    assert_eq!(recv_error(&mut alice).await, "not-allowed");
    // (bob is not made to try now: a refused attempt would put b.example's queue for
    // a.example into back-off, which outlasts this test.)

    a.reload(|c| c.s2s.acl.clear()).expect("the second reload");
    deliver(&mut alice, &mut bob, "after, a to b").await;
    deliver(&mut bob, &mut alice, "after, b to a").await;
}

/// A deny for one direction closes only the stream in that direction: the stream
/// from `b.example` stays and still carries bob's messages.
#[tokio::test]
async fn a_reload_denying_one_direction_leaves_the_other_stream() {
    let (mut a, b) = pair(|_| {}).await;
    let (mut alice, mut bob) = users(&a, &b).await;
    deliver(&mut alice, &mut bob, "out").await;
    deliver(&mut bob, &mut alice, "in").await;
    let inbound: Vec<u64> = a
        .s2s_streams()
        .into_iter()
        .filter(|(_, _, dir)| *dir == StreamDir::In)
        .map(|(id, _, _)| id)
        .collect();
    assert_eq!(inbound.len(), 1, "{:?}", a.s2s_streams());

    a.reload(|c| c.s2s.acl = vec![deny(B, RuleDirection::Outbound)])
        .expect("the reload");
    herald_tests::wait_until("a.example's stream to b.example closes", || {
        !has_stream(&a, B, StreamDir::Out)
    })
    .await;
    deliver(&mut bob, &mut alice, "still in").await;
    let after: Vec<u64> = a.s2s_streams().into_iter().map(|(id, _, _)| id).collect();
    assert_eq!(after, inbound, "the same inbound stream, and no other");
    alice.send_message(&bob.jid.clone(), "not out").await;
    assert_eq!(recv_error(&mut alice).await, "not-allowed");
}

/// A reload that changes only limits keeps the streams: messages still cross on the
/// same ones, and the new limits are in force for the next stream.
#[tokio::test]
async fn a_reload_of_limits_keeps_the_streams() {
    let (mut a, b) = pair(|_| {}).await;
    let (mut alice, mut bob) = users(&a, &b).await;
    deliver(&mut alice, &mut bob, "first out").await;
    deliver(&mut bob, &mut alice, "first in").await;
    let before = a.s2s_streams();
    assert_eq!(before.len(), 2, "{before:?}");

    let restart = a
        .reload(|c| {
            c.s2s.limits.stanzas_per_sec = 500;
            c.s2s.limits.max_connections = 7;
        })
        .expect("the reload");
    assert!(restart.is_empty(), "{restart:?}");
    deliver(&mut alice, &mut bob, "second out").await;
    deliver(&mut bob, &mut alice, "second in").await;
    assert_eq!(a.s2s_streams(), before, "no stream was replaced");
    let text = a.server.metrics.render();
    let line = "herald_s2s_streams{domain=\"b.example\",direction=\"out\"} 1";
    assert!(text.contains(line), "{line} in:\n{text}");
}

/// A reload whose trust anchors do not load is refused as a whole: the error comes
/// back, the ACL change in the same file is not applied, and the streams stay.
#[tokio::test]
async fn a_reload_that_fails_keeps_the_old_rules() {
    let (mut a, b) = pair(|_| {}).await;
    let (mut alice, mut bob) = users(&a, &b).await;
    // Both directions up before the snapshot, so no stream is still being set up.
    deliver(&mut alice, &mut bob, "before").await;
    deliver(&mut bob, &mut alice, "before, back").await;
    let before = a.s2s_streams();

    let missing = a.data_dir.join("no-such-ca.pem");
    let refused = a.reload(|c| {
        c.s2s.trust = vec![missing.clone()];
        c.s2s.acl = vec![deny(B, RuleDirection::Both)];
    });
    assert!(refused.is_err(), "a missing trust file is an error");
    assert!(a.s2s_streams() == before, "the streams stay");
    deliver(&mut alice, &mut bob, "after").await;
    deliver(&mut bob, &mut alice, "and back").await;
}

/// An inbound stream a reload denies ends with `policy-violation` saying why; the
/// other sessions stay.
#[tokio::test]
async fn a_denied_inbound_stream_ends_with_policy_violation() {
    let (mut b, mut bob, mut peer, mut seen) = evil_peer().await;
    assert!(has_stream(&b, "evil.example", StreamDir::In));
    b.reload(|c| c.s2s.acl = vec![deny("evil.example", RuleDirection::Inbound)])
        .expect("the reload");
    read_until(&mut peer, &mut seen, "</stream:stream>").await;
    assert!(seen.contains("<policy-violation"), "{seen}");
    assert!(
        seen.contains("federation with evil.example is no longer allowed"),
        "{seen}"
    );
    herald_tests::wait_until("the stream leaves the registry", || {
        b.s2s_streams().is_empty()
    })
    .await;
    let line = "herald_s2s_acl_denials_total{domain=\"evil.example\",direction=\"in\"} 1";
    let text = b.server.metrics.render();
    assert!(text.contains(line), "{line} in:\n{text}");
    // Bob's client session is untouched.
    bob.send_message("bob@b.example/phone", "still here").await;
    bob.recv_message_with_body("still here").await;
}
