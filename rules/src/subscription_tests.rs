//! The subscription transitions against the tables of RFC 6121 Appendix A, written out
//! from the RFC text, plus the pre-approval rules of §3.4.

use std::collections::HashSet;

use super::*;
use Subscription::{Both, From, To};

/// The nine states of RFC 6121 Appendix A.1, in the order of its tables.
const STATES: [&str; 9] = [
    "None",
    "None + Pending Out",
    "None + Pending In",
    "None + Pending Out+In",
    "To",
    "To + Pending In",
    "From",
    "From + Pending Out",
    "Both",
];

const KINDS: [SubKind; 4] = [
    SubKind::Subscribe,
    SubKind::Subscribed,
    SubKind::Unsubscribe,
    SubKind::Unsubscribed,
];

/// A state from its RFC name, spelled out here independently of `rfc_name`.
fn state(name: &str) -> SubState {
    let (sub, ask, pending_in) = match name {
        "None" => (Subscription::None, false, false),
        "None + Pending Out" => (Subscription::None, true, false),
        "None + Pending In" => (Subscription::None, false, true),
        "None + Pending Out+In" => (Subscription::None, true, true),
        "To" => (To, false, false),
        "To + Pending In" => (To, false, true),
        "From" => (From, false, false),
        "From + Pending Out" => (From, true, false),
        "Both" => (Both, false, false),
        other => panic!("not an RFC 6121 state: {other}"),
    };
    SubState {
        sub,
        ask,
        pending_in,
        approved: false,
    }
}

/// One row: existing state, whether the stanza goes on (ROUTE? for outbound, DELIVER?
/// for inbound), new state ("" for "no state change").
type Row = (&'static str, bool, &'static str);

/// RFC 6121 A.2.1, processing of outbound "subscribe" stanzas.
const OUT_SUBSCRIBE: [Row; 9] = [
    ("None", true, "None + Pending Out"),
    ("None + Pending Out", true, ""),
    ("None + Pending In", true, "None + Pending Out+In"),
    ("None + Pending Out+In", true, ""),
    ("To", true, ""),
    ("To + Pending In", true, ""),
    ("From", true, "From + Pending Out"),
    ("From + Pending Out", true, ""),
    ("Both", true, ""),
];

/// RFC 6121 A.2.2, outbound "unsubscribe".
const OUT_UNSUBSCRIBE: [Row; 9] = [
    ("None", true, ""),
    ("None + Pending Out", true, "None"),
    ("None + Pending In", true, ""),
    ("None + Pending Out+In", true, "None + Pending In"),
    ("To", true, "None"),
    ("To + Pending In", true, "None + Pending In"),
    ("From", true, ""),
    ("From + Pending Out", true, "From"),
    ("Both", true, "From"),
];

/// RFC 6121 A.2.3, outbound "subscribed".
const OUT_SUBSCRIBED: [Row; 9] = [
    ("None", false, ""),
    ("None + Pending Out", false, ""),
    ("None + Pending In", true, "From"),
    ("None + Pending Out+In", true, "From + Pending Out"),
    ("To", false, ""),
    ("To + Pending In", true, "Both"),
    ("From", false, ""),
    ("From + Pending Out", false, ""),
    ("Both", false, ""),
];

/// RFC 6121 A.2.4, outbound "unsubscribed".
const OUT_UNSUBSCRIBED: [Row; 9] = [
    ("None", false, ""),
    ("None + Pending Out", false, ""),
    ("None + Pending In", true, "None"),
    ("None + Pending Out+In", true, "None + Pending Out"),
    ("To", false, ""),
    ("To + Pending In", true, "To"),
    ("From", true, "None"),
    ("From + Pending Out", true, "None + Pending Out"),
    ("Both", true, "To"),
];

