//! The real [`Connector`]: route or DNS, TCP, TLS, authentication (see
//! [`super::negotiate`]), then one task per established stream that writes what the
//! [`S2sLink`] hands it. Also the dialback verify connections the inbound side needs,
//! and [`Guarded`], the core's `Federation`: the outbound ACL in front of [`Outbound`].

use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// What an established stream holds for its task before it refuses more.
    link_stanzas: usize,
    link_bytes: usize,
}

impl S2sConnector {
    pub fn new(ctx: Arc<S2sContext>) -> Self {
        Self {
            ctx,
            link_stanzas: 4096,
            link_bytes: 4 << 20,
        }
    }

    /// Bound what an established stream holds (`s2s.send_queue`, `send_queue_bytes`).
    #[must_use]
    pub fn with_link_limits(mut self, stanzas: usize, bytes: usize) -> Self {
        self.link_stanzas = stanzas.max(1);
        self.link_bytes = bytes.max(1);
        self
    }
}

impl Connector for S2sConnector {
    fn connect(&self, domain: String, handle: OutboundHandle) -> Connecting {
        let ctx = Arc::clone(&self.ctx);
        let (link_stanzas, link_bytes) = (self.link_stanzas, self.link_bytes);
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
            let (tx, rx) = mpsc::channel(link_stanzas);
            let closing = Arc::new(Notify::new());
            let queued = Arc::new(AtomicUsize::new(0));
            let link = Link {
                tx,
                closing: Arc::clone(&closing),
                queued: Arc::clone(&queued),
                max_bytes: link_bytes,
            };
            let rx = LinkRx { rx, queued };
            // Tracked: shutdown waits (bounded) for the stream's system-shutdown.
            let server = ctx
                .server()
                .ok_or_else(|| Failure::Refused("shutting down".into()))?;
            server.spawn_tracked(run(ctx, domain, io, machine, rx, closing, handle));
            Ok(Arc::new(link) as Arc<dyn S2sLink>)
        })
    }
}

/// The handle on one established outbound stream: a queue bounded in stanzas (the
/// channel) and in bytes (`queued`, shared with the task, which takes off what it
/// receives).
struct Link {
    tx: mpsc::Sender<(Envelope, usize)>,
    closing: Arc<Notify>,
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
}

impl S2sLink for Link {
    fn send(&self, env: Envelope) -> Result<(), LinkRefusal> {
        let size = approx_size(env.stanza());
        let before = self.queued.fetch_add(size, Ordering::AcqRel);
        // One stanza always fits an empty queue, however large.
        if before > 0 && before + size > self.max_bytes {
            self.queued.fetch_sub(size, Ordering::AcqRel);
            return Err(LinkRefusal::Full(Box::new(env)));
        }
        self.tx.try_send((env, size)).map_err(|e| {
            self.queued.fetch_sub(size, Ordering::AcqRel);
            match e {
                mpsc::error::TrySendError::Full((env, _)) => LinkRefusal::Full(Box::new(env)),
                mpsc::error::TrySendError::Closed((env, _)) => LinkRefusal::Gone(Box::new(env)),
            }
        })
    }

    fn close(&self) {
        self.closing.notify_one();
    }

    fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// The established stream to `remote`: stanzas from the link out, until either side
/// ends it; whatever was accepted and not written bounces.
async fn run(
    ctx: Arc<S2sContext>,
    remote: String,
    mut io: S2sIo,
    mut m: Initiating,
    mut rx: LinkRx,
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
                        Some(env) => send_one(&ctx, &mut m, &remote, env).await,
                        None => break,
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
    while let Some(env) = rx.try_recv() {
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

/// The task's end of a [`Link`]: what it takes off no longer counts against the
/// link's byte bound.
struct LinkRx {
    rx: mpsc::Receiver<(Envelope, usize)>,
    queued: Arc<AtomicUsize>,
}

impl LinkRx {
    fn taken(&self, (env, size): (Envelope, usize)) -> Envelope {
        self.queued.fetch_sub(size, Ordering::AcqRel);
        env
    }

    async fn recv(&mut self) -> Option<Envelope> {
        let got = self.rx.recv().await?;
        Some(self.taken(got))
    }

    fn try_recv(&mut self) -> Option<Envelope> {
        let got = self.rx.try_recv().ok()?;
        Some(self.taken(got))
    }

    fn close(&mut self) {
        self.rx.close();
    }
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

#[cfg(test)]
mod tests {
    use herald_translate::{ns, Element, Jid};

    use super::*;

    fn msg(n: u32, body: usize) -> Envelope {
        let el = Element::new("message", ns::CLIENT)
            .with_attr("id", n.to_string())
            .with_child(Element::new("body", ns::CLIENT).with_text("x".repeat(body)));
        Envelope::new(
            Jid::parse("alice@herald.example/desk").expect("from"),
            Jid::parse("bob@remote.example").expect("to"),
            el,
        )
        .expect("envelope")
    }

    fn link(stanzas: usize, max_bytes: usize) -> (Link, LinkRx) {
        let (tx, rx) = mpsc::channel(stanzas);
        let queued = Arc::new(AtomicUsize::new(0));
        let link = Link {
            tx,
            closing: Arc::new(Notify::new()),
            queued: Arc::clone(&queued),
            max_bytes,
        };
        (link, LinkRx { rx, queued })
    }

    #[test]
    fn a_link_is_bounded_in_bytes_and_taking_frees_them() {
        let (link, mut rx) = link(100, 3000);
        let mut sent = 0;
        let refused = loop {
            match link.send(msg(sent, 900)) {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent < 100, "the byte bound never applied");
        };
        assert!(matches!(refused, LinkRefusal::Full(_)));
        assert!(
            (2..=3).contains(&sent),
            "{sent} stanzas of ~1 KB fit 3000 bytes"
        );
        let first = rx.try_recv().expect("a queued stanza");
        assert_eq!(first.stanza().attr("id"), Some("0"));
        link.send(msg(sent, 900))
            .expect("room again once one was taken");
        while rx.try_recv().is_some() {}
        assert_eq!(rx.queued.load(Ordering::Acquire), 0);
    }

    #[test]
    fn one_stanza_larger_than_the_bound_still_goes_to_an_empty_link() {
        let (link, mut rx) = link(100, 1024);
        link.send(msg(1, 4000)).expect("an empty link takes it");
        assert!(matches!(link.send(msg(2, 10)), Err(LinkRefusal::Full(_))));
        assert!(rx.try_recv().is_some());
        link.send(msg(3, 10)).expect("empty again");
    }

    #[test]
    fn a_link_is_bounded_in_stanzas_and_a_closed_one_is_gone() {
        let (link, mut rx) = link(2, 1 << 20);
        link.send(msg(1, 1)).expect("first");
        link.send(msg(2, 1)).expect("second");
        assert!(matches!(link.send(msg(3, 1)), Err(LinkRefusal::Full(_))));
        rx.close();
        while rx.try_recv().is_some() {}
        assert!(matches!(link.send(msg(4, 1)), Err(LinkRefusal::Gone(_))));
        assert_eq!(rx.queued.load(Ordering::Acquire), 0);
    }
}
