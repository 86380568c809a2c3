//! Server-to-server TLS in memory: the s2s client configuration (record, strict and
//! pinned modes) against the s2s server configuration, client certificates, SNI.

mod common;
mod s2s_pki;

use common::{handshake, Failure};
use s2s_pki::*;

// ---------------------------------------------------------- handshakes ----

/// Runs a handshake that must fail on the client side, delivers the
/// client's alert to the server, and returns both errors.
fn refused(
    client: Arc<rustls::ClientConfig>,
    server: Arc<rustls::ServerConfig>,
    name: &str,
) -> (rustls::Error, rustls::Error) {
    let name = ServerName::try_from(name.to_owned()).expect("name");
    let mut client = ClientConnection::new(client, name).expect("client");
    let mut server = ServerConnection::new(server).expect("server");
    for _ in 0..16 {
        let to_server = drain(|buf| client.write_tls(buf));
        feed(&to_server, &mut server).expect("server accepts the client's flight");
        let to_client = drain(|buf| server.write_tls(buf));
        if let Err(client_error) = feed(&to_client, &mut client) {
            let alert = drain(|buf| client.write_tls(buf));
            let server_error = feed(&alert, &mut server).expect_err("server gets an alert");
            return (client_error, server_error);
        }
    }
    panic!("the handshake did not fail");
}

fn drain(mut write_tls: impl FnMut(&mut Vec<u8>) -> std::io::Result<usize>) -> Vec<u8> {
    let mut buf = Vec::new();
    while write_tls(&mut buf).expect("write_tls") > 0 {}
    buf
}

fn feed<D>(data: &[u8], conn: &mut rustls::ConnectionCommon<D>) -> Result<(), rustls::Error> {
    let mut rest = data;
    while !rest.is_empty() {
        conn.read_tls(&mut rest).expect("read_tls");
        conn.process_new_packets()?;
    }
    Ok(())
}

fn alert(error: &rustls::Error) -> AlertDescription {
    match error {
        rustls::Error::AlertReceived(alert) => *alert,
        other => panic!("expected an alert, got {other:?}"),
    }
}

#[test]
fn record_mode_completes_and_reports_why_the_certificate_fails() {
    let ca = Ca::new("record CA");
    let other = Ca::new("record other CA");
    let trust = ca.trust();
    let client = s2s_client_config(&trust, S2sVerifyMode::Record, None, &[XMPP_SERVER])
        .expect("client config");

    let cases = [
        (
            leaf(dns(&["example.org"]), Some(&other)),
            Err(ChainError::UnknownIssuer),
            true,
        ),
        (
            leaf(
                Spec {
                    common_name: Some("example.org"),
                    ..Spec::default()
                },
                Some(&ca),
            ),
            Ok(()),
            false,
        ),
        (
            leaf(
                Spec {
                    expired: true,
                    ..dns(&["example.org"])
                },
                Some(&ca),
            ),
            Err(ChainError::Expired),
            true,
        ),
    ];
    for (presented, chain, identity) in cases {
        let server = s2s_server_config(presented.store(), &[XMPP_SERVER]).expect("server config");
        let done = handshake(Arc::clone(&client), server, "example.org").expect("handshake");
        assert_eq!(done.server.server_name(), Some("example.org"), "SNI");
        assert_eq!(done.client.alpn_protocol(), Some(XMPP_SERVER));
        let peer = done.client.peer_certificates().expect("server chain");
        let outcome = check_peer(peer, "example.org", &trust, PeerRole::Server, None);
        assert_eq!(outcome.chain_valid, chain);
        assert_eq!(outcome.identity.is_match(), identity);
        assert!(!outcome.authenticates());
        assert!(outcome.failure().is_some());
    }
}

