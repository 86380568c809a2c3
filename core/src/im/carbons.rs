//! XEP-0280 message carbons: copies of a user's one-to-one messages for their other
//! devices.

use herald_translate::{ns, Element, Jid};

use crate::router::SessionInfo;
use crate::server::Server;

/// XEP-0280 §6: chat messages, and normal messages with a body, are carbon-copied
/// unless marked private or no-copy.
pub(crate) fn eligible(msg: &Element) -> bool {
    let t = msg.attr("type").unwrap_or("normal");
    let kind_ok = t == "chat" || (t == "normal" && msg.elements().any(|c| c.name == "body"));
    kind_ok
        && !msg.has_child("private", ns::CARBONS)
        && !msg.has_child("no-copy", ns::HINTS)
        && !msg.has_child("received", ns::CARBONS)
        && !msg.has_child("sent", ns::CARBONS)
}

/// The message as the recipient gets it: the `<private/>` marker is removed.
pub(crate) fn strip_private(msg: &Element) -> Element {
    if msg.has_child("private", ns::CARBONS) {
        let mut m = msg.clone();
        m.remove_children("private", ns::CARBONS);
        m
    } else {
        msg.clone()
    }
}

fn wrap(direction: &str, msg: &Element, owner: &Jid, to: &Jid) -> Element {
    let forwarded = Element::new("forwarded", ns::FORWARD).with_child(msg.clone());
    Element::new("message", ns::CLIENT)
        .with_attr("from", owner.bare().to_string())
        .with_attr("to", to.to_string())
        .with_attr("type", msg.attr("type").unwrap_or("normal"))
        .with_child(Element::new(direction, ns::CARBONS).with_child(forwarded))
}

impl Server {
    /// Copies of an inbound message for the recipient's carbon-enabled sessions that did
    /// not receive it (`delivered` lists the sessions that did).
    pub(crate) fn carbon_received(
        &self,
        msg: &Element,
        sessions: &[SessionInfo],
        delivered: &[u64],
    ) {
        if !eligible(msg) {
            return;
        }
        for s in sessions {
            if s.carbons && !delivered.contains(&s.conn_id) {
                self.deliver_to(s, wrap("received", msg, &s.jid, &s.jid));
            }
        }
    }

    /// Copies of an outbound message for the sender's other carbon-enabled sessions.
    pub(crate) fn carbon_sent(&self, msg: &Element, sender: &Jid) {
        if !eligible(msg) {
            return;
        }
        for s in self.router.sessions(sender) {
            if s.carbons && s.jid != *sender {
                self.deliver_to(&s, wrap("sent", msg, &s.jid, &s.jid));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eligibility() {
        let chat = Element::new("message", ns::CLIENT).with_attr("type", "chat");
        assert!(eligible(&chat));
        let private = chat
            .clone()
            .with_child(Element::new("private", ns::CARBONS));
        assert!(!eligible(&private));
        assert!(!strip_private(&private).has_child("private", ns::CARBONS));
        let normal = Element::new("message", ns::CLIENT);
        assert!(!eligible(&normal));
        assert!(eligible(
            &normal.with_child(Element::new("body", ns::CLIENT))
        ));
        let headline = Element::new("message", ns::CLIENT).with_attr("type", "headline");
        assert!(!eligible(&headline));
    }

    #[test]
    fn wrapped_copy_is_from_the_bare_jid() {
        let owner = Jid::parse("a@x/phone").expect("jid");
        let m = Element::new("message", ns::CLIENT).with_attr("type", "chat");
        let c = wrap("sent", &m, &owner, &owner);
        assert_eq!(c.attr("from"), Some("a@x"));
        assert!(c
            .child("sent", ns::CARBONS)
            .and_then(|s| s.child("forwarded", ns::FORWARD))
            .is_some_and(|f| f.has_child("message", ns::CLIENT)));
    }
}
