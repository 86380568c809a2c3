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
    /// Finding a remote server in DNS (federation).
    #[error(transparent)]
    Dns(#[from] crate::s2s::dns::DnsError),
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
    #[error("s2s listener {addr}: {source}")]
    S2sListener {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("admin listener {addr}: {source}")]
    Admin {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// Reading or writing a file an admin command names.
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Another Herald holds the data directory's lock.
    #[error(
        "{path} is locked{holder}: a Herald server is running on this data directory (stop it first)"
    )]
    Locked {
        path: PathBuf,
        /// ` by process N`, or empty when the holder is not known.
        holder: String,
    },
    /// The admin API did not answer.
    #[error("server not running (no answer on {addr})")]
    NotRunning { addr: SocketAddr },
    /// A command failed or was used wrongly; the message says why (and how to use it).
    #[error("{0}")]
    Command(String),
}
