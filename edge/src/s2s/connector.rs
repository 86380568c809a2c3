//! The real [`Connector`]: route or DNS, TCP, TLS, authentication (see
//! [`super::negotiate`]), then one task per established stream that writes what the
//! [`S2sLink`] hands it. Also the dialback verify connections the inbound side needs,
//! and [`Guarded`], the core's `Federation`: the outbound ACL in front of [`Outbound`].

use std::sync::Arc;
use std::time::Duration;

use herald_core::federation::{Federation, Refused};
use herald_core::metrics_s2s::Direction as MetricDir;
use herald_core::router::approx_size;
use herald_rules::federation::{outbound_stanza, Verdict};
use herald_translate::s2s::{DialbackOutcome, Initiating, InitiatingAction};
use herald_translate::{
    Envelope, StanzaError, StanzaErrorCondition as Sc, StreamError, StreamErrorCondition,
};
use tokio::sync::{mpsc, Notify};

use super::connect::connect_first;
use super::context::{to_server, S2sContext};
use super::io::S2sIo;
use super::negotiate::{negotiate, now, sleep_until, Done};
use super::outbound::{Connecting, Connector, LinkRefusal, Outbound, OutboundHandle, S2sLink};
use super::outbound_queue::Failure;

/// Stanzas a link holds for its connection task before it refuses more.
const LINK_CAPACITY: usize = 256;
/// How long one write may take before the peer counts as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Stanzas taken from the link at once, written together (one TLS write for a burst).
const BATCH: usize = 64;
/// Output gathered from consecutive sends is written once it reaches this size.
const WRITE_CHUNK: usize = 64 * 1024;

/// Connects out with the shared s2s state.
#[derive(Debug)]
pub struct S2sConnector {
    ctx: Arc<S2sContext>,
}

impl S2sConnector {
    pub fn new(ctx: Arc<S2sContext>) -> Self {
        Self { ctx }
    }
}

impl Connector for S2sConnector {
    fn connect(&self, domain: String, handle: OutboundHandle) -> Connecting {
        let ctx = Arc::clone(&self.ctx);
        Box::pin(async move {
            let local = ctx.rules.load().hosted.first().cloned().unwrap_or_default();
            let tuning = ctx.tuning.load_full();
            let candidates = ctx.candidates(&domain).await.map_err(Failure::NotFound)?;
            let policy = ctx.policy(&domain);
            let cfg = Arc::clone(&tuning.initiating);
            let make = |t, now| Initiating::new(Arc::clone(&cfg), &local, &domain, policy, t, now);
            let attempt = connect_first(&candidates, tuning.attempt_timeout, |c, addr| {
                let (ctx, c, local, domain, make) = (&ctx, c.clone(), &local, &domain, &make);
                async move { negotiate(ctx, local, domain, &c, addr, make).await }
            })
            .await;
            let (io, machine) = match attempt {
                Ok(((io, m, Done::Established), _)) => (io, m),
                Ok(_) => return Err(Failure::Refused("no stream".into())),
                Err(failures) if failures.is_empty() => {
                    return Err(Failure::NotFound("no address to connect to".into()))
                }
                Err(failures) => {
                    let why: Vec<String> = failures.iter().map(ToString::to_string).collect();
                    tracing::info!(%domain, failures = %why.join("; "), "s2s: no stream");
                    return Err(Failure::NotFound(why.join("; ")));
                }
            };
            let (tx, rx) = mpsc::channel(LINK_CAPACITY);
            let closing = Arc::new(Notify::new());
            let link = Link {
                tx,
                closing: Arc::clone(&closing),
            };
            tokio::spawn(run(ctx, domain, io, machine, rx, closing, handle));
            Ok(Arc::new(link) as Arc<dyn S2sLink>)
        })
    }
}

/// The handle on one established outbound stream.
struct Link {
    tx: mpsc::Sender<Envelope>,
    closing: Arc<Notify>,
}

impl S2sLink for Link {
    fn send(&self, env: Envelope) -> Result<(), LinkRefusal> {
        self.tx.try_send(env).map_err(|e| match e {
            mpsc::error::TrySendError::Full(env) => LinkRefusal::Full(Box::new(env)),
            mpsc::error::TrySendError::Closed(env) => LinkRefusal::Gone(Box::new(env)),
        })
    }

