//! The live session table: who is online, on which resources, with which presence, and
//! the queue that reaches each session's connection task.
//!
//! Reads dominate (every message looks up its recipient's sessions), so each user's
//! sessions are an immutable snapshot, `Arc<[SessionView]>`: a lookup is one reference
//! count under a read lock, and the few writes (bind, presence, unbind) replace the
//! snapshot. Presence elements inside are shared, never copied.
//!
//! Each session's queue is bounded twice: by count (`send_queue`) and by bytes
//! (`send_queue_bytes`). A sender that finds it full marks the session overflowed and
//! wakes it; the session closes its stream (what it held is rescued when it ends).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use herald_translate::negotiation::random_id;
use herald_translate::{Element, Jid, Node, StanzaError, StanzaErrorCondition, StreamError};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::bare_map::BareMap;

/// What the core hands to a session's connection task.
#[derive(Debug)]
pub enum Outbound {
    /// A stanza, shared with the other sessions it went to, and the bytes it was
    /// counted for in the queue's byte budget.
    Stanza { el: Arc<Element>, size: u32 },
    /// Close the stream with this error (`conflict` on replacement, `not-authorized`).
    Close(Box<StreamError>),
    /// XEP-0198 §5: a new connection resumes this session. Close this stream with
    /// `conflict`, detach the session, then signal.
    Takeover(oneshot::Sender<()>),
}

/// How big one session's queue may grow.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    pub stanzas: usize,
    pub bytes: usize,
}

/// Shared between a session's task and everyone who queues for it.
#[derive(Debug, Default)]
struct Signal {
    kick: Notify,
    overflowed: AtomicBool,
    queued_bytes: AtomicUsize,
}

/// Where the connection that bound a session came from (admin listings). A resumed
/// session keeps what its first connection had.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnInfo {
    pub ip: Option<IpAddr>,
    /// XEP-0368 direct TLS rather than STARTTLS.
    pub direct_tls: bool,
    /// When the resource was bound, milliseconds since the Unix epoch.
    pub since_unix_ms: i64,
    /// A gateway session (a user's SIP side) reads no presence stanzas: its watchers
    /// learn its contacts' presence from the presence service, so presence is not
    /// queued for it (each would only wake it to be dropped).
    pub no_presence: bool,
}

/// One bound resource: its address and the sending side of its queue. Never changes
/// while the session lives.
#[derive(Debug)]
pub struct SessionHandle {
    pub jid: Jid,
    pub conn_id: u64,
    pub info: ConnInfo,
    tx: mpsc::Sender<Outbound>,
    signal: Arc<Signal>,
    max_bytes: usize,
}

impl SessionHandle {
    /// Queue a stanza of (approximately) `size` bytes; false when the session is gone
    /// or its queue is full (it is then told to close).
    pub fn send(&self, el: Arc<Element>, size: usize) -> bool {
        let queued = self.signal.queued_bytes.load(Ordering::Acquire);
        if queued > 0 && queued.saturating_add(size) > self.max_bytes {
            self.overflow();
            return false;
        }
        let size32 = u32::try_from(size).unwrap_or(u32::MAX);
        self.signal
            .queued_bytes
            .fetch_add(size32 as usize, Ordering::AcqRel);
        match self.tx.try_send(Outbound::Stanza { el, size: size32 }) {
            Ok(()) => true,
            Err(e) => {
                self.signal
                    .queued_bytes
                    .fetch_sub(size32 as usize, Ordering::AcqRel);
                if matches!(e, mpsc::error::TrySendError::Full(_)) {
                    self.overflow();
                }
                false
            }
        }
    }

    /// Ask the session to close its stream with `err`.
    pub fn close(&self, err: StreamError) {
        let _ = self.tx.try_send(Outbound::Close(Box::new(err)));
        self.signal.kick.notify_one();
    }

    /// XEP-0198 §5: ask the live session to detach; resolves once it has.
    pub async fn take_over(&self) -> Option<()> {
        let (done_tx, done_rx) = oneshot::channel();
        self.tx.send(Outbound::Takeover(done_tx)).await.ok()?;
        done_rx.await.ok()
    }

    fn overflow(&self) {
        self.signal.overflowed.store(true, Ordering::Release);
        self.signal.kick.notify_one();
    }
}

