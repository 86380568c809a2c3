//! SIP MESSAGE delivery: to registered devices after a restart, offline storage for a
//! user without devices, and the SIP <-> XMPP gateway.

use std::time::Duration;

use herald_tests::sip_client::{body, code, header, sip_server, text, SipTransport, SIP_PATIENCE};
use herald_tests::{body_of, TestServer};
use herald_translate::ns;
use tokio::time::Instant;

/// Poll `check` until it holds, at most [`SIP_PATIENCE`].
async fn poll(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + SIP_PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn offline_count(ts: &TestServer, user: &str) -> usize {
    ts.server
        .db
        .store()
        .offline_count(user)
        .expect("offline count")
}

#[tokio::test]
async fn registrations_survive_a_restart() {
    let mut first = sip_server(|_| {}).await;
    let mut bob = first.sip_client("bob", SipTransport::Udp).await;
    bob.register_ok(600).await;
    // A restart on the same data directory (the first server's data stays until it is
    // dropped, after the second).
    first.shutdown(Duration::from_secs(2)).await;
    let dir = first.data_dir.clone();
    let second = TestServer::start_with(|c| {
        herald_tests::sip_client::sip_on_loopback(c);
        c.server.data_dir = dir;
    })
    .await;
    let mut alice = second.sip_client("alice", SipTransport::Udp).await;
    let r = alice
        .message("bob", "text/plain", "still there after the restart?")
        .await;
    assert_eq!(code(&r), 200, "{}", text(&r));
    let m = bob.recv_request("MESSAGE").await;
    assert_eq!(body(&m), "still there after the restart?", "{}", text(&m));
    assert!(
        header(&m, "From").is_some_and(|f| f.contains("alice@localhost")),
        "{}",
        text(&m)
    );
    let uri = m
        .request_line()
        .map(|l| l.uri.to_string())
        .unwrap_or_default();
    assert!(
        uri.contains(&bob.local.to_string()),
        "sent to the Contact: {uri}"
    );
    bob.respond(&m, 200, "OK").await;
    // Accepted: nothing was stored offline.
    assert_eq!(offline_count(&second, "bob"), 0);
    drop(second);
}

#[tokio::test]
async fn a_message_for_a_user_without_devices_waits_for_their_registration() {
    let ts = sip_server(|_| {}).await;
    let mut alice = ts.sip_client("alice", SipTransport::Udp).await;
    let r = alice.message("bob", "text/plain", "read me later").await;
    assert_eq!(code(&r), 200, "stored offline: {}", text(&r));
    assert_eq!(offline_count(&ts, "bob"), 1, "stored before the 200");

    let mut bob = ts.sip_client("bob", SipTransport::Udp).await;
    bob.register_ok(600).await;
    let m = bob.recv_request("MESSAGE").await;
    assert_eq!(body(&m), "read me later", "{}", text(&m));
    bob.respond(&m, 200, "OK").await;
    poll("the delivered message is deleted", || {
        offline_count(&ts, "bob") == 0
    })
    .await;

    // A new registration (after unregistering) does not bring it back.
    let r = bob.register(0).await;
    assert_eq!(code(&r), 200, "{}", text(&r));
    bob.register_ok(600).await;
    assert!(
        bob.request_within("MESSAGE", Duration::from_secs(2))
            .await
            .is_none(),
        "delivered once only"
    );
}

#[tokio::test]
async fn a_device_that_refuses_leaves_the_message_stored() {
    let ts = sip_server(|_| {}).await;
    let mut alice = ts.sip_client("alice", SipTransport::Udp).await;
    let r = alice.message("bob", "text/plain", "try again").await;
    assert_eq!(code(&r), 200, "{}", text(&r));
    let mut bob = ts.sip_client("bob", SipTransport::Udp).await;
    bob.register_ok(600).await;
    let m = bob.recv_request("MESSAGE").await;
    bob.respond(&m, 486, "Busy Here").await;
    // Refused: it stays (released for the next attempt).
    let r = bob.register(0).await;
    assert_eq!(code(&r), 200, "{}", text(&r));
    assert_eq!(offline_count(&ts, "bob"), 1);
    bob.register_ok(600).await;
    let m = bob.recv_request("MESSAGE").await;
    assert_eq!(body(&m), "try again");
    bob.respond(&m, 200, "OK").await;
    poll("the delivered message is deleted", || {
        offline_count(&ts, "bob") == 0
    })
    .await;
}

#[tokio::test]
async fn sip_and_xmpp_users_message_each_other() {
    let ts = sip_server(|_| {}).await;
    let mut bob = ts.login("bob", "desk").await;
    bob.send("<presence/>").await;
    // Bob's own presence comes back: he is online.
    bob.recv_where("bob's own presence", |e| {
        e.is("presence", ns::CLIENT) && e.attr("from") == Some("bob@localhost/desk")
    })
    .await;
    let mut alice = ts.sip_client("alice", SipTransport::Tcp).await;
    alice.register_ok(600).await;

    let r = alice.message("bob", "text/plain", "hello from SIP").await;
    assert_eq!(code(&r), 200, "{}", text(&r));
    let m = bob.recv_message_with_body("hello from SIP").await;
    let from = m.attr("from").unwrap_or_default().to_owned();
    assert!(from.starts_with("alice@localhost"), "{from}");
    assert_eq!(m.attr("type"), Some("chat"));

    bob.send(&format!(
        "<message to='{from}' type='chat' id='r1'><body>hello from XMPP</body></message>"
    ))
    .await;
    let m = alice
        .recv_request_where("MESSAGE", |m| body(m) == "hello from XMPP")
        .await;
    assert!(
        header(&m, "From").is_some_and(|f| f.contains("bob@localhost")),
        "{}",
        text(&m)
    );
    assert!(
        header(&m, "Content-Type").is_some_and(|t| t.starts_with("text/plain")),
        "{}",
        text(&m)
    );
    alice.respond(&m, 200, "OK").await;
    assert_eq!(offline_count(&ts, "alice"), 0);
    // And a message to the bare JID, while only the SIP device is online for alice.
    bob.send("<message to='alice@localhost' type='chat'><body>bare</body></message>")
        .await;
    let m = alice
        .recv_request_where("MESSAGE", |m| body(m) == "bare")
        .await;
    alice.respond(&m, 200, "OK").await;
    // Nothing bounced back to bob.
    while let Some(e) = bob.recv_within(Duration::from_millis(300)).await {
        assert!(
            herald_tests::stanza_error(&e).is_none() && body_of(&e).is_none(),
            "{}",
            herald_tests::xml(&e, ns::CLIENT)
        );
    }
}
