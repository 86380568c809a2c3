//! Handshake failures put the right alert on the wire before the session
//! reports its error: plaintext alerts are decoded from the bytes, encrypted
//! ones by the rustls peer that receives them.

use std::sync::Arc;

use herald_certs::tls::{TlsError, TlsSession};
use rustls::crypto::ring::{cipher_suite, kx_group};
use rustls::{AlertDescription, Error, PeerIncompatible};

use crate::pki::{localhost, Options, TLS12, TLS13, XMPP_CLIENT};
use crate::pump::{plaintext_alert, records, Pair, Peer, PeerError};
use crate::raw::{handshake_message, with_key_log, RecordKeys, SecretLog, HANDSHAKE};
use crate::{ours_server, rustls_client};

const FATAL: u8 = 2;

/// Run `client` against our server until neither has more to say.
fn run(client: &Options, server: &Options) -> Pair {
    let mut pair = Pair::new(rustls_client(client), ours_server(server));
    pair.pump();
    pair
}

/// The server failed with `error`, its last transmission ended with the fatal
/// alert `description` (decoded here when plaintext; encrypted under the
/// handshake keys otherwise), and the client received it.
fn assert_alert(pair: &Pair, error: Error, description: AlertDescription) {
    assert_eq!(
        pair.server.error,
        Some(PeerError::Ours(TlsError::Protocol(error)))
    );
    let last = pair.server.sent.last().expect("the server sent something");
    let records = records(last);
    match records.last() {
        Some((21, payload)) => assert_eq!(payload, &[FATAL, u8::from(description)]),
        Some((23, payload)) => assert_eq!(payload.len(), 2 + 1 + 16, "one encrypted alert"),
        other => panic!("no alert at the end: {other:?}"),
    }
    assert_eq!(
        pair.client.error,
        Some(PeerError::Rustls(Error::AlertReceived(description)))
    );
}

#[test]
fn no_common_cipher_suite() {
    for (versions, ours, theirs) in [
        (
            TLS13,
            cipher_suite::TLS13_AES_256_GCM_SHA384,
            cipher_suite::TLS13_AES_128_GCM_SHA256,
        ),
        (
            TLS12,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
    ] {
        let server = Options::default().versions(versions).suites(&[ours]);
        let client = Options::default().versions(versions).suites(&[theirs]);
        let pair = run(&client, &server);
        assert_alert(
            &pair,
            Error::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon),
            AlertDescription::HandshakeFailure,
        );
    }
}

#[test]
fn no_common_group() {
    for versions in [TLS13, TLS12] {
        let server = Options::default()
            .versions(versions)
            .groups(&[kx_group::X25519]);
        let client = Options::default()
            .versions(versions)
            .groups(&[kx_group::SECP256R1]);
        let pair = run(&client, &server);
        assert_alert(
            &pair,
            Error::PeerIncompatible(PeerIncompatible::NoKxGroupsInCommon),
            AlertDescription::HandshakeFailure,
        );
    }
}

#[test]
fn alpn_mismatch() {
    for versions in [TLS13, TLS12] {
        let server = Options::default().versions(versions).alpn(&[XMPP_CLIENT]);
        let client = Options::default().versions(versions).alpn(&[b"h2"]);
        let pair = run(&client, &server);
        assert_alert(
            &pair,
            Error::NoApplicationProtocol,
            AlertDescription::NoApplicationProtocol,
        );
    }
}

#[test]
fn a_peer_that_does_not_speak_tls() {
    for garbage in [
        &b"<?xml version='1.0'?><stream:stream to='localhost'>"[..],
        b"GET / HTTP/1.0\r\n\r\n",
        b"\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10",
    ] {
        let options = Options::default();
        let mut server = TlsSession::server(options.server()).expect("server");
        let mut input = garbage.to_vec();
        let error = server.feed(&mut input, &mut |_| {}).expect_err("not TLS");
        assert!(matches!(error, TlsError::Protocol(_)), "{error:?}");
        let alert = plaintext_alert(server.outgoing()).expect("an alert");
        assert_eq!(alert.0, FATAL);
        assert!(!server.is_handshaking());
        assert_eq!(server.feed(&mut input, &mut |_| {}), Err(error));
    }
}

