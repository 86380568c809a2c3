//! Records cut at every byte boundary: each single cut position of every
//! transmission, and random cut patterns (proptest), in both versions and
//! with our session on either side.

use proptest::collection::vec;
use proptest::prelude::*;

use crate::pki::{Options, TLS12, TLS13};
use crate::pump::{Cuts, Pair, Peer};
use crate::{ours_client, ours_server, pattern, rustls_client, rustls_server};

/// Which endpoints meet.
#[derive(Debug, Clone, Copy)]
enum Pairing {
    RustlsClientOurServer,
    OurClientRustlsServer,
    Ours,
}

fn pair(pairing: Pairing, options: &Options) -> Pair {
    let (client, server): (Peer, Peer) = match pairing {
        Pairing::RustlsClientOurServer => (rustls_client(options), ours_server(options)),
        Pairing::OurClientRustlsServer => (ours_client(options), rustls_server(options)),
        Pairing::Ours => (ours_client(options), ours_server(options)),
    };
    Pair::new(client, server)
}

/// Handshake, data both ways, an optional TLS 1.3 key update from the client,
/// more data, close_notify both ways; everything must arrive intact.
fn session(mut pair: Pair, key_update: bool, size: usize) -> Pair {
    pair.handshake();
    pair.client.send(&pattern(size, 1));
    pair.server.send(&pattern(size, 2));
    pair.pump();
    if key_update {
        match &mut pair.client.peer {
            Peer::Ours(session) => session.refresh_traffic_keys().expect("update"),
            Peer::Client(conn) => conn.refresh_traffic_keys().expect("update"),
            Peer::Server(_) => unreachable!(),
        }
    }
    pair.client.send(&pattern(size, 3));
    pair.server.send(&pattern(size, 4));
    pair.pump();
    pair.client.close();
    pair.pump();
    pair.server.close();
    pair.pump();
    assert_eq!(pair.client.error, None);
    assert_eq!(pair.server.error, None);
    let up = [pattern(size, 1), pattern(size, 3)].concat();
    let down = [pattern(size, 2), pattern(size, 4)].concat();
    let (got_up, got_down) = (pair.server.received.len(), pair.client.received.len());
    assert!(
        pair.server.received == up,
        "to the server: {got_up} of {} bytes",
        up.len()
    );
    assert!(
        pair.client.received == down,
        "to the client: {got_down} of {} bytes",
        down.len()
    );
    // The client closed first: only a rustls client reads the server's
    // close_notify (ours stops reading once it closed).
    assert!(pair.server.eof, "close_notify to the server");
    if let Peer::Client(_) = pair.client.peer {
        assert!(pair.client.eof, "close_notify to the client");
    }
    pair
}

/// Every cut position k of every transmission towards our session (each
/// transmission is cut once, k bytes in), up to the longest transmission.
#[test]
fn every_single_cut_position() {
    for (versions, tls13) in [(TLS13, true), (TLS12, false)] {
        for pairing in [
            Pairing::RustlsClientOurServer,
            Pairing::OurClientRustlsServer,
        ] {
            let options = Options::default().versions(versions);
            let probe = session(pair(pairing, &options), tls13, 300);
            let towards_ours = match pairing {
                Pairing::RustlsClientOurServer => &probe.client.sent,
                _ => &probe.server.sent,
            };
            let longest = towards_ours.iter().map(Vec::len).max().expect("traffic");
            for k in 1..longest {
                let mut p = pair(pairing, &options);
                match pairing {
                    Pairing::RustlsClientOurServer => p.server.cuts = Cuts::once_at(k),
                    _ => p.client.cuts = Cuts::once_at(k),
                }
                let done = session(p, tls13, 300);
                let ours = match pairing {
                    Pairing::RustlsClientOurServer => &done.server,
                    _ => &done.client,
                };
                assert_eq!(ours.ours().pending_len(), 0, "cut at {k}");
            }
        }
    }
}

/// Cut sizes, often tiny.
fn cut_sizes() -> impl Strategy<Value = Vec<usize>> {
    vec(prop_oneof![1usize..8, 1usize..600, 1usize..20_000], 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_cut_pattern(
        tls13 in any::<bool>(),
        pairing in 0u8..3,
        up in cut_sizes(),
        down in cut_sizes(),
        key_update in any::<bool>(),
        size in 1usize..40_000,
    ) {
        let options = Options::default().versions(if tls13 { TLS13 } else { TLS12 });
        let pairing = [Pairing::RustlsClientOurServer, Pairing::OurClientRustlsServer, Pairing::Ours]
            [usize::from(pairing)];
        let p = pair(pairing, &options).with_cuts(Cuts::sizes(up), Cuts::sizes(down));
        let done = session(p, key_update && tls13, size);
        for side in [&done.client, &done.server] {
            if let Peer::Ours(session) = &side.peer {
                prop_assert!(side.max_pending <= session.limits().max_pending);
                prop_assert_eq!(session.pending_len(), 0);
            }
        }
    }
}
