//! HTTP Digest authentication as SIP uses it (RFC 3261 §22, RFC 8760 for SHA-256 and
//! SHA-512/256, RFC 7616 for the algorithm details), server side.
//!
//! - [`params`]: the `auth-param` lists of `Authorization` and `WWW-Authenticate`
//!   values (tokens, quoted strings with escapes, case-insensitive names), bounded.
//! - [`Credentials`] and [`Challenge`]: the two header values, parsed and written.
//! - [`Algorithm`], [`ha1`], [`verify_response`]: the hashes, and the check of a
//!   response against a stored HA1 with `qop=auth` or without `qop` (RFC 2069),
//!   compared in constant time.
//! - [`NonceManager`]: self-validating nonces (an HMAC over the issue time, so no
//!   table is needed to know one is ours), expiry reported as stale, and `nc` replay
//!   protection in a bounded table.
//! - [`DigestServer`]: a realm's challenge-and-check in one call, with the reason of
//!   every refusal for the logs.
//!
//! Not implemented: `qop=auth-int` (the body hash), RFC 7616's `userhash` and
//! `username*`, and the client side beyond writing [`Credentials`].
//! Nothing here reads a clock or draws randomness of its own: the caller passes the
//! time and a random source.

mod challenge;
mod compute;
mod credentials;
mod nonce;
pub mod params;
mod server;

#[cfg(test)]
mod tests;

pub use challenge::Challenge;
pub use compute::{expected_response, ha1, verify_response, Algorithm};
pub use credentials::{Credentials, Qop};
pub use nonce::{NonceConfig, NonceManager, NonceVerdict};
pub use server::{AuthOutcome, ChallengeReason, DigestServer};

/// Why a Digest header value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The value does not start with the `Digest` scheme.
    #[error("not a Digest value")]
    NotDigest,
    /// The parameter list does not follow the `auth-param` grammar.
    #[error("malformed parameters: {0}")]
    Syntax(&'static str),
    /// Longer than the limits allow (whole value, one value, parameter count).
    #[error("too long: {0}")]
    TooLong(&'static str),
    /// The same parameter twice.
    #[error("duplicate parameter {0:?}")]
    Duplicate(String),
    /// A parameter the value requires is absent.
    #[error("missing parameter {0}")]
    Missing(&'static str),
    /// A parameter with a value outside its type.
    #[error("invalid {name}: {value:?}")]
    Invalid { name: &'static str, value: String },
    /// An algorithm Herald does not implement.
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
}
