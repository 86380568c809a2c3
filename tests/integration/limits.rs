//! Bad input: every limit and every forbidden construct ends the offending stream with
//! the exact RFC 6120 §4.9.3 condition, and a bystander session on the same server keeps
//! working afterwards.

use std::time::Duration;

use herald_tests::{
    body_of, stanza_error, stanza_error_type, wait_until, Mechanism, TestServer, XmppClient,
    PASSWORD,
};
use herald_translate::ns;
use tokio::time::Instant;

/// A server with the users alice and bob, and bob logged in as `bob@localhost/desk`: the
/// bystander whose session must survive whatever alice does.
async fn setup(tune: impl FnOnce(&mut herald_edge::Config)) -> (TestServer, XmppClient) {
    let ts = TestServer::start_with(tune).await;
    ts.add_user("alice");
    ts.add_user("bob");
    let bob = ts.login("bob", "desk").await;
    (ts, bob)
}

/// Small limits with the pre-authentication one below the other.
fn small_stanzas(c: &mut herald_edge::Config) {
    c.c2s.max_stanza_bytes = 4096;
    c.c2s.max_stanza_bytes_preauth = 1024;
}

/// `<message>` to bob's session wrapping `inner`.
fn message_to_bob(inner: &str) -> String {
    format!("<message to='bob@localhost/desk' type='chat'>{inner}</message>")
}

/// Elements nested `depth` deep below the stanza, i.e. a stanza of depth `depth + 1`.
fn nested(depth: usize) -> String {
    let mut s = String::new();
    for i in 0..depth {
        s.push_str(&format!("<n{i} xmlns='urn:example:nest'>"));
    }
    for i in (0..depth).rev() {
        s.push_str(&format!("</n{i}>"));
    }
    s
}

#[tokio::test]
async fn stanza_over_max_stanza_bytes_after_auth_is_policy_violation() {
    let (ts, mut bob) = setup(small_stanzas).await;
    let mut alice = ts.login("alice", "r").await;
    // Above the pre-authentication limit but within the session limit: delivered.
    let big = "b".repeat(3000);
    alice
        .send(&message_to_bob(&format!("<body>{big}</body>")))
        .await;
    bob.recv_message_with_body(&big).await;
    // Over the session limit.
    let too_big = "x".repeat(5000);
    alice
        .send(&message_to_bob(&format!("<body>{too_big}</body>")))
        .await;
    assert_eq!(alice.expect_stream_error().await, "policy-violation");
    bob.assert_alive().await;
}

#[tokio::test]
async fn stanza_over_max_stanza_bytes_preauth_before_auth_is_policy_violation() {
    let (ts, mut bob) = setup(small_stanzas).await;
    let (mut c, _) = ts.connect_tls().await;
    let junk = "A".repeat(2000);
    c.send(&format!(
        "<auth xmlns='{}' mechanism='PLAIN'>{junk}</auth>",
        ns::SASL
    ))
    .await;
    assert_eq!(c.expect_stream_error().await, "policy-violation");
    bob.assert_alive().await;
}

#[tokio::test]
async fn stanza_deeper_than_max_depth_is_policy_violation() {
    let (ts, mut bob) = setup(|c| c.c2s.max_depth = 8).await;
    let mut alice = ts.login("alice", "r").await;
    // Depth 8 (the stanza is depth 1) is allowed.
    alice
        .send(&message_to_bob(&format!("<body>deep</body>{}", nested(7))))
        .await;
    bob.recv_message_with_body("deep").await;
    // Depth 9 is not.
    alice.send(&message_to_bob(&nested(8))).await;
    assert_eq!(alice.expect_stream_error().await, "policy-violation");
    bob.assert_alive().await;
}

#[tokio::test]
async fn element_with_too_many_attributes_is_policy_violation() {
    let (ts, mut bob) = setup(|c| c.c2s.max_attributes = 8).await;
    let mut alice = ts.login("alice", "r").await;
    let attrs = |n: usize| {
        let mut s = String::new();
        for i in 0..n {
            s.push_str(&format!(" a{i}='{i}'"));
        }
        s
    };
    // Exactly the limit is allowed.
    alice
        .send(&message_to_bob(&format!("<body{}>eight</body>", attrs(8))))
        .await;
    bob.recv_message_with_body("eight").await;
    alice
        .send(&message_to_bob(&format!("<body{}>nine</body>", attrs(9))))
        .await;
    assert_eq!(alice.expect_stream_error().await, "policy-violation");
    bob.assert_alive().await;
}

#[tokio::test]
async fn comment_is_restricted_xml() {
    let (ts, mut bob) = setup(|_| {}).await;
    let mut alice = ts.login("alice", "r").await;
    alice.send("<!-- a comment -->").await;
    assert_eq!(alice.expect_stream_error().await, "restricted-xml");
    bob.assert_alive().await;
}

