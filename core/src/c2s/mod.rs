//! The XMPP client service (c2s): admission and listeners, the per-connection driver
//! that runs the negotiation machine, and the bound-session loop.
//!
//! Module order follows a connection's life, and imports only go down it:
//! `listener` → `connection` → `negotiate` → `session`, all over `io` (bytes, reader,
//! output) and `transport` (plain TCP or TLS).

mod admission;
mod connection;
pub mod fd_limit;
mod io;
mod listener;
mod negotiate;
mod session;
pub(crate) mod throttle;
mod tls;
mod transport;

pub use listener::{serve, Listeners};