/// A session as routing sees it: its handle and its presence state.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub handle: Arc<SessionHandle>,
    /// Sent available presence (RFC 6121 "available resource").
    pub available: bool,
    pub priority: i8,
    /// The last available presence broadcast, answered to probes.
    pub presence: Option<Arc<Element>>,
    /// XEP-0280 carbons enabled.
    pub carbons: bool,
    /// Requested the roster (RFC 6121 "interested resource": gets pushes).
    pub interested: bool,
    /// XEP-0198 stream id while the session is resumable.
    pub sm_id: Option<Arc<str>>,
}

impl std::ops::Deref for SessionView {
    type Target = SessionHandle;

    fn deref(&self) -> &SessionHandle {
        &self.handle
    }
}

/// A user's sessions at one moment.
pub type Sessions = Arc<[SessionView]>;

/// The receiving side of a session's queue, owned by its connection task.
#[derive(Debug)]
pub struct SessionQueue {
    rx: mpsc::Receiver<Outbound>,
    signal: Arc<Signal>,
    max_bytes: usize,
}

impl SessionQueue {
    /// Half full, by count or by bytes. The session then stops taking input from its
    /// client until it has written what it owes: a client that sends faster than it
    /// reads the answers (bounces, IQ results) is slowed down, not disconnected.
    pub fn backlogged(&self) -> bool {
        self.rx.len() * 2 >= self.rx.max_capacity()
            || self.signal.queued_bytes.load(Ordering::Acquire) * 2 >= self.max_bytes
    }

    pub async fn recv(&mut self) -> Option<Outbound> {
        let out = self.rx.recv().await;
        self.took(out.as_ref());
        out
    }

    pub fn try_recv(&mut self) -> Option<Outbound> {
        let out = self.rx.try_recv().ok();
        self.took(out.as_ref());
        out
    }

    fn took(&self, out: Option<&Outbound>) {
        if let Some(Outbound::Stanza { size, .. }) = out {
            self.signal
                .queued_bytes
                .fetch_sub(*size as usize, Ordering::AcqRel);
        }
    }

    /// The session's wake-up signal, to wait on while the queue itself is borrowed.
    pub fn kick(&self) -> Kick {
        Kick(Arc::clone(&self.signal))
    }

    /// A sender found the queue full: the client is not keeping up.
    pub fn overflowed(&self) -> bool {
        self.signal.overflowed.load(Ordering::Acquire)
    }

    /// Stop accepting and return the stanzas still queued.
    pub fn close_and_drain(mut self) -> Vec<Arc<Element>> {
        self.rx.close();
        let mut left = Vec::new();
        while let Some(out) = self.try_recv() {
            if let Outbound::Stanza { el, .. } = out {
                left.push(el);
            }
        }
        left
    }
}

/// The wake-up signal of a session's queue.
#[derive(Debug, Clone)]
pub struct Kick(Arc<Signal>);

impl Kick {
    /// Resolves when someone kicked the session: its queue overflowed, or a close or
    /// takeover was queued.
    pub async fn kicked(&self) {
        self.0.kick.notified().await;
    }

