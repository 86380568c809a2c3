//! close_notify in both directions, half-closed sessions, input after the
//! peer's close, and closing before the handshake is done.

use herald_certs::tls::{TlsError, TlsSession};

use crate::pki::{localhost, Options, TLS12, TLS13};
use crate::pump::{Pair, Peer};
use crate::{ours_client, ours_server, rustls_client};

#[test]
fn the_client_closes_first() {
    for versions in [TLS13, TLS12] {
        let options = Options::default().versions(versions);
        let mut pair = Pair::new(rustls_client(&options), ours_server(&options));
        pair.handshake();
        pair.client.send(b"</stream:stream>");
        pair.client.close();
        let last = pair.client.take_output();
        pair.server.receive(&last);
        assert_eq!(pair.server.received, b"</stream:stream>");
        assert!(pair.server.eof, "reported by feed");
        let server = pair.server.ours_mut();
        assert!(server.peer_closed());
        // The peer said it is done: later input is ignored.
        let received = server
            .feed(&mut [23, 3, 3, 0, 1, 0], &mut |_| panic!())
            .expect("ignored");
        assert_eq!(received.plaintext, 0);
        assert_eq!(server.pending_len(), 0);
        // We may still write, then close in turn.
        server
            .seal(b"</stream:stream>")
            .expect("half-closed: we may still write");
        server.close().expect("close");
        assert!(server.close_sent());
        assert_eq!(server.seal(b"more"), Err(TlsError::Closed));
        assert_eq!(server.close(), Ok(()), "idempotent");
        pair.pump();
        assert_eq!(pair.client.received, b"</stream:stream>");
        assert!(pair.client.eof);
        assert_eq!(pair.client.error, None);
    }
}

/// Once it sent close_notify, a session reads nothing more: rustls 0.23
/// debug-asserts on a fatal alert after close_notify, which a malformed record
/// would cause (found by fuzzing; see `close` in session.rs).
#[test]
fn after_closing_the_server_reads_nothing() {
    for versions in [TLS13, TLS12] {
        let options = Options::default().versions(versions);
        let mut pair = Pair::new(rustls_client(&options), ours_server(&options));
        pair.handshake();
        pair.server.send(b"<stream:error/>");
        pair.server.close();
        pair.pump();
        assert!(pair.client.eof);
        assert_eq!(pair.client.received, b"<stream:error/>");
        pair.client.send(b"late");
        pair.client.close();
        pair.pump();
        assert!(pair.server.received.is_empty(), "ignored");
        assert_eq!(pair.server.error, None);
        let server = pair.server.ours();
        assert!(!server.peer_closed(), "not read");
        assert_eq!(server.pending_len(), 0);
        assert!(
            server.outgoing().is_empty(),
            "nothing after our close_notify"
        );
    }
}

#[test]
fn our_sessions_close_each_other() {
    for versions in [TLS13, TLS12] {
        let options = Options::default().versions(versions);
        let mut pair = Pair::new(ours_client(&options), ours_server(&options));
        pair.handshake();
        pair.client.send(b"bye");
        pair.client.close();
        pair.pump();
        assert!(pair.server.ours().peer_closed());
        pair.server.close();
        let last = pair.server.take_output();
        assert_eq!(
            last.len(),
            if versions == TLS13 { 24 } else { 31 },
            "close_notify"
        );
        assert_eq!(pair.server.received, b"bye");
        assert_eq!(pair.client.error, None);
        assert_eq!(pair.server.error, None);
    }
}

#[test]
fn closing_during_the_handshake_sends_nothing() {
    let options = Options::default();
    let mut client = TlsSession::client(options.client(), localhost()).expect("client");
    let hello = client.outgoing().len();
    assert!(hello > 0, "the ClientHello is queued at once");
    client.close().expect("close");
    assert!(client.close_sent());
    assert_eq!(client.outgoing().len(), hello, "nothing added");
    let mut server = TlsSession::server(options.server()).expect("server");
    server.close().expect("close");
    assert!(server.outgoing().is_empty());
    assert_eq!(server.seal(b"x"), Err(TlsError::Closed));
}

/// A client may finish the handshake, send its data and close in one flight.
#[test]
fn data_and_close_notify_behind_the_finished() {
    let options = Options::default().versions(TLS13);
    let mut pair = Pair::new(
        rustls_client(&options),
        Peer::Ours(TlsSession::server(options.server()).expect("server")),
    );
    let hello = pair.client.take_output();
    pair.server.receive(&hello);
    let flight = pair.server.take_output();
    pair.client.receive(&flight);
    pair.client.send(b"<stream:stream/>");
    pair.client.close();
    let mut last = pair.client.take_output();
    let server = pair.server.ours_mut();
    let received = server.feed_hold(&mut last).expect("last flight");
    assert!(received.handshake_complete);
    assert!(received.peer_closed);
    assert_eq!(received.plaintext, 16);
    let mut got = Vec::new();
    server.take_held_plaintext(&mut |p| got.extend_from_slice(p));
    assert_eq!(got, b"<stream:stream/>");
}
