//! A sans-IO TLS session on rustls' unbuffered API: ciphertext in, plaintext
//! out, ciphertext to send queued for the driver.
//!
//! # Buffers
//! - Received ciphertext is decrypted where the caller put it (a read buffer
//!   it shares between connections). The session copies only what rustls has
//!   not consumed yet (an incomplete record, or the records of a handshake
//!   message still being reassembled) into `pending`, which is empty and
//!   unallocated on an idle connection.
//! - Outgoing ciphertext is appended to a buffer the driver drains; once
//!   drained it is freed if it grew beyond 1 KiB.
//! - Plaintext that arrives while the driver has no consumer (application data
//!   behind the client's Finished, during the handshake) is held, bounded.
//!
//! # rustls' rules, and how they are kept
//! - `discard` of every status, plus the `discard` of every application data
//!   record, is removed from the front of the buffer before the next call;
//!   rustls keeps offsets into the buffer across calls (a handshake message
//!   split over records is reassembled in place), so the bytes that follow
//!   are passed again at the same offsets, from the caller's buffer or from
//!   `pending`.
//! - After `process_tls_records` returns an error, the buffer no longer
//!   matches rustls' state (feeding it again can panic in rustls' deframer).
//!   The session then only asks rustls for its queued alert, with an empty
//!   buffer, and only while rustls reports queued records, which it returns
//!   before looking at the buffer. It never feeds rustls again.
//! - The handshake is complete only when rustls says it is no longer
//!   handshaking (a TLS 1.3 server may write before the client's Finished).
//! - Records rustls emits in answer to input (alerts, a TLS 1.2 renegotiation
//!   refusal, a TLS 1.3 KeyUpdate reply) are queued before `feed` returns, and
//!   [`Received::queued_output`] tells the driver to flush.

use std::sync::Arc;

use rustls::client::UnbufferedClientConnection;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{ClientConfig, CommonState, ProtocolVersion, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::{CertificateDer, ServerName};

use super::client_hello::SniSniffer;
use super::error::{Limit, TlsError};
use super::limits::TlsLimits;
use super::outgoing::{Outgoing, Room};

/// One TLS connection, server or client side, without I/O.
///
/// The driver feeds received bytes with [`feed`](Self::feed) (or
/// [`feed_hold`](Self::feed_hold) during the handshake), writes
/// [`outgoing`](Self::outgoing) to the peer and reports what was written with
/// [`consume_outgoing`](Self::consume_outgoing), after every call that may
/// have queued records. On any error the session fails for good: the alert
/// rustls produced stays in `outgoing` for the driver to send, and every later
/// call returns the same error.
pub struct TlsSession {
    conn: Endpoint,
    limits: TlsLimits,
    phase: Phase,
    /// Ciphertext rustls has not consumed (see the module documentation).
    pending: Vec<u8>,
    out: Outgoing,
    /// Plaintext received while nobody was there to take it.
    held: Vec<u8>,
    sni: SniSniffer,
    peer_closed: bool,
    close_sent: bool,
}

enum Endpoint {
    Server(UnbufferedServerConnection),
    Client(UnbufferedClientConnection),
}

impl Endpoint {
    fn common(&self) -> &CommonState {
        match self {
            Self::Server(conn) => conn,
            Self::Client(conn) => conn,
        }
    }
}

#[derive(Debug)]
enum Phase {
    Handshaking,
    Established,
    /// Boxed: the error is large and most sessions never fail.
    Failed(Box<TlsError>),
}

/// What one call to [`TlsSession::feed`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Received {
    /// Plaintext bytes handed to the sink (or held, with `feed_hold`).
    pub plaintext: usize,
    /// The handshake completed during this call.
    pub handshake_complete: bool,
    /// The peer's close_notify arrived during this call: no more data follows.
    pub peer_closed: bool,
    /// Records were queued for the peer (handshake, alert, KeyUpdate reply):
    /// the driver should write [`TlsSession::outgoing`] now.
    pub queued_output: bool,
}

/// Where decrypted application data goes.
enum Plain<'s> {
    Sink(&'s mut dyn FnMut(&[u8])),
    Hold,
}

