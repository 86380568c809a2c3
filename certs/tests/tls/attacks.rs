//! Records no well-behaved peer sends, crafted with the client's keys after
//! a real handshake: two KeyUpdates in one record (the input that made the
//! old c2s layer panic), a renegotiation, corrupted records.

use herald_certs::tls::{TlsError, TlsSession};
use rustls::{Error, PeerMisbehaved, ProtocolVersion};

use crate::pki::{Options, TLS12, TLS13};
use crate::pump::{check_bounds, Cuts, Pair, Peer};
use crate::raw::{handshake_message, RecordKeys, ALERT, APPLICATION_DATA, HANDSHAKE};
use crate::{ours_server, pattern, rustls_client};

const KEY_UPDATE: u8 = 24;
const UPDATE_NOT_REQUESTED: u8 = 0;
const UPDATE_REQUESTED: u8 = 1;

/// Our server after a handshake with a rustls client, and that client's keys.
pub struct Established {
    pub server: TlsSession,
    /// Protects what the client sends.
    pub tx: RecordKeys,
    /// Opens what the server sends.
    pub rx: RecordKeys,
}

pub fn established(versions: &'static [&'static rustls::SupportedProtocolVersion]) -> Established {
    let options = Options::default()
        .versions(versions)
        .suites(&[
            rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
            rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ])
        .extract_secrets();
    let mut pair = Pair::new(rustls_client(&options), ours_server(&options));
    pair.handshake();
    let Pair { client, server } = pair;
    let Peer::Client(client) = client.peer else {
        unreachable!()
    };
    let Peer::Ours(server) = server.peer else {
        unreachable!()
    };
    let tls13 = server.protocol_version() == Some(ProtocolVersion::TLSv1_3);
    let secrets = client.dangerous_extract_secrets().expect("secrets");
    Established {
        server,
        tx: RecordKeys::extracted(secrets.tx, tls13),
        rx: RecordKeys::extracted(secrets.rx, tls13),
    }
}

/// Feed `wire` in pieces; the results of every call.
fn feed_cut(server: &mut TlsSession, wire: &[u8], cuts: &mut Cuts) -> Vec<Result<usize, TlsError>> {
    let mut results = Vec::new();
    for piece in cuts.split_pub(wire) {
        let mut scratch = piece.to_vec();
        results.push(server.feed(&mut scratch, &mut |_| {}).map(|r| r.plaintext));
        check_bounds(server);
    }
    results
}

fn take(server: &mut TlsSession) -> Vec<u8> {
    let out = server.outgoing().to_vec();
    server.consume_outgoing(out.len());
    out
}

#[test]
fn two_key_updates_in_one_record_get_an_alert_and_no_panic() {
    let both = [
        handshake_message(KEY_UPDATE, &[UPDATE_REQUESTED]),
        handshake_message(KEY_UPDATE, &[UPDATE_REQUESTED]),
    ]
    .concat();
    for cuts in [Cuts::whole(), Cuts::bytes(), Cuts::sizes(vec![7, 1, 13])] {
        let mut e = established(TLS13);
        let mut wire = e.tx.seal(HANDSHAKE, &both);
        // More records behind it in the same read must not matter.
        let trailing = e.tx.seal(APPLICATION_DATA, b"<presence/>");
        wire.extend_from_slice(&trailing);
        let results = feed_cut(&mut e.server, &wire, &mut cuts.clone());
        let expected = TlsError::Protocol(Error::PeerMisbehaved(
            PeerMisbehaved::KeyEpochWithPendingFragment,
        ));
        let first_error = results.iter().position(Result::is_err).expect("an error");
        assert!(results[..first_error].iter().all(|r| r == &Ok(0)));
        assert!(results[first_error..]
            .iter()
            .all(|r| r == &Err(expected.clone())));
        assert_eq!(e.server.error(), Some(&expected));

        // The alert rustls queued goes out, under the keys the client expects.
        let alert = take(&mut e.server);
        assert_eq!(e.rx.open_all(&alert), vec![(ALERT, vec![2, 10])]);

        // The close path and every later call are harmless.
        assert_eq!(e.server.close(), Ok(()));
        assert!(e.server.outgoing().is_empty());
        assert_eq!(e.server.seal(b"x"), Err(expected.clone()));
        assert_eq!(e.server.refresh_traffic_keys(), Err(expected.clone()));
        let mut more = e.tx.seal(HANDSHAKE, &both);
        assert_eq!(e.server.feed(&mut more, &mut |_| {}), Err(expected.clone()));
        assert_eq!(e.server.feed_hold(&mut []), Err(expected));
        assert_eq!(e.server.pending_len(), 0);
        e.server.release_buffers();
        assert_eq!(e.server.buffer_capacity(), 0);
    }
}

