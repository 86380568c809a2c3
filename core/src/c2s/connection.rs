//! One accepted client connection from start to end: negotiation, then the bound
//! session. The admission guard lives for the whole task, so its slot, permits and
//! gauge come back however the task ends.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tracing::Instrument;

use super::admission::ConnGuard;
use super::negotiate::{negotiate, Negotiated};
use super::session::Session;
use super::C2s;

/// Serve one accepted TCP connection to the end.
pub(crate) async fn handle(
    c2s: Arc<C2s>,
    tcp: TcpStream,
    peer: SocketAddr,
    direct_tls: bool,
    mut guard: ConnGuard,
) {
    let server = Arc::clone(&c2s.server);
    let conn_id = server.router.next_conn_id();
    let span = tracing::info_span!("c2s", conn = conn_id, %peer);
    async move {
        // Negotiation is boxed so its state is freed once the session runs, and what it
        // hands over goes into the boxed session before the session loop starts: an idle
        // session's task then holds only the loop's state.
        let session = {
            let negotiated = Box::pin(negotiate(
                &c2s,
                tcp,
                direct_tls,
                peer.ip(),
                &mut guard,
                conn_id,
            ))
            .await;
            match negotiated {
                None | Some((_, Negotiated::Closed)) => None,
                Some((conn, Negotiated::Bound(bound))) => {
                    tracing::info!(jid = %bound.handle.jid, "session bound");
                    Some(Session::new(Arc::clone(&server), conn, bound))
                }
                Some((conn, Negotiated::Resumed(detached, h))) => {
                    tracing::info!(jid = %detached.handle.jid, "session resumed");
                    Some(Session::resume(Arc::clone(&server), conn, *detached, h))
                }
            }
        };
        if let Some(session) = session {
            session.run().await;
        }
        drop(guard);
    }
    .instrument(span)
    .await;
}