#[tokio::test]
async fn processing_instruction_is_restricted_xml() {
    let (ts, mut bob) = setup(|_| {}).await;
    let mut alice = ts.login("alice", "r").await;
    alice
        .send(&message_to_bob("<body>x</body><?evil code?>"))
        .await;
    assert_eq!(alice.expect_stream_error().await, "restricted-xml");
    bob.assert_alive().await;
}

#[tokio::test]
async fn doctype_before_the_stream_header_is_restricted_xml() {
    let (ts, mut bob) = setup(|_| {}).await;
    let mut c = ts.connect().await;
    c.send(&format!(
        "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>]>\
         <stream:stream xmlns='{}' xmlns:stream='{}' to='localhost' version='1.0'>",
        ns::CLIENT,
        ns::STREAM
    ))
    .await;
    assert_eq!(c.expect_stream_error().await, "restricted-xml");
    bob.assert_alive().await;
}

#[tokio::test]
async fn entity_declaration_in_the_stream_is_restricted_xml() {
    let (ts, mut bob) = setup(|_| {}).await;
    let mut alice = ts.login("alice", "r").await;
    alice
        .send("<!ENTITY xxe SYSTEM 'file:///etc/passwd'>")
        .await;
    assert_eq!(alice.expect_stream_error().await, "restricted-xml");
    bob.assert_alive().await;
}

#[tokio::test]
async fn undeclared_entity_reference_is_restricted_xml() {
    let (ts, mut bob) = setup(|_| {}).await;
    let mut alice = ts.login("alice", "r").await;
    alice.send(&message_to_bob("<body>&xxe;</body>")).await;
    assert_eq!(alice.expect_stream_error().await, "restricted-xml");
    bob.assert_alive().await;
}

#[tokio::test]
async fn mismatched_end_tag_is_not_well_formed() {
    let (ts, mut bob) = setup(|_| {}).await;
    let mut alice = ts.login("alice", "r").await;
    alice
        .send("<message to='bob@localhost/desk'><body>hi</message>")
        .await;
    assert_eq!(alice.expect_stream_error().await, "not-well-formed");
    bob.assert_alive().await;
}

#[tokio::test]
async fn non_utf8_encoding_declaration_is_unsupported_encoding() {
    let (ts, mut bob) = setup(|_| {}).await;
    let mut c = ts.connect().await;
    c.send(&format!(
        "<?xml version='1.0' encoding='ISO-8859-1'?>\
         <stream:stream xmlns='{}' xmlns:stream='{}' to='localhost' version='1.0'>",
        ns::CLIENT,
        ns::STREAM
    ))
    .await;
    assert_eq!(c.expect_stream_error().await, "unsupported-encoding");
    bob.assert_alive().await;
}

#[tokio::test]
async fn wrong_stream_namespaces_are_invalid_namespace() {
    let (ts, mut bob) = setup(|_| {}).await;
    // The root is not in the streams namespace.
    let mut c = ts.connect().await;
    c.send(&format!(
        "<stream:stream xmlns='{}' xmlns:stream='urn:example:not-streams' to='localhost' \
         version='1.0'>",
        ns::CLIENT
    ))
    .await;
    assert_eq!(c.expect_stream_error().await, "invalid-namespace");
    // The content namespace is not jabber:client.
    let mut c = ts.connect().await;
    c.send(&format!(
        "<stream:stream xmlns='{}' xmlns:stream='{}' to='localhost' version='1.0'>",
        ns::SERVER,
        ns::STREAM
    ))
    .await;
    assert_eq!(c.expect_stream_error().await, "invalid-namespace");
    bob.assert_alive().await;
}

#[tokio::test]
async fn stanza_before_authentication_is_not_authorized() {
    let (ts, mut bob) = setup(|_| {}).await;
    let stanza = message_to_bob("<body>unauthenticated</body>");
    // Before TLS.
    let mut c = ts.connect().await;
    c.open_stream().await;
    c.send(&stanza).await;
    assert_eq!(c.expect_stream_error().await, "not-authorized");
    // After TLS, before SASL.
    let (mut c, _) = ts.connect_tls().await;
    c.send(&stanza).await;
    assert_eq!(c.expect_stream_error().await, "not-authorized");
    // After SASL, before bind.
    let (mut c, _) = ts.connect_tls().await;
    c.authenticate(Mechanism::ScramSha256, "alice", PASSWORD)
        .await
        .expect("authenticated");
    c.open_stream().await;
    c.send(&stanza).await;
    assert_eq!(c.expect_stream_error().await, "not-authorized");

    bob.assert_alive().await;
    assert!(
        bob.pending().all(|e| body_of(e).is_none()),
        "nothing unauthenticated reached bob"
    );
}

