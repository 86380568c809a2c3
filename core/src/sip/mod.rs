//! The SIP service of the core (issue 9): a registrar, a SIMPLE presence agent and a
//! pager for SIP user agents, over the same accounts, rosters and presentities as
//! XMPP.
//!
//! Layers, bottom up:
//! - `transport.rs`: UDP sockets, TCP and TLS connections (framing, limits, reuse);
//! - `endpoint.rs`: the task that drives `herald_translate`'s sans-IO transaction table;
//! - `service.rs`: the transaction user, which hands each method to
//!   `registrar.rs` (REGISTER, with `bindings.rs`), `presence.rs` (PUBLISH, SUBSCRIBE,
//!   NOTIFY) or `message.rs` (MESSAGE), all authenticated by `auth.rs`;
//! - `gateway.rs`: a SIP user's devices as one session of the core (`user@domain/sip`),
//!   so routing, offline storage and presence broadcast treat them like XMPP clients.

mod auth;
pub mod bindings;
mod credential_cache;
mod endpoint;
mod gateway;
mod message;
mod presence;
mod registrar;
mod service;
pub mod settings;
mod target;
mod transport;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_translate::sip::transaction::{Remote, TableConfig, Transport};
use herald_translate::sip::Message;
use herald_translate::{ns, Element, Envelope, Jid};
use rand::RngCore;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use settings::SipSettings;

use crate::ctx::ChangeListener;
use crate::error::CoreError;
use crate::server::Server;
use service::{SipService, TuHandle};
use transport::{TransportLimits, Transports};

/// What the SIP service is built from besides the server.
pub struct SipParts {
    pub settings: SipSettings,
    /// TLS for the `listen_tls` ports.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Keys the digest nonces (keep it across restarts: nonces stay valid).
    pub nonce_secret: [u8; 32],
}

/// The addresses actually bound.
#[derive(Debug, Clone, Default)]
pub struct SipListeners {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    pub tls: Vec<SocketAddr>,
    /// The digest realm.
    pub realm: String,
}

/// The longest the expiry of a subscription or publication waits to be noticed.
const EXPIRY_TICK: Duration = Duration::from_secs(1);

/// How often expired registrations are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(15);

