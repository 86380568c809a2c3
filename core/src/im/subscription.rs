//! The RFC 6121 subscription state machine (§3 and Appendix A).
//!
//! The transitions are pure functions over [`SubState`]; the `Server` methods below load
//! the state, apply a transition, store it, push the roster and route what must go on.
//! Load-transition-store runs under the user's roster lock (a user's outbound stanza and
//! a contact's inbound one for the same item are handled by different tasks); routing
//! happens after the lock is released, so two users' locks are never held together.

use std::sync::Arc;

use herald_translate::{Element, Jid};

use crate::server::Server;
use crate::store::{RosterItem, Subscription};

/// One side's view of a contact: subscription, pending-out (`ask`), pending-in and
/// pre-approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubState {
    pub sub: Subscription,
    pub ask: bool,
    pub pending_in: bool,
    pub approved: bool,
}

/// The four subscription stanza types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubKind {
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
}

impl SubKind {
    pub fn parse(t: &str) -> Option<Self> {
        match t {
            "subscribe" => Some(Self::Subscribe),
            "subscribed" => Some(Self::Subscribed),
            "unsubscribe" => Some(Self::Unsubscribe),
            "unsubscribed" => Some(Self::Unsubscribed),
            _ => None,
        }
    }
}

/// What to do after an outbound transition (the user sent the stanza).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outbound {
    pub state: SubState,
    /// Route the stanza to the contact.
    pub route: bool,
}

/// What to do after an inbound transition (the stanza arrived for the user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inbound {
    pub state: SubState,
    /// Deliver the stanza to the user's sessions.
    pub deliver: bool,
    /// Answer `subscribed` on the user's behalf (already approved).
    pub auto_subscribed: bool,
}

fn has_from(s: Subscription) -> bool {
    matches!(s, Subscription::From | Subscription::Both)
}

fn has_to(s: Subscription) -> bool {
    matches!(s, Subscription::To | Subscription::Both)
}

fn with(from: bool, to: bool) -> Subscription {
    match (from, to) {
        (false, false) => Subscription::None,
        (true, false) => Subscription::From,
        (false, true) => Subscription::To,
        (true, true) => Subscription::Both,
    }
}

/// The user sends a subscription stanza to the contact (RFC 6121 §3.1.2, §3.1.5, §3.2.2,
/// §3.3.2, Appendix A.2).
pub fn outbound(s: SubState, kind: SubKind) -> Outbound {
    let mut n = s;
    let route = match kind {
        SubKind::Subscribe => {
            if !has_to(s.sub) {
                n.ask = true;
            }
            true
        }
        SubKind::Subscribed => {
            if has_from(s.sub) {
                false
            } else if s.pending_in {
                n.sub = with(true, has_to(s.sub));
                n.pending_in = false;
                n.approved = false;
                true
            } else {
                // RFC 6121 §3.4: pre-approval, kept until the contact asks.
                n.approved = true;
                false
            }
        }
        SubKind::Unsubscribe => {
            n.sub = with(has_from(s.sub), false);
            n.ask = false;
            true
        }
        SubKind::Unsubscribed => {
            let changed = has_from(s.sub) || s.pending_in || s.approved;
            n.sub = with(false, has_to(s.sub));
            n.pending_in = false;
            n.approved = false;
            changed
        }
    };
    Outbound { state: n, route }
}

/// A subscription stanza from the contact arrives for the user (RFC 6121 §3.1.3, §3.1.6,
/// §3.2.3, §3.3.3, Appendix A.3).
pub fn inbound(s: SubState, kind: SubKind) -> Inbound {
    let mut n = s;
    let (deliver, auto_subscribed) = match kind {
        SubKind::Subscribe => {
            if has_from(s.sub) {
                (false, true)
            } else if s.approved {
                n.sub = with(true, has_to(s.sub));
                n.approved = false;
                (false, true)
            } else {
                n.pending_in = true;
                (true, false)
            }
        }
        SubKind::Subscribed => {
            if s.ask && !has_to(s.sub) {
                n.sub = with(has_from(s.sub), true);
                n.ask = false;
                (true, false)
            } else {
                (false, false)
            }
        }
        SubKind::Unsubscribe => {
            if has_from(s.sub) || s.pending_in {
                n.sub = with(false, has_to(s.sub));
                n.pending_in = false;
                (true, false)
            } else {
                (false, false)
            }
        }
        SubKind::Unsubscribed => {
            if has_to(s.sub) || s.ask {
                n.sub = with(has_from(s.sub), false);
                n.ask = false;
                (true, false)
            } else {
                (false, false)
            }
        }
    };
    Inbound {
        state: n,
        deliver,
        auto_subscribed,
    }
}

