//! Presence (RFC 6121 §4): broadcast to subscribers, probes on initial presence,
//! answers to probes, directed presence, and unavailable presence when a session ends.
//!
//! Presence for other users leaves as envelopes in an [`Outbox`] for the router; the
//! user's own sessions get theirs directly.

use std::sync::Arc;

use herald_translate::{ns, Element, Envelope, Jid};

use super::roster::{Rosters, Side};
use super::Outbox;
use crate::ctx::Ctx;
use crate::router::SessionView;

/// The `<priority/>` of a presence, clamped to -128..=127 (RFC 6121 §4.7.2.3).
pub(crate) fn priority(p: &Element) -> i8 {
    p.child("priority", ns::CLIENT)
        .and_then(|e| e.text().trim().parse::<i64>().ok())
        .map(|v| v.clamp(-128, 127) as i8)
        .unwrap_or(0)
}

/// What a presence broadcast means for the session that sent it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Broadcast {
    /// Initial presence with a non-negative priority: the session should now receive
    /// the user's offline messages (XEP-0160).
    pub(crate) wants_offline: bool,
}

fn envelope(from: &Jid, to: &Jid, el: Element) -> Option<Envelope> {
    Envelope::new(from.clone(), to.clone(), el).ok()
}

fn unavailable() -> Element {
    Element::new("presence", ns::CLIENT).with_attr("type", "unavailable")
}

/// The presence service.
#[derive(Debug)]
pub(crate) struct Presence {
    ctx: Arc<Ctx>,
    rosters: Arc<Rosters>,
}

impl Presence {
    pub(crate) fn new(ctx: Arc<Ctx>, rosters: Arc<Rosters>) -> Self {
        Self { ctx, rosters }
    }

    /// A session sent presence without `to`: available or unavailable broadcast.
    /// `directed` lists the entities that got directed presence from this session (they
    /// also get its unavailable presence).
    pub(crate) async fn broadcast(
        &self,
        session: &Jid,
        conn_id: u64,
        mut presence: Element,
        directed: &[Jid],
        out: &mut Outbox,
    ) -> Broadcast {
        presence.set_attr("from", session.to_string());
        presence.remove_attr("to");
        let unavailable = presence.attr("type") == Some("unavailable");
        let prio = priority(&presence);
        let mut was_available = false;
        let stored = Arc::new(presence.clone());
        let alive = self.ctx.router.update(session, conn_id, |s| {
            was_available = s.available;
            s.available = !unavailable;
            s.priority = prio;
            s.presence = (!unavailable).then_some(stored);
        });
        if !alive || (unavailable && !was_available) {
            return Broadcast::default();
        }
        self.send_to_watchers(session, &presence, directed, out)
            .await;
        if unavailable || was_available {
            return Broadcast::default();
        }
        // Initial presence: learn the contacts' presence, see our other devices, and get
        // what waited while we were away.
        for contact in self.rosters.contacts(session, Side::Subscriptions).await {
            let from = if self.ctx.is_local_domain(contact.domain()) {
                session.clone()
            } else {
                session.bare()
            };
            let probe = Element::new("presence", ns::CLIENT).with_attr("type", "probe");
            out.extend(envelope(&from, &contact, probe));
        }
        let sessions = self.ctx.router.sessions(session);
        let Some(me) = sessions
            .iter()
            .find(|s| s.jid == *session && s.conn_id == conn_id)
        else {
            return Broadcast::default();
        };
        for other in sessions.iter().filter(|s| s.jid != *session && s.available) {
            if let Some(p) = &other.presence {
                let p = (**p).clone().with_attr("to", session.to_string());
                self.ctx.deliver(me, p);
            }
        }
        if let Some(user) = session.local().map(str::to_string) {
            if let Ok(pending) = self.ctx.db.run(move |s| s.pending_in_list(&user)).await {
                for (_, stanza) in pending {
                    if let Some(p) = super::offline::parse_stored(&stanza) {
                        self.ctx.deliver(me, p);
                    }
                }
            }
        }
        Broadcast {
            wants_offline: prio >= 0,
        }
    }

    /// Send a presence from `session` to its subscribers, the entities it sent directed
    /// presence to, and every available session of the user.
    async fn send_to_watchers(
        &self,
        session: &Jid,
        presence: &Element,
        directed: &[Jid],
        out: &mut Outbox,
    ) {
        let mut targets = self.rosters.contacts(session, Side::Subscribers).await;
        for d in directed {
            if !targets.contains(&d.bare()) && !targets.contains(d) {
                targets.push(d.clone());
            }
        }
        let blocks = self.ctx.blocks.of(session).await;
        for contact in targets {
            if blocks.matches(&contact).is_some() || !self.ctx.may_hear_presence(&contact) {
                continue;
            }
            out.extend(envelope(session, &contact, presence.clone()));
        }
        self.ctx.presence_changed(session);
        // RFC 6121 §4.2.2, §4.4.2, §4.5.2: every available resource of the user,
        // including the one that sent it.
        for other in self.ctx.router.sessions(session).iter() {
            if other.jid == *session || other.available {
                let p = presence.clone().with_attr("to", other.jid.to_string());
                self.ctx.deliver(other, p);
            }
        }
    }

    /// The session went away without unavailable presence: tell everyone who saw it.
    pub(crate) async fn session_ended(
        &self,
        session: &Jid,
        was_available: bool,
        directed: &[Jid],
        out: &mut Outbox,
    ) {
        if !was_available && directed.is_empty() {
            return;
        }
        let p = unavailable().with_attr("from", session.to_string());
        self.send_to_watchers(session, &p, directed, out).await;
    }

    /// The current presence of each available session of `user`, for `contact` (after
    /// approving a subscription, or unblocking).
    pub(crate) fn current_to(&self, user: &Jid, contact: &Jid, out: &mut Outbox) {
        for s in self.ctx.router.sessions(user).iter() {
            if let (true, Some(p)) = (s.available, &s.presence) {
                out.extend(envelope(&s.jid, contact, (**p).clone()));
            }
        }
    }

    /// Unavailable presence from each available session of `user` to `contact` (after a
    /// subscription was cancelled, or a block).
    pub(crate) fn unavailable_to(&self, user: &Jid, contact: &Jid, out: &mut Outbox) {
        for s in self.ctx.router.sessions(user).iter() {
            if s.available {
                out.extend(envelope(&s.jid, contact, unavailable()));
            }
        }
    }

    /// A probe from `prober` for the local user `user` (RFC 6121 §4.3.2): only a
    /// subscriber gets an answer.
    pub(crate) async fn answer_probe(&self, prober: &Jid, user: &Jid, out: &mut Outbox) {
        if !self.rosters.is_subscriber(user, prober).await
            || self.ctx.blocks.has_blocked(user, prober).await
        {
            return;
        }
        let before = out.len();
        self.current_to(user, prober, out);
        if out.len() == before {
            out.extend(envelope(&user.bare(), prober, unavailable()));
        }
    }

    /// Presence (available, unavailable or error) for a local user: to the addressed
    /// session, or to every available session for a bare JID.
    pub(crate) fn deliver(&self, env: &Envelope, sessions: &[SessionView]) {
        let to = env.to();
        for s in sessions {
            let addressed = to.resource().is_none_or(|_| s.jid == *to);
            if addressed && (s.available || to.resource().is_some()) {
                let p = env.stanza().clone().with_attr("to", s.jid.to_string());
                self.ctx.deliver(s, p);
            }
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
