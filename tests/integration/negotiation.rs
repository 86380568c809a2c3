//! Stream negotiation (RFC 6120 §4-§7, XEP-0368): STARTTLS, SASL, resource binding.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use herald_tests::{stanza_error, Mechanism, TestServer, XmppClient, PASSWORD};
use herald_translate::sasl::plain_encode;
use herald_translate::{ns, Element};

fn mechanisms(features: &Element) -> Vec<String> {
    features
        .child("mechanisms", ns::SASL)
        .map(|m| m.elements().map(Element::text).collect())
        .unwrap_or_default()
}

/// STARTTLS, then `mechanism`, then bind `phone`.
async fn login_with(ts: &TestServer, mechanism: Mechanism) -> XmppClient {
    let (mut c, features) = ts.connect_tls().await;
    assert_eq!(
        mechanisms(&features),
        ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"],
        "mechanisms offered over TLS"
    );
    c.authenticate(mechanism, "alice", PASSWORD)
        .await
        .expect("authenticated");
    let features = c.open_stream().await;
    assert!(
        features.has_child("bind", ns::BIND),
        "bind is offered after SASL"
    );
    assert!(
        features.has_child("sm", ns::SM),
        "stream management is offered"
    );
    assert!(!features.has_child("mechanisms", ns::SASL), "SASL is over");
    let jid = c.bind(Some("phone")).await.expect("bound");
    assert_eq!(jid, "alice@localhost/phone");
    c
}

#[tokio::test]
async fn starttls_is_required_before_authentication() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    let mut c = ts.connect().await;
    let features = c.open_stream().await;
    let starttls = features
        .child("starttls", ns::TLS)
        .expect("STARTTLS is offered");
    assert!(starttls.has_child("required", ns::TLS), "and required");
    assert!(mechanisms(&features).is_empty(), "no SASL before TLS");

    // Credentials in the clear are refused, with either mechanism.
    assert_eq!(
        c.authenticate(Mechanism::Plain, "alice", PASSWORD).await,
        Err("encryption-required".to_string())
    );
    assert_eq!(
        c.authenticate(Mechanism::ScramSha256, "alice", PASSWORD)
            .await,
        Err("encryption-required".to_string())
    );

    // The same connection can still upgrade and log in.
    c.starttls().await;
    c.open_stream().await;
    c.authenticate(Mechanism::ScramSha256, "alice", PASSWORD)
        .await
        .expect("authenticated after STARTTLS");
    c.open_stream().await;
    c.bind(Some("r")).await.expect("bound");
    c.assert_alive().await;
}

#[tokio::test]
async fn scram_sha_256_login() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    let mut c = login_with(&ts, Mechanism::ScramSha256).await;
    c.assert_alive().await;
}

#[tokio::test]
async fn scram_sha_1_login() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    let mut c = login_with(&ts, Mechanism::ScramSha1).await;
    c.assert_alive().await;
}

#[tokio::test]
async fn plain_login_over_tls() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    let mut c = login_with(&ts, Mechanism::Plain).await;
    c.assert_alive().await;
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_not_authorized() {
    let ts = TestServer::start_with(|c| c.c2s.max_auth_attempts = 5).await;
    ts.add_user("alice");
    let (mut c, _) = ts.connect_tls().await;
    for mechanism in [
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::Plain,
    ] {
        assert_eq!(
            c.authenticate(mechanism, "alice", "wrong").await,
            Err("not-authorized".to_string()),
            "{mechanism:?} with a wrong password"
        );
    }
    assert_eq!(
        c.authenticate(Mechanism::ScramSha256, "mallory", PASSWORD)
            .await,
        Err("not-authorized".to_string()),
        "unknown user"
    );
    // A failed attempt does not end the stream: the right password still works.
    c.authenticate(Mechanism::ScramSha256, "alice", PASSWORD)
        .await
        .expect("authenticated after failures");
    c.open_stream().await;
    c.bind(Some("r")).await.expect("bound");
    c.assert_alive().await;
}

#[tokio::test]
async fn too_many_failed_authentications_close_the_stream() {
    let ts = TestServer::start_with(|c| c.c2s.max_auth_attempts = 2).await;
    ts.add_user("alice");
    let (mut c, _) = ts.connect_tls().await;
    assert_eq!(
        c.authenticate(Mechanism::Plain, "alice", "wrong").await,
        Err("not-authorized".to_string())
    );
    assert_eq!(
        c.authenticate(Mechanism::Plain, "alice", "wrong").await,
        Err("not-authorized".to_string())
    );
    assert_eq!(c.expect_stream_error().await, "policy-violation");
}

