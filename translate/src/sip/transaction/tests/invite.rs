//! INVITE server transactions (RFC 3261 §17.2.1) answered with a final error, ACK
//! absorption, and CANCEL (§9.2).

use std::time::Instant;

use super::*;

const ALLOW: [Method; 5] = [
    Method::Options,
    Method::Subscribe,
    Method::Notify,
    Method::Message,
    Method::Publish,
];

fn invite() -> Message {
    request("INVITE", "z9hG4bKinv1")
}

/// An INVITE received at `now`; returns its transaction.
fn received(t: &mut TransactionTable, inv: &Message, now: Instant) -> TransactionId {
    t.receive(inv.clone(), udp(), now).unwrap();
    request_id(&drain(t))
}

fn reject_488(t: &TransactionTable, id: TransactionId, inv: &Message) -> Message {
    reject(
        inv,
        488,
        "Not Acceptable Here",
        &ALLOW,
        t.local_tag(id).unwrap(),
    )
}

#[test]
fn trying_is_sent_after_200_ms_only_if_the_tu_is_silent() {
    let mut t = table();
    let start = Instant::now();
    let mut now = start;
    let inv = invite();
    let id = received(&mut t, &inv, now);
    let log = run_until(&mut t, &mut now, start + ms(300));
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].0, start + ms(200));
    let trying = match &log[0].1 {
        Action::Send { message, .. } => message.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(code(&trying), 100);
    assert!(trying.to().unwrap().tag().is_none(), "no tag on 100");
    // A retransmitted INVITE gets the 100 again.
    t.receive(inv.clone(), udp(), now).unwrap();
    assert_eq!(sent(&drain(&mut t)), [&trying]);

    // Answered within 200 ms: no 100.
    let inv2 = request("INVITE", "z9hG4bKinv2");
    let id2 = received(&mut t, &inv2, now);
    t.respond(id2, reject_488(&t, id2, &inv2), now + ms(50))
        .unwrap();
    drain(&mut t);
    let until = now + ms(400);
    let log = run_until(&mut t, &mut now, until);
    assert!(log
        .iter()
        .all(|(_, a)| !matches!(a, Action::Send { message, .. } if code(message) == 100)));
    let _ = id;
}

