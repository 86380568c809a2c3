//! IQs to a local user (RFC 6121 §8.5.1, §8.5.2.1.3, §8.5.2.2.3, §8.5.3.1,
//! §8.5.3.2.3): to the addressed resource, answered by the server on the account's
//! behalf, bounced or dropped.

use herald_translate::StanzaErrorCondition;

use super::{Addressed, Addressee};

/// What happens to the IQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqAction {
    /// Deliver to the session bound to the addressed full JID.
    ToResource,
    /// The server answers for the account (a request to the bare JID). When it has no
    /// handler for the payload, it answers `service-unavailable`.
    AnswerForUser,
    /// Return an error with this condition to the sender.
    Bounce(StanzaErrorCondition),
    /// Drop it silently (a result or error with nowhere to go).
    Drop,
}

/// The decision for one IQ, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IqRoute {
    pub action: IqAction,
    pub reason: &'static str,
}

/// Decide where an IQ for a local user goes; `is_request` for types `get` and `set`.
pub fn route_iq(is_request: bool, to: &Addressee) -> IqRoute {
    let (action, reason) = route(is_request, to);
    IqRoute { action, reason }
}

fn route(is_request: bool, to: &Addressee) -> (IqAction, &'static str) {
    let unavailable = IqAction::Bounce(StanzaErrorCondition::ServiceUnavailable);
    let unanswered = "a result or error is never answered (RFC 6120 §8.2.3)";
    if !to.exists {
        return if is_request {
            (unavailable, "no such account (RFC 6121 §8.5.1)")
        } else {
            (IqAction::Drop, unanswered)
        };
    }
    if to.blocks_sender {
        return if is_request {
            (unavailable, "the user blocks the sender (XEP-0191 §3.5)")
        } else {
            (IqAction::Drop, "the user blocks the sender (XEP-0191 §3.5)")
        };
    }
    match (to.to, is_request) {
        (Addressed::Full { connected: true }, _) => (
            IqAction::ToResource,
            "the addressed resource is connected (RFC 6121 §8.5.3.1)",
        ),
        (Addressed::Full { connected: false }, true) => (
            unavailable,
            "request to a resource that is not connected (RFC 6121 §8.5.3.2.3)",
        ),
        (Addressed::Full { connected: false }, false) => (
            IqAction::Drop,
            "result or error for a resource that is not connected: dropped (RFC 6120 §8.2.3)",
        ),
        (Addressed::Bare, true) => (
            IqAction::AnswerForUser,
            "request to a bare JID: the server answers on the account's behalf (RFC 6121 §8.5.2.1.3, §8.5.2.2.3)",
        ),
        (Addressed::Bare, false) => (
            IqAction::Drop,
            "result or error for a bare JID: no session to give it to (RFC 6120 §8.2.3)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SU: IqAction = IqAction::Bounce(StanzaErrorCondition::ServiceUnavailable);

    #[test]
    fn iq_routing_table() {
        let here = Addressed::Full { connected: true };
        let gone = Addressed::Full { connected: false };
        let bare = Addressed::Bare;
        // (exists, blocks_sender, to, action for a request, action for a response)
        let table = [
            (
                true,
                false,
                here,
                IqAction::ToResource,
                IqAction::ToResource,
            ),
            (true, false, gone, SU, IqAction::Drop),
            (true, false, bare, IqAction::AnswerForUser, IqAction::Drop),
            (false, false, here, SU, IqAction::Drop),
            (false, false, bare, SU, IqAction::Drop),
            (true, true, here, SU, IqAction::Drop),
            (true, true, bare, SU, IqAction::Drop),
            (false, true, gone, SU, IqAction::Drop),
        ];
        for (exists, blocks_sender, to, request, response) in table {
            let a = Addressee {
                exists,
                blocks_sender,
                to,
            };
            let r = route_iq(true, &a);
            assert_eq!(r.action, request, "{a:?} request");
            assert!(r.reason.contains('§'), "{}", r.reason);
            assert_eq!(route_iq(false, &a).action, response, "{a:?} response");
        }
    }
}
