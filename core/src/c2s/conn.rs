//! One client connection up to a bound (or resumed) session: moves bytes between the
//! socket and the sans-IO negotiation machine, performs the TLS handshake it asks for,
//! and answers its storage and binding requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use herald_translate::negotiation::{Action, Negotiation};
use herald_translate::{Jid, StreamError, StreamErrorCondition, StreamReader};
use std::cell::RefCell;

use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};
use tracing::Instrument;

use super::session::Session;
use super::sm::Detached;
use super::tls::TlsStream;
use super::transport::Transport;
use crate::router::Outbound;
use crate::server::Server;

/// Size of the per-thread read buffer.
const READ_CHUNK: usize = 32 * 1024;

thread_local! {
    /// One read buffer per worker thread instead of one per connection: an idle
    /// connection then holds no read buffer at all (bytes go straight into its reader).
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// How long closing a connection may wait for the peer to take the last bytes.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The byte-moving half of a connection, shared by negotiation and the session.
pub(crate) struct Conn {
    pub(crate) io: Transport,
    pub(crate) reader: StreamReader,
    /// XML queued for the client.
    pub(crate) out: String,
    /// Bytes for the socket (ciphertext under TLS), written from `wire_pos` on.
    wire: Vec<u8>,
    wire_pos: usize,
}

impl Conn {
    pub(crate) fn new(io: Transport, reader: StreamReader) -> Self {
        Self {
            io,
            reader,
            out: String::new(),
            wire: Vec::new(),
            wire_pos: 0,
        }
    }

    /// Write what is queued. Errors mean the peer is gone. Cancel-safe: whatever the
    /// socket has not taken stays queued for the next flush.
    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            let sealed = self.io.seal(self.out.as_bytes(), &mut self.wire);
            self.out.clear();
            if self.out.capacity() > 1024 {
                // Idle connections should not keep the buffer of their largest burst.
                self.out = String::new();
            }
            sealed?;
        }
        while self.wire_pos < self.wire.len() {
            let n = self.io.write(&self.wire[self.wire_pos..]).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.wire_pos += n;
        }
        self.wire_pos = 0;
        self.wire.clear();
        if self.wire.capacity() > 1024 {
            self.wire = Vec::new();
        }
        Ok(())
    }

    /// Read once into the XML reader. Ok(false) on end of stream. Cancel-safe: bytes
    /// are fed to the reader in the same poll that reads them.
    pub(crate) async fn read(&mut self) -> std::io::Result<bool> {
        std::future::poll_fn(|cx| {
            SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                let reader = &mut self.reader;
                self.io
                    .poll_read_with(cx, &mut scratch[..], &mut self.wire, &mut |bytes| {
                        reader.feed(bytes);
                    })
            })
        })
        .await
    }

    /// Flush and close, bounded: a peer that does not read cannot hold the task.
    pub(crate) async fn close(&mut self) {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            let _ = self.flush().await;
            if self.io.close_notify(&mut self.wire).is_ok() {
                let _ = self.flush().await;
            }
            let _ = self.io.shutdown().await;
        })
        .await;
    }
}

/// How negotiation ended.
enum Negotiated {
    Bound(Jid),
    Resumed(Box<Detached>, u32),
    Closed,
}

/// Serve one accepted TCP connection to the end.
pub(crate) async fn handle(
    server: Arc<Server>,
    tcp: TcpStream,
    peer: SocketAddr,
    direct_tls: bool,
) {
    let conn_id = server.router.next_conn_id();
    let span = tracing::info_span!("c2s", conn = conn_id, %peer);
    server.metrics.connections.inc();
    run(Arc::clone(&server), tcp, direct_tls, conn_id)
        .instrument(span)
        .await;
    server.metrics.connections.dec();
}

async fn run(server: Arc<Server>, tcp: TcpStream, direct_tls: bool, conn_id: u64) {
    // Negotiation is boxed so its state is freed once the session runs: an idle session
    // then holds only the session loop's state.
    let Some((conn, outcome, rx, kick)) =
        Box::pin(negotiate(&server, tcp, direct_tls, conn_id)).await
    else {
        return;
    };
    match outcome {
        Negotiated::Closed => {}
        Negotiated::Bound(jid) => {
            tracing::info!(%jid, "session bound");
            server.metrics.sessions.inc();
            Session::new(server, conn, jid, conn_id, rx, kick)
                .run()
                .await;
        }
        Negotiated::Resumed(detached, h) => {
            tracing::info!(jid = %detached.jid, "session resumed");
            Session::resume(server, conn, *detached, h).run().await;
        }
    }
}

