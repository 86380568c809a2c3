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

/// A device registered over TCP or TLS gets its messages on that connection (its
/// Contact port is not listening: only the flow reaches it).
#[tokio::test]
async fn devices_on_tcp_and_tls_get_messages_over_their_connection() {
    let ts = sip_server(|_| {}).await;
    let mut alice = ts.sip_client("alice", SipTransport::Udp).await;
    for transport in [SipTransport::Tcp, SipTransport::Tls] {
        let mut bob = ts.sip_client("bob", transport).await;
        bob.register_ok(600).await;
        let words = format!("over {transport:?}");
        let r = alice.message("bob", "text/plain", &words).await;
        assert_eq!(code(&r), 200, "{}", text(&r));
        let m = bob.recv_request("MESSAGE").await;
        assert_eq!(body(&m), words, "{}", text(&m));
        bob.respond(&m, 200, "OK").await;
        let r = bob.register(0).await;
        assert_eq!(code(&r), 200, "{}", text(&r));
    }
    assert_eq!(offline_count(&ts, "bob"), 0);
}

/// A device whose connection is gone cannot be reached: the message is stored offline
/// (alice's 200 meant it would not be lost).
#[tokio::test]
async fn a_message_for_a_device_whose_connection_closed_is_stored() {
    let ts = sip_server(|_| {}).await;
    let mut bob = ts.sip_client("bob", SipTransport::Tcp).await;
    bob.register_ok(600).await;
    drop(bob);
    let mut alice = ts.sip_client("alice", SipTransport::Udp).await;
    let r = alice.message("bob", "text/plain", "anyone there?").await;
    assert_eq!(code(&r), 200, "{}", text(&r));
    poll("the undeliverable message is stored offline", || {
        offline_count(&ts, "bob") == 1
    })
    .await;
    // An XMPP login gets it.
    let mut bob_xmpp = ts.login("bob", "desk").await;
    bob_xmpp.send("<presence/>").await;
    bob_xmpp.recv_message_with_body("anyone there?").await;
}

/// A message to an XMPP user who is offline is stored and delivered at login.
#[tokio::test]
async fn a_sip_message_to_an_offline_xmpp_user_is_delivered_at_login() {
    let ts = sip_server(|_| {}).await;
    let mut alice = ts.sip_client("alice", SipTransport::Udp).await;
    let r = alice
        .message("carol", "text/plain; charset=UTF-8", "grüße")
        .await;
    assert_eq!(code(&r), 200, "{}", text(&r));
    assert_eq!(offline_count(&ts, "carol"), 1, "stored before the 200");
    let mut carol = ts.login("carol", "desk").await;
    carol.send("<presence/>").await;
    let m = carol.recv_message_with_body("grüße").await;
    assert!(
        m.attr("from")
            .is_some_and(|f| f.starts_with("alice@localhost")),
        "{}",
        herald_tests::xml(&m, ns::CLIENT)
    );
}

/// A MESSAGE whose From is not the authenticated user is refused.
#[tokio::test]
async fn a_message_from_someone_else_is_forbidden() {
    let ts = sip_server(|_| {}).await;
    let mut alice = ts.sip_client("alice", SipTransport::Udp).await;
    let uri = "sip:carol@localhost";
    let call_id = herald_tests::sip_client::token("m");
    let extra = ["Content-Type: text/plain".to_owned()];
    let first = alice
        .transact(
            "MESSAGE",
            uri,
            "<sip:carol@localhost>",
            &call_id,
            "t1",
            &extra,
            "x",
        )
        .await;
    let (challenge, header_name) =
        herald_tests::sip_client::challenge_of(&first, herald_translate::digest::Algorithm::Md5)
            .unwrap_or_else(|| panic!("a challenge: {}", text(&first)));
    let creds = alice.credentials(&challenge, "MESSAGE", uri, herald_tests::PASSWORD, None);
    let cseq = alice.next_cseq();
    let mut extra = extra.to_vec();
    extra.push(format!("{header_name}: {creds}"));
    let request = alice
        .request_text(
            "MESSAGE",
            uri,
            "<sip:carol@localhost>",
            &call_id,
            cseq,
            "t1",
            &extra,
            "x",
        )
        .replace("From: <sip:alice@localhost>", "From: <sip:bob@localhost>");
    alice.send_raw(request.as_bytes()).await;
    let r = alice.response_to(&call_id, cseq).await;
    assert_eq!(code(&r), 403, "{}", text(&r));
    assert_eq!(offline_count(&ts, "carol"), 0, "nothing was routed");
}

