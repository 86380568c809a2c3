//! What the SIP service refuses, one test per rule, over real sockets; after each
//! refusal an OPTIONS still gets 200 (the service goes on).

use herald_tests::sip_client::{
    code, header, sip_server, text, token, SipClient, SipTransport, SIP_PATIENCE,
};
use herald_translate::sip::Message;
use tokio::time::Instant;

/// An OPTIONS request from `c` as text, with its Call-ID and CSeq number.
fn options_text(c: &mut SipClient) -> (String, String, u32) {
    let call_id = token("opt");
    let cseq = c.next_cseq();
    let t = c.request_text(
        "OPTIONS",
        "sip:localhost",
        "<sip:localhost>",
        &call_id,
        cseq,
        &token("f"),
        &[],
        "",
    );
    (t, call_id, cseq)
}

/// Send `request` as it is and return the first final response.
async fn send_broken(c: &mut SipClient, request: &str) -> Message {
    c.send_raw(request.as_bytes()).await;
    c.any_response().await
}

/// The refusal is `want`, and the service still answers OPTIONS.
async fn refused(c: &mut SipClient, r: &Message, want: u16) {
    assert_eq!(code(r), want, "{}", text(r));
    c.assert_alive().await;
}

async fn udp_client(user: &str) -> (herald_tests::TestServer, SipClient) {
    let ts = sip_server(|_| {}).await;
    let c = ts.sip_client(user, SipTransport::Udp).await;
    (ts, c)
}

#[tokio::test]
async fn a_bad_version_gets_505() {
    let (_ts, mut c) = udp_client("alice").await;
    let (t, _, _) = options_text(&mut c);
    let t = t.replacen("SIP/2.0\r\n", "SIP/3.0\r\n", 1);
    let r = send_broken(&mut c, &t).await;
    refused(&mut c, &r, 505).await;
}

#[tokio::test]
async fn an_unsupported_uri_scheme_gets_416() {
    let (_ts, mut c) = udp_client("alice").await;
    let (t, call_id, cseq) = options_text(&mut c);
    let t = t.replacen("OPTIONS sip:localhost", "OPTIONS tel:+15551234567", 1);
    c.send_raw(t.as_bytes()).await;
    let r = c.response_to(&call_id, cseq).await;
    refused(&mut c, &r, 416).await;
}

#[tokio::test]
async fn a_missing_call_id_gets_400() {
    let (_ts, mut c) = udp_client("alice").await;
    let (t, call_id, _) = options_text(&mut c);
    let t = t.replace(&format!("Call-ID: {call_id}\r\n"), "");
    let r = send_broken(&mut c, &t).await;
    refused(&mut c, &r, 400).await;
}

#[tokio::test]
async fn an_unsupported_require_gets_420() {
    let (_ts, mut c) = udp_client("alice").await;
    let call_id = token("req");
    let cseq = c.next_cseq();
    let t = c.request_text(
        "OPTIONS",
        "sip:localhost",
        "<sip:localhost>",
        &call_id,
        cseq,
        &token("f"),
        &["Require: x-herald-frobnicate".to_owned()],
        "",
    );
    c.send_raw(t.as_bytes()).await;
    let r = c.response_to(&call_id, cseq).await;
    assert_eq!(
        header(&r, "Unsupported"),
        Some("x-herald-frobnicate"),
        "{}",
        text(&r)
    );
    refused(&mut c, &r, 420).await;
}

#[tokio::test]
async fn max_forwards_zero_gets_483_except_for_options() {
    let (_ts, mut c) = udp_client("alice").await;
    let call_id = token("mf");
    let cseq = c.next_cseq();
    let t = c
        .request_text(
            "MESSAGE",
            "sip:bob@localhost",
            "<sip:bob@localhost>",
            &call_id,
            cseq,
            &token("f"),
            &["Content-Type: text/plain".to_owned()],
            "hi",
        )
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    c.send_raw(t.as_bytes()).await;
    let r = c.response_to(&call_id, cseq).await;
    assert_eq!(code(&r), 483, "{}", text(&r));
    // RFC 3261 §16.3: an OPTIONS with Max-Forwards 0 is for the element it reached.
    let (t, call_id, cseq) = options_text(&mut c);
    c.send_raw(t.replace("Max-Forwards: 70", "Max-Forwards: 0").as_bytes())
        .await;
    let r = c.response_to(&call_id, cseq).await;
    refused(&mut c, &r, 200).await;
}

