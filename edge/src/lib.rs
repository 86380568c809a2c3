//! Herald's edge: the federation front (a later issue) and the `herald` appliance that
//! wires the core, certificates, configuration, logging and the admin listener into one
//! process.
//!
//! The edge owns every socket that faces another domain; it must never hold user state
//! (that is the core's).

pub mod account_arg;
pub mod admin;
mod admin_api;
pub mod admin_client;
pub mod admin_http;
pub mod app;
pub mod config;
pub mod config_source;
pub mod error;
pub mod lock;
pub mod logging;
pub mod ops;
pub mod password;
pub mod reload;
pub mod s2s;
pub mod secrets;

pub use app::{start, Running};
pub use config::Config;
pub use error::EdgeError;
