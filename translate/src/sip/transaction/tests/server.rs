//! Non-INVITE server transactions (RFC 3261 §17.2.2): absorbing retransmissions,
//! timer J.

use std::time::Instant;

use super::*;

#[test]
fn duplicated_request_gets_the_same_response_until_j() {
    let mut t = table();
    let start = Instant::now();
    let mut now = start;
    let req = request("OPTIONS", "z9hG4bKsrv1");
    t.receive(req.clone(), udp(), now).unwrap();
    let a = drain(&mut t);
    let id = request_id(&a);
    // A retransmission before the TU answered: absorbed (Trying).
    t.receive(req.clone(), udp(), now + ms(500)).unwrap();
    assert!(drain(&mut t).is_empty());
    now += ms(600);
    let ok = response(&req, 200);
    t.respond(id, ok.clone(), now).unwrap();
    assert_eq!(sent(&drain(&mut t)), [&ok]);
    assert_eq!(t.state(id), Some(State::Server(ServerState::Completed)));
    // Each retransmission gets the same 200, and never reaches the TU again.
    for _ in 0..3 {
        t.receive(req.clone(), udp(), now).unwrap();
        let a = drain(&mut t);
        assert_eq!(sent(&a), [&ok]);
        assert_eq!(a.len(), 1);
    }
    assert_eq!(
        t.respond(id, response(&req, 500), now),
        Err(TransactionError::Invalid("final response already sent"))
    );
    let log = run_until(&mut t, &mut now, start + ms(40_000));
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].0, start + ms(600 + 32_000), "J = 64*T1");
    assert!(t.is_empty());
}

#[test]
fn provisional_is_resent_on_retransmission_while_proceeding() {
    let mut t = table();
    let now = Instant::now();
    let req = request("MESSAGE", "z9hG4bKsrv2");
    t.receive(req.clone(), udp(), now).unwrap();
    let id = request_id(&drain(&mut t));
    let trying = response(&req, 100);
    t.respond(id, trying.clone(), now).unwrap();
    assert_eq!(sent(&drain(&mut t)), [&trying]);
    assert_eq!(t.state(id), Some(State::Server(ServerState::Proceeding)));
    t.receive(req.clone(), udp(), now).unwrap();
    assert_eq!(sent(&drain(&mut t)), [&trying]);
    t.respond(id, response(&req, 202), now).unwrap();
    assert_eq!(t.state(id), Some(State::Server(ServerState::Completed)));
}

#[test]
fn reliable_final_terminates_at_once() {
    let mut t = table();
    let now = Instant::now();
    let req = request_via(
        "OPTIONS",
        "SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKtcp",
        "c1",
    );
    t.receive(req.clone(), tcp(), now).unwrap();
    let id = request_id(&drain(&mut t));
    t.respond(id, response(&req, 200), now).unwrap();
    let a = drain(&mut t);
    assert!(
        matches!(&a[..], [Action::Send { .. }, Action::Terminated { .. }]),
        "{a:?}"
    );
    assert!(t.is_empty());
    assert_eq!(
        t.respond(id, response(&req, 200), now),
        Err(TransactionError::Unknown)
    );
}

#[test]
fn silent_tu_is_given_up_on_after_64_t1() {
    let mut t = table();
    let start = Instant::now();
    let mut now = start;
    t.receive(request("OPTIONS", "z9hG4bKsilent"), udp(), now)
        .unwrap();
    drain(&mut t);
    let log = run_until(&mut t, &mut now, start + ms(60_000));
    assert!(matches!(&log[..], [(at, Action::Terminated { .. })] if *at == start + ms(32_000)));
    assert!(t.is_empty());
}

#[test]
fn transport_error_ends_the_transaction() {
    let mut t = table();
    let now = Instant::now();
    let req = request("OPTIONS", "z9hG4bKterr");
    t.receive(req.clone(), udp(), now).unwrap();
    let id = request_id(&drain(&mut t));
    t.respond(id, response(&req, 200), now).unwrap();
    t.transport_error(id).unwrap();
    assert!(matches!(
        drain(&mut t).last(),
        Some(Action::Terminated { .. })
    ));
    assert!(t.is_empty());
}
