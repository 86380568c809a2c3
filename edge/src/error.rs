//! The edge's error type.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdgeError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Core(#[from] herald_core::CoreError),
    #[error(transparent)]
    Store(#[from] herald_core::store::StoreError),
    #[error(transparent)]
    Certs(#[from] herald_certs::CertError),
    #[error("cannot create {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "no database at {path}. Account and roster commands do not create one: start the \
         server once with this configuration (`herald serve`), or point at the server's \
         configuration with --config FILE or HERALD_CONFIG=FILE"
    )]
    NoDatabase { path: PathBuf },
    /// A command was used wrongly; the text says how to use it.
    #[error("{0}")]
    Usage(String),
    #[error("admin listener {addr}: {source}")]
    Admin {
        addr: SocketAddr,
        source: std::io::Error,
    },
}
