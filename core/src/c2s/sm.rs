//! XEP-0198 stream management: stanza counters, the queue of unacknowledged stanzas,
//! and sessions kept detached for resumption. When a detached session expires, every
//! message the client never acknowledged goes to the user's other sessions or to
//! offline storage: nothing acknowledged to a sender is dropped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use herald_translate::{ns, Element, Jid};
use tokio::sync::{mpsc, Notify};

use crate::router::Outbound;
use crate::server::Server;

/// Counters and unacknowledged stanzas of one managed stream.
#[derive(Debug)]
pub struct SmState {
    pub id: String,
    pub resumable: bool,
    /// Stanzas handled from the client (its `h`).
    pub inbound: u32,
    /// Stanzas sent to the client.
    pub outbound: u32,
    pub unacked: VecDeque<Element>,
    /// An `<r/>` is outstanding.
    pub ack_requested: bool,
}

/// The client acknowledged more stanzas than were sent.
#[derive(Debug, PartialEq, Eq)]
pub struct AckTooHigh;

impl SmState {
    pub fn new(resumable: bool) -> Self {
        Self {
            id: herald_translate::negotiation::random_id(),
            resumable,
            inbound: 0,
            outbound: 0,
            unacked: VecDeque::new(),
            ack_requested: false,
        }
    }

    pub fn sent(&mut self, el: &Element) {
        self.outbound = self.outbound.wrapping_add(1);
        self.unacked.push_back(el.clone());
    }

    pub fn received(&mut self) {
        self.inbound = self.inbound.wrapping_add(1);
    }

    /// The client's `h`: drop what it has acknowledged (counters wrap at 2^32).
    pub fn acked(&mut self, h: u32) -> Result<(), AckTooHigh> {
        let queued = u32::try_from(self.unacked.len()).unwrap_or(u32::MAX);
        let already = self.outbound.wrapping_sub(queued);
        let newly = h.wrapping_sub(already);
        if newly > queued {
            return Err(AckTooHigh);
        }
        self.unacked.drain(..newly as usize);
        self.ack_requested = false;
        Ok(())
    }

    pub fn enabled_element(&self, max_secs: u64) -> Element {
        let mut el = Element::new("enabled", ns::SM).with_attr("id", self.id.clone());
        if self.resumable {
            el.set_attr("resume", "true");
            el.set_attr("max", max_secs.to_string());
        }
        el
    }
}

/// A session whose connection dropped, waiting to be resumed.
pub struct Detached {
    pub jid: Jid,
    pub conn_id: u64,
    pub rx: mpsc::Receiver<Outbound>,
    pub kick: Arc<Notify>,
    pub sm: SmState,
    pub directed: Vec<Jid>,
}

impl std::fmt::Debug for Detached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detached")
            .field("jid", &self.jid)
            .field("id", &self.sm.id)
            .finish_non_exhaustive()
    }
}

/// A message that must not be lost when its session ends: re-routed to the bare JID.
fn rescuable(el: &Element) -> bool {
    el.name == "message"
        && crate::im::message::worth_storing(el)
        && !el.has_child("received", ns::CARBONS)
        && !el.has_child("sent", ns::CARBONS)
}

impl Server {
    /// Keep a dropped session for resumption; it ends for good after the timeout.
    pub(crate) fn detach(self: &Arc<Self>, d: Detached) {
        let id = d.sm.id.clone();
        tracing::info!(jid = %d.jid, "session detached, resumable");
        self.detached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), d);
        let server = Arc::clone(self);
        let wait = Duration::from_secs(self.settings.sm_resume_timeout_secs);
        let mut shutdown = self.shutdown_signal();
        self.spawn_tracked(async move {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = crate::server::stopping(&mut shutdown) => {}
            }
            let expired = server
                .detached
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            if let Some(d) = expired {
                tracing::info!(jid = %d.jid, "resumable session expired");
                server.finish_detached(d).await;
            }
        });
    }

    /// Take a detached session for `username` by stream id.
    pub(crate) fn take_detached(&self, previd: &str, username: &str) -> Option<Detached> {
        let mut map = self.detached.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(previd)?.jid.local() != Some(username) {
            return None;
        }
        map.remove(previd)
    }

    pub(crate) async fn finish_detached(self: &Arc<Self>, d: Detached) {
        self.end_session(&d.jid, d.conn_id, Some(d.rx), d.sm.unacked, &d.directed)
            .await;
    }

    /// A session is over: unregister it, rescue undelivered messages, and tell the
    /// contacts that saw it.
    pub(crate) async fn end_session(
        self: &Arc<Self>,
        jid: &Jid,
        conn_id: u64,
        rx: Option<mpsc::Receiver<Outbound>>,
        unacked: VecDeque<Element>,
        directed: &[Jid],
    ) {
        let info = self.router.unbind(jid, conn_id);
        if info.is_some() {
            self.metrics.sessions.dec();
        }
        let mut pending: Vec<Element> = unacked.into();
        if let Some(mut rx) = rx {
            rx.close();
            while let Ok(out) = rx.try_recv() {
                if let Outbound::Stanza(el) = out {
                    pending.push(*el);
                }
            }
        }
        for mut el in pending.into_iter().filter(rescuable) {
            el.set_attr("to", jid.bare().to_string());
            self.route(el).await;
        }
        if let Some(info) = info {
            self.session_ended(jid, info.available, directed).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(n: u32) -> Element {
        Element::new("message", ns::CLIENT).with_attr("id", n.to_string())
    }

    #[test]
    fn acks_drop_from_the_front() {
        let mut sm = SmState::new(true);
        for i in 0..5 {
            sm.sent(&el(i));
        }
        sm.acked(2).expect("ok");
        assert_eq!(sm.unacked.len(), 3);
        assert_eq!(sm.unacked.front().and_then(|e| e.attr("id")), Some("2"));
        sm.acked(2).expect("repeated ack is harmless");
        assert_eq!(sm.acked(9), Err(AckTooHigh));
        sm.acked(5).expect("ok");
        assert!(sm.unacked.is_empty());
    }

    #[test]
    fn counters_wrap() {
        let mut sm = SmState::new(false);
        sm.outbound = u32::MAX - 1;
        sm.sent(&el(1));
        sm.sent(&el(2));
        sm.sent(&el(3));
        assert_eq!(sm.outbound, 1);
        sm.acked(u32::MAX).expect("ok");
        assert_eq!(sm.unacked.len(), 2);
        sm.acked(1).expect("ok");
        assert!(sm.unacked.is_empty());
    }

    #[test]
    fn only_real_messages_are_rescued() {
        let body = Element::new("body", ns::CLIENT).with_text("x");
        let m = Element::new("message", ns::CLIENT).with_child(body.clone());
        assert!(rescuable(&m));
        let carbon = m.clone().with_child(Element::new("received", ns::CARBONS));
        assert!(!rescuable(&carbon));
        let presence = Element::new("presence", ns::CLIENT).with_child(body);
        assert!(!rescuable(&presence));
    }
}