#[tokio::test]
async fn unknown_host_in_to_is_host_unknown() {
    let ts = TestServer::start().await;
    let mut c = ts.connect().await;
    c.send_header_to("example.org").await;
    assert_eq!(c.expect_stream_error().await, "host-unknown");
}

#[tokio::test]
async fn stream_without_version_is_unsupported_version() {
    let ts = TestServer::start().await;
    let mut c = ts.connect().await;
    c.send(&format!(
        "<stream:stream xmlns='{}' xmlns:stream='{}' to='localhost'>",
        ns::CLIENT,
        ns::STREAM
    ))
    .await;
    assert_eq!(c.expect_stream_error().await, "unsupported-version");
}

#[tokio::test]
async fn direct_tls_with_alpn_xmpp_client() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut c = XmppClient::connect_direct_tls(ts.direct_tls, &ts.ca).await;
    assert_eq!(
        c.alpn(),
        Some(&b"xmpp-client"[..]),
        "ALPN xmpp-client selected"
    );
    let features = c.open_stream().await;
    assert!(
        !features.has_child("starttls", ns::TLS),
        "no STARTTLS on an encrypted stream"
    );
    assert_eq!(
        mechanisms(&features),
        ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]
    );
    c.authenticate(Mechanism::ScramSha256, "alice", PASSWORD)
        .await
        .expect("authenticated");
    c.open_stream().await;
    assert_eq!(
        c.bind(Some("tls")).await.expect("bound"),
        "alice@localhost/tls"
    );

    // The session is an ordinary one: a STARTTLS user can reach it.
    let mut bob = ts.login("bob", "desk").await;
    bob.send_message("alice@localhost/tls", "over direct TLS")
        .await;
    let m = c.recv_message_with_body("over direct TLS").await;
    assert_eq!(m.attr("from"), Some("bob@localhost/desk"));
}

#[tokio::test]
async fn data_pipelined_after_starttls_is_refused() {
    // Bytes sent in the clear behind <starttls/> must never be read as if they had
    // arrived over TLS (STARTTLS command injection): the server closes instead.
    let ts = TestServer::start().await;
    ts.add_user("alice");
    let mut c = ts.connect().await;
    c.open_stream().await;
    c.send(&format!(
        "<starttls xmlns='{}'/><auth xmlns='{}' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>",
        ns::TLS,
        ns::SASL
    ))
    .await;
    let proceed = c.recv().await;
    assert!(proceed.is("proceed", ns::TLS));
    c.expect_closed().await;
}

#[tokio::test]
async fn whitespace_after_starttls_is_not_refused() {
    // go-sendxmpp writes "<starttls .../>\n": whitespace between elements is not
    // pipelined data, whether it arrives with the element or after <proceed/>.
    let ts = TestServer::start().await;
    ts.add_user("alice");
    for (request_tail, after_proceed) in [
        ("\n", &b""[..]),
        (" \t\r\n", b""),
        ("", b"\n"),
        ("\n", b"\r\n  \n"),
    ] {
        let mut c = ts.connect().await;
        c.open_stream().await;
        c.starttls_raw(
            &format!("<starttls xmlns='{}'/>{request_tail}", ns::TLS),
            after_proceed,
        )
        .await;
        c.open_stream().await;
        c.authenticate(Mechanism::ScramSha256, "alice", PASSWORD)
            .await
            .expect("authenticated after STARTTLS");
        c.open_stream().await;
        c.bind(None).await.expect("bound");
        c.assert_alive().await;
    }
}

#[tokio::test]
async fn non_whitespace_after_starttls_is_refused() {
    // One byte that is not XML whitespace behind the whitespace is still pipelined data.
    let ts = TestServer::start().await;
    for tail in ["\nx", " \r\n<", "\u{a0}"] {
        let mut c = ts.connect().await;
        c.open_stream().await;
        c.send(&format!("<starttls xmlns='{}'/>{tail}", ns::TLS))
            .await;
        let proceed = c.recv().await;
        assert!(proceed.is("proceed", ns::TLS));
        c.expect_closed().await;
    }
}

#[tokio::test]
async fn same_resource_replaces_the_old_session_with_conflict() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    let mut first = ts.login("alice", "phone").await;
    let mut second = ts.login("alice", "phone").await;
    assert_eq!(second.jid, "alice@localhost/phone");
    assert_eq!(first.expect_stream_error().await, "conflict");
    second.assert_alive().await;
}

