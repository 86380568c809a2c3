//! Server-side TLS over a TCP stream through rustls' unbuffered API.
//!
//! rustls' buffered `ServerConnection` keeps a receive buffer of at least 4 KiB for the
//! life of every connection. With the unbuffered API the caller owns the buffers, so
//! ciphertext is decrypted straight out of the worker thread's read buffer, and an idle
//! connection keeps bytes only when a record arrived incomplete. Outgoing records are
//! appended to the caller's write buffer, which is freed between bursts.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Handshake flights may carry certificate chains; more than this is refused.
const MAX_HANDSHAKE_BUFFER: usize = 96 * 1024;
/// Ciphertext kept between reads: a partial record, or a post-handshake message being
/// reassembled. A record is at most 16 KiB plus overhead.
const MAX_PENDING: usize = 80 * 1024;
/// How much a read that extends pending ciphertext asks for.
const READ_MORE: usize = 16 * 1024 + 512;
/// Application data pipelined behind the client's Finished is kept up to this size.
const MAX_EARLY_PLAINTEXT: usize = 64 * 1024;

pub(crate) struct TlsStream {
    tcp: TcpStream,
    conn: UnbufferedServerConnection,
    /// Ciphertext received but not yet processed (an incomplete record). Usually empty
    /// and unallocated.
    pending: Vec<u8>,
    /// Plaintext that arrived with the end of the handshake.
    early: Vec<u8>,
    /// The peer sent close_notify or closed its side of the TCP stream.
    eof: bool,
}