/// What to do once rustls allows writing.
#[derive(Clone, Copy)]
enum Goal<'d> {
    /// Nothing: stop when all input is processed.
    Read,
    Seal(&'d [u8]),
    CloseNotify,
    RefreshKeys,
}

/// The state of one pass over a buffer, shared with the state handler.
struct Pass<'a, 's, 'd> {
    out: &'a mut Outgoing,
    held: &'a mut Vec<u8>,
    plain: &'a mut Plain<'s>,
    limits: &'a TlsLimits,
    goal: Option<Goal<'d>>,
    /// Outcome of the goal once rustls reached a writable state.
    goal_result: Option<Result<(), TlsError>>,
    /// Ask rustls once for a KeyUpdate reply it keeps back (see `probe_key_update`),
    /// at the first writable state once TLS 1.3 is established.
    probe: bool,
    /// TLS 1.3 is established (updated before every call into rustls: the
    /// handshake may complete within the pass).
    tls13_open: bool,
    plaintext: usize,
    peer_closed: bool,
}

enum Flow {
    /// Call rustls again, after discarding this many more bytes.
    Continue(usize),
    /// rustls needs more input, or is done.
    Stop,
}

impl TlsSession {
    /// The server side of a connection, with default limits.
    pub fn server(config: Arc<ServerConfig>) -> Result<Self, TlsError> {
        let conn = UnbufferedServerConnection::new(config)?;
        Ok(Self::new(Endpoint::Server(conn), SniSniffer::default()))
    }

    /// The client side of a connection to `name`, with default limits. The
    /// ClientHello is queued in [`outgoing`](Self::outgoing) at once.
    pub fn client(config: Arc<ClientConfig>, name: ServerName<'static>) -> Result<Self, TlsError> {
        let conn = UnbufferedClientConnection::new(config, name)?;
        let mut session = Self::new(Endpoint::Client(conn), SniSniffer::disabled());
        session.process(&mut [], &mut Plain::Hold)?;
        Ok(session)
    }

    fn new(conn: Endpoint, sni: SniSniffer) -> Self {
        Self {
            conn,
            limits: TlsLimits::default(),
            phase: Phase::Handshaking,
            pending: Vec::new(),
            out: Outgoing::default(),
            held: Vec::new(),
            sni,
            peer_closed: false,
            close_sent: false,
        }
    }

