//! XMPP server-to-server federation: the edge's side of `herald_core::federation`.
//!
//! - `srv`, `dns`, `connect`: finding and reaching a remote server — RFC 2782 ordering
//!   of `_xmpps-server`/`_xmpp-server` records (sans-IO), lookups through
//!   hickory-resolver with configurable nameservers, failover across candidates.
//! - `outbound_queue`: per remote domain, stanzas wait (bounded) while a stream is set
//!   up, go out in order, or bounce to their senders; back-off after failures, idle
//!   streams closed (sans-IO, virtual-time tests).
//! - `outbound`: the driver of the queues, the edge's `Federation`.

pub mod connect;
pub mod dns;
pub mod outbound;
pub mod outbound_queue;
pub mod srv;
