//! Presence to a local user (RFC 6121 §3, §4.3.2, §8.5.2.1.2, §8.5.2.2.2, §8.5.3.1,
//! §8.5.3.2.2): subscription handling, probe answers, or delivery.

use super::{Addressed, Addressee};
use crate::subscription::SubKind;

/// What happens to the presence stanza.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceAction {
    /// A subscription stanza: the subscription rules decide ([`crate::inbound`]).
    Subscription(SubKind),
    /// A probe: answered with the user's presence if the prober is a subscriber.
    AnswerProbe,
    /// Deliver to the session bound to the addressed full JID.
    ToResource,
    /// Deliver to each available session of the user (none: nothing happens).
    ToAvailable,
    /// Drop it silently.
    Drop,
}

/// The decision for one presence stanza, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceRoute {
    pub action: PresenceAction,
    pub reason: &'static str,
}

/// Decide what happens to a presence stanza of type `ptype` (the `type` attribute)
/// for a local user.
pub fn route_presence(ptype: Option<&str>, to: &Addressee) -> PresenceRoute {
    let (action, reason) = route(ptype, to);
    PresenceRoute { action, reason }
}

fn route(ptype: Option<&str>, to: &Addressee) -> (PresenceAction, &'static str) {
    if !to.exists {
        return (
            PresenceAction::Drop,
            "no such account: presence is ignored (RFC 6121 §8.5.1)",
        );
    }
    if to.blocks_sender {
        return (
            PresenceAction::Drop,
            "the user blocks the sender: presence is not delivered (XEP-0191 §3.5)",
        );
    }
    match ptype {
        Some("probe") => (
            PresenceAction::AnswerProbe,
            "probe: the server answers for the user (RFC 6121 §4.3.2)",
        ),
        None | Some("unavailable" | "error") => match to.to {
            Addressed::Full { connected: true } => (
                PresenceAction::ToResource,
                "the addressed resource is connected (RFC 6121 §8.5.3.1)",
            ),
            Addressed::Full { connected: false } => (
                PresenceAction::Drop,
                "presence to a resource that is not connected: ignored (RFC 6121 §8.5.3.2.2)",
            ),
            Addressed::Bare => (
                PresenceAction::ToAvailable,
                "presence to a bare JID: every available resource (RFC 6121 §8.5.2.1.2)",
            ),
        },
        Some(t) => match SubKind::parse(t) {
            Some(kind) => (
                PresenceAction::Subscription(kind),
                "subscription stanza: the subscription state decides (RFC 6121 §3)",
            ),
            None => (
                PresenceAction::Drop,
                "not a presence type of RFC 6121 §4.7.1: ignored",
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(to: Addressed) -> Addressee {
        Addressee {
            exists: true,
            blocks_sender: false,
            to,
        }
    }

    #[test]
    fn presence_routing_table() {
        let here = Addressed::Full { connected: true };
        let gone = Addressed::Full { connected: false };
        let bare = Addressed::Bare;
        // (type, to bare, to a connected resource, to a resource that is gone)
        let table = [
            (
                None,
                PresenceAction::ToAvailable,
                PresenceAction::ToResource,
                PresenceAction::Drop,
            ),
            (
                Some("unavailable"),
                PresenceAction::ToAvailable,
                PresenceAction::ToResource,
                PresenceAction::Drop,
            ),
            (
                Some("error"),
                PresenceAction::ToAvailable,
                PresenceAction::ToResource,
                PresenceAction::Drop,
            ),
            (
                Some("probe"),
                PresenceAction::AnswerProbe,
                PresenceAction::AnswerProbe,
                PresenceAction::AnswerProbe,
            ),
            (
                Some("bogus"),
                PresenceAction::Drop,
                PresenceAction::Drop,
                PresenceAction::Drop,
            ),
            (
                Some("Subscribe"),
                PresenceAction::Drop,
                PresenceAction::Drop,
                PresenceAction::Drop,
            ),
        ];
        for (t, to_bare, to_here, to_gone) in table {
            assert_eq!(route_presence(t, &user(bare)).action, to_bare, "{t:?}");
            assert_eq!(route_presence(t, &user(here)).action, to_here, "{t:?}");
            assert_eq!(route_presence(t, &user(gone)).action, to_gone, "{t:?}");
        }
        for kind in [
            SubKind::Subscribe,
            SubKind::Subscribed,
            SubKind::Unsubscribe,
            SubKind::Unsubscribed,
        ] {
            for to in [bare, here, gone] {
                let r = route_presence(Some(kind.as_str()), &user(to));
                assert_eq!(r.action, PresenceAction::Subscription(kind));
            }
        }
    }

    #[test]
    fn missing_accounts_and_blocked_senders_get_nothing() {
        for (exists, blocks_sender) in [(false, false), (true, true)] {
            for t in [None, Some("subscribe"), Some("probe")] {
                let a = Addressee {
                    exists,
                    blocks_sender,
                    to: Addressed::Bare,
                };
                let r = route_presence(t, &a);
                assert_eq!(r.action, PresenceAction::Drop, "{a:?} {t:?}");
            }
        }
    }
}
