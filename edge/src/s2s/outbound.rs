//! The driver of [`OutboundQueues`]: the edge's [`Federation`]. The core hands it
//! stanzas for remote domains; one task carries out the machine's actions — starting
//! connection attempts through a [`Connector`], sending on established links, routing
//! bounces back into the core, closing idle links — and feeds it the clock.
//!
//! `Federation::send` is synchronous and called from the core's routing loop, so it
//! only records the stanza and wakes the task; bounces are routed by the task, never
//! from inside `send`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use herald_core::federation::{Federation, Refused};
use herald_core::router::approx_size;
use herald_core::Server;
use herald_translate::{Envelope, StanzaError, StanzaErrorCondition};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::outbound_queue::{Action, Failure, OutboundQueues, QueueLimits};

/// Why a link did not take a stanza; the stanza comes back with it.
#[derive(Debug)]
pub enum LinkRefusal {
    /// The stream has ended: the stanza takes a new attempt.
    Gone(Box<Envelope>),
    /// The stream is alive but its send buffer is full: the stanza bounces with
    /// `resource-constraint` (a new stream would not drain the old one faster).
    Full(Box<Envelope>),
}

/// An established outbound stream to one remote domain.
pub trait S2sLink: Send + Sync + 'static {
    /// Queue a stanza on the stream; gives it back when the stream is gone or full.
    fn send(&self, env: Envelope) -> Result<(), LinkRefusal>;
    /// End the stream (idle, or the domain is no longer allowed).
    fn close(&self);
    /// Whether the stream has ended (it takes nothing more).
    fn is_closed(&self) -> bool;
}

/// The future of one connection attempt.
pub type Connecting = Pin<Box<dyn Future<Output = Result<Arc<dyn S2sLink>, Failure>> + Send>>;

/// Sets up outbound streams: discovery, TCP, TLS, authentication.
pub trait Connector: Send + Sync + 'static {
    /// Connect to `domain`. The link reports its end through
    /// [`OutboundHandle::link_closed`].
    fn connect(&self, domain: String, handle: OutboundHandle) -> Connecting;
}

struct Shared {
    queues: Mutex<OutboundQueues>,
    /// Established streams by remote domain (set by the attempt that made it).
    links: Mutex<HashMap<String, Arc<dyn S2sLink>>>,
    wake: Notify,
}

impl Shared {
    fn queues(&self) -> MutexGuard<'_, OutboundQueues> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn links(&self) -> MutexGuard<'_, HashMap<String, Arc<dyn S2sLink>>> {
        self.links.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A stanza goes through the machine again (its stream vanished under it): it
    /// waits for a new attempt, or bounces.
    fn retry(&self, env: Envelope) {
        let size = approx_size(env.stanza());
        self.queues()
            .send(env, size, tokio::time::Instant::now().into_std());
    }
}

/// What a link or an attempt tells the driver.
#[derive(Clone)]
pub struct OutboundHandle {
    shared: Weak<Shared>,
}

impl OutboundHandle {
    /// The established stream to `domain` ended. A late report from an old stream
    /// leaves a newer one that took its place alone.
    pub fn link_closed(&self, domain: &str) {
        if let Some(shared) = self.shared.upgrade() {
            {
                let mut links = shared.links();
                if links.get(domain).is_some_and(|l| !l.is_closed()) {
                    return;
                }
                links.remove(domain);
            }
            shared.queues().closed(domain);
            shared.wake.notify_one();
        }
    }
}

/// The edge's outbound federation.
pub struct Outbound {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound").finish_non_exhaustive()
    }
}

impl Outbound {
    /// Start the driver; plug the result into the core with `Server::set_federation`.
    pub fn start(
        server: &Arc<Server>,
        connector: Arc<dyn Connector>,
        limits: QueueLimits,
    ) -> Arc<Self> {
        let shared = Arc::new(Shared {
            queues: Mutex::new(OutboundQueues::new(limits)),
            links: Mutex::new(HashMap::new()),
            wake: Notify::new(),
        });
        let task = tokio::spawn(drive(
            Arc::downgrade(server),
            Arc::clone(&shared),
            connector,
        ));
        Arc::new(Self { shared, task })
    }