    /// Replace the default limits.
    #[must_use]
    pub fn with_limits(mut self, limits: TlsLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> &TlsLimits {
        &self.limits
    }

    /// Process received ciphertext. `input` is the caller's buffer (rustls
    /// decrypts in place); the session keeps a copy only of what it could not
    /// process yet. Plaintext goes to `sink`, after any held plaintext. Input
    /// after the peer's close_notify, or after [`close`](Self::close), is
    /// ignored.
    pub fn feed(
        &mut self,
        input: &mut [u8],
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<Received, TlsError> {
        self.usable()?;
        let held = self.take_held_plaintext(sink);
        let mut received = self.process(input, &mut Plain::Sink(sink))?;
        received.plaintext += held;
        Ok(received)
    }

    /// Like [`feed`](Self::feed), but plaintext is held inside the session (up
    /// to [`TlsLimits::max_held_plaintext`]) until
    /// [`take_held_plaintext`](Self::take_held_plaintext) or the next `feed`.
    /// For handshake drivers, which have no consumer yet.
    pub fn feed_hold(&mut self, input: &mut [u8]) -> Result<Received, TlsError> {
        self.usable()?;
        self.process(input, &mut Plain::Hold)
    }

    /// Hand held plaintext to `sink` and free it; returns its length.
    pub fn take_held_plaintext(&mut self, sink: &mut dyn FnMut(&[u8])) -> usize {
        if self.held.is_empty() {
            return 0;
        }
        let held = std::mem::take(&mut self.held);
        sink(&held);
        held.len()
    }

    pub fn held_plaintext_len(&self) -> usize {
        self.held.len()
    }

    /// Encrypt `data` as application data, appended to the outgoing bytes.
    /// Refused (without failing the session) before the handshake completes,
    /// after [`close`](Self::close), or beyond [`TlsLimits::max_outgoing`].
    pub fn seal(&mut self, data: &[u8]) -> Result<(), TlsError> {
        self.usable()?;
        if self.close_sent {
            return Err(TlsError::Closed);
        }
        if matches!(self.phase, Phase::Handshaking) {
            return Err(TlsError::HandshakeIncomplete);
        }
        if data.is_empty() {
            return Ok(());
        }
        self.reach_writable(Goal::Seal(data))
    }

    /// Queue close_notify. Idempotent; after a failure it does nothing (the
    /// alert is already queued). During the handshake nothing can be sent, but
    /// the session is marked closed.
    ///
    /// From then on received input is discarded unread: after close_notify,
    /// rustls 0.23 treats any later fatal alert as its own bug (a debug
    /// assertion, i.e. a panic in debug builds) and a malformed record from
    /// the peer would trigger it. Close when done reading.
    pub fn close(&mut self) -> Result<(), TlsError> {
        if self.close_sent || matches!(self.phase, Phase::Failed(_)) {
            return Ok(());
        }
        self.close_sent = true;
        if matches!(self.phase, Phase::Handshaking) {
            self.pending = Vec::new();
            return Ok(());
        }
        let result = self.reach_writable(Goal::CloseNotify);
        self.pending = Vec::new();
        result
    }

    /// Update our sending keys and ask the peer to update its own (TLS 1.3;
    /// a long-lived connection may do this periodically). The KeyUpdate is
    /// queued in the outgoing bytes. Refused, without failing the session,
    /// before the handshake completes, after close, or under TLS 1.2.
    pub fn refresh_traffic_keys(&mut self) -> Result<(), TlsError> {
        self.usable()?;
        if self.close_sent {
            return Err(TlsError::Closed);
        }
        if matches!(self.phase, Phase::Handshaking) {
            return Err(TlsError::HandshakeIncomplete);
        }
        if self.protocol_version() != Some(ProtocolVersion::TLSv1_3) {
            return Err(TlsError::KeyUpdateNeedsTls13);
        }
        self.reach_writable(Goal::RefreshKeys)
    }

    /// Ciphertext waiting to be written to the peer.
    pub fn outgoing(&self) -> &[u8] {
        self.out.bytes()
    }

    /// Is there ciphertext waiting to be written?
    pub fn wants_write(&self) -> bool {
        self.out.len() > 0
    }

    /// The driver wrote the first `n` bytes of [`outgoing`](Self::outgoing).
    /// Once everything is written a large buffer is freed.
    pub fn consume_outgoing(&mut self, n: usize) {
        self.out.consume(n);
    }

    /// Free every buffer the session does not need right now.
    pub fn release_buffers(&mut self) {
        self.out.release();
        self.pending.shrink_to_fit();
        self.held.shrink_to_fit();
    }

    /// Bytes allocated by the session's own buffers (not rustls' state).
    pub fn buffer_capacity(&self) -> usize {
        self.pending.capacity() + self.out.capacity() + self.held.capacity()
    }

    /// Received ciphertext kept for later (an incomplete record).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// True until the handshake completed (false once failed).
    pub fn is_handshaking(&self) -> bool {
        matches!(self.phase, Phase::Handshaking)
    }

    /// The error that ended the session, if it failed.
    pub fn error(&self) -> Option<&TlsError> {
        match &self.phase {
            Phase::Failed(e) => Some(&**e),
            _ => None,
        }
    }

    /// The peer sent close_notify.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// This side queued close_notify (see [`close`](Self::close)); input is
    /// no longer read.
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    pub fn is_server(&self) -> bool {
        matches!(self.conn, Endpoint::Server(_))
    }

    /// The application protocol agreed by ALPN.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.common().alpn_protocol()
    }

    /// Server side: the DNS name the client asked for (SNI), lower case, once
    /// the ClientHello was received. IP literals are not names.
    pub fn server_name(&self) -> Option<&str> {
        self.sni.server_name()
    }

    /// The peer's certificate chain, end entity first, once the handshake
    /// has received it (for a server: only when it asks for client
    /// certificates).
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.conn.common().peer_certificates()
    }

    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.conn.common().protocol_version()
    }

    pub fn negotiated_cipher_suite(&self) -> Option<SupportedCipherSuite> {
        self.conn.common().negotiated_cipher_suite()
    }

    fn usable(&self) -> Result<(), TlsError> {
        match &self.phase {
            Phase::Failed(e) => Err((**e).clone()),
            _ => Ok(()),
        }
    }

    /// Run rustls over `input` (after `pending`), keep what it left, and
    /// update the phase. Fails the session on any error.
    fn process(&mut self, input: &mut [u8], plain: &mut Plain<'_>) -> Result<Received, TlsError> {
        if self.peer_closed || self.close_sent {
            return Ok(Received::default());
        }
        if self.sni.is_active() {
            self.sni.observe(input);
        }
        let queued_before = self.out.len();
        let mut pass_state = PassOutcome::default();
        let kept = if self.pending.is_empty() {
            self.run(input, plain, Goal::Read, &mut pass_state)
                .map(|consumed| {
                    let tail = input.get(consumed..).unwrap_or_default();
                    self.pending = tail.to_vec();
                })
        } else {
            let mut buf = std::mem::take(&mut self.pending);
            buf.extend_from_slice(input);
            let ran = self.run(&mut buf, plain, Goal::Read, &mut pass_state);
            ran.map(|consumed| {
                buf.drain(..consumed.min(buf.len()));
                buf.shrink_to_fit();
                self.pending = buf;
            })
        };
        if let Err(e) = kept {
            return Err(self.fail(e));
        }
        let mut received = Received {
            plaintext: pass_state.plaintext,
            peer_closed: pass_state.peer_closed,
            ..Received::default()
        };
        if pass_state.peer_closed {
            // "Any data received after a closure alert has been received MUST
            // be ignored" (RFC 8446 §6.1); rustls no longer looks at it.
            self.peer_closed = true;
            self.pending = Vec::new();
        }
        if matches!(self.phase, Phase::Handshaking) && !self.conn.common().is_handshaking() {
            self.phase = Phase::Established;
            self.sni.finish();
            received.handshake_complete = true;
        }
        let (bound, limit) = if matches!(self.phase, Phase::Handshaking) {
            (self.limits.max_handshake_buffer, Limit::HandshakeBuffer)
        } else {
            (self.limits.max_pending, Limit::PendingCiphertext)
        };
        if self.pending.len() > bound {
            return Err(self.fail(TlsError::LimitExceeded(limit)));
        }
        received.queued_output = self.out.len() > queued_before;
        Ok(received)
    }

    /// Bring rustls to a writable state over `pending` and do `goal` there.
    fn reach_writable(&mut self, goal: Goal<'_>) -> Result<(), TlsError> {
        let mut buf = std::mem::take(&mut self.pending);
        let mut outcome = PassOutcome::default();
        let ran = self.run(&mut buf, &mut Plain::Hold, goal, &mut outcome);
        match ran {
            Ok(consumed) => {
                buf.drain(..consumed.min(buf.len()));
                self.pending = buf;
            }
            Err(e) => return Err(self.fail(e)),
        }
        if outcome.peer_closed {
            self.peer_closed = true;
            self.pending = Vec::new();
        }
        match outcome.goal_result {
            Some(Ok(())) => Ok(()),
            // Nothing was encrypted: the session stays usable.
            Some(Err(e @ TlsError::LimitExceeded(_))) => Err(e),
            Some(Err(e)) => Err(self.fail(e)),
            None => Err(TlsError::Closed),
        }
    }

    /// Call rustls until it needs more input (or is done), starting at the
    /// front of `buf`. Returns how many bytes of `buf` rustls consumed.
    fn run(
        &mut self,
        buf: &mut [u8],
        plain: &mut Plain<'_>,
        goal: Goal<'_>,
        outcome: &mut PassOutcome,
    ) -> Result<usize, TlsError> {
        let probe = matches!(goal, Goal::Read) && !buf.is_empty() && !self.close_sent;
        let mut pass = Pass {
            out: &mut self.out,
            held: &mut self.held,
            plain,
            limits: &self.limits,
            goal: Some(goal),
            goal_result: None,
            probe,
            tls13_open: false,
            plaintext: 0,
            peer_closed: false,
        };
        let mut offset = 0;
        // Every state either consumes input or drains something rustls queued;
        // the bound only turns a rustls bug into an error instead of a hang.
        let budget = 256 + buf.len().saturating_mul(4);
        let mut result = Err(TlsError::UnexpectedState("rustls made no progress".into()));
        for _ in 0..budget {
            let Some(rest) = buf.get_mut(offset..) else {
                result = Err(TlsError::UnexpectedState(
                    "discard beyond the buffer".into(),
                ));
                break;
            };
            pass.tls13_open = tls13_established(self.conn.common());
            let (discard, flow) = match &mut self.conn {
                Endpoint::Server(conn) => step(conn.process_tls_records(rest), &mut pass),
                Endpoint::Client(conn) => step(conn.process_tls_records(rest), &mut pass),
            };
            let flow = match flow {
                Ok(flow) => flow,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            match flow {
                Flow::Continue(extra) => offset += discard + extra,
                Flow::Stop => {
                    offset += discard;
                    result = if offset <= buf.len() {
                        Ok(offset)
                    } else {
                        Err(TlsError::UnexpectedState(
                            "discard beyond the buffer".into(),
                        ))
                    };
                    break;
                }
            }
        }
        outcome.plaintext += pass.plaintext;
        outcome.peer_closed |= pass.peer_closed;
        outcome.goal_result = pass.goal_result.take();
        result
    }

    /// Enter the failed state: keep rustls' alert, free the buffers.
    fn fail(&mut self, error: TlsError) -> TlsError {
        self.drain_alert();
        self.pending = Vec::new();
        self.held = Vec::new();
        self.sni.finish();
        self.phase = Phase::Failed(Box::new(error.clone()));
        error
    }

    /// Take the records rustls queued with an error (its alert). rustls hands
    /// out queued records before it looks at the buffer, so an empty buffer is
    /// safe here, and rustls is called only while it reports queued records.
    fn drain_alert(&mut self) {
        let limit = self.limits.max_outgoing;
        for _ in 0..16 {
            if !self.conn.common().wants_write() {
                return;
            }
            let progressed = match &mut self.conn {
                Endpoint::Server(conn) => {
                    drain_one(conn.process_tls_records(&mut []), &mut self.out, limit)
                }
                Endpoint::Client(conn) => {
                    drain_one(conn.process_tls_records(&mut []), &mut self.out, limit)
                }
            };
            if !progressed {
                return;
            }
        }
    }
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("server", &self.is_server())
            .field("phase", &self.phase)
            .field("pending", &self.pending.len())
            .field("outgoing", &self.out.len())
            .field("held", &self.held.len())
            .field("peer_closed", &self.peer_closed)
            .field("close_sent", &self.close_sent)
            .finish()
    }
}

