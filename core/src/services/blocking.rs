//! XEP-0191 blocking commands: the user's block list (the seed's "blocked list") read,
//! extended and shrunk over IQ, with pushes to the user's sessions. Routing consults the
//! cached matchers in `crate::blocklists`.

use herald_translate::stanza::{error_reply, iq_result};
use herald_translate::{ns, Element, Jid, StanzaError, StanzaErrorCondition};

use crate::ctx::Ctx;
use crate::router::Sessions;

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
            let max = ctx.settings().max_blocklist_items;
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
