//! XEP-0198 stream management: acks, resumption after a dropped connection, and what
//! happens to unacknowledged messages when a session is not resumed.

use std::time::Duration;

use herald_tests::{body_of, wait_until, Mechanism, TestServer, XmppClient, PASSWORD};
use herald_translate::{ns, Element};

const ENABLE_RESUME: &str = "<enable xmlns='urn:xmpp:sm:3' resume='true'/>";

/// Enable stream management and return `<enabled/>`.
async fn enable(c: &mut XmppClient, request: &str) -> Element {
    c.send(request).await;
    c.recv_where("<enabled/>", |e| e.ns == ns::SM && e.name != "r")
        .await
}

/// Ask for an ack and return the server's `h`.
async fn request_ack(c: &mut XmppClient) -> u32 {
    c.send("<r xmlns='urn:xmpp:sm:3'/>").await;
    let a = c.recv_where("<a/>", |e| e.is("a", ns::SM)).await;
    a.attr("h")
        .and_then(|h| h.parse().ok())
        .unwrap_or_else(|| panic!("<a/> without a numeric h: {a:?}"))
}

/// Authenticate a new connection as `user` and stop where bind or resume can follow.
async fn authenticated(ts: &TestServer, user: &str) -> XmppClient {
    let (mut c, _) = ts.connect_tls().await;
    c.authenticate(Mechanism::ScramSha256, user, PASSWORD)
        .await
        .expect("authenticated");
    let features = c.open_stream().await;
    assert!(features.has_child("sm", ns::SM), "XEP-0198 is offered");
    c
}

#[tokio::test]
async fn enable_with_resume_and_count_acks() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut alice = ts.login("alice", "a").await;
    let mut bob = ts.login("bob", "b").await;

    let enabled = enable(&mut alice, ENABLE_RESUME).await;
    assert_eq!(enabled.name, "enabled", "{enabled:?}");
    assert_eq!(enabled.attr("resume"), Some("true"));
    assert!(enabled.attr("id").is_some_and(|id| !id.is_empty()));
    assert!(enabled.attr("max").is_some());
    assert_eq!(request_ack(&mut alice).await, 0, "nothing handled yet");

    // Three stanzas of the three kinds; the <r/> nonza itself is not counted.
    alice.send("<presence/>").await;
    alice.send_message("bob@localhost/b", "counted").await;
    alice.assert_alive().await;
    assert_eq!(request_ack(&mut alice).await, 3);
    bob.recv_message_with_body("counted").await;

    // The server counts what it sends too: two messages from bob (and the ping result
    // before them) make it ask for an ack.
    bob.send_message("alice@localhost/a", "one").await;
    bob.send_message("alice@localhost/a", "two").await;
    alice.recv_message_with_body("one").await;
    alice.recv_message_with_body("two").await;
    alice
        .recv_where("the server's <r/>", |e| e.is("r", ns::SM))
        .await;
    alice.send("<a xmlns='urn:xmpp:sm:3' h='3'/>").await;
    alice.assert_alive().await;

    // A second <enable/> is refused without ending the stream.
    let again = enable(&mut alice, ENABLE_RESUME).await;
    assert_eq!(again.name, "failed");
    assert!(again.has_child("unexpected-request", ns::STANZA_ERRORS));
    alice.assert_alive().await;
}

#[tokio::test]
async fn acking_more_than_was_sent_is_a_stream_error() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    let mut alice = ts.login("alice", "a").await;
    enable(&mut alice, "<enable xmlns='urn:xmpp:sm:3'/>").await;
    alice.send("<a xmlns='urn:xmpp:sm:3' h='5'/>").await;
    assert_eq!(alice.expect_stream_error().await, "undefined-condition");
}

#[tokio::test]
async fn resume_after_a_dropped_connection_resends_unacknowledged_stanzas() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut bob = ts.login("bob", "b").await;
    let mut alice = ts.login("alice", "a").await;
    let enabled = enable(&mut alice, ENABLE_RESUME).await;
    let id = enabled.attr("id").unwrap_or_default().to_string();
    alice.send("<presence/>").await;
    assert_eq!(request_ack(&mut alice).await, 1);

    bob.send_message("alice@localhost/a", "m1").await;
    bob.send_message("alice@localhost/a", "m2").await;
    alice.recv_message_with_body("m1").await;
    alice.recv_message_with_body("m2").await;
    // alice never acks them, and her connection dies.
    alice.abort();
    let connections = ts.server.metrics.connections.clone();
    wait_until("the server noticed the dropped connection", || {
        connections.get() == 1
    })
    .await;
    // Sent while nobody is connected for alice: kept for the detached session.
    bob.send_message("alice@localhost/a", "m3").await;
    bob.assert_alive().await;

    let mut alice = authenticated(&ts, "alice").await;
    // alice says she handled two stanzas (the echo of her own presence, RFC 6121
    // §4.2.2, and m1): everything after them comes again.
    alice
        .send(&format!(
            "<resume xmlns='urn:xmpp:sm:3' previd='{id}' h='2'/>"
        ))
        .await;
    let resumed = alice
        .recv_where("<resumed/>", |e| e.ns == ns::SM && e.name != "r")
        .await;
    assert_eq!(resumed.name, "resumed", "{resumed:?}");
    assert_eq!(resumed.attr("previd"), Some(id.as_str()));
    assert_eq!(
        resumed.attr("h"),
        Some("1"),
        "the server handled alice's presence"
    );
    for expected in ["m2", "m3"] {
        let m = alice.recv_message().await;
        assert_eq!(body_of(&m).as_deref(), Some(expected), "m1 is not resent");
        assert_eq!(m.attr("to"), Some("alice@localhost/a"));
    }
    alice.jid = "alice@localhost/a".to_string();

    // The resumed session is the old one: same JID, counters go on.
    alice.send_message("bob@localhost/b", "back").await;
    let m = bob.recv_message_with_body("back").await;
    assert_eq!(m.attr("from"), Some("alice@localhost/a"));
    assert_eq!(request_ack(&mut alice).await, 2);
}