    /// A sender found the queue full: the client is not keeping up.
    pub fn overflowed(&self) -> bool {
        self.0.overflowed.load(Ordering::Acquire)
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

/// A new binding: the session's handle and queue, and the session it replaced.
#[derive(Debug)]
pub struct Bound {
    pub handle: Arc<SessionHandle>,
    pub queue: SessionQueue,
    pub replaced: Option<Arc<SessionHandle>>,
}

#[derive(Debug)]
pub struct Router {
    users: RwLock<BareMap<Sessions>>,
    next_conn: AtomicU64,
    sessions: AtomicUsize,
    empty: Sessions,
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

impl Router {
    pub fn new() -> Self {
        Self {
            users: RwLock::new(BareMap::default()),
            next_conn: AtomicU64::new(0),
            sessions: AtomicUsize::new(0),
            empty: Arc::from(Vec::new()),
        }
    }

    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BareMap<Sessions>> {
        self.users.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BareMap<Sessions>> {
        self.users.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Bind a resource for `bare`. A missing resource gets a random one; a resource in
    /// use is taken over (RFC 6120 §7.7.2.2, policy "new session replaces old"): the old
    /// session is returned so the caller can close it with `conflict`.
    pub fn bind(
        &self,
        bare: &Jid,
        resource: Option<String>,
        conn_id: u64,
        info: ConnInfo,
        limits: QueueLimits,
        max_sessions: usize,
    ) -> Result<Bound, BindRefused> {
        let resource = resource.unwrap_or_else(|| format!("herald-{}", &random_id()[..12]));
        let jid = bare
            .with_resource(&resource)
            .map_err(|_| BindRefused::TooManySessions)?;
        let mut users = self.write();
        let current = users
            .get(bare)
            .cloned()
            .unwrap_or_else(|| self.empty.clone());
        let mut list: Vec<SessionView> = current.iter().cloned().collect();
        let replaced = list
            .iter()
            .position(|s| s.jid == jid)
            .map(|i| list.remove(i).handle);
        if replaced.is_none() && list.len() >= max_sessions {
            return Err(BindRefused::TooManySessions);
        }
        let (tx, rx) = mpsc::channel(limits.stanzas.max(1));
        let signal = Arc::new(Signal::default());
        let handle = Arc::new(SessionHandle {
            jid,
            conn_id,
            info,
            tx,
            signal: Arc::clone(&signal),
            max_bytes: limits.bytes,
        });
        list.push(SessionView {
            handle: Arc::clone(&handle),
            available: false,
            priority: 0,
            presence: None,
            carbons: false,
            interested: false,
            sm_id: None,
        });
        users.insert(bare, Arc::from(list));
        if replaced.is_none() {
            self.sessions.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Bound {
            handle,
            queue: SessionQueue {
                rx,
                signal,
                max_bytes: limits.bytes,
            },
            replaced,
        })
    }

    /// Remove the session if it is still the one registered by `conn_id`.
    pub fn unbind(&self, jid: &Jid, conn_id: u64) -> Option<SessionView> {
        let mut users = self.write();
        let current = users.get(jid)?;
        let idx = current
            .iter()
            .position(|s| s.jid == *jid && s.conn_id == conn_id)?;
        let mut list: Vec<SessionView> = current.iter().cloned().collect();
        let gone = list.remove(idx);
        if list.is_empty() {
            users.remove(jid);
        } else {
            users.insert(jid, Arc::from(list));
        }
        self.sessions.fetch_sub(1, Ordering::Relaxed);
        Some(gone)
    }

    /// Every session of a user: a snapshot, cheap to take.
    pub fn sessions(&self, user: &Jid) -> Sessions {
        self.read()
            .get(user)
            .cloned()
            .unwrap_or_else(|| self.empty.clone())
    }

    /// Whether the user has any session.
    pub fn is_online(&self, user: &Jid) -> bool {
        self.read().get(user).is_some()
    }

    /// The session bound to a full JID.
    pub fn session(&self, full: &Jid) -> Option<SessionView> {
        self.read()
            .get(full)?
            .iter()
            .find(|s| s.jid == *full)
            .cloned()
    }

    /// Change a session's record; false if it is no longer registered.
    pub fn update(&self, full: &Jid, conn_id: u64, f: impl FnOnce(&mut SessionView)) -> bool {
        let mut users = self.write();
        let Some(current) = users.get(full) else {
            return false;
        };
        let Some(idx) = current
            .iter()
            .position(|s| s.jid == *full && s.conn_id == conn_id)
        else {
            return false;
        };
        let mut list: Vec<SessionView> = current.iter().cloned().collect();
        f(&mut list[idx]);
        users.insert(full, Arc::from(list));
        true
    }

    /// The live session of `bare` whose resumable stream has id `sm_id`.
    pub fn by_sm_id(&self, bare: &Jid, sm_id: &str) -> Option<SessionView> {
        self.sessions(bare)
            .iter()
            .find(|s| s.sm_id.as_deref() == Some(sm_id))
            .cloned()
    }

    pub fn session_count(&self) -> usize {
        self.sessions.load(Ordering::Relaxed)
    }

    /// Every session of every user (admin and shutdown paths only).
    pub fn all_sessions(&self) -> Vec<SessionView> {
        self.read()
            .values()
            .flat_map(|l| l.iter().cloned())
            .collect()
    }
}

/// Approximately how many bytes `el` takes when written: what a queue's byte budget
/// counts. Cheaper than serializing, and within a few percent for stanzas.
pub fn approx_size(el: &Element) -> usize {
    let mut n = 2 * el.name.len() + 5;
    for (k, v) in &el.attrs {
        n += k.len() + v.len() + 4;
    }
    for child in &el.children {
        n += match child {
            Node::Element(e) => approx_size(e),
            Node::Text(t) => t.len(),
        };
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_translate::ns;

    fn bare() -> Jid {
        Jid::parse("alice@localhost").expect("jid")
    }

    const LIMITS: QueueLimits = QueueLimits {
        stanzas: 4,
        bytes: 1000,
    };

    #[test]
    fn same_resource_replaces_the_old_session() {
        let r = Router::new();
        let a = r
            .bind(
                &bare(),
                Some("phone".into()),
                1,
                ConnInfo::default(),
                LIMITS,
                5,
            )
            .expect("bind");
        assert!(a.replaced.is_none());
        let b = r
            .bind(
                &bare(),
                Some("phone".into()),
                2,
                ConnInfo::default(),
                LIMITS,
                5,
            )
            .expect("bind");
        assert_eq!(a.handle.jid, b.handle.jid);
        assert_eq!(b.replaced.map(|s| s.conn_id), Some(1));
        // The replaced connection's cleanup must not remove the new session.
        assert!(r.unbind(&a.handle.jid, 1).is_none());
        assert_eq!(r.session_count(), 1);
        assert!(r.unbind(&b.handle.jid, 2).is_some());
        assert_eq!(r.session_count(), 0);
        assert!(!r.is_online(&bare()));
    }

    #[test]
    fn session_cap_refuses_new_resources() {
        let r = Router::new();
        for i in 0..2 {
            r.bind(&bare(), None, i, ConnInfo::default(), LIMITS, 2)
                .expect("bind");
        }
        assert!(matches!(
            r.bind(&bare(), None, 9, ConnInfo::default(), LIMITS, 2),
            Err(BindRefused::TooManySessions)
        ));
        assert_eq!(r.session_count(), 2);
    }

    #[test]
    fn snapshots_do_not_change_under_the_reader() {
        let r = Router::new();
        let a = r
            .bind(&bare(), None, 1, ConnInfo::default(), LIMITS, 5)
            .expect("bind");
        let before = r.sessions(&bare());
        let p = Arc::new(Element::new("presence", ns::CLIENT));
        assert!(r.update(&a.handle.jid, 1, |s| {
            s.available = true;
            s.presence = Some(Arc::clone(&p));
        }));
        assert!(!before[0].available);
        let after = r.sessions(&a.handle.jid);
        assert!(after[0].available);
        assert!(Arc::ptr_eq(
            after[0].presence.as_ref().expect("presence"),
            &p
        ));
        assert!(!r.update(&a.handle.jid, 99, |s| s.available = false));
    }

    #[test]
    fn queues_are_bounded_by_count_and_by_bytes() {
        let r = Router::new();
        let mut b = r
            .bind(&bare(), None, 1, ConnInfo::default(), LIMITS, 5)
            .expect("bind");
        let el = Arc::new(Element::new("message", ns::CLIENT));
        // One stanza always fits, however big: a queue of one is never stuck.
        assert!(!b.queue.backlogged());
        assert!(b.handle.send(Arc::clone(&el), 5000));
        assert!(b.queue.backlogged(), "over half the bytes");
        assert!(!b.queue.overflowed());
        assert!(!b.handle.send(Arc::clone(&el), 10), "over the byte budget");
        assert!(b.queue.overflowed());
        let b2 = r
            .bind(&bare(), None, 2, ConnInfo::default(), LIMITS, 5)
            .expect("bind");
        for i in 0..4 {
            assert_eq!(b2.queue.backlogged(), i >= 2, "half of 4 stanzas");
            assert!(b2.handle.send(Arc::clone(&el), 10));
        }
        assert!(!b2.handle.send(Arc::clone(&el), 10), "over the count");
        assert!(b2.queue.overflowed());
        // Taking a stanza gives its bytes back.
        assert!(matches!(
            b.queue.try_recv(),
            Some(Outbound::Stanza { size: 5000, .. })
        ));
        let r2 = Router::new();
        let mut c = r2
            .bind(&bare(), None, 3, ConnInfo::default(), LIMITS, 5)
            .expect("bind");
        assert!(c.handle.send(Arc::clone(&el), 600));
        assert!(!c.handle.send(Arc::clone(&el), 600));
        c.queue.try_recv();
        assert!(c.handle.send(Arc::clone(&el), 600));
        assert_eq!(c.queue.close_and_drain().len(), 1);
        assert!(!c.handle.send(el, 1), "closed");
    }

    #[test]
    fn approx_size_tracks_the_serialized_size() {
        let el = Element::new("message", ns::CLIENT)
            .with_attr("to", "bob@localhost")
            .with_attr("type", "chat")
            .with_child(Element::new("body", ns::CLIENT).with_text("x".repeat(500)));
        let real = el.to_xml(ns::CLIENT).expect("serializable").len();
        let approx = approx_size(&el);
        assert!(
            approx * 10 >= real * 9 && approx * 10 <= real * 11,
            "{approx} vs {real}"
        );
    }
}
