//! SIP-specific event notification (RFC 6665) as sans-IO dialog state.
//!
//! - [`Subscription`]: the notifier side of one subscription dialog. A SUBSCRIBE
//!   creates it (the notifier picks the To tag), refreshes it or ends it (Expires: 0);
//!   the Expires value is negotiated (423 with Min-Expires below the minimum, shortened
//!   above the maximum, the package default when absent); each NOTIFY carries the
//!   Subscription-State and the next CSeq; the expiry is a deadline
//!   ([`Subscription::poll_timeout`]) whose timeout produces the final NOTIFY
//!   (`terminated;reason=timeout`); a 481 (or a timeout) to a NOTIFY ends it. Whether
//!   the watcher may watch ([`Authorization`]) is the caller's decision, an input.
//! - [`Subscriber`]: the subscriber side of one SUBSCRIBE, for when Herald subscribes
//!   (federation). A forked SUBSCRIBE may be answered by several notifiers: each
//!   NOTIFY with a new From tag creates a dialog, keyed by that tag (RFC 6665 §4.1.2.4,
//!   §5.4.9).
//!
//! Requests and responses are the codec's [`Message`]; they travel through the
//! transaction layer ([`crate::sip::transaction`]). Nothing here reads a clock or draws
//! randomness of its own: `now` and an RNG are arguments.

mod notifier;
mod subscriber;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

use std::fmt;
use std::time::{Duration, Instant};

use super::message::Message;

pub use notifier::{NotifierConfig, Subscription};
pub use subscriber::{NotifyOutcome, RemoteDialog, SubscribeAnswer, Subscriber, SubscriberTimeout};

/// A dialog's identity (RFC 3261 §12): Call-ID and the two tags.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// The Call-ID.
    pub call_id: String,
    /// Our tag (the To tag for the notifier, the From tag for the subscriber).
    pub local_tag: String,
    /// The other side's tag.
    pub remote_tag: String,
}

impl DialogId {
    /// The dialog an in-dialog request received by a UAS names: Call-ID, To tag (ours),
    /// From tag (theirs). `None` without both tags.
    pub fn of_request(request: &Message) -> Option<Self> {
        Some(Self {
            call_id: request.call_id().ok()?.to_owned(),
            local_tag: request.to().ok()?.tag()?.to_owned(),
            remote_tag: request.from().ok()?.tag()?.to_owned(),
        })
    }
}

/// What the core decided about a watcher (the input that moves a subscription between
/// pending, active and terminated, RFC 6665 §4.2.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authorization {
    /// Not decided yet: `pending`.
    Pending,
    /// Allowed: `active`.
    Active,
    /// Refused: a new SUBSCRIBE gets 403; a live subscription ends with
    /// `terminated;reason=rejected`.
    Rejected,
}

/// Why a subscription ended (RFC 6665 §4.1.3, the `reason` of Subscription-State).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The subscription was ended; the subscriber may subscribe again at once.
    Deactivated,
    /// Ended; the subscriber may try again after `retry_after` seconds.
    Probation {
        /// Seconds to wait, if said.
        retry_after: Option<u32>,
    },
    /// The watcher is not authorized.
    Rejected,
    /// Not refreshed in time (or an unsubscribe or a fetch).
    Timeout,
    /// The notifier could not wait for authorization; retry after `retry_after`.
    Giveup {
        /// Seconds to wait, if said.
        retry_after: Option<u32>,
    },
    /// The resource is gone.
    Noresource,
    /// The resource will never change state.
    Invariant,
    /// A reason this code does not know, as received.
    Other(String),
}

impl Reason {
    /// The reason named `name`, with the `retry-after` that came with it (kept only
    /// where RFC 6665 gives it a meaning).
    pub fn parse(name: &str, retry_after: Option<u32>) -> Self {
        match name.to_ascii_lowercase().as_str() {
            "deactivated" => Self::Deactivated,
            "probation" => Self::Probation { retry_after },
            "rejected" => Self::Rejected,
            "timeout" => Self::Timeout,
            "giveup" => Self::Giveup { retry_after },
            "noresource" => Self::Noresource,
            "invariant" => Self::Invariant,
            _ => Self::Other(name.to_owned()),
        }
    }
}

impl fmt::Display for Reason {
    /// `reason=...[;retry-after=N]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, retry) = match self {
            Self::Deactivated => ("deactivated", None),
            Self::Probation { retry_after } => ("probation", *retry_after),
            Self::Rejected => ("rejected", None),
            Self::Timeout => ("timeout", None),
            Self::Giveup { retry_after } => ("giveup", *retry_after),
            Self::Noresource => ("noresource", None),
            Self::Invariant => ("invariant", None),
            Self::Other(name) => (name.as_str(), None),
        };
        write!(f, "reason={name}")?;
        if let Some(secs) = retry {
            write!(f, ";retry-after={secs}")?;
        }
        Ok(())
    }
}

/// The state of a subscription (RFC 6665 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubState {
    /// Accepted, not yet authorized.
    Pending,
    /// Authorized.
    Active,
    /// Over.
    Terminated(Reason),
}

/// A NOTIFY body with its media type (`application/pidf+xml`...), given by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The Content-Type value.
    pub content_type: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// Whole seconds from `now` to `at`, rounded up (0 once it has passed).
fn secs_until(at: Instant, now: Instant) -> u32 {
    let left = at.saturating_duration_since(now);
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// `secs` seconds after `now`.
fn after(now: Instant, secs: u32) -> Instant {
    now + Duration::from_secs(u64::from(secs))
}
