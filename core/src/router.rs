//! The live session table: who is online, on which resources, with which presence,
//! and the queue that reaches each session's connection task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use herald_translate::negotiation::random_id;
use herald_translate::{Element, Jid, StanzaError, StanzaErrorCondition, StreamError};
use tokio::sync::{mpsc, oneshot, Notify};

/// What the core hands to a session's connection task.
#[derive(Debug)]
pub enum Outbound {
    /// Boxed so a queue slot stays small: most sessions hold an almost empty queue.
    Stanza(Box<Element>),
    /// Close the stream with this error (`conflict` on replacement, `system-shutdown`).
    Close(Box<StreamError>),
    /// XEP-0198 §5: a new connection resumes this session. Close this stream with
    /// `conflict`, detach the session, then signal.
    Takeover(oneshot::Sender<()>),
}

/// One bound resource.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub jid: Jid,
    pub conn_id: u64,
    pub tx: mpsc::Sender<Outbound>,
    /// Sent available presence (RFC 6121 "available resource").
    pub available: bool,
    pub priority: i8,
    /// The last available presence broadcast, answered to probes.
    pub presence: Option<Element>,
    /// XEP-0280 carbons enabled.
    pub carbons: bool,
    /// Requested the roster (RFC 6121 "interested resource": gets pushes).
    pub interested: bool,
    /// Wakes the session's task when its queue overflowed: it closes the stream.
    pub kick: Arc<Notify>,
    /// XEP-0198 stream id while the session is resumable.
    pub sm_id: Option<String>,
}

impl SessionInfo {
    /// Queue a stanza; false when the session is gone or its queue is full.
    pub fn send(&self, el: Element) -> bool {
        match self.tx.try_send(Outbound::Stanza(Box::new(el))) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.kick.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// Why a bind was refused.
#[derive(Debug)]
pub enum BindRefused {
    TooManySessions,
}

impl From<BindRefused> for StanzaError {
    fn from(_: BindRefused) -> Self {
        Self::new(StanzaErrorCondition::ResourceConstraint)
            .with_text("too many sessions for this account")
    }
}

#[derive(Debug, Default)]
pub struct Router {
    users: RwLock<HashMap<String, Vec<SessionInfo>>>,
    next_conn: AtomicU64,
}

impl Router {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Bind a resource for `bare`. A missing resource gets a random one; a resource in
    /// use is taken over (RFC 6120 §7.7.2.2, policy "new session replaces old"): the old
    /// session is returned so the caller can close it with `conflict`.
    pub fn bind(
        &self,
        bare: &Jid,
        resource: Option<String>,
        conn_id: u64,
        tx: mpsc::Sender<Outbound>,
        kick: Arc<Notify>,
        max_sessions: usize,
    ) -> Result<(Jid, Option<SessionInfo>), BindRefused> {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        let list = users.entry(bare.to_string()).or_default();
        let resource = resource.unwrap_or_else(|| format!("herald-{}", &random_id()[..12]));
        let jid = bare
            .with_resource(&resource)
            .map_err(|_| BindRefused::TooManySessions)?;
        let replaced = list
            .iter()
            .position(|s| s.jid == jid)
            .map(|i| list.remove(i));
        if replaced.is_none() && list.len() >= max_sessions {
            if list.is_empty() {
                users.remove(&bare.to_string());
            }
            return Err(BindRefused::TooManySessions);
        }
        list.push(SessionInfo {
            jid: jid.clone(),
            conn_id,
            tx,
            available: false,
            priority: 0,
            presence: None,
            carbons: false,
            interested: false,
            kick,
            sm_id: None,
        });
        Ok((jid, replaced))
    }

    /// Remove the session if it is still the one registered by `conn_id`.
    pub fn unbind(&self, jid: &Jid, conn_id: u64) -> Option<SessionInfo> {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        let key = jid.bare().to_string();
        let list = users.get_mut(&key)?;
        let idx = list
            .iter()
            .position(|s| s.jid == *jid && s.conn_id == conn_id)?;
        let info = list.remove(idx);
        if list.is_empty() {
            users.remove(&key);
        }
        Some(info)
    }

    /// Every session of a user.
    pub fn sessions(&self, bare: &Jid) -> Vec<SessionInfo> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users
            .get(&bare.bare().to_string())
            .cloned()
            .unwrap_or_default()
    }

    /// The session bound to a full JID.
    pub fn session(&self, full: &Jid) -> Option<SessionInfo> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users
            .get(&full.bare().to_string())?
            .iter()
            .find(|s| s.jid == *full)
            .cloned()
    }

    /// Change a session's record; false if it is no longer registered.
    pub fn update(&self, full: &Jid, conn_id: u64, f: impl FnOnce(&mut SessionInfo)) -> bool {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        let Some(s) = users.get_mut(&full.bare().to_string()).and_then(|l| {
            l.iter_mut()
                .find(|s| s.jid == *full && s.conn_id == conn_id)
        }) else {
            return false;
        };
        f(s);
        true
    }

    /// The live session of `bare` whose resumable stream has id `sm_id`.
    pub fn by_sm_id(&self, bare: &Jid, sm_id: &str) -> Option<SessionInfo> {
        self.sessions(bare)
            .into_iter()
            .find(|s| s.sm_id.as_deref() == Some(sm_id))
    }

    pub fn session_count(&self) -> usize {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare() -> Jid {
        Jid::parse("alice@localhost").expect("jid")
    }

    #[test]
    fn same_resource_replaces_the_old_session() {
        let r = Router::new();
        let (tx1, _rx1) = mpsc::channel(4);
        let (tx2, _rx2) = mpsc::channel(4);
        let (j1, old) = r
            .bind(&bare(), Some("phone".into()), 1, tx1, Arc::default(), 5)
            .expect("bind");
        assert!(old.is_none());
        let (j2, old) = r
            .bind(&bare(), Some("phone".into()), 2, tx2, Arc::default(), 5)
            .expect("bind");
        assert_eq!(j1, j2);
        assert_eq!(old.map(|s| s.conn_id), Some(1));
        // The replaced connection's cleanup must not remove the new session.
        assert!(r.unbind(&j1, 1).is_none());
        assert_eq!(r.session_count(), 1);
        assert!(r.unbind(&j2, 2).is_some());
        assert_eq!(r.session_count(), 0);
    }

    #[test]
    fn session_cap_refuses_new_resources() {
        let r = Router::new();
        for i in 0..2 {
            let (tx, _rx) = mpsc::channel(4);
            r.bind(&bare(), None, i, tx, Arc::default(), 2)
                .expect("bind");
        }
        let (tx, _rx) = mpsc::channel(4);
        assert!(matches!(
            r.bind(&bare(), None, 9, tx, Arc::default(), 2),
            Err(BindRefused::TooManySessions)
        ));
    }

    #[test]
    fn generated_resources_are_distinct() {
        let r = Router::new();
        let (tx, _rx) = mpsc::channel(4);
        let (a, _) = r
            .bind(&bare(), None, 1, tx.clone(), Arc::default(), 5)
            .expect("bind");
        let (b, _) = r
            .bind(&bare(), None, 2, tx, Arc::default(), 5)
            .expect("bind");
        assert_ne!(a, b);
    }
}
