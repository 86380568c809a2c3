use super::*;
use herald_translate::{ns, Element, Jid};

fn limits() -> QueueLimits {
    QueueLimits {
        max_stanzas: 3,
        max_bytes: 1000,
        connect_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        backoff_initial: Duration::from_secs(5),
        backoff_max: Duration::from_secs(40),
    }
}

fn msg(n: u32, to: &str) -> Envelope {
    let el = Element::new("message", ns::CLIENT)
        .with_attr("id", n.to_string())
        .with_attr("type", "chat");
    Envelope::new(
        Jid::parse("alice@herald.example/desk").expect("from"),
        Jid::parse(to).expect("to"),
        el,
    )
    .expect("envelope")
}

fn error_msg(to: &str) -> Envelope {
    let el = Element::new("message", ns::CLIENT).with_attr("type", "error");
    Envelope::new(
        Jid::parse("alice@herald.example/desk").expect("from"),
        Jid::parse(to).expect("to"),
        el,
    )
    .expect("envelope")
}

fn drain(q: &mut OutboundQueues) -> Vec<Action> {
    std::iter::from_fn(|| q.poll_action()).collect()
}

/// (id, condition) of each bounce.
fn bounces(actions: &[Action]) -> Vec<(String, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Bounce(env, _) => {
                let el = env.stanza();
                let cond = el
                    .elements()
                    .find(|c| c.name == "error")
                    .and_then(|e| e.elements().find(|c| c.ns == ns::STANZA_ERRORS))
                    .map(|c| c.name.clone())
                    .unwrap_or_default();
                assert_eq!(env.to().to_string(), "alice@herald.example/desk");
                Some((el.attr("id").unwrap_or_default().to_string(), cond))
            }
            _ => None,
        })
        .collect()
}

