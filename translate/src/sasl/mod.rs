//! SASL mechanisms, server side and client side, as pure state machines.
//!
//! `scram.rs` and `plain.rs` implement the mechanisms; `decoy.rs` derives the credentials
//! unknown users are answered with; `framing.rs` puts SASL payloads into XMPP elements.

/// A hash family used by a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScramHash {
    Sha1,
    Sha256,
}

/// What the server stores for one account and one SCRAM hash (RFC 5802 §3):
/// never the password, only the salt, the iteration count, StoredKey and ServerKey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramRecord {
    pub hash: ScramHash,
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

/// The iteration count Herald derives new records with, and the one decoy records
/// announce (RFC 7677 recommends at least 4096).
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// Length in bytes of generated and decoy salts.
pub const SALT_LEN: usize = 16;

mod decoy;
pub(crate) mod framing;
pub mod plain;
pub mod scram;

pub use decoy::DecoySecret;
pub use plain::{plain_encode, plain_parse};
pub use scram::{verify_password, ClientFirst, ScramClient, ScramServer};

/// Why a SASL exchange (or a credential derivation) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// The message does not follow the mechanism's syntax or the exchange's order.
    #[error("malformed SASL request: {0}")]
    MalformedRequest(&'static str),
    /// Base64 data inside or around the exchange could not be decoded.
    #[error("incorrect base64 encoding")]
    IncorrectEncoding,
    /// Wrong credentials, or an unknown user.
    #[error("not authorized")]
    NotAuthorized,
    /// The authorization identity is refused.
    #[error("invalid authorization identity")]
    InvalidAuthzid,
    /// The mechanism needs a TLS-protected stream.
    #[error("encryption required")]
    EncryptionRequired,
    /// The mechanism is not offered.
    #[error("invalid mechanism")]
    InvalidMechanism,
    /// The mechanism is too weak for this account or policy.
    #[error("mechanism too weak")]
    MechanismTooWeak,
    /// The client aborted the exchange.
    #[error("authentication aborted")]
    Aborted,
    /// The account is disabled.
    #[error("account disabled")]
    AccountDisabled,
    /// The credentials have expired.
    #[error("credentials expired")]
    CredentialsExpired,
    /// A temporary server-side failure.
    #[error("temporary authentication failure")]
    TemporaryAuthFailure,
    /// The password is not valid under the PRECIS OpaqueString profile.
    #[error("password contains disallowed characters")]
    InvalidPassword,
    /// Client side: the server's signature in the server-final-message does not match.
    #[error("server signature mismatch")]
    ServerSignatureMismatch,
    /// Client side: the server-final-message carried `e=<value>`.
    #[error("server reported error: {0}")]
    ServerError(String),
}

impl SaslError {
    /// The RFC 6120 §6.5 `<failure/>` child element name for this error.
    pub fn condition(&self) -> &'static str {
        match self {
            Self::MalformedRequest(_) => "malformed-request",
            Self::IncorrectEncoding => "incorrect-encoding",
            Self::NotAuthorized
            | Self::InvalidPassword
            | Self::ServerSignatureMismatch
            | Self::ServerError(_) => "not-authorized",
            Self::InvalidAuthzid => "invalid-authzid",
            Self::EncryptionRequired => "encryption-required",
            Self::InvalidMechanism => "invalid-mechanism",
            Self::MechanismTooWeak => "mechanism-too-weak",
            Self::Aborted => "aborted",
            Self::AccountDisabled => "account-disabled",
            Self::CredentialsExpired => "credentials-expired",
            Self::TemporaryAuthFailure => "temporary-auth-failure",
        }
    }
}
