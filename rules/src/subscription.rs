//! RFC 6121 presence subscriptions (§3, §3.4 pre-approval, Appendix A): the state one
//! side keeps about a contact, and what a subscription stanza does to it.
//!
//! [`outbound`] is the user's server handling a stanza the user sent (Appendix A.2);
//! [`inbound`] is the user's server handling a stanza the contact sent to the user
//! (Appendix A.3). Both are pure: the caller loads the state, applies the transition,
//! stores the new state and carries out the actions. Every result says why, citing the
//! RFC section that decided it.

use std::fmt;

/// Roster subscription state (RFC 6121 §2.1.2.5): whether the user receives the
/// contact's presence (`to`) and whether the contact receives the user's (`from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Subscription {
    #[default]
    None,
    To,
    From,
    Both,
}

impl Subscription {
    /// The value of the roster `subscription` attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::To => "to",
            Self::From => "from",
            Self::Both => "both",
        }
    }

    /// Parses a roster `subscription` attribute value. `"remove"` is not a state and
    /// yields `None`, as does any other value (values are case-sensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "to" => Some(Self::To),
            "from" => Some(Self::From),
            "both" => Some(Self::Both),
            _ => None,
        }
    }

    /// The state made of its two directions.
    pub fn from_parts(from: bool, to: bool) -> Self {
        match (from, to) {
            (false, false) => Self::None,
            (true, false) => Self::From,
            (false, true) => Self::To,
            (true, true) => Self::Both,
        }
    }

    /// The contact is subscribed to the user's presence (`from` or `both`).
    pub fn has_from(self) -> bool {
        matches!(self, Self::From | Self::Both)
    }

    /// The user is subscribed to the contact's presence (`to` or `both`).
    pub fn has_to(self) -> bool {
        matches!(self, Self::To | Self::Both)
    }
}

/// One side's view of a contact: the subscription, a pending outbound request (`ask`,
/// "Pending Out"), a pending inbound request ("Pending In") and a pre-approval
/// (RFC 6121 §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubState {
    pub sub: Subscription,
    /// The user asked for the contact's presence and has no answer yet.
    pub ask: bool,
    /// The contact asked for the user's presence and the user has not answered yet.
    pub pending_in: bool,
    /// The user approved a subscription the contact has not asked for yet.
    pub approved: bool,
}

impl SubState {
    /// The state's name in RFC 6121 Appendix A.1 ("None + Pending Out+In", "Both").
    /// `ask` counts only without a `to` subscription and `pending_in` only without a
    /// `from` one (the RFC defines no other combination); `approved` is not part of
    /// the name (see the `Display` form).
    pub fn rfc_name(self) -> &'static str {
        let out = self.ask && !self.sub.has_to();
        let inn = self.pending_in && !self.sub.has_from();
        match (self.sub, out, inn) {
            (Subscription::None, false, false) => "None",
            (Subscription::None, true, false) => "None + Pending Out",
            (Subscription::None, false, true) => "None + Pending In",
            (Subscription::None, true, true) => "None + Pending Out+In",
            (Subscription::To, _, false) => "To",
            (Subscription::To, _, true) => "To + Pending In",
            (Subscription::From, false, _) => "From",
            (Subscription::From, true, _) => "From + Pending Out",
            (Subscription::Both, _, _) => "Both",
        }
    }
}

impl fmt::Display for SubState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rfc_name())?;
        if self.approved {
            f.write_str(" (pre-approved)")?;
        }
        Ok(())
    }
}

/// The four subscription stanza types (`<presence type='...'/>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubKind {
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
}

impl SubKind {
    /// The kind of a presence `type` attribute; other types are not subscription
    /// stanzas.
    pub fn parse(t: &str) -> Option<Self> {
        match t {
            "subscribe" => Some(Self::Subscribe),
            "subscribed" => Some(Self::Subscribed),
            "unsubscribe" => Some(Self::Unsubscribe),
            "unsubscribed" => Some(Self::Unsubscribed),
            _ => None,
        }
    }