#[tokio::test]
async fn a_cseq_method_that_is_not_the_request_method_gets_400() {
    let (_ts, mut c) = udp_client("alice").await;
    let (t, call_id, cseq) = options_text(&mut c);
    let t = t.replace(
        &format!("CSeq: {cseq} OPTIONS"),
        &format!("CSeq: {cseq} MESSAGE"),
    );
    c.send_raw(t.as_bytes()).await;
    let r = c.any_response().await;
    assert_eq!(r.call_id().ok(), Some(call_id.as_str()), "{}", text(&r));
    refused(&mut c, &r, 400).await;
}

#[tokio::test]
async fn an_oversized_datagram_gets_513() {
    let (_ts, mut c) = udp_client("alice").await;
    let call_id = token("big");
    let cseq = c.next_cseq();
    let big = "x".repeat(40 * 1024);
    let t = c.request_text(
        "OPTIONS",
        "sip:localhost",
        "<sip:localhost>",
        &call_id,
        cseq,
        &token("f"),
        &["Content-Type: text/plain".to_owned()],
        &big,
    );
    let r = send_broken(&mut c, &t).await;
    refused(&mut c, &r, 513).await;
}

#[tokio::test]
async fn a_stream_message_announcing_too_much_closes_the_connection() {
    let ts = sip_server(|_| {}).await;
    let mut c = ts.sip_client("alice", SipTransport::Tcp).await;
    c.assert_alive().await;
    let (t, _, _) = options_text(&mut c);
    let t = t.replace("Content-Length: 0", "Content-Length: 10000000");
    c.send_raw(t.as_bytes()).await;
    c.send_raw(&[b'x'; 1024]).await;
    c.expect_closed().await;
    let mut again = ts.sip_client("alice", SipTransport::Tcp).await;
    again.assert_alive().await;
}

#[tokio::test]
async fn subscribe_to_an_unknown_event_package_gets_489() {
    let (_ts, mut c) = udp_client("alice").await;
    let r = c
        .transact(
            "SUBSCRIBE",
            "sip:bob@localhost",
            "<sip:bob@localhost>",
            &token("sub"),
            &token("f"),
            &["Event: foo".to_owned(), "Expires: 600".to_owned()],
            "",
        )
        .await;
    // Refused before authentication: no challenge first.
    let allowed = header(&r, "Allow-Events").unwrap_or_default().to_owned();
    assert!(allowed.contains("presence"), "{}", text(&r));
    refused(&mut c, &r, 489).await;
}

#[tokio::test]
async fn invite_gets_488_with_allow() {
    let (_ts, mut c) = udp_client("alice").await;
    let call_id = token("inv");
    let cseq = c.next_cseq();
    let from_tag = token("f");
    let t = c.request_text(
        "INVITE",
        "sip:bob@localhost",
        "<sip:bob@localhost>",
        &call_id,
        cseq,
        &from_tag,
        &["Content-Type: application/sdp".to_owned()],
        "v=0\r\n",
    );
    c.send_raw(t.as_bytes()).await;
    let r = c.response_to(&call_id, cseq).await;
    assert_eq!(code(&r), 488, "{}", text(&r));
    assert!(
        header(&r, "Allow").is_some_and(|a| a.contains("MESSAGE") && !a.contains("INVITE")),
        "{}",
        text(&r)
    );
    // The ACK for a non-2xx final response: same branch, the To tag of the answer.
    let via = t
        .lines()
        .find(|l| l.starts_with("Via: "))
        .expect("a Via")
        .to_owned();
    let ack = format!(
        "ACK sip:bob@localhost SIP/2.0\r\n{via}\r\nMax-Forwards: 70\r\n\
         From: <{}>;tag={from_tag}\r\nTo: {}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} ACK\r\n\
         Content-Length: 0\r\n\r\n",
        c.aor(),
        header(&r, "To").unwrap_or_default()
    );
    c.send_raw(ack.as_bytes()).await;
    c.assert_alive().await;
}

#[tokio::test]
async fn bye_gets_405_with_allow() {
    let (_ts, mut c) = udp_client("alice").await;
    let r = c
        .transact(
            "BYE",
            "sip:bob@localhost",
            "<sip:bob@localhost>;tag=gone",
            &token("bye"),
            &token("f"),
            &[],
            "",
        )
        .await;
    assert!(header(&r, "Allow").is_some(), "{}", text(&r));
    refused(&mut c, &r, 405).await;
}