/// Everything up to a bound or resumed session. None when the TLS handshake of a
/// direct-TLS connection failed.
async fn negotiate(
    server: &Arc<Server>,
    tcp: TcpStream,
    direct_tls: bool,
    conn_id: u64,
) -> Option<(Conn, Negotiated, mpsc::Receiver<Outbound>, Arc<Notify>)> {
    let _ = tcp.set_nodelay(true);
    let io = if direct_tls {
        let handshake = TlsStream::accept(tcp, Arc::clone(&server.tls_direct));
        match tokio::time::timeout(server.negotiation.negotiation_timeout, handshake).await {
            Ok(Ok(s)) => Transport::Tls(Box::new(s)),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                return None;
            }
            Err(_) => return None,
        }
    } else {
        Transport::Plain(tcp)
    };
    let (tx, rx) = mpsc::channel(server.settings.send_queue);
    let mut n = Negotiator {
        server,
        neg: Negotiation::new(Arc::clone(&server.negotiation), direct_tls, Instant::now()),
        conn: Conn::new(io, StreamReader::new(server.settings.limits_preauth())),
        conn_id,
        tx,
        kick: Arc::new(Notify::new()),
    };
    let mut shutdown = server.shutdown_signal();
    let outcome = loop {
        if let Some(done) = n.pump().await {
            break done;
        }
        let deadline = n
            .neg
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + std::time::Duration::from_secs(3600));
        tokio::select! {
            r = n.conn.read() => match r {
                Ok(true) => {
                    if let Some(done) = n.feed_events().await {
                        break done;
                    }
                }
                Ok(false) | Err(_) => break Negotiated::Closed,
            },
            () = tokio::time::sleep_until(deadline) => n.neg.handle_timeout(Instant::now()),
            () = crate::server::stopping(&mut shutdown) => {
                n.neg.fail(StreamError::new(StreamErrorCondition::SystemShutdown));
            }
        }
    };
    let Negotiator { mut conn, kick, .. } = n;
    if matches!(outcome, Negotiated::Closed) {
        conn.close().await;
    }
    Some((conn, outcome, rx, kick))
}

/// A connection in negotiation: the machine, the bytes, and what binding needs.
struct Negotiator<'a> {
    server: &'a Arc<Server>,
    neg: Negotiation,
    conn: Conn,
    conn_id: u64,
    tx: mpsc::Sender<Outbound>,
    kick: Arc<Notify>,
}