#[test]
fn strict_mode_accepts_every_xmpp_identity_kind() {
    let ca = Ca::new("strict CA");
    let trust = ca.trust();
    let client = s2s_client_config(&trust, S2sVerifyMode::Strict, None, &[]).expect("client");
    let specs = [
        dns(&["example.org"]),
        dns(&["*.example.org"]),
        Spec {
            srv: vec!["_xmpp-server.example.org"],
            ..Spec::default()
        },
        Spec {
            xmpp_addrs: vec!["example.org"],
            ..Spec::default()
        },
    ];
    for (spec, name) in specs.into_iter().zip([
        "example.org",
        "chat.example.org",
        "example.org",
        "example.org",
    ]) {
        let presented = leaf(spec, Some(&ca));
        let server = s2s_server_config(presented.store(), &[]).expect("server");
        let done = handshake(Arc::clone(&client), server, name)
            .unwrap_or_else(|failure| panic!("{name}: {failure:?}"));
        assert_eq!(done.server.server_name(), Some(name));
        let outcome = check_peer(
            done.client.peer_certificates().expect("chain"),
            name,
            &trust,
            PeerRole::Server,
            None,
        );
        assert!(outcome.authenticates(), "{outcome}");
    }
}

#[test]
fn strict_mode_refuses_with_the_matching_alert() {
    let ca = Ca::new("alert CA");
    let other = Ca::new("alert other CA");
    let client = s2s_client_config(&ca.trust(), S2sVerifyMode::Strict, None, &[]).expect("client");

    let foreign = leaf(dns(&["example.org"]), Some(&other));
    let server = s2s_server_config(foreign.store(), &[]).expect("server");
    let (client_error, server_error) = refused(Arc::clone(&client), server, "example.org");
    assert_eq!(
        client_error,
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
    );
    assert_eq!(alert(&server_error), AlertDescription::UnknownCA);

    let good = leaf(dns(&["example.org"]), Some(&ca));
    let server = s2s_server_config(good.store(), &[]).expect("server");
    let (client_error, server_error) = refused(Arc::clone(&client), server, "example.net");
    assert!(
        matches!(
            &client_error,
            rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { presented, .. })
                if presented == &["DNS-ID example.org".to_owned()]
        ),
        "{client_error:?}"
    );
    assert_eq!(alert(&server_error), AlertDescription::BadCertificate);

    let cn_only = leaf(
        Spec {
            common_name: Some("example.org"),
            ..Spec::default()
        },
        Some(&ca),
    );
    let server = s2s_server_config(cn_only.store(), &[]).expect("server");
    let (_, server_error) = refused(Arc::clone(&client), server, "example.org");
    assert_eq!(alert(&server_error), AlertDescription::BadCertificate);

    let expired = leaf(
        Spec {
            expired: true,
            ..dns(&["example.org"])
        },
        Some(&ca),
    );
    let server = s2s_server_config(expired.store(), &[]).expect("server");
    let (_, server_error) = refused(client, server, "example.org");
    assert_eq!(alert(&server_error), AlertDescription::CertificateExpired);
}

#[test]
fn a_pinned_route_accepts_only_its_certificate() {
    let ca = Ca::new("pinned CA");
    let self_signed = leaf(dns(&["example.org"]), None);
    let pin = pin_sha256(&self_signed.cert);
    let client =
        s2s_client_config(&ca.trust(), S2sVerifyMode::Pinned(pin), None, &[]).expect("client");

    let server = s2s_server_config(self_signed.store(), &[]).expect("server");
    handshake(Arc::clone(&client), server, "example.org").expect("pinned certificate");

    // A CA-valid certificate is still not the pinned one.
    let other = leaf(dns(&["example.org"]), Some(&ca));
    let server = s2s_server_config(other.store(), &[]).expect("server");
    let (client_error, server_error) = refused(client, server, "example.org");
    assert!(
        matches!(
            &client_error,
            rustls::Error::InvalidCertificate(CertificateError::Other(_))
        ),
        "{client_error:?}"
    );
    assert!(
        client_error.to_string().contains("pinned"),
        "{client_error}"
    );
    assert_eq!(alert(&server_error), AlertDescription::CertificateUnknown);
}

