//! Rosters (RFC 6121 §2) with versioning (XEP-0237): the roster IQs, pushes to
//! interested sessions, and the per-user lock that serializes read-modify-write.
//!
//! A roster get with the current version answers with an empty result; any other version
//! gets the full roster (the "full roster" option of XEP-0237 §3), then pushes.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use herald_translate::negotiation::random_id;
use herald_translate::stanza::{error_reply, iq_result};
use herald_translate::{ns, Element, Jid, StanzaError, StanzaErrorCondition};

use crate::ctx::Ctx;
use crate::store::{RosterItem, Subscription};

/// Longest item name or group name accepted.
const MAX_NAME_BYTES: usize = 1024;

/// Number of stripes of the per-user roster lock.
const LOCK_STRIPES: usize = 64;

/// The stanza error for a storage failure. An account removed while one of its
/// sessions was still finishing is the client's lot (`not-authorized`, logged as a
/// warning); anything else is the server's fault (`internal-server-error`, an error).
pub(crate) fn storage_failure(e: &crate::CoreError, what: &str) -> StanzaError {
    if let crate::CoreError::Store(crate::store::StoreError::NoSuchUser(user)) = e {
        tracing::warn!(%user, what, "request for an account that no longer exists");
        return StanzaError::new(StanzaErrorCondition::NotAuthorized);
    }
    tracing::error!(error = %e, what, "storage failed");
    StanzaError::new(StanzaErrorCondition::InternalServerError)
}

/// Which side of a subscription to list.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Side {
    /// Contacts subscribed to the user (`from`, `both`): they receive the user's presence.
    Subscribers,
    /// Contacts the user is subscribed to (`to`, `both`): they are probed.
    Subscriptions,
}

/// The XML form of a roster item (RFC 6121 §2.1.2; also XEP-0227 exports).
pub fn item_element(item: &RosterItem) -> Element {
    let mut el = Element::new("item", ns::ROSTER)
        .with_attr("jid", item.jid.clone())
        .with_attr("subscription", item.subscription.as_str());
    if let Some(name) = &item.name {
        el.set_attr("name", name.clone());
    }
    if item.ask {
        el.set_attr("ask", "subscribe");
    }
    if item.approved {
        el.set_attr("approved", "true");
    }
    for g in &item.groups {
        el.push_child(Element::new("group", ns::ROSTER).with_text(g.clone()));
    }
    el
}

fn push(user: &Jid, item: Element, ver: u64) -> Element {
    Element::new("iq", ns::CLIENT)
        .with_attr("type", "set")
        .with_attr("id", format!("push-{}", random_id()))
        .with_attr("from", user.bare().to_string())
        .with_child(
            Element::new("query", ns::ROSTER)
                .with_attr("ver", ver.to_string())
                .with_child(item),
        )
}

/// A roster set request, checked (RFC 6121 §2.3.3 and §2.5.3).
#[derive(Debug)]
enum SetRequest {
    Update {
        jid: Jid,
        name: Option<String>,
        groups: Vec<String>,
    },
    Remove {
        jid: Jid,
    },
}

fn parse_set(query: &Element, user: &Jid) -> Result<SetRequest, StanzaError> {
    let mut items = query.elements().filter(|e| e.is("item", ns::ROSTER));
    let (Some(item), None) = (items.next(), items.next()) else {
        return Err(StanzaError::new(StanzaErrorCondition::BadRequest)
            .with_text("a roster set carries exactly one item"));
    };
    let jid = item
        .attr("jid")
        .and_then(|j| Jid::parse(j).ok())
        .ok_or_else(|| StanzaError::new(StanzaErrorCondition::JidMalformed))?
        .bare();
    if item.attr("subscription") == Some("remove") {
        return Ok(SetRequest::Remove { jid });
    }
    if jid == user.bare() {
        return Err(
            StanzaError::new(StanzaErrorCondition::NotAllowed).with_text("you cannot add yourself")
        );
    }
    let name = item
        .attr("name")
        .map(str::to_string)
        .filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|n| n.len() > MAX_NAME_BYTES) {
        return Err(
            StanzaError::new(StanzaErrorCondition::NotAcceptable).with_text("name too long")
        );
    }
    let mut groups: Vec<String> = Vec::new();
    for g in item.elements().filter(|e| e.is("group", ns::ROSTER)) {
        let g = g.text();
        if g.is_empty() || g.len() > MAX_NAME_BYTES {
            return Err(StanzaError::new(StanzaErrorCondition::NotAcceptable)
                .with_text("group names must be 1 to 1024 bytes"));
        }
        if groups.contains(&g) {
            return Err(
                StanzaError::new(StanzaErrorCondition::BadRequest).with_text("duplicate group")
            );
        }
        groups.push(g);
    }
    Ok(SetRequest::Update { jid, name, groups })
}

