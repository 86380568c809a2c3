//! Matching (RFC 3261 §17.2.3 with the RFC 2543 fallback) and the table's bound.

use std::time::Instant;

use super::*;

fn rfc4475(name: &str) -> Message {
    let path = format!(
        "{}/tests/data/rfc4475/{name}.dat",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    parse_datagram(&bytes, &Limits::DEFAULT).unwrap()
}

#[test]
fn full_table_answers_503_with_retry_after_and_frees_slots() {
    let mut t = table_with(TableConfig {
        max_transactions: 2,
        retry_after_secs: 30,
        ..TableConfig::default()
    });
    let now = Instant::now();
    let r1 = request("OPTIONS", "z9hG4bKfull1");
    t.receive(r1.clone(), tcp(), now).unwrap();
    let id1 = request_id(&drain(&mut t));
    t.receive(request("OPTIONS", "z9hG4bKfull2"), tcp(), now)
        .unwrap();
    drain(&mut t);
    t.receive(request("OPTIONS", "z9hG4bKfull3"), tcp(), now)
        .unwrap();
    let a = drain(&mut t);
    match &a[..] {
        [Action::Send {
            id: None, message, ..
        }] => {
            assert_eq!(code(message), 503);
            assert_eq!(
                message.header(&HeaderName::from_wire("Retry-After")),
                Some("30")
            );
            assert!(message.to().unwrap().tag().is_some());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(t.len(), 2);
    // A retransmission of a known request still matches.
    t.receive(r1.clone(), tcp(), now).unwrap();
    assert!(drain(&mut t).is_empty());
    // No client transaction either.
    let b = t.new_branch();
    assert_eq!(
        t.send_request(request("OPTIONS", &b), udp(), now),
        Err(TransactionError::Full)
    );
    // One ends (reliable: at once); the next request gets in.
    t.respond(id1, response(&r1, 200), now).unwrap();
    assert_eq!(t.len(), 1);
    t.receive(request("OPTIONS", "z9hG4bKfull3"), tcp(), now)
        .unwrap();
    request_id(&drain(&mut t));
}

#[test]
fn the_bytes_held_are_bounded_and_given_back() {
    let now = Instant::now();
    let r1 = request("OPTIONS", "z9hG4bKbytes1");
    let mut big = response(&r1, 200);
    big.body = vec![b'x'; 4000];
    let limit = held_bytes(&big) + 10;
    let mut t = table_with(TableConfig {
        max_bytes: limit,
        ..TableConfig::default()
    });
    // UDP: the server transaction keeps its final response for retransmissions.
    t.receive(r1.clone(), udp(), now).unwrap();
    let id1 = request_id(&drain(&mut t));
    assert_eq!(
        t.bytes(),
        0,
        "a server transaction holds nothing before it answers"
    );
    t.respond(id1, big, now).unwrap();
    drain(&mut t);
    assert!(t.bytes() > 4000 && t.bytes() < limit, "{}", t.bytes());
    // A small one still fits under the limit...
    let r2 = request("OPTIONS", "z9hG4bKbytes2");
    t.receive(r2.clone(), udp(), now).unwrap();
    let id2 = request_id(&drain(&mut t));
    t.respond(id2, response(&r2, 200), now).unwrap();
    drain(&mut t);
    assert!(t.bytes() >= limit, "{} of {limit}", t.bytes());
    // ...and now the table is full in bytes, not in count: 503, and no client
    // transaction either.
    t.receive(request("OPTIONS", "z9hG4bKbytes3"), udp(), now)
        .unwrap();
    match &drain(&mut t)[..] {
        [Action::Send {
            id: None, message, ..
        }] => assert_eq!(code(message), 503),
        other => panic!("{other:?}"),
    }
    let b = t.new_branch();
    assert_eq!(
        t.send_request(request("OPTIONS", &b), udp(), now),
        Err(TransactionError::Full)
    );
    // Timer J ends both (64*T1 on UDP): every byte is given back.
    t.handle_timeout(now + Duration::from_secs(33));
    drain(&mut t);
    assert_eq!((t.len(), t.bytes()), (0, 0));
    // A client transaction holds its request until it ends.
    let b = t.new_branch();
    let req = request("OPTIONS", &b);
    let size = held_bytes(&req);
    t.send_request(req, udp(), now).unwrap();
    assert_eq!(t.bytes(), size);
}

#[test]
fn bare_cookie_branch_falls_back_to_rfc2543_matching() {
    // RFC 4475 §3.1.2.17: branch=z9hG4bK and nothing after it.
    let mut t = table();
    let now = Instant::now();
    let msg = rfc4475("badbranch");
    let key = TransactionKey::server(&msg).unwrap();
    assert!(matches!(key, TransactionKey::Legacy { .. }), "{key:?}");
    t.receive(msg.clone(), udp(), now).unwrap();
    let id = request_id(&drain(&mut t));
    // The same request again is a retransmission...
    t.receive(msg.clone(), udp(), now).unwrap();
    assert!(drain(&mut t).is_empty());
    // ...but another request with the same bare cookie is another transaction.
    let mut other = msg.clone();
    for h in &mut other.headers {
        if h.name == HeaderName::CSeq {
            h.value = "9 OPTIONS".into();
        }
    }
    t.receive(other, udp(), now).unwrap();
    assert_ne!(request_id(&drain(&mut t)), id);
}

#[test]
fn rfc2543_invite_is_matched_by_its_ack_and_cancel() {
    let mut t = table();
    let now = Instant::now();
    let inv = rfc4475("inv2543");
    t.receive(inv.clone(), udp(), now).unwrap();
    let id = request_id(&drain(&mut t));
    // CANCEL first: same key but the method.
    t.receive(cancel_for(&inv), udp(), now).unwrap();
    let a = drain(&mut t);
    assert_eq!(
        sent(&a).iter().map(|m| code(m)).collect::<Vec<_>>(),
        [200, 487]
    );
    let r487 = sent(&a)[1].clone();
    // The ACK carries our To tag, which the INVITE did not: still the same transaction.
    t.receive(ack_for(&inv, &r487), udp(), now).unwrap();
    assert!(drain(&mut t).is_empty());
    assert_eq!(t.state(id), Some(State::Invite(InviteState::Confirmed)));
}

#[test]
fn sent_by_and_method_are_part_of_the_key() {
    let mut t = table();
    let now = Instant::now();
    let a = request_via(
        "OPTIONS",
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKsame",
        "c1",
    );
    let b = request_via(
        "OPTIONS",
        "SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKsame",
        "c1",
    );
    let c = request_via(
        "MESSAGE",
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKsame",
        "c1",
    );
    let a_upper = request_via(
        "OPTIONS",
        "SIP/2.0/UDP 192.0.2.1:5060;BRANCH=z9hG4bKsame",
        "c1",
    );
    let mut ids = Vec::new();
    for m in [a, b, c] {
        t.receive(m, udp(), now).unwrap();
        ids.push(request_id(&drain(&mut t)));
    }
    ids.dedup();
    assert_eq!(ids.len(), 3);
    // Parameter names are case-insensitive: the same transaction.
    t.receive(a_upper, udp(), now).unwrap();
    assert!(drain(&mut t).is_empty());
}

#[test]
fn host_names_in_sent_by_compare_ignoring_case() {
    let mut t = table();
    let now = Instant::now();
    let a = request_via(
        "OPTIONS",
        "SIP/2.0/UDP ua.example.org;branch=z9hG4bKcase",
        "c1",
    );
    let b = request_via(
        "OPTIONS",
        "SIP/2.0/UDP UA.Example.ORG;branch=z9hG4bKcase",
        "c1",
    );
    t.receive(a, udp(), now).unwrap();
    drain(&mut t);
    t.receive(b, udp(), now).unwrap();
    assert!(drain(&mut t).is_empty());
}

#[test]
fn responses_without_a_transaction_and_requests_without_via_are_reported() {
    let mut t = table();
    let now = Instant::now();
    let req = request("OPTIONS", "z9hG4bKnobody");
    t.receive(response(&req, 200), udp(), now).unwrap();
    assert!(matches!(&drain(&mut t)[..], [Action::Stray { .. }]));
    let mut no_via = req.clone();
    no_via.headers.retain(|h| h.name != HeaderName::Via);
    assert!(matches!(
        t.receive(no_via, udp(), now),
        Err(TransactionError::Malformed(_))
    ));
    assert!(t.is_empty());
}

#[test]
fn events_drive_the_same_machines() {
    let mut t = table();
    let start = Instant::now();
    let inv = request("INVITE", "z9hG4bKev");
    let ev = |message: &Message| Event::Received {
        message: message.clone(),
        from: udp(),
    };
    assert_eq!(t.handle(ev(&inv), start), Ok(None));
    let id = request_id(&drain(&mut t));
    let rejection = reject(
        &inv,
        501,
        "Not Implemented",
        &[Method::Options],
        t.local_tag(id).unwrap(),
    );
    t.handle(
        Event::Respond {
            id,
            response: rejection.clone(),
        },
        start,
    )
    .unwrap();
    assert_eq!(sent(&drain(&mut t)), [&rejection]);
    let g = t.poll_timeout().unwrap();
    assert_eq!(g, start + ms(500));
    t.handle(Event::TimerFired, g).unwrap();
    assert_eq!(sent(&drain(&mut t)), [&rejection]);
    t.handle(ev(&ack_for(&inv, &rejection)), g).unwrap();
    assert_eq!(t.state(id), Some(State::Invite(InviteState::Confirmed)));
    let branch = t.new_branch();
    let out = t.handle(
        Event::SendRequest {
            request: request("OPTIONS", &branch),
            to: udp(),
        },
        g,
    );
    let cid = out.unwrap().unwrap();
    t.handle(Event::TransportError { id: cid }, g).unwrap();
    assert_eq!(t.state(cid), None);
}
