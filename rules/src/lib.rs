//! Herald's policy layer: pure decisions over the neutral model — which sessions receive
//! a message sent to a bare JID, and whether a block list covers an address. Every
//! decision says why it was made, so an admin tool can print it.
//!
//! No I/O here, no clocks, no storage: callers pass in what they know.

pub mod blocklist;
pub mod delivery;

pub use blocklist::{blocks, BlockMatch};
pub use delivery::{select_recipients, Candidate, Delivery, DeliveryPolicy};
