//! Presence subscriptions (RFC 6121 §3). The transitions are pure functions in
//! `rules` (`herald_rules::subscription`, tested against the RFC's Appendix A); this
//! service loads the state, applies a transition, stores it, pushes the roster and says
//! what must be routed.
//! Load-transition-store runs under the user's roster lock (a user's outbound stanza and
//! a contact's inbound one for the same item are handled by different tasks); routing
//! happens after the lock is released, so two users' locks are never held together.

use std::sync::Arc;

use herald_translate::{Element, Envelope, Jid};

use super::presence::Presence;
use super::roster::Rosters;
use super::Outbox;
use crate::ctx::Ctx;
use crate::store::{RosterItem, Subscription};

pub(crate) use herald_rules::SubKind;
use herald_rules::{inbound, outbound, SubState};

/// The subscription service: loads the state, applies a transition, stores it, pushes
/// the roster and says what must be routed.
#[derive(Debug)]
pub(crate) struct Subscriptions {
    ctx: Arc<Ctx>,
    rosters: Arc<Rosters>,
    presence: Arc<Presence>,
}

impl Subscriptions {
    pub(crate) fn new(ctx: Arc<Ctx>, rosters: Arc<Rosters>, presence: Arc<Presence>) -> Self {
        Self {
            ctx,
            rosters,
            presence,
        }
    }

    /// Current state of `user`'s relation to `contact`, and the stored item if any.
    async fn state(&self, user: &Jid, contact: &Jid) -> (SubState, Option<RosterItem>) {
        let u = user.local().unwrap_or_default().to_string();
        let c = contact.bare().to_string();
        let loaded = self
            .ctx
            .db
            .run(move |s| {
                let item = s.roster_item(&u, &c)?;
                let pending = s.pending_in_list(&u)?.into_iter().any(|(f, _)| f == c);
                Ok((item, pending))
            })
            .await;
        let (item, pending_in) = loaded.unwrap_or_else(|e| {
            tracing::error!(error = %e, "roster unavailable");
            (None, false)
        });
        let state = SubState {
            sub: item.as_ref().map_or(Subscription::None, |i| i.subscription),
            ask: item.as_ref().is_some_and(|i| i.ask),
            approved: item.as_ref().is_some_and(|i| i.approved),
            pending_in,
        };
        (state, item)
    }

    /// Store a changed state; items are created when a relation starts and pushed to the
    /// user's interested sessions.
    async fn save(
        &self,
        user: &Jid,
        contact: &Jid,
        old: SubState,
        new: SubState,
        item: Option<RosterItem>,
        pending_stanza: Option<String>,
    ) {
        let u = user.local().unwrap_or_default().to_string();
        let c = contact.bare().to_string();
        let item_changed = old.sub != new.sub || old.ask != new.ask || old.approved != new.approved;
        let needs_item = item.is_some() || new.sub != Subscription::None || new.ask || new.approved;
        let updated = (item_changed && needs_item).then(|| {
            let mut it = item.unwrap_or_else(|| RosterItem::new(c.clone()));
            it.subscription = new.sub;
            it.ask = new.ask;
            it.approved = new.approved;
            it
        });
        let pending_change = (old.pending_in != new.pending_in || pending_stanza.is_some())
            .then_some((new.pending_in, pending_stanza));
        let item_for_store = updated.clone();
        let result = self
            .ctx
            .db
            .run(move |s| {
                let mut ver = None;
                if let Some(it) = &item_for_store {
                    ver = Some(s.roster_put(&u, it)?);
                }
                match pending_change {
                    Some((true, Some(stanza))) => s.pending_in_put(&u, &c, &stanza)?,
                    Some((false, _)) => {
                        s.pending_in_remove(&u, &c)?;
                    }
                    _ => {}
                }
                Ok(ver)
            })
            .await;
        match result {
            Ok(Some(ver)) => {
                if let Some(it) = updated {
                    self.rosters.push_item(user, &it, ver);
                }
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot store subscription state"),
        }
    }

    /// The local user `from` (full or bare JID) sent a subscription stanza to `to`.
    pub(crate) async fn outbound(&self, env: Envelope, kind: SubKind, out: &mut Outbox) {
        let contact = env.to().bare();
        let user = env.from().bare();
        let step = {
            let _guard = self.rosters.lock(&user).await;
            let (old, item) = self.state(&user, &contact).await;
            let step = outbound(old, kind);
            self.save(&user, &contact, old, step.state, item, None)
                .await;
            step
        };
        tracing::debug!(%user, %contact, ?kind, reason = step.reason, "outbound subscription");
        // RFC 6121 §3.2.2: the unavailable presence goes before the `unsubscribed`.
        if step.send_unavailable {
            self.presence.unavailable_to(&user, &contact, out);
        }
        if step.route {
            out.push(env.with_from(user.clone()).with_to(contact.clone()));
        }
        if step.send_presence {
            self.presence.current_to(&user, &contact, out);
        }
    }

    /// A subscription stanza arrived for a local user.
    pub(crate) async fn inbound(&self, env: Envelope, kind: SubKind, out: &mut Outbox) {
        let user = env.to().bare();
        let contact = env.from().bare();
        let clean = env.with_from(contact.clone()).with_to(user.clone());
        let step = {
            let _guard = self.rosters.lock(&user).await;
            let (old, item) = self.state(&user, &contact).await;
            let step = inbound(old, kind);
            let pending = (kind == SubKind::Subscribe && step.deliver)
                .then_some(())
                .and_then(|()| clean.stanza().to_xml(herald_translate::ns::CLIENT).ok());
            self.save(&user, &contact, old, step.state, item, pending)
                .await;
            step
        };
        tracing::debug!(%user, %contact, ?kind, reason = step.reason, "inbound subscription");
        if step.send_unavailable {
            self.presence.unavailable_to(&user, &contact, out);
        }
        if step.auto_subscribed {
            let subscribed = Element::new("presence", herald_translate::ns::CLIENT)
                .with_attr("type", "subscribed");
            out.extend(Envelope::new(user.clone(), contact.clone(), subscribed).ok());
            self.presence.current_to(&user, &contact, out);
        }
        if step.deliver {
            for s in self.ctx.router.sessions(&user).iter() {
                if s.available || s.interested {
                    self.ctx.deliver(s, clean.stanza().clone());
                }
            }
        }
    }
}
