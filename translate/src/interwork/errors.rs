//! SIP response codes <-> XMPP stanza error conditions, for a gateway that answers one
//! protocol with the other's failure (RFC 7247 §8, used by RFC 7572 for messages).
//!
//! The two tables below are the code; `docs/INTERWORKING.md` prints them. A SIP code
//! not listed is read as the `x00` code of its class, as RFC 3261 §8.1.3.2 tells a SIP
//! element to treat an unknown response.

use crate::stanza::StanzaErrorCondition as C;

/// An XMPP error condition as a gateway produces it: the conditions Herald's stanza
/// layer builds, plus the two of RFC 6120 §8.3.3 that it does not (`redirect` needs a
/// target the SIP response may not give; `registration-required` has no other use in
/// Herald).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XmppCondition {
    Defined(C),
    Redirect,
    RegistrationRequired,
}

impl XmppCondition {
    /// The element name of the condition.
    pub fn name(self) -> &'static str {
        match self {
            Self::Defined(c) => c.name(),
            Self::Redirect => "redirect",
            Self::RegistrationRequired => "registration-required",
        }
    }
}

/// SIP response code -> XMPP condition.
pub const SIP_TO_XMPP: &[(u16, XmppCondition)] = &[
    (300, XmppCondition::Redirect),
    (301, XmppCondition::Defined(C::Gone)),
    (302, XmppCondition::Redirect),
    (305, XmppCondition::Redirect),
    (380, XmppCondition::Redirect),
    (400, XmppCondition::Defined(C::BadRequest)),
    (401, XmppCondition::Defined(C::NotAuthorized)),
    (402, XmppCondition::Defined(C::Forbidden)),
    (403, XmppCondition::Defined(C::Forbidden)),
    (404, XmppCondition::Defined(C::ItemNotFound)),
    (405, XmppCondition::Defined(C::NotAllowed)),
    (406, XmppCondition::Defined(C::NotAcceptable)),
    (407, XmppCondition::Defined(C::NotAuthorized)),
    (408, XmppCondition::Defined(C::RemoteServerTimeout)),
    (410, XmppCondition::Defined(C::Gone)),
    (413, XmppCondition::Defined(C::PolicyViolation)),
    (414, XmppCondition::Defined(C::JidMalformed)),
    (415, XmppCondition::Defined(C::BadRequest)),
    (416, XmppCondition::Defined(C::JidMalformed)),
    (420, XmppCondition::Defined(C::FeatureNotImplemented)),
    (421, XmppCondition::Defined(C::FeatureNotImplemented)),
    (423, XmppCondition::Defined(C::BadRequest)),
    (480, XmppCondition::Defined(C::RecipientUnavailable)),
    (481, XmppCondition::Defined(C::ItemNotFound)),
    (482, XmppCondition::Defined(C::NotAcceptable)),
    (483, XmppCondition::Defined(C::NotAcceptable)),
    (484, XmppCondition::Defined(C::JidMalformed)),
    (485, XmppCondition::Defined(C::ItemNotFound)),
    (486, XmppCondition::Defined(C::RecipientUnavailable)),
    (487, XmppCondition::Defined(C::ServiceUnavailable)),
    (488, XmppCondition::Defined(C::NotAcceptable)),
    (491, XmppCondition::Defined(C::UnexpectedRequest)),
    (493, XmppCondition::Defined(C::BadRequest)),
    (500, XmppCondition::Defined(C::InternalServerError)),
    (501, XmppCondition::Defined(C::FeatureNotImplemented)),
    (502, XmppCondition::Defined(C::RemoteServerNotFound)),
    (503, XmppCondition::Defined(C::ServiceUnavailable)),
    (504, XmppCondition::Defined(C::RemoteServerTimeout)),
    (505, XmppCondition::Defined(C::FeatureNotImplemented)),
    (513, XmppCondition::Defined(C::PolicyViolation)),
    (600, XmppCondition::Defined(C::RecipientUnavailable)),
    (603, XmppCondition::Defined(C::Forbidden)),
    (604, XmppCondition::Defined(C::ItemNotFound)),
    (606, XmppCondition::Defined(C::NotAcceptable)),
];