fn sent_ids(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(_, env) => Some(env.stanza().attr("id").unwrap_or_default().to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn stanzas_wait_for_the_stream_then_go_out_in_order() {
    let t0 = Instant::now();
    let mut q = OutboundQueues::new(limits());
    q.send(msg(1, "bob@remote.example"), 100, t0);
    q.send(msg(2, "bob@remote.example"), 100, t0);
    let a = drain(&mut q);
    assert!(
        matches!(&a[..], [Action::Connect(d)] if d == "remote.example"),
        "{a:?}"
    );
    assert_eq!(q.queued("remote.example"), 2);
    assert_eq!(q.total_queued(), 2);
    q.connected("remote.example", t0 + Duration::from_secs(1));
    assert_eq!(sent_ids(&drain(&mut q)), ["1", "2"]);
    assert!(q.is_up("remote.example"));
    q.send(
        msg(3, "carol@remote.example"),
        100,
        t0 + Duration::from_secs(2),
    );
    assert_eq!(sent_ids(&drain(&mut q)), ["3"]);
}

#[test]
fn a_failed_attempt_bounces_everything_that_waited() {
    let t0 = Instant::now();
    let mut q = OutboundQueues::new(limits());
    for n in 1..=3 {
        q.send(msg(n, "bob@gone.example"), 100, t0);
    }
    drain(&mut q);
    q.failed(
        "gone.example",
        Failure::NotFound("no SRV or A record".into()),
        t0,
    );
    let b = bounces(&drain(&mut q));
    assert_eq!(
        b,
        [1, 2, 3].map(|n| (n.to_string(), "remote-server-not-found".to_string()))
    );
    assert_eq!(q.queued("gone.example"), 0);
}

#[test]
fn a_slow_attempt_times_out_on_virtual_time() {
    let t0 = Instant::now();
    let mut q = OutboundQueues::new(limits());
    q.send(msg(1, "bob@slow.example"), 100, t0);
    drain(&mut q);
    assert_eq!(q.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    q.handle_timeout(t0 + Duration::from_secs(9));
    assert!(drain(&mut q).is_empty());
    q.handle_timeout(t0 + Duration::from_secs(10));
    let a = drain(&mut q);
    assert!(
        matches!(&a[0], Action::Abort(d) if d == "slow.example"),
        "{a:?}"
    );
    assert_eq!(bounces(&a), [("1".into(), "remote-server-timeout".into())]);
    // A late success for the aborted attempt changes nothing.
    assert!(!q.connected("slow.example", t0 + Duration::from_secs(11)));
    assert!(drain(&mut q).is_empty());
    assert!(!q.is_up("slow.example"));
}

#[test]
fn the_queue_is_bounded_in_count_and_bytes() {
    let t0 = Instant::now();
    let mut q = OutboundQueues::new(limits());
    for n in 1..=4 {
        q.send(msg(n, "bob@far.example"), 100, t0);
    }
    let a = drain(&mut q);
    assert_eq!(bounces(&a), [("4".into(), "resource-constraint".into())]);
    let mut q = OutboundQueues::new(limits());
    q.send(msg(1, "bob@far.example"), 600, t0);
    q.send(msg(2, "bob@far.example"), 600, t0);
    assert_eq!(
        bounces(&drain(&mut q)),
        [("2".into(), "resource-constraint".into())]
    );
    // A stanza larger than the whole queue never waits.
    q.send(msg(3, "bob@other.example"), 5000, t0);
    assert_eq!(
        bounces(&drain(&mut q)),
        [("3".into(), "resource-constraint".into())]
    );
    assert_eq!(q.queued("other.example"), 0);
}

#[test]
fn a_failed_domain_backs_off_with_growing_delays_then_is_forgotten() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut q = OutboundQueues::new(limits());
    q.send(msg(1, "bob@down.example"), 10, t0);
    drain(&mut q);
    q.failed(
        "down.example",
        Failure::Refused("TLS handshake failed".into()),
        t0,
    );
    drain(&mut q);
    // Within the first back-off (5 s): bounced at once, no new attempt.
    q.send(msg(2, "bob@down.example"), 10, t0 + s(4));
    let a = drain(&mut q);
    assert!(!a.iter().any(|a| matches!(a, Action::Connect(_))), "{a:?}");
    assert_eq!(
        bounces(&a),
        [("2".into(), "remote-server-not-found".into())]
    );
    // After it: a new attempt; it fails again, the back-off doubles (10 s).
    q.send(msg(3, "bob@down.example"), 10, t0 + s(5));
    assert!(matches!(drain(&mut q)[..], [Action::Connect(_)]));
    q.failed("down.example", Failure::Timeout, t0 + s(6));
    drain(&mut q);
    q.send(msg(4, "bob@down.example"), 10, t0 + s(15));
    assert_eq!(
        bounces(&drain(&mut q)),
        [("4".into(), "remote-server-timeout".into())]
    );
    q.send(msg(5, "bob@down.example"), 10, t0 + s(16));
    assert!(matches!(drain(&mut q)[..], [Action::Connect(_)]));
    q.connected("down.example", t0 + s(17));
    assert_eq!(sent_ids(&drain(&mut q)), ["5"]);

    // A failure is forgotten after the back-off and the cap: the table stays small.
    let mut q = OutboundQueues::new(limits());
    q.send(msg(1, "bob@gone.example"), 10, t0);
    q.failed("gone.example", Failure::Timeout, t0);
    drain(&mut q);
    let forget = q.poll_timeout().expect("a deadline");
    assert_eq!(forget, t0 + s(5) + s(40));
    q.handle_timeout(forget);
    assert!(drain(&mut q).is_empty());
    assert_eq!(q.poll_timeout(), None);
}

#[test]
fn idle_streams_close_and_a_closed_stream_reconnects() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut q = OutboundQueues::new(limits());
    q.send(msg(1, "bob@remote.example"), 10, t0);
    q.connected("remote.example", t0);
    drain(&mut q);
    q.send(msg(2, "bob@remote.example"), 10, t0 + s(30));
    drain(&mut q);
    q.handle_timeout(t0 + s(60));
    assert!(drain(&mut q).is_empty(), "used 30 s ago: not idle yet");
    q.handle_timeout(t0 + s(90));
    assert!(matches!(&drain(&mut q)[..], [Action::Close(d)] if d == "remote.example"));
    q.send(msg(3, "bob@remote.example"), 10, t0 + s(91));
    assert!(matches!(drain(&mut q)[..], [Action::Connect(_)]));
    q.connected("remote.example", t0 + s(92));
    drain(&mut q);
    q.closed("remote.example");
    q.send(msg(4, "bob@remote.example"), 10, t0 + s(93));
    assert!(matches!(drain(&mut q)[..], [Action::Connect(_)]));
}

#[test]
fn error_stanzas_are_never_bounced() {
    let t0 = Instant::now();
    let mut q = OutboundQueues::new(limits());
    q.send(error_msg("bob@gone.example"), 10, t0);
    q.send(msg(1, "bob@gone.example"), 10, t0);
    drain(&mut q);
    q.failed("gone.example", Failure::Timeout, t0);
    let a = drain(&mut q);
    assert_eq!(bounces(&a), [("1".into(), "remote-server-timeout".into())]);
    assert_eq!(q.dropped_errors, 1);
}

#[test]
fn domains_are_independent() {
    let t0 = Instant::now();
    let mut q = OutboundQueues::new(limits());
    q.send(msg(1, "a@one.example"), 10, t0);
    q.send(msg(2, "b@two.example"), 10, t0);
    drain(&mut q);
    q.failed("one.example", Failure::Timeout, t0);
    q.connected("two.example", t0);
    let a = drain(&mut q);
    assert_eq!(bounces(&a), [("1".into(), "remote-server-timeout".into())]);
    assert_eq!(sent_ids(&a), ["2"]);
}
