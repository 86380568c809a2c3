//! Inbound s2s: the `s2s.listen` (STARTTLS) and `s2s.listen_tls` (XEP-0368 direct TLS,
//! ALPN `xmpp-server`) listeners, and one task per connection driving a [`Receiving`]
//! machine: TLS over the server's SNI certificates, the peer's policy and certificate
//! from the rules, dialback through [`verify_key`] and our secret, and stanzas through
//! the inbound guard into the core's routing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use herald_certs::PeerRole;
use herald_core::metrics_s2s::Direction as MetricDir;
use herald_core::router::approx_size;
use herald_rules::federation::{admit, inbound_stanza, Direction, Verdict};
use herald_translate::s2s::{CertFacts, DialbackOutcome, Receiving, ReceivingAction};
use herald_translate::{
    Element, Envelope, Jid, StanzaError, StreamError, StreamErrorCondition as Cond,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::connector::verify_key;
use super::context::{to_client, PreauthGuard, S2sContext, StreamGuard};
use super::io::S2sIo;
use super::negotiate::{now, sleep_until};

/// How long one write may take before the peer counts as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The addresses the s2s listeners are bound to.
#[derive(Debug, Clone, Default)]
pub struct S2sListeners {
    pub starttls: Vec<SocketAddr>,
    pub direct_tls: Vec<SocketAddr>,
}

/// Bind every s2s listener and accept until the server shuts down.
pub async fn listen(
    ctx: Arc<S2sContext>,
    starttls: &[SocketAddr],
    direct_tls: &[SocketAddr],
) -> Result<(S2sListeners, JoinHandle<()>), (SocketAddr, std::io::Error)> {
    let mut bound = S2sListeners::default();
    let mut sockets = Vec::new();
    for (addrs, direct) in [(starttls, false), (direct_tls, true)] {
        for &addr in addrs {
            let l = TcpListener::bind(addr).await.map_err(|e| (addr, e))?;
            let local = l.local_addr().map_err(|e| (addr, e))?;
            if direct {
                bound.direct_tls.push(local);
            } else {
                bound.starttls.push(local);
            }
            sockets.push((l, direct));
        }
    }
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|(l, direct)| tokio::spawn(accept_loop(Arc::clone(&ctx), l, direct)))
        .collect();
    let all = tokio::spawn(async move {
        for t in tasks {
            let _ = t.await;
        }
    });
    Ok((bound, all))
}

