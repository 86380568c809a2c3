//! The IM and presence services of the core (RFC 6121 and the XEPs around it), each a
//! type with a narrow interface over the shared [`Ctx`](crate::ctx::Ctx):
//!
//! - [`roster::Rosters`]: roster IQs, pushes, the per-user roster lock;
//! - [`subscription::Subscriptions`]: the subscription state machine;
//! - [`presence::Presence`]: broadcast, probes, directed and unavailable presence;
//! - [`messages::Messages`]: delivery with the multi-device rule, carbons, offline storage;
//! - [`blocking`]: XEP-0191 block lists as cached matchers;
//! - [`stream_mgmt`]: XEP-0198 counters and detached sessions;
//! - [`offline`], [`carbons`], [`iq`]: the pieces those use.
//!
//! Services never route: what must go to another user, local or remote, is returned
//! in an [`Outbox`], and the server's routing loop takes it from there. So no service
//! depends on routing, and routing is a loop rather than a recursion.

pub mod blocking;
pub mod carbons;
pub mod iq;
pub mod messages;
pub mod offline;
pub mod presence;
pub mod roster;
pub mod stream_mgmt;
pub mod subscription;

use herald_translate::Envelope;

/// Stanzas a service produced for other entities, in order.
pub type Outbox = Vec<Envelope>;
