//! What the message rules need to know about a `<message/>`, read once from the
//! element: its type (RFC 6121 §5.2.2), whether it has content (a body or a subject),
//! the XEP-0334 hints and the XEP-0280 carbons markers.

use herald_translate::{ns, Element};

/// The message `type` (RFC 6121 §5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MessageType {
    #[default]
    Normal,
    Chat,
    Groupchat,
    Headline,
    Error,
}

impl MessageType {
    /// The type of a `type` attribute. A missing or unknown value is `normal`
    /// (RFC 6121 §5.2.2: "MUST consider the message to be of type normal").
    pub fn from_attr(t: Option<&str>) -> Self {
        match t {
            Some("chat") => Self::Chat,
            Some("groupchat") => Self::Groupchat,
            Some("headline") => Self::Headline,
            Some("error") => Self::Error,
            _ => Self::Normal,
        }
    }

    /// The `type` attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Chat => "chat",
            Self::Groupchat => "groupchat",
            Self::Headline => "headline",
            Self::Error => "error",
        }
    }
}

/// Facts about one message, as the storage, carbons and routing rules use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MessageFacts {
    pub kind: MessageType,
    /// Has a `<body/>` child (in any namespace, as a client or server stanza carries it).
    pub has_body: bool,
    /// Has a `<subject/>` child (in any namespace).
    pub has_subject: bool,
    /// XEP-0334 `<store/>`: the sender asks for storage.
    pub hint_store: bool,
    /// XEP-0334 `<no-store/>`: the sender asks not to store it.
    pub hint_no_store: bool,
    /// XEP-0334 `<no-copy/>`: the sender asks for no copies to other resources.
    pub hint_no_copy: bool,
    /// XEP-0280 `<private/>`: the sender asks for no carbon copies.
    pub private: bool,
    /// Already a carbon copy: a XEP-0280 `<received/>` or `<sent/>` wrapper.
    pub is_carbon: bool,
}

impl MessageFacts {
    /// Reads the facts from a `<message/>` element (its direct children only).
    pub fn of(msg: &Element) -> Self {
        let mut f = Self {
            kind: MessageType::from_attr(msg.attr("type")),
            ..Self::default()
        };
        for c in msg.elements() {
            match (c.name.as_str(), c.ns.as_str()) {
                ("body", _) => f.has_body = true,
                ("subject", _) => f.has_subject = true,
                ("store", ns::HINTS) => f.hint_store = true,
                ("no-store", ns::HINTS) => f.hint_no_store = true,
                ("no-copy", ns::HINTS) => f.hint_no_copy = true,
                ("private", ns::CARBONS) => f.private = true,
                ("received" | "sent", ns::CARBONS) => f.is_carbon = true,
                _ => {}
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_attribute() {
        for t in [
            MessageType::Normal,
            MessageType::Chat,
            MessageType::Groupchat,
            MessageType::Headline,
            MessageType::Error,
        ] {
            assert_eq!(MessageType::from_attr(Some(t.as_str())), t);
        }
        assert_eq!(MessageType::from_attr(None), MessageType::Normal);
        assert_eq!(MessageType::from_attr(Some("Chat")), MessageType::Normal);
        assert_eq!(MessageType::from_attr(Some("bogus")), MessageType::Normal);
    }

    #[test]
    fn facts_are_read_from_direct_children() {
        let m = Element::new("message", ns::CLIENT)
            .with_attr("type", "chat")
            .with_child(Element::new("body", ns::CLIENT).with_text("hi"))
            .with_child(Element::new("no-store", ns::HINTS))
            .with_child(Element::new("private", ns::CARBONS));
        let f = MessageFacts::of(&m);
        assert_eq!(
            f,
            MessageFacts {
                kind: MessageType::Chat,
                has_body: true,
                hint_no_store: true,
                private: true,
                ..MessageFacts::default()
            }
        );

        // Hints and markers count only in their namespace; nested elements do not count.
        let m = Element::new("message", "jabber:server")
            .with_child(Element::new("store", "urn:example"))
            .with_child(Element::new("subject", "jabber:server"))
            .with_child(Element::new("no-copy", ns::HINTS))
            .with_child(Element::new("received", ns::CARBONS).with_child(
                Element::new("forwarded", ns::FORWARD).with_child(Element::new("body", ns::CLIENT)),
            ));
        let f = MessageFacts::of(&m);
        assert_eq!(
            f,
            MessageFacts {
                kind: MessageType::Normal,
                has_subject: true,
                hint_no_copy: true,
                is_carbon: true,
                ..MessageFacts::default()
            }
        );
        let sent =
            Element::new("message", ns::CLIENT).with_child(Element::new("sent", ns::CARBONS));
        assert!(MessageFacts::of(&sent).is_carbon);
    }
}