#[test]
fn the_server_requests_a_client_certificate_but_does_not_require_one() {
    let ca = Ca::new("inbound CA");
    let other = Ca::new("inbound other CA");
    let trust = ca.trust();
    let ours = leaf(dns(&["herald.example"]), Some(&ca));
    let server = s2s_server_config(ours.store(), &[XMPP_SERVER]).expect("server");

    // No client certificate: the handshake completes, nothing to check.
    let anonymous =
        s2s_client_config(&trust, S2sVerifyMode::Strict, None, &[XMPP_SERVER]).expect("client");
    let done = handshake(anonymous, Arc::clone(&server), "herald.example").expect("anonymous");
    assert!(done.server.peer_certificates().is_none());
    let outcome = check_peer(&[], "peer.example", &trust, PeerRole::Client, None);
    assert_eq!(outcome.chain_valid, Err(ChainError::NoCertificate));

    // A serverAuth-only server certificate, offered as client certificate
    // (XEP-0178), from a trusted CA: valid for the claimed domain only.
    let peer = leaf(
        Spec {
            eku: vec![ExtendedKeyUsagePurpose::ServerAuth],
            ..dns(&["peer.example"])
        },
        Some(&ca),
    );
    let client = s2s_client_config(
        &trust,
        S2sVerifyMode::Strict,
        Some(&peer.identity()),
        &[XMPP_SERVER],
    )
    .expect("client");
    let done = handshake(client, Arc::clone(&server), "herald.example").expect("with cert");
    assert_eq!(done.server.server_name(), Some("herald.example"));
    let presented = done.server.peer_certificates().expect("client certificate");
    assert_eq!(presented[0], peer.cert);
    let outcome = check_peer(presented, "peer.example", &trust, PeerRole::Client, None);
    assert!(outcome.authenticates(), "{outcome}");
    let claims_other = check_peer(presented, "evil.example", &trust, PeerRole::Client, None);
    assert!(!claims_other.authenticates());
    assert_eq!(claims_other.chain_valid, Ok(()));

    // An untrusted client certificate does not break the handshake either
    // (dialback may follow); the check says why it does not authenticate.
    let stranger = leaf(dns(&["peer.example"]), Some(&other));
    let client = s2s_client_config(
        &trust,
        S2sVerifyMode::Record,
        Some(&stranger.identity()),
        &[XMPP_SERVER],
    )
    .expect("client");
    let done = handshake(client, server, "herald.example").expect("untrusted client cert");
    let presented = done.server.peer_certificates().expect("client certificate");
    let outcome = check_peer(presented, "peer.example", &trust, PeerRole::Client, None);
    assert_eq!(outcome.chain_valid, Err(ChainError::UnknownIssuer));
    assert_eq!(outcome.identity.matched, Some(IdentityKind::DnsId));
}

/// Presents a certificate with someone else's key.
#[derive(Debug)]
struct WrongKey(Arc<CertifiedKey>);

