//! Herald's policy layer: pure decisions over facts the caller already knows, each
//! returned with the reason it was made (an RFC or XEP section, or the Herald policy
//! that chose), so an admin tool can print why a stanza went where it went.
//!
//! - [`subscription`]: the RFC 6121 presence subscription state machine (Appendix A,
//!   §3.4 pre-approval): [`outbound`] and [`inbound`] transitions.
//! - [`routing`]: where a message, IQ or presence stanza for a local user goes, by
//!   type (RFC 6121 §8.5): [`route_message`], [`route_iq`], [`route_presence`].
//! - [`delivery`]: which sessions receive a message to a bare JID ([`DeliveryPolicy`]).
//! - [`offline`]: which messages are worth storing offline (XEP-0160, XEP-0334).
//! - [`carbons`]: which messages are carbon-copied (XEP-0280 §6).
//! - [`message`]: the facts about a `<message/>` those rules read, taken once from the
//!   element.
//! - [`blocklist`]: XEP-0191 block lists, matched through an index built once
//!   ([`BlockList`]).
//! - [`federation`]: domain patterns, static routes, domain ACLs, TLS and
//!   authentication policy, per-domain limits and the s2s stanza guard, gathered in
//!   [`Federation`], which also explains itself ([`Federation::explain`]).
//!
//! This crate must never do I/O, read a clock, spawn tasks or keep state between
//! calls: callers pass in what they know and carry out what is decided.

pub mod blocklist;
pub mod carbons;
pub mod delivery;
pub mod federation;
pub mod message;
pub mod offline;
pub mod routing;
pub mod subscription;

pub use blocklist::{blocks, BlockList, BlockMatch};
pub use carbons::{carbon_eligible, CarbonCopy};
pub use delivery::{select_recipients, Candidate, Delivery, DeliveryPolicy};
pub use federation::Federation;
pub use message::{MessageFacts, MessageType};
pub use offline::{worth_storing, Storage};
pub use routing::{
    route_iq, route_message, route_presence, Addressed, Addressee, IqAction, IqRoute,
    MessageAction, MessageRoute, PresenceAction, PresenceRoute,
};
pub use subscription::{inbound, outbound, Inbound, Outbound, SubKind, SubState, Subscription};
