//! XEP-0198 stream management: stanza counters, the queue of unacknowledged stanzas, and
//! sessions kept detached for resumption. When a detached session expires, every message
//! the client never acknowledged goes to the user's other sessions or to offline
//! storage: nothing acknowledged to a sender is dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use herald_translate::{ns, Element, Jid};

use crate::router::{approx_size, SessionHandle, SessionQueue};

/// Counters and unacknowledged stanzas of one managed stream.
#[derive(Debug)]
pub struct SmState {
    pub id: String,
    pub resumable: bool,
    /// Stanzas handled from the client (its `h`).
    pub inbound: u32,
    /// Stanzas sent to the client.
    pub outbound: u32,
    unacked: VecDeque<(Arc<Element>, usize)>,
    unacked_bytes: usize,
    /// An `<r/>` is outstanding.
    pub ack_requested: bool,
}

/// The client acknowledged more stanzas than were sent.
#[derive(Debug, PartialEq, Eq)]
pub struct AckTooHigh;

impl SmState {
    pub fn new(id: String, resumable: bool) -> Self {
        Self {
            id,
            resumable,
            inbound: 0,
            outbound: 0,
            unacked: VecDeque::new(),
            unacked_bytes: 0,
            ack_requested: false,
        }
    }

    pub fn sent(&mut self, el: Arc<Element>) {
        self.outbound = self.outbound.wrapping_add(1);
        let size = approx_size(&el);
        self.unacked_bytes += size;
        self.unacked.push_back((el, size));
    }

    pub fn received(&mut self) {
        self.inbound = self.inbound.wrapping_add(1);
    }

    /// Stanzas sent and not yet acknowledged.
    pub fn unacked_len(&self) -> usize {
        self.unacked.len()
    }

    /// Their approximate size in bytes.
    pub fn unacked_bytes(&self) -> usize {
        self.unacked_bytes
    }

    pub fn unacked(&self) -> impl Iterator<Item = &Element> {
        self.unacked.iter().map(|(el, _)| &**el)
    }

    /// The unacknowledged stanzas, shared.
    pub fn unacked_shared(&self) -> impl Iterator<Item = Arc<Element>> + '_ {
        self.unacked.iter().map(|(el, _)| Arc::clone(el))
    }

    pub fn into_unacked(self) -> Vec<Arc<Element>> {
        self.unacked.into_iter().map(|(el, _)| el).collect()
    }

    /// The client's `h`: drop what it has acknowledged (counters wrap at 2^32).
    pub fn acked(&mut self, h: u32) -> Result<(), AckTooHigh> {
        let queued = u32::try_from(self.unacked.len()).unwrap_or(u32::MAX);
        let already = self.outbound.wrapping_sub(queued);
        let newly = h.wrapping_sub(already);
        if newly > queued {
            return Err(AckTooHigh);
        }
        for (_, size) in self.unacked.drain(..newly as usize) {
            self.unacked_bytes -= size;
        }
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
    pub handle: Arc<SessionHandle>,
    pub queue: SessionQueue,
    pub sm: SmState,
    pub directed: Vec<Jid>,
}

impl std::fmt::Debug for Detached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detached")
            .field("jid", &self.handle.jid)
            .field("id", &self.sm.id)
            .finish_non_exhaustive()
    }
}

/// Detached sessions by stream id.
#[derive(Debug, Default)]
pub(crate) struct DetachedSessions {
    map: Mutex<HashMap<String, Detached>>,
}

impl DetachedSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Detached>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn insert(&self, d: Detached) {
        self.lock().insert(d.sm.id.clone(), d);
    }

    /// Take the detached session with stream id `previd`, if it belongs to `user`
    /// (a bare JID).
    pub(crate) fn take_for(&self, previd: &str, user: &Jid) -> Option<Detached> {
        let mut map = self.lock();
        if map.get(previd)?.handle.jid.bare() != *user {
            return None;
        }
        map.remove(previd)
    }

    /// Take every detached session of `user` (a bare JID): the account is going.
    pub(crate) fn take_user(&self, user: &Jid) -> Vec<Detached> {
        let mut map = self.lock();
        let ids: Vec<String> = map
            .iter()
            .filter(|(_, d)| d.handle.jid.bare() == *user)
            .map(|(id, _)| id.clone())
            .collect();
        ids.iter().filter_map(|id| map.remove(id)).collect()
    }

    /// Whether the session with stream id `id` is detached (admin listings).
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    /// How many sessions wait to be resumed.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Take it whoever it belongs to (expiry).
    pub(crate) fn take(&self, previd: &str) -> Option<Detached> {
        self.lock().remove(previd)
    }
}

/// A message that must not be lost when its session ends: re-routed to the bare JID.
pub(crate) fn rescuable(el: &Element) -> bool {
    el.name == "message" && super::messages::storable(&herald_rules::MessageFacts::of(el))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(n: u32) -> Arc<Element> {
        Arc::new(Element::new("message", ns::CLIENT).with_attr("id", n.to_string()))
    }

    #[test]
    fn acks_drop_from_the_front() {
        let mut sm = SmState::new("x".into(), true);
        for i in 0..5 {
            sm.sent(el(i));
        }
        let per = sm.unacked_bytes() / 5;
        sm.acked(2).expect("ok");
        assert_eq!(sm.unacked_len(), 3);
        assert_eq!(sm.unacked_bytes(), 3 * per);
        assert_eq!(sm.unacked().next().and_then(|e| e.attr("id")), Some("2"));
        sm.acked(2).expect("repeated ack is harmless");
        assert_eq!(sm.acked(9), Err(AckTooHigh));
        sm.acked(5).expect("ok");
        assert_eq!(sm.unacked_len(), 0);
        assert_eq!(sm.unacked_bytes(), 0);
    }

    #[test]
    fn counters_wrap() {
        let mut sm = SmState::new("x".into(), false);
        sm.outbound = u32::MAX - 1;
        sm.sent(el(1));
        sm.sent(el(2));
        sm.sent(el(3));
        assert_eq!(sm.outbound, 1);
        sm.acked(u32::MAX).expect("ok");
        assert_eq!(sm.unacked_len(), 2);
        sm.acked(1).expect("ok");
        assert_eq!(sm.unacked_len(), 0);
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