#[tokio::test]
async fn server_generates_a_resource_when_none_is_requested() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    let mut jids = Vec::new();
    for _ in 0..2 {
        let (mut c, _) = ts.connect_tls().await;
        c.authenticate(Mechanism::ScramSha256, "alice", PASSWORD)
            .await
            .expect("authenticated");
        c.open_stream().await;
        let jid = c.bind(None).await.expect("bound");
        let resource = jid
            .strip_prefix("alice@localhost/")
            .unwrap_or_else(|| panic!("bound JID {jid} is alice's"));
        assert!(!resource.is_empty(), "a resource was generated");
        c.assert_alive().await;
        jids.push((jid, c));
    }
    assert_ne!(jids[0].0, jids[1].0, "generated resources differ");
}

#[tokio::test]
async fn session_limit_refuses_bind_with_resource_constraint() {
    let ts = TestServer::start_with(|c| c.c2s.max_sessions_per_account = 2).await;
    ts.add_user("alice");
    let mut one = ts.login("alice", "one").await;
    let mut two = ts.login("alice", "two").await;

    let (mut three, _) = ts.connect_tls().await;
    three
        .authenticate(Mechanism::ScramSha256, "alice", PASSWORD)
        .await
        .expect("authenticated");
    three.open_stream().await;
    let refused = three.bind(Some("three")).await.expect_err("bind refused");
    assert_eq!(
        stanza_error(&refused).as_deref(),
        Some("resource-constraint")
    );

    // Taking over an existing resource is not a new session and stays possible.
    let mut two_again = ts.login("alice", "two").await;
    assert_eq!(two.expect_stream_error().await, "conflict");
    one.assert_alive().await;
    two_again.assert_alive().await;
}

#[tokio::test]
async fn usernames_are_case_insensitive() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    let mut c =
        XmppClient::connect_starttls(ts.starttls, &ts.ca, "ALICE", PASSWORD, Some("Caps")).await;
    assert_eq!(
        c.jid, "alice@localhost/Caps",
        "the localpart is case-folded, the resource not"
    );
    c.assert_alive().await;
}

#[tokio::test]
async fn authorization_identity_of_another_user_is_refused() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let (mut c, _) = ts.connect_tls().await;
    let msg = plain_encode(Some("bob@localhost"), "alice", PASSWORD);
    c.send(&format!(
        "<auth xmlns='{}' mechanism='PLAIN'>{}</auth>",
        ns::SASL,
        B64.encode(msg)
    ))
    .await;
    let failure = c.recv().await;
    assert!(failure.is("failure", ns::SASL), "{failure:?}");
    assert!(
        failure.has_child("invalid-authzid", ns::SASL),
        "{failure:?}"
    );
    // Her own bare JID as authorization identity is fine.
    let msg = plain_encode(Some("alice@localhost"), "alice", PASSWORD);
    c.send(&format!(
        "<auth xmlns='{}' mechanism='PLAIN'>{}</auth>",
        ns::SASL,
        B64.encode(msg)
    ))
    .await;
    let success = c.recv().await;
    assert!(success.is("success", ns::SASL), "{success:?}");
}

#[tokio::test]
async fn sasl_abort_unknown_mechanism_and_bad_base64() {
    let ts = TestServer::start_with(|c| c.c2s.max_auth_attempts = 5).await;
    ts.add_user("alice");
    let (mut c, _) = ts.connect_tls().await;
    let sasl_answer = |el: &Element| el.elements().map(|e| e.name.clone()).collect::<Vec<_>>();

    // An exchange started without an initial response can be aborted.
    c.send(&format!(
        "<auth xmlns='{}' mechanism='SCRAM-SHA-256'/>",
        ns::SASL
    ))
    .await;
    let challenge = c.recv().await;
    assert!(challenge.is("challenge", ns::SASL), "{challenge:?}");
    c.send(&format!("<abort xmlns='{}'/>", ns::SASL)).await;
    let failure = c.recv().await;
    assert!(failure.is("failure", ns::SASL));
    assert_eq!(sasl_answer(&failure), ["aborted"]);

    c.send(&format!(
        "<auth xmlns='{}' mechanism='DIGEST-MD5'/>",
        ns::SASL
    ))
    .await;
    let failure = c.recv().await;
    assert_eq!(sasl_answer(&failure), ["invalid-mechanism"]);

    c.send(&format!(
        "<auth xmlns='{}' mechanism='PLAIN'>!!not base64!!</auth>",
        ns::SASL
    ))
    .await;
    let failure = c.recv().await;
    assert_eq!(sasl_answer(&failure), ["incorrect-encoding"]);

    c.authenticate(Mechanism::ScramSha256, "alice", PASSWORD)
        .await
        .expect("authenticated after the errors");
}
