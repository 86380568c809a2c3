//! A client connection's byte stream: plain TCP until STARTTLS, then TLS through the
//! sans-IO record layer of `herald_certs::tls` (the same one s2s and SIP-TLS use).
//!
//! Reads are cancel-safe and decrypt from the caller's per-thread buffer; writes go
//! through an outgoing buffer that is freed once drained, so an idle connection holds
//! no buffers of its own.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use herald_certs::tls::TlsStream;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Output buffers above this capacity are released once drained.
const KEEP_CAPACITY: usize = 1024;

/// How long closing a plain connection may wait for the peer to take the last bytes
/// (the TLS stream bounds its own close the same way).
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub(crate) enum Transport {
    Plain(Plain),
    Tls(Box<TlsStream<TcpStream>>),
    /// The stream was moved out (into the TLS handshake); reads see end of stream and
    /// writes fail.
    Detached,
}

/// Plain TCP and the bytes not yet written.
pub(crate) struct Plain {
    tcp: TcpStream,
    out: Vec<u8>,
    pos: usize,
}

impl Transport {
    pub(crate) fn plain(tcp: TcpStream) -> Self {
        Self::Plain(Plain {
            tcp,
            out: Vec::new(),
            pos: 0,
        })
    }

    /// Run the server side of a TLS handshake over `tcp` (the caller bounds its time).
    /// On failure the alert goes out before the error returns.
    pub(crate) async fn accept_tls(
        tcp: TcpStream,
        config: Arc<rustls::ServerConfig>,
    ) -> io::Result<Self> {
        Ok(Self::Tls(Box::new(TlsStream::accept(tcp, config).await?)))
    }

    /// The TCP stream of a plain transport with nothing left to write (STARTTLS).
    pub(crate) fn take_plain(&mut self) -> Option<TcpStream> {
        match std::mem::replace(self, Self::Detached) {
            Self::Plain(p) if p.pos >= p.out.len() => Some(p.tcp),
            other => {
                *self = other;
                None
            }
        }
    }

    /// Read once, handing what arrived to `sink`. Ready(Ok(false)) at end of stream.
    /// Under TLS, Ready(Ok(true)) may also mean records to send were queued (a key
    /// update answer): the next flush sends them.
    pub(crate) fn poll_read_with(
        &mut self,
        cx: &mut Context<'_>,
        scratch: &mut [u8],
        sink: &mut dyn FnMut(&[u8]),
    ) -> Poll<io::Result<bool>> {
        match self {
            Self::Plain(p) => {
                let mut buf = ReadBuf::new(scratch);
                match Pin::new(&mut p.tcp).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(())) => {
                        sink(buf.filled());
                        Poll::Ready(Ok(!buf.filled().is_empty()))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            }
            Self::Tls(tls) => tls.poll_read_with(cx, scratch, sink),
            Self::Detached => Poll::Ready(Ok(false)),
        }
    }

    /// Queue `data` for the socket (encrypted under TLS).
    pub(crate) fn seal(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Self::Plain(p) => {
                p.out.extend_from_slice(data);
                Ok(())
            }
            Self::Tls(tls) => tls.seal(data),
            Self::Detached => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Whether bytes wait to be written.
    pub(crate) fn needs_flush(&self) -> bool {
        match self {
            Self::Plain(p) => p.pos < p.out.len(),
            Self::Tls(tls) => tls.needs_flush(),
            Self::Detached => false,
        }
    }

    /// Write what is queued. Cancel-safe: what the socket has not taken stays queued.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(p) => {
                while p.pos < p.out.len() {
                    let n = p.tcp.write(&p.out[p.pos..]).await?;
                    if n == 0 {
                        return Err(io::ErrorKind::WriteZero.into());
                    }
                    p.pos += n;
                }
                p.pos = 0;
                p.out.clear();
                if p.out.capacity() > KEEP_CAPACITY {
                    p.out = Vec::new();
                }
                Ok(())
            }
            Self::Tls(tls) => tls.flush().await,
            Self::Detached => Ok(()),
        }
    }

    /// End the connection: what is queued, then close_notify under TLS (or the pending
    /// alert after a protocol error), then the TCP shutdown. Bounded in time.
    pub(crate) async fn close(&mut self) {
        if let Self::Tls(tls) = self {
            let _ = tls.close().await;
            return;
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            let _ = self.flush().await;
            if let Self::Plain(p) = self {
                let _ = p.tcp.shutdown().await;
            }
        })
        .await;
    }
}
