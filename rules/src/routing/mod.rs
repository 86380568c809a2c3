//! Where a stanza for a local user goes, by stanza type (RFC 6121 §8.5, §8.5.1 for
//! accounts that do not exist, XEP-0191 §3.5 for blocked senders).
//!
//! The caller states what it knows about the addressee ([`Addressee`]) and, for a
//! message to a bare JID, the user's sessions; the rules answer with one action and
//! the reason for it. When delivery to a connected resource then fails (its queue is
//! full or it just closed), the caller asks again with that resource not connected.

mod iq;
mod message;
mod presence;

pub use iq::{route_iq, IqAction, IqRoute};
pub use message::{route_message, MessageAction, MessageRoute};
pub use presence::{route_presence, PresenceAction, PresenceRoute};

/// How the stanza addresses the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressed {
    /// `localpart@domainpart` (RFC 6121 §8.5.2).
    Bare,
    /// `localpart@domainpart/resourcepart` (RFC 6121 §8.5.3); `connected` when a
    /// session is bound to exactly that full JID, available or not.
    Full { connected: bool },
}

/// What the server knows about the local user a stanza is addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addressee {
    /// The account exists.
    pub exists: bool,
    /// The user's block list covers the sender (XEP-0191).
    pub blocks_sender: bool,
    pub to: Addressed,
}