/// Bind every configured SIP listener and start the service. The task ends at shutdown.
pub async fn serve(
    server: Arc<Server>,
    parts: SipParts,
) -> Result<(SipListeners, JoinHandle<()>), CoreError> {
    let settings = parts.settings;
    let realm = settings.realm_or(server.default_domain()).to_owned();
    let mut bound = SipListeners {
        realm: realm.clone(),
        ..SipListeners::default()
    };
    let mut local: HashMap<Transport, SocketAddr> = HashMap::new();
    let mut udp = Vec::new();
    for &addr in &settings.listen_udp {
        let s = UdpSocket::bind(addr)
            .await
            .map_err(|source| CoreError::Bind { addr, source })?;
        // Best effort: the kernel caps it, and a smaller buffer still works.
        let size = settings.udp_buffer_bytes;
        let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&s, size);
        let _ = rustix::net::sockopt::set_socket_send_buffer_size(&s, size);
        let a = s
            .local_addr()
            .map_err(|source| CoreError::Bind { addr, source })?;
        bound.udp.push(a);
        local.entry(Transport::Udp).or_insert(a);
        udp.push(Arc::new(s));
    }
    let mut tcp = Vec::new();
    for (addrs, secure) in [(&settings.listen_tcp, false), (&settings.listen_tls, true)] {
        for &addr in addrs {
            if secure && parts.tls.is_none() {
                continue;
            }
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| CoreError::Bind { addr, source })?;
            let a = l
                .local_addr()
                .map_err(|source| CoreError::Bind { addr, source })?;
            if secure {
                bound.tls.push(a);
                local.entry(Transport::Tls).or_insert(a);
            } else {
                bound.tcp.push(a);
                local.entry(Transport::Tcp).or_insert(a);
            }
            tcp.push((l, secure));
        }
    }
    let limits = TransportLimits {
        codec: settings.limits(),
        max_connections: settings.max_connections,
        max_connections_per_ip: settings.max_connections_per_ip,
        idle_timeout: settings.idle_timeout(),
        send_queue: settings.send_queue,
        send_queue_bytes: settings.send_queue_bytes,
    };
    let contact_addr = local
        .get(&Transport::Udp)
        .or_else(|| local.get(&Transport::Tcp))
        .or_else(|| local.get(&Transport::Tls))
        .copied()
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5060)));
    let contacts: HashMap<Transport, String> = local
        .iter()
        .map(|(t, a)| {
            let c = match t {
                Transport::Udp => format!("<sip:{}>", endpoint::host_port(*a)),
                Transport::Tls => format!("<sips:{}>", endpoint::host_port(*a)),
                _ => format!("<sip:{};transport=tcp>", endpoint::host_port(*a)),
            };
            (*t, c)
        })
        .collect();
    let transports = Arc::new(Transports::new(
        udp.clone(),
        local,
        limits,
        server.shutdown_signal(),
        server.metrics.sip.clone(),
    ));
    let (tx, rx) = mpsc::channel(endpoint::INBOX);
    let domain = server.default_domain().to_owned();
    let svc = Arc::new(SipService {
        auth: auth::Auth::new(
            &realm,
            &domain,
            &settings.algorithms(),
            parts.nonce_secret,
            settings.nonce_lifetime_secs,
            (
                Duration::from_secs(settings.credential_cache_secs),
                settings.credential_cache_entries,
            ),
            server.db.clone(),
        ),
        registrar: registrar::Registrar::load(server.db.clone(), &settings),
        presence: presence::PresenceAgent::new(
            &settings,
            contacts,
            endpoint::host_port(contact_addr),
        ),
        pager: message::Pager,
        endpoint: tx.clone(),
        transports: Arc::clone(&transports),
        gateways: Mutex::new(HashMap::new()),
        sync_locks: std::array::from_fn(|_| tokio::sync::Mutex::new(())),
        server: Arc::clone(&server),
    });
    server.set_listener(Arc::new(Listener(Arc::downgrade(&svc))));
    let rate = Arc::new(crate::clock::keyed_limiter(
        settings.requests_per_ip_per_sec.saturating_mul(60),
        settings.requests_per_ip_burst,
    ));
    let table = TableConfig {
        max_transactions: settings.max_transactions,
        max_bytes: settings.max_transaction_bytes,
        ..TableConfig::default()
    };
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(endpoint::run(
        rx,
        tx.clone(),
        Arc::clone(&transports),
        Arc::new(TuHandle(Arc::downgrade(&svc))),
        table,
        Arc::clone(&rate),
        server.shutdown_signal(),
    )));
    for s in udp {
        tasks.push(tokio::spawn(transport::run_udp(
            s,
            Arc::clone(&transports),
            tx.clone(),
            server.shutdown_signal(),
        )));
    }
    let tracker = tokio_util::task::TaskTracker::new();
    for (l, secure) in tcp {
        let tls = if secure { parts.tls.clone() } else { None };
        tasks.push(tokio::spawn(transport::run_listener(
            l,
            tls,
            Arc::clone(&transports),
            tx.clone(),
            server.shutdown_signal(),
            tracker.clone(),
        )));
    }
    // Registrations that survived a restart: their users' SIP sessions come back.
    for user in svc.registrar.registered_users() {
        if let Ok(jid) = Jid::parse(&format!("{user}@{domain}")) {
            svc.sync_gateway(&jid).await;
        }
    }
    let housekeeping = {
        let svc = Arc::clone(&svc);
        let rate = Arc::clone(&rate);
        let mut shutdown = server.shutdown_signal();
        tokio::spawn(async move {
            let mut next_sweep = tokio::time::Instant::now() + SWEEP_EVERY;
            loop {
                // Expiries are checked at least once a second (none is shorter than
                // the minimum expiry, a minute), so a new deadline needs no wake-up.
                let soon = tokio::time::Instant::now() + EXPIRY_TICK;
                let deadline = svc
                    .presence
                    .next_deadline()
                    .map(tokio::time::Instant::from_std)
                    .map_or(soon, |d| d.min(soon))
                    .min(next_sweep);
                tokio::select! {
                    biased;
                    () = crate::server::stopping(&mut shutdown) => return,
                    () = tokio::time::sleep_until(deadline) => {}
                }
                svc.presence.expire(&svc).await;
                svc.update_gauges();
                if tokio::time::Instant::now() >= next_sweep {
                    next_sweep = tokio::time::Instant::now() + SWEEP_EVERY;
                    rate.retain_recent();
                    // The failure throttle is shared with c2s, whose listeners prune
                    // it too; SIP alone (no c2s listener) must not let it grow.
                    svc.server.auth_throttle.prune();
                    for user in svc.registrar.sweep().await {
                        if let Ok(jid) =
                            Jid::parse(&format!("{user}@{}", svc.server.default_domain()))
                        {
                            svc.sync_gateway(&jid).await;
                        }
                    }
                }
            }
        })
    };
    tasks.push(housekeeping);
    let task = tokio::spawn(async move {
        for t in tasks {
            let _ = t.await;
        }
        tracker.close();
        tracker.wait().await;
    });
    Ok((bound, task))
}

