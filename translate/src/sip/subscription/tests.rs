//! Subscriptions on virtual time: creation, Expires negotiation, refresh, expiry,
//! unsubscribe, termination by the notifier, NOTIFY answered 481 or timing out, and
//! the subscriber side with forked NOTIFYs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::sip::transaction::{
    Action, Remote, TableConfig, TransactionTable, Transport, BRANCH_COOKIE,
};
use crate::sip::{parse_datagram, response_for, HeaderName, Limits, Method, RequestEssentials};

fn parse(text: &str) -> Message {
    parse_datagram(text.as_bytes(), &Limits::DEFAULT).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn subscribe(cseq: u32, to_tag: Option<&str>, expires: Option<u32>) -> Message {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let expires = expires
        .map(|e| format!("Expires: {e}\r\n"))
        .unwrap_or_default();
    parse(&format!(
        "SUBSCRIBE sip:bob@herald.example SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKs{cseq}\r\n\
         Max-Forwards: 70\r\n\
         Record-Route: <sip:proxy.example.org;lr>\r\n\
         From: <sip:alice@example.org>;tag=watcher\r\n\
         To: <sip:bob@herald.example>{to_tag}\r\n\
         Call-ID: sub1@example.org\r\n\
         CSeq: {cseq} SUBSCRIBE\r\n\
         Event: presence\r\n\
         Contact: <sip:alice@192.0.2.1:5060>\r\n\
         {expires}Content-Length: 0\r\n\r\n"
    ))
}

fn config() -> NotifierConfig {
    NotifierConfig::presence(
        "<sip:herald.example>",
        Transport::Udp,
        "herald.example:5060",
    )
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(3)
}

fn code(m: &Message) -> u16 {
    m.status_line().unwrap().code
}

fn state_of(m: &Message) -> String {
    m.header(&HeaderName::SubscriptionState).unwrap().to_owned()
}

fn pidf() -> Body {
    Body {
        content_type: "application/pidf+xml".into(),
        bytes: b"<presence/>".to_vec(),
    }
}

/// A subscription accepted at `now` with `expires` requested.
fn active(now: Instant, expires: Option<u32>) -> (Message, Subscription) {
    let (resp, sub) = Subscription::accept(
        &subscribe(1, None, expires),
        &config(),
        Authorization::Active,
        now,
        &mut rng(),
    );
    assert_eq!(code(&resp), 200, "{resp:?}");
    (resp, sub.unwrap())
}

#[test]
fn subscribe_creates_a_dialog_and_the_first_notify() {
    let now = Instant::now();
    let (resp, mut sub) = active(now, None);
    let tag = resp.to().unwrap().tag().unwrap().to_owned();
    assert_eq!(sub.dialog_id().local_tag, tag);
    assert_eq!(sub.dialog_id().remote_tag, "watcher");
    assert_eq!(resp.expires().unwrap(), Some(3600), "the package default");
    assert_eq!(
        resp.header(&HeaderName::Contact),
        Some("<sip:herald.example>")
    );
    assert_eq!(
        DialogId::of_request(&subscribe(2, Some(&tag), None)).as_ref(),
        Some(sub.dialog_id())
    );

    let n = sub.notify(Some(pidf()), now, &mut rng()).unwrap();
    // It is a valid message once on the wire.
    let n = parse_datagram(&n.to_bytes(), &Limits::DEFAULT).unwrap();
    assert_eq!(n.request_line().unwrap().method, Method::Notify);
    assert_eq!(
        n.request_line().unwrap().uri.to_string(),
        "sip:alice@192.0.2.1:5060"
    );
    assert_eq!(n.from().unwrap().tag(), Some(tag.as_str()));
    assert_eq!(n.to().unwrap().tag(), Some("watcher"));
    assert_eq!(n.call_id().unwrap(), "sub1@example.org");
    assert_eq!(n.cseq().unwrap().to_string(), "1 NOTIFY");
    assert_eq!(n.max_forwards().unwrap(), Some(70));
    assert_eq!(
        n.header(&HeaderName::Route),
        Some("<sip:proxy.example.org;lr>")
    );
    assert_eq!(n.event().unwrap().unwrap().package, "presence");
    assert_eq!(state_of(&n), "active;expires=3600");
    let via = n.top_via().unwrap();
    assert!(via.branch().unwrap().starts_with(BRANCH_COOKIE));
    assert_eq!(via.transport, "UDP");
    assert_eq!(
        n.content_type().unwrap().unwrap().to_string(),
        "application/pidf+xml"
    );
    assert_eq!(n.body, b"<presence/>");
    // The next NOTIFY: next CSeq, fresh branch, expiry counting down.
    let n2 = sub
        .notify(None, now + Duration::from_secs(100), &mut rng())
        .unwrap();
    assert_eq!(n2.cseq().unwrap().seq, 2);
    assert_eq!(state_of(&n2), "active;expires=3500");
}

#[test]
fn expires_negotiation() {
    let now = Instant::now();
    let cfg = config();
    let (resp, sub) = Subscription::accept(
        &subscribe(1, None, Some(30)),
        &cfg,
        Authorization::Active,
        now,
        &mut rng(),
    );
    assert!(sub.is_none());
    assert_eq!(code(&resp), 423);
    assert_eq!(resp.min_expires().unwrap(), Some(60));
    let (resp, _) = active(now, Some(100_000));
    assert_eq!(
        resp.expires().unwrap(),
        Some(3600),
        "shortened to the maximum"
    );
    let (resp, _) = active(now, Some(600));
    assert_eq!(resp.expires().unwrap(), Some(600));
    // Pending until the core decides.
    let (_, sub) = Subscription::accept(
        &subscribe(1, None, Some(600)),
        &cfg,
        Authorization::Pending,
        now,
        &mut rng(),
    );
    let mut sub = sub.unwrap();
    assert_eq!(
        state_of(&sub.notify(None, now, &mut rng()).unwrap()),
        "pending;expires=600"
    );
    sub.authorize(Authorization::Active);
    assert_eq!(
        state_of(&sub.notify(Some(pidf()), now, &mut rng()).unwrap()),
        "active;expires=600"
    );
}

#[test]
fn refusals_bad_event_no_contact_rejected() {
    let now = Instant::now();
    let cfg = config();
    let mut other = subscribe(1, None, None);
    for h in &mut other.headers {
        if h.name == HeaderName::Event {
            h.value = "dialog".into();
        }
    }
    let (resp, sub) = Subscription::accept(&other, &cfg, Authorization::Active, now, &mut rng());
    assert!(sub.is_none());
    assert_eq!(code(&resp), 489);
    assert_eq!(resp.header(&HeaderName::AllowEvents), Some("presence"));
    let mut no_contact = subscribe(1, None, None);
    no_contact.headers.retain(|h| h.name != HeaderName::Contact);
    assert_eq!(
        code(&Subscription::accept(&no_contact, &cfg, Authorization::Active, now, &mut rng()).0),
        400
    );
    let (resp, sub) = Subscription::accept(
        &subscribe(1, None, None),
        &cfg,
        Authorization::Rejected,
        now,
        &mut rng(),
    );
    assert_eq!((code(&resp), sub.is_none()), (403, true));
    let with_tag = subscribe(1, Some("x"), None);
    assert_eq!(
        code(&Subscription::accept(&with_tag, &cfg, Authorization::Active, now, &mut rng()).0),
        481
    );
}

#[test]
fn refresh_moves_the_expiry_and_checks_cseq_and_interval() {
    let start = Instant::now();
    let (resp, mut sub) = active(start, Some(600));
    let tag = resp.to().unwrap().tag().unwrap().to_owned();
    assert_eq!(sub.poll_timeout(), Some(start + Duration::from_secs(600)));
    let later = start + Duration::from_secs(500);
    let r = sub.on_subscribe(&subscribe(2, Some(&tag), Some(900)), later);
    assert_eq!((code(&r), r.expires().unwrap()), (200, Some(900)));
    assert_eq!(sub.poll_timeout(), Some(later + Duration::from_secs(900)));
    // A reordered old refresh, and one too brief: refused, nothing changes.
    assert_eq!(
        code(&sub.on_subscribe(&subscribe(2, Some(&tag), Some(900)), later)),
        500
    );
    let r = sub.on_subscribe(&subscribe(3, Some(&tag), Some(10)), later);
    assert_eq!((code(&r), r.min_expires().unwrap()), (423, Some(60)));
    assert_eq!(sub.poll_timeout(), Some(later + Duration::from_secs(900)));
    assert_eq!(
        state_of(&sub.notify(None, later, &mut rng()).unwrap()),
        "active;expires=900"
    );
}

#[test]
fn expiry_sends_the_final_notify_with_reason_timeout() {
    let start = Instant::now();
    let (_, mut sub) = active(start, Some(600));
    sub.notify(Some(pidf()), start, &mut rng()).unwrap();
    assert_eq!(
        sub.handle_timeout(start + Duration::from_secs(599), &mut rng()),
        None
    );
    let at = sub.poll_timeout().unwrap();
    let n = sub.handle_timeout(at, &mut rng()).unwrap();
    assert_eq!(state_of(&n), "terminated;reason=timeout");
    assert_eq!(n.cseq().unwrap().seq, 2);
    assert!(sub.is_over());
    assert_eq!(sub.poll_timeout(), None);
    assert!(sub.notify(None, at, &mut rng()).is_err());
}

#[test]
fn unsubscribe_and_fetch() {
    let start = Instant::now();
    let (resp, mut sub) = active(start, Some(600));
    let tag = resp.to().unwrap().tag().unwrap().to_owned();
    let r = sub.on_subscribe(&subscribe(2, Some(&tag), Some(0)), start);
    assert_eq!((code(&r), r.expires().unwrap()), (200, Some(0)));
    assert_eq!(sub.poll_timeout(), None);
    assert_eq!(
        state_of(&sub.notify(Some(pidf()), start, &mut rng()).unwrap()),
        "terminated;reason=timeout"
    );
    assert!(sub.is_over());
    assert_eq!(
        code(&sub.on_subscribe(&subscribe(3, Some(&tag), Some(600)), start)),
        481
    );
    // A fetch: Expires 0 on the initial SUBSCRIBE, one NOTIFY with the state, over.
    let (resp, sub) = active(start, Some(0));
    assert_eq!(resp.expires().unwrap(), Some(0));
    let mut sub = sub;
    assert_eq!(
        state_of(&sub.notify(Some(pidf()), start, &mut rng()).unwrap()),
        "terminated;reason=timeout"
    );
}

#[test]
fn notifier_terminates_with_reasons() {
    let now = Instant::now();
    let cases = [
        (Reason::Deactivated, "terminated;reason=deactivated"),
        (Reason::Noresource, "terminated;reason=noresource"),
        (
            Reason::Giveup {
                retry_after: Some(30),
            },
            "terminated;reason=giveup;retry-after=30",
        ),
        (
            Reason::Probation { retry_after: None },
            "terminated;reason=probation",
        ),
    ];
    for (reason, text) in cases {
        let (_, mut sub) = active(now, None);
        sub.terminate(reason);
        assert_eq!(state_of(&sub.notify(None, now, &mut rng()).unwrap()), text);
        assert!(sub.is_over());
    }
    let (_, mut sub) = active(now, None);
    sub.authorize(Authorization::Rejected);
    assert_eq!(
        state_of(&sub.notify(None, now, &mut rng()).unwrap()),
        "terminated;reason=rejected"
    );
}

#[test]
fn notify_answered_481_ends_the_subscription() {
    let now = Instant::now();
    let (_, mut sub) = active(now, None);
    let n = sub.notify(Some(pidf()), now, &mut rng()).unwrap();
    let ess = RequestEssentials::from_message(&n);
    assert!(!sub.on_notify_response(&response_for(&ess, 200, "OK", "")));
    assert!(sub.on_notify_response(&response_for(&ess, 481, "Gone", "")));
    assert!(sub.is_over());
    assert_eq!(sub.poll_timeout(), None);
    assert!(sub.notify(None, now, &mut rng()).is_err());
}

#[test]
fn notify_through_a_client_transaction_that_times_out_ends_it() {
    let start = Instant::now();
    let (_, mut sub) = active(start, None);
    let mut table = TransactionTable::new(TableConfig::default(), rng());
    let to = Remote {
        addr: SocketAddr::from(([192, 0, 2, 1], 5060)),
        transport: Transport::Udp,
    };
    let n = sub.notify(Some(pidf()), start, &mut rng()).unwrap();
    let id = table.send_request(n, to, start).unwrap();
    let mut response = None;
    while let Some(at) = table.poll_timeout() {
        table.handle_timeout(at);
        while let Some(a) = table.poll_action() {
            if let Action::Response {
                id: rid,
                response: r,
            } = a
            {
                assert_eq!(rid, id);
                assert_eq!(at - start, Duration::from_secs(32));
                response = Some(r);
            }
        }
    }
    assert!(sub.on_notify_response(&response.unwrap()), "408 ends it");
}

fn notify_from(notifier_tag: &str, cseq: u32, state: &str) -> Message {
    parse(&format!(
        "NOTIFY sip:herald.example SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKn{notifier_tag}{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:bob@remote.example>;tag={notifier_tag}\r\n\
         To: <sip:alice@example.org>;tag=watcher\r\n\
         Call-ID: sub1@example.org\r\n\
         CSeq: {cseq} NOTIFY\r\n\
         Event: presence\r\n\
         Subscription-State: {state}\r\n\
         Contact: <sip:{notifier_tag}@192.0.2.7>\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

#[test]
fn subscriber_accepts_forked_notifies_as_separate_dialogs() {
    let now = Instant::now();
    let mut s = Subscriber::new(&subscribe(1, None, Some(600)), 4).unwrap();
    let one = s.on_notify(&notify_from("n1", 1, "active;expires=600"), now);
    let two = s.on_notify(&notify_from("n2", 7, "pending;expires=300"), now);
    assert_eq!((code(&one.response), one.created), (200, true));
    assert_eq!((code(&two.response), two.created), (200, true));
    assert_eq!(s.dialogs().count(), 2);
    assert_eq!(s.dialog("n2").unwrap().state, SubState::Pending);
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(300)));
    // n1 again, newer; then an older one that the network reordered: refused.
    let upd = s.on_notify(&notify_from("n1", 3, "active;expires=500"), now);
    assert_eq!((code(&upd.response), upd.created), (200, false));
    assert_eq!(
        code(
            &s.on_notify(&notify_from("n1", 2, "active;expires=600"), now)
                .response
        ),
        500
    );
    // n1 ends with a reason; n2 expires without a refresh.
    let end = s.on_notify(
        &notify_from("n1", 4, "terminated;reason=giveup;retry-after=60"),
        now,
    );
    assert_eq!(
        end.state,
        Some(SubState::Terminated(Reason::Giveup {
            retry_after: Some(60)
        }))
    );
    assert!(s.dialog("n1").is_none());
    assert_eq!(
        s.handle_timeout(now + Duration::from_secs(300)),
        [SubscriberTimeout::DialogExpired("n2".into())]
    );
    assert_eq!(s.dialogs().count(), 0);
}

#[test]
fn subscriber_refuses_what_is_not_its_own() {
    let now = Instant::now();
    let mut s = Subscriber::new(&subscribe(1, None, Some(600)), 1).unwrap();
    let mut wrong_tag = notify_from("n1", 1, "active");
    for h in &mut wrong_tag.headers {
        if h.name == HeaderName::To {
            h.value = "<sip:alice@example.org>;tag=someone".into();
        }
    }
    assert_eq!(code(&s.on_notify(&wrong_tag, now).response), 481);
    let mut no_state = notify_from("n1", 1, "active");
    no_state
        .headers
        .retain(|h| h.name != HeaderName::SubscriptionState);
    assert_eq!(code(&s.on_notify(&no_state, now).response), 400);
    assert_eq!(
        code(&s.on_notify(&notify_from("n1", 1, "active"), now).response),
        200
    );
    // The bound: a second fork is refused.
    assert_eq!(
        code(&s.on_notify(&notify_from("n2", 1, "active"), now).response),
        481
    );
    let ok = response_for(
        &RequestEssentials::from_message(&subscribe(1, None, None)),
        423,
        "x",
        "t",
    );
    assert_eq!(
        s.on_subscribe_response(&ok, now, Duration::from_secs(32)),
        SubscribeAnswer::IntervalTooBrief { min_expires: None }
    );
}

#[test]
fn our_notify_is_accepted_by_our_subscriber() {
    let now = Instant::now();
    let (_, mut sub) = active(now, Some(600));
    let mut s = Subscriber::new(&subscribe(1, None, Some(600)), 2).unwrap();
    let n = sub.notify(Some(pidf()), now, &mut rng()).unwrap();
    let out = s.on_notify(&n, now);
    assert_eq!((code(&out.response), out.created), (200, true));
    assert!(!sub.on_notify_response(&out.response));
    sub.terminate(Reason::Deactivated);
    let out = s.on_notify(&sub.notify(None, now, &mut rng()).unwrap(), now);
    assert_eq!(out.state, Some(SubState::Terminated(Reason::Deactivated)));
    assert_eq!(s.dialogs().count(), 0);
}

#[test]
fn subscriber_waits_64_t1_for_a_first_notify() {
    let now = Instant::now();
    let sub = subscribe(1, None, Some(600));
    let mut s = Subscriber::new(&sub, 2).unwrap();
    let ok = response_for(&RequestEssentials::from_message(&sub), 200, "OK", "n1");
    let wait = Duration::from_secs(32);
    assert!(matches!(
        s.on_subscribe_response(&ok, now, wait),
        SubscribeAnswer::Accepted { .. }
    ));
    assert_eq!(s.poll_timeout(), Some(now + wait));
    assert_eq!(s.handle_timeout(now + wait), [SubscriberTimeout::NoNotify]);
    // A NOTIFY in time cancels the wait.
    let mut s = Subscriber::new(&sub, 2).unwrap();
    s.on_subscribe_response(&ok, now, wait);
    s.on_notify(&notify_from("n1", 1, "active;expires=600"), now);
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(600)));
}