/// RFC 6121 A.3.1, inbound "subscribe" (the "no *" rows are answered "subscribed").
const IN_SUBSCRIBE: [Row; 9] = [
    ("None", true, "None + Pending In"),
    ("None + Pending Out", true, "None + Pending Out+In"),
    ("None + Pending In", false, ""),
    ("None + Pending Out+In", false, ""),
    ("To", true, "To + Pending In"),
    ("To + Pending In", false, ""),
    ("From", false, ""),
    ("From + Pending Out", false, ""),
    ("Both", false, ""),
];

/// RFC 6121 A.3.2, inbound "subscribed".
const IN_SUBSCRIBED: [Row; 9] = [
    ("None", false, ""),
    ("None + Pending Out", true, "To"),
    ("None + Pending In", false, ""),
    ("None + Pending Out+In", true, "To + Pending In"),
    ("To", false, ""),
    ("To + Pending In", false, ""),
    ("From", false, ""),
    ("From + Pending Out", true, "Both"),
    ("Both", false, ""),
];

/// RFC 6121 A.3.3, inbound "unsubscribe".
const IN_UNSUBSCRIBE: [Row; 9] = [
    ("None", false, ""),
    ("None + Pending Out", false, ""),
    ("None + Pending In", true, "None"),
    ("None + Pending Out+In", true, "None + Pending Out"),
    ("To", false, ""),
    ("To + Pending In", true, "To"),
    ("From", true, "None"),
    ("From + Pending Out", true, "None + Pending Out"),
    ("Both", true, "To"),
];

/// RFC 6121 A.3.4, inbound "unsubscribed".
const IN_UNSUBSCRIBED: [Row; 9] = [
    ("None", false, ""),
    ("None + Pending Out", true, "None"),
    ("None + Pending In", false, ""),
    ("None + Pending Out+In", true, "None + Pending In"),
    ("To", true, "None"),
    ("To + Pending In", true, "None + Pending In"),
    ("From", false, ""),
    ("From + Pending Out", true, "From"),
    ("Both", true, "From"),
];

fn expected_state(existing: &str, new: &str) -> SubState {
    state(if new.is_empty() { existing } else { new })
}

fn check_table(table: &[Row; 9], kind: SubKind, direction: &str) {
    for (i, &(existing, goes_on, new)) in table.iter().enumerate() {
        assert_eq!(existing, STATES[i], "the table lists every state in order");
        let s = state(existing);
        let want = expected_state(existing, new);
        let case = format!("{direction} {kind:?} in {existing}");
        let (got, flag, reason) = match direction {
            "outbound" => {
                let o = outbound(s, kind);
                (o.state, o.route, o.reason)
            }
            _ => {
                let r = inbound(s, kind);
                (r.state, r.deliver, r.reason)
            }
        };
        // Pre-approval (§3.4) is not part of the Appendix A states; it is checked
        // in its own tests.
        let got_without_approval = SubState {
            approved: false,
            ..got
        };
        assert_eq!(got_without_approval, want, "{case}: new state");
        assert_eq!(got.rfc_name(), want.rfc_name(), "{case}: state name");
        assert_eq!(flag, goes_on, "{case}: route/deliver");
        assert!(reason.contains("RFC 6121"), "{case}: reason {reason:?}");
    }
}

#[test]
fn outbound_follows_rfc_6121_appendix_a2() {
    check_table(&OUT_SUBSCRIBE, SubKind::Subscribe, "outbound");
    check_table(&OUT_UNSUBSCRIBE, SubKind::Unsubscribe, "outbound");
    check_table(&OUT_SUBSCRIBED, SubKind::Subscribed, "outbound");
    check_table(&OUT_UNSUBSCRIBED, SubKind::Unsubscribed, "outbound");
}

#[test]
fn inbound_follows_rfc_6121_appendix_a3() {
    check_table(&IN_SUBSCRIBE, SubKind::Subscribe, "inbound");
    check_table(&IN_SUBSCRIBED, SubKind::Subscribed, "inbound");
    check_table(&IN_UNSUBSCRIBE, SubKind::Unsubscribe, "inbound");
    check_table(&IN_UNSUBSCRIBED, SubKind::Unsubscribed, "inbound");
}