/// Forwards the core's change notices to the presence agent.
#[derive(Debug)]
struct Listener(std::sync::Weak<SipService>);

impl ChangeListener for Listener {
    fn presence_changed(&self, user: &Jid) {
        // The SIP side's own changes are notified by the agent itself (an unavailable
        // SIP side that stays unavailable broadcasts nothing, yet its notes changed).
        if user.resource() == Some(gateway::RESOURCE) {
            return;
        }
        if let Some(svc) = self.0.upgrade() {
            svc.presence.presentity_changed(&svc, &user.bare());
        }
    }

    fn roster_changed(&self, user: &Jid, contact: &Jid) {
        if let Some(svc) = self.0.upgrade() {
            let (user, contact) = (user.bare(), contact.bare());
            tokio::spawn(async move { svc.presence.roster_changed(&svc, &user, &contact).await });
        }
    }

    fn account_removed(&self, user: &str) {
        if let Some(svc) = self.0.upgrade() {
            svc.auth.forget(user);
        }
    }
}

impl SipService {
    /// Authenticate `request` from `from` (digest; 407 when `proxy`, else 401), with
    /// the failure throttle XMPP logins share.
    pub(crate) async fn authenticate(
        &self,
        request: &Message,
        proxy: bool,
        from: Remote,
    ) -> Result<auth::Principal, Message> {
        self.auth
            .authenticate(
                request,
                proxy,
                from.addr.ip(),
                &self.server.auth_throttle,
                &self.server.metrics,
            )
            .await
    }

    /// Send a request (no Via: the endpoint adds it) and wait for its final response
    /// (a 408 when the transaction timed out), at most `timeout`.
    pub(crate) async fn send_request_message(
        &self,
        request: Message,
        to: Remote,
        timeout: Duration,
    ) -> Option<Message> {
        let (reply, rx) = oneshot::channel();
        self.endpoint
            .send(endpoint::Input::Request {
                request,
                to,
                reply: Some(reply),
            })
            .await
            .ok()?;
        tokio::time::timeout(timeout, rx).await.ok()?.ok()
    }

    /// [`send_request_message`](Self::send_request_message), the status code only.
    pub(crate) async fn send_request(
        &self,
        request: Message,
        to: Remote,
        timeout: Duration,
    ) -> Option<u16> {
        self.send_request_message(request, to, timeout)
            .await
            .and_then(|r| r.status_line().map(|s| s.code))
    }

    /// Set the gauges of held state.
    pub(crate) fn update_gauges(&self) {
        let m = &self.server.metrics.sip;
        let (subs, pubs) = self.presence.counts();
        let g = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        m.subscriptions.set(g(subs));
        m.publications.set(g(pubs));
        m.registered_users.set(g(self.registrar.user_count()));
    }