    /// Stanzas waiting for `domain`'s stream (tests, status).
    pub fn queued(&self, domain: &str) -> usize {
        self.shared.queues().queued(domain)
    }
}

impl Drop for Outbound {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Federation for Outbound {
    fn send(&self, envelope: Envelope) -> Result<(), Box<Refused>> {
        let size = approx_size(envelope.stanza());
        let now = tokio::time::Instant::now().into_std();
        self.shared.queues().send(envelope, size, now);
        self.shared.wake.notify_one();
        Ok(())
    }
}

/// Carry out the machine's actions until the server is gone.
async fn drive(server: Weak<Server>, shared: Arc<Shared>, connector: Arc<dyn Connector>) {
    let handle = OutboundHandle {
        shared: Arc::downgrade(&shared),
    };
    let mut attempts: HashMap<String, JoinHandle<()>> = HashMap::new();
    loop {
        let now = tokio::time::Instant::now().into_std();
        let (actions, deadline, queued) = {
            let mut q = shared.queues();
            q.handle_timeout(now);
            let actions: Vec<Action> = std::iter::from_fn(|| q.poll_action()).collect();
            (actions, q.poll_timeout(), q.total_queued())
        };
        let Some(server) = server.upgrade() else {
            return;
        };
        let metrics = &server.metrics.s2s;
        metrics
            .queue_depth
            .set(i64::try_from(queued).unwrap_or(i64::MAX));
        let acted = !actions.is_empty();
        for action in actions {
            match action {
                Action::Connect(domain) => {
                    let attempt = connector.connect(domain.clone(), handle.clone());
                    let task =
                        tokio::spawn(attempt_task(Arc::clone(&shared), domain.clone(), attempt));
                    if let Some(old) = attempts.insert(domain, task) {
                        old.abort();
                    }
                }
                Action::Abort(domain) => {
                    if let Some(t) = attempts.remove(&domain) {
                        t.abort();
                    }
                }
                Action::Send(domain, env) => {
                    let link = shared.links().get(&domain).cloned();
                    let unsent = match link {
                        Some(link) => match link.send(env) {
                            Ok(()) => None,
                            Err(LinkRefusal::Gone(env)) => Some(*env),
                            Err(LinkRefusal::Full(env)) => {
                                let err =
                                    StanzaError::new(StanzaErrorCondition::ResourceConstraint)
                                        .with_text(format!("the stream to {domain} is congested"));
                                if let Some(reply) = env.error_reply(&err) {
                                    metrics.bounce(err.condition.name());
                                    server.route(reply).await;
                                }
                                None
                            }
                        },
                        None => Some(env),
                    };
                    if let Some(env) = unsent {
                        // The stream went away under us: this stanza takes a new attempt.
                        shared.links().remove(&domain);
                        shared.queues().closed(&domain);
                        shared.retry(env);
                    }
                }
                Action::Bounce(env, condition) => {
                    metrics.bounce(condition.name());
                    server.route(env).await;
                }
                Action::Close(domain) => {
                    if let Some(link) = shared.links().remove(&domain) {
                        link.close();
                    }
                }
            }
        }
        drop(server);
        attempts.retain(|_, t| !t.is_finished());
        if acted {
            // What the actions caused (retries) is handled before sleeping.
            continue;
        }
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shared.wake.notified() => {}
            () = sleep => {}
        }
    }
}

/// One connection attempt: its outcome goes into the machine.
async fn attempt_task(shared: Arc<Shared>, domain: String, attempt: Connecting) {
    let outcome = attempt.await;
    let now = tokio::time::Instant::now().into_std();
    match outcome {
        Ok(link) => {
            shared.links().insert(domain.clone(), Arc::clone(&link));
            if !shared.queues().connected(&domain, now) {
                // Too late: the attempt had timed out and its stanzas bounced.
                shared.links().remove(&domain);
                link.close();
            }
        }
        Err(failure) => shared.queues().failed(&domain, failure, now),
    }
    shared.wake.notify_one();
}