impl ResolvesServerCert for WrongKey {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

#[test]
fn record_mode_still_checks_the_handshake_signature() {
    let victim = leaf(dns(&["example.org"]), None);
    let attacker = leaf(dns(&["attacker.example"]), None);
    let stolen = Arc::new(CertifiedKey::new(
        vec![victim.cert.clone()],
        Arc::clone(&attacker.certified_key().key),
    ));
    let server = s2s_server_config(Arc::new(WrongKey(stolen)), &[]).expect("server");
    let client = s2s_client_config(
        &S2sTrust::from_certs(&[]).expect("trust"),
        S2sVerifyMode::Record,
        None,
        &[],
    )
    .expect("client");
    let failure = handshake(client, server, "example.org")
        .err()
        .expect("bad signature");
    assert!(matches!(failure, Failure::Client(_)), "{failure:?}");
}

#[test]
fn record_mode_works_against_a_tls12_server() {
    let presented = leaf(dns(&["example.org"]), None);
    let server = rustls::ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("versions")
        .with_no_client_auth()
        .with_cert_resolver(presented.store());
    let client = s2s_client_config(
        &S2sTrust::from_certs(&[]).expect("trust"),
        S2sVerifyMode::Record,
        None,
        &[],
    )
    .expect("client");
    let done = handshake(client, Arc::new(server), "example.org").expect("TLS 1.2");
    assert_eq!(
        done.client.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(
        done.client.peer_certificates().expect("chain")[0],
        presented.cert
    );
}

#[test]
fn sni_selects_the_certificate_for_the_remote_domain() {
    let ca = Ca::new("sni CA");
    let first = leaf(dns(&["one.example"]), Some(&ca));
    let second = leaf(dns(&["two.example"]), Some(&ca));
    let mut store = SniStore::new(first.identity());
    store.add(second.identity());
    let server = s2s_server_config(Arc::new(store), &[]).expect("server");
    let client = s2s_client_config(&ca.trust(), S2sVerifyMode::Strict, None, &[]).expect("client");
    for (name, expected) in [("one.example", &first.cert), ("two.example", &second.cert)] {
        let done = handshake(Arc::clone(&client), Arc::clone(&server), name).expect(name);
        assert_eq!(done.server.server_name(), Some(name));
        assert_eq!(
            &done.client.peer_certificates().expect("chain")[0],
            expected
        );
    }
}

#[test]
fn every_connection_is_a_full_handshake() {
    let ca = Ca::new("resumption CA");
    let presented = leaf(dns(&["example.org"]), Some(&ca));
    let client = s2s_client_config(&ca.trust(), S2sVerifyMode::Strict, None, &[]).expect("client");
    // Even against a server that hands out tickets, the s2s client does
    // not resume: each connection presents and verifies a certificate.
    let ticketing = herald_certs::server_config(presented.store(), &[]).expect("server");
    let s2s = s2s_server_config(presented.store(), &[]).expect("s2s server");
    for server in [ticketing, s2s] {
        for _ in 0..2 {
            let done =
                handshake(Arc::clone(&client), Arc::clone(&server), "example.org").expect("hs");
            assert_eq!(
                done.client.handshake_kind(),
                Some(rustls::HandshakeKind::Full)
            );
        }
    }
}

/// The record layer connections use (`herald_certs::tls`) exposes what
/// `check_peer` needs on both sides: the peer's chain and the SNI.
#[test]
fn the_record_layer_hands_out_peer_certificates_and_sni() {
    use herald_certs::tls::TlsSession;

    let ca = Ca::new("session CA");
    let trust = ca.trust();
    let receiving = leaf(dns(&["receiving.example"]), Some(&ca));
    let originating = leaf(dns(&["originating.example"]), Some(&ca));
    let server_config = s2s_server_config(receiving.store(), &[XMPP_SERVER]).expect("server");
    let client_config = s2s_client_config(
        &trust,
        S2sVerifyMode::Record,
        Some(&originating.identity()),
        &[XMPP_SERVER],
    )
    .expect("client");
    let name = ServerName::try_from("receiving.example").expect("name");
    let mut client = TlsSession::client(client_config, name).expect("client session");
    let mut server = TlsSession::server(server_config).expect("server session");
    for _ in 0..16 {
        let mut to_server = client.outgoing().to_vec();
        client.consume_outgoing(to_server.len());
        server.feed_hold(&mut to_server).expect("server feed");
        let mut to_client = server.outgoing().to_vec();
        server.consume_outgoing(to_client.len());
        client.feed_hold(&mut to_client).expect("client feed");
        if !client.is_handshaking() && !server.is_handshaking() {
            break;
        }
    }
    assert!(!client.is_handshaking() && !server.is_handshaking());
    assert_eq!(server.server_name(), Some("receiving.example"));
    assert_eq!(server.alpn_protocol(), Some(XMPP_SERVER));

    let from_client = server.peer_certificates().expect("client certificate");
    let inbound = check_peer(
        from_client,
        "originating.example",
        &trust,
        PeerRole::Client,
        None,
    );
    assert!(inbound.authenticates(), "{inbound}");
    let from_server = client.peer_certificates().expect("server certificate");
    let outbound = check_peer(
        from_server,
        "receiving.example",
        &trust,
        PeerRole::Server,
        None,
    );
    assert!(outbound.authenticates(), "{outbound}");
}
