//! Federation end to end between two Herald servers in this process: `a.example` and
//! `b.example`, each with s2s listeners on loopback, a static route to the other and
//! the other's development CA as trust anchor. Real clients log in on both sides.

use std::net::SocketAddr;
use std::path::PathBuf;

use herald_edge::Config;
use herald_rules::federation::{AclAction, AuthPolicy, DomainPattern, Route, Target, TlsPolicy};
use herald_tests::{body_of, stanza_error, unique_temp_dir, TestServer, XmppClient};

const A: &str = "a.example";
const B: &str = "b.example";

/// A loopback port nothing listens on, outside the ephemeral range.
fn free_port() -> SocketAddr {
    herald_tests::free_loopback_port()
}

/// A data directory with a development PKI for `domain` already issued, and its CA.
fn prepared_dir(domain: &str) -> (PathBuf, PathBuf) {
    let dir = unique_temp_dir(&format!("fed-{domain}"));
    let pki = herald_certs::ensure_dev_pki(&dir.join("tls"), &[domain.to_string()])
        .expect("development PKI");
    (dir, pki.ca_cert)
}

fn route(domain: &str, to: SocketAddr) -> Route {
    let mut r = Route::new(DomainPattern::parse(domain).expect("pattern"));
    r.target = Some(Target::parse(&to.to_string()).expect("target"));
    r
}

/// One side's settings: its domain, data dir and s2s port; the peer's domain, CA and
/// port (`None`: no route to it).
struct Side {
    domain: &'static str,
    dir: PathBuf,
    port: SocketAddr,
    peer: &'static str,
    peer_ca: PathBuf,
    peer_port: SocketAddr,
}

fn configure(side: &Side, config: &mut Config) {
    config.server.domains = vec![side.domain.to_string()];
    config.server.data_dir = side.dir.clone();
    config.s2s.listen = vec![side.port];
    config.s2s.trust = vec![side.peer_ca.clone()];
    config.s2s.tls = TlsPolicy::Required;
    config.s2s.route = vec![route(side.peer, side.peer_port)];
}

/// Both servers, `tune` applied to each configuration after the defaults above.
async fn pair(tune: impl Fn(&mut Config)) -> (TestServer, TestServer) {
    pair_with(|_, c| tune(c)).await
}

/// [`pair`] with a `tune` told which domain it is configuring.
async fn pair_with(tune: impl Fn(&str, &mut Config)) -> (TestServer, TestServer) {
    let ((dir_a, ca_a), (dir_b, ca_b)) = (prepared_dir(A), prepared_dir(B));
    let (port_a, port_b) = (free_port(), free_port());
    let side_a = Side {
        domain: A,
        dir: dir_a,
        port: port_a,
        peer: B,
        peer_ca: ca_b.clone(),
        peer_port: port_b,
    };
    let side_b = Side {
        domain: B,
        dir: dir_b,
        port: port_b,
        peer: A,
        peer_ca: ca_a,
        peer_port: port_a,
    };
    let a = TestServer::start_with(|c| {
        configure(&side_a, c);
        tune(A, c);
    })
    .await;
    let b = TestServer::start_with(|c| {
        configure(&side_b, c);
        tune(B, c);
    })
    .await;
    (a, b)
}

async fn users(a: &TestServer, b: &TestServer) -> (XmppClient, XmppClient) {
    a.add_user("alice");
    b.add_user("bob");
    (
        a.login("alice", "home").await,
        b.login("bob", "phone").await,
    )
}

/// A message each way between the two servers.
async fn round_trip(a: &TestServer, b: &TestServer) {
    let (mut alice, mut bob) = users(a, b).await;
    alice.send_message(&bob.jid.clone(), "hello from a").await;
    let got = bob.recv_message_with_body("hello from a").await;
    assert_eq!(got.attr("from"), Some(alice.jid.as_str()));
    bob.send_message(&alice.jid.clone(), "hello from b").await;
    let got = alice.recv_message_with_body("hello from b").await;
    assert_eq!(got.attr("from"), Some(bob.jid.as_str()));
}