    fn close(&self) {
        self.closing.notify_one();
    }
}

/// The established stream to `remote`: stanzas from the link out, until either side
/// ends it; whatever was accepted and not written bounces.
async fn run(
    ctx: Arc<S2sContext>,
    remote: String,
    mut io: S2sIo,
    mut m: Initiating,
    mut rx: mpsc::Receiver<Envelope>,
    closing: Arc<Notify>,
    handle: OutboundHandle,
) {
    let span = tracing::info_span!("s2s-out", %remote);
    // A reload whose ACL denies `remote` outbound notifies `closing`.
    let _gauge = ctx.stream_guard(&remote, MetricDir::Out, false, &closing);
    let mut shutdown = match ctx.server() {
        Some(s) => s.shutdown_signal(),
        None => return,
    };
    let mut ended = false;
    tracing::info!(parent: &span, "outbound stream up");
    // Consecutive sends are gathered here and written together.
    let mut out = String::new();
    while !ended {
        // A failed write makes the machine report the loss: its actions come next.
        let mut lost = true;
        while lost {
            while let Some(action) = m.poll_action() {
                if !matches!(action, InitiatingAction::Send(_)) {
                    write_out(&mut io, &mut m, &mut out).await;
                }
                match action {
                    InitiatingAction::Send(xml) => {
                        out.push_str(&xml);
                        if out.len() >= WRITE_CHUNK {
                            write_out(&mut io, &mut m, &mut out).await;
                        }
                    }
                    InitiatingAction::Failed {
                        reason,
                        undelivered,
                    } => {
                        tracing::info!(parent: &span, ?reason, "outbound stream failed");
                        bounce_all(&ctx, undelivered).await;
                    }
                    InitiatingAction::DomainFailed { undelivered, .. } => {
                        bounce_all(&ctx, undelivered).await;
                    }
                    InitiatingAction::Close => ended = true,
                    _ => {}
                }
            }
            lost = !write_out(&mut io, &mut m, &mut out).await;
        }
        if ended || m.is_closed() {
            break;
        }
        let mut got = Vec::new();
        let event = tokio::select! {
            env = rx.recv() => Event::Stanza(env.map(Box::new)),
            read = io.read(|b: &[u8]| got.extend_from_slice(b)) => Event::Read(read),
            () = sleep_until(m.poll_timeout()) => Event::Timeout,
            () = closing.notified() => Event::Close,
            () = herald_core::server::stopping(&mut shutdown) => Event::Shutdown,
        };
        match event {
            Event::Stanza(Some(env)) => {
                // A burst goes out in one write: take what else is already waiting.
                send_one(&ctx, &mut m, &remote, *env).await;
                for _ in 1..BATCH {
                    match rx.try_recv() {
                        Ok(env) => send_one(&ctx, &mut m, &remote, env).await,
                        Err(_) => break,
                    }
                }
            }
            Event::Stanza(None) | Event::Close => {
                let _ = io.write(b"</stream:stream>").await;
                break;
            }
            Event::Read(Ok(true)) => m.receive(&got, now()),
            Event::Read(_) => m.connection_lost(),
            Event::Timeout => m.handle_timeout(now()),
            Event::Shutdown => m.fail(StreamError::new(StreamErrorCondition::SystemShutdown)),
        }
    }
    // Nothing more is taken; what is still waiting bounces.
    rx.close();
    while let Ok(env) = rx.try_recv() {
        ctx.bounce(
            env.into_stanza(),
            Sc::RemoteServerNotFound,
            "the stream ended",
        )
        .await;
    }
    handle.link_closed(&remote);
    io.close().await;
    tracing::info!(parent: &span, "outbound stream closed");
}

