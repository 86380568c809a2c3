//! The byte stream under one s2s connection: plain TCP until STARTTLS (or TLS from the
//! first byte, XEP-0368), then TLS through `herald_certs::tls::TlsStream`, the record
//! layer c2s uses too. Reads are cancel-safe (the drivers `select!` over them); writes
//! are bounded in time by the caller.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use herald_certs::tls::TlsStream;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// How long closing may wait for the peer to take the last bytes.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Read buffer size.
const READ_SIZE: usize = 16 * 1024;

thread_local! {
    /// One read buffer per worker thread, as c2s has: an idle stream holds none (what
    /// a read brings goes straight to the caller's sink in the same poll).
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_SIZE].into_boxed_slice());
}

pub(crate) enum S2sIo {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Moved into a TLS handshake that failed.
    Gone,
}

impl S2sIo {
    /// Read once; `Ok(false)` at end of stream. What arrived (decrypted) goes to
    /// `sink`, which must not read from another stream. Cancel-safe.
    pub(crate) async fn read<F: FnMut(&[u8])>(&mut self, mut sink: F) -> io::Result<bool> {
        let more = std::future::poll_fn(|cx| {
            SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                match self {
                    Self::Plain(tcp) => {
                        let mut buf = ReadBuf::new(&mut scratch[..]);
                        match Pin::new(tcp).poll_read(cx, &mut buf) {
                            Poll::Ready(Ok(())) => {
                                sink(buf.filled());
                                Poll::Ready(Ok(!buf.filled().is_empty()))
                            }
                            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                            Poll::Pending => Poll::Pending,
                        }
                    }
                    Self::Tls(tls) => tls.poll_read_with(cx, &mut scratch[..], &mut sink),
                    Self::Gone => Poll::Ready(Ok(false)),
                }
            })
        })
        .await?;
        if let Self::Tls(tls) = self {
            if tls.needs_flush() {
                tls.flush().await?;
            }
        }
        Ok(more)
    }

    /// Write `data` (encrypted under TLS) and flush it.
    pub(crate) async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.write_all(data).await,
            Self::Tls(tls) => {
                tls.seal(data)?;
                tls.flush().await
            }
            Self::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Run the server side of a TLS handshake (STARTTLS); the caller bounds its time.
    pub(crate) async fn accept_tls(&mut self, config: Arc<rustls::ServerConfig>) -> io::Result<()> {
        let Self::Plain(tcp) = std::mem::replace(self, Self::Gone) else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        *self = Self::Tls(Box::new(TlsStream::accept(tcp, config).await?));
        Ok(())
    }

    /// Run the client side of a TLS handshake with SNI `name`.
    pub(crate) async fn connect_tls(
        &mut self,
        config: Arc<rustls::ClientConfig>,
        name: &str,
    ) -> io::Result<()> {
        let Self::Plain(tcp) = std::mem::replace(self, Self::Gone) else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        let name = ServerName::try_from(name.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        *self = Self::Tls(Box::new(TlsStream::connect(tcp, config, name).await?));
        Ok(())
    }

    /// The certificate chain the peer presented (end-entity first); empty without TLS
    /// or without a certificate.
    pub(crate) fn peer_chain(&self) -> Vec<CertificateDer<'static>> {
        match self {
            Self::Tls(tls) => tls
                .session()
                .peer_certificates()
                .map(<[_]>::to_vec)
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// End the connection (close_notify under TLS), bounded in time.
    pub(crate) async fn close(&mut self) {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            match self {
                Self::Plain(tcp) => {
                    let _ = tcp.shutdown().await;
                }
                Self::Tls(tls) => {
                    let _ = tls.close().await;
                }
                Self::Gone => {}
            }
        })
        .await;
    }
}
