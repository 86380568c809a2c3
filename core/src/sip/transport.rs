//! SIP transports (RFC 3261 §18): UDP sockets, and TCP and TLS connections, each a
//! task that frames messages by Content-Length. Parsed messages go to the endpoint;
//! messages the codec refuses are answered here, statelessly (400, 505, 513...).
//!
//! Connections are reused (RFC 3261 §18.2.2, RFC 5626): a response or a request to an
//! address that has an open connection goes over it, which is how a UA behind a NAT is
//! reached. Each connection is bounded: its queue in messages and bytes, its silence
//! (`idle_timeout_secs`), the connections per IP and in all. A `StreamGuard` releases
//! its slots and its registry entry on every way out of the task.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_translate::sip::transaction::{Remote, TransactionId, Transport};
use herald_translate::sip::{
    error_response, parse_datagram, Frame, Limits, SipError, StreamFramer, PONG,
};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch, Notify};

use super::endpoint::{EndpointTx, Input};
use crate::c2s::io::read_shared;
use crate::c2s::transport::Transport as Stream;
use crate::server::stopping;

/// How long a TLS handshake or an outbound TCP connect may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one write may stall before the connection is closed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest UDP datagram read (a larger one is truncated, hence refused).
const UDP_BUFFER: usize = 65_536;

/// The bounds of the transports, from `[sip]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TransportLimits {
    pub(crate) codec: Limits,
    pub(crate) max_connections: usize,
    pub(crate) max_connections_per_ip: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) send_queue: usize,
    pub(crate) send_queue_bytes: usize,
}

/// Why a message could not be handed to a transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendError {
    /// No socket of that kind, or no connection to that address (TLS is never opened
    /// towards a UA: it must keep its own connection).
    NoRoute,
    /// The connection's queue is full: it is being closed.
    Full,
}

/// One open TCP or TLS connection, as senders see it.
#[derive(Debug, Clone)]
struct StreamHandle {
    id: u64,
    tx: mpsc::Sender<Queued>,
    queued: Arc<AtomicUsize>,
    close: Arc<Notify>,
}

/// A message queued for a connection, and the transaction to tell if it is lost.
type Queued = (Vec<u8>, Option<TransactionId>);

/// Every SIP socket of the server, and the open connections by remote address.
#[derive(Debug)]
pub(crate) struct Transports {
    /// UDP sockets with whether each is IPv4 (read once: no syscall per send).
    udp: Vec<(bool, Arc<UdpSocket>)>,
    streams: Mutex<HashMap<(Transport, SocketAddr), StreamHandle>>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    open: AtomicUsize,
    next_id: AtomicU64,
    limits: TransportLimits,
    /// Our address per transport, for Via and Contact of what we send.
    local: HashMap<Transport, SocketAddr>,
    /// The server's shutdown signal, for the connections we open.
    shutdown: watch::Receiver<bool>,
    metrics: crate::metrics_sip::SipMetrics,
}

impl Transports {
    pub(crate) fn new(
        udp: Vec<Arc<UdpSocket>>,
        local: HashMap<Transport, SocketAddr>,
        limits: TransportLimits,
        shutdown: watch::Receiver<bool>,
        metrics: crate::metrics_sip::SipMetrics,
    ) -> Self {
        let udp = udp
            .into_iter()
            .map(|s| (s.local_addr().is_ok_and(|a| a.is_ipv4()), s))
            .collect();
        Self {
            metrics,
            udp,
            streams: Mutex::new(HashMap::new()),
            per_ip: Mutex::new(HashMap::new()),
            open: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            limits,
            local,
            shutdown,
        }
    }

    /// Our listening address for `transport` (UDP when that one is missing).
    pub(crate) fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.local
            .get(&transport)
            .or_else(|| self.local.get(&Transport::Udp))
            .or_else(|| self.local.values().next())
            .copied()
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, HashMap<(Transport, SocketAddr), StreamHandle>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a connection to `to` is open.
    pub(crate) fn has_connection(&self, to: &Remote) -> bool {
        self.streams().contains_key(&(to.transport, to.addr))
    }