#[tokio::test]
async fn an_unknown_method_gets_501() {
    let (_ts, mut c) = udp_client("alice").await;
    let r = c
        .transact(
            "FROBNICATE",
            "sip:localhost",
            "<sip:localhost>",
            &token("x"),
            &token("f"),
            &[],
            "",
        )
        .await;
    refused(&mut c, &r, 501).await;
}

#[tokio::test]
async fn a_message_to_an_unknown_user_gets_404() {
    let (_ts, mut c) = udp_client("alice").await;
    let r = c.message("nobody", "text/plain", "hello?").await;
    refused(&mut c, &r, 404).await;
}

#[tokio::test]
async fn registering_another_users_address_gets_403() {
    let (_ts, mut c) = udp_client("alice").await;
    let call_id = c.register_call_id.clone();
    let r = c
        .authed(
            "REGISTER",
            "sip:localhost",
            "<sip:bob@localhost>",
            &call_id,
            &token("f"),
            &["Expires: 600".to_owned()],
            "",
        )
        .await;
    refused(&mut c, &r, 403).await;
}

#[tokio::test]
async fn publishing_another_presentity_gets_403() {
    let (_ts, mut c) = udp_client("alice").await;
    let r = c
        .authed(
            "PUBLISH",
            "sip:bob@localhost",
            "<sip:bob@localhost>",
            &token("pub"),
            &token("f"),
            &[
                "Event: presence".to_owned(),
                "Expires: 600".to_owned(),
                "Content-Type: application/pidf+xml".to_owned(),
            ],
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:bob@localhost'>\
             <tuple id='t'><status><basic>open</basic></status></tuple></presence>",
        )
        .await;
    refused(&mut c, &r, 403).await;
}

#[tokio::test]
async fn a_message_with_an_unsupported_content_type_gets_415() {
    let (ts, mut c) = udp_client("alice").await;
    let r = c.message("bob", "image/png", "\u{1}PNG").await;
    assert!(
        header(&r, "Accept").is_some_and(|a| a.contains("text/plain")),
        "{}",
        text(&r)
    );
    refused(&mut c, &r, 415).await;
    assert_eq!(
        ts.server.db.store().offline_count("bob").expect("count"),
        0,
        "nothing stored"
    );
}

#[tokio::test]
async fn registering_below_the_minimum_expiry_gets_423() {
    let (_ts, mut c) = udp_client("alice").await;
    let r = c.register(10).await;
    assert_eq!(header(&r, "Min-Expires"), Some("60"), "{}", text(&r));
    refused(&mut c, &r, 423).await;
}

#[tokio::test]
async fn too_many_requests_from_one_address_get_503_with_retry_after() {
    let ts = sip_server(|c| {
        c.sip.requests_per_ip_per_sec = 1;
        c.sip.requests_per_ip_burst = 3;
    })
    .await;
    let mut c = ts.sip_client("alice", SipTransport::Udp).await;
    let mut sent = Vec::new();
    for _ in 0..8 {
        let (t, call_id, cseq) = options_text(&mut c);
        c.send_raw(t.as_bytes()).await;
        sent.push((call_id, cseq));
    }
    let mut codes = Vec::new();
    let mut retry_after = Vec::new();
    for (call_id, cseq) in &sent {
        let r = c.response_to(call_id, *cseq).await;
        codes.push(code(&r));
        if code(&r) == 503 {
            retry_after.push(header(&r, "Retry-After").map(str::to_owned));
        }
    }
    // The burst passes; then most are refused (a slow machine may refill one or two).
    assert_eq!(codes[..3], [200, 200, 200], "{codes:?}");
    assert!(codes.iter().all(|&c| c == 200 || c == 503), "{codes:?}");
    assert!(
        codes.iter().filter(|&&c| c == 503).count() >= 3,
        "{codes:?}"
    );
    assert!(
        retry_after.iter().all(|r| r.as_deref() == Some("5")),
        "{retry_after:?}"
    );
    // Another address is not limited...
    let other_ip = std::net::IpAddr::from([127, 0, 0, 2]);
    let mut other = SipClient::udp_from(ts.sip().udp[0], "bob", other_ip).await;
    other.assert_alive().await;
    // ...and this one gets through again once its allowance refills (1 a second).
    let deadline = Instant::now() + SIP_PATIENCE;
    loop {
        let r = c.options().await;
        if code(&r) == 200 {
            break;
        }
        assert_eq!(code(&r), 503, "{}", text(&r));
        assert!(
            Instant::now() < deadline,
            "still limited after {SIP_PATIENCE:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
