//! A client connection up to a bound (or resumed) session: moves bytes between the
//! socket and the sans-IO negotiation machine, performs the TLS handshake it asks for,
//! and answers its storage and binding requests, with failed-authentication throttling.

use std::net::IpAddr;
use std::sync::Arc;

use herald_translate::negotiation::{Action, Negotiation};
use herald_translate::{Jid, StanzaError, StanzaErrorCondition, StreamError, StreamErrorCondition};
use tokio::net::TcpStream;

use super::admission::ConnGuard;
use super::io::Conn;
use super::throttle::Attempt;
use super::transport::Transport;
use super::C2s;
use crate::clock::now;
use crate::router::{Bound, ConnInfo, QueueLimits};
use crate::server::Server;
use crate::services::stream_mgmt::Detached;

/// How negotiation ended.
pub(crate) enum Negotiated {
    Bound(Bound),
    Resumed(Box<Detached>, u32),
    Closed,
}

/// Everything up to a bound or resumed session. None when the TLS handshake of a
/// direct-TLS connection failed.
pub(crate) async fn negotiate(
    c2s: &C2s,
    tcp: TcpStream,
    direct_tls: bool,
    peer: IpAddr,
    guard: &mut ConnGuard,
    conn_id: u64,
) -> Option<(Conn, Negotiated)> {
    let server = &c2s.server;
    let _ = tcp.set_nodelay(true);
    let timeout = c2s.negotiation.negotiation_timeout;
    let io = if direct_tls {
        let handshake = Transport::accept_tls(tcp, Arc::clone(&c2s.tls_direct));
        match tokio::time::timeout(timeout, handshake).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                return None;
            }
            Err(_) => return None,
        }
    } else {
        Transport::plain(tcp)
    };
    let mut n = Negotiator {
        c2s,
        server,
        neg: Negotiation::from_entropy(Arc::clone(&c2s.negotiation), direct_tls, now()),
        conn: Conn::new(
            io,
            herald_translate::StreamReader::new(server.settings().limits_preauth()),
        ),
        conn_id,
        peer,
        direct_tls,
        guard,
        attempt: None,
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
            () = tokio::time::sleep_until(deadline) => n.neg.handle_timeout(now()),
            () = crate::server::stopping(&mut shutdown) => {
                n.neg.fail(StreamError::new(StreamErrorCondition::SystemShutdown));
            }
        }
    };
    let mut conn = n.conn;
    if matches!(outcome, Negotiated::Closed) {
        conn.close().await;
    }
    Some((conn, outcome))
}

