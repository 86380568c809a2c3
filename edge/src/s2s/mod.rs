//! Server-to-server federation (XMPP, issue 8): finding and reaching remote servers.

pub mod connect;
pub mod dns;
pub mod srv;