#[tokio::test]
async fn unknown_top_level_element_is_unsupported_stanza_type() {
    let (ts, mut bob) = setup(|_| {}).await;
    let mut alice = ts.login("alice", "r").await;
    alice.send("<note to='bob@localhost/desk'/>").await;
    assert_eq!(alice.expect_stream_error().await, "unsupported-stanza-type");
    bob.assert_alive().await;
}

/// On virtual time: the default 30 s negotiation timeout, waited out instantly.
#[tokio::test(start_paused = true)]
async fn negotiation_timeout_is_connection_timeout() {
    let (ts, mut bob) = setup(|c| c.c2s.negotiation_timeout_secs = 30).await;
    let patience = Duration::from_secs(40);
    let started = Instant::now();
    // Stalls after the features.
    let mut c = ts.connect().await.with_patience(patience);
    c.open_stream().await;
    assert_eq!(c.expect_stream_error().await, "connection-timeout");
    assert!(
        started.elapsed() >= Duration::from_secs(30),
        "not before the timeout"
    );
    // Stalls after TLS.
    let (c, _) = ts.connect_tls().await;
    let mut c = c.with_patience(patience);
    assert_eq!(c.expect_stream_error().await, "connection-timeout");
    // The bound session is past negotiation and unaffected.
    bob.assert_alive().await;
}

/// On virtual time: the default 600 s idle timeout, then a ping, then as long again.
#[tokio::test(start_paused = true)]
async fn idle_session_is_pinged_then_closed_with_connection_timeout() {
    let (ts, bob) = setup(|c| c.c2s.idle_timeout_secs = 600).await;
    let patience = Duration::from_secs(700);
    let mut bob = bob.with_patience(patience);
    let mut alice = ts.login("alice", "r").await.with_patience(patience);
    let logged_in = Instant::now();
    let is_ping = |e: &herald_translate::Element| {
        e.name == "iq" && e.attr("type") == Some("get") && e.has_child("ping", ns::PING)
    };
    // alice ignores the server's ping; bob answers his.
    let ping = alice.recv_where("the server's ping", is_ping).await;
    assert!(
        logged_in.elapsed() >= Duration::from_secs(600),
        "not before the idle timeout"
    );
    assert_eq!(ping.attr("from"), Some("localhost"));
    let ping = bob.recv_where("the server's ping", is_ping).await;
    let id = ping.attr("id").unwrap_or_default().to_string();
    bob.send(&format!("<iq type='result' id='{id}' to='localhost'/>"))
        .await;
    assert_eq!(alice.expect_stream_error().await, "connection-timeout");
    assert!(logged_in.elapsed() >= Duration::from_secs(1200));
    bob.assert_alive().await;
}

#[tokio::test]
async fn spoofed_from_is_invalid_from() {
    let (ts, mut bob) = setup(|_| {}).await;
    let mut alice = ts.login("alice", "r").await;
    // Her own bare and full JID are accepted as `from`.
    alice
        .send("<message from='alice@localhost' to='bob@localhost/desk'><body>own bare</body></message>")
        .await;
    bob.recv_message_with_body("own bare").await;
    alice
        .send("<message from='alice@localhost/r' to='bob@localhost/desk'><body>own full</body></message>")
        .await;
    bob.recv_message_with_body("own full").await;
    // Anybody else's is not.
    alice
        .send("<message from='bob@localhost/desk' to='bob@localhost/desk'><body>spoofed</body></message>")
        .await;
    assert_eq!(alice.expect_stream_error().await, "invalid-from");
    bob.assert_alive().await;
    assert!(bob
        .pending()
        .all(|e| body_of(e).as_deref() != Some("spoofed")));
}

#[tokio::test]
async fn unknown_iq_is_service_unavailable_and_the_stream_goes_on() {
    let (ts, mut bob) = setup(|_| {}).await;
    let mut alice = ts.login("alice", "r").await;
    let unknown = "<query xmlns='urn:example:unknown'/>";
    for (kind, to) in [
        ("get", None),
        ("set", None),
        ("get", Some("localhost")),
        ("get", Some("alice@localhost")),
        ("get", Some("bob@localhost")),
    ] {
        let reply = alice.iq(kind, to, unknown).await;
        assert_eq!(reply.attr("type"), Some("error"), "{kind} to {to:?}");
        assert_eq!(
            stanza_error(&reply).as_deref(),
            Some("service-unavailable"),
            "{kind} to {to:?}"
        );
        assert_eq!(stanza_error_type(&reply).as_deref(), Some("cancel"));
    }
    alice.assert_alive().await;
    bob.assert_alive().await;
}

