//! The error of the TLS record layer ([`TlsSession`](super::TlsSession) and
//! [`TlsStream`](super::TlsStream)).

use std::io;

/// Why a TLS session failed or refused an operation.
///
/// Once a session has failed, every later call returns the same error: the
/// session never calls into rustls again with input, so no buffer can be
/// inconsistent with rustls' internal state.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// rustls rejected what the peer sent (or the peer sent a fatal alert).
    /// The alert rustls produced, if any, is queued in the outgoing bytes.
    #[error("TLS protocol error: {0}")]
    Protocol(rustls::Error),
    /// A buffer would have grown beyond its configured bound.
    #[error("TLS {0} limit exceeded")]
    LimitExceeded(Limit),
    /// Application data cannot be sent before the handshake completes.
    #[error("the TLS handshake is not complete")]
    HandshakeIncomplete,
    /// This side already sent close_notify; nothing more can be sent.
    #[error("the TLS session is closed")]
    Closed,
    /// The peer sent 0-RTT early data, which Herald never enables.
    #[error("TLS 0-RTT early data is not supported")]
    EarlyDataUnsupported,
    /// Key updates exist only in TLS 1.3 (refused without failing the session).
    #[error("key updates need TLS 1.3")]
    KeyUpdateNeedsTls13,
    /// rustls reported a state this layer does not know (a newer rustls).
    #[error("unexpected TLS state: {0}")]
    UnexpectedState(String),
}

/// The bounded buffers of a TLS session (see [`TlsLimits`](super::TlsLimits)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// Received ciphertext kept while the handshake runs.
    HandshakeBuffer,
    /// Received ciphertext kept after the handshake (incomplete records).
    PendingCiphertext,
    /// Plaintext held until the application asks for it.
    HeldPlaintext,
    /// Ciphertext queued for the peer and not yet written.
    Outgoing,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::HandshakeBuffer => "handshake buffer",
            Self::PendingCiphertext => "pending ciphertext",
            Self::HeldPlaintext => "held plaintext",
            Self::Outgoing => "outgoing ciphertext",
        })
    }
}

impl From<rustls::Error> for TlsError {
    fn from(error: rustls::Error) -> Self {
        Self::Protocol(error)
    }
}

impl From<TlsError> for io::Error {
    /// `Closed` maps to `BrokenPipe`, everything else to `InvalidData`; the
    /// [`TlsError`] stays available through `get_ref`/`into_inner`.
    fn from(error: TlsError) -> Self {
        let kind = match error {
            TlsError::Closed => io::ErrorKind::BrokenPipe,
            _ => io::ErrorKind::InvalidData,
        };
        Self::new(kind, error)
    }
}