#[test]
fn side_actions_follow_the_rfc_text() {
    for name in STATES {
        let s = state(name);
        let subscriber = matches!(name, "From" | "From + Pending Out" | "Both");
        for kind in KINDS {
            let o = outbound(s, kind);
            // §3.1.5: presence follows an approval that was routed.
            assert_eq!(
                o.send_presence,
                kind == SubKind::Subscribed && o.route,
                "{name} {kind:?}"
            );
            // §3.2.2: unavailable presence goes to a subscriber being cancelled.
            assert_eq!(
                o.send_unavailable,
                kind == SubKind::Unsubscribed && subscriber,
                "{name} {kind:?}"
            );
            let r = inbound(s, kind);
            // A.3.1 "no *" rows: a subscriber asking again is answered automatically.
            assert_eq!(
                r.auto_subscribed,
                kind == SubKind::Subscribe && subscriber,
                "{name} {kind:?}"
            );
            // §3.3.3: a subscriber that unsubscribes gets the user's unavailable presence.
            assert_eq!(
                r.send_unavailable,
                kind == SubKind::Unsubscribe && subscriber,
                "{name} {kind:?}"
            );
        }
    }
}

fn approved(name: &str) -> SubState {
    SubState {
        approved: true,
        ..state(name)
    }
}

/// §3.4.1: the states in which an outbound "subscribed" is a pre-approval.
const PRE_APPROVABLE: [&str; 3] = ["None", "None + Pending Out", "To"];

#[test]
fn subscribed_before_a_request_is_a_pre_approval() {
    for name in STATES {
        let o = outbound(state(name), SubKind::Subscribed);
        let pre = PRE_APPROVABLE.contains(&name);
        assert_eq!(o.state.approved, pre, "{name}");
        if pre {
            assert!(!o.route, "§3.4.1: MUST NOT route the pre-approval ({name})");
            assert_eq!(o.state.rfc_name(), name);
            assert!(o.reason.contains("pre-approval"));
        }
    }
}

#[test]
fn a_request_consumes_the_pre_approval() {
    for (name, after) in [
        ("None", "From"),
        ("None + Pending Out", "From + Pending Out"),
        ("To", "Both"),
    ] {
        let r = inbound(approved(name), SubKind::Subscribe);
        assert!(r.auto_subscribed && !r.deliver, "{name}");
        assert_eq!(r.state, state(after), "{name}: approved flag cleared");
        assert!(r.reason.starts_with("pre-approved"), "{}", r.reason);
    }
}

#[test]
fn unsubscribed_withdraws_a_pre_approval_without_routing() {
    for name in PRE_APPROVABLE {
        let o = outbound(approved(name), SubKind::Unsubscribed);
        assert!(!o.route, "§3.2.2 step 2: MUST NOT route ({name})");
        assert!(!o.send_unavailable);
        assert_eq!(o.state, state(name));
    }
}

#[test]
fn other_stanzas_keep_the_pre_approval() {
    for name in PRE_APPROVABLE {
        for kind in KINDS {
            let o = outbound(approved(name), kind);
            if kind != SubKind::Unsubscribed {
                assert!(o.state.approved, "outbound {kind:?} in {name}");
            }
            let r = inbound(approved(name), kind);
            if kind != SubKind::Subscribe {
                assert!(r.state.approved, "inbound {kind:?} in {name}");
            }
        }
    }
}