#[tokio::test]
async fn messages_cross_with_pkix_both_ways() {
    let (a, b) = pair(|c| c.s2s.auth = AuthPolicy::Pkix).await;
    assert!(a.s2s.is_some() && b.s2s.is_some(), "both listen for s2s");
    round_trip(&a, &b).await;
    let text = a.server.metrics.render();
    for line in [
        "herald_s2s_streams{domain=\"b.example\",direction=\"out\"} 1",
        "herald_s2s_streams{domain=\"b.example\",direction=\"in\"} 1",
        "herald_s2s_stanzas_total{domain=\"b.example\",direction=\"in\"} 1",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
}

#[tokio::test]
async fn messages_cross_with_dialback_both_ways() {
    let (a, b) = pair(|c| c.s2s.auth = AuthPolicy::Dialback).await;
    round_trip(&a, &b).await;
}

/// A message from a remote domain for a local user who is away waits in offline
/// storage and arrives, with its remote sender, when the user comes online.
#[tokio::test]
async fn a_remote_message_for_an_offline_user_is_stored_and_delivered_at_login() {
    let (a, b) = pair(|_| {}).await;
    a.add_user("alice");
    b.add_user("bob");
    let mut alice = a.login("alice", "home").await;
    alice
        .send_message("bob@b.example", "while you were away")
        .await;
    herald_tests::wait_until("the message stored on b.example", || {
        b.server.db.store().offline_count("bob").unwrap_or(0) == 1
    })
    .await;
    let mut bob = b.login("bob", "phone").await;
    bob.send("<presence/>").await;
    let got = bob.recv_message_with_body("while you were away").await;
    assert_eq!(got.attr("from"), Some(alice.jid.as_str()));
    assert!(
        got.child("delay", "urn:xmpp:delay").is_some(),
        "an offline message carries its delay: {got:?}"
    );
    alice.assert_alive().await;
    assert!(
        alice.pending().all(|e| e.attr("type") != Some("error")),
        "no error came back to the sender"
    );
}

/// The first error stanza that reaches `client`.
async fn recv_error(client: &mut XmppClient) -> String {
    let el = client
        .recv_where("an error", |e| e.attr("type") == Some("error"))
        .await;
    stanza_error(&el).unwrap_or_else(|| panic!("an error condition in {el:?}"))
}

#[tokio::test]
async fn a_message_to_an_unknown_remote_user_comes_back_as_an_error() {
    let (a, b) = pair(|_| {}).await;
    let (mut alice, _bob) = users(&a, &b).await;
    alice.send_message("nobody@b.example/x", "anyone?").await;
    let condition = recv_error(&mut alice).await;
    assert_eq!(condition, "service-unavailable");
}

#[tokio::test]
async fn the_outbound_acl_bounces_not_allowed() {
    let (a, b) = pair(|c| c.s2s.default = AclAction::Deny).await;
    let (mut alice, _bob) = users(&a, &b).await;
    alice.send_message("bob@b.example/phone", "denied").await;
    assert_eq!(recv_error(&mut alice).await, "not-allowed");
}

#[tokio::test]
async fn a_peer_refused_by_the_inbound_acl_bounces_remote_server_not_found() {
    let (a, b) = pair_with(|domain, c| {
        if domain == B {
            c.s2s.default = AclAction::Deny;
        }
    })
    .await;
    let (mut alice, mut bob) = users(&a, &b).await;
    alice.send_message(&bob.jid.clone(), "let me in").await;
    assert_eq!(recv_error(&mut alice).await, "remote-server-not-found");
    let nothing = bob.recv_within(std::time::Duration::from_millis(200)).await;
    assert!(nothing.is_none(), "nothing reaches bob: {nothing:?}");
}

/// A route's smaller `max_stanza_bytes` holds for its domain: a larger stanza from
/// it ends the stream with `policy-violation` and is not delivered; small ones pass
/// before and after (on a new stream).
#[tokio::test]
async fn a_routes_stanza_limit_applies_to_its_domain() {
    let (a, b) = pair_with(|domain, c| {
        if domain == B {
            c.s2s.route[0].limits.max_stanza_bytes = Some(2048);
        }
    })
    .await;
    let (mut alice, mut bob) = users(&a, &b).await;
    alice.send_message(&bob.jid.clone(), "small").await;
    bob.recv_message_with_body("small").await;
    let big = "x".repeat(4000);
    alice.send_message(&bob.jid.clone(), &big).await;
    let got = bob.recv_within(std::time::Duration::from_millis(500)).await;
    assert!(got.is_none(), "the large stanza is not delivered: {got:?}");
    let text = b.server.metrics.render();
    assert!(
        text.contains("herald_s2s_streams{domain=\"a.example\",direction=\"in\"} 0"),
        "the stream from a.example was closed:\n{text}"
    );
    // The stanza was refused, not the domain: a small one goes through again.
    let mut delivered = false;
    for _ in 0..20 {
        alice.send_message(&bob.jid.clone(), "small again").await;
        if let Some(el) = bob.recv_within(std::time::Duration::from_millis(500)).await {
            if el
                .child("body", herald_translate::ns::CLIENT)
                .map(|b| b.text())
                .as_deref()
                == Some("small again")
            {
                delivered = true;
                break;
            }
        }
    }
    assert!(delivered, "small stanzas cross again");
}

/// A static route with `direct_tls` connects with TLS from the first byte (XEP-0368)
/// to the peer's direct-TLS listener, where a STARTTLS connection would fail.
#[tokio::test]
async fn a_static_route_can_ask_for_direct_tls() {
    let direct = free_port();
    let (a, b) = pair_with(|domain, c| {
        if domain == A {
            c.s2s.route[0].target = Some(Target::parse(&direct.to_string()).expect("target"));
            c.s2s.route[0].direct_tls = true;
        } else {
            c.s2s.listen_tls = vec![direct];
        }
    })
    .await;
    let (mut alice, mut bob) = users(&a, &b).await;
    alice
        .send_message(&bob.jid.clone(), "over direct tls")
        .await;
    bob.recv_message_with_body("over direct tls").await;
}

/// `max_connections` counts both directions: with one, `a.example` takes the stream
/// from `b.example` only while it has none to `b.example` itself.
#[tokio::test]
async fn max_connections_counts_both_directions() {
    let (a, b) = pair(|c| c.s2s.limits.max_connections = 1).await;
    let (mut alice, mut bob) = users(&a, &b).await;
    alice.send_message(&bob.jid.clone(), "one way").await;
    bob.recv_message_with_body("one way").await;
    bob.send_message(&alice.jid.clone(), "the other way").await;
    assert_eq!(recv_error(&mut bob).await, "remote-server-not-found");
}

#[tokio::test]
async fn a_peer_that_is_down_bounces_remote_server_not_found() {
    let (dir, _) = prepared_dir(A);
    let (_, ca_b) = prepared_dir(B);
    let side = Side {
        domain: A,
        dir,
        port: free_port(),
        peer: B,
        peer_ca: ca_b,
        peer_port: free_port(),
    };
    let a = TestServer::start_with(|c| configure(&side, c)).await;
    a.add_user("alice");
    let mut alice = a.login("alice", "home").await;
    alice.send_message("bob@b.example/phone", "anyone?").await;
    let el = alice
        .recv_where("an error", |e| e.attr("type") == Some("error"))
        .await;
    assert_eq!(
        stanza_error(&el).as_deref(),
        Some("remote-server-not-found")
    );
    assert_eq!(body_of(&el).as_deref(), Some("anyone?"));
}

/// Read from `io` into `seen` until it contains `what`.
async fn read_until(io: &mut tokio::net::TcpStream, seen: &mut String, what: &str) {
    read_while(io, seen, what, |s| !s.contains(what)).await;
}

/// Read from `io` into `seen` while `more` says so.
async fn read_while(
    io: &mut tokio::net::TcpStream,
    seen: &mut String,
    what: &str,
    more: impl Fn(&str) -> bool,
) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let wait = std::time::Duration::from_secs(10);
    while more(seen) {
        let n = tokio::time::timeout(wait, io.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("waiting for {what:?}, got {seen:?}"))
            .expect("read");
        assert!(n > 0, "closed while waiting for {what:?}; got {seen:?}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

const S2S_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
     xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
     version='1.0'";

/// `b.example` (bob logged in) and a raw peer authenticated to it by dialback for
/// `evil.example` (its authoritative server is a stand-in that vouches for any key);
/// the peer's connection and what it has read so far.
async fn evil_peer() -> (TestServer, XmppClient, tokio::net::TcpStream, String) {
    use tokio::io::AsyncWriteExt;
    let authoritative = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let auth_addr = authoritative.local_addr().expect("address");
    let (dir, _) = prepared_dir(B);
    let (_, ca_a) = prepared_dir(A);
    let side = Side {
        domain: B,
        dir,
        port: free_port(),
        peer: "evil.example",
        peer_ca: ca_a,
        peer_port: auth_addr,
    };
    let b = TestServer::start_with(|c| {
        configure(&side, c);
        c.s2s.tls = TlsPolicy::Optional;
        c.s2s.auth = AuthPolicy::Dialback;
    })
    .await;
    b.add_user("bob");
    let bob = b.login("bob", "phone").await;
    // The stand-in authoritative server: any key is valid.
    let vouch = tokio::spawn(async move {
        let (mut io, _) = authoritative.accept().await.expect("verify connection");
        let mut seen = String::new();
        let header_done =
            |s: &str| (s.split("<stream:stream").nth(1)).is_some_and(|h| h.contains('>'));
        read_while(&mut io, &mut seen, "a stream header", |s| !header_done(s)).await;
        let header = format!(
            "{S2S_HEADER} from='evil.example' to='b.example' id='auth1'><stream:features/>"
        );
        io.write_all(header.as_bytes()).await.expect("write");
        read_until(&mut io, &mut seen, "</db:verify>").await;
        let id = seen
            .split("id='")
            .nth(1)
            .and_then(|s| s.split('\'').next())
            .expect("the verify id")
            .to_string();
        let answer = format!(
            "<db:verify from='evil.example' to='b.example' id='{id}' type='valid'/>\
             </stream:stream>"
        );
        io.write_all(answer.as_bytes()).await.expect("write");
    });
    let mut peer = tokio::net::TcpStream::connect(b.s2s.expect("s2s listener"))
        .await
        .expect("connect");
    let mut seen = String::new();
    let open = format!("{S2S_HEADER} from='evil.example' to='b.example'>");
    peer.write_all(open.as_bytes()).await.expect("write");
    read_until(&mut peer, &mut seen, "</stream:features>").await;
    let result = "<db:result from='evil.example' to='b.example'>0123abcd</db:result>";
    peer.write_all(result.as_bytes()).await.expect("write");
    read_until(&mut peer, &mut seen, "type='valid'").await;
    vouch.await.expect("the stand-in answered");
    (b, bob, peer, seen)
}

/// The evil peer sends a stanza from `a.example`: the stream ends with `invalid-from`
/// and nothing reaches the user.
#[tokio::test]
async fn a_spoofed_from_closes_the_stream_with_invalid_from() {
    use tokio::io::AsyncWriteExt;
    let (_b, mut bob, mut peer, mut seen) = evil_peer().await;
    let spoof = "<message from='alice@a.example/x' to='bob@b.example/phone' type='chat'>\
                 <body>spoofed</body></message>";
    peer.write_all(spoof.as_bytes()).await.expect("write");
    read_until(&mut peer, &mut seen, "invalid-from").await;
    let legit = bob.recv_within(std::time::Duration::from_millis(300)).await;
    assert!(legit.is_none(), "nothing reaches bob: {legit:?}");
}

/// The XEP-0368 listener: TLS first with ALPN `xmpp-server`, then an s2s stream whose
/// features offer dialback (no client certificate was presented, so no EXTERNAL).
#[tokio::test]
async fn the_direct_tls_listener_speaks_s2s_with_alpn_xmpp_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (dir, ca) = prepared_dir(B);
    let (_, ca_a) = prepared_dir(A);
    let side = Side {
        domain: B,
        dir,
        port: free_port(),
        peer: A,
        peer_ca: ca_a,
        peer_port: free_port(),
    };
    let b = TestServer::start_with(|c| {
        configure(&side, c);
        c.s2s.listen_tls = vec![herald_tests::loopback_any_port()];
    })
    .await;
    let config = herald_certs::client_config(&[ca], None, &[b"xmpp-server"]).expect("config");
    let tcp = tokio::net::TcpStream::connect(b.s2s_tls.expect("direct TLS listener"))
        .await
        .expect("connect");
    let name = rustls_pki_types::ServerName::try_from(B.to_string()).expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"xmpp-server"[..]));
    let open = format!("{S2S_HEADER} from='a.example' to='b.example'>");
    tls.write_all(open.as_bytes()).await.expect("write");
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("</stream:features>") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), tls.read(&mut buf))
            .await
            .expect("features in time")
            .expect("read");
        assert!(n > 0, "closed early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("urn:xmpp:features:dialback"), "{seen}");
    assert!(!seen.contains("starttls"), "no STARTTLS on TLS: {seen}");
}

