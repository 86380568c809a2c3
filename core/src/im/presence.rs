//! Presence (RFC 6121 §4): broadcast to subscribers, probes on initial presence,
//! answers to probes, directed presence and unavailable presence on disconnect.

use std::sync::Arc;

use herald_translate::{ns, Element, Jid};

use crate::server::Server;
use crate::store::Subscription;

/// Which side of a subscription to list.
#[derive(Debug, Clone, Copy)]
enum Side {
    /// Contacts subscribed to the user (`from`, `both`): they receive the user's presence.
    Subscribers,
    /// Contacts the user is subscribed to (`to`, `both`): they are probed.
    Subscriptions,
}

/// The `<priority/>` of a presence, clamped to -128..=127 (RFC 6121 §4.7.2.3).
pub(crate) fn priority(p: &Element) -> i8 {
    p.child("priority", ns::CLIENT)
        .and_then(|e| e.text().trim().parse::<i64>().ok())
        .map(|v| v.clamp(-128, 127) as i8)
        .unwrap_or(0)
}

impl Server {
    async fn contacts(&self, user: &Jid, side: Side) -> Vec<Jid> {
        let u = user.local().unwrap_or_default().to_string();
        let items = match self.db(move |s| s.roster(&u)).await {
            Ok((_, items)) => items,
            Err(e) => {
                tracing::error!(error = %e, "roster unavailable for presence");
                return Vec::new();
            }
        };
        items
            .into_iter()
            .filter(|i| match side {
                Side::Subscribers => {
                    matches!(i.subscription, Subscription::From | Subscription::Both)
                }
                Side::Subscriptions => {
                    matches!(i.subscription, Subscription::To | Subscription::Both)
                }
            })
            .filter_map(|i| Jid::parse(&i.jid).ok())
            .collect()
    }

    /// A session sent presence without `to`: available or unavailable broadcast.
    /// `directed` lists the entities that got directed presence from this session (they
    /// also get its unavailable presence).
    pub(crate) async fn presence_broadcast(
        self: &Arc<Self>,
        session: &Jid,
        conn_id: u64,
        mut presence: Element,
        directed: &[Jid],
    ) {
        presence.set_attr("from", session.to_string());
        presence.remove_attr("to");
        let unavailable = presence.attr("type") == Some("unavailable");
        let prio = priority(&presence);
        let mut was_available = false;
        let stored = presence.clone();
        let alive = self.router.update(session, conn_id, |s| {
            was_available = s.available;
            s.available = !unavailable;
            s.priority = prio;
            s.presence = (!unavailable).then_some(stored);
        });
        if !alive || (unavailable && !was_available) {
            return;
        }
        self.broadcast(session, &presence, directed).await;
        if unavailable || was_available {
            return;
        }
        // Initial presence: learn the contacts' presence, see our other devices, and get
        // what waited while we were away.
        for contact in self.contacts(session, Side::Subscriptions).await {
            let from = if self.is_local_domain(contact.domain()) {
                session.to_string()
            } else {
                session.bare().to_string()
            };
            let probe = Element::new("presence", ns::CLIENT)
                .with_attr("type", "probe")
                .with_attr("from", from)
                .with_attr("to", contact.to_string());
            self.route(probe).await;
        }
        let sessions = self.router.sessions(session);
        let Some(me) = sessions
            .iter()
            .find(|s| s.jid == *session && s.conn_id == conn_id)
        else {
            return;
        };
        for other in sessions.iter().filter(|s| s.jid != *session && s.available) {
            if let Some(mut p) = other.presence.clone() {
                p.set_attr("to", session.to_string());
                self.deliver_to(me, p);
            }
        }
        let user = session.local().unwrap_or_default().to_string();
        if let Ok(pending) = self.db(move |s| s.pending_in_list(&user)).await {
            for (_, stanza) in pending {
                if let Some(p) = super::offline::parse_stored(&stanza) {
                    self.deliver_to(me, p);
                }
            }
        }
        if prio >= 0 {
            self.flush_offline(me).await;
        }
    }