/// Every state reachable from "None" through any sequence of stanzas in either
/// direction is one of the nine RFC states, or a pre-approval in one of the three
/// pre-approvable ones.
#[test]
fn reachable_states_are_the_rfc_states() {
    let mut seen = HashSet::from([SubState::default()]);
    let mut todo = vec![SubState::default()];
    while let Some(s) = todo.pop() {
        for kind in KINDS {
            for n in [outbound(s, kind).state, inbound(s, kind).state] {
                if seen.insert(n) {
                    todo.push(n);
                }
            }
        }
    }
    let mut expected: HashSet<SubState> = STATES.iter().map(|n| state(n)).collect();
    expected.extend(PRE_APPROVABLE.iter().map(|n| approved(n)));
    assert_eq!(seen, expected);
    assert!(seen.iter().all(|s| consistent(*s)));
}

/// No request for what is already granted, and no pre-approval beside a grant or a
/// request: what every reachable state satisfies.
fn consistent(x: SubState) -> bool {
    let asks_granted = x.ask && x.sub.has_to();
    let pending_granted = x.pending_in && x.sub.has_from();
    let approved_needlessly = x.approved && (x.sub.has_from() || x.pending_in);
    !(asks_granted || pending_granted || approved_needlessly)
}

/// Whatever flags a stored row holds, a transition gives a decision with a reason, and
/// a consistent state stays consistent.
#[test]
fn every_input_gives_a_consistent_decision() {
    for sub in [Subscription::None, To, From, Both] {
        for bits in 0..8u8 {
            let s = SubState {
                sub,
                ask: bits & 1 != 0,
                pending_in: bits & 2 != 0,
                approved: bits & 4 != 0,
            };
            for kind in KINDS {
                let o = outbound(s, kind);
                let r = inbound(s, kind);
                if consistent(s) {
                    assert!(consistent(o.state), "out {s:?} {kind:?} -> {:?}", o.state);
                    assert!(consistent(r.state), "in {s:?} {kind:?} -> {:?}", r.state);
                }
                assert!(!o.reason.is_empty() && !r.reason.is_empty());
                assert!(!(r.deliver && r.auto_subscribed), "{s:?} {kind:?}");
            }
        }
    }
}

#[test]
fn full_handshake_reaches_both() {
    // Romeo subscribes to Juliet; Juliet approves and subscribes back.
    let romeo = outbound(SubState::default(), SubKind::Subscribe);
    assert!(romeo.route && romeo.state.ask);
    let juliet = inbound(SubState::default(), SubKind::Subscribe);
    assert!(juliet.deliver && juliet.state.pending_in);
    let juliet = outbound(juliet.state, SubKind::Subscribed);
    assert!(juliet.route && juliet.send_presence);
    assert_eq!(juliet.state, state("From"));
    let romeo = inbound(romeo.state, SubKind::Subscribed);
    assert!(romeo.deliver);
    assert_eq!(romeo.state, state("To"));
    let juliet = outbound(juliet.state, SubKind::Subscribe);
    let romeo = inbound(romeo.state, SubKind::Subscribe);
    let romeo = outbound(romeo.state, SubKind::Subscribed);
    assert_eq!(romeo.state, state("Both"));
    let juliet = inbound(juliet.state, SubKind::Subscribed);
    assert_eq!(juliet.state, state("Both"));
}

#[test]
fn names_and_values() {
    for sub in [Subscription::None, To, From, Both] {
        assert_eq!(Subscription::parse(sub.as_str()), Some(sub));
        assert_eq!(Subscription::from_parts(sub.has_from(), sub.has_to()), sub);
    }
    assert_eq!(Both.as_str(), "both");
    assert_eq!(Subscription::parse("remove"), None);
    assert_eq!(Subscription::parse("Both"), None);
    assert_eq!(Subscription::default(), Subscription::None);
    for kind in KINDS {
        assert_eq!(SubKind::parse(kind.as_str()), Some(kind));
    }
    assert_eq!(SubKind::parse("probe"), None);
    for name in STATES {
        assert_eq!(state(name).rfc_name(), name);
        assert_eq!(state(name).to_string(), name);
    }
    assert_eq!(approved("To").to_string(), "To (pre-approved)");
}