    /// Where a request to a UA's `contact`, given over `source`, goes.
    pub(crate) fn route_to(&self, contact: &herald_translate::sip::Uri, source: Remote) -> Remote {
        target::route_to(contact, source, |r| self.transports.has_connection(r))
    }

    /// A registration began or ended for `user`.
    pub(crate) async fn registration_changed(self: &Arc<Self>, user: &Jid, _registered: bool) {
        self.sync_gateway(user).await;
    }

    /// What `user`'s SIP devices published changed: XMPP contacts get the SIP side's
    /// presence, SIP watchers the composed document.
    ///
    /// The watchers' NOTIFYs are made at once, with the state of this change; the
    /// XMPP side follows in a task, so the PUBLISH is answered without waiting for it.
    pub(crate) async fn sip_side_changed(self: &Arc<Self>, user: &Jid) {
        let user = user.bare();
        self.presence.presentity_changed(self, &user);
        let svc = Arc::clone(self);
        tokio::spawn(async move { svc.sync_gateway(&user).await });
    }

    /// Start, update or end `user`'s SIP session so that it matches their
    /// registrations and publications.
    pub(crate) async fn sync_gateway(self: &Arc<Self>, user: &Jid) {
        let user = user.bare();
        // One sync per user at a time: each reads the state when it runs, so the last
        // one to run shows the latest state.
        let _serial = self.sync_locks[stripe(&user)].lock().await;
        let local = user.local().unwrap_or_default();
        let want = self.registrar.is_registered(local) || self.presence.has_publications(&user);
        let presence = self
            .presence
            .sip_side_presence(&user)
            .unwrap_or_else(gateway::plain_available);
        let existing = self.gateways().get(&user).map(|g| Arc::clone(&g.handle));
        match (want, existing) {
            (true, None) => {
                if let Some(g) = gateway::start(self, &user, presence) {
                    self.gateways().insert(user, g);
                }
            }
            (true, Some(handle)) => {
                self.server
                    .presence_broadcast(&handle.jid, handle.conn_id, presence, &[])
                    .await;
            }
            (false, Some(_)) => {
                if let Some(g) = self.gateways().remove(&user) {
                    g.stop.notify_one();
                }
            }
            (false, None) => {}
        }
    }

    fn gateways(&self) -> std::sync::MutexGuard<'_, HashMap<Jid, gateway::Gateway>> {
        self.gateways.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A SIP watcher asks to see `presentity`: the same request an XMPP client would
    /// make (`<presence type='subscribe'/>` from the watcher's bare JID), so the user
    /// approves it from any client. A SIP user agent has no way to answer a request
    /// to watch its user, so asking counts as consent the other way: the presentity
    /// is approved (or pre-approved, RFC 6121 §3.4) to watch the watcher back.
    pub(crate) async fn ask_presentity(&self, watcher: &Jid, presentity: &Jid) {
        for (kind, name) in [
            (herald_rules::SubKind::Subscribed, "subscribed"),
            (herald_rules::SubKind::Subscribe, "subscribe"),
        ] {
            let el = Element::new("presence", ns::CLIENT).with_attr("type", name);
            if let Ok(env) = Envelope::new(watcher.bare(), presentity.bare(), el) {
                self.server.outbound_subscription(env, kind).await;
            }
        }
    }
}

/// Stripes of the per-user gateway lock.
pub(crate) const SYNC_STRIPES: usize = 64;

fn stripe(user: &Jid) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    user.hash(&mut h);
    usize::try_from(h.finish() % SYNC_STRIPES as u64).unwrap_or(0)
}

/// A fresh tag or id: 16 random hex digits.
pub(crate) fn new_tag() -> String {
    format!("{:016x}", rand::rng().next_u64())
}

/// A fresh Call-ID.
pub(crate) fn new_call_id() -> String {
    format!(
        "{:016x}{:016x}@herald",
        rand::rng().next_u64(),
        rand::rng().next_u64()
    )
}
