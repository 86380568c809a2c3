//! Accept loops for the STARTTLS and direct-TLS client ports. Admission (rate, caps) is
//! decided before any byte is parsed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::admission::{Admission, AdmissionLimits};
use super::C2s;
use crate::error::CoreError;
use crate::server::Server;

/// The addresses actually bound (port 0 in the settings picks a free port), and the
/// connection caps in effect.
#[derive(Debug, Clone, Default)]
pub struct Listeners {
    pub starttls: Vec<SocketAddr>,
    pub direct_tls: Vec<SocketAddr>,
    /// `max_connections` after clamping below the open-files limit.
    pub max_connections: usize,
}

/// How often keyed rate-limit state is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Bind every configured c2s listener and start serving. The returned task ends when
/// the server shuts down.
pub async fn serve(
    server: Arc<Server>,
    parts: super::C2sParts,
) -> Result<(Listeners, JoinHandle<()>), CoreError> {
    let mut bound = Listeners::default();
    let mut sockets = Vec::new();
    for (addrs, direct) in [
        (&server.settings().listen, false),
        (&server.settings().listen_tls, true),
    ] {
        for &addr in addrs {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| CoreError::Bind { addr, source })?;
            let local = l
                .local_addr()
                .map_err(|source| CoreError::Bind { addr, source })?;
            if direct {
                bound.direct_tls.push(local);
            } else {
                bound.starttls.push(local);
            }
            sockets.push((l, direct));
        }
    }
    let s = server.settings();
    let fd_limit = super::fd_limit::raise();
    let max_connections = super::fd_limit::clamp_connections(s.max_connections, fd_limit);
    if max_connections < s.max_connections {
        tracing::warn!(
            configured = s.max_connections,
            effective = max_connections,
            fd_limit = ?fd_limit,
            "max_connections lowered below the open-files limit"
        );
    }
    bound.max_connections = max_connections;
    let admission = Admission::new(
        AdmissionLimits {
            max_connections,
            max_unauthenticated: s.max_unauthenticated.min(max_connections),
            max_unauthenticated_per_ip: s.max_unauthenticated_per_ip,
            per_ip_per_sec: s.connections_per_ip_per_sec,
            per_ip_burst: s.connections_per_ip_burst,
        },
        server.metrics.connections.clone(),
    );
    let c2s = Arc::new(C2s::new(Arc::clone(&server), parts));
    let mut tasks = Vec::new();
    for (listener, direct) in sockets {
        tasks.push(tokio::spawn(accept_loop(
            Arc::clone(&c2s),
            listener,
            direct,
            Arc::clone(&admission),
        )));
    }
    let housekeeping = {
        let mut shutdown = server.shutdown_signal();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(PRUNE_EVERY) => {
                        admission.prune();
                        c2s.server.auth_throttle.prune();
                    }
                    () = crate::server::stopping(&mut shutdown) => return,
                }
            }
        })
    };
    let all = tokio::spawn(async move {
        for t in tasks {
            let _ = t.await;
        }
        housekeeping.abort();
    });
    Ok((bound, all))
}

async fn accept_loop(
    c2s: Arc<C2s>,
    listener: TcpListener,
    direct_tls: bool,
    admission: Arc<Admission>,
) {
    let server = &c2s.server;
    let mut shutdown = server.shutdown_signal();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = crate::server::stopping(&mut shutdown) => return,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let guard = match admission.admit(peer.ip()) {
            Ok(g) => g,
            Err(refusal) => {
                server.metrics.refused(refusal.label());
                tracing::debug!(%peer, reason = refusal.label(), "connection refused");
                drop(tcp);
                continue;
            }
        };
        server.spawn_tracked(super::connection::handle(
            Arc::clone(&c2s),
            tcp,
            peer,
            direct_tls,
            guard,
        ));
    }
}
