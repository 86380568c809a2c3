//! Property: whatever the subscriber, the core and the clock do, a notifier's NOTIFYs
//! have strictly increasing CSeqs, never announce more time than was granted, the one
//! that says `terminated` is the last, and nothing panics.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::sip::transaction::Transport;
use crate::sip::{parse_datagram, response_for, Limits, RequestEssentials};

#[derive(Debug, Clone)]
enum Op {
    Refresh(Option<u32>),
    StaleRefresh,
    Authorize(u8),
    Terminate,
    Notify,
    Advance(u32),
    Answer(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => prop::option::of(0u32..5000).prop_map(Op::Refresh),
        1 => Just(Op::StaleRefresh),
        1 => (0u8..3).prop_map(Op::Authorize),
        1 => Just(Op::Terminate),
        2 => Just(Op::Notify),
        2 => (0u32..5000).prop_map(Op::Advance),
        1 => prop_oneof![Just(200u16), Just(481), Just(408), Just(500)].prop_map(Op::Answer),
    ]
}

fn subscribe(cseq: u32, tag: Option<&str>, expires: Option<u32>) -> Message {
    let tag = tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let expires = expires
        .map(|e| format!("Expires: {e}\r\n"))
        .unwrap_or_default();
    let text = format!(
        "SUBSCRIBE sip:bob@herald.example SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKp{cseq}\r\n\
         From: <sip:alice@example.org>;tag=w\r\nTo: <sip:bob@herald.example>{tag}\r\n\
         Call-ID: p@example.org\r\nCSeq: {cseq} SUBSCRIBE\r\nEvent: presence\r\n\
         Contact: <sip:alice@192.0.2.1>\r\n{expires}Content-Length: 0\r\n\r\n"
    );
    parse_datagram(text.as_bytes(), &Limits::DEFAULT).unwrap()
}

proptest! {
    #[test]
    fn notifier_invariants(first in prop::option::of(60u32..5000), ops in prop::collection::vec(op(), 0..40)) {
        let cfg = NotifierConfig::presence("<sip:h.example>", Transport::Tcp, "h.example");
        let mut rng = StdRng::seed_from_u64(9);
        let mut now = Instant::now();
        let (resp, sub) = Subscription::accept(&subscribe(1, None, first), &cfg, Authorization::Pending, now, &mut rng);
        let mut sub = sub.unwrap();
        let tag = resp.to().unwrap().tag().unwrap().to_owned();
        let mut granted_until = now + Duration::from_secs(u64::from(resp.expires().unwrap().unwrap()));
        let mut cseq = 1;
        let mut last_notify_cseq = 0;
        let mut ended = false;
        let mut check = |n: Message, now: Instant, granted_until: Instant, ended: &mut bool| {
            prop_assert!(!*ended, "a NOTIFY after the final one");
            let seq = n.cseq().unwrap().seq;
            prop_assert!(seq > last_notify_cseq);
            last_notify_cseq = seq;
            let state = n.subscription_state().unwrap().unwrap();
            if state.state == "terminated" {
                *ended = true;
            } else {
                let left = state.expires().unwrap();
                prop_assert!(now + Duration::from_secs(u64::from(left)) <= granted_until + Duration::from_secs(1));
            }
            Ok(())
        };
        for op in ops {
            match op {
                Op::Refresh(e) => {
                    cseq += 1;
                    let r = sub.on_subscribe(&subscribe(cseq, Some(&tag), e), now);
                    if r.status_line().unwrap().code == 200 {
                        granted_until = now + Duration::from_secs(u64::from(r.expires().unwrap().unwrap()));
                    }
                }
                Op::StaleRefresh => {
                    let r = sub.on_subscribe(&subscribe(1, Some(&tag), None), now);
                    prop_assert_ne!(r.status_line().unwrap().code, 200);
                }
                Op::Authorize(k) => sub.authorize([Authorization::Pending, Authorization::Active, Authorization::Rejected][k as usize]),
                Op::Terminate => sub.terminate(Reason::Deactivated),
                Op::Notify => {
                    if let Ok(n) = sub.notify(None, now, &mut rng) {
                        check(n, now, granted_until, &mut ended)?;
                    } else {
                        prop_assert!(sub.is_over());
                    }
                }
                Op::Advance(ms) => {
                    let target = now + Duration::from_millis(u64::from(ms) * 100);
                    if let Some(at) = sub.poll_timeout().filter(|&at| at <= target) {
                        prop_assert!(at >= now);
                        if let Some(n) = sub.handle_timeout(at, &mut rng) {
                            check(n, at, granted_until, &mut ended)?;
                        }
                    }
                    now = target;
                }
                Op::Answer(code) => {
                    let r = response_for(&RequestEssentials::default(), code, "x", "");
                    sub.on_notify_response(&r);
                }
            }
            if sub.is_over() {
                prop_assert_eq!(sub.poll_timeout(), None);
            }
        }
    }
}
