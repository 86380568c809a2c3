//! The running core: the services composed over the shared context, and the routing
//! loop every stanza goes through, whichever way it entered (a client session today,
//! federation and SIP next).

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use herald_rules::{route_iq, route_presence, IqAction, PresenceAction};
use herald_translate::{Envelope, StanzaError, StanzaErrorCondition, StanzaKind};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use crate::ctx::Ctx;
use crate::federation::{Federation, NoFederation};
use crate::services::messages::Messages;
use crate::services::presence::Presence;
use crate::services::roster::Rosters;
use crate::services::stream_mgmt::DetachedSessions;
use crate::services::subscription::Subscriptions;
use crate::services::{iq, Outbox};
use crate::settings::C2sSettings;
use crate::store::Store;

/// Stanzas one routed stanza may cause in a chain (bounces, auto-replies) before the
/// chain is cut: a safety net against loops between local rules.
const MAX_CASCADE: usize = 10_000;

/// What a [`Server`] is built from.
pub struct ServerParts {
    /// Hosted domains, normalized; the first is the default.
    pub domains: Vec<String>,
    pub settings: C2sSettings,
    pub store: Arc<dyn Store>,
}

/// The running core.
pub struct Server {
    ctx: Arc<Ctx>,
    pub(crate) rosters: Arc<Rosters>,
    pub(crate) presence: Arc<Presence>,
    pub(crate) subscriptions: Subscriptions,
    pub(crate) messages: Messages,
    /// XEP-0198 sessions waiting to be resumed.
    pub(crate) detached: DetachedSessions,
    federation: RwLock<Arc<dyn Federation>>,
    shutdown: watch::Sender<bool>,
    /// Connections and background work that may still write; shutdown waits for it.
    tracker: TaskTracker,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("domains", &self.ctx.domains)
            .finish_non_exhaustive()
    }
}

/// The shared context is the server's public face (domains, settings, storage, the
/// session table, metrics).
impl std::ops::Deref for Server {
    type Target = Ctx;

    fn deref(&self) -> &Ctx {
        &self.ctx
    }
}

