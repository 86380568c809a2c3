//! Messages to a local user (RFC 6121 §8.5.1, §8.5.2.1.1, §8.5.2.2.1, §8.5.3.1,
//! §8.5.3.2.1): deliver, store offline, bounce or drop, by message type.

use herald_translate::StanzaErrorCondition;

use super::{Addressed, Addressee};
use crate::delivery::{select_recipients, Candidate, DeliveryPolicy};
use crate::message::{MessageFacts, MessageType};
use crate::offline::worth_storing;

/// What happens to the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageAction {
    /// Deliver to the session bound to the addressed full JID.
    ToResource,
    /// Deliver to these sessions (indexes into the candidates given), never empty.
    ToSessions(Vec<usize>),
    /// No session takes it now and it is worth keeping: store it (XEP-0160).
    StoreOffline,
    /// Return an error with this condition to the sender.
    Bounce(StanzaErrorCondition),
    /// Drop it silently.
    Drop,
}

/// The decision for one message, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRoute {
    pub action: MessageAction,
    pub reason: &'static str,
}

impl MessageRoute {
    fn new(action: MessageAction, reason: &'static str) -> Self {
        Self { action, reason }
    }

    fn bounce(reason: &'static str) -> Self {
        Self::new(
            MessageAction::Bounce(StanzaErrorCondition::ServiceUnavailable),
            reason,
        )
    }

    fn drop(reason: &'static str) -> Self {
        Self::new(MessageAction::Drop, reason)
    }
}

/// Decide where a message for a local user goes. `sessions` are the user's sessions
/// (used for a bare JID, and for a chat message to a resource that is not connected);
/// `policy` picks among them for normal and chat messages.
pub fn route_message(
    m: &MessageFacts,
    to: &Addressee,
    policy: DeliveryPolicy,
    sessions: &[Candidate],
) -> MessageRoute {
    let error = m.kind == MessageType::Error;
    if !to.exists {
        return if error {
            MessageRoute::drop(
                "no such account, and an error is never answered with an error (RFC 6121 §8.5.1, RFC 6120 §8.3.1)",
            )
        } else {
            MessageRoute::bounce("no such account (RFC 6121 §8.5.1)")
        };
    }
    if to.blocks_sender {
        return if error {
            MessageRoute::drop(
                "the user blocks the sender, and an error is never answered with an error (XEP-0191 §3.5)",
            )
        } else {
            MessageRoute::bounce("the user blocks the sender (XEP-0191 §3.5)")
        };
    }
    match to.to {
        Addressed::Full { connected: true } => MessageRoute::new(
            MessageAction::ToResource,
            "the addressed resource is connected (RFC 6121 §8.5.3.1)",
        ),
        Addressed::Full { connected: false } => match m.kind {
            MessageType::Chat => to_bare(m, policy, sessions, true),
            MessageType::Normal => MessageRoute::bounce(
                "normal message to a resource that is not connected (RFC 6121 §8.5.3.2.1)",
            ),
            MessageType::Groupchat => MessageRoute::bounce(
                "groupchat message to a resource that is not connected (RFC 6121 §8.5.3.2.1)",
            ),
            MessageType::Headline => MessageRoute::drop(
                "headline to a resource that is not connected: ignored (RFC 6121 §8.5.3.2.1)",
            ),
            MessageType::Error => MessageRoute::drop(
                "error to a resource that is not connected: ignored (RFC 6121 §8.5.3.2.1)",
            ),
        },
        Addressed::Bare => to_bare(m, policy, sessions, false),
    }
}

/// The bare-JID rules (§8.5.2); `fallback` for a chat message whose resource is gone.
fn to_bare(
    m: &MessageFacts,
    policy: DeliveryPolicy,
    sessions: &[Candidate],
    fallback: bool,
) -> MessageRoute {
    match m.kind {
        MessageType::Groupchat => MessageRoute::bounce(
            "groupchat message to a bare JID (RFC 6121 §8.5.2.1.1, §8.5.2.2.1)",
        ),
        MessageType::Error => {
            MessageRoute::drop("error to a bare JID: ignored (RFC 6121 §8.5.2.1.1, §8.5.2.2.1)")
        }
        MessageType::Headline => {
            let d = select_recipients(DeliveryPolicy::All, sessions);
            if d.is_offline() {
                MessageRoute::drop(
                    "headline with no available resource of non-negative priority: ignored (RFC 6121 §8.5.2.1.1, §8.5.2.2.1)",
                )
            } else {
                MessageRoute::new(
                    MessageAction::ToSessions(d.targets),
                    "headline: every available resource with non-negative priority (RFC 6121 §8.5.2.1.1)",
                )
            }
        }
        MessageType::Normal | MessageType::Chat => {
            let d = select_recipients(policy, sessions);
            if !d.is_offline() {
                let reason = if fallback {
                    "chat message to a resource that is not connected: delivered as to the bare JID (RFC 6121 §8.5.3.2.1)"
                } else {
                    d.reason
                };
                return MessageRoute::new(MessageAction::ToSessions(d.targets), reason);
            }
            let storage = worth_storing(m);
            if !storage.store {
                return MessageRoute::drop(storage.reason);
            }
            let reason = if fallback {
                "chat message to a resource that is not connected, and no other resource takes it: stored offline (RFC 6121 §8.5.3.2.1, XEP-0160)"
            } else {
                "no available resource with non-negative priority: stored offline (RFC 6121 §8.5.2.1.1, §8.5.2.2.1, XEP-0160)"
            };
            MessageRoute::new(MessageAction::StoreOffline, reason)
        }
    }
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