/// Idle streams close on both sides, and their gauges go back to zero; the next
/// message sets up a new stream.
#[tokio::test]
async fn idle_streams_close_and_release_their_gauges() {
    let (a, b) = pair(|c| c.s2s.idle_timeout_secs = 1).await;
    let (mut alice, mut bob) = users(&a, &b).await;
    alice.send_message(&bob.jid.clone(), "first").await;
    bob.recv_message_with_body("first").await;
    let up = "herald_s2s_streams{domain=\"a.example\",direction=\"in\"} 1";
    assert!(b.server.metrics.render().contains(up));
    let down = "herald_s2s_streams{domain=\"a.example\",direction=\"in\"} 0";
    herald_tests::wait_until("the inbound stream at b closes", || {
        b.server.metrics.render().contains(down)
    })
    .await;
    let out_down = "herald_s2s_streams{domain=\"b.example\",direction=\"out\"} 0";
    herald_tests::wait_until("the outbound stream at a closes", || {
        a.server.metrics.render().contains(out_down)
    })
    .await;
    alice.send_message(&bob.jid.clone(), "second").await;
    bob.recv_message_with_body("second").await;
}

mod check;
mod reload;

/// Shutdown waits for the s2s streams too: when `drained` returns, both directions'
/// streams have ended (their gauges are released), and the peer sees them go.
#[tokio::test]
async fn shutdown_waits_for_the_s2s_streams() {
    let (a, b) = pair(|_| {}).await;
    round_trip(&a, &b).await;
    a.server.shutdown();
    assert!(
        a.server.drained(std::time::Duration::from_secs(10)).await,
        "drained within the grace period"
    );
    let text = a.server.metrics.render();
    for line in [
        "herald_s2s_streams{domain=\"b.example\",direction=\"out\"} 0",
        "herald_s2s_streams{domain=\"b.example\",direction=\"in\"} 0",
    ] {
        assert!(text.contains(line), "{line} once drained:\n{text}");
    }
    let gone = "herald_s2s_streams{domain=\"a.example\",direction=\"in\"} 0";
    herald_tests::wait_until("b.example's stream from a.example ended", || {
        b.server.metrics.render().contains(gone)
    })
    .await;
}
