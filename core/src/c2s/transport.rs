//! A client connection's byte stream: plain TCP until STARTTLS, then TLS.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::tls::TlsStream;

pub(crate) enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
    /// The stream was moved out (into the TLS handshake); reads see end of stream and
    /// writes fail.
    Detached,
}

impl Transport {
    /// Read once, handing what arrived to `sink`. Ready(Ok(false)) at end of stream.
    /// Records the TLS layer must send in answer are appended to `wire`.
    pub(crate) fn poll_read_with(
        &mut self,
        cx: &mut Context<'_>,
        scratch: &mut [u8],
        wire: &mut Vec<u8>,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Poll<io::Result<bool>> {
        match self {
            Self::Plain(tcp) => {
                let mut buf = ReadBuf::new(scratch);
                match Pin::new(tcp).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(())) => {
                        sink(buf.filled());
                        Poll::Ready(Ok(!buf.filled().is_empty()))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            }
            Self::Tls(tls) => tls.poll_read_with(cx, scratch, wire, sink),
            Self::Detached => Poll::Ready(Ok(false)),
        }
    }

    /// Append `data` to `wire` in the form the socket takes (encrypted under TLS).
    pub(crate) fn seal(&mut self, data: &[u8], wire: &mut Vec<u8>) -> io::Result<()> {
        match self {
            Self::Plain(_) => {
                wire.extend_from_slice(data);
                Ok(())
            }
            Self::Tls(tls) => tls.seal(data, wire),
            Self::Detached => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Append what ends the session cleanly (TLS close_notify) to `wire`.
    pub(crate) fn close_notify(&mut self, wire: &mut Vec<u8>) -> io::Result<()> {
        match self {
            Self::Tls(tls) => tls.close_notify(wire),
            Self::Plain(_) | Self::Detached => Ok(()),
        }
    }

    /// Write bytes from `wire`; returns how many the socket took. Cancel-safe.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.write(bytes).await,
            Self::Tls(tls) => tls.write(bytes).await,
            Self::Detached => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    pub(crate) async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.shutdown().await,
            Self::Tls(tls) => tls.shutdown().await,
            Self::Detached => Ok(()),
        }
    }
}