fn tls_error(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// What one pass over received ciphertext produced.
#[derive(Default)]
struct Processed {
    /// Bytes to drop from the front of the buffer.
    consumed: usize,
    /// Application data went to the sink.
    data: bool,
    /// The peer closed the TLS session.
    closed: bool,
}

impl TlsStream {
    /// Run the server side of the handshake. The caller bounds it in time.
    pub(crate) async fn accept(mut tcp: TcpStream, config: Arc<ServerConfig>) -> io::Result<Self> {
        let mut conn = UnbufferedServerConnection::new(config).map_err(tls_error)?;
        let mut incoming: Vec<u8> = Vec::new();
        let mut outgoing: Vec<u8> = Vec::new();
        let mut early: Vec<u8> = Vec::new();
        let mut peer_closed = false;
        loop {
            let UnbufferedStatus { mut discard, state } = conn.process_tls_records(&mut incoming);
            let mut transmit = false;
            let mut need_more = false;
            let mut done = false;
            match state.map_err(tls_error)? {
                ConnectionState::EncodeTlsData(mut enc) => {
                    encode_into(&mut outgoing, |buf| enc.encode(buf))?;
                }
                ConnectionState::TransmitTlsData(tx) => {
                    tx.done();
                    transmit = true;
                }
                ConnectionState::BlockedHandshake => need_more = true,
                ConnectionState::WriteTraffic(_) => done = true,
                ConnectionState::ReadTraffic(mut rd) => {
                    while let Some(rec) = rd.next_record() {
                        let rec = rec.map_err(tls_error)?;
                        discard += rec.discard;
                        if early.len() + rec.payload.len() > MAX_EARLY_PLAINTEXT {
                            return Err(tls_error("too much data pipelined behind the handshake"));
                        }
                        early.extend_from_slice(rec.payload);
                    }
                }
                // A client may finish, send its data and close in one flight.
                ConnectionState::PeerClosed => peer_closed = true,
                ConnectionState::Closed => return Err(io::ErrorKind::UnexpectedEof.into()),
                other => return Err(tls_error(format!("unexpected TLS state {other:?}"))),
            }
            incoming.drain(..discard);
            if transmit {
                tcp.write_all(&outgoing).await?;
                outgoing.clear();
            }
            if done {
                break;
            }
            if need_more {
                if incoming.len() >= MAX_HANDSHAKE_BUFFER {
                    return Err(tls_error("TLS handshake flight too large"));
                }
                let len = incoming.len();
                incoming.resize(len + 4096, 0);
                let n = tcp.read(&mut incoming[len..]).await;
                incoming.truncate(len + *n.as_ref().unwrap_or(&0));
                if n? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
        }
        incoming.shrink_to_fit();
        early.shrink_to_fit();
        Ok(Self {
            tcp,
            conn,
            pending: incoming,
            early,
            eof: peer_closed,
        })
    }

    /// Read from the socket once and hand the plaintext to `sink`; TLS records the
    /// connection must answer (a key update) are appended to `wire`. `scratch` is a
    /// read buffer shared with other connections. Ready(Ok(false)) at end of stream.
    pub(crate) fn poll_read_with(
        &mut self,
        cx: &mut Context<'_>,
        scratch: &mut [u8],
        wire: &mut Vec<u8>,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Poll<io::Result<bool>> {
        if !self.early.is_empty() {
            sink(&std::mem::take(&mut self.early));
            return Poll::Ready(Ok(true));
        }
        loop {
            if self.eof {
                return Poll::Ready(Ok(false));
            }
            let done = if self.pending.is_empty() {
                let mut buf = ReadBuf::new(scratch);
                ready!(Pin::new(&mut self.tcp).poll_read(cx, &mut buf))?;
                let n = buf.filled().len();
                if n == 0 {
                    self.eof = true;
                    return Poll::Ready(Ok(false));
                }
                let done = process(&mut self.conn, &mut scratch[..n], wire, sink)?;
                if done.consumed < n {
                    self.pending = scratch[done.consumed..n].to_vec();
                }
                done
            } else {
                if self.pending.len() > MAX_PENDING {
                    return Poll::Ready(Err(tls_error("TLS record too large")));
                }
                let len = self.pending.len();
                self.pending.resize(len + READ_MORE, 0);
                let mut buf = ReadBuf::new(&mut self.pending[len..]);
                let read = Pin::new(&mut self.tcp).poll_read(cx, &mut buf);
                let n = buf.filled().len();
                self.pending.truncate(len + n);
                if let Poll::Ready(Err(e)) = read {
                    return Poll::Ready(Err(e));
                }
                if read.is_pending() {
                    self.pending.shrink_to_fit();
                    return Poll::Pending;
                }
                if n == 0 {
                    self.eof = true;
                    return Poll::Ready(Ok(false));
                }
                let done = process(&mut self.conn, &mut self.pending, wire, sink)?;
                self.pending.drain(..done.consumed);
                if self.pending.is_empty() {
                    self.pending = Vec::new();
                } else {
                    self.pending.shrink_to_fit();
                }
                done
            };
            if done.closed {
                self.eof = true;
            }
            if done.data {
                return Poll::Ready(Ok(true));
            }
        }
    }

    /// Encrypt `data` as application data records appended to `wire`.
    pub(crate) fn seal(&mut self, data: &[u8], wire: &mut Vec<u8>) -> io::Result<()> {
        self.drive(wire, |w, wire| {
            // Each record of up to 16 KiB adds a header, a content type and a tag.
            let room = data.len() + (data.len() / 16384 + 1) * 32;
            append_with(wire, room, |buf| w.encrypt(data, buf), encrypt_required)
        })
    }

    /// Append a close_notify alert to `wire`.
    pub(crate) fn close_notify(&mut self, wire: &mut Vec<u8>) -> io::Result<()> {
        self.drive(wire, |w, wire| {
            append_with(wire, 64, |buf| w.queue_close_notify(buf), encrypt_required)
        })
    }

    /// Bring the connection to its write state, emitting any records it has queued,
    /// then run `write` there.
    fn drive(
        &mut self,
        wire: &mut Vec<u8>,
        write: impl FnOnce(
            &mut rustls::unbuffered::WriteTraffic<'_, rustls::server::ServerConnectionData>,
            &mut Vec<u8>,
        ) -> io::Result<()>,
    ) -> io::Result<()> {
        loop {
            let UnbufferedStatus { discard, state } =
                self.conn.process_tls_records(&mut self.pending);
            match state.map_err(tls_error)? {
                ConnectionState::WriteTraffic(mut w) => {
                    let written = write(&mut w, wire);
                    self.pending.drain(..discard);
                    return written;
                }
                ConnectionState::EncodeTlsData(mut enc) => {
                    encode_into(wire, |buf| enc.encode(buf))?;
                }
                ConnectionState::TransmitTlsData(tx) => tx.done(),
                ConnectionState::ReadTraffic(mut rd) => {
                    // Not expected (reads take all application data), but never drop it.
                    while let Some(rec) = rd.next_record() {
                        self.early
                            .extend_from_slice(rec.map_err(tls_error)?.payload);
                    }
                }
                ConnectionState::PeerClosed => {}
                ConnectionState::Closed => return Err(io::ErrorKind::BrokenPipe.into()),
                other => return Err(tls_error(format!("unexpected TLS state {other:?}"))),
            }
            self.pending.drain(..discard);
        }
    }

    /// Write ciphertext to the socket; returns how much was taken. Cancel-safe.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.tcp.write(bytes).await
    }

    pub(crate) async fn shutdown(&mut self) -> io::Result<()> {
        self.tcp.shutdown().await
    }
}

/// Process every complete record in `buf`.
fn process(
    conn: &mut UnbufferedServerConnection,
    buf: &mut [u8],
    wire: &mut Vec<u8>,
    sink: &mut dyn FnMut(&[u8]),
) -> io::Result<Processed> {
    let mut out = Processed::default();
    loop {
        let UnbufferedStatus { mut discard, state } =
            conn.process_tls_records(&mut buf[out.consumed..]);
        let more = match state.map_err(tls_error)? {
            ConnectionState::ReadTraffic(mut rd) => {
                while let Some(rec) = rd.next_record() {
                    let rec = rec.map_err(tls_error)?;
                    discard += rec.discard;
                    out.data = true;
                    sink(rec.payload);
                }
                true
            }
            ConnectionState::EncodeTlsData(mut enc) => {
                encode_into(wire, |b| enc.encode(b))?;
                true
            }
            ConnectionState::TransmitTlsData(tx) => {
                // The records are in `wire`; the connection's next flush sends them.
                tx.done();
                true
            }
            ConnectionState::PeerClosed => {
                out.closed = true;
                true
            }
            ConnectionState::Closed => {
                out.closed = true;
                false
            }
            ConnectionState::WriteTraffic(_) | ConnectionState::BlockedHandshake => false,
            other => return Err(tls_error(format!("unexpected TLS state {other:?}"))),
        };
        out.consumed += discard;
        if !more {
            return Ok(out);
        }
    }
}

/// Append one encoded handshake or alert record to `wire`.
fn encode_into(
    wire: &mut Vec<u8>,
    encode: impl FnMut(&mut [u8]) -> Result<usize, EncodeError>,
) -> io::Result<()> {
    append_with(wire, 1024, encode, |e| match e {
        EncodeError::InsufficientSize(e) => Some(e.required_size),
        EncodeError::AlreadyEncoded => None,
    })
}

fn encrypt_required(e: &EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(e) => Some(e.required_size),
        EncryptError::EncryptExhausted => None,
    }
}

/// Append what `write` produces to `wire`: it gets `room` bytes first, and as many as
/// it asks for (`required` of its error) if that is not enough.
fn append_with<E: std::fmt::Display>(
    wire: &mut Vec<u8>,
    mut room: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
    required: impl Fn(&E) -> Option<usize>,
) -> io::Result<()> {
    let len = wire.len();
    loop {
        wire.resize(len + room, 0);
        match write(&mut wire[len..]) {
            Ok(n) => {
                wire.truncate(len + n);
                return Ok(());
            }
            Err(e) => match required(&e) {
                Some(need) if need > room => room = need,
                _ => {
                    wire.truncate(len);
                    return Err(tls_error(e.to_string()));
                }
            },
        }
    }
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
