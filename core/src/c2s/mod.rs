//! The XMPP client service (c2s): listeners, the per-connection driver that runs the
//! negotiation machine, the bound-session loop, and XEP-0198 stream management.

mod conn;
mod listener;
mod session;
pub mod sm;
mod tls;
mod transport;

pub use listener::{serve, Listeners};