#[test]
fn subscriber_refreshes_and_unsubscribes_inside_a_dialog() {
    let now = Instant::now();
    let mut s = Subscriber::new(&subscribe(1, None, Some(600)), 2).unwrap();
    assert!(s.refresh("n1", 600, "z9hG4bKr1").is_none());
    s.on_notify(&notify_from("n1", 1, "active;expires=600"), now);
    let r = s.refresh("n1", 600, "z9hG4bKr1").unwrap();
    let r = parse_datagram(&r.to_bytes(), &Limits::DEFAULT).unwrap();
    assert_eq!(
        r.request_line().unwrap().uri.to_string(),
        "sip:n1@192.0.2.7"
    );
    assert_eq!(r.to().unwrap().tag(), Some("n1"));
    assert_eq!(r.from().unwrap().tag(), Some("watcher"));
    assert_eq!(r.cseq().unwrap().to_string(), "2 SUBSCRIBE");
    assert_eq!(r.top_via().unwrap().branch(), Some("z9hG4bKr1"));
    assert_eq!(r.expires().unwrap(), Some(600));
    // The notifier side takes it as a refresh of the same dialog.
    let un = s.refresh("n1", 0, "z9hG4bKr2").unwrap();
    assert_eq!(un.cseq().unwrap().seq, 3);
    assert_eq!(un.expires().unwrap(), Some(0));
}