/// A contact removed from a roster: what the subscriptions were, so the caller can
/// cancel them (RFC 6121 §2.5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Removed {
    /// The user was subscribed to the contact or had asked: send `unsubscribe`.
    pub(crate) unsubscribe: bool,
    /// The contact was subscribed to the user or was asking: send `unsubscribed`.
    pub(crate) unsubscribed: bool,
}

/// The roster service.
#[derive(Debug)]
pub(crate) struct Rosters {
    ctx: Arc<Ctx>,
    locks: Box<[tokio::sync::Mutex<()>]>,
}

impl Rosters {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self {
            ctx,
            locks: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// Serialize changes to `user`'s roster. Hold it only around storage work: never
    /// while routing (routing may need another user's stripe).
    pub(crate) async fn lock(&self, user: &Jid) -> tokio::sync::MutexGuard<'_, ()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        user.local().hash(&mut h);
        user.domain().hash(&mut h);
        let stripe = usize::try_from(h.finish()).unwrap_or(0) % self.locks.len();
        self.locks[stripe].lock().await
    }

    /// The contacts on one side of the user's subscriptions.
    pub(crate) async fn contacts(&self, user: &Jid, side: Side) -> Vec<Jid> {
        let Some(u) = user.local().map(str::to_string) else {
            return Vec::new();
        };
        let items = match self.ctx.db.run(move |s| s.roster(&u)).await {
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

    /// The user's item for `contact`, if any.
    pub(crate) async fn item(&self, user: &Jid, contact: &Jid) -> Option<RosterItem> {
        let u = user.local()?.to_string();
        let c = contact.bare().to_string();
        self.ctx
            .db
            .run(move |s| s.roster_item(&u, &c))
            .await
            .ok()
            .flatten()
    }

    /// Whether `contact` is subscribed to the user's presence (`from` or `both`).
    pub(crate) async fn is_subscriber(&self, user: &Jid, contact: &Jid) -> bool {
        self.item(user, contact)
            .await
            .is_some_and(|i| matches!(i.subscription, Subscription::From | Subscription::Both))
    }

    /// Send a roster push to every interested session of `user`.
    pub(crate) fn push_item(&self, user: &Jid, item: &RosterItem, ver: u64) {
        self.push_element(user, item_element(item), ver);
        if let Ok(contact) = Jid::parse(&item.jid) {
            self.ctx.roster_changed(user, &contact);
        }
    }

    /// Push the removal of `contact` from `user`'s roster.
    pub(crate) fn push_removal(&self, user: &Jid, contact: &Jid, ver: u64) {
        let removal = Element::new("item", ns::ROSTER)
            .with_attr("jid", contact.to_string())
            .with_attr("subscription", "remove");
        self.push_element(user, removal, ver);
        self.ctx.roster_changed(user, contact);
    }

    fn push_element(&self, user: &Jid, item: Element, ver: u64) {
        for s in self.ctx.router.sessions(user).iter() {
            if s.interested {
                let p = push(user, item.clone(), ver).with_attr("to", s.jid.to_string());
                self.ctx.deliver(s, p);
            }
        }
    }

    /// Answer a roster get or set from the user's own session. A removal also returns
    /// what must be cancelled.
    pub(crate) async fn handle_iq(
        &self,
        iq: &Element,
        query: &Element,
        session: &Jid,
        conn_id: u64,
    ) -> (Element, Option<(Jid, Removed)>) {
        let Some(user) = session.local().map(str::to_string) else {
            let err = StanzaError::new(StanzaErrorCondition::BadRequest);
            return (error_reply(iq, &err, None), None);
        };
        let failed = |e: &crate::CoreError| error_reply(iq, &storage_failure(e, "roster"), None);
        match iq.attr("type") {
            Some("get") => {
                self.ctx
                    .router
                    .update(session, conn_id, |s| s.interested = true);
                let (ver, items) = match self.ctx.db.run(move |s| s.roster(&user)).await {
                    Ok(r) => r,
                    Err(e) => return (failed(&e), None),
                };
                if query.attr("ver") == Some(ver.to_string().as_str()) {
                    return (iq_result(iq, None, None), None);
                }
                let mut q = Element::new("query", ns::ROSTER).with_attr("ver", ver.to_string());
                for it in &items {
                    q.push_child(item_element(it));
                }
                (iq_result(iq, None, Some(q)), None)
            }
            Some("set") => match parse_set(query, session) {
                Err(err) => (error_reply(iq, &err, None), None),
                Ok(SetRequest::Remove { jid }) => match self.remove(session, &jid).await {
                    Ok(Some(removed)) => (iq_result(iq, None, None), Some((jid, removed))),
                    Ok(None) => (
                        error_reply(
                            iq,
                            &StanzaError::new(StanzaErrorCondition::ItemNotFound),
                            None,
                        ),
                        None,
                    ),
                    Err(e) => (failed(&e), None),
                },
                Ok(SetRequest::Update { jid, name, groups }) => {
                    let max = self.ctx.settings().max_roster_items;
                    let c = jid.to_string();
                    let _guard = self.lock(session).await;
                    let outcome = self
                        .ctx
                        .db
                        .run(move |s| {
                            let existing = s.roster_item(&user, &c)?;
                            if existing.is_none() && s.roster_len(&user)? >= max {
                                return Ok(None);
                            }
                            let mut item = existing.unwrap_or_else(|| RosterItem::new(c));
                            item.name = name;
                            item.groups = groups;
                            let ver = s.roster_put(&user, &item)?;
                            Ok(Some((item, ver)))
                        })
                        .await;
                    match outcome {
                        Ok(Some((item, ver))) => {
                            self.push_item(session, &item, ver);
                            (iq_result(iq, None, None), None)
                        }
                        Ok(None) => (
                            error_reply(
                                iq,
                                &StanzaError::new(StanzaErrorCondition::NotAllowed)
                                    .with_text("the roster is full"),
                                None,
                            ),
                            None,
                        ),
                        Err(e) => (failed(&e), None),
                    }
                }
            },
            _ => (
                error_reply(
                    iq,
                    &StanzaError::new(StanzaErrorCondition::BadRequest),
                    None,
                ),
                None,
            ),
        }
    }

    /// RFC 6121 §2.5: remove a contact and its pending request, push the removal.
    /// Ok(None) when there was no such item.
    async fn remove(
        &self,
        session: &Jid,
        contact: &Jid,
    ) -> Result<Option<Removed>, crate::CoreError> {
        let user = session.local().unwrap_or_default().to_string();
        let c = contact.to_string();
        let guard = self.lock(session).await;
        let removed = self
            .ctx
            .db
            .run(move |s| {
                let item = s.roster_item(&user, &c)?;
                let pending = s.pending_in_remove(&user, &c)?;
                let ver = s.roster_remove(&user, &c)?;
                Ok((item, pending, ver))
            })
            .await;
        drop(guard);
        let (item, pending, ver) = removed?;
        let (Some(item), Some(ver)) = (item, ver) else {
            return Ok(None);
        };
        self.push_removal(session, contact, ver);
        Ok(Some(Removed {
            unsubscribe: matches!(item.subscription, Subscription::To | Subscription::Both)
                || item.ask,
            unsubscribed: matches!(item.subscription, Subscription::From | Subscription::Both)
                || pending,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Jid {
        Jid::parse("alice@localhost/r").expect("jid")
    }

    fn query(items: &[Element]) -> Element {
        let mut q = Element::new("query", ns::ROSTER);
        for i in items {
            q.push_child(i.clone());
        }
        q
    }

    #[test]
    fn set_validation() {
        let item = |jid: &str| Element::new("item", ns::ROSTER).with_attr("jid", jid);
        assert!(matches!(
            parse_set(&query(&[item("bob@localhost")]), &user()),
            Ok(SetRequest::Update { .. })
        ));
        assert!(parse_set(&query(&[item("a@x"), item("b@x")]), &user()).is_err());
        assert!(parse_set(&query(&[item("alice@localhost")]), &user()).is_err());
        let dup = item("bob@localhost")
            .with_child(Element::new("group", ns::ROSTER).with_text("g"))
            .with_child(Element::new("group", ns::ROSTER).with_text("g"));
        let err = parse_set(&query(&[dup]), &user()).expect_err("duplicate");
        assert_eq!(err.condition, StanzaErrorCondition::BadRequest);
        let empty = item("bob@localhost").with_child(Element::new("group", ns::ROSTER));
        let err = parse_set(&query(&[empty]), &user()).expect_err("empty group");
        assert_eq!(err.condition, StanzaErrorCondition::NotAcceptable);
        let remove = item("bob@localhost/x").with_attr("subscription", "remove");
        assert!(matches!(
            parse_set(&query(&[remove]), &user()),
            Ok(SetRequest::Remove { jid }) if jid.to_string() == "bob@localhost"
        ));
    }

    #[test]
    fn item_xml_carries_state() {
        let mut it = RosterItem::new("bob@localhost");
        it.ask = true;
        it.groups = vec!["Friends".into()];
        let el = item_element(&it);
        assert_eq!(el.attr("subscription"), Some("none"));
        assert_eq!(el.attr("ask"), Some("subscribe"));
        assert_eq!(
            el.child("group", ns::ROSTER).map(Element::text).as_deref(),
            Some("Friends")
        );
    }
}
