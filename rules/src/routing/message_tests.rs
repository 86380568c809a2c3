//! Message routing against RFC 6121 §8.5, and against the rules core applied before
//! they moved here.

use proptest::prelude::*;

use super::*;
use MessageType::{Chat, Error, Groupchat, Headline, Normal};

const TYPES: [MessageType; 5] = [Normal, Chat, Groupchat, Headline, Error];
const SU: StanzaErrorCondition = StanzaErrorCondition::ServiceUnavailable;

fn c(available: bool, priority: i8) -> Candidate {
    Candidate {
        available,
        priority,
    }
}

fn with_body(kind: MessageType) -> MessageFacts {
    MessageFacts {
        kind,
        has_body: true,
        ..MessageFacts::default()
    }
}

fn user(to: Addressed) -> Addressee {
    Addressee {
        exists: true,
        blocks_sender: false,
        to,
    }
}

const BARE: Addressed = Addressed::Bare;
const GONE: Addressed = Addressed::Full { connected: false };
const HERE: Addressed = Addressed::Full { connected: true };

fn action(kind: MessageType, to: Addressed, sessions: &[Candidate]) -> MessageAction {
    route_message(&with_body(kind), &user(to), DeliveryPolicy::All, sessions).action
}

/// The expected action per type, from the RFC text, for three situations of the user's
/// sessions: one available with priority 0 at index 1 (next to a negative one), only
/// negative ones, none at all.
#[test]
fn message_types_follow_rfc_6121_section_8_5() {
    use MessageAction::{Bounce, Drop, StoreOffline, ToResource, ToSessions};
    let some = [c(true, -1), c(true, 0)];
    let negative = [c(true, -3)];
    let none: [Candidate; 0] = [];
    // (type, to, with `some`, with `negative`, with `none`)
    let table: Vec<(
        MessageType,
        Addressed,
        MessageAction,
        MessageAction,
        MessageAction,
    )> = vec![
        // §8.5.2.1.1 and §8.5.2.2.1: bare JID.
        (
            Normal,
            BARE,
            ToSessions(vec![1]),
            StoreOffline,
            StoreOffline,
        ),
        (Chat, BARE, ToSessions(vec![1]), StoreOffline, StoreOffline),
        (Groupchat, BARE, Bounce(SU), Bounce(SU), Bounce(SU)),
        (Headline, BARE, ToSessions(vec![1]), Drop, Drop),
        (Error, BARE, Drop, Drop, Drop),
        // §8.5.3.1: the full JID's resource is connected, whatever the type.
        (Normal, HERE, ToResource, ToResource, ToResource),
        (Chat, HERE, ToResource, ToResource, ToResource),
        (Groupchat, HERE, ToResource, ToResource, ToResource),
        (Headline, HERE, ToResource, ToResource, ToResource),
        (Error, HERE, ToResource, ToResource, ToResource),
        // §8.5.3.2.1: no such resource. Chat is handled as to the bare JID; normal,
        // groupchat and headline are ignored or bounced; errors ignored.
        (Normal, GONE, Bounce(SU), Bounce(SU), Bounce(SU)),
        (Chat, GONE, ToSessions(vec![1]), StoreOffline, StoreOffline),
        (Groupchat, GONE, Bounce(SU), Bounce(SU), Bounce(SU)),
        (Headline, GONE, Drop, Drop, Drop),
        (Error, GONE, Drop, Drop, Drop),
    ];
    for (kind, to, with_some, with_negative, with_none) in table {
        assert_eq!(action(kind, to, &some), with_some, "{kind:?} {to:?} some");
        assert_eq!(
            action(kind, to, &negative),
            with_negative,
            "{kind:?} {to:?} negative"
        );
        assert_eq!(action(kind, to, &none), with_none, "{kind:?} {to:?} none");
    }
}

#[test]
fn missing_accounts_and_blocked_senders_bounce_except_errors() {
    for (exists, blocks_sender) in [(false, false), (true, true), (false, true)] {
        for kind in TYPES {
            for to in [BARE, GONE, HERE] {
                let a = Addressee {
                    exists,
                    blocks_sender,
                    to,
                };
                let r = route_message(&with_body(kind), &a, DeliveryPolicy::All, &[c(true, 1)]);
                let expected = if kind == Error {
                    MessageAction::Drop
                } else {
                    MessageAction::Bounce(SU)
                };
                assert_eq!(r.action, expected, "{a:?} {kind:?}");
                let why = if exists { "blocks" } else { "no such account" };
                assert!(r.reason.contains(why), "{}", r.reason);
            }
        }
    }
}

#[test]
fn policy_picks_among_sessions_for_normal_and_chat_only() {
    let s = [c(true, 1), c(true, 5), c(false, 9), c(true, 5)];
    for kind in [Normal, Chat] {
        let r = route_message(&with_body(kind), &user(BARE), DeliveryPolicy::Highest, &s);
        assert_eq!(r.action, MessageAction::ToSessions(vec![1, 3]));
        assert!(r.reason.contains("highest"), "{}", r.reason);
    }
    // Headlines go to every non-negative available resource, whatever the policy.
    let r = route_message(
        &with_body(Headline),
        &user(BARE),
        DeliveryPolicy::Highest,
        &s,
    );
    assert_eq!(r.action, MessageAction::ToSessions(vec![0, 1, 3]));
}