    /// The presence `type` attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subscribe => "subscribe",
            Self::Subscribed => "subscribed",
            Self::Unsubscribe => "unsubscribe",
            Self::Unsubscribed => "unsubscribed",
        }
    }
}

/// What the user's server does with a subscription stanza the user sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outbound {
    /// The state to store (a roster push follows when it changed).
    pub state: SubState,
    /// Route the stanza to the contact.
    pub route: bool,
    /// Then send the current presence of each of the user's available resources to
    /// the contact (the contact was just approved, RFC 6121 §3.1.5).
    pub send_presence: bool,
    /// Send unavailable presence from each of the user's available resources to the
    /// contact, whose subscription is cancelled. RFC 6121 §3.2.2 sends it while the
    /// contact is still subscribed, that is before the routed `unsubscribed`.
    pub send_unavailable: bool,
    pub reason: &'static str,
}

/// What the user's server does with a subscription stanza the contact sent to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inbound {
    /// The state to store (a roster push follows when it changed).
    pub state: SubState,
    /// Deliver the stanza to the user's interested resources; a `subscribe` delivered
    /// is also kept as the pending request until the user answers (RFC 6121 §3.1.3).
    pub deliver: bool,
    /// Answer `subscribed` on the user's behalf, then send the user's current presence
    /// to the contact (RFC 6121 §3.1.3, §3.4).
    pub auto_subscribed: bool,
    /// Send unavailable presence from each of the user's available resources to the
    /// contact, who just stopped being a subscriber (RFC 6121 §3.3.3).
    pub send_unavailable: bool,
    pub reason: &'static str,
}

/// The user sends a subscription stanza to the contact (RFC 6121 §3.1.2, §3.1.5,
/// §3.2.2, §3.3.2, §3.4, Appendix A.2).
pub fn outbound(s: SubState, kind: SubKind) -> Outbound {
    let from = s.sub.has_from();
    let to = s.sub.has_to();
    let mut n = s;
    let (route, send_presence, send_unavailable, reason) = match kind {
        SubKind::Subscribe => {
            if to {
                (
                    true,
                    false,
                    false,
                    "subscribe while already subscribed: routed, no state change (RFC 6121 §3.1.2, A.2.1)",
                )
            } else {
                n.ask = true;
                (
                    true,
                    false,
                    false,
                    "subscribe: routed to the contact, now pending out (RFC 6121 §3.1.2, A.2.1)",
                )
            }
        }
        SubKind::Subscribed => {
            if from {
                (
                    false,
                    false,
                    false,
                    "subscribed while the contact is already subscribed: ignored (RFC 6121 §3.1.5, A.2.3)",
                )
            } else if s.pending_in {
                n.sub = Subscription::from_parts(true, to);
                n.pending_in = false;
                n.approved = false;
                (
                    true,
                    true,
                    false,
                    "subscribed answers the contact's pending request: routed, then the user's presence; the contact is now subscribed (RFC 6121 §3.1.5, A.2.3)",
                )
            } else {
                n.approved = true;
                (
                    false,
                    false,
                    false,
                    "subscribed before the contact asked: kept as a pre-approval, not routed (RFC 6121 §3.4.1)",
                )
            }
        }
        SubKind::Unsubscribe => {
            n.sub = Subscription::from_parts(from, false);
            n.ask = false;
            let reason = if to || s.ask {
                "unsubscribe: routed, the user's subscription or request ends (RFC 6121 §3.3.2, A.2.2)"
            } else {
                "unsubscribe without a subscription or request: routed, no state change (RFC 6121 §3.3.2, A.2.2)"
            };
            (true, false, false, reason)
        }
        SubKind::Unsubscribed => {
            n.sub = Subscription::from_parts(false, to);
            n.pending_in = false;
            n.approved = false;
            if from {
                (
                    true,
                    false,
                    true,
                    "unsubscribed cancels the contact's subscription: unavailable presence, then routed (RFC 6121 §3.2.2, A.2.4)",
                )
            } else if s.pending_in {
                (
                    true,
                    false,
                    false,
                    "unsubscribed denies the contact's pending request: routed (RFC 6121 §3.2.2, A.2.4)",
                )
            } else if s.approved {
                (
                    false,
                    false,
                    false,
                    "unsubscribed withdraws the pre-approval: not routed (RFC 6121 §3.2.2 step 2, §3.4)",
                )
            } else {
                (
                    false,
                    false,
                    false,
                    "unsubscribed with nothing to cancel: not routed, no state change (RFC 6121 §3.2.2, A.2.4)",
                )
            }
        }
    };
    Outbound {
        state: n,
        route,
        send_presence,
        send_unavailable,
        reason,
    }
}

