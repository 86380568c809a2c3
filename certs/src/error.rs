//! The error type shared by every operation of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while loading, generating or using certificates.
///
/// Variants that concern a file always carry its path, so that an operator can
/// tell which of the configured files is at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// A file or directory could not be read, written or created.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying operating-system error.
        source: std::io::Error,
    },
    /// A file is not valid PEM, or holds something unusable (a malformed
    /// certificate, an unsupported key type...).
    #[error("{}: invalid PEM content: {reason}", path.display())]
    Pem {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A PEM file that should hold at least one certificate holds none.
    #[error("{}: no certificate found", .0.display())]
    NoCertificate(PathBuf),
    /// A PEM file that should hold a private key holds none.
    #[error("{}: no private key found", .0.display())]
    NoPrivateKey(PathBuf),
    /// Generating a key or certificate failed (including invalid names).
    #[error("certificate generation failed: {0}")]
    Generate(String),
    /// rustls refused a configuration or a certificate.
    #[error("TLS error: {0}")]
    Tls(String),
    /// The private key is not the one certified by the certificate.
    #[error("the private key does not match the certificate for {domain}")]
    KeyMismatch {
        /// The first name the certificate covers (or the certificate's path
        /// when it covers none).
        domain: String,
    },
    /// A trust store would be empty: no CA certificate was given.
    #[error("no trust anchor (CA certificate) was provided")]
    NoTrustAnchors,
}

impl From<rustls::Error> for CertError {
    fn from(error: rustls::Error) -> Self {
        Self::Tls(error.to_string())
    }
}

impl From<rcgen::Error> for CertError {
    fn from(error: rcgen::Error) -> Self {
        Self::Generate(error.to_string())
    }
}
