//! Accept loops for the STARTTLS and direct-TLS client ports, with the server-wide
//! connection cap and the per-IP connection rate limit applied before any parsing.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::error::CoreError;
use crate::server::Server;

/// The addresses actually bound (port 0 in the settings picks a free port).
#[derive(Debug, Clone, Default)]
pub struct Listeners {
    pub starttls: Vec<SocketAddr>,
    pub direct_tls: Vec<SocketAddr>,
}

/// Bind every configured c2s listener and start serving. The returned task ends when
/// the server shuts down.
pub async fn serve(server: Arc<Server>) -> Result<(Listeners, JoinHandle<()>), CoreError> {
    let mut bound = Listeners::default();
    let mut sockets = Vec::new();
    for (addrs, direct) in [
        (&server.settings.listen, false),
        (&server.settings.listen_tls, true),
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
    let s = &server.settings;
    let quota =
        Quota::per_second(NonZeroU32::new(s.connections_per_ip_per_sec).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(s.connections_per_ip_burst).unwrap_or(NonZeroU32::MIN));
    let limiter: Arc<DefaultKeyedRateLimiter<IpAddr>> = Arc::new(RateLimiter::keyed(quota));
    let slots = Arc::new(Semaphore::new(s.max_connections));
    let mut tasks = Vec::new();
    for (listener, direct) in sockets {
        tasks.push(tokio::spawn(accept_loop(
            Arc::clone(&server),
            listener,
            direct,
            Arc::clone(&limiter),
            Arc::clone(&slots),
        )));
    }
    let housekeeping = {
        let limiter = Arc::clone(&limiter);
        let mut shutdown = server.shutdown_signal();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(60)) => limiter.retain_recent(),
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
    server: Arc<Server>,
    listener: TcpListener,
    direct_tls: bool,
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    slots: Arc<Semaphore>,
) {
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
        if limiter.check_key(&peer.ip()).is_err() {
            server.metrics.refused("rate_limited");
            tracing::debug!(%peer, "connection rate limit hit");
            drop(tcp);
            continue;
        }
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            server.metrics.refused("max_connections");
            drop(tcp);
            continue;
        };
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            super::conn::handle(server, tcp, peer, direct_tls).await;
            drop(permit);
        });
    }
}