    /// Hand `bytes` to the transport towards `to`. A TCP destination without a
    /// connection gets one opened in the background; if that fails, the endpoint hears
    /// a transport error for `id`.
    pub(crate) fn send(
        self: &Arc<Self>,
        to: Remote,
        bytes: Vec<u8>,
        id: Option<TransactionId>,
        endpoint: &EndpointTx,
    ) -> Result<(), SendError> {
        match to.transport {
            Transport::Udp => {
                let (_, socket) = self
                    .udp
                    .iter()
                    .find(|(v4, _)| *v4 == to.addr.is_ipv4())
                    .ok_or(SendError::NoRoute)?;
                // UDP is lossy anyway: a full socket buffer drops, retransmission recovers.
                if let Err(e) = socket.try_send_to(&bytes, to.addr) {
                    tracing::debug!(to = %to.addr, error = %e, "SIP datagram not sent");
                }
                Ok(())
            }
            Transport::Tcp | Transport::Tls | Transport::Ws => {
                let handle = self.streams().get(&(to.transport, to.addr)).cloned();
                match handle {
                    Some(h) => self.queue(&h, bytes, id),
                    None if to.transport == Transport::Tcp => {
                        let me = Arc::clone(self);
                        let endpoint = endpoint.clone();
                        tokio::spawn(async move {
                            me.connect_and_send(to.addr, bytes, id, endpoint).await
                        });
                        Ok(())
                    }
                    None => Err(SendError::NoRoute),
                }
            }
        }
    }

    fn queue(
        &self,
        h: &StreamHandle,
        bytes: Vec<u8>,
        id: Option<TransactionId>,
    ) -> Result<(), SendError> {
        let size = bytes.len();
        let queued = h.queued.load(Ordering::Acquire);
        if queued > 0 && queued + size > self.limits.send_queue_bytes {
            h.close.notify_one();
            return Err(SendError::Full);
        }
        h.queued.fetch_add(size, Ordering::AcqRel);
        if h.tx.try_send((bytes, id)).is_err() {
            h.queued.fetch_sub(size, Ordering::AcqRel);
            h.close.notify_one();
            return Err(SendError::Full);
        }
        Ok(())
    }

    async fn connect_and_send(
        self: Arc<Self>,
        addr: SocketAddr,
        bytes: Vec<u8>,
        id: Option<TransactionId>,
        endpoint: EndpointTx,
    ) {
        let failed = |endpoint: &EndpointTx| {
            if let Some(id) = id {
                let _ = endpoint.try_send(Input::TransportError { id });
            }
        };
        let Some(guard) = StreamGuard::admit(&self, addr.ip()) else {
            failed(&endpoint);
            return;
        };
        let Ok(Ok(tcp)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(addr)).await
        else {
            tracing::debug!(%addr, "SIP TCP connect failed");
            failed(&endpoint);
            return;
        };
        let _ = tcp.set_nodelay(true);
        let remote = Remote {
            addr,
            transport: Transport::Tcp,
        };
        let (handle, rx) = self.register(remote, &guard);
        let _ = self.queue(&handle, bytes, id);
        run_stream(
            Arc::clone(&self),
            Stream::plain(tcp),
            remote,
            rx,
            handle,
            guard,
            endpoint,
            self.shutdown.clone(),
        )
        .await;
    }

    fn register(
        &self,
        remote: Remote,
        guard: &StreamGuard,
    ) -> (StreamHandle, mpsc::Receiver<Queued>) {
        let (tx, rx) = mpsc::channel(self.limits.send_queue.max(1));
        let handle = StreamHandle {
            id: guard.id,
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
            close: Arc::new(Notify::new()),
        };
        self.streams()
            .insert((remote.transport, remote.addr), handle.clone());
        (handle, rx)
    }
}

/// A connection's share of the limits and its registry entry, given back on drop.
struct StreamGuard {
    transports: Arc<Transports>,
    ip: IpAddr,
    id: u64,
    key: Option<(Transport, SocketAddr)>,
}

