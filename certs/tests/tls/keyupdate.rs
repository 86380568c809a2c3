//! TLS 1.3 key updates in both directions: requested by the peer (answered
//! at once) or by our side, with 100 KB transfers across them. rustls' peer
//! hands out its sequence numbers at the end: they restart at zero with each
//! new key, which proves each direction changed keys.

use std::io::Write;

use crate::pki::{Options, TLS13};
use crate::pump::{Cuts, Pair, Peer};
use crate::{ours_client, ours_server, pattern, rustls_client};

const SIZE: usize = 100_000;
/// Records for SIZE bytes of application data (16 KiB each).
const RECORDS: u64 = SIZE.div_ceil(16 * 1024) as u64;

/// 100 KB each way, checked.
fn transfer(pair: &mut Pair, seed: u8) {
    let up = pattern(SIZE, seed);
    let down = pattern(SIZE, seed.wrapping_add(1));
    pair.client.received.clear();
    pair.server.received.clear();
    pair.client.send(&up);
    pair.server.send(&down);
    pair.pump();
    assert_eq!(pair.server.received, up, "client to server");
    assert_eq!(pair.client.received, down, "server to client");
}

/// The rustls client's (sent, received) sequence numbers, consuming it.
fn sequence_numbers(pair: Pair) -> (u64, u64) {
    let Peer::Client(client) = pair.client.peer else {
        panic!("not a rustls client")
    };
    let secrets = client.dangerous_extract_secrets().expect("secrets");
    (secrets.tx.0, secrets.rx.0)
}

fn options() -> Options {
    Options::default().versions(TLS13).extract_secrets()
}

#[test]
fn the_peer_asks_and_our_reply_goes_out_at_once() {
    let options = options();
    let mut pair = Pair::new(rustls_client(&options), ours_server(&options))
        .with_cuts(Cuts::sizes(vec![1000, 1, 7]), Cuts::whole());
    pair.handshake();
    transfer(&mut pair, 1);

    pair.client
        .client()
        .refresh_traffic_keys()
        .expect("key update");
    let request = pair.client.take_output();
    pair.server.receive(&request);
    assert_eq!(pair.server.error, None);
    let reply = pair.server.take_output();
    assert_eq!(
        reply.len(),
        5 + 5 + 1 + 16,
        "one KeyUpdate record, without waiting for data"
    );
    pair.client.receive(&reply);
    assert_eq!(pair.client.error, None);

    transfer(&mut pair, 3);
    let (sent, received) = sequence_numbers(pair);
    assert_eq!(sent, RECORDS, "the client's sending keys changed");
    assert_eq!(received, RECORDS, "our sending keys changed");
}

#[test]
fn we_ask_and_the_peer_follows() {
    let options = options();
    let mut pair = Pair::new(rustls_client(&options), ours_server(&options))
        .with_cuts(Cuts::whole(), Cuts::sizes(vec![5, 16 * 1024]));
    pair.handshake();
    transfer(&mut pair, 5);

    pair.server
        .ours_mut()
        .refresh_traffic_keys()
        .expect("key update");
    let request = pair.server.take_output();
    assert_eq!(request.len(), 5 + 5 + 1 + 16);
    pair.client.receive(&request);
    assert_eq!(pair.client.error, None);

    // rustls keeps its reply until it next writes: it leads the data.
    transfer(&mut pair, 7);
    let (sent, received) = sequence_numbers(pair);
    assert_eq!(received, RECORDS, "our sending keys changed");
    assert_eq!(sent, RECORDS, "the client's sending keys changed");
}

#[test]
fn our_sessions_update_keys_many_times_both_ways() {
    let options = Options::default().versions(TLS13);
    let mut pair = Pair::new(ours_client(&options), ours_server(&options)).with_cuts(
        Cuts::sizes(vec![1, 3, 1000, 17]),
        Cuts::sizes(vec![4096, 2]),
    );
    pair.handshake();
    for round in 0..6u8 {
        if round % 2 == 0 {
            pair.client
                .ours_mut()
                .refresh_traffic_keys()
                .expect("client update");
        } else {
            pair.server
                .ours_mut()
                .refresh_traffic_keys()
                .expect("server update");
        }
        transfer(&mut pair, round);
        assert_eq!(pair.client.error, None);
        assert_eq!(pair.server.error, None);
    }
    // Both at once, twice, before any data.
    for _ in 0..2 {
        pair.client
            .ours_mut()
            .refresh_traffic_keys()
            .expect("client update");
        pair.server
            .ours_mut()
            .refresh_traffic_keys()
            .expect("server update");
    }
    transfer(&mut pair, 99);
}

#[test]
fn a_rustls_client_updating_repeatedly_stays_in_sync() {
    let options = options();
    let mut pair = Pair::new(rustls_client(&options), ours_server(&options));
    pair.handshake();
    for round in 0..5u8 {
        pair.client
            .client()
            .refresh_traffic_keys()
            .expect("key update");
        pair.client
            .client()
            .writer()
            .write_all(&pattern(3000, round))
            .expect("data");
        pair.server.received.clear();
        pair.pump();
        assert_eq!(pair.server.received, pattern(3000, round));
        assert_eq!(pair.server.error, None);
        assert_eq!(pair.client.error, None);
    }
    let (sent, received) = sequence_numbers(pair);
    assert_eq!(sent, 1, "one data record since the last update");
    assert_eq!(
        received, 0,
        "our last reply reset the client's receiving keys"
    );
}

/// A client may send its Finished, data and a KeyUpdate request in one
/// flight: the reply must go out with that input too (tlsfuzzer's "app data
/// split, conversation with KeyUpdate msg" caught a version that only looked
/// for it when the handshake was already complete before the input).
#[test]
fn a_key_update_in_the_handshakes_last_flight_is_answered() {
    for hold in [false, true] {
        let options = options();
        let mut pair = Pair::new(rustls_client(&options), ours_server(&options));
        let hello = pair.client.take_output();
        pair.server.receive(&hello);
        let flight = pair.server.take_output();
        pair.client.receive(&flight);
        assert!(!pair.client.is_handshaking());
        pair.client
            .client()
            .writer()
            .write_all(b"GET")
            .expect("data");
        pair.client
            .client()
            .refresh_traffic_keys()
            .expect("key update");
        let mut last = pair.client.take_output();
        let server = pair.server.ours_mut();
        let received = if hold {
            server.feed_hold(&mut last).expect("last flight")
        } else {
            server.feed(&mut last, &mut |_| {}).expect("last flight")
        };
        assert!(received.handshake_complete);
        let answer = pair.server.take_output();
        pair.client.receive(&answer);
        assert_eq!(pair.client.error, None);
        let (_, received) = sequence_numbers(pair);
        assert_eq!(
            received, 0,
            "the reply came after the tickets and reset the keys"
        );
    }
}

#[test]
fn tls12_sessions_refuse_key_updates_and_carry_on() {
    let options = Options::default().versions(crate::pki::TLS12);
    let mut pair = Pair::new(rustls_client(&options), ours_server(&options));
    pair.handshake();
    let server = pair.server.ours_mut();
    assert_eq!(
        server.refresh_traffic_keys(),
        Err(herald_certs::tls::TlsError::KeyUpdateNeedsTls13)
    );
    assert_eq!(server.error(), None);
    transfer(&mut pair, 11);
}