#[tokio::test]
async fn resume_with_an_unknown_id_fails_and_bind_still_works() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    let mut alice = authenticated(&ts, "alice").await;
    alice
        .send("<resume xmlns='urn:xmpp:sm:3' previd='no-such-session' h='0'/>")
        .await;
    let failed = alice.recv().await;
    assert!(failed.is("failed", ns::SM), "{failed:?}");
    assert!(failed.has_child("item-not-found", ns::STANZA_ERRORS));
    alice
        .bind(Some("fresh"))
        .await
        .expect("bound after a failed resume");
    alice.assert_alive().await;
}

#[tokio::test]
async fn another_user_cannot_resume_a_session() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("mallory");
    let mut alice = ts.login("alice", "a").await;
    let id = enable(&mut alice, ENABLE_RESUME)
        .await
        .attr("id")
        .unwrap_or_default()
        .to_string();
    alice.abort();
    let connections = ts.server.metrics.connections.clone();
    wait_until("the server noticed the dropped connection", || {
        connections.get() == 0
    })
    .await;
    let mut mallory = authenticated(&ts, "mallory").await;
    mallory
        .send(&format!(
            "<resume xmlns='urn:xmpp:sm:3' previd='{id}' h='0'/>"
        ))
        .await;
    let failed = mallory.recv().await;
    assert!(failed.is("failed", ns::SM), "{failed:?}");
}

/// On virtual time: the default 300 s resumption window.
#[tokio::test(start_paused = true)]
async fn unacked_messages_of_a_session_not_resumed_in_time_go_offline() {
    let ts = TestServer::start_with(|c| c.c2s.sm_resume_timeout_secs = 300).await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut bob = ts.login("bob", "b").await;
    let mut alice = ts.login("alice", "a").await;
    enable(&mut alice, ENABLE_RESUME).await;
    alice.send("<presence/>").await;
    alice.assert_alive().await;
    bob.send_message("alice@localhost", "do not lose me").await;
    alice.recv_message_with_body("do not lose me").await;
    alice.abort();

    // Until the resume timeout the session waits; then the message goes where a message
    // to alice goes while she is offline: to storage.
    let store = std::sync::Arc::clone(ts.server.db.store());
    let connections = ts.server.metrics.connections.clone();
    wait_until("the server saw the connection drop", || {
        connections.get() == 1
    })
    .await;
    let dropped = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(299)).await;
    assert_eq!(
        store.offline_count("alice").ok(),
        Some(0),
        "still resumable"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    wait_until("the unacked message is stored offline", || {
        store.offline_count("alice").ok() == Some(1)
    })
    .await;
    assert!(dropped.elapsed() >= Duration::from_secs(300));

    let mut alice = ts.login("alice", "a").await;
    alice.send("<presence/>").await;
    let m = alice.recv_message().await;
    assert_eq!(body_of(&m).as_deref(), Some("do not lose me"));
    assert_eq!(m.attr("from"), Some("bob@localhost/b"));
    assert!(m.has_child("delay", ns::DELAY), "delivered late: {m:?}");
}

#[tokio::test]
async fn unacked_messages_of_a_dropped_session_without_resumption_go_offline() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut bob = ts.login("bob", "b").await;
    let mut alice = ts.login("alice", "a").await;
    enable(&mut alice, "<enable xmlns='urn:xmpp:sm:3'/>").await;
    alice.send("<presence/>").await;
    alice.assert_alive().await;
    bob.send_message("alice@localhost", "unacked").await;
    alice.recv_message_with_body("unacked").await;
    alice.abort();

    let store = std::sync::Arc::clone(ts.server.db.store());
    wait_until("the unacked message is stored offline", || {
        store.offline_count("alice").ok() == Some(1)
    })
    .await;
    let mut alice = ts.login("alice", "a").await;
    alice.send("<presence/>").await;
    alice.recv_message_with_body("unacked").await;
}

#[tokio::test]
async fn resume_while_the_old_connection_is_still_open_takes_it_over() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut bob = ts.login("bob", "b").await;
    let mut old = ts.login("alice", "a").await;
    let id = enable(&mut old, ENABLE_RESUME)
        .await
        .attr("id")
        .unwrap_or_default()
        .to_string();
    bob.send_message("alice@localhost/a", "pending").await;
    old.recv_message_with_body("pending").await;

    // The client moved to another network; the server has not noticed the old
    // connection is dead yet.
    let mut new = authenticated(&ts, "alice").await;
    new.send(&format!(
        "<resume xmlns='urn:xmpp:sm:3' previd='{id}' h='0'/>"
    ))
    .await;
    let answer = new
        .recv_where("<resumed/>", |e| e.ns == ns::SM && e.name != "r")
        .await;
    assert_eq!(answer.name, "resumed", "{answer:?}");
    new.recv_message_with_body("pending").await;
    assert_eq!(old.expect_stream_error().await, "conflict");
}
