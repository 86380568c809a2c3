//! Offline messages (XEP-0160): stored durably before the sender's stanza counts as
//! handled, delivered when the user next sends initial presence with priority >= 0.
//!
//! Delivery is paced by the client: the session claims a page of stored messages,
//! writes it, waits until the socket took it, deletes the page, and claims the next.
//! A claim is exclusive (the store marks each message with the claiming session), so
//! when several resources come online at once every message goes to exactly one of
//! them; a session that ends mid-page gives its claim back, and nothing is lost.

use herald_translate::{ns, Element, Envelope, Jid};

use crate::ctx::Ctx;
use crate::error::CoreError;
use crate::store::{ClaimLimit, OfflinePush, OfflineQuota};

/// One page of offline delivery: at most this many messages...
const PAGE_MESSAGES: usize = 50;
/// ...and this many stanza bytes (a larger single message is still sent alone).
const PAGE_BYTES: usize = 256 * 1024;

/// Store a message for its (local) recipient. Ok(false) when the user's quota is full.
pub(crate) async fn push(ctx: &Ctx, env: &Envelope) -> Result<bool, CoreError> {
    let to = env.to();
    let mut stored = env.stanza().clone();
    if !stored.has_child("delay", ns::DELAY) {
        stored.push_child(delay(
            &ctx.server_jid(to).to_string(),
            crate::time::now_unix_ms(),
        ));
    }
    let xml = stored.to_xml(ns::CLIENT)?;
    let user = to.local().unwrap_or_default().to_string();
    let quota = OfflineQuota {
        messages: ctx.settings().offline_quota,
        bytes: ctx.settings().offline_quota_bytes,
    };
    let outcome = ctx
        .db
        .run(move |s| s.offline_push(&user, &xml, quota))
        .await?;
    if outcome == OfflinePush::Stored {
        ctx.metrics.offline_queue.inc();
    }
    Ok(outcome == OfflinePush::Stored)
}

/// A claimed page: the messages to write to `session`, and the ids to delete once
/// written.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub(crate) messages: Vec<Element>,
    pub(crate) ids: Vec<i64>,
}

/// Claim the next page of `session`'s user's stored messages for this session, each
/// addressed to it. An empty page means nothing is left.
pub(crate) async fn claim(ctx: &Ctx, session: &Jid, claim: i64) -> Result<Page, CoreError> {
    let user = session.local().unwrap_or_default().to_string();
    let limit = ClaimLimit {
        messages: PAGE_MESSAGES,
        bytes: PAGE_BYTES,
    };
    let stored = ctx
        .db
        .run(move |s| s.offline_claim(&user, claim, limit))
        .await?;
    let mut page = Page::default();
    for m in stored {
        page.ids.push(m.id);
        match parse_stored(&m.stanza) {
            Some(el) => page.messages.push(el.with_attr("to", session.to_string())),
            None => tracing::error!(id = m.id, "unreadable offline message dropped"),
        }
    }
    Ok(page)
}

/// The page was written: delete it.
pub(crate) async fn delivered(ctx: &Ctx, session: &Jid, ids: Vec<i64>) {
    let user = session.local().unwrap_or_default().to_string();
    match ctx.db.run(move |s| s.offline_delete(&user, &ids)).await {
        Ok(n) => {
            ctx.metrics
                .offline_queue
                .dec_by(i64::try_from(n).unwrap_or(i64::MAX));
        }
        Err(e) => tracing::error!(error = %e, "cannot delete delivered offline messages"),
    }
}

/// The session ends: what it claimed but did not deliver goes back to the pool.
pub(crate) async fn release(ctx: &Ctx, session: &Jid, claim: i64) {
    let user = session.local().unwrap_or_default().to_string();
    if let Err(e) = ctx.db.run(move |s| s.offline_release(&user, claim)).await {
        tracing::error!(error = %e, "cannot release offline messages");
    }
}

/// `<delay/>` (XEP-0203) for a stanza stored or forwarded later.
pub(crate) fn delay(from: &str, unix_ms: i64) -> Element {
    Element::new("delay", ns::DELAY)
        .with_attr("from", from)
        .with_attr("stamp", crate::time::xep0082(unix_ms))
}

/// Parse a stored stanza (written by `push` in a `jabber:client` context).
pub(crate) fn parse_stored(xml: &str) -> Option<Element> {
    use herald_translate::{StreamEvent, StreamReader, XmlLimits};
    let mut reader = StreamReader::new(XmlLimits {
        max_stanza_bytes: xml.len() + 1024,
        ..XmlLimits::default()
    });
    reader.feed(
        format!(
            "<stream:stream xmlns='{}' xmlns:stream='{}'>",
            ns::CLIENT,
            ns::STREAM
        )
        .as_bytes(),
    );
    reader.feed(xml.as_bytes());
    loop {
        match reader.next_event() {
            Ok(Some(StreamEvent::Stanza(el))) => return Some(el),
            Ok(Some(_)) => continue,
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_round_trips() {
        let m = Element::new("message", ns::CLIENT)
            .with_attr("from", "a@x/r")
            .with_child(Element::new("body", ns::CLIENT).with_text("1 < 2 & \"q\""));
        let back = parse_stored(&m.to_xml(ns::CLIENT).expect("serializable")).expect("parse");
        assert_eq!(back, m);
    }
}