async fn accept_loop(ctx: Arc<S2sContext>, listener: TcpListener, direct_tls: bool) {
    let Some(mut shutdown) = ctx.server().map(|s| s.shutdown_signal()) else {
        return;
    };
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = herald_core::server::stopping(&mut shutdown) => return,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let Some(unauthenticated) = ctx.preauth_guard(peer.ip()) else {
                    if let Some(s) = ctx.server() {
                        s.metrics.refused("s2s-per-ip");
                    }
                    tracing::debug!(%peer, "s2s connection refused: too many unauthenticated");
                    continue;
                };
                let span = tracing::info_span!("s2s-in", %peer, direct_tls);
                let conn = handle(Arc::clone(&ctx), tcp, direct_tls, unauthenticated);
                // Tracked: shutdown waits (bounded) for the stream's system-shutdown.
                match ctx.server() {
                    Some(s) => s.spawn_tracked(conn.instrument(span)),
                    None => return,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "s2s accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// What woke the connection task.
enum Event {
    Read(std::io::Result<bool>),
    Verified(Option<(String, String, DialbackOutcome)>),
    Timeout,
    Idle,
    /// A reload changed the ACL: check the authenticated domains again.
    Revoked,
    Shutdown,
}

/// One inbound connection, to its end.
async fn handle(
    ctx: Arc<S2sContext>,
    tcp: TcpStream,
    direct_tls: bool,
    unauthenticated: PreauthGuard,
) {
    let mut unauthenticated = Some(unauthenticated);
    let _ = tcp.set_nodelay(true);
    let Some(mut shutdown) = ctx.server().map(|s| s.shutdown_signal()) else {
        return;
    };
    let mut io = S2sIo::Plain(tcp);
    let tuning = ctx.tuning.load_full();
    let handshake = tuning.receiving.negotiation_timeout;
    if direct_tls && !tls_accept(&ctx, &mut io, true, handshake).await {
        return;
    }
    let mut m = Receiving::from_entropy(Arc::clone(&tuning.receiving), direct_tls, now());
    // Notified when a reload's ACL denies a domain authenticated here.
    let revoked = Arc::new(Notify::new());
    let (verified_tx, mut verified_rx) = mpsc::channel(16);
    // One stream gauge per authenticated domain, released when the task ends.
    let mut gauges: Vec<StreamGuard> = Vec::new();
    // Bytes read before the first domain is authenticated (`preauth_bytes`).
    let mut preauth: usize = 0;
    // Authenticated streams close after this long without input.
    let mut idle_at = tokio::time::Instant::now() + ctx.idle_timeout;
    loop {
        let mut closing = false;
        while let Some(action) = m.poll_action() {
            match action {
                ReceivingAction::Send(xml) => {
                    let wrote = tokio::time::timeout(WRITE_TIMEOUT, io.write(xml.as_bytes()));
                    if !matches!(wrote.await, Ok(Ok(()))) {
                        closing = true;
                        break;
                    }
                }
                ReceivingAction::StartTls => {
                    if !tls_accept(&ctx, &mut io, false, handshake).await {
                        return;
                    }
                    m.tls_established();
                }
                ReceivingAction::CheckPeer { remote, tls, .. } => {
                    check_peer(&ctx, &mut m, &io, remote.as_deref(), tls);
                }
                ReceivingAction::Authenticated { remote, method } => {
                    if let Err(e) = admitted(&ctx, &remote) {
                        m.fail(e);
                        continue;
                    }
                    let Some(guard) = ctx.stream_guard(&remote, MetricDir::In, true, &revoked)
                    else {
                        let text = format!("too many streams with {remote}");
                        tracing::info!(%remote, "inbound stream refused: max_connections");
                        m.fail(StreamError::with_text(Cond::ResourceConstraint, text));
                        continue;
                    };
                    tracing::info!(%remote, ?method, "inbound stream authenticated");
                    unauthenticated = None;
                    gauges.push(guard);
                }
                ReceivingAction::VerifyDialbackKey {
                    remote,
                    hosted,
                    stream_id,
                    key,
                } => {
                    let (ctx, tx) = (Arc::clone(&ctx), verified_tx.clone());
                    tokio::spawn(
                        async move {
                            let outcome =
                                verify_key(&ctx, &hosted, &remote, &stream_id, &key).await;
                            let _ = tx.send((remote, hosted, outcome)).await;
                        }
                        .in_current_span(),
                    );
                }
                ReceivingAction::CheckDialbackKey {
                    receiving,
                    originating,
                    stream_id,
                    key,
                } => {
                    let valid = ctx
                        .secret
                        .verify(&receiving, &originating, &stream_id, &key);
                    if !valid {
                        if let Some(s) = ctx.server() {
                            s.metrics.s2s.auth_failure("dialback-key-invalid");
                        }
                    }
                    m.dialback_key_checked(&receiving, &originating, &stream_id, valid);
                }
                ReceivingAction::Stanza { element } => stanza(&ctx, &mut m, element).await,
                ReceivingAction::Close => closing = true,
            }
        }
        if closing || m.is_closed() {
            break;
        }
        let mut got = Vec::new();
        let event = tokio::select! {
            read = io.read(|b: &[u8]| got.extend_from_slice(b)) => Event::Read(read),
            v = verified_rx.recv() => Event::Verified(v),
            () = sleep_until(m.poll_timeout()) => Event::Timeout,
            () = tokio::time::sleep_until(idle_at), if unauthenticated.is_none() => Event::Idle,
            () = revoked.notified() => Event::Revoked,
            () = herald_core::server::stopping(&mut shutdown) => Event::Shutdown,
        };
        match event {
            Event::Read(Ok(true)) => {
                idle_at = tokio::time::Instant::now() + ctx.idle_timeout;
                if m.authenticated_domains().is_empty() {
                    preauth += got.len();
                    if preauth > tuning.preauth_bytes {
                        let text = "too much data before authentication";
                        m.fail(StreamError::with_text(Cond::PolicyViolation, text));
                        continue;
                    }
                }
                m.receive(&got, now());
            }
            Event::Read(_) => break,
            Event::Verified(Some((remote, hosted, outcome))) => {
                if outcome != DialbackOutcome::Valid {
                    if let Some(s) = ctx.server() {
                        s.metrics.s2s.auth_failure("dialback");
                    }
                }
                m.dialback_verified(&remote, &hosted, outcome);
            }
            Event::Verified(None) => {}
            Event::Timeout => m.handle_timeout(now()),
            Event::Idle => {
                tracing::info!("inbound stream idle; closing");
                m.close();
            }
            Event::Revoked => {
                if let Some(e) = no_longer_allowed(&ctx, m.authenticated_domains()) {
                    m.fail(e);
                }
            }
            Event::Shutdown => m.fail(StreamError::new(Cond::SystemShutdown)),
        }
    }
    if let Some(condition) = m.error() {
        tracing::info!(
            error = condition.name(),
            "inbound stream closed with an error"
        );
    }
    io.close().await;
}

/// The server side of a TLS handshake, bounded by `limit`; false when it failed.
async fn tls_accept(ctx: &S2sContext, io: &mut S2sIo, direct: bool, limit: Duration) -> bool {
    let config = Arc::clone(if direct {
        &ctx.tls_direct
    } else {
        &ctx.tls_starttls
    });
    match tokio::time::timeout(limit, io.accept_tls(config)).await {
        Ok(Ok(())) => true,
        outcome => {
            let reason = if outcome.is_err() {
                "timeout"
            } else {
                "handshake"
            };
            tracing::debug!(reason, "inbound TLS handshake failed");
            if let Some(s) = ctx.server() {
                s.metrics.s2s.tls_failure(reason);
            }
            false
        }
    }
}

/// Whether the ACL lets `remote` use an inbound stream.
fn admitted(ctx: &S2sContext, remote: &str) -> Result<(), StreamError> {
    match admit(&ctx.rules.load().acl, remote, Direction::Inbound) {
        Verdict::CloseStream { condition, reason } => {
            if let Some(s) = ctx.server() {
                s.metrics.s2s.acl_denied(remote, MetricDir::In);
            }
            tracing::info!(%remote, %reason, "inbound stream refused by the ACL");
            Err(StreamError::with_text(condition, reason))
        }
        _ => Ok(()),
    }
}

/// After a reload: the stream error for the first of `authenticated` the ACL in force
/// no longer admits inbound, if any.
fn no_longer_allowed(ctx: &S2sContext, authenticated: &[String]) -> Option<StreamError> {
    let rules = ctx.rules.load();
    let denied = authenticated
        .iter()
        .find(|d| !admit(&rules.acl, d.as_str(), Direction::Inbound).is_accepted())?;
    let text = format!("federation with {denied} is no longer allowed");
    tracing::info!(remote = %denied, "inbound stream closed: the reloaded ACL denies it");
    Some(StreamError::with_text(Cond::PolicyViolation, text))
}

/// Answer `CheckPeer`: the ACL, the policy for the claimed domain, and what the peer's
/// certificate proves about it.
fn check_peer(ctx: &S2sContext, m: &mut Receiving, io: &S2sIo, remote: Option<&str>, tls: bool) {
    if let Some(remote) = remote {
        if let Err(e) = admitted(ctx, remote) {
            return m.fail(e);
        }
    }
    let policy = ctx.policy(remote.unwrap_or_default());
    let cert = match remote {
        Some(remote) if tls => ctx.cert_facts(&io.peer_chain(), remote, PeerRole::Client),
        _ => CertFacts::NONE,
    };
    m.peer_checked(policy, cert, now());
}

/// A stanza from an authenticated domain: the guard, then the core.
async fn stanza(ctx: &S2sContext, m: &mut Receiving, element: Element) {
    let parse = |name| element.attr(name).and_then(|a| Jid::parse(a).ok());
    let (Some(from), Some(to)) = (parse("from"), parse("to")) else {
        let text = "s2s stanzas need valid from and to";
        return m.fail(StreamError::with_text(Cond::ImproperAddressing, text));
    };
    let Some(server) = ctx.server() else { return };
    let rules = ctx.rules.load_full();
    let (hosted, acl) = (&rules.hosted, &rules.acl);
    let verdict = inbound_stanza(
        m.authenticated_domains(),
        hosted,
        from.domain(),
        to.domain(),
        acl,
    );
    let size = approx_size(&element) as u64;
    let Ok(env) = Envelope::parse(to_client(element)) else {
        return m.fail(StreamError::new(Cond::ImproperAddressing));
    };
    match verdict {
        Verdict::Accept { .. } => {
            // The reader is bounded by the largest limit of any domain; this domain's
            // own may be smaller (a route's `limits.max_stanza_bytes`).
            let max = rules.limits_for(from.domain()).0.max_stanza_bytes;
            if max < rules.largest_stanza_bytes() && size > u64::from(max) {
                let text = format!("stanza larger than the {max} bytes allowed for this domain");
                return m.fail(StreamError::with_text(Cond::PolicyViolation, text));
            }
            server
                .metrics
                .s2s
                .stanza(from.domain(), MetricDir::In, size);
            server.route(env).await;
            let pause = ctx.charge(from.domain(), usize::try_from(size).unwrap_or(usize::MAX));
            if !pause.is_zero() {
                server
                    .metrics
                    .s2s
                    .rate_limited(from.domain(), MetricDir::In);
                drop(server);
                tokio::time::sleep(pause).await;
            }
        }
        Verdict::CloseStream { condition, reason } => {
            tracing::info!(%reason, "inbound stanza breaks the stream's rules");
            m.fail(StreamError::with_text(condition, reason));
        }
        Verdict::Bounce { condition, reason } => {
            server.metrics.s2s.acl_denied(from.domain(), MetricDir::In);
            tracing::debug!(%reason, "inbound stanza refused by the ACL");
            if let Some(reply) = env.error_reply(&StanzaError::new(condition).with_text(reason)) {
                server.route(reply).await;
            }
        }
    }
}