impl StreamGuard {
    fn admit(transports: &Arc<Transports>, ip: IpAddr) -> Option<Self> {
        let limits = transports.limits;
        let mut per_ip = transports.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = per_ip.entry(ip).or_insert(0);
        if *n >= limits.max_connections_per_ip {
            return None;
        }
        if transports.open.fetch_add(1, Ordering::AcqRel) >= limits.max_connections {
            transports.open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        *n += 1;
        transports.metrics.connections.inc();
        Some(Self {
            transports: Arc::clone(transports),
            ip,
            id: transports.next_id.fetch_add(1, Ordering::Relaxed),
            key: None,
        })
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.transports.open.fetch_sub(1, Ordering::AcqRel);
        self.transports.metrics.connections.dec();
        {
            let mut per_ip = self
                .transports
                .per_ip
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(n) = per_ip.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    per_ip.remove(&self.ip);
                }
            }
        }
        if let Some(key) = self.key {
            let mut streams = self.transports.streams();
            if streams.get(&key).is_some_and(|h| h.id == self.id) {
                streams.remove(&key);
            }
        }
    }
}

/// Receive datagrams on one UDP socket until shutdown.
pub(crate) async fn run_udp(
    socket: Arc<UdpSocket>,
    transports: Arc<Transports>,
    endpoint: EndpointTx,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; UDP_BUFFER];
    let limits = transports.limits.codec;
    loop {
        let (n, from) = tokio::select! {
            biased;
            () = stopping(&mut shutdown) => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    // ICMP port unreachable and the like surface here on some systems.
                    tracing::debug!(error = %e, "SIP UDP receive error");
                    continue;
                }
            },
        };
        let data = &buf[..n];
        if data.iter().all(|b| matches!(b, b'\r' | b'\n' | 0)) {
            continue; // keep-alive
        }
        let remote = Remote {
            addr: from,
            transport: Transport::Udp,
        };
        match parse_datagram(data, &limits) {
            Ok(message) => {
                if endpoint
                    .try_send(Input::Received {
                        message,
                        from: remote,
                    })
                    .is_err()
                {
                    tracing::warn!(%from, "SIP endpoint busy: datagram dropped");
                }
            }
            Err(e) => {
                if let Some(answer) = refusal(&e, &transports.metrics) {
                    let _ = transports.send(remote, answer, None, &endpoint);
                }
            }
        }
    }
}

/// The stateless answer to a message the codec refused (nothing for a refused
/// response or ACK).
fn refusal(e: &SipError, metrics: &crate::metrics_sip::SipMetrics) -> Option<Vec<u8>> {
    metrics.malformed.inc();
    tracing::debug!(error = %e, "SIP message refused");
    let req = e.request.as_deref()?;
    if req.is_ack() || req.vias.is_empty() {
        return None;
    }
    Some(error_response(req, &e.kind, "").to_bytes())
}

/// Accept TCP (or, with a TLS configuration, TLS) connections until shutdown.
pub(crate) async fn run_listener(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    transports: Arc<Transports>,
    endpoint: EndpointTx,
    mut shutdown: watch::Receiver<bool>,
    tracker: tokio_util::task::TaskTracker,
) {
    let kind = if tls.is_some() {
        Transport::Tls
    } else {
        Transport::Tcp
    };
    loop {
        let (tcp, addr) = tokio::select! {
            biased;
            () = stopping(&mut shutdown) => return,
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "SIP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(guard) = StreamGuard::admit(&transports, addr.ip()) else {
            tracing::debug!(%addr, "SIP connection refused: connection limit");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (transports, endpoint, tls) = (Arc::clone(&transports), endpoint.clone(), tls.clone());
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let stream = match tls {
                None => Stream::plain(tcp),
                Some(config) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, Stream::accept_tls(tcp, config))
                        .await
                    {
                        Ok(Ok(s)) => s,
                        _ => {
                            tracing::debug!(%addr, "SIP TLS handshake failed");
                            return;
                        }
                    }
                }
            };
            let remote = Remote {
                addr,
                transport: kind,
            };
            let (handle, rx) = transports.register(remote, &guard);
            run_stream(
                transports, stream, remote, rx, handle, guard, endpoint, shutdown,
            )
            .await;
        });
    }
}

/// One connection: frames in, queued messages out, until either side ends it, it
/// stays silent too long, its queue overflows, or the server shuts down.
#[allow(clippy::too_many_arguments)]
async fn run_stream(
    transports: Arc<Transports>,
    stream: Stream,
    remote: Remote,
    rx: mpsc::Receiver<Queued>,
    handle: StreamHandle,
    mut guard: StreamGuard,
    endpoint: EndpointTx,
    shutdown: watch::Receiver<bool>,
) {
    guard.key = Some((remote.transport, remote.addr));
    let span = tracing::debug_span!("sip-conn", peer = %remote.addr, transport = remote.transport.via_name());
    tracing::Instrument::instrument(
        serve_stream(
            transports, stream, remote, rx, handle, guard, endpoint, shutdown,
        ),
        span,
    )
    .await;
}

