//! The core's error type.

use std::net::SocketAddr;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid username {0:?}: {1}")]
    InvalidUsername(String, herald_translate::JidError),
    #[error("the password is empty")]
    EmptyPassword,
    #[error("invalid password: {0}")]
    InvalidPassword(herald_translate::sasl::SaslError),
    #[error("background task failed: {0}")]
    Task(String),
    #[error("cannot serialize a stanza: {0}")]
    Serialize(#[from] herald_translate::xml::SerializeError),
}
