//! Handshakes and data transfer: our session against itself and against
//! rustls, TLS 1.3 and 1.2, what the session reports afterwards.

use herald_certs::tls::TlsSession;
use rustls::ProtocolVersion;

use crate::pki::{pki, Options, TLS12, TLS13, XMPP_CLIENT};
use crate::pump::{Cuts, Pair, Peer};
use crate::{ours_client, ours_server, pattern, rustls_client, rustls_server};

const VERSIONS: [(&[&rustls::SupportedProtocolVersion], ProtocolVersion); 2] = [
    (TLS13, ProtocolVersion::TLSv1_3),
    (TLS12, ProtocolVersion::TLSv1_2),
];

/// Handshake, then 100 KB each way, and check what both sides received.
fn exchange(pair: &mut Pair) {
    pair.handshake();
    let up = pattern(100_000, 1);
    let down = pattern(100_000, 2);
    pair.client.send(&up);
    pair.server.send(&down);
    pair.pump();
    assert_eq!(pair.server.received, up);
    assert_eq!(pair.client.received, down);
    assert_eq!(pair.client.error, None);
    assert_eq!(pair.server.error, None);
}

#[test]
fn our_client_and_server_agree_in_both_versions() {
    for (versions, version) in VERSIONS {
        let options = Options::default().versions(versions).alpn(&[XMPP_CLIENT]);
        let mut pair = Pair::new(ours_client(&options), ours_server(&options));
        exchange(&mut pair);
        let server = pair.server.ours();
        let client = pair.client.ours();
        assert_eq!(server.protocol_version(), Some(version));
        assert_eq!(client.protocol_version(), Some(version));
        assert_eq!(server.alpn_protocol(), Some(XMPP_CLIENT));
        assert_eq!(client.alpn_protocol(), Some(XMPP_CLIENT));
        assert_eq!(server.server_name(), Some("localhost"));
        assert_eq!(client.server_name(), None);
        assert_eq!(
            client.peer_certificates(),
            Some(pki().server_chain.as_slice())
        );
        assert_eq!(server.peer_certificates(), None);
        assert!(server.is_server() && !client.is_server());
    }
}

#[test]
fn our_server_serves_rustls_clients_cut_anywhere() {
    for (versions, version) in VERSIONS {
        for cuts in [
            Cuts::whole(),
            Cuts::bytes(),
            Cuts::sizes(vec![3, 7, 1, 4096]),
        ] {
            let options = Options::default().versions(versions);
            let mut pair = Pair::new(rustls_client(&options), ours_server(&options))
                .with_cuts(cuts.clone(), cuts);
            exchange(&mut pair);
            assert_eq!(pair.server.ours().protocol_version(), Some(version));
        }
    }
}

#[test]
fn our_client_talks_to_rustls_servers_cut_anywhere() {
    for (versions, version) in VERSIONS {
        for cuts in [Cuts::whole(), Cuts::bytes(), Cuts::sizes(vec![5, 2, 300])] {
            let options = Options::default().versions(versions);
            let mut pair = Pair::new(ours_client(&options), rustls_server(&options))
                .with_cuts(cuts.clone(), cuts);
            exchange(&mut pair);
            assert_eq!(pair.client.ours().protocol_version(), Some(version));
        }
    }
}

#[test]
fn sni_and_client_certificates_are_reported() {
    for (versions, _) in VERSIONS {
        let options = Options::default().versions(versions).mtls();
        let name = rustls::pki_types::ServerName::try_from("Chat.Example.Org").expect("name");
        let client = TlsSession::client(options.client(), name).expect("client");
        let mut pair = Pair::new(Peer::Ours(client), ours_server(&options));
        exchange(&mut pair);
        let server = pair.server.ours();
        assert_eq!(server.server_name(), Some("chat.example.org"));
        assert_eq!(
            server.peer_certificates(),
            Some(pki().client_chain.as_slice())
        );
    }
}

