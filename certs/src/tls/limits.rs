//! Bounds on the buffers a TLS session may keep.

/// How much a [`TlsSession`](super::TlsSession) may buffer. Exceeding a bound
/// fails the session with [`TlsError::LimitExceeded`](super::TlsError::LimitExceeded)
/// (or, for outgoing ciphertext, refuses the write).
///
/// ```
/// let mut limits = herald_certs::tls::TlsLimits::default();
/// limits.max_outgoing = 1 << 20;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsLimits {
    /// Received ciphertext kept while the handshake runs: a client flight may
    /// carry a certificate chain split over several records.
    pub max_handshake_buffer: usize,
    /// Received ciphertext kept after the handshake: an incomplete record, or
    /// the records of a post-handshake message being reassembled. A record is
    /// at most 16 KiB plus overhead; a handshake message at most 64 KiB.
    pub max_pending: usize,
    /// Plaintext kept inside the session until the application takes it
    /// (application data pipelined behind the client's Finished).
    pub max_held_plaintext: usize,
    /// Ciphertext queued for the peer and not yet taken by the driver.
    pub max_outgoing: usize,
}

impl Default for TlsLimits {
    fn default() -> Self {
        Self {
            max_handshake_buffer: 96 * 1024,
            max_pending: 80 * 1024,
            max_held_plaintext: 64 * 1024,
            max_outgoing: 8 * 1024 * 1024,
        }
    }
}