/// A user whose device published presence before registering (so their SIP session
/// already ran, with no device to send to) still gets the stored messages when the
/// registration starts.
#[tokio::test]
async fn stored_messages_reach_a_device_that_registers_after_publishing() {
    let ts = sip_server(|_| {}).await;
    let mut alice = ts.sip_client("alice", SipTransport::Udp).await;
    let r = alice.message("bob", "text/plain", "waiting for you").await;
    assert_eq!(code(&r), 200, "{}", text(&r));
    let mut bob = ts.sip_client("bob", SipTransport::Udp).await;
    let aor = bob.aor();
    let r = bob
        .authed(
            "PUBLISH",
            &aor,
            &format!("<{aor}>"),
            &herald_tests::sip_client::token("pub"),
            "p1",
            &[
                "Event: presence".to_owned(),
                "Expires: 600".to_owned(),
                "Content-Type: application/pidf+xml".to_owned(),
            ],
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:bob@localhost'>\
             <tuple id='t'><status><basic>open</basic></status></tuple></presence>",
        )
        .await;
    assert_eq!(code(&r), 200, "{}", text(&r));
    assert_eq!(offline_count(&ts, "bob"), 1);
    bob.register_ok(600).await;
    let m = bob.recv_request("MESSAGE").await;
    assert_eq!(body(&m), "waiting for you", "{}", text(&m));
    bob.respond(&m, 200, "OK").await;
    poll("the delivered message is deleted", || {
        offline_count(&ts, "bob") == 0
    })
    .await;
}

/// With two devices, a message goes to the preferred one (highest q) first, and to
/// the other when the first refuses it.
#[tokio::test]
async fn a_message_refused_by_one_device_goes_to_the_next() {
    let ts = sip_server(|_| {}).await;
    let mut desk = ts.sip_client("bob", SipTransport::Udp).await;
    desk.contact_params = ";q=0.9".into();
    desk.register_ok(600).await;
    let mut phone = ts.sip_client("bob", SipTransport::Udp).await;
    phone.contact_params = ";q=0.4".into();
    phone.register_ok(600).await;
    let mut alice = ts.sip_client("alice", SipTransport::Udp).await;
    let r = alice.message("bob", "text/plain", "first choice").await;
    assert_eq!(code(&r), 200, "{}", text(&r));
    let m = desk.recv_request("MESSAGE").await;
    assert_eq!(body(&m), "first choice");
    desk.respond(&m, 480, "Temporarily Unavailable").await;
    let m = phone.recv_request("MESSAGE").await;
    assert_eq!(body(&m), "first choice");
    phone.respond(&m, 200, "OK").await;
    assert!(
        desk.request_within("MESSAGE", Duration::from_millis(500))
            .await
            .is_none(),
        "accepted once"
    );
    assert_eq!(offline_count(&ts, "bob"), 0);
}

/// A CPIM-wrapped text (RFC 3862) reaches XMPP as its text, with the subject; a reply
/// in non-ASCII text reaches SIP as UTF-8 text/plain.
#[tokio::test]
async fn cpim_and_unicode_cross_the_gateway() {
    let ts = sip_server(|_| {}).await;
    let mut bob = ts.login("bob", "desk").await;
    bob.send("<presence/>").await;
    bob.recv_where("bob's own presence", |e| {
        e.is("presence", ns::CLIENT) && e.attr("from") == Some("bob@localhost/desk")
    })
    .await;
    let mut alice = ts.sip_client("alice", SipTransport::Udp).await;
    alice.register_ok(600).await;
    let cpim = "From: <sip:alice@localhost>\r\nTo: <sip:bob@localhost>\r\n\
                DateTime: 2026-11-30T06:00:00Z\r\n\r\n\
                Content-Type: text/plain; charset=UTF-8\r\n\r\n\
                wrapped text";
    let r = alice.message("bob", "message/cpim", cpim).await;
    assert_eq!(code(&r), 200, "{}", text(&r));
    bob.recv_message_with_body("wrapped text").await;

    bob.send("<message to='alice@localhost' type='chat'><body>Zürich → 東京 ✓</body></message>")
        .await;
    let m = alice.recv_request("MESSAGE").await;
    alice.respond(&m, 200, "OK").await;
    assert_eq!(
        String::from_utf8(m.body.clone()).ok().as_deref(),
        Some("Zürich → 東京 ✓"),
        "{}",
        text(&m)
    );
    let ct = header(&m, "Content-Type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        ct.starts_with("text/plain") && (ct.contains("charset=utf-8") || !ct.contains("charset")),
        "{ct}"
    );
}
