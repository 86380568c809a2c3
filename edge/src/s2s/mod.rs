//! XMPP server-to-server federation: the edge's side of `herald_core::federation`.
//!
//! - `srv`, `dns`, `connect`: finding and reaching a remote server — RFC 2782 ordering
//!   of `_xmpps-server`/`_xmpp-server` records (sans-IO), lookups through
//!   hickory-resolver with configurable nameservers, failover across candidates.
//! - `outbound_queue`: per remote domain, stanzas wait (bounded) while a stream is set
//!   up, go out in order, or bounce to their senders; back-off after failures, idle
//!   streams closed (sans-IO, virtual-time tests).
//! - `outbound`: the driver of the queues, the edge's `Federation`.
//! - `context`, `io`, `negotiate`: what connection tasks share; the byte stream (TCP,
//!   then TLS); setting up one outbound stream with the `Initiating` machine.
//! - `connector`: the real `Connector` (one task per established outbound stream),
//!   dialback verify connections, and `Guarded` (the outbound ACL before `Outbound`).
//! - `inbound`: the s2s listeners and the `Receiving` driver; `rate`: the per-domain
//!   inbound rate buckets (a stream over budget stops reading for a while).
//! - `front`: starting all of it from the configuration.

pub mod connect;
pub mod connector;
pub mod context;
pub mod dns;
pub mod front;
pub mod inbound;
pub(crate) mod io;
mod negotiate;
pub mod outbound;
pub mod outbound_queue;
pub mod rate;
pub mod srv;
