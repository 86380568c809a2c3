//! XMPP server-to-server federation: the edge's side of `herald_core::federation`.
//!
//! - `outbound_queue`: per remote domain, stanzas wait (bounded) while a stream is set
//!   up, go out in order, or bounce to their senders; back-off after failures, idle
//!   streams closed (sans-IO, virtual-time tests).

pub mod outbound;
pub mod outbound_queue;