/// The old c2s layer's close path fed rustls a buffer that no longer matched
/// its state after this error; rustls 0.23.46 then panics in its deframer.
/// The session never does that (see `drain_alert` in session.rs).
#[test]
fn rustls_panics_on_a_mismatched_buffer_after_that_error() {
    assert!(old_close_path_panics());
}

/// The same attack on a bare unbuffered rustls server driven the old way.
fn old_close_path_panics() -> bool {
    use rustls::server::UnbufferedServerConnection;
    use rustls::unbuffered::ConnectionState;
    let options = Options::default()
        .versions(TLS13)
        .suites(&[rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256])
        .extract_secrets();
    let mut client =
        rustls::ClientConnection::new(options.client(), crate::pki::localhost()).expect("client");
    let mut server = UnbufferedServerConnection::new(options.server()).expect("server");
    let mut incoming = Vec::new();
    // Handshake, the unbuffered server driven by hand.
    for _ in 0..16 {
        while client.wants_write() {
            client.write_tls(&mut incoming).expect("write");
        }
        let mut outgoing = Vec::new();
        loop {
            let status = server.process_tls_records(&mut incoming);
            let discard = status.discard;
            let more = match status.state.expect("handshake") {
                ConnectionState::EncodeTlsData(mut enc) => {
                    let mut buf = vec![0; 16 * 1024];
                    let n = enc.encode(&mut buf).expect("encode");
                    outgoing.extend_from_slice(&buf[..n]);
                    true
                }
                ConnectionState::TransmitTlsData(tx) => {
                    tx.done();
                    true
                }
                _ => false,
            };
            incoming.drain(..discard);
            if !more {
                break;
            }
        }
        client.read_tls(&mut outgoing.as_slice()).expect("read");
        client.process_new_packets().expect("client");
        if !client.is_handshaking() && !server.is_handshaking() && !client.wants_write() {
            break;
        }
    }
    let secrets = client.dangerous_extract_secrets().expect("secrets");
    let mut tx = RecordKeys::extracted(secrets.tx, true);
    let both = [
        handshake_message(KEY_UPDATE, &[UPDATE_REQUESTED]),
        handshake_message(KEY_UPDATE, &[UPDATE_REQUESTED]),
    ]
    .concat();
    let mut attack = tx.seal(HANDSHAKE, &both);
    let status = server.process_tls_records(&mut attack);
    assert!(status.state.is_err());
    // The old layer dropped the buffer (it was the shared read buffer) and
    // later asked rustls for close_notify with its empty `pending` buffer.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for _ in 0..4 {
            let status = server.process_tls_records(&mut []);
            match status.state {
                Ok(ConnectionState::EncodeTlsData(mut enc)) => {
                    let _ = enc.encode(&mut [0; 1024]);
                }
                Ok(ConnectionState::TransmitTlsData(tx)) => tx.done(),
                _ => return,
            }
        }
    }))
    .is_err()
}

/// KeyUpdate split over two records is legal; the reply goes out at once.
#[test]
fn a_key_update_request_is_answered_immediately() {
    for split in [false, true] {
        let mut e = established(TLS13);
        let message = handshake_message(KEY_UPDATE, &[UPDATE_REQUESTED]);
        let mut wire = if split {
            [
                e.tx.seal(HANDSHAKE, &message[..2]),
                e.tx.seal(HANDSHAKE, &message[2..]),
            ]
            .concat()
        } else {
            e.tx.seal(HANDSHAKE, &message)
        };
        let received = e.server.feed(&mut wire, &mut |_| {}).expect("key update");
        assert!(received.queued_output, "the reply must not wait for data");
        let reply = take(&mut e.server);
        assert_eq!(
            e.rx.open_all(&reply),
            vec![(
                HANDSHAKE,
                handshake_message(KEY_UPDATE, &[UPDATE_NOT_REQUESTED])
            )]
        );
    }
    // A KeyUpdate that does not ask for one gets nothing back.
    let mut e = established(TLS13);
    let mut quiet = e.tx.seal(
        HANDSHAKE,
        &handshake_message(KEY_UPDATE, &[UPDATE_NOT_REQUESTED]),
    );
    let received = e.server.feed(&mut quiet, &mut |_| {}).expect("key update");
    assert!(!received.queued_output);
    assert!(e.server.outgoing().is_empty());
}

