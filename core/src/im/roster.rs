//! Roster management (RFC 6121 §2) with versioning (XEP-0237).
//!
//! A roster get with the current version answers with an empty result; any other version
//! gets the full roster (the "full roster" option of XEP-0237 §3), then pushes.

use std::sync::Arc;

use herald_translate::stanza::{error_reply, iq_result};
use herald_translate::{ns, Element, Jid, StanzaError, StanzaErrorCondition};

use crate::server::Server;
use crate::store::{RosterItem, Subscription};

/// Longest item name or group name accepted.
const MAX_NAME_BYTES: usize = 1024;

/// The XML form of a roster item.
pub(crate) fn item_element(item: &RosterItem) -> Element {
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
        .with_attr(
            "id",
            format!("push-{}", herald_translate::negotiation::random_id()),
        )
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

impl Server {
    /// Send a roster push to every interested session of `user`.
    pub(crate) fn push_roster_item(&self, user: &Jid, item: &RosterItem, ver: u64) {
        self.push_element(user, item_element(item), ver);
    }

    fn push_element(&self, user: &Jid, item: Element, ver: u64) {
        for s in self.router.sessions(user) {
            if s.interested {
                let mut p = push(user, item.clone(), ver);
                p.set_attr("to", s.jid.to_string());
                self.deliver_to(&s, p);
            }
        }
    }

    /// Answer a roster get or set from the user's own session.
    pub(crate) async fn roster_iq(
        self: &Arc<Self>,
        iq: &Element,
        query: &Element,
        session: &Jid,
        conn_id: u64,
    ) -> Element {
        let user = session.local().unwrap_or_default().to_string();
        match iq.attr("type") {
            Some("get") => {
                self.router
                    .update(session, conn_id, |s| s.interested = true);
                let u = user.clone();
                let (ver, items) = match self.db(move |s| s.roster(&u)).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, "roster read failed");
                        let err = StanzaError::new(StanzaErrorCondition::InternalServerError);
                        return error_reply(iq, &err, None);
                    }
                };
                if query.attr("ver") == Some(ver.to_string().as_str()) {
                    return iq_result(iq, None, None);
                }
                let mut q = Element::new("query", ns::ROSTER).with_attr("ver", ver.to_string());
                for it in &items {
                    q.push_child(item_element(it));
                }
                iq_result(iq, None, Some(q))
            }
            Some("set") => match parse_set(query, session) {
                Err(err) => error_reply(iq, &err, None),
                Ok(SetRequest::Remove { jid }) => self.roster_remove(iq, session, jid).await,
                Ok(SetRequest::Update { jid, name, groups }) => {
                    let max = self.settings.max_roster_items;
                    let c = jid.to_string();
                    let _guard = self.roster_lock(session).await;
                    let outcome = self
                        .db(move |s| {
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
                            self.push_roster_item(session, &item, ver);
                            iq_result(iq, None, None)
                        }
                        Ok(None) => error_reply(
                            iq,
                            &StanzaError::new(StanzaErrorCondition::NotAllowed)
                                .with_text("the roster is full"),
                            None,
                        ),
                        Err(e) => {
                            tracing::error!(error = %e, "roster write failed");
                            error_reply(
                                iq,
                                &StanzaError::new(StanzaErrorCondition::InternalServerError),
                                None,
                            )
                        }
                    }
                }
            },
            _ => error_reply(
                iq,
                &StanzaError::new(StanzaErrorCondition::BadRequest),
                None,
            ),
        }
    }

    /// RFC 6121 §2.5: removing a contact also cancels the subscriptions both ways.
    async fn roster_remove(self: &Arc<Self>, iq: &Element, session: &Jid, contact: Jid) -> Element {
        let user = session.local().unwrap_or_default().to_string();
        let c = contact.to_string();
        let guard = self.roster_lock(session).await;
        let removed = self
            .db(move |s| {
                let item = s.roster_item(&user, &c)?;
                let pending = s.pending_in_remove(&user, &c)?;
                let ver = s.roster_remove(&user, &c)?;
                Ok((item, pending, ver))
            })
            .await;
        drop(guard);
        let (item, pending, ver) = match removed {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "roster remove failed");
                let err = StanzaError::new(StanzaErrorCondition::InternalServerError);
                return error_reply(iq, &err, None);
            }
        };
        let (Some(item), Some(ver)) = (item, ver) else {
            return error_reply(
                iq,
                &StanzaError::new(StanzaErrorCondition::ItemNotFound),
                None,
            );
        };
        let user_bare = session.bare();
        let presence = |t: &str| {
            Element::new("presence", ns::CLIENT)
                .with_attr("type", t)
                .with_attr("from", user_bare.to_string())
                .with_attr("to", contact.to_string())
        };
        if matches!(item.subscription, Subscription::To | Subscription::Both) || item.ask {
            self.route(presence("unsubscribe")).await;
        }
        if matches!(item.subscription, Subscription::From | Subscription::Both) || pending {
            self.route(presence("unsubscribed")).await;
            self.send_unavailable_to(&user_bare, &contact).await;
        }
        let removal = Element::new("item", ns::ROSTER)
            .with_attr("jid", contact.to_string())
            .with_attr("subscription", "remove");
        self.push_element(session, removal, ver);
        iq_result(iq, None, None)
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