/// What a pass reports besides the bytes consumed.
#[derive(Default)]
struct PassOutcome {
    plaintext: usize,
    peer_closed: bool,
    goal_result: Option<Result<(), TlsError>>,
}

fn tls13_established(common: &CommonState) -> bool {
    !common.is_handshaking() && common.protocol_version() == Some(ProtocolVersion::TLSv1_3)
}

/// Handle one state rustls reached. Returns the status' discard and what next.
fn step<D>(
    status: UnbufferedStatus<'_, '_, D>,
    pass: &mut Pass<'_, '_, '_>,
) -> (usize, Result<Flow, TlsError>) {
    let UnbufferedStatus { discard, state } = status;
    let flow = match state {
        Ok(state) => handle(state, pass),
        Err(e) => Err(TlsError::Protocol(e)),
    };
    (discard, flow)
}

fn handle<D>(
    state: ConnectionState<'_, '_, D>,
    pass: &mut Pass<'_, '_, '_>,
) -> Result<Flow, TlsError> {
    match state {
        ConnectionState::ReadTraffic(mut traffic) => {
            let mut extra = 0;
            while let Some(record) = traffic.next_record() {
                let record = record?;
                extra += record.discard;
                pass.deliver(record.payload)?;
            }
            Ok(Flow::Continue(extra))
        }
        ConnectionState::EncodeTlsData(mut encode) => {
            pass.out.append(
                pass.limits.max_outgoing,
                |buf| encode.encode(buf),
                encode_room,
            )?;
            Ok(Flow::Continue(0))
        }
        ConnectionState::TransmitTlsData(transmit) => {
            // The records are in `out`, in order; the driver sends them.
            transmit.done();
            Ok(Flow::Continue(0))
        }
        ConnectionState::PeerClosed => {
            pass.peer_closed = true;
            Ok(Flow::Continue(0))
        }
        ConnectionState::BlockedHandshake | ConnectionState::Closed => Ok(Flow::Stop),
        ConnectionState::WriteTraffic(mut write) => {
            let limit = pass.limits.max_outgoing;
            match pass.goal.take() {
                None | Some(Goal::Read) if pass.probe && pass.tls13_open => {
                    pass.probe = false;
                    probe_key_update(&mut write);
                    Ok(Flow::Continue(0))
                }
                None | Some(Goal::Read) => Ok(Flow::Stop),
                Some(Goal::Seal(data)) => {
                    let sealed = pass
                        .out
                        .append(limit, |buf| write.encrypt(data, buf), encrypt_room)
                        .map(drop);
                    pass.goal_result = Some(sealed);
                    Ok(Flow::Stop)
                }
                Some(Goal::CloseNotify) => {
                    let queued = pass
                        .out
                        .append(limit, |buf| write.queue_close_notify(buf), encrypt_room)
                        .map(drop);
                    pass.goal_result = Some(queued);
                    Ok(Flow::Stop)
                }
                Some(Goal::RefreshKeys) => {
                    pass.goal_result = Some(write.refresh_traffic_keys().map_err(TlsError::from));
                    // The KeyUpdate comes out as EncodeTlsData on the next call.
                    Ok(Flow::Continue(0))
                }
            }
        }
        ConnectionState::ReadEarlyData(_) => Err(TlsError::EarlyDataUnsupported),
        other => Err(TlsError::UnexpectedState(format!("{other:?}"))),
    }
}

