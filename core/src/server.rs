//! The core service: shared state every session and the federation front reach.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use herald_translate::negotiation::NegotiationConfig;
use herald_translate::{Element, Jid};
use tokio::sync::watch;

use crate::c2s::sm::Detached;
use crate::error::CoreError;
use crate::federation::{Federation, NoFederation};
use crate::metrics::Metrics;
use crate::router::Router;
use crate::settings::C2sSettings;
use crate::store::{Store, StoreError};

/// Number of stripes of the per-user roster lock.
const ROSTER_LOCK_STRIPES: usize = 64;

/// What a [`Server`] is built from.
pub struct ServerParts {
    /// Hosted domains, normalized; the first is the default.
    pub domains: Vec<String>,
    pub settings: C2sSettings,
    pub store: Arc<dyn Store>,
    /// TLS for STARTTLS on the c2s port.
    pub tls: Arc<rustls::ServerConfig>,
    /// TLS for XEP-0368 direct TLS (ALPN `xmpp-client`).
    pub tls_direct: Arc<rustls::ServerConfig>,
}

/// The running core.
pub struct Server {
    pub domains: Vec<String>,
    pub settings: C2sSettings,
    pub store: Arc<dyn Store>,
    pub router: Router,
    pub metrics: Metrics,
    federation: RwLock<Arc<dyn Federation>>,
    pub(crate) negotiation: Arc<NegotiationConfig>,
    pub(crate) tls: Arc<rustls::ServerConfig>,
    pub(crate) tls_direct: Arc<rustls::ServerConfig>,
    shutdown: watch::Sender<bool>,
    /// XEP-0198 sessions waiting to be resumed, by stream id.
    pub(crate) detached: Mutex<HashMap<String, Detached>>,
    /// Block lists of users seen recently (XEP-0191), invalidated on change.
    blocklists: RwLock<HashMap<String, Arc<Vec<String>>>>,
    /// Background tasks that may still write (expiring detached sessions).
    background: AtomicUsize,
    /// Striped per-user locks serializing roster read-modify-write sequences.
    roster_locks: Box<[tokio::sync::Mutex<()>]>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("domains", &self.domains)
            .finish_non_exhaustive()
    }
}

impl Server {
    pub fn new(parts: ServerParts) -> Arc<Self> {
        let s = &parts.settings;
        let negotiation = Arc::new(NegotiationConfig {
            domains: parts.domains.clone(),
            allow_plain: s.allow_plain,
            stream_management: s.sm_resume_timeout_secs > 0,
            negotiation_timeout: Duration::from_secs(s.negotiation_timeout_secs),
            auth_failure_delay: Duration::from_millis(s.auth_failure_delay_ms),
            max_auth_attempts: s.max_auth_attempts,
        });
        let (shutdown, _) = watch::channel(false);
        let server = Arc::new(Self {
            domains: parts.domains,
            settings: parts.settings,
            store: parts.store,
            router: Router::new(),
            metrics: Metrics::new(),
            federation: RwLock::new(Arc::new(NoFederation)),
            negotiation,
            tls: parts.tls,
            tls_direct: parts.tls_direct,
            shutdown,
            detached: Mutex::new(HashMap::new()),
            blocklists: RwLock::new(HashMap::new()),
            background: AtomicUsize::new(0),
            roster_locks: (0..ROSTER_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        });
        if let Ok(n) = server.store.offline_total() {
            server
                .metrics
                .offline_queue
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        server
    }

    /// Plug in the federation front (the edge).
    pub fn set_federation(&self, federation: Arc<dyn Federation>) {
        *self.federation.write().unwrap_or_else(|e| e.into_inner()) = federation;
    }

    pub(crate) fn federation(&self) -> Arc<dyn Federation> {
        self.federation
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn default_domain(&self) -> &str {
        self.domains
            .first()
            .map(String::as_str)
            .unwrap_or("localhost")
    }

    pub fn is_local_domain(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| d == domain)
    }

    /// Ask every session to close with `system-shutdown` and stop accepting.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Connections plus background tasks that may still write to storage; a clean
    /// shutdown waits for this to reach zero.
    pub fn busy(&self) -> usize {
        usize::try_from(self.metrics.connections.get()).unwrap_or(0)
            + self.background.load(Ordering::SeqCst)
    }

    /// Run `fut` as tracked background work (see [`Server::busy`]).
    pub(crate) fn spawn_tracked<F>(self: &Arc<Self>, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.background.fetch_add(1, Ordering::SeqCst);
        let server = Arc::clone(self);
        tokio::spawn(async move {
            fut.await;
            server.background.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// Run a storage call on the blocking pool.
    pub async fn db<T, F>(&self, f: F) -> Result<T, CoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(&*store))
            .await
            .map_err(|e| CoreError::Task(e.to_string()))?
            .map_err(CoreError::from)
    }

    /// Serialize changes to `user`'s roster. Hold it only around storage work: never
    /// while routing (routing may need another user's stripe).
    pub(crate) async fn roster_lock(&self, user: &Jid) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        user.bare().hash(&mut h);
        let stripe = usize::try_from(h.finish()).unwrap_or(0) % self.roster_locks.len();
        self.roster_locks[stripe].lock().await
    }

    /// A user's block list (cached).
    pub async fn blocklist(&self, user: &Jid) -> Arc<Vec<String>> {
        let key = user.bare().to_string();
        if let Some(l) = self
            .blocklists
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Arc::clone(l);
        }
        let username = user.local().unwrap_or_default().to_string();
        let list = Arc::new(
            self.db(move |s| s.blocklist(&username))
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "block list unavailable");
                    Vec::new()
                }),
        );
        let mut cache = self.blocklists.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&list));
        list
    }

    pub(crate) fn forget_blocklist(&self, user: &Jid) {
        self.blocklists
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&user.bare().to_string());
    }

    /// Whether `user` (local) has blocked `addr`.
    pub async fn has_blocked(&self, user: &Jid, addr: &Jid) -> bool {
        let list = self.blocklist(user).await;
        !list.is_empty() && herald_rules::blocks(&list, addr).is_some()
    }

    /// Whether the local account exists (online sessions answer without the database).
    pub async fn user_exists(&self, user: &Jid) -> bool {
        let Some(local) = user.local() else {
            return false;
        };
        if !self.is_local_domain(user.domain()) {
            return false;
        }
        if !self.router.sessions(user).is_empty() {
            return true;
        }
        let local = local.to_string();
        self.db(move |s| s.user_exists(&local))
            .await
            .unwrap_or(false)
    }

    /// The server's own JID for a domain, as a string.
    pub fn domain_of(&self, jid: &Jid) -> String {
        if self.is_local_domain(jid.domain()) {
            jid.domain().to_string()
        } else {
            self.default_domain().to_string()
        }
    }

    /// Record an outbound stanza for metrics.
    pub(crate) fn count_out(&self, el: &Element) {
        if let Some(k) = herald_translate::StanzaKind::of(el) {
            self.metrics.stanza_out(k.name());
        }
    }
}

/// Resolves once shutdown has been requested, at once if it already was.
pub async fn stopping(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await.map(|_| ());
}
