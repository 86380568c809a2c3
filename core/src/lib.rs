//! Herald's core: the internal presence and IM service. It owns state — sessions,
//! rosters, subscriptions, presence, offline queues — and serves XMPP clients (c2s).
//!
//! The core never opens a federation connection: stanzas for domains it does not host
//! leave through the [`federation::Federation`] interface, which the edge implements.
//! Storage goes through the [`store::Store`] trait.

pub mod account_control;
pub mod accounts;
mod admin;
mod bare_map;
mod blocklists;
pub mod c2s;
pub mod clock;
pub mod contacts;
pub mod ctx;
pub mod db;
pub mod error;
pub mod federation;
pub mod metrics;
pub mod metrics_s2s;
pub mod metrics_sip;
pub mod reload;
pub mod router;
pub mod server;
pub mod services;
mod sessions;
pub mod settings;
pub mod sip;
pub mod store;
pub mod time;

pub use admin::SessionInfo;
pub use error::CoreError;
pub use server::Server;
pub use settings::C2sSettings;