/// XMPP condition -> SIP response code.
pub const XMPP_TO_SIP: &[(XmppCondition, u16)] = &[
    (XmppCondition::Defined(C::BadRequest), 400),
    (XmppCondition::Defined(C::Conflict), 400),
    (XmppCondition::Defined(C::FeatureNotImplemented), 501),
    (XmppCondition::Defined(C::Forbidden), 403),
    (XmppCondition::Defined(C::Gone), 410),
    (XmppCondition::Defined(C::InternalServerError), 500),
    (XmppCondition::Defined(C::ItemNotFound), 404),
    (XmppCondition::Defined(C::JidMalformed), 400),
    (XmppCondition::Defined(C::NotAcceptable), 406),
    (XmppCondition::Defined(C::NotAllowed), 403),
    // 401 would need a challenge the gateway cannot make for the XMPP side.
    (XmppCondition::Defined(C::NotAuthorized), 403),
    (XmppCondition::Defined(C::PolicyViolation), 403),
    (XmppCondition::Defined(C::RecipientUnavailable), 480),
    (XmppCondition::Redirect, 302),
    (XmppCondition::RegistrationRequired, 403),
    (XmppCondition::Defined(C::RemoteServerNotFound), 404),
    (XmppCondition::Defined(C::RemoteServerTimeout), 408),
    (XmppCondition::Defined(C::ResourceConstraint), 503),
    (XmppCondition::Defined(C::ServiceUnavailable), 503),
    (XmppCondition::Defined(C::SubscriptionRequired), 403),
    (XmppCondition::Defined(C::UndefinedCondition), 500),
    (XmppCondition::Defined(C::UnexpectedRequest), 400),
];

/// The XMPP condition for a SIP final error response (300-699); `None` for 1xx, 2xx
/// and codes outside SIP's range.
pub fn xmpp_condition_for(status: u16) -> Option<XmppCondition> {
    if !(300..=699).contains(&status) {
        return None;
    }
    let lookup = |code: u16| {
        SIP_TO_XMPP
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, x)| *x)
    };
    lookup(status).or_else(|| lookup(status / 100 * 100))
}

/// The SIP response code for an XMPP error condition.
pub fn sip_status_for(condition: XmppCondition) -> u16 {
    XMPP_TO_SIP
        .iter()
        .find(|(x, _)| *x == condition)
        .map_or(500, |(_, code)| *code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_pairs() {
        for (code, condition) in [
            (403, C::Forbidden),
            (404, C::ItemNotFound),
            (408, C::RemoteServerTimeout),
            (480, C::RecipientUnavailable),
            (503, C::ServiceUnavailable),
            (500, C::InternalServerError),
        ] {
            let x = XmppCondition::Defined(condition);
            assert_eq!(xmpp_condition_for(code), Some(x), "{code}");
            assert_eq!(sip_status_for(x), code, "{condition:?}");
        }
        assert_eq!(
            xmpp_condition_for(486),
            Some(XmppCondition::Defined(C::RecipientUnavailable))
        );
        assert_eq!(
            xmpp_condition_for(415),
            Some(XmppCondition::Defined(C::BadRequest))
        );
        assert_eq!(xmpp_condition_for(302), Some(XmppCondition::Redirect));
        assert_eq!(XmppCondition::Redirect.name(), "redirect");
    }

    #[test]
    fn unknown_codes_read_as_their_class() {
        assert_eq!(xmpp_condition_for(499), xmpp_condition_for(400));
        assert_eq!(xmpp_condition_for(599), xmpp_condition_for(500));
        assert_eq!(xmpp_condition_for(699), xmpp_condition_for(600));
        assert_eq!(xmpp_condition_for(399), Some(XmppCondition::Redirect));
        for code in [0, 100, 180, 200, 202, 299, 700, 999] {
            assert_eq!(xmpp_condition_for(code), None, "{code}");
        }
    }

    #[test]
    fn every_condition_has_a_code_and_tables_have_no_duplicates() {
        for (i, (code, _)) in SIP_TO_XMPP.iter().enumerate() {
            assert!(SIP_TO_XMPP[..i].iter().all(|(c, _)| c != code), "{code}");
        }
        for (i, (cond, code)) in XMPP_TO_SIP.iter().enumerate() {
            assert!(XMPP_TO_SIP[..i].iter().all(|(c, _)| c != cond), "{cond:?}");
            // Every mapped code maps back to a condition of the same kind of failure.
            assert!(xmpp_condition_for(*code).is_some());
        }
        assert_eq!(XMPP_TO_SIP.len(), 22, "the 20 conditions Herald builds + 2");
    }
}