impl Server {
    pub fn new(parts: ServerParts) -> Arc<Self> {
        let ctx = Arc::new(Ctx::new(parts.domains, parts.settings, parts.store));
        let rosters = Arc::new(Rosters::new(Arc::clone(&ctx)));
        let presence = Arc::new(Presence::new(Arc::clone(&ctx), Arc::clone(&rosters)));
        let (shutdown, _) = watch::channel(false);
        let server = Arc::new(Self {
            subscriptions: Subscriptions::new(
                Arc::clone(&ctx),
                Arc::clone(&rosters),
                Arc::clone(&presence),
            ),
            messages: Messages::new(Arc::clone(&ctx)),
            rosters,
            presence,
            detached: DetachedSessions::default(),
            federation: RwLock::new(Arc::new(NoFederation)),
            shutdown,
            tracker: TaskTracker::new(),
            ctx,
        });
        // Claims of a process that died are void: their messages are deliverable again.
        if let Err(e) = server.db.store().offline_release_all() {
            tracing::error!(error = %e, "cannot release offline message claims");
        }
        if let Ok(n) = server.db.store().offline_total() {
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

    fn federation(&self) -> Arc<dyn Federation> {
        self.federation
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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

    /// Wait until every connection and background task has finished (after
    /// [`shutdown`](Self::shutdown)), or `grace` has passed. True when all finished.
    pub async fn drained(&self, grace: Duration) -> bool {
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }

    /// Run `fut` as tracked work: shutdown waits for it (connections of every kind:
    /// c2s, and the edge's s2s streams, which end with `system-shutdown`).
    pub fn spawn_tracked<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(fut);
    }

    /// Route a stanza whose `from` is authoritative to its `to`: a local user, this
    /// server, or a remote domain through the federation interface. What that causes
    /// (bounces, subscription answers, probes) is routed in turn, in order.
    pub async fn route(&self, env: Envelope) {
        let mut out = Outbox::new();
        self.dispatch(env, &mut out).await;
        if out.is_empty() {
            return;
        }
        let mut queue = VecDeque::from(out);
        let mut steps = 1;
        while let Some(env) = queue.pop_front() {
            steps += 1;
            if steps > MAX_CASCADE {
                tracing::error!(dropped = queue.len() + 1, "routing cascade cut");
                return;
            }
            let mut out = Outbox::new();
            self.dispatch(env, &mut out).await;
            queue.extend(out);
        }
    }

    /// Route everything in an outbox.
    pub(crate) async fn route_all(&self, out: Outbox) {
        for env in out {
            self.route(env).await;
        }
    }

    async fn dispatch(&self, env: Envelope, out: &mut Outbox) {
        let to = env.to();
        if !self.is_local_domain(to.domain()) {
            if let Err(refused) = self.federation().send(env) {
                out.extend(refused.envelope.error_reply(&refused.error));
            }
            return;
        }
        if to.local().is_none() {
            self.to_server(env, out);
            return;
        }
        match env.kind() {
            StanzaKind::Message => self.messages.deliver(env, out).await,
            StanzaKind::Presence => self.deliver_presence(env, out).await,
            StanzaKind::Iq => self.deliver_iq(env, out).await,
        }
    }

    /// A stanza addressed to one of our domains (not to a user).
    fn to_server(&self, env: Envelope, out: &mut Outbox) {
        match env.kind() {
            StanzaKind::Iq => {
                if let Some(reply) = iq::server_iq(env.stanza()) {
                    out.extend(reply_envelope(&env, reply));
                }
            }
            StanzaKind::Message if !env.is_error() && env.stanza_type() != Some("headline") => {
                out.extend(
                    env.error_reply(&StanzaError::new(StanzaErrorCondition::ServiceUnavailable)),
                );
            }
            _ => {}
        }
    }

    /// IQs to a local user: full JID to that session, bare JID answered by the server
    /// on the user's behalf (RFC 6121 §8.5.1, §8.5.2.1.3).
    async fn deliver_iq(&self, env: Envelope, out: &mut Outbox) {
        let (addressee, sessions) = self.addressee(&env).await;
        let is_request = matches!(env.stanza_type(), Some("get" | "set"));
        let route = route_iq(is_request, &addressee);
        let unavailable = |env: &Envelope, out: &mut Outbox| {
            out.extend(
                env.error_reply(&StanzaError::new(StanzaErrorCondition::ServiceUnavailable)),
            );
        };
        match route.action {
            IqAction::ToResource => {
                let delivered = sessions
                    .iter()
                    .find(|s| s.jid == *env.to())
                    .is_some_and(|s| self.deliver(s, env.stanza().clone()));
                if !delivered && is_request {
                    unavailable(&env, out);
                }
            }
            IqAction::AnswerForUser => match iq::account_iq(env.stanza()) {
                Some(reply) => out.extend(reply_envelope(&env, reply)),
                None => unavailable(&env, out),
            },
            IqAction::Bounce(condition) => {
                out.extend(env.error_reply(&StanzaError::new(condition)));
            }
            IqAction::Drop => tracing::trace!(reason = route.reason, "IQ dropped"),
        }
    }

    /// Presence to a local user: subscription handling, probes, or delivery.
    async fn deliver_presence(&self, env: Envelope, out: &mut Outbox) {
        let (addressee, sessions) = self.addressee(&env).await;
        let route = route_presence(env.stanza_type(), &addressee);
        match route.action {
            PresenceAction::Subscription(kind) => self.subscriptions.inbound(env, kind, out).await,
            PresenceAction::AnswerProbe => {
                let (prober, user) = (env.from().clone(), env.to().clone());
                self.presence.answer_probe(&prober, &user, out).await;
            }
            PresenceAction::ToResource | PresenceAction::ToAvailable => {
                self.presence.deliver(&env, &sessions);
            }
            PresenceAction::Drop => tracing::trace!(reason = route.reason, "presence dropped"),
        }
    }
}

/// A reply built by a service (from the request's `to`, to its `from`).
fn reply_envelope(request: &Envelope, reply: herald_translate::Element) -> Option<Envelope> {
    Envelope::new(request.to().clone(), request.from().clone(), reply).ok()
}

/// Resolves once shutdown has been requested, at once if it already was.
pub async fn stopping(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await.map(|_| ());
}