#[test]
fn a_truncated_handshake_waits_without_error() {
    let options = Options::default();
    let mut client = rustls::ClientConnection::new(options.client(), localhost()).expect("client");
    let mut hello = Vec::new();
    client.write_tls(&mut hello).expect("hello");
    let mut server = TlsSession::server(options.server()).expect("server");
    for cut in [1, 4, 5, 6, hello.len() / 2, hello.len() - 1] {
        let mut server_cut = TlsSession::server(options.server()).expect("server");
        let mut part = hello[..cut].to_vec();
        let received = server_cut
            .feed(&mut part, &mut |_| {})
            .expect("incomplete is fine");
        assert!(!received.queued_output);
        assert!(server_cut.is_handshaking());
        assert_eq!(server_cut.pending_len(), cut);
    }
    let mut whole = hello.clone();
    server.feed(&mut whole, &mut |_| {}).expect("hello");
    assert!(server.wants_write());
}

/// A Finished that does not verify (of the right length or not) and another
/// message in its place, crafted with the client's handshake traffic keys
/// (TLS 1.3); a corrupted Finished record in both versions.
#[test]
fn bad_finished() {
    for (message, description) in [
        (
            handshake_message(20, &[0xaa; 32]),
            AlertDescription::DecryptError,
        ),
        (
            handshake_message(20, &[0xaa; 31]),
            AlertDescription::DecryptError,
        ),
        (
            handshake_message(11, &[0, 0, 0, 0]),
            AlertDescription::UnexpectedMessage,
        ),
    ] {
        let log = Arc::new(SecretLog::default());
        let options = Options::default()
            .versions(TLS13)
            .suites(&[cipher_suite::TLS13_AES_128_GCM_SHA256]);
        let config = with_key_log(options.client(), Arc::clone(&log));
        let client = rustls::ClientConnection::new(config, localhost()).expect("client");
        let mut pair = Pair::new(Peer::Client(client), ours_server(&options));
        let hello = pair.client.take_output();
        pair.server.receive(&hello);
        let flight = pair.server.take_output();
        pair.client.receive(&flight);
        let _real = pair.client.take_output();
        let mut keys = RecordKeys::tls13_from_secret(&log.get("CLIENT_HANDSHAKE_TRAFFIC_SECRET"));
        let forged = keys.seal(HANDSHAKE, &message);
        pair.server.receive(&forged);
        match pair.server.error.clone() {
            Some(PeerError::Ours(TlsError::Protocol(Error::DecryptError))) => {
                assert_eq!(description, AlertDescription::DecryptError);
            }
            Some(PeerError::Ours(TlsError::Protocol(Error::InappropriateHandshakeMessage {
                ..
            }))) => assert_eq!(description, AlertDescription::UnexpectedMessage),
            other => panic!("{other:?}"),
        }
        // Encrypted under the server's traffic keys: the client decodes it.
        let alert = pair.server.take_output();
        assert_eq!(alert.len(), 5 + 2 + 1 + 16, "one encrypted alert record");
        pair.client.receive(&alert);
        assert_eq!(
            pair.client.error,
            Some(PeerError::Rustls(Error::AlertReceived(description)))
        );
    }
    for versions in [TLS13, TLS12] {
        let options = Options::default().versions(versions);
        let mut pair = Pair::new(rustls_client(&options), ours_server(&options));
        for flight in 0..4 {
            let mut to_server = pair.client.take_output();
            if flight == 1 {
                // The client's second flight ends with its Finished: corrupt it.
                let end = to_server.len() - 1;
                to_server[end] ^= 0x40;
            }
            pair.server.receive(&to_server);
            let to_client = pair.server.take_output();
            pair.client.receive(&to_client);
            if pair.server.error.is_some() {
                break;
            }
        }
        assert_eq!(
            pair.server.error,
            Some(PeerError::Ours(TlsError::Protocol(Error::DecryptError)))
        );
        assert_eq!(
            pair.client.error,
            Some(PeerError::Rustls(Error::AlertReceived(
                AlertDescription::BadRecordMac
            )))
        );
    }
}