/// A subscription stanza from the contact arrives for the user (RFC 6121 §3.1.3,
/// §3.1.6, §3.2.3, §3.3.3, §3.4, Appendix A.3).
pub fn inbound(s: SubState, kind: SubKind) -> Inbound {
    let from = s.sub.has_from();
    let to = s.sub.has_to();
    let mut n = s;
    let (deliver, auto_subscribed, send_unavailable, reason) = match kind {
        SubKind::Subscribe => {
            if from {
                (
                    false,
                    true,
                    false,
                    "subscribe from a contact already subscribed: answered subscribed on the user's behalf, not delivered (RFC 6121 §3.1.3, A.3.1)",
                )
            } else if s.approved {
                n.sub = Subscription::from_parts(true, to);
                n.approved = false;
                n.pending_in = false;
                (
                    false,
                    true,
                    false,
                    "pre-approved: answered subscribed on the user's behalf, not delivered (RFC 6121 §3.4)",
                )
            } else if s.pending_in {
                (
                    false,
                    false,
                    false,
                    "subscribe while a request is already pending: not delivered again, no state change (RFC 6121 §3.1.3, A.3.1)",
                )
            } else {
                n.pending_in = true;
                (
                    true,
                    false,
                    false,
                    "subscribe: delivered to the user and kept until answered, now pending in (RFC 6121 §3.1.3, A.3.1)",
                )
            }
        }
        SubKind::Subscribed => {
            if s.ask && !to {
                n.sub = Subscription::from_parts(from, true);
                n.ask = false;
                (
                    true,
                    false,
                    false,
                    "subscribed answers the user's request: delivered, the user is now subscribed (RFC 6121 §3.1.6, A.3.2)",
                )
            } else {
                (
                    false,
                    false,
                    false,
                    "subscribed without a pending request: ignored (RFC 6121 §3.1.6, A.3.2)",
                )
            }
        }
        SubKind::Unsubscribe => {
            if from || s.pending_in {
                n.sub = Subscription::from_parts(false, to);
                n.pending_in = false;
                let reason = if from {
                    "unsubscribe: delivered, the contact is no longer subscribed and gets unavailable presence (RFC 6121 §3.3.3, A.3.3)"
                } else {
                    "unsubscribe withdraws the contact's pending request: delivered, request removed (RFC 6121 §3.3.3, A.3.3)"
                };
                (true, false, from, reason)
            } else {
                (
                    false,
                    false,
                    false,
                    "unsubscribe from a contact not subscribed: ignored (RFC 6121 §3.3.3, A.3.3)",
                )
            }
        }
        SubKind::Unsubscribed => {
            if to || s.ask {
                n.sub = Subscription::from_parts(from, false);
                n.ask = false;
                let reason = if to {
                    "unsubscribed: delivered, the user's subscription is cancelled (RFC 6121 §3.2.3, A.3.4)"
                } else {
                    "unsubscribed: delivered, the user's request is denied (RFC 6121 §3.2.3, A.3.4)"
                };
                (true, false, false, reason)
            } else {
                (
                    false,
                    false,
                    false,
                    "unsubscribed without a subscription or request: ignored (RFC 6121 §3.2.3, A.3.4)",
                )
            }
        }
    };
    Inbound {
        state: n,
        deliver,
        auto_subscribed,
        send_unavailable,
        reason,
    }
}

#[cfg(test)]
#[path = "subscription_tests.rs"]
mod tests;
