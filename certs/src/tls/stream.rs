//! A thin async adapter: a [`TlsSession`] over any `AsyncRead + AsyncWrite`.
//!
//! It is shaped for a connection task that owns one per-thread read buffer
//! and drives reads and writes itself:
//! - [`TlsStream::accept`] / [`TlsStream::connect`] run the handshake (the
//!   caller bounds it in time). On failure the alert rustls produced is written
//!   (bounded by a short timeout) before the error is returned.
//! - [`TlsStream::poll_read_with`] reads once into the caller's scratch buffer
//!   and decrypts from there; it never writes. When the input made the session
//!   queue records (a KeyUpdate reply, a renegotiation refusal, an alert) it
//!   returns `Ready(Ok(true))` even without plaintext, so that the driver's
//!   loop comes round to [`TlsStream::flush`] promptly; [`TlsStream::needs_flush`]
//!   says whether there is anything to write.
//! - [`TlsStream::seal`] encrypts into the session's outgoing buffer;
//!   [`TlsStream::poll_flush`] writes it. Both reads and flushes are
//!   cancel-safe: all state lives in the session.
//! - [`TlsStream::close`] queues close_notify, flushes and shuts the transport
//!   down, bounded in time.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::session::TlsSession;

/// Read size during the handshake (the buffer is freed once it completes).
const HANDSHAKE_READ: usize = 8 * 1024;
/// How long a failed handshake may spend getting its alert to the peer.
const ALERT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long [`TlsStream::close`] may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// After sending an alert, input read (and dropped) while waiting for the
/// peer to close: closing with unread input makes the kernel send a reset,
/// which can destroy the alert before the peer reads it.
const LINGER_LIMIT: usize = 64 * 1024;

/// An established TLS connection over `IO`.
pub struct TlsStream<IO> {
    io: IO,
    session: TlsSession,
    /// The transport reached end of stream.
    eof: bool,
}

