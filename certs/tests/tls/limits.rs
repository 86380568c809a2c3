//! Every buffer is bounded; exceeding a bound is an error, never a panic or
//! unbounded growth. Also: small records everywhere (handshake messages
//! reassembled from many records inside the session's pending buffer).

use herald_certs::tls::{Limit, TlsError, TlsLimits, TlsSession};

use crate::pki::{Options, TLS12, TLS13};
use crate::pump::{check_bounds, plaintext_alert, Cuts, Pair, Peer, PeerError};
use crate::{ours_server, pattern, rustls_client};

fn limits(change: impl FnOnce(&mut TlsLimits)) -> TlsLimits {
    let mut limits = TlsLimits::default();
    change(&mut limits);
    limits
}

fn server(options: &Options, limits: TlsLimits) -> TlsSession {
    TlsSession::server(options.server())
        .expect("server")
        .with_limits(limits)
}

#[test]
fn defaults() {
    let limits = TlsLimits::default();
    assert_eq!(limits.max_handshake_buffer, 96 * 1024);
    assert_eq!(limits.max_pending, 80 * 1024);
    assert_eq!(limits.max_held_plaintext, 64 * 1024);
    assert_eq!(limits.max_outgoing, 8 * 1024 * 1024);
}

#[test]
fn handshake_buffer() {
    let options = Options::default();
    let mut session = server(&options, limits(|l| l.max_handshake_buffer = 200));
    // A handshake record announcing 16000 bytes, 300 of which arrive.
    let mut input = vec![22, 3, 1, 0x3e, 0x80];
    input.extend_from_slice(&[1; 300]);
    let expected = TlsError::LimitExceeded(Limit::HandshakeBuffer);
    assert_eq!(session.feed(&mut input, &mut |_| {}), Err(expected.clone()));
    check_bounds(&session);
    assert_eq!(session.feed(&mut [22], &mut |_| {}), Err(expected));
}

/// rustls refuses a record header announcing more than 16 KiB + 2 KiB with
/// decode_error (its choice; RFC 8446 would have record_overflow).
#[test]
fn oversized_records_are_refused_with_an_alert() {
    let options = Options::default();
    let mut session = server(&options, TlsLimits::default());
    let mut input = vec![22, 3, 1, 0x48, 0x01, 1];
    let error = session
        .feed(&mut input, &mut |_| {})
        .expect_err("too large");
    assert!(matches!(error, TlsError::Protocol(_)), "{error:?}");
    assert_eq!(plaintext_alert(session.outgoing()), Some((2, 50)));
}

#[test]
fn pending_ciphertext_after_the_handshake() {
    let options = Options::default().versions(TLS13);
    let session = server(&options, limits(|l| l.max_pending = 1000));
    let mut pair = Pair::new(rustls_client(&options), Peer::Ours(session));
    pair.handshake();
    pair.client.send(&pattern(16 * 1024, 1));
    let record = pair.client.take_output();
    let server = pair.server.ours_mut();
    let mut part = record[..999].to_vec();
    server
        .feed(&mut part, &mut |_| {})
        .expect("below the bound");
    let mut more = record[999..1500].to_vec();
    assert_eq!(
        server.feed(&mut more, &mut |_| {}),
        Err(TlsError::LimitExceeded(Limit::PendingCiphertext))
    );
    check_bounds(server);
}

#[test]
fn held_plaintext() {
    let options = Options::default().versions(TLS13);
    let mut pair = Pair::new(
        rustls_client(&options),
        Peer::Ours(server(&options, limits(|l| l.max_held_plaintext = 10))),
    );
    let hello = pair.client.take_output();
    pair.server.receive(&hello);
    let flight = pair.server.take_output();
    pair.client.receive(&flight);
    pair.client.send(b"sixteen bytes!!!");
    let mut last = pair.client.take_output();
    let server = pair.server.ours_mut();
    assert_eq!(
        server.feed_hold(&mut last),
        Err(TlsError::LimitExceeded(Limit::HeldPlaintext))
    );
    check_bounds(server);
}

#[test]
fn outgoing_is_refused_not_failed() {
    for versions in [TLS13, TLS12] {
        let options = Options::default().versions(versions);
        let session = server(&options, limits(|l| l.max_outgoing = 50_000));
        let mut pair = Pair::new(rustls_client(&options), Peer::Ours(session));
        pair.handshake();
        let server = pair.server.ours_mut();
        assert_eq!(
            server.seal(&pattern(100_000, 1)),
            Err(TlsError::LimitExceeded(Limit::Outgoing))
        );
        assert!(server.outgoing().is_empty(), "nothing was encrypted");
        assert_eq!(server.error(), None);
        server.seal(&pattern(40_000, 2)).expect("within the bound");
        assert_eq!(
            server.seal(&pattern(20_000, 3)),
            Err(TlsError::LimitExceeded(Limit::Outgoing)),
            "the bound counts what is still queued"
        );
        pair.pump();
        assert_eq!(pair.client.received, pattern(40_000, 2));
        assert_eq!(pair.client.error, None);
    }
}

/// Peers that cut every handshake message into 32-byte records: the session
/// reassembles them from its pending buffer, fed a byte at a time.
#[test]
fn tiny_records_everywhere() {
    for versions in [TLS13, TLS12] {
        let mut options = Options::default().versions(versions);
        options.max_fragment_size = Some(32);
        let mut pair = Pair::new(rustls_client(&options), ours_server(&options))
            .with_cuts(Cuts::bytes(), Cuts::sizes(vec![5, 1]));
        pair.handshake();
        pair.client.send(&pattern(5000, 1));
        pair.server.send(&pattern(5000, 2));
        pair.pump();
        assert_eq!(pair.server.received, pattern(5000, 1));
        assert_eq!(pair.client.received, pattern(5000, 2));

        // The records of a handshake message are kept until it is complete:
        // with a bound below that, arriving in pieces, it fails cleanly.
        let small = server(&options, limits(|l| l.max_handshake_buffer = 64));
        let mut pair = Pair::new(rustls_client(&options), Peer::Ours(small))
            .with_cuts(Cuts::sizes(vec![40]), Cuts::whole());
        pair.pump();
        assert_eq!(
            pair.server.error,
            Some(PeerError::Ours(TlsError::LimitExceeded(
                Limit::HandshakeBuffer
            )))
        );
    }
}
