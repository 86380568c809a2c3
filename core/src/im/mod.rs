//! Instant messaging and presence (RFC 6121): routing, rosters and subscriptions,
//! presence broadcast and probes, messages, offline storage, carbons, block lists and
//! the server's own IQ services. Everything here works on stanzas whose `from` is
//! already authoritative, whichever way they arrived (a client session or federation).

pub mod blocking;
pub mod carbons;
pub mod iq;
pub mod message;
pub mod offline;
pub mod presence;
pub mod roster;
pub mod subscription;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use herald_translate::stanza::{error_reply, is_error};
use herald_translate::{ns, Element, Jid, StanzaError, StanzaErrorCondition, StanzaKind};

use crate::router::SessionInfo;
use crate::server::Server;

/// A boxed future, for the routing recursion (a bounce is routed too).
pub(crate) type BoxFut<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

impl Server {
    /// Route a stanza whose `from` is authoritative to its `to`: a local user, this
    /// server, or a remote domain through the federation interface.
    pub fn route(self: &Arc<Self>, stanza: Element) -> BoxFut<'_> {
        Box::pin(async move {
            let from = stanza.attr("from").and_then(|f| Jid::parse(f).ok());
            let to = match stanza.attr("to").map(Jid::parse) {
                Some(Ok(to)) => to,
                Some(Err(_)) => {
                    self.bounce(
                        &stanza,
                        StanzaError::new(StanzaErrorCondition::JidMalformed),
                    )
                    .await;
                    return;
                }
                None => return,
            };
            let Some(from) = from else {
                tracing::debug!("dropping a stanza without an authoritative from");
                return;
            };
            if !self.is_local_domain(to.domain()) {
                if let Err(err) = self.federation().send(stanza.clone()) {
                    self.bounce(&stanza, err).await;
                }
                return;
            }
            if to.local().is_none() {
                self.to_server(stanza, from, to).await;
                return;
            }
            match StanzaKind::of(&stanza) {
                Some(StanzaKind::Message) => self.deliver_message(stanza, from, to).await,
                Some(StanzaKind::Presence) => self.deliver_presence(stanza, from, to).await,
                Some(StanzaKind::Iq) => self.deliver_iq(stanza, from, to).await,
                None => {}
            }
        })
    }

    /// Answer `stanza` with an error, unless it is an error itself.
    pub fn bounce<'a>(self: &'a Arc<Self>, stanza: &Element, err: StanzaError) -> BoxFut<'a> {
        let reply = (!is_error(stanza) && stanza.attr("from").is_some())
            .then(|| error_reply(stanza, &err, None));
        Box::pin(async move {
            if let Some(reply) = reply {
                self.route(reply).await;
            }
        })
    }

    /// A stanza addressed to one of our domains (not to a user).
    async fn to_server(self: &Arc<Self>, stanza: Element, from: Jid, to: Jid) {
        match StanzaKind::of(&stanza) {
            Some(StanzaKind::Iq) => {
                let reply = self.server_iq(&stanza, &from, &to).await;
                if let Some(reply) = reply {
                    self.route(reply).await;
                }
            }
            Some(StanzaKind::Message)
                if !is_error(&stanza) && stanza.attr("type") != Some("headline") =>
            {
                self.bounce(
                    &stanza,
                    StanzaError::new(StanzaErrorCondition::ServiceUnavailable),
                )
                .await;
            }
            _ => {}
        }
    }

    /// Queue a stanza for one session; counts it. False when the session is gone or stuck.
    pub(crate) fn deliver_to(&self, session: &SessionInfo, el: Element) -> bool {
        self.count_out(&el);
        session.send(el)
    }

    /// IQs to a local user: full JID to that session, bare JID answered by the server
    /// on the user's behalf (RFC 6121 §8.5.1, §8.5.2.1.3).
    async fn deliver_iq(self: &Arc<Self>, iq: Element, from: Jid, to: Jid) {
        let is_request = matches!(iq.attr("type"), Some("get" | "set"));
        let reachable = self.user_exists(&to).await && !self.has_blocked(&to, &from).await;
        let handled = reachable
            && if to.resource().is_some() {
                self.router
                    .session(&to)
                    .is_some_and(|s| self.deliver_to(&s, iq.clone()))
            } else if is_request {
                match self.account_iq(&iq, &to) {
                    Some(reply) => {
                        self.route(reply).await;
                        true
                    }
                    None => false,
                }
            } else {
                // Results and errors addressed to a bare JID have no one to go to.
                true
            };
        if !handled && is_request {
            self.bounce(
                &iq,
                StanzaError::new(StanzaErrorCondition::ServiceUnavailable),
            )
            .await;
        }
    }

    /// Presence to a local user: subscription handling, probes, or delivery.
    async fn deliver_presence(self: &Arc<Self>, presence: Element, from: Jid, to: Jid) {
        if !self.user_exists(&to).await || self.has_blocked(&to, &from).await {
            return;
        }
        match presence.attr("type") {
            Some(t @ ("subscribe" | "subscribed" | "unsubscribe" | "unsubscribed")) => {
                let t = t.to_string();
                self.inbound_subscription(presence, &t, from, to).await;
            }
            Some("probe") => self.answer_probe(&from, &to).await,
            Some("error") | None | Some("unavailable") => {
                for s in self.router.sessions(&to) {
                    let matches = to.resource().is_none_or(|_| s.jid == to);
                    if matches && (s.available || to.resource().is_some()) {
                        let mut p = presence.clone();
                        p.set_attr("to", s.jid.to_string());
                        self.deliver_to(&s, p);
                    }
                }
            }
            Some(_) => {}
        }
    }
}

/// `<delay/>` (XEP-0203) for a stanza stored or forwarded later.
pub(crate) fn delay(from: &str, unix_ms: i64) -> Element {
    Element::new("delay", ns::DELAY)
        .with_attr("from", from)
        .with_attr("stamp", crate::time::xep0082(unix_ms))
}