/// The handshake is complete when rustls stops handshaking, not when it first
/// allows writing (a TLS 1.3 server may write right after its own Finished).
#[test]
fn the_handshake_completes_with_the_clients_finished() {
    let options = Options::default().versions(TLS13);
    let mut client =
        rustls::ClientConnection::new(options.client(), crate::pki::localhost()).expect("client");
    let mut server = TlsSession::server(options.server()).expect("server");
    let mut hello = Vec::new();
    client.write_tls(&mut hello).expect("hello");
    let received = server
        .feed(&mut hello, &mut |_| panic!("no data yet"))
        .expect("feed");
    assert!(received.queued_output, "the server flight is queued");
    assert!(!received.handshake_complete);
    assert!(server.is_handshaking());
    assert_eq!(
        server.seal(b"too early"),
        Err(herald_certs::tls::TlsError::HandshakeIncomplete)
    );

    let flight = server.outgoing().to_vec();
    server.consume_outgoing(flight.len());
    client.read_tls(&mut flight.as_slice()).expect("read");
    client.process_new_packets().expect("server flight");
    assert!(!client.is_handshaking());
    let mut finished = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut finished).expect("finished");
    }
    let received = server.feed(&mut finished, &mut |_| {}).expect("finished");
    assert!(received.handshake_complete);
    assert!(!server.is_handshaking());
    assert!(
        received.queued_output,
        "session tickets follow the handshake"
    );
    // Reported once.
    let received = server.feed(&mut [], &mut |_| {}).expect("nothing");
    assert!(!received.handshake_complete);
}

/// Application data in the same flight as the client's Finished is delivered,
/// to the sink or held for a driver that has none yet. (TLS 1.3: in TLS 1.2
/// the client's Finished precedes the server's, so no data can follow it.)
#[test]
fn data_behind_the_finished_is_not_lost() {
    {
        for hold in [false, true] {
            let options = Options::default().versions(TLS13);
            let mut client =
                rustls::ClientConnection::new(options.client(), crate::pki::localhost())
                    .expect("client");
            let mut server = TlsSession::server(options.server()).expect("server");
            let mut delivered = Vec::new();
            let mut complete = false;
            for _ in 0..8 {
                let mut to_server = Vec::new();
                while client.wants_write() {
                    client.write_tls(&mut to_server).expect("write");
                }
                if !client.is_handshaking() && !complete {
                    // Finished is queued: pipeline the stream header behind it.
                    use std::io::Write;
                    client.writer().write_all(b"<stream:stream>").expect("data");
                    while client.wants_write() {
                        client.write_tls(&mut to_server).expect("write");
                    }
                }
                let received = if hold {
                    server.feed_hold(&mut to_server).expect("feed")
                } else {
                    server
                        .feed(&mut to_server, &mut |p| delivered.extend_from_slice(p))
                        .expect("feed")
                };
                complete |= received.handshake_complete;
                if complete {
                    break;
                }
                let to_client = server.outgoing().to_vec();
                server.consume_outgoing(to_client.len());
                client.read_tls(&mut to_client.as_slice()).expect("read");
                client.process_new_packets().expect("client");
            }
            assert!(complete);
            if hold {
                assert_eq!(server.held_plaintext_len(), 15);
                server.take_held_plaintext(&mut |p| delivered.extend_from_slice(p));
                assert_eq!(server.held_plaintext_len(), 0);
            }
            assert_eq!(delivered, b"<stream:stream>");
        }
    }
}

/// An idle session holds no receive buffer and no large send buffer; a
/// partial record is kept exactly.
#[test]
fn idle_sessions_hold_no_buffers() {
    let options = Options::default().versions(TLS13);
    let mut pair = Pair::new(rustls_client(&options), ours_server(&options));
    exchange(&mut pair);
    let server = pair.server.ours_mut();
    assert_eq!(server.pending_len(), 0);
    assert!(
        server.buffer_capacity() <= 1024,
        "{}",
        server.buffer_capacity()
    );
    server.release_buffers();
    assert_eq!(server.buffer_capacity(), 0);

    // Half a record: exactly that half is kept.
    use std::io::Write;
    pair.client
        .client()
        .writer()
        .write_all(&pattern(1000, 3))
        .expect("data");
    let record = pair.client.take_output();
    let server = pair.server.ours_mut();
    let mut first = record[..600].to_vec();
    let mut got = Vec::new();
    server
        .feed(&mut first, &mut |p| got.extend_from_slice(p))
        .expect("first half");
    assert_eq!(server.pending_len(), 600);
    assert_eq!(server.buffer_capacity(), 600);
    let mut rest = record[600..].to_vec();
    server
        .feed(&mut rest, &mut |p| got.extend_from_slice(p))
        .expect("second half");
    assert_eq!(got, pattern(1000, 3));
    assert_eq!(server.pending_len(), 0);
    assert_eq!(server.buffer_capacity(), 0);
}