/// Hand one stanza to the stream machine (its bytes come out as a send action), or
/// bounce it when this stream cannot carry it.
async fn send_one(ctx: &S2sContext, m: &mut Initiating, remote: &str, env: Envelope) {
    if let Some(s) = ctx.server() {
        s.metrics
            .s2s
            .stanza(remote, MetricDir::Out, approx_size(env.stanza()) as u64);
    }
    let from = env.from().domain().to_string();
    let el = to_server(env.into_stanza());
    let el = match m.send_stanza(el) {
        Ok(()) => return,
        // Another of our domains: dialback for it on this stream.
        Err(el) if m.add_sender_domain(&from, now()) => match m.send_stanza(el) {
            Ok(()) => return,
            Err(el) => el,
        },
        Err(el) => el,
    };
    ctx.bounce(el, Sc::RemoteServerNotFound, "cannot send on this stream")
        .await;
}

/// Write what was gathered (bounded in time); a failed write ends the stream (false).
async fn write_out(io: &mut S2sIo, m: &mut Initiating, out: &mut String) -> bool {
    if out.is_empty() {
        return true;
    }
    let wrote = tokio::time::timeout(WRITE_TIMEOUT, io.write(out.as_bytes())).await;
    out.clear();
    if out.capacity() > WRITE_CHUNK {
        *out = String::new();
    }
    if matches!(wrote, Ok(Ok(()))) {
        return true;
    }
    m.connection_lost();
    false
}

async fn bounce_all(ctx: &S2sContext, undelivered: Vec<herald_translate::Element>) {
    for el in undelivered {
        ctx.bounce(el, Sc::RemoteServerNotFound, "the stream ended")
            .await;
    }
}

enum Event {
    Stanza(Option<Box<Envelope>>),
    Read(std::io::Result<bool>),
    Timeout,
    Close,
    Shutdown,
}

/// Ask `remote`'s authoritative server whether `key` is the dialback key it sent to
/// our `hosted` on stream `stream_id` (XEP-0220 §2.1.2), over a new connection.
pub(crate) async fn verify_key(
    ctx: &Arc<S2sContext>,
    hosted: &str,
    remote: &str,
    stream_id: &str,
    key: &str,
) -> DialbackOutcome {
    let unreachable = DialbackOutcome::Error(Sc::RemoteServerNotFound);
    let candidates = match ctx.candidates(remote).await {
        Ok(c) => c,
        Err(why) => {
            tracing::info!(%remote, %why, "dialback verify: no server found");
            return unreachable;
        }
    };
    let policy = ctx.policy(remote);
    let tuning = ctx.tuning.load_full();
    let cfg = Arc::clone(&tuning.initiating);
    let make = |t, now| {
        Initiating::verify(
            Arc::clone(&cfg),
            hosted,
            remote,
            stream_id,
            key,
            policy,
            t,
            now,
        )
    };
    let attempt = connect_first(&candidates, tuning.attempt_timeout, |c, addr| {
        let (c, make) = (c.clone(), &make);
        async move { negotiate(ctx, hosted, remote, &c, addr, make).await }
    })
    .await;
    match attempt {
        Ok(((_, _, Done::Verified(outcome)), _)) => outcome,
        Ok(((mut io, _, Done::Established), _)) => {
            io.close().await;
            unreachable
        }
        Err(failures) => {
            let why: Vec<String> = failures.iter().map(ToString::to_string).collect();
            tracing::info!(%remote, failures = %why.join("; "), "dialback verify failed");
            unreachable
        }
    }
}

/// The core's federation front: the outbound ACL, then [`Outbound`].
pub struct Guarded {
    pub outbound: Arc<Outbound>,
    pub ctx: Arc<S2sContext>,
}

impl std::fmt::Debug for Guarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded").finish_non_exhaustive()
    }
}

impl Federation for Guarded {
    fn send(&self, envelope: Envelope) -> Result<(), Box<Refused>> {
        let to = envelope.to().domain().to_string();
        match outbound_stanza(&self.ctx.rules.load().acl, &to) {
            Verdict::Bounce { condition, reason } => {
                if let Some(s) = self.ctx.server() {
                    s.metrics.s2s.acl_denied(&to, MetricDir::Out);
                    s.metrics.s2s.bounce(condition.name());
                }
                tracing::debug!(%to, %reason, "outbound stanza refused by the ACL");
                Err(Box::new(Refused {
                    envelope,
                    error: StanzaError::new(condition).with_text(reason),
                }))
            }
            _ => self.outbound.send(envelope),
        }
    }
}
