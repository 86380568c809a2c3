//! Which messages are worth keeping for a user with no session to take them
//! (XEP-0160 §3, with the XEP-0334 storage hints).

use crate::message::{MessageFacts, MessageType};

/// Whether to store a message offline, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Storage {
    pub store: bool,
    pub reason: &'static str,
}

impl Storage {
    fn new(store: bool, reason: &'static str) -> Self {
        Self { store, reason }
    }
}

/// Store messages with a body or a subject, or with a `<store/>` hint; never errors,
/// groupchat, headlines, carbon copies or messages the sender marked `<no-store/>`.
pub fn worth_storing(m: &MessageFacts) -> Storage {
    match m.kind {
        MessageType::Error => {
            return Storage::new(false, "type error: not stored offline (XEP-0160 §3)");
        }
        MessageType::Groupchat => {
            return Storage::new(false, "type groupchat: not stored offline (XEP-0160 §3)");
        }
        MessageType::Headline => {
            return Storage::new(false, "type headline: not stored offline (XEP-0160 §3)");
        }
        MessageType::Normal | MessageType::Chat => {}
    }
    if m.is_carbon {
        return Storage::new(
            false,
            "a carbon copy is only for sessions online now (XEP-0280 §6)",
        );
    }
    if m.hint_no_store {
        return Storage::new(
            false,
            "the sender asked for no storage: no-store hint (XEP-0334 §4)",
        );
    }
    if m.hint_store {
        return Storage::new(
            true,
            "the sender asked for storage: store hint (XEP-0334 §4)",
        );
    }
    if m.has_body || m.has_subject {
        return Storage::new(
            true,
            "a normal or chat message with a body or subject (XEP-0160 §3)",
        );
    }
    Storage::new(
        false,
        "no body or subject: a notification only, such as a chat state or a receipt (XEP-0160 §3, XEP-0334)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn facts(kind: MessageType) -> MessageFacts {
        MessageFacts {
            kind,
            ..MessageFacts::default()
        }
    }

    #[test]
    fn storage_rules() {
        let chat_body = MessageFacts {
            has_body: true,
            ..facts(MessageType::Chat)
        };
        assert!(worth_storing(&chat_body).store);
        assert!(
            worth_storing(&MessageFacts {
                has_subject: true,
                ..facts(MessageType::Normal)
            })
            .store
        );
        // A chat state alone is not stored, unless the sender asks for it.
        assert!(!worth_storing(&facts(MessageType::Chat)).store);
        assert!(
            worth_storing(&MessageFacts {
                hint_store: true,
                ..facts(MessageType::Chat)
            })
            .store
        );
        // no-store wins over a body and over a store hint.
        let no_store = MessageFacts {
            hint_no_store: true,
            hint_store: true,
            ..chat_body
        };
        let d = worth_storing(&no_store);
        assert!(!d.store && d.reason.contains("no-store"));
        for kind in [
            MessageType::Error,
            MessageType::Groupchat,
            MessageType::Headline,
        ] {
            let d = worth_storing(&MessageFacts {
                hint_store: true,
                ..chat_body_of(kind)
            });
            assert!(!d.store, "{kind:?}");
            assert!(d.reason.contains(kind.as_str()), "{}", d.reason);
        }
        let carbon = MessageFacts {
            is_carbon: true,
            ..chat_body
        };
        assert!(!worth_storing(&carbon).store);
    }

    fn chat_body_of(kind: MessageType) -> MessageFacts {
        MessageFacts {
            has_body: true,
            ..facts(kind)
        }
    }

    fn any_facts() -> impl Strategy<Value = MessageFacts> {
        (0..5u8, proptest::collection::vec(any::<bool>(), 7)).prop_map(|(t, b)| MessageFacts {
            kind: match t {
                0 => MessageType::Normal,
                1 => MessageType::Chat,
                2 => MessageType::Groupchat,
                3 => MessageType::Headline,
                _ => MessageType::Error,
            },
            has_body: b[0],
            has_subject: b[1],
            hint_store: b[2],
            hint_no_store: b[3],
            hint_no_copy: b[4],
            private: b[5],
            is_carbon: b[6],
        })
    }

    proptest! {
        /// The rule as one formula, against the decision procedure.
        #[test]
        fn stored_exactly_when(m in any_facts()) {
            let expected = matches!(m.kind, MessageType::Normal | MessageType::Chat)
                && !m.is_carbon
                && !m.hint_no_store
                && (m.hint_store || m.has_body || m.has_subject);
            prop_assert_eq!(worth_storing(&m).store, expected);
            // Carbons hints do not matter for storage.
            let other = MessageFacts { hint_no_copy: !m.hint_no_copy, private: !m.private, ..m };
            prop_assert_eq!(worth_storing(&other), worth_storing(&m));
        }
    }
}