fn subscription_stanza(kind: &str, from: &Jid, to: &Jid) -> Element {
    Element::new("presence", herald_translate::ns::CLIENT)
        .with_attr("type", kind)
        .with_attr("from", from.bare().to_string())
        .with_attr("to", to.bare().to_string())
}

impl Server {
    /// Current state of `user`'s relation to `contact`, and the stored item if any.
    async fn sub_state(&self, user: &Jid, contact: &Jid) -> (SubState, Option<RosterItem>) {
        let u = user.local().unwrap_or_default().to_string();
        let c = contact.bare().to_string();
        let loaded = self
            .db(move |s| {
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
    async fn save_sub_state(
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
        let u2 = u.clone();
        let c2 = c.clone();
        let item_for_store = updated.clone();
        let result = self
            .db(move |s| {
                let mut ver = None;
                if let Some(it) = &item_for_store {
                    ver = Some(s.roster_put(&u2, it)?);
                }
                match pending_change {
                    Some((true, Some(stanza))) => s.pending_in_put(&u2, &c2, &stanza)?,
                    Some((false, _)) => {
                        s.pending_in_remove(&u2, &c2)?;
                    }
                    _ => {}
                }
                Ok(ver)
            })
            .await;
        match result {
            Ok(Some(ver)) => {
                if let Some(it) = updated {
                    self.push_roster_item(user, &it, ver);
                }
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot store subscription state"),
        }
    }

    /// The user (`from`, a full or bare JID of a local session) sent a subscription
    /// stanza to `to`.
    pub(crate) async fn outbound_subscription(
        self: &Arc<Self>,
        mut stanza: Element,
        kind: SubKind,
        from: &Jid,
        to: &Jid,
    ) {
        let contact = to.bare();
        let user = from.bare();
        let step = {
            let _guard = self.roster_lock(&user).await;
            let (old, item) = self.sub_state(&user, &contact).await;
            let step = outbound(old, kind);
            self.save_sub_state(&user, &contact, old, step.state, item, None)
                .await;
            step
        };
        if !step.route {
            return;
        }
        stanza.set_attr("from", user.to_string());
        stanza.set_attr("to", contact.to_string());
        self.route(stanza).await;
        match kind {
            SubKind::Subscribed => self.send_presence_to(&user, &contact).await,
            SubKind::Unsubscribed => self.send_unavailable_to(&user, &contact).await,
            _ => {}
        }
    }

    /// A subscription stanza from `from` arrived for the local user `to`.
    pub(crate) async fn inbound_subscription(
        self: &Arc<Self>,
        stanza: Element,
        kind: &str,
        from: Jid,
        to: Jid,
    ) {
        let Some(kind) = SubKind::parse(kind) else {
            return;
        };
        let user = to.bare();
        let contact = from.bare();
        let mut clean = stanza.clone();
        clean.set_attr("from", contact.to_string());
        clean.set_attr("to", user.to_string());
        let step = {
            let _guard = self.roster_lock(&user).await;
            let (old, item) = self.sub_state(&user, &contact).await;
            let step = inbound(old, kind);
            let pending = (kind == SubKind::Subscribe && step.deliver)
                .then(|| clean.to_xml(herald_translate::ns::CLIENT));
            self.save_sub_state(&user, &contact, old, step.state, item, pending)
                .await;
            step
        };
        if step.auto_subscribed {
            self.route(subscription_stanza("subscribed", &user, &contact))
                .await;
            self.send_presence_to(&user, &contact).await;
        }
        if step.deliver {
            for s in self.router.sessions(&user) {
                if s.available || s.interested {
                    self.deliver_to(&s, clean.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Subscription::*;

    fn st(sub: Subscription, ask: bool, pending_in: bool) -> SubState {
        SubState {
            sub,
            ask,
            pending_in,
            approved: false,
        }
    }

    #[test]
    fn full_handshake_reaches_both() {
        // Romeo subscribes to Juliet; Juliet approves and subscribes back.
        let romeo = outbound(SubState::default(), SubKind::Subscribe);
        assert!(romeo.route && romeo.state.ask);
        let juliet = inbound(SubState::default(), SubKind::Subscribe);
        assert!(juliet.deliver && juliet.state.pending_in);
        let juliet = outbound(juliet.state, SubKind::Subscribed);
        assert!(juliet.route);
        assert_eq!(juliet.state, st(From, false, false));
        let romeo = inbound(romeo.state, SubKind::Subscribed);
        assert!(romeo.deliver);
        assert_eq!(romeo.state, st(To, false, false));
        let juliet = outbound(juliet.state, SubKind::Subscribe);
        let romeo = inbound(romeo.state, SubKind::Subscribe);
        let romeo = outbound(romeo.state, SubKind::Subscribed);
        assert_eq!(romeo.state, st(Both, false, false));
        let juliet = inbound(juliet.state, SubKind::Subscribed);
        assert_eq!(juliet.state, st(Both, false, false));
    }

    #[test]
    fn already_subscribed_contact_is_answered_automatically() {
        let r = inbound(st(From, false, false), SubKind::Subscribe);
        assert!(r.auto_subscribed && !r.deliver);
        assert_eq!(r.state, st(From, false, false));
    }

    #[test]
    fn pre_approval_is_consumed_by_the_request() {
        let user = outbound(SubState::default(), SubKind::Subscribed);
        assert!(!user.route && user.state.approved);
        let r = inbound(user.state, SubKind::Subscribe);
        assert!(r.auto_subscribed && !r.deliver);
        assert_eq!(r.state, st(From, false, false));
    }

    #[test]
    fn unsolicited_subscribed_is_ignored() {
        let r = inbound(SubState::default(), SubKind::Subscribed);
        assert!(!r.deliver);
        assert_eq!(r.state, SubState::default());
    }

    #[test]
    fn cancel_and_unsubscribe() {
        let r = outbound(st(Both, false, false), SubKind::Unsubscribed);
        assert!(r.route);
        assert_eq!(r.state.sub, To);
        let r = outbound(st(Both, false, false), SubKind::Unsubscribe);
        assert_eq!(r.state.sub, From);
        let r = inbound(st(Both, false, false), SubKind::Unsubscribed);
        assert!(r.deliver);
        assert_eq!(r.state.sub, From);
        let r = inbound(st(Both, false, false), SubKind::Unsubscribe);
        assert_eq!(r.state.sub, To);
        // Denying a pending request clears it.
        let r = outbound(st(None, false, true), SubKind::Unsubscribed);
        assert!(r.route);
        assert!(!r.state.pending_in);
        // Nothing to cancel: nothing routed.
        assert!(!outbound(st(To, false, false), SubKind::Unsubscribed).route);
    }

    #[test]
    fn every_transition_keeps_ask_consistent_with_to() {
        let subs = [None, To, From, Both];
        let kinds = [
            SubKind::Subscribe,
            SubKind::Subscribed,
            SubKind::Unsubscribe,
            SubKind::Unsubscribed,
        ];
        for sub in subs {
            for ask in [false, true] {
                for pending_in in [false, true] {
                    let s = st(sub, ask && !has_to(sub), pending_in && !has_from(sub));
                    for k in kinds {
                        for n in [outbound(s, k).state, inbound(s, k).state] {
                            assert!(!(n.ask && has_to(n.sub)), "{s:?} {k:?} -> {n:?}");
                            assert!(!(n.pending_in && has_from(n.sub)), "{s:?} {k:?} -> {n:?}");
                        }
                    }
                }
            }
        }
    }
}