/// On virtual time: the limiter's clock is tokio's, so refilling takes no wall time.
#[tokio::test(start_paused = true)]
async fn connection_rate_per_ip_closes_the_excess_connection_without_a_stream() {
    let (ts, mut bob) = setup(|c| {
        c.c2s.connections_per_ip_per_sec = 1;
        c.c2s.connections_per_ip_burst = 2;
    })
    .await;
    // bob's connection took one token; wait until the bucket is full again (one token per
    // second) so that exactly two quick connections pass.
    let refilled = Instant::now() + Duration::from_millis(1100);
    tokio::time::sleep_until(refilled).await;
    let mut first = ts.connect().await;
    let mut second = ts.connect().await;
    let mut third = ts.connect().await;
    third.expect_closed().await;
    assert_eq!(
        third.bytes_received(),
        0,
        "no stream on the refused connection"
    );
    first.open_stream().await;
    second.open_stream().await;
    bob.assert_alive().await;
}

/// On virtual time: shutdown waits for its connections to finish (a task tracker), not
/// for the grace period.
#[tokio::test(start_paused = true)]
async fn shutdown_sends_system_shutdown_to_every_client() {
    let (mut ts, mut bob) = setup(|_| {}).await;
    let mut alice = ts.login("alice", "r").await;
    let mut negotiating = ts.connect().await;
    negotiating.open_stream().await;

    let started = Instant::now();
    let shutdown = ts.shutdown(Duration::from_secs(60));
    // The clients read their stream errors while the server shuts down; a client that
    // does not answer with its own close is cut after the close timeout (2 s).
    let (_, a, b, n) = tokio::join!(
        shutdown,
        alice.expect_stream_error(),
        bob.expect_stream_error(),
        negotiating.expect_stream_error()
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "done before the grace period"
    );
    assert_eq!(a, "system-shutdown");
    assert_eq!(b, "system-shutdown");
    assert_eq!(n, "system-shutdown");
    assert!(
        tokio::net::TcpStream::connect(ts.starttls).await.is_err(),
        "the listener is closed"
    );
}

#[tokio::test]
async fn connections_over_max_connections_are_closed_without_a_stream() {
    let (ts, mut bob) = setup(|c| c.c2s.max_connections = 2).await;
    let mut second = ts.connect().await;
    second.open_stream().await;
    let mut third = ts.connect().await;
    third.expect_closed().await;
    assert_eq!(
        third.bytes_received(),
        0,
        "no stream on the refused connection"
    );
    // A slot frees up when a connection ends.
    second.close().await;
    let connections = ts.server.metrics.connections.clone();
    wait_until("the closed connection is released", || {
        connections.get() == 1
    })
    .await;
    let mut fourth = ts.connect().await;
    fourth.open_stream().await;
    bob.assert_alive().await;
}

#[tokio::test]
async fn malformed_address_is_jid_malformed_and_the_stream_goes_on() {
    let (ts, mut bob) = setup(|_| {}).await;
    let mut alice = ts.login("alice", "r").await;
    alice
        .send("<message to='a@b@localhost' id='bad-to' type='chat'><body>x</body></message>")
        .await;
    let reply = alice
        .recv_where("the error", |e| e.attr("id") == Some("bad-to"))
        .await;
    assert_eq!(reply.attr("type"), Some("error"));
    assert_eq!(stanza_error(&reply).as_deref(), Some("jid-malformed"));
    let reply = alice
        .iq("get", Some("@localhost"), "<ping xmlns='urn:xmpp:ping'/>")
        .await;
    assert_eq!(stanza_error(&reply).as_deref(), Some("jid-malformed"));
    alice.assert_alive().await;
    bob.assert_alive().await;
}

#[tokio::test]
async fn client_that_stops_reading_is_closed_when_its_queue_overflows() {
    let (ts, _bob) = setup(|c| c.c2s.send_queue = 16).await;
    // carol reads nothing once logged in; her socket buffer is small.
    ts.add_user("carol");
    let _carol = XmppClient::connect_plain_with_recv_buffer(ts.starttls, &ts.ca, 4096)
        .await
        .login("carol", PASSWORD, Some("slow"))
        .await;
    let mut alice = ts.login("alice", "r").await;
    let sessions = ts.server.metrics.sessions.clone();
    assert_eq!(sessions.get(), 3);

    // Fill carol's socket and then her queue: once the queue is full, messages to her
    // full JID fall back to offline storage, which is how we see it happened.
    let chunk = "z".repeat(60_000);
    let store = std::sync::Arc::clone(ts.server.db.store());
    let mut overflowed = false;
    for i in 0..400 {
        alice
            .send_message("carol@localhost/slow", &format!("{i} {chunk}"))
            .await;
        if i % 10 == 9 {
            alice.assert_alive().await;
            if store.offline_count("carol").unwrap_or(0) > 0 {
                overflowed = true;
                break;
            }
        }
    }
    assert!(overflowed, "carol's queue never filled up");
    // The documented policy: a session with a full queue is stuck and gets closed.
    wait_until("carol's stuck session is closed", || sessions.get() == 2).await;
}