/// A connection in negotiation: the machine, the bytes, and what binding needs.
struct Negotiator<'a> {
    c2s: &'a C2s,
    server: &'a Arc<Server>,
    neg: Negotiation,
    conn: Conn,
    conn_id: u64,
    peer: IpAddr,
    direct_tls: bool,
    guard: &'a mut ConnGuard,
    /// The authentication attempt in progress (its place in the per-account cap).
    attempt: Option<Attempt>,
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
                    self.neg.handle_event(ev, now());
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
        while let Some(action) = self.neg.poll_action() {
            match action {
                Action::Send(s) => self.conn.out.push_str(&s),
                Action::StartTls => {
                    if !self.start_tls().await {
                        return Some(Negotiated::Closed);
                    }
                }
                Action::LookupCredentials { username, hash } => {
                    match self.c2s.server.auth_throttle.check(self.peer, &username) {
                        Ok(attempt) => self.attempt = Some(attempt),
                        Err(scope) => {
                            server.metrics.auth_throttled(scope.label());
                            tracing::info!(
                                %username,
                                scope = scope.label(),
                                "authentication refused: too many recent or concurrent attempts"
                            );
                            self.neg.credentials_refused(now());
                            continue;
                        }
                    }
                    let record = server
                        .db
                        .run(move |s| s.credentials(&username, hash))
                        .await
                        .unwrap_or_else(|e| {
                            if !matches!(
                                e,
                                crate::CoreError::Store(crate::store::StoreError::NoSuchUser(_))
                            ) {
                                tracing::error!(error = %e, "credential lookup failed");
                            }
                            None
                        });
                    self.neg.credentials(record, now());
                }
                Action::AuthFailed { username: account } => {
                    self.attempt = None;
                    server.metrics.auth_failures.inc();
                    for scope in self
                        .c2s
                        .server
                        .auth_throttle
                        .failed(self.peer, account.as_deref())
                    {
                        server.metrics.auth_block(scope.label());
                        tracing::warn!(peer = %self.peer, account = ?account, scope = scope.label(), "authentication temporarily blocked");
                    }
                    tracing::info!(account = ?account, "authentication failed");
                }
                Action::Authenticated { username } => {
                    self.attempt = None;
                    tracing::debug!(%username, "authenticated");
                    self.guard.authenticated();
                    self.conn.reader.reset();
                    self.conn.reader.set_limits(server.settings().limits());
                }
                Action::Bind { resource } => {
                    let result = self.bind(resource);
                    let (jid, bound) = match result {
                        Ok(b) => (Ok(b.handle.jid.clone()), Some(b)),
                        Err(e) => (Err(e), None),
                    };
                    self.neg.bind_result(jid);
                    if let Some(b) = bound {
                        if let Some(done) = self.finish_bind(b).await {
                            return Some(done);
                        }
                    }
                }
                Action::Resume { previd, h } => {
                    let user = self.user_jid();
                    let found = match user
                        .as_ref()
                        .and_then(|u| server.detached.take_for(&previd, u))
                    {
                        Some(d) => Some(d),
                        None => match &user {
                            Some(u) => take_over_live(server, u, &previd).await,
                            None => None,
                        },
                    };
                    match found {
                        Some(d) => {
                            self.neg.resumed();
                            if self.conn.flush().await.is_err() {
                                server.finish_detached(d).await;
                                return Some(Negotiated::Closed);
                            }
                            return Some(Negotiated::Resumed(Box::new(d), h));
                        }
                        None => self.neg.resume_failed(),
                    }
                }
                Action::Established { .. } => {
                    // Handled with the bind result (finish_bind).
                }
                Action::Close => {
                    if let Some(condition) = self.neg.error() {
                        server.metrics.stream_error(condition.name());
                    }
                    self.conn.close().await;
                    return Some(Negotiated::Closed);
                }
            }
        }
        if self.conn.flush().await.is_err() {
            return Some(Negotiated::Closed);
        }
        None
    }

    /// The bind succeeded: send the result (queued by the machine) and hand over.
    async fn finish_bind(&mut self, bound: Bound) -> Option<Negotiated> {
        // Everything the machine queued up to `Established`, including the bind result.
        while let Some(action) = self.neg.poll_action() {
            match action {
                Action::Send(s) => self.conn.out.push_str(&s),
                Action::Established { .. } => break,
                _ => {}
            }
        }
        if self.conn.flush().await.is_err() {
            self.server.unregister(&bound.handle);
            return Some(Negotiated::Closed);
        }
        Some(Negotiated::Bound(bound))
    }

    /// Flush `<proceed/>`, refuse pipelined data, run the TLS handshake.
    async fn start_tls(&mut self) -> bool {
        let conn = &mut self.conn;
        if conn.flush().await.is_err() {
            return false;
        }
        if !conn.reader.only_whitespace_buffered() {
            // Data pipelined behind <starttls/> would be read as if it had come over TLS
            // (a command injection): refuse the connection. Whitespace between elements
            // (a newline after <starttls/>) is not data; the reset below drops it.
            tracing::warn!("data after <starttls/>; closing");
            return false;
        }
        let Some(mut tcp) = conn.io.take_plain() else {
            return false;
        };
        let tls = Arc::clone(&self.c2s.tls);
        let handshake = async move {
            skip_whitespace(&mut tcp).await?;
            Transport::accept_tls(tcp, tls).await
        };
        match tokio::time::timeout(self.c2s.negotiation.negotiation_timeout, handshake).await {
            Ok(Ok(tls)) => conn.io = tls,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "STARTTLS handshake failed");
                return false;
            }
            Err(_) => return false,
        }
        conn.reader.reset();
        self.neg.tls_established();
        true
    }

    /// The authenticated user's bare JID.
    fn user_jid(&self) -> Option<Jid> {
        let username = self.neg.username()?;
        let domain = self
            .neg
            .domain()
            .unwrap_or_else(|| self.server.default_domain());
        Jid::new(Some(username), domain, None).ok()
    }

    fn bind(&self, resource: Option<String>) -> Result<Bound, StanzaError> {
        let server = self.server;
        let bare = self
            .user_jid()
            .ok_or_else(|| StanzaError::new(StanzaErrorCondition::JidMalformed))?;
        let limits = QueueLimits {
            stanzas: server.settings().send_queue,
            bytes: server.settings().send_queue_bytes,
        };
        let bound = server.router.bind(
            &bare,
            resource,
            self.conn_id,
            ConnInfo {
                no_presence: false,
                ip: Some(self.peer),
                direct_tls: self.direct_tls,
                since_unix_ms: crate::time::now_unix_ms(),
            },
            limits,
            server.settings().max_sessions_per_account,
        )?;
        if let Some(old) = &bound.replaced {
            tracing::info!(jid = %old.jid, "resource conflict: replacing the older session");
            old.close(StreamError::with_text(
                StreamErrorCondition::Conflict,
                "replaced by a new session",
            ));
        } else {
            server.metrics.sessions.inc();
        }
        Ok(bound)
    }
}

/// Drop XML whitespace that reaches the socket after `<proceed/>` ahead of the
/// ClientHello: a newline the client wrote after `<starttls/>` that arrived too late for
/// the reader to see it. A TLS record never starts with such a byte (a handshake record
/// starts with 0x16), so this cannot swallow any of the handshake; any other byte is
/// left for the handshake to judge.
async fn skip_whitespace(tcp: &mut TcpStream) -> std::io::Result<()> {
    use tokio::io::AsyncReadExt as _;
    let mut buf = [0u8; 64];
    loop {
        let n = tcp.peek(&mut buf).await?;
        let spaces = buf[..n]
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .count();
        if spaces == 0 {
            // The first byte of the handshake, or end of stream: the handshake reports it.
            return Ok(());
        }
        tcp.read_exact(&mut buf[..spaces]).await?;
    }
}

/// XEP-0198 §5: the stream to resume is still open on another connection (the client
/// switched networks before the server noticed). Ask that session to close with
/// `conflict` and detach, then take it.
async fn take_over_live(server: &Arc<Server>, user: &Jid, previd: &str) -> Option<Detached> {
    let live = server.router.by_sm_id(user, previd)?;
    tokio::time::timeout(std::time::Duration::from_secs(5), live.take_over())
        .await
        .ok()
        .flatten()?;
    server.detached.take_for(previd, user)
}