impl Negotiator<'_> {
    /// Hand every complete event from the reader to the machine, performing its actions
    /// between events (a credentials lookup must finish before the next element is read).
    async fn feed_events(&mut self) -> Option<Negotiated> {
        loop {
            if self.neg.is_closed() {
                return self.pump().await;
            }
            match self.conn.reader.next_event() {
                Ok(Some(ev)) => {
                    self.neg.handle_event(ev, Instant::now());
                    if let Some(done) = self.pump().await {
                        return Some(done);
                    }
                }
                Ok(None) => return None,
                Err(e) => {
                    self.neg.handle_xml_error(&e);
                    return self.pump().await;
                }
            }
        }
    }

    /// Perform queued actions. Some(outcome) when negotiation is over.
    async fn pump(&mut self) -> Option<Negotiated> {
        let server = self.server;
        let neg = &mut self.neg;
        let conn = &mut self.conn;
        while let Some(action) = neg.poll_action() {
            match action {
                Action::Send(s) => conn.out.push_str(&s),
                Action::StartTls => {
                    if conn.flush().await.is_err() {
                        return Some(Negotiated::Closed);
                    }
                    if conn.reader.buffered_len() > 0 {
                        // Data pipelined behind <starttls/> would be read as if it had come
                        // over TLS (a command injection): refuse the connection.
                        tracing::warn!("data after <starttls/>; closing");
                        return Some(Negotiated::Closed);
                    }
                    let Transport::Plain(tcp) =
                        std::mem::replace(&mut conn.io, Transport::Detached)
                    else {
                        return Some(Negotiated::Closed);
                    };
                    let handshake = TlsStream::accept(tcp, Arc::clone(&server.tls));
                    match tokio::time::timeout(server.negotiation.negotiation_timeout, handshake)
                        .await
                    {
                        Ok(Ok(tls)) => conn.io = Transport::Tls(Box::new(tls)),
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "STARTTLS handshake failed");
                            return Some(Negotiated::Closed);
                        }
                        Err(_) => return Some(Negotiated::Closed),
                    }
                    conn.reader.reset();
                    neg.tls_established();
                }
                Action::LookupCredentials { username, hash } => {
                    let record = server
                        .db(move |s| s.credentials(&username, hash))
                        .await
                        .unwrap_or_else(|e| {
                            tracing::error!(error = %e, "credential lookup failed");
                            None
                        });
                    neg.credentials(record, Instant::now());
                }
                Action::AuthFailed => {
                    server.metrics.auth_failures.inc();
                    tracing::info!("authentication failed");
                }
                Action::Authenticated { username } => {
                    tracing::debug!(%username, "authenticated");
                    conn.reader.reset();
                    conn.reader.set_limits(server.settings.limits());
                }
                Action::Bind { resource } => {
                    let result = bind(server, neg, self.conn_id, resource, &self.tx, &self.kick);
                    neg.bind_result(result);
                }
                Action::Resume { previd, h } => {
                    let user = neg.username().unwrap_or_default().to_string();
                    let found = match server.take_detached(&previd, &user) {
                        Some(d) => Some(d),
                        None => take_over_live(server, neg, &previd).await,
                    };
                    match found {
                        Some(d) => {
                            neg.resumed();
                            if conn.flush().await.is_err() {
                                server.finish_detached(d).await;
                                return Some(Negotiated::Closed);
                            }
                            return Some(Negotiated::Resumed(Box::new(d), h));
                        }
                        None => neg.resume_failed(),
                    }
                }
                Action::Established { jid } => {
                    if conn.flush().await.is_err() {
                        server.router.unbind(&jid, self.conn_id);
                        return Some(Negotiated::Closed);
                    }
                    return Some(Negotiated::Bound(jid));
                }
                Action::Close => {
                    if let Some(condition) = neg.error() {
                        server.metrics.stream_error(condition.name());
                    }
                    conn.close().await;
                    return Some(Negotiated::Closed);
                }
            }
        }
        if conn.flush().await.is_err() {
            return Some(Negotiated::Closed);
        }
        None
    }
}

fn bind(
    server: &Arc<Server>,
    neg: &Negotiation,
    conn_id: u64,
    resource: Option<String>,
    tx: &mpsc::Sender<Outbound>,
    kick: &Arc<Notify>,
) -> Result<Jid, herald_translate::StanzaError> {
    let username = neg.username().unwrap_or_default();
    let domain = neg.domain().unwrap_or_else(|| server.default_domain());
    let bare = Jid::new(Some(username), domain, None).map_err(|_| {
        herald_translate::StanzaError::new(herald_translate::StanzaErrorCondition::JidMalformed)
    })?;
    let (jid, replaced) = server.router.bind(
        &bare,
        resource,
        conn_id,
        tx.clone(),
        Arc::clone(kick),
        server.settings.max_sessions_per_account,
    )?;
    if let Some(old) = replaced {
        tracing::info!(%jid, "resource conflict: replacing the older session");
        let _ = old
            .tx
            .try_send(Outbound::Close(Box::new(StreamError::with_text(
                StreamErrorCondition::Conflict,
                "replaced by a new session",
            ))));
        old.kick.notify_one();
    }
    Ok(jid)
}

/// XEP-0198 §5: the stream to resume is still open on another connection (the client
/// switched networks before the server noticed). Ask that session to close with
/// `conflict` and detach, then take it.
async fn take_over_live(server: &Arc<Server>, neg: &Negotiation, previd: &str) -> Option<Detached> {
    let user = neg.username()?;
    let domain = neg.domain().unwrap_or_else(|| server.default_domain());
    let bare = Jid::new(Some(user), domain, None).ok()?;
    let live = server.router.by_sm_id(&bare, previd)?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let handed_over = async {
        live.tx.send(Outbound::Takeover(done_tx)).await.ok()?;
        done_rx.await.ok()
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), handed_over)
        .await
        .ok()
        .flatten()?;
    server.take_detached(previd, user)
}