/// rustls 0.23 answers a peer's KeyUpdate request with a KeyUpdate it keeps
/// back until the next application data record. Asking it to encrypt one byte
/// into no room at all releases that reply into its queue (it is added before
/// the size check) and then fails the size check, so no application data is
/// encrypted; the next `process_tls_records` hands the reply out. If nothing
/// was kept back, nothing happens.
fn probe_key_update<D>(write: &mut rustls::unbuffered::WriteTraffic<'_, D>) {
    let _ = write.encrypt(&[0], &mut []);
}

impl Pass<'_, '_, '_> {
    fn deliver(&mut self, payload: &[u8]) -> Result<(), TlsError> {
        match self.plain {
            Plain::Sink(sink) => sink(payload),
            Plain::Hold => {
                if self.held.len() + payload.len() > self.limits.max_held_plaintext {
                    return Err(TlsError::LimitExceeded(Limit::HeldPlaintext));
                }
                self.held.extend_from_slice(payload);
            }
        }
        self.plaintext += payload.len();
        Ok(())
    }
}

/// Encode one queued record after a failure. False when rustls had nothing.
fn drain_one<D>(status: UnbufferedStatus<'_, '_, D>, out: &mut Outgoing, limit: usize) -> bool {
    match status.state {
        Ok(ConnectionState::EncodeTlsData(mut encode)) => out
            .append(limit, |buf| encode.encode(buf), encode_room)
            .is_ok(),
        Ok(ConnectionState::ReadTraffic(mut traffic)) => {
            while traffic.next_record().is_some() {}
            true
        }
        _ => false,
    }
}

fn encode_room(error: EncodeError) -> Room {
    match error {
        EncodeError::InsufficientSize(size) => Room::Needs(size.required_size),
        other => Room::Refused(other.to_string()),
    }
}

fn encrypt_room(error: EncryptError) -> Room {
    match error {
        EncryptError::InsufficientSize(size) => Room::Needs(size.required_size),
        other => Room::Refused(other.to_string()),
    }
}