impl<IO> TlsStream<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    /// Run the server side of the handshake over `io`.
    pub async fn accept(io: IO, config: Arc<ServerConfig>) -> io::Result<Self> {
        Self::handshake(io, TlsSession::server(config)?).await
    }

    /// Run the client side of the handshake with `name` over `io`.
    pub async fn connect(
        io: IO,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<Self> {
        Self::handshake(io, TlsSession::client(config, name)?).await
    }

    /// Run the handshake of `session` (fresh, e.g. built with custom limits)
    /// over `io`. Application data that arrives with the end of the handshake
    /// is held in the session and returned by the first read. The error of a
    /// failed handshake carries a [`TlsError`](super::TlsError)
    /// (`io::Error::get_ref`); a peer that hangs up gives `UnexpectedEof`.
    pub async fn handshake(mut io: IO, mut session: TlsSession) -> io::Result<Self> {
        let mut buf = vec![0; HANDSHAKE_READ];
        loop {
            write_all(&mut io, &mut session).await?;
            if !session.is_handshaking() {
                break;
            }
            let n = io.read(&mut buf).await?;
            let Some(input) = buf.get_mut(..n).filter(|input| !input.is_empty()) else {
                return Err(io::ErrorKind::UnexpectedEof.into());
            };
            if let Err(e) = session.feed_hold(input) {
                let _ =
                    tokio::time::timeout(ALERT_TIMEOUT, send_alert(&mut io, &mut session)).await;
                return Err(e.into());
            }
        }
        session.release_buffers();
        Ok(Self {
            io,
            session,
            eof: false,
        })
    }

    /// Read from the transport once (more often only while what arrives is
    /// an incomplete record) and hand the plaintext to `sink`. `scratch` is a
    /// read buffer the caller may share with other connections; the session
    /// copies out of it only an incomplete record.
    ///
    /// `Ready(Ok(true))`: plaintext was delivered, and/or records were queued
    /// that the caller must flush ([`needs_flush`](Self::needs_flush)).
    /// `Ready(Ok(false))`: end of stream (close_notify, or the transport
    /// closed), or this side closed (see [`TlsSession::close`]). `Ready(Err)`: the peer broke the protocol; the alert is queued
    /// and [`close`](Self::close) sends it. Cancel-safe.
    pub fn poll_read_with(
        &mut self,
        cx: &mut Context<'_>,
        scratch: &mut [u8],
        sink: &mut dyn FnMut(&[u8]),
    ) -> Poll<io::Result<bool>> {
        if self.session.take_held_plaintext(sink) > 0 {
            return Poll::Ready(Ok(true));
        }
        if scratch.is_empty() {
            return Poll::Ready(Err(io::ErrorKind::InvalidInput.into()));
        }
        loop {
            if let Some(e) = self.session.error() {
                return Poll::Ready(Err(e.clone().into()));
            }
            if self.session.peer_closed() || self.session.close_sent() || self.eof {
                return Poll::Ready(Ok(false));
            }
            let n = {
                let mut buf = ReadBuf::new(scratch);
                ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
                buf.filled().len()
            };
            let Some(input) = scratch.get_mut(..n).filter(|input| !input.is_empty()) else {
                self.eof = true;
                return Poll::Ready(Ok(false));
            };
            let received = self.session.feed(input, sink)?;
            if received.plaintext > 0 || received.queued_output {
                return Poll::Ready(Ok(true));
            }
        }
    }

    /// [`poll_read_with`](Self::poll_read_with) as a future.
    pub async fn read_with<F: FnMut(&[u8])>(
        &mut self,
        scratch: &mut [u8],
        mut sink: F,
    ) -> io::Result<bool> {
        poll_fn(|cx| self.poll_read_with(cx, scratch, &mut sink)).await
    }

    /// Encrypt `data` into the outgoing buffer; [`flush`](Self::flush) sends it.
    pub fn seal(&mut self, data: &[u8]) -> io::Result<()> {
        self.session.seal(data).map_err(io::Error::from)
    }

    /// Is there ciphertext waiting to be written?
    pub fn needs_flush(&self) -> bool {
        self.session.wants_write()
    }

    /// Write the outgoing ciphertext. Cancel-safe: what the transport has not
    /// taken stays queued. The buffer is freed once drained.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(poll_write_out(&mut self.io, &mut self.session, cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// [`poll_flush`](Self::poll_flush) as a future.
    pub async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// Queue close_notify, write what is queued and shut the transport down,
    /// within a bounded time. After a protocol failure this sends the alert
    /// instead, then waits (bounded) for the peer to close.
    pub async fn close(&mut self) -> io::Result<()> {
        let closing = async {
            let failed = self.session.error().is_some();
            let _ = self.session.close();
            self.flush().await?;
            self.io.shutdown().await?;
            if failed {
                linger(&mut self.io).await;
            }
            Ok(())
        };
        tokio::time::timeout(CLOSE_TIMEOUT, closing)
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    }

    pub fn session(&self) -> &TlsSession {
        &self.session
    }

    pub fn session_mut(&mut self) -> &mut TlsSession {
        &mut self.session
    }

    pub fn get_ref(&self) -> &IO {
        &self.io
    }

    pub fn get_mut(&mut self) -> &mut IO {
        &mut self.io
    }

    pub fn into_parts(self) -> (IO, TlsSession) {
        (self.io, self.session)
    }
}

impl<IO> std::fmt::Debug for TlsStream<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("session", &self.session)
            .field("eof", &self.eof)
            .finish_non_exhaustive()
    }
}

fn poll_write_out<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    session: &mut TlsSession,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    while session.wants_write() {
        let n = ready!(Pin::new(&mut *io).poll_write(cx, session.outgoing()))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        session.consume_outgoing(n);
    }
    Poll::Ready(Ok(()))
}

async fn write_all<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    session: &mut TlsSession,
) -> io::Result<()> {
    poll_fn(|cx| poll_write_out(io, session, cx)).await?;
    io.flush().await
}

/// Get a failed handshake's alert to the peer, then close.
async fn send_alert<IO: AsyncRead + AsyncWrite + Unpin>(io: &mut IO, session: &mut TlsSession) {
    if write_all(io, session).await.is_err() || io.shutdown().await.is_err() {
        return;
    }
    linger(io).await;
}

/// Read and drop input until the peer closes (bounded in bytes; the caller
/// bounds it in time).
async fn linger<IO: AsyncRead + Unpin>(io: &mut IO) {
    let mut buf = [0; 1024];
    let mut seen = 0;
    while seen < LINGER_LIMIT {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen += n,
        }
    }
}