#[test]
fn a_tls12_renegotiation_is_refused_at_once() {
    let mut e = established(TLS12);
    // A real ClientHello, as a client would send to renegotiate.
    let options = Options::default().versions(TLS12);
    let mut fresh =
        rustls::ClientConnection::new(options.client(), crate::pki::localhost()).expect("client");
    let mut hello = Vec::new();
    fresh.write_tls(&mut hello).expect("hello");
    let mut wire = e.tx.seal(HANDSHAKE, &hello[5..]);
    let received = e
        .server
        .feed(&mut wire, &mut |_| {})
        .expect("refused, not failed");
    assert!(received.queued_output, "the refusal must not wait for data");
    let refusal = take(&mut e.server);
    assert_eq!(e.rx.open_all(&refusal), vec![(ALERT, vec![1, 100])]);

    // The connection goes on.
    let mut data = e.tx.seal(APPLICATION_DATA, b"<iq/>");
    let mut got = Vec::new();
    e.server
        .feed(&mut data, &mut |p| got.extend_from_slice(p))
        .expect("data");
    assert_eq!(got, b"<iq/>");
    e.server.seal(b"<iq type='result'/>").expect("seal");
    let reply = take(&mut e.server);
    assert_eq!(
        e.rx.open_all(&reply),
        vec![(APPLICATION_DATA, b"<iq type='result'/>".to_vec())]
    );

    // rustls allows one refusal; a second attempt ends the session (rustls
    // sends no alert for it).
    let mut again = e.tx.seal(HANDSHAKE, &hello[5..]);
    let expected = TlsError::Protocol(Error::PeerMisbehaved(
        PeerMisbehaved::TooManyRenegotiationRequests,
    ));
    assert_eq!(e.server.feed(&mut again, &mut |_| {}), Err(expected));
}

#[test]
fn a_corrupted_record_gets_bad_record_mac() {
    for versions in [TLS13, TLS12] {
        let mut e = established(versions);
        let mut wire = e.tx.seal(APPLICATION_DATA, &pattern(300, 9));
        let last = wire.len() - 1;
        wire[last] ^= 1;
        let result = e.server.feed(&mut wire, &mut |_| panic!("no data"));
        assert_eq!(result, Err(TlsError::Protocol(Error::DecryptError)));
        let alert = take(&mut e.server);
        assert_eq!(e.rx.open_all(&alert), vec![(ALERT, vec![2, 20])]);
    }
}

#[test]
fn an_unknown_content_type_gets_unexpected_message() {
    let mut e = established(TLS13);
    let mut wire = e.tx.seal(99, b"hello");
    let result = e.server.feed(&mut wire, &mut |_| {});
    assert!(matches!(result, Err(TlsError::Protocol(_))), "{result:?}");
    let alert = take(&mut e.server);
    let opened = e.rx.open_all(&alert);
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].0, ALERT);
    assert_eq!(opened[0].1[0], 2, "fatal");
}

/// Fuzzing found this: we close, then the peer sends a record rustls must
/// reject. rustls 0.23 debug-asserts that no fatal alert follows a
/// close_notify; the session no longer reads once it closed.
#[test]
fn a_bad_record_after_our_close_notify_is_ignored() {
    for versions in [TLS13, TLS12] {
        let mut e = established(versions);
        e.server.close().expect("close");
        let _close_notify = take(&mut e.server);
        let mut wire = e.tx.seal(ALERT, &[0xc0, 7, 7, 0xd4]);
        wire.extend_from_slice(&e.tx.seal(HANDSHAKE, &[0x2c]));
        wire.extend_from_slice(b"\x2cnot a record");
        for piece in [&wire[..3], &wire[3..]] {
            let mut scratch = piece.to_vec();
            let received = e.server.feed(&mut scratch, &mut |_| panic!("no data"));
            assert_eq!(received.map(|r| r.plaintext), Ok(0));
            check_bounds(&e.server);
        }
        assert!(e.server.outgoing().is_empty());
        assert_eq!(e.server.error(), None);
    }
}