#[allow(clippy::too_many_arguments)]
async fn serve_stream(
    transports: Arc<Transports>,
    mut stream: Stream,
    remote: Remote,
    mut rx: mpsc::Receiver<Queued>,
    handle: StreamHandle,
    guard: StreamGuard,
    endpoint: EndpointTx,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = transports.limits;
    let mut framer = StreamFramer::new(limits.codec);
    let mut deadline = tokio::time::Instant::now() + limits.idle_timeout;
    let mut push_error: Option<SipError> = None;
    let mut lost: Option<TransactionId> = None;
    loop {
        tokio::select! {
            biased;
            () = stopping(&mut shutdown) => break,
            () = handle.close.notified() => {
                tracing::debug!("SIP connection closed: its queue is full");
                break;
            }
            out = rx.recv() => {
                let Some((bytes, id)) = out else { break };
                handle.queued.fetch_sub(bytes.len(), Ordering::AcqRel);
                let written = stream.seal(&bytes).is_ok()
                    && matches!(tokio::time::timeout(WRITE_TIMEOUT, stream.flush()).await, Ok(Ok(())));
                if !written {
                    lost = id;
                    break;
                }
            }
            read = read_frames(&mut stream, &mut framer, &mut push_error) => {
                match read {
                    Ok(true) => {}
                    _ => break,
                }
                deadline = tokio::time::Instant::now() + limits.idle_timeout;
                if !drain_frames(&mut framer, &mut stream, remote, &endpoint, &transports).await {
                    break;
                }
                if let Some(e) = push_error.take() {
                    if let Some(answer) = refusal(&e, &transports.metrics) {
                        let _ = stream.seal(&answer);
                    }
                    break;
                }
                if stream.needs_flush() && !matches!(tokio::time::timeout(WRITE_TIMEOUT, stream.flush()).await, Ok(Ok(()))) {
                    break;
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                tracing::debug!("SIP connection idle: closed");
                break;
            }
        }
    }
    // Out of the registry first: nothing more is queued on a closing connection.
    drop(guard);
    rx.close();
    while let Ok((_, id)) = rx.try_recv() {
        if let Some(id) = id {
            let _ = endpoint.try_send(Input::TransportError { id });
        }
    }
    if let Some(id) = lost {
        let _ = endpoint.try_send(Input::TransportError { id });
    }
    stream.close().await;
}

/// Read once into the framer; a refusal of the framer is kept in `error`.
async fn read_frames(
    stream: &mut Stream,
    framer: &mut StreamFramer,
    error: &mut Option<SipError>,
) -> std::io::Result<bool> {
    read_shared(stream, &mut |bytes| {
        if error.is_none() {
            if let Err(e) = framer.push(bytes) {
                *error = Some(e);
            }
        }
    })
    .await
}

/// Hand every complete frame to the endpoint. False when the stream cannot go on (a
/// message whose end cannot be found: answered, then the connection closes).
async fn drain_frames(
    framer: &mut StreamFramer,
    stream: &mut Stream,
    remote: Remote,
    endpoint: &EndpointTx,
    transports: &Transports,
) -> bool {
    loop {
        match framer.next_frame() {
            Ok(None) => return true,
            Ok(Some(Frame::Ping)) => {
                if stream.seal(PONG).is_err() {
                    return false;
                }
            }
            Ok(Some(Frame::Pong)) => {}
            Ok(Some(Frame::Message(message))) => {
                // A stream is reliable: wait for room rather than drop.
                if endpoint
                    .send(Input::Received {
                        message,
                        from: remote,
                    })
                    .await
                    .is_err()
                {
                    return false;
                }
            }
            Err(e) => {
                if let Some(answer) = refusal(&e, &transports.metrics) {
                    let _ = stream.seal(&answer);
                }
                if framer.is_broken() {
                    return false;
                }
            }
        }
    }
}