#[test]
fn final_error_carries_allow_and_is_retransmitted_on_g_until_h() {
    let mut t = table();
    let start = Instant::now();
    let mut now = start;
    let inv = invite();
    let id = received(&mut t, &inv, now);
    let rejection = reject_488(&t, id, &inv);
    assert_eq!(
        rejection.header(&HeaderName::Allow),
        Some("OPTIONS, SUBSCRIBE, NOTIFY, MESSAGE, PUBLISH")
    );
    t.respond(id, rejection.clone(), now).unwrap();
    assert_eq!(sent(&drain(&mut t)), [&rejection]);
    assert_eq!(t.state(id), Some(State::Invite(InviteState::Completed)));
    // The INVITE again: the 488 again.
    t.receive(inv.clone(), udp(), now + ms(100)).unwrap();
    assert_eq!(sent(&drain(&mut t)), [&rejection]);
    // No ACK ever: G doubles to T2, H ends it at 64*T1.
    let log = run_until(&mut t, &mut now, start + ms(40_000));
    let times: Vec<_> = log
        .iter()
        .filter(|(_, a)| matches!(a, Action::Send { .. }))
        .map(|(at, _)| (*at - start).as_millis())
        .collect();
    assert_eq!(
        times,
        [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert!(
        matches!(log.last(), Some((at, Action::Terminated { .. })) if *at == start + ms(32_000))
    );
    assert!(t.is_empty());
}

#[test]
fn late_and_duplicated_ack_confirm_then_i_ends_it() {
    let mut t = table();
    let start = Instant::now();
    let mut now = start;
    let inv = invite();
    let id = received(&mut t, &inv, now);
    let rejection = reject_488(&t, id, &inv);
    t.respond(id, rejection.clone(), now).unwrap();
    drain(&mut t);
    // Two retransmissions (0.5 s, 1.5 s) before the ACK arrives late at 2 s.
    let log = run_until(&mut t, &mut now, start + ms(2000));
    assert_eq!(
        sent(&log.into_iter().map(|(_, a)| a).collect::<Vec<_>>()).len(),
        2
    );
    let ack = ack_for(&inv, &rejection);
    t.receive(ack.clone(), udp(), now).unwrap();
    assert!(drain(&mut t).is_empty(), "ACK is absorbed, not passed up");
    assert_eq!(t.state(id), Some(State::Invite(InviteState::Confirmed)));
    // The ACK twice, and the INVITE once more: absorbed.
    t.receive(ack.clone(), udp(), now + ms(10)).unwrap();
    t.receive(inv.clone(), udp(), now + ms(20)).unwrap();
    assert!(drain(&mut t).is_empty());
    let log = run_until(&mut t, &mut now, start + ms(40_000));
    assert!(
        matches!(&log[..], [(at, Action::Terminated { .. })] if *at == start + ms(7000)),
        "I = T4: {log:?}"
    );
    // After I, an ACK finds nothing: it is stray.
    t.receive(ack, udp(), now).unwrap();
    assert!(matches!(&drain(&mut t)[..], [Action::Stray { .. }]));
}

#[test]
fn ack_with_another_to_tag_is_not_ours() {
    let mut t = table();
    let now = Instant::now();
    let inv = invite();
    let id = received(&mut t, &inv, now);
    let rejection = reject_488(&t, id, &inv);
    t.respond(id, rejection, now).unwrap();
    drain(&mut t);
    let other = reject(&inv, 488, "x", &[], "someone-else");
    t.receive(ack_for(&inv, &other), udp(), now).unwrap();
    assert_eq!(t.state(id), Some(State::Invite(InviteState::Completed)));
}

#[test]
fn reliable_ack_terminates_at_once_and_there_is_no_g() {
    let mut t = table();
    let start = Instant::now();
    let inv = request_via(
        "INVITE",
        "SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKtcpinv",
        "c1",
    );
    t.receive(inv.clone(), tcp(), start).unwrap();
    let id = request_id(&drain(&mut t));
    let rejection = reject(
        &inv,
        501,
        "Not Implemented",
        &ALLOW,
        t.local_tag(id).unwrap(),
    );
    t.respond(id, rejection.clone(), start).unwrap();
    drain(&mut t);
    assert_eq!(t.poll_timeout(), Some(start + ms(32_000)), "H only");
    t.receive(ack_for(&inv, &rejection), tcp(), start + ms(100))
        .unwrap();
    assert!(matches!(&drain(&mut t)[..], [Action::Terminated { .. }]));
}

#[test]
fn cancel_before_the_final_response() {
    let mut t = table();
    let now = Instant::now();
    let inv = invite();
    let id = received(&mut t, &inv, now);
    let cancel = cancel_for(&inv);
    t.receive(cancel.clone(), udp(), now + ms(50)).unwrap();
    let a = drain(&mut t);
    let s = sent(&a);
    assert_eq!(s.iter().map(|m| code(m)).collect::<Vec<_>>(), [200, 487]);
    // The 200 is the CANCEL's, with the INVITE's To tag; the 487 the INVITE's.
    assert_eq!(s[0].cseq().unwrap().method, Method::Cancel);
    assert_eq!(s[1].cseq().unwrap().method, Method::Invite);
    let tag = t.local_tag(id).unwrap().to_owned();
    assert_eq!(s[0].to().unwrap().tag(), Some(tag.as_str()));
    assert_eq!(s[1].to().unwrap().tag(), Some(tag.as_str()));
    assert!(a.contains(&Action::Cancelled { id }));
    assert!(
        !a.iter().any(|x| matches!(x, Action::Request { .. })),
        "the TU never sees CANCEL"
    );
    // The TU's answer comes too late.
    assert!(t.respond(id, reject_488(&t, id, &inv), now).is_err());
    // The CANCEL retransmitted: its 200 again, nothing else.
    t.receive(cancel, udp(), now + ms(60)).unwrap();
    let again = drain(&mut t);
    assert_eq!(
        sent(&again).iter().map(|m| code(m)).collect::<Vec<_>>(),
        [200]
    );
    // The caller ACKs the 487.
    t.receive(ack_for(&inv, s[1]), udp(), now + ms(70)).unwrap();
    assert_eq!(t.state(id), Some(State::Invite(InviteState::Confirmed)));
}

#[test]
fn cancel_after_the_final_response_and_cancel_of_nothing() {
    let mut t = table();
    let now = Instant::now();
    let inv = invite();
    let id = received(&mut t, &inv, now);
    t.respond(id, reject_488(&t, id, &inv), now).unwrap();
    drain(&mut t);
    t.receive(cancel_for(&inv), udp(), now).unwrap();
    let a = drain(&mut t);
    assert_eq!(sent(&a).iter().map(|m| code(m)).collect::<Vec<_>>(), [200]);
    assert!(!a.contains(&Action::Cancelled { id }));

    let unknown = cancel_for(&request("INVITE", "z9hG4bKnone"));
    t.receive(unknown, udp(), now).unwrap();
    let a = drain(&mut t);
    assert_eq!(sent(&a).iter().map(|m| code(m)).collect::<Vec<_>>(), [481]);
}

#[test]
fn no_2xx_and_a_silent_tu_gets_a_500() {
    let mut t = table();
    let start = Instant::now();
    let mut now = start;
    let inv = invite();
    let id = received(&mut t, &inv, now);
    assert!(matches!(
        t.respond(id, response(&inv, 200), now),
        Err(TransactionError::Invalid(_))
    ));
    let log = run_until(&mut t, &mut now, start + ms(32_000));
    let codes: Vec<_> = log
        .iter()
        .filter_map(|(_, a)| match a {
            Action::Send { message, .. } => Some(code(message)),
            _ => None,
        })
        .collect();
    assert_eq!(codes, [100, 500]);
    assert_eq!(t.state(id), Some(State::Invite(InviteState::Completed)));
}
