//! Setting up one outbound s2s stream on one address: TCP, direct TLS or STARTTLS,
//! then the [`Initiating`] machine until it is established (delivery) or has the
//! authoritative server's answer (dialback verify).

use std::net::SocketAddr;
use std::sync::Arc;

use herald_certs::PeerRole;
use herald_translate::s2s::{DialbackOutcome, Initiating, InitiatingAction, Transport};
use tokio::net::TcpStream;

use super::context::S2sContext;
use super::dns::Candidate;
use super::io::S2sIo;

/// How a negotiation ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Done {
    Established,
    Verified(DialbackOutcome),
}

/// What makes the machine once the transport is known.
pub(crate) type MakeMachine<'a> =
    &'a (dyn Fn(Transport, std::time::Instant) -> Initiating + Send + Sync);

pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Connect to `addr` of `candidate` for a stream from `local` to `remote` and drive the
/// machine `make` builds until [`Done`]. The caller bounds the time.
pub(crate) async fn negotiate(
    ctx: &Arc<S2sContext>,
    local: &str,
    remote: &str,
    candidate: &Candidate,
    addr: SocketAddr,
    make: MakeMachine<'_>,
) -> Result<(S2sIo, Initiating, Done), String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("TCP: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let mut io = S2sIo::Plain(tcp);
    let transport = if candidate.direct_tls {
        tls_client(ctx, &mut io, local, remote).await?;
        let facts = ctx.cert_facts(&io.peer_chain(), remote, PeerRole::Server);
        Transport::DirectTls(facts)
    } else {
        Transport::Plain
    };
    let mut m = make(transport, now());
    let mut verified = None;
    loop {
        while let Some(action) = m.poll_action() {
            match action {
                InitiatingAction::Send(xml) => {
                    io.write(xml.as_bytes())
                        .await
                        .map_err(|e| format!("write: {e}"))?;
                }
                InitiatingAction::StartTls => {
                    tls_client(ctx, &mut io, local, remote).await?;
                    let facts = ctx.cert_facts(&io.peer_chain(), remote, PeerRole::Server);
                    m.tls_established(facts);
                }
                InitiatingAction::Established { local, method } => {
                    tracing::debug!(%local, %remote, ?method, "s2s outbound stream established");
                    return Ok((io, m, Done::Established));
                }
                InitiatingAction::VerifyResult { outcome } => verified = Some(outcome),
                InitiatingAction::Failed { reason, .. } => {
                    if let Some(server) = ctx.server() {
                        server.metrics.s2s.auth_failure(fail_label(reason));
                    }
                    io.close().await;
                    return Err(format!("stream refused: {reason:?}"));
                }
                InitiatingAction::Close => {
                    io.close().await;
                    return match verified {
                        Some(outcome) => Ok((S2sIo::Gone, m, Done::Verified(outcome))),
                        None => Err("the stream closed during negotiation".into()),
                    };
                }
                InitiatingAction::DomainFailed { .. } => {}
            }
        }
        let deadline = m.poll_timeout();
        let mut got = Vec::new();
        let read = tokio::select! {
            read = io.read(|b: &[u8]| got.extend_from_slice(b)) => Some(read),
            () = sleep_until(deadline) => None,
        };
        match read {
            Some(Ok(true)) => m.receive(&got, now()),
            Some(Ok(false)) => m.connection_lost(),
            Some(Err(e)) => {
                tracing::debug!(error = %e, %remote, "s2s read failed");
                m.connection_lost();
            }
            None => m.handle_timeout(now()),
        }
    }
}

/// The TLS client handshake on `io` towards `remote`.
async fn tls_client(
    ctx: &Arc<S2sContext>,
    io: &mut S2sIo,
    local: &str,
    remote: &str,
) -> Result<(), String> {
    let config = ctx.client_tls(local, remote)?;
    if let Err(e) = io.connect_tls(config, remote).await {
        if let Some(server) = ctx.server() {
            server.metrics.s2s.tls_failure("handshake");
        }
        return Err(format!("TLS with {remote}: {e}"));
    }
    Ok(())
}

/// Sleep until `deadline`, forever without one.
pub(crate) async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

fn fail_label(reason: herald_translate::s2s::FailReason) -> &'static str {
    use herald_translate::s2s::FailReason as F;
    match reason {
        F::TlsUnavailable => "tls-unavailable",
        F::TlsRefused => "tls-refused",
        F::NoAuthMethod => "no-auth-method",
        F::SaslFailed => "sasl-failed",
        F::DialbackInvalid => "dialback-invalid",
        F::DialbackError(_) => "dialback-error",
        F::PeerError(_) => "peer-error",
        F::LocalError(_) => "local-error",
        F::PeerClosed => "peer-closed",
        F::ConnectionLost => "connection-lost",
    }
}
