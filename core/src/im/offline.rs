//! Offline messages (XEP-0160): stored durably before the sender's stanza is considered
//! handled, delivered when the user next sends initial presence with priority >= 0.

use std::sync::Arc;

use herald_translate::{ns, Element, Jid};

use crate::error::CoreError;
use crate::router::SessionInfo;
use crate::server::Server;
use crate::store::OfflinePush;

impl Server {
    /// Store a message for `to`. Ok(false) when the user's quota is full.
    pub(crate) async fn push_offline(&self, msg: &Element, to: &Jid) -> Result<bool, CoreError> {
        let mut stored = msg.clone();
        if !stored.has_child("delay", ns::DELAY) {
            stored.push_child(super::delay(
                &self.domain_of(to),
                crate::time::now_unix_ms(),
            ));
        }
        let xml = stored.to_xml(ns::CLIENT);
        let user = to.local().unwrap_or_default().to_string();
        let quota = self.settings.offline_quota;
        let outcome = self.db(move |s| s.offline_push(&user, &xml, quota)).await?;
        if outcome == OfflinePush::Stored {
            self.metrics.offline_queue.inc();
        }
        Ok(outcome == OfflinePush::Stored)
    }

    /// Deliver and then delete the user's stored messages. A message is deleted only
    /// after the session's queue accepted it.
    pub(crate) async fn flush_offline(self: &Arc<Self>, session: &SessionInfo) {
        let user = session.jid.local().unwrap_or_default().to_string();
        let u = user.clone();
        let stored = match self.db(move |s| s.offline_list(&u)).await {
            Ok(list) => list,
            Err(e) => {
                tracing::error!(error = %e, "cannot read offline messages");
                return;
            }
        };
        let mut done = Vec::new();
        for m in stored {
            let el = match parse_stored(&m.stanza) {
                Some(mut el) => {
                    el.set_attr("to", session.jid.to_string());
                    el
                }
                None => {
                    tracing::error!(id = m.id, "unreadable offline message dropped");
                    done.push(m.id);
                    continue;
                }
            };
            if !self.deliver_to(session, el) {
                break;
            }
            done.push(m.id);
        }
        if done.is_empty() {
            return;
        }
        let n = done.len();
        if let Err(e) = self.db(move |s| s.offline_delete(&user, &done)).await {
            tracing::error!(error = %e, "cannot delete delivered offline messages");
            return;
        }
        self.metrics
            .offline_queue
            .dec_by(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// Parse a stored stanza (written by `push_offline` in a `jabber:client` context).
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
        let back = parse_stored(&m.to_xml(ns::CLIENT)).expect("parse");
        assert_eq!(back, m);
    }
}
