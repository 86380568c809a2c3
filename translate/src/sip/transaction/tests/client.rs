//! Non-INVITE client transactions (RFC 3261 §17.1.2): timers E, F, K.

use std::time::Instant;

use super::*;

fn options(t: &mut TransactionTable) -> Message {
    let branch = t.new_branch();
    request("OPTIONS", &branch)
}

/// The offsets from `start`, in ms, at which the request went out.
fn send_times(start: Instant, log: &[(Instant, Action)]) -> Vec<u128> {
    log.iter()
        .filter(|(_, a)| matches!(a, Action::Send { .. }))
        .map(|(at, _)| (*at - start).as_millis())
        .collect()
}

#[test]
fn udp_retransmits_doubling_to_t2_then_408_after_f() {
    let mut t = table();
    let start = Instant::now();
    let mut now = start;
    let req = options(&mut t);
    let id = t.send_request(req, udp(), now).unwrap();
    assert_eq!(sent(&drain(&mut t)).len(), 1);
    assert_eq!(t.state(id), Some(State::Client(ClientState::Trying)));
    let log = run_until(&mut t, &mut now, start + ms(40_000));
    // E: 500 ms, doubling (1 s, 2 s) up to T2 = 4 s, then every 4 s until F at 32 s.
    assert_eq!(
        send_times(start, &log),
        [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    let tail: Vec<_> = log
        .iter()
        .filter(|(_, a)| !matches!(a, Action::Send { .. }))
        .collect();
    assert_eq!(tail.len(), 2, "{tail:?}");
    match &tail[0] {
        (at, Action::Response { id: rid, response }) => {
            assert_eq!((*at - start).as_millis(), 32_000);
            assert_eq!((*rid, code(response)), (id, 408));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(tail[1].1, Action::Terminated { id: tid } if tid == id));
    assert!(t.is_empty());
    assert_eq!(t.poll_timeout(), None);
}

#[test]
fn provisional_moves_to_proceeding_and_retransmits_every_t2() {
    let mut t = table();
    let start = Instant::now();
    let mut now = start;
    let req = options(&mut t);
    let id = t.send_request(req.clone(), udp(), now).unwrap();
    drain(&mut t);
    // One retransmission at 500 ms, then a 1xx at 600 ms.
    let log = run_until(&mut t, &mut now, start + ms(600));
    assert_eq!(send_times(start, &log), [500]);
    t.receive(response(&req, 180), udp(), now).unwrap();
    let a = drain(&mut t);
    assert!(matches!(&a[..], [Action::Response { response, .. }] if code(response) == 180));
    assert_eq!(t.state(id), Some(State::Client(ClientState::Proceeding)));
    // E keeps its pending deadline (1.5 s), then every T2.
    let log = run_until(&mut t, &mut now, start + ms(14_000));
    assert_eq!(send_times(start, &log), [1500, 5500, 9500, 13500]);
}

#[test]
fn final_response_completes_absorbs_retransmissions_and_late_1xx_then_k() {
    let mut t = table();
    let start = Instant::now();
    let mut now = start;
    let req = options(&mut t);
    let id = t.send_request(req.clone(), udp(), now).unwrap();
    drain(&mut t);
    now += ms(100);
    t.receive(response(&req, 200), udp(), now).unwrap();
    let a = drain(&mut t);
    assert!(matches!(&a[..], [Action::Response { response, .. }] if code(response) == 200));
    assert_eq!(t.state(id), Some(State::Client(ClientState::Completed)));
    // The 200 again, and a 100 that the network reordered behind it: absorbed.
    t.receive(response(&req, 200), udp(), now + ms(50)).unwrap();
    t.receive(response(&req, 100), udp(), now + ms(60)).unwrap();
    assert!(drain(&mut t).is_empty());
    // No retransmission in Completed; K = T4 after the final response.
    let log = run_until(&mut t, &mut now, start + ms(10_000));
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!((log[0].0 - start).as_millis(), 5100);
    assert!(matches!(log[0].1, Action::Terminated { .. }));
    // Anything after that is stray.
    t.receive(response(&req, 200), udp(), now).unwrap();
    assert!(matches!(&drain(&mut t)[..], [Action::Stray { .. }]));
}

#[test]
fn reliable_transport_never_retransmits_and_ends_at_once() {
    let mut t = table();
    let start = Instant::now();
    let mut now = start;
    let req = options(&mut t);
    t.send_request(req.clone(), tcp(), now).unwrap();
    drain(&mut t);
    assert_eq!(t.poll_timeout(), Some(start + ms(32_000)), "only F");
    now += ms(3000);
    t.receive(response(&req, 404), tcp(), now).unwrap();
    let a = drain(&mut t);
    assert!(
        matches!(&a[..], [Action::Response { .. }, Action::Terminated { .. }]),
        "{a:?}"
    );
    assert!(t.is_empty());

    // Silence: 408 at F, no sends in between.
    let req = options(&mut t);
    t.send_request(req, tcp(), now).unwrap();
    drain(&mut t);
    let log = run_until(&mut t, &mut now, start + ms(60_000));
    assert!(
        matches!(&log[..], [(_, Action::Response { response, .. }), (_, Action::Terminated { .. })] if code(response) == 408)
    );
}

#[test]
fn transport_error_is_a_503_for_the_tu() {
    let mut t = table();
    let now = Instant::now();
    let req = options(&mut t);
    let id = t.send_request(req, udp(), now).unwrap();
    drain(&mut t);
    t.transport_error(id).unwrap();
    let a = drain(&mut t);
    assert!(
        matches!(&a[..], [Action::Response { response, .. }, Action::Terminated { .. }] if code(response) == 503)
    );
    assert_eq!(t.transport_error(id), Err(TransactionError::Unknown));
}

#[test]
fn refuses_invite_duplicate_branch_and_requests_without_a_cookie() {
    let mut t = table();
    let now = Instant::now();
    let b = t.new_branch();
    assert!(matches!(
        t.send_request(request("INVITE", &b), udp(), now),
        Err(TransactionError::Invalid(_))
    ));
    t.send_request(request("OPTIONS", &b), udp(), now).unwrap();
    assert!(matches!(
        t.send_request(request("OPTIONS", &b), udp(), now),
        Err(TransactionError::Invalid(_))
    ));
    assert!(matches!(
        t.send_request(request("OPTIONS", "old-style"), udp(), now),
        Err(TransactionError::Malformed(_))
    ));
}

#[test]
fn zero_timers_do_not_spin() {
    let zero = Timers {
        t1: ms(0),
        t2: ms(0),
        t4: ms(0),
    };
    let mut t = table_with(TableConfig {
        timers: zero,
        ..TableConfig::default()
    });
    let now = Instant::now();
    let req = options(&mut t);
    t.send_request(req, udp(), now).unwrap();
    let inv = request("INVITE", "z9hG4bKzero");
    t.receive(inv.clone(), udp(), now).unwrap();
    let id = request_id(&drain(&mut t));
    let _ = t.respond(id, reject(&inv, 488, "x", &[], "t"), now);
    t.handle_timeout(now);
    drain(&mut t);
    assert!(t.is_empty(), "{t:?}");
}
