//! Message delivery to local users (RFC 6121 §8.5) with the multi-device rule, carbons
//! and offline storage.

use std::sync::Arc;

use herald_rules::{select_recipients, Candidate};
use herald_translate::{ns, Element, Jid, StanzaError, StanzaErrorCondition};

use crate::router::SessionInfo;
use crate::server::Server;

impl Server {
    pub(crate) async fn deliver_message(self: &Arc<Self>, msg: Element, from: Jid, to: Jid) {
        let mtype = msg.attr("type").unwrap_or("normal").to_string();
        if !self.user_exists(&to).await || self.has_blocked(&to, &from).await {
            if mtype != "error" {
                self.bounce(
                    &msg,
                    StanzaError::new(StanzaErrorCondition::ServiceUnavailable),
                )
                .await;
            }
            return;
        }
        let sessions = self.router.sessions(&to);
        if to.resource().is_some() {
            if let Some(s) = sessions.iter().find(|s| s.jid == to) {
                if self.deliver_to(s, super::carbons::strip_private(&msg)) {
                    self.carbon_received(&msg, &sessions, &[s.conn_id]);
                    return;
                }
            }
            // The resource is gone (RFC 6121 §8.5.3.2.1): headlines and errors are
            // dropped; the rest is handled as if sent to the bare JID.
            if matches!(mtype.as_str(), "headline" | "error") {
                return;
            }
        }
        match mtype.as_str() {
            "groupchat" => {
                self.bounce(
                    &msg,
                    StanzaError::new(StanzaErrorCondition::ServiceUnavailable),
                )
                .await;
            }
            "headline" | "error" => {
                for s in sessions.iter().filter(|s| s.available && s.priority >= 0) {
                    self.deliver_to(s, msg.clone());
                }
            }
            _ => {
                let delivered = self.fan_out(&msg, &sessions);
                if delivered.is_empty() {
                    self.store_offline(msg, &to).await;
                } else {
                    self.carbon_received(&msg, &sessions, &delivered);
                }
            }
        }
    }

    /// Deliver to the sessions the delivery policy picks; returns the ones that took it.
    fn fan_out(&self, msg: &Element, sessions: &[SessionInfo]) -> Vec<u64> {
        let candidates: Vec<Candidate> = sessions
            .iter()
            .map(|s| Candidate {
                available: s.available,
                priority: s.priority,
            })
            .collect();
        let choice = select_recipients(self.settings.delivery, &candidates);
        let clean = super::carbons::strip_private(msg);
        choice
            .targets
            .into_iter()
            .filter(|&i| self.deliver_to(&sessions[i], clean.clone()))
            .map(|i| sessions[i].conn_id)
            .collect()
    }

    /// Keep a message for a user with no available session (XEP-0160). Messages
    /// without content worth storing (chat states, receipts only) are dropped; a full
    /// queue bounces with an error to the sender.
    pub(crate) async fn store_offline(self: &Arc<Self>, msg: Element, to: &Jid) {
        if !worth_storing(&msg) {
            return;
        }
        match self.push_offline(&msg, to).await {
            Ok(true) => {}
            Ok(false) => {
                let err = StanzaError::new(StanzaErrorCondition::ServiceUnavailable)
                    .with_type(herald_translate::stanza::ErrorType::Wait)
                    .with_text("the recipient's offline storage is full");
                self.bounce(&msg, err).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "offline storage failed");
                let err = StanzaError::new(StanzaErrorCondition::InternalServerError);
                self.bounce(&msg, err).await;
            }
        }
    }
}

/// XEP-0160/XEP-0334: store messages with a body (or a subject), unless the sender asked
/// not to; never store errors, groupchat or headlines.
pub(crate) fn worth_storing(msg: &Element) -> bool {
    if matches!(msg.attr("type"), Some("error" | "groupchat" | "headline")) {
        return false;
    }
    if msg.has_child("no-store", ns::HINTS) {
        return false;
    }
    msg.has_child("store", ns::HINTS)
        || msg
            .elements()
            .any(|c| c.name == "body" || c.name == "subject")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(children: &[Element], t: Option<&str>) -> Element {
        let mut m = Element::new("message", ns::CLIENT);
        if let Some(t) = t {
            m.set_attr("type", t);
        }
        for c in children {
            m.push_child(c.clone());
        }
        m
    }

    #[test]
    fn storage_rules() {
        let body = Element::new("body", ns::CLIENT).with_text("hi");
        let state = Element::new("composing", "http://jabber.org/protocol/chatstates");
        assert!(worth_storing(&msg(
            std::slice::from_ref(&body),
            Some("chat")
        )));
        assert!(!worth_storing(&msg(
            std::slice::from_ref(&state),
            Some("chat")
        )));
        assert!(!worth_storing(&msg(
            std::slice::from_ref(&body),
            Some("groupchat")
        )));
        assert!(!worth_storing(&msg(
            &[body, Element::new("no-store", ns::HINTS)],
            None
        )));
        assert!(worth_storing(&msg(
            &[state, Element::new("store", ns::HINTS)],
            None
        )));
    }
}
