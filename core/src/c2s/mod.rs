//! The XMPP client service (c2s): admission and listeners, the per-connection driver
//! that runs the negotiation machine, and the bound-session loop.
//!
//! Module order follows a connection's life, and imports only go down it:
//! `listener` → `connection` → `negotiate` → `session`, all over `io` (bytes, reader,
//! output) and `transport` (plain TCP or TLS).

pub(crate) mod admission;
mod connection;
pub mod fd_limit;
pub(crate) mod io;
mod listener;
mod negotiate;
mod session;
pub(crate) mod throttle;
pub(crate) mod transport;

use std::sync::Arc;
use std::time::Duration;

use herald_translate::negotiation::NegotiationConfig;
use herald_translate::sasl::DecoySecret;

use crate::server::Server;

pub use listener::{serve, Listeners};

/// What the client service is started with besides the core: its TLS configurations and
/// the secret behind unknown users' decoy SCRAM salts.
pub struct C2sParts {
    /// TLS for STARTTLS on the c2s port.
    pub tls: Arc<rustls::ServerConfig>,
    /// TLS for XEP-0368 direct TLS (ALPN `xmpp-client`).
    pub tls_direct: Arc<rustls::ServerConfig>,
    /// Made-up salts of unknown users are derived from it, so they stay the same across
    /// restarts (kept in the data directory).
    pub decoy_secret: [u8; 32],
}

/// What every connection of the client service shares.
pub(crate) struct C2s {
    pub(crate) server: Arc<Server>,
    pub(crate) negotiation: Arc<NegotiationConfig>,
    pub(crate) tls: Arc<rustls::ServerConfig>,
    pub(crate) tls_direct: Arc<rustls::ServerConfig>,
}

impl C2s {
    fn new(server: Arc<Server>, parts: C2sParts) -> Self {
        let s = server.settings();
        let negotiation = Arc::new(NegotiationConfig {
            domains: server.domains.clone(),
            allow_plain: s.allow_plain,
            stream_management: s.sm_resume_timeout_secs > 0,
            negotiation_timeout: Duration::from_secs(s.negotiation_timeout_secs),
            auth_failure_delay: Duration::from_millis(s.auth_failure_delay_ms),
            max_auth_attempts: s.max_auth_attempts,
            decoy_secret: DecoySecret::from_bytes(parts.decoy_secret),
        });
        Self {
            negotiation,
            tls: parts.tls,
            tls_direct: parts.tls_direct,
            server,
        }
    }
}