#[test]
fn only_content_worth_keeping_is_stored() {
    let state_only = MessageFacts {
        kind: Chat,
        ..MessageFacts::default()
    };
    for to in [BARE, GONE] {
        let r = route_message(&state_only, &user(to), DeliveryPolicy::All, &[]);
        assert_eq!(r.action, MessageAction::Drop, "{to:?}");
        assert_eq!(r.reason, worth_storing(&state_only).reason);
    }
    let r = route_message(&with_body(Chat), &user(GONE), DeliveryPolicy::All, &[]);
    assert_eq!(r.action, MessageAction::StoreOffline);
    assert!(r.reason.contains("not connected"), "{}", r.reason);
}

/// The routing core did inline before these rules moved here
/// (`deliver_message` + `fan_out` + `store_offline`), for comparison.
fn core_before(
    m: &MessageFacts,
    to: &Addressee,
    policy: DeliveryPolicy,
    s: &[Candidate],
) -> MessageAction {
    let old_storable = |m: &MessageFacts| {
        matches!(m.kind, Normal | Chat)
            && !m.hint_no_store
            && (m.hint_store || m.has_body || m.has_subject)
    };
    if !to.exists || to.blocks_sender {
        return if m.kind == Error {
            MessageAction::Drop
        } else {
            MessageAction::Bounce(SU)
        };
    }
    match to.to {
        Addressed::Full { connected: true } => return MessageAction::ToResource,
        Addressed::Full { connected: false } if matches!(m.kind, Headline | Error) => {
            return MessageAction::Drop
        }
        _ => {}
    }
    match m.kind {
        Groupchat => MessageAction::Bounce(SU),
        Headline | Error => {
            let d = select_recipients(DeliveryPolicy::All, s);
            if d.is_offline() {
                MessageAction::Drop
            } else {
                MessageAction::ToSessions(d.targets)
            }
        }
        Normal | Chat => {
            let d = select_recipients(policy, s);
            if !d.is_offline() {
                MessageAction::ToSessions(d.targets)
            } else if old_storable(m) {
                MessageAction::StoreOffline
            } else {
                MessageAction::Drop
            }
        }
    }
}

fn any_facts() -> impl Strategy<Value = MessageFacts> {
    (0..5usize, proptest::collection::vec(any::<bool>(), 7)).prop_map(|(t, b)| MessageFacts {
        kind: TYPES[t],
        has_body: b[0],
        has_subject: b[1],
        hint_store: b[2],
        hint_no_store: b[3],
        hint_no_copy: b[4],
        private: b[5],
        is_carbon: b[6],
    })
}

fn any_addressee() -> impl Strategy<Value = Addressee> {
    (any::<bool>(), any::<bool>(), 0..3u8).prop_map(|(exists, blocks_sender, to)| Addressee {
        exists,
        blocks_sender,
        to: match to {
            0 => BARE,
            1 => GONE,
            _ => HERE,
        },
    })
}

fn any_sessions() -> impl Strategy<Value = Vec<Candidate>> {
    proptest::collection::vec((any::<bool>(), -3i8..4).prop_map(|(a, p)| c(a, p)), 0..5)
}

proptest! {
    #[test]
    fn decisions_are_well_formed(
        m in any_facts(),
        to in any_addressee(),
        highest in any::<bool>(),
        s in any_sessions(),
    ) {
        let policy = if highest { DeliveryPolicy::Highest } else { DeliveryPolicy::All };
        let r = route_message(&m, &to, policy, &s);
        prop_assert!(!r.reason.is_empty());
        match &r.action {
            MessageAction::ToSessions(t) => {
                prop_assert!(!t.is_empty());
                for &i in t {
                    prop_assert!(i < s.len() && s[i].available && s[i].priority >= 0);
                }
                prop_assert!(matches!(m.kind, Normal | Chat | Headline));
            }
            MessageAction::ToResource => {
                prop_assert_eq!(to.to, HERE);
                prop_assert!(to.exists && !to.blocks_sender);
            }
            MessageAction::StoreOffline => prop_assert!(worth_storing(&m).store),
            // An error is never answered with an error (RFC 6120 §8.3.1).
            MessageAction::Bounce(_) => prop_assert!(m.kind != Error),
            MessageAction::Drop => {}
        }
    }

    /// Where the RFC left core's choice open, the rules kept it. The differences are
    /// the ones RFC 6121 requires: an error to a bare JID is ignored (§8.5.2.1.1), a
    /// normal message to a resource that is not connected is bounced (§8.5.3.2.1);
    /// and a carbon copy is never stored offline.
    #[test]
    fn agrees_with_core_before_except_where_the_rfc_says_otherwise(
        m in any_facts(),
        to in any_addressee(),
        highest in any::<bool>(),
        s in any_sessions(),
    ) {
        let policy = if highest { DeliveryPolicy::Highest } else { DeliveryPolicy::All };
        let new = route_message(&m, &to, policy, &s).action;
        let old = core_before(&m, &to, policy, &s);
        let reachable = to.exists && !to.blocks_sender && to.to != HERE;
        let error_to_bare = reachable && m.kind == Error && to.to == BARE;
        let normal_to_gone = reachable && m.kind == Normal && to.to == GONE;
        let carbon_stored = old == MessageAction::StoreOffline && m.is_carbon;
        if error_to_bare {
            prop_assert_eq!(new, MessageAction::Drop);
        } else if normal_to_gone {
            prop_assert_eq!(new, MessageAction::Bounce(SU));
        } else if carbon_stored {
            prop_assert_eq!(new, MessageAction::Drop);
        } else {
            prop_assert_eq!(new, old);
        }
    }
}
