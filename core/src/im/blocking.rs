//! XEP-0191 blocking command: the user's block list (the seed's "blocked list").
//! Blocked entities get no presence from the user and their stanzas are not delivered.

use std::sync::Arc;

use herald_translate::stanza::{error_reply, iq_result};
use herald_translate::{ns, Element, Jid, StanzaError, StanzaErrorCondition};

use crate::server::Server;
use crate::store::Subscription;

fn items(payload: &Element) -> Result<Vec<String>, StanzaError> {
    payload
        .elements()
        .filter(|e| e.is("item", ns::BLOCKING))
        .map(|e| {
            e.attr("jid")
                .and_then(|j| Jid::parse(j).ok())
                .map(|j| j.to_string())
                .ok_or_else(|| StanzaError::new(StanzaErrorCondition::JidMalformed))
        })
        .collect()
}

fn push(kind: &str, jids: &[String]) -> Element {
    let mut el = Element::new(kind, ns::BLOCKING);
    for j in jids {
        el.push_child(Element::new("item", ns::BLOCKING).with_attr("jid", j.clone()));
    }
    Element::new("iq", ns::CLIENT)
        .with_attr("type", "set")
        .with_attr(
            "id",
            format!("block-{}", herald_translate::negotiation::random_id()),
        )
        .with_child(el)
}

impl Server {
    pub(crate) async fn blocking_iq(
        self: &Arc<Self>,
        iq: &Element,
        payload: &Element,
        session: &Jid,
    ) -> Element {
        let user = session.local().unwrap_or_default().to_string();
        let get = iq.attr("type") == Some("get");
        let fail = |c: StanzaErrorCondition, text: &str| {
            error_reply(iq, &StanzaError::new(c).with_text(text), None)
        };
        match (get, payload.name.as_str()) {
            (true, "blocklist") => match self.db(move |s| s.blocklist(&user)).await {
                Ok(list) => {
                    let mut el = Element::new("blocklist", ns::BLOCKING);
                    for j in list {
                        el.push_child(Element::new("item", ns::BLOCKING).with_attr("jid", j));
                    }
                    iq_result(iq, None, Some(el))
                }
                Err(_) => fail(StanzaErrorCondition::InternalServerError, "storage"),
            },
            (false, kind @ ("block" | "unblock")) => {
                let jids = match items(payload) {
                    Ok(j) => j,
                    Err(e) => return error_reply(iq, &e, None),
                };
                if kind == "block" && jids.is_empty() {
                    return fail(StanzaErrorCondition::BadRequest, "nothing to block");
                }
                let max = self.settings.max_blocklist_items;
                let block = kind == "block";
                let list = jids.clone();
                let outcome = self
                    .db(move |s| {
                        if block {
                            let mut current = s.blocklist(&user)?;
                            current.extend(list.iter().cloned());
                            current.sort();
                            current.dedup();
                            if current.len() > max {
                                return Ok(false);
                            }
                            s.block(&user, &list)?;
                        } else {
                            s.unblock(&user, &list)?;
                        }
                        Ok(true)
                    })
                    .await;
                match outcome {
                    Ok(true) => {}
                    Ok(false) => {
                        return fail(
                            StanzaErrorCondition::NotAcceptable,
                            "the block list is full",
                        )
                    }
                    Err(_) => return fail(StanzaErrorCondition::InternalServerError, "storage"),
                }
                self.forget_blocklist(session);
                for s in self.router.sessions(session) {
                    let mut p = push(kind, &jids);
                    p.set_attr("to", s.jid.to_string());
                    self.deliver_to(&s, p);
                }
                let user_bare = session.bare();
                for j in jids.iter().filter_map(|j| Jid::parse(j).ok()) {
                    self.presence_on_block_change(&user_bare, &j, block).await;
                }
                iq_result(iq, None, None)
            }
            _ => fail(StanzaErrorCondition::BadRequest, "unknown blocking request"),
        }
    }

    /// A blocked subscriber sees the user go offline; an unblocked one sees the user's
    /// presence again. Entities without a subscription learn nothing (XEP-0191 §3.3).
    async fn presence_on_block_change(self: &Arc<Self>, user: &Jid, contact: &Jid, blocked: bool) {
        let u = user.local().unwrap_or_default().to_string();
        let c = contact.bare().to_string();
        let item = self.db(move |s| s.roster_item(&u, &c)).await.ok().flatten();
        if !item.is_some_and(|i| matches!(i.subscription, Subscription::From | Subscription::Both))
        {
            return;
        }
        if blocked {
            self.send_unavailable_to(user, contact).await;
        } else {
            self.send_presence_to(user, contact).await;
        }
    }
}
