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

/// A loopback port nothing listens on (bound, then released).
fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("its address")
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
        tune(c);
    })
    .await;
    let b = TestServer::start_with(|c| {
        configure(&side_b, c);
        tune(c);
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
}

#[tokio::test]
async fn messages_cross_with_dialback_both_ways() {
    let (a, b) = pair(|c| c.s2s.auth = AuthPolicy::Dialback).await;
    round_trip(&a, &b).await;
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
