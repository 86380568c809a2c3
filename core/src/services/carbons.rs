//! XEP-0280 message carbons: copies of a user's one-to-one messages for their other
//! devices.

use herald_translate::{ns, Element, Jid};

use crate::ctx::Ctx;
use crate::router::SessionView;

fn wrap(direction: &str, msg: &Element, owner: &Jid) -> Element {
    let forwarded = Element::new("forwarded", ns::FORWARD).with_child(msg.clone());
    Element::new("message", ns::CLIENT)
        .with_attr("from", owner.bare().to_string())
        .with_attr("to", owner.to_string())
        .with_attr("type", msg.attr("type").unwrap_or("normal"))
        .with_child(Element::new(direction, ns::CARBONS).with_child(forwarded))
}

/// Copies of an inbound message (eligible per `rules::carbon_eligible`) for the
/// recipient's carbon-enabled sessions that did not receive it (`delivered` lists the
/// sessions that did).
pub(crate) fn received(ctx: &Ctx, msg: &Element, sessions: &[SessionView], delivered: &[u64]) {
    for s in sessions {
        if s.carbons && !delivered.contains(&s.conn_id) {
            ctx.deliver(s, wrap("received", msg, &s.jid));
        }
    }
}

/// Copies of an outbound message (eligible per `rules::carbon_eligible`) for the
/// sender's other carbon-enabled sessions.
pub(crate) fn sent(ctx: &Ctx, msg: &Element, sender: &Jid) {
    for s in ctx.router.sessions(sender).iter() {
        if s.carbons && s.jid != *sender {
            ctx.deliver(s, wrap("sent", msg, &s.jid));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_copy_is_from_the_bare_jid() {
        let owner = Jid::parse("a@x/phone").expect("jid");
        let m = Element::new("message", ns::CLIENT).with_attr("type", "chat");
        let c = wrap("sent", &m, &owner);
        assert_eq!(c.attr("from"), Some("a@x"));
        assert_eq!(c.attr("to"), Some("a@x/phone"));
        assert!(c
            .child("sent", ns::CARBONS)
            .and_then(|s| s.child("forwarded", ns::FORWARD))
            .is_some_and(|f| f.has_child("message", ns::CLIENT)));
    }
}