#[test]
fn our_subscriber_and_notifier_refresh_end_to_end() {
    let now = Instant::now();
    let first = subscribe(1, None, Some(600));
    let mut s = Subscriber::new(&first, 2).unwrap();
    let (_, sub) = Subscription::accept(&first, &config(), Authorization::Active, now, &mut rng());
    let mut sub = sub.unwrap();
    let out = s.on_notify(&sub.notify(None, now, &mut rng()).unwrap(), now);
    let tag = out.dialog.unwrap();
    let later = now + Duration::from_secs(500);
    let refresh = s.refresh(&tag, 900, "z9hG4bKe2e").unwrap();
    let r = sub.on_subscribe(&refresh, later);
    assert_eq!((code(&r), r.expires().unwrap()), (200, Some(900)));
    let out = s.on_notify(&sub.notify(None, later, &mut rng()).unwrap(), later);
    assert_eq!(code(&out.response), 200);
    assert_eq!(
        s.dialog(&tag).unwrap().expires_at,
        Some(later + Duration::from_secs(900))
    );
}

#[test]
fn notify_overtaking_the_2xx_is_accepted_and_the_wait_is_not_armed() {
    // RFC 6665 §4.1.2.4: the NOTIFY may arrive before the SUBSCRIBE's 200.
    let now = Instant::now();
    let sub = subscribe(1, None, Some(600));
    let mut s = Subscriber::new(&sub, 2).unwrap();
    let out = s.on_notify(&notify_from("n1", 1, "pending;expires=600"), now);
    assert_eq!((code(&out.response), out.created), (200, true));
    let ok = response_for(&RequestEssentials::from_message(&sub), 200, "OK", "n1");
    s.on_subscribe_response(&ok, now, Duration::from_secs(32));
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(600)));
}