    /// Send a presence from `session` to its subscribers, its own other sessions and the
    /// entities it sent directed presence to.
    async fn broadcast(self: &Arc<Self>, session: &Jid, presence: &Element, directed: &[Jid]) {
        let mut targets = self.contacts(session, Side::Subscribers).await;
        for d in directed {
            if !targets.contains(&d.bare()) && !targets.contains(d) {
                targets.push(d.clone());
            }
        }
        for contact in targets {
            if self.has_blocked(session, &contact).await {
                continue;
            }
            let mut p = presence.clone();
            p.set_attr("to", contact.to_string());
            self.route(p).await;
        }
        // RFC 6121 §4.2.2, §4.4.2, §4.5.2: every available resource of the user,
        // including the one that sent it.
        for other in self.router.sessions(session) {
            if other.jid == *session || other.available {
                let mut p = presence.clone();
                p.set_attr("to", other.jid.to_string());
                self.deliver_to(&other, p);
            }
        }
    }

    /// The session went away without unavailable presence: tell everyone who saw it.
    pub(crate) async fn session_ended(
        self: &Arc<Self>,
        session: &Jid,
        was_available: bool,
        directed: &[Jid],
    ) {
        if !was_available && directed.is_empty() {
            return;
        }
        let p = Element::new("presence", ns::CLIENT)
            .with_attr("type", "unavailable")
            .with_attr("from", session.to_string());
        self.broadcast(session, &p, directed).await;
    }

    /// Send the current presence of each available session of `user` to `contact`
    /// (after approving a subscription).
    pub(crate) async fn send_presence_to(self: &Arc<Self>, user: &Jid, contact: &Jid) {
        for s in self.router.sessions(user) {
            if let (true, Some(mut p)) = (s.available, s.presence.clone()) {
                p.set_attr("to", contact.to_string());
                self.route(p).await;
            }
        }
    }

    /// Send unavailable presence from each session of `user` to `contact` (after a
    /// subscription was cancelled).
    pub(crate) async fn send_unavailable_to(self: &Arc<Self>, user: &Jid, contact: &Jid) {
        for s in self.router.sessions(user) {
            if s.available {
                let p = Element::new("presence", ns::CLIENT)
                    .with_attr("type", "unavailable")
                    .with_attr("from", s.jid.to_string())
                    .with_attr("to", contact.to_string());
                self.route(p).await;
            }
        }
    }

    /// A probe from `prober` for the local user `user` (RFC 6121 §4.3.2): only a
    /// subscriber gets an answer.
    pub(crate) async fn answer_probe(self: &Arc<Self>, prober: &Jid, user: &Jid) {
        let u = user.local().unwrap_or_default().to_string();
        let c = prober.bare().to_string();
        let item = self.db(move |s| s.roster_item(&u, &c)).await.ok().flatten();
        let subscribed =
            item.is_some_and(|i| matches!(i.subscription, Subscription::From | Subscription::Both));
        if !subscribed || self.has_blocked(user, prober).await {
            return;
        }
        let mut answered = false;
        for s in self.router.sessions(user) {
            if let (true, Some(mut p)) = (s.available, s.presence.clone()) {
                p.set_attr("to", prober.to_string());
                self.route(p).await;
                answered = true;
            }
        }
        if !answered {
            let p = Element::new("presence", ns::CLIENT)
                .with_attr("type", "unavailable")
                .with_attr("from", user.bare().to_string())
                .with_attr("to", prober.to_string());
            self.route(p).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_is_parsed_and_clamped() {
        let p = |v: &str| {
            Element::new("presence", ns::CLIENT)
                .with_child(Element::new("priority", ns::CLIENT).with_text(v))
        };
        assert_eq!(priority(&p("5")), 5);
        assert_eq!(priority(&p("-1")), -1);
        assert_eq!(priority(&p("1000")), 127);
        assert_eq!(priority(&p("junk")), 0);
        assert_eq!(priority(&Element::new("presence", ns::CLIENT)), 0);
    }
}
