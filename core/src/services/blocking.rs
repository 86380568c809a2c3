//! XEP-0191 blocking: the user's block list (the seed's "blocked list"), cached as a
//! matcher built once per user, and the blocking IQs. Blocked entities get no presence
//! from the user, and their stanzas are not delivered.

use std::sync::{Arc, RwLock};

use herald_rules::BlockList;
use herald_translate::stanza::{error_reply, iq_result};
use herald_translate::{ns, Element, Jid, StanzaError, StanzaErrorCondition};

use crate::bare_map::BareMap;
use crate::ctx::{Ctx, Db};
use crate::router::Sessions;

/// Users whose block list is kept in memory at most; beyond it the cache starts over.
const MAX_CACHED: usize = 100_000;

/// Block lists of users seen recently, as matchers; invalidated on change.
#[derive(Debug)]
pub(crate) struct BlockLists {
    db: Db,
    cache: RwLock<BareMap<Arc<BlockList>>>,
    empty: Arc<BlockList>,
}

impl BlockLists {
    pub(crate) fn new(db: Db) -> Self {
        Self {
            db,
            cache: RwLock::new(BareMap::default()),
            empty: Arc::new(BlockList::default()),
        }
    }

    /// The block list of a local user.
    pub(crate) async fn of(&self, user: &Jid) -> Arc<BlockList> {
        if let Some(l) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(user)
        {
            return Arc::clone(l);
        }
        let Some(username) = user.local().map(str::to_string) else {
            return Arc::clone(&self.empty);
        };
        let items = self
            .db
            .run(move |s| s.blocklist(&username))
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "block list unavailable");
                Vec::new()
            });
        let list = if items.is_empty() {
            Arc::clone(&self.empty)
        } else {
            Arc::new(BlockList::new(items))
        };
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(user, Arc::clone(&list));
        list
    }

    /// Whether the local `user` has blocked `addr`.
    pub(crate) async fn has_blocked(&self, user: &Jid, addr: &Jid) -> bool {
        let list = self.of(user).await;
        !list.is_empty() && list.matches(addr).is_some()
    }

    pub(crate) fn forget(&self, user: &Jid) {
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(user);
    }
}

/// What a block or unblock changed, for the presence the contacts must see.
#[derive(Debug)]
pub(crate) struct BlockChange {
    pub(crate) blocked: bool,
    pub(crate) jids: Vec<Jid>,
}

fn items(payload: &Element) -> Result<Vec<Jid>, StanzaError> {
    payload
        .elements()
        .filter(|e| e.is("item", ns::BLOCKING))
        .map(|e| {
            e.attr("jid")
                .and_then(|j| Jid::parse(j).ok())
                .ok_or_else(|| StanzaError::new(StanzaErrorCondition::JidMalformed))
        })
        .collect()
}

fn push(kind: &str, jids: &[Jid], id: String) -> Element {
    let mut el = Element::new(kind, ns::BLOCKING);
    for j in jids {
        el.push_child(Element::new("item", ns::BLOCKING).with_attr("jid", j.to_string()));
    }
    Element::new("iq", ns::CLIENT)
        .with_attr("type", "set")
        .with_attr("id", id)
        .with_child(el)
}

/// Answer a blocking IQ from the user's own session. On a change, the user's sessions
/// get the push and the change is returned for the presence it implies.
pub(crate) async fn handle_iq(
    ctx: &Ctx,
    iq: &Element,
    payload: &Element,
    session: &Jid,
    push_id: String,
) -> (Element, Option<BlockChange>) {
    let Some(user) = session.local().map(str::to_string) else {
        let err = StanzaError::new(StanzaErrorCondition::BadRequest);
        return (error_reply(iq, &err, None), None);
    };
    let get = iq.attr("type") == Some("get");
    let fail = |c: StanzaErrorCondition, text: &str| {
        (
            error_reply(iq, &StanzaError::new(c).with_text(text), None),
            None,
        )
    };
    match (get, payload.name.as_str()) {
        (true, "blocklist") => match ctx.db.run(move |s| s.blocklist(&user)).await {
            Ok(list) => {
                let mut el = Element::new("blocklist", ns::BLOCKING);
                for j in list {
                    el.push_child(Element::new("item", ns::BLOCKING).with_attr("jid", j));
                }
                (iq_result(iq, None, Some(el)), None)
            }
            Err(_) => fail(StanzaErrorCondition::InternalServerError, "storage"),
        },
        (false, kind @ ("block" | "unblock")) => {
            let jids = match items(payload) {
                Ok(j) => j,
                Err(e) => return (error_reply(iq, &e, None), None),
            };
            let block = kind == "block";
            if block && jids.is_empty() {
                return fail(StanzaErrorCondition::BadRequest, "nothing to block");
            }
            let max = ctx.settings.max_blocklist_items;
            let list: Vec<String> = jids.iter().map(Jid::to_string).collect();
            let outcome = ctx
                .db
                .run(move |s| {
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
            ctx.blocks.forget(session);
            let sessions: Sessions = ctx.router.sessions(session);
            for s in sessions.iter() {
                let p = push(kind, &jids, push_id.clone()).with_attr("to", s.jid.to_string());
                ctx.deliver(s, p);
            }
            (
                iq_result(iq, None, None),
                Some(BlockChange {
                    blocked: block,
                    jids,
                }),
            )
        }
        _ => fail(StanzaErrorCondition::BadRequest, "unknown blocking request"),
    }
}
