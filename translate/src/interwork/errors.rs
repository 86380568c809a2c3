//! SIP response codes <-> XMPP stanza error conditions (RFC 7247 §6: Table 2 and Table
//! 3 with their notes), which RFC 7572 (messages) builds on.
//!
//! RFC 7247 offers its tables as suggestions, not rules; Herald follows them, choosing
//! where a row offers two codes:
//!
//! - 4xx or 6xx (`forbidden`, `item-not-found`, `not-acceptable`,
//!   `recipient-unavailable`): 4xx when the error is about a full JID, 6xx when about a
//!   bare JID (note 2); `feature-not-implemented` likewise 405 or 501 (note 1).
//! - `gone`: 301 when the error names a new address, else 410 (note 3).
//! - `remote-server-not-found`: 404 (the server does not exist); 408 is for a name
//!   that cannot be resolved, which the stanza does not say (note 4).
//! - `service-unavailable`: never 503, which SIP reads as "this whole server is down"
//!   (note 5); 403, one of the two codes the note names as closest.
//! - `unexpected-request`: 400 (491 is about overlapping INVITE transactions).
//!
//! A SIP code not in Table 3 maps by its class: 3xx `redirect`, 4xx `bad-request`, 5xx
//! `internal-server-error`, 6xx `recipient-unavailable`.

use crate::stanza::StanzaErrorCondition as C;

/// An XMPP error condition as a gateway produces or reads it: the conditions Herald's
/// stanza layer builds, plus the two of RFC 6120 §8.3.3 that it does not
/// (`redirect`, `registration-required`).
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

impl From<C> for XmppCondition {
    fn from(c: C) -> Self {
        Self::Defined(c)
    }
}

/// What RFC 7247's XMPP-to-SIP notes ask about an error besides its condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErrorContext {
    /// The failed stanza was addressed to a full JID (one device) rather than a bare
    /// JID (the user).
    pub full_jid: bool,
    /// A `gone` error carries the new address.
    pub gone_has_new_address: bool,
}

/// RFC 7247 Table 3: SIP response code -> XMPP condition.
pub const SIP_TO_XMPP: &[(u16, XmppCondition)] = &[
    (300, XmppCondition::Redirect),
    (301, XmppCondition::Defined(C::Gone)),
    (302, XmppCondition::Redirect),
    (305, XmppCondition::Redirect),
    (380, XmppCondition::Defined(C::NotAcceptable)),
    (400, XmppCondition::Defined(C::BadRequest)),
    (401, XmppCondition::Defined(C::NotAuthorized)),
    (402, XmppCondition::Defined(C::BadRequest)),
    (403, XmppCondition::Defined(C::Forbidden)),
    (404, XmppCondition::Defined(C::ItemNotFound)),
    (405, XmppCondition::Defined(C::FeatureNotImplemented)),
    (406, XmppCondition::Defined(C::NotAcceptable)),
    (407, XmppCondition::RegistrationRequired),
    (408, XmppCondition::Defined(C::RemoteServerTimeout)),
    (410, XmppCondition::Defined(C::Gone)),
    (413, XmppCondition::Defined(C::PolicyViolation)),
    (414, XmppCondition::Defined(C::PolicyViolation)),
    (415, XmppCondition::Defined(C::NotAcceptable)),
    (416, XmppCondition::Defined(C::NotAcceptable)),
    (420, XmppCondition::Defined(C::FeatureNotImplemented)),
    (421, XmppCondition::Defined(C::NotAcceptable)),
    (423, XmppCondition::Defined(C::ResourceConstraint)),
    (430, XmppCondition::Defined(C::RecipientUnavailable)),
    (439, XmppCondition::Defined(C::FeatureNotImplemented)),
    (440, XmppCondition::Defined(C::PolicyViolation)),
    (480, XmppCondition::Defined(C::RecipientUnavailable)),
    (481, XmppCondition::Defined(C::ItemNotFound)),
    (482, XmppCondition::Defined(C::NotAcceptable)),
    (483, XmppCondition::Defined(C::NotAcceptable)),
    (484, XmppCondition::Defined(C::ItemNotFound)),
    (485, XmppCondition::Defined(C::ItemNotFound)),
    (486, XmppCondition::Defined(C::RecipientUnavailable)),
    (487, XmppCondition::Defined(C::RecipientUnavailable)),
    (488, XmppCondition::Defined(C::NotAcceptable)),
    (489, XmppCondition::Defined(C::PolicyViolation)),
    (491, XmppCondition::Defined(C::UnexpectedRequest)),
    (493, XmppCondition::Defined(C::BadRequest)),
    (500, XmppCondition::Defined(C::InternalServerError)),
    (501, XmppCondition::Defined(C::FeatureNotImplemented)),
    (502, XmppCondition::Defined(C::RemoteServerNotFound)),
    (503, XmppCondition::Defined(C::InternalServerError)),
    (504, XmppCondition::Defined(C::RemoteServerTimeout)),
    (505, XmppCondition::Defined(C::NotAcceptable)),
    (513, XmppCondition::Defined(C::PolicyViolation)),
    (600, XmppCondition::Defined(C::RecipientUnavailable)),
    (603, XmppCondition::Defined(C::RecipientUnavailable)),
    (604, XmppCondition::Defined(C::ItemNotFound)),
    (606, XmppCondition::Defined(C::NotAcceptable)),
];

/// The XMPP condition for a SIP final error response (300-699); `None` for 1xx, 2xx
/// and codes outside SIP's range.
pub fn xmpp_condition_for(status: u16) -> Option<XmppCondition> {
    let by_class = match status {
        300..=399 => XmppCondition::Redirect,
        400..=499 => XmppCondition::Defined(C::BadRequest),
        500..=599 => XmppCondition::Defined(C::InternalServerError),
        600..=699 => XmppCondition::Defined(C::RecipientUnavailable),
        _ => return None,
    };
    Some(
        SIP_TO_XMPP
            .iter()
            .find(|(code, _)| *code == status)
            .map_or(by_class, |(_, condition)| *condition),
    )
}

/// RFC 7247 Table 2: the SIP response code for an XMPP error condition.
pub fn sip_status_for(condition: XmppCondition, context: ErrorContext) -> u16 {
    let per_user = |device: u16, user: u16| if context.full_jid { device } else { user };
    match condition {
        XmppCondition::Redirect => 302,
        XmppCondition::RegistrationRequired => 407,
        XmppCondition::Defined(c) => match c {
            C::BadRequest
            | C::Conflict
            | C::JidMalformed
            | C::SubscriptionRequired
            | C::UndefinedCondition
            | C::UnexpectedRequest => 400,
            C::FeatureNotImplemented => per_user(405, 501),
            C::Forbidden => per_user(403, 603),
            C::Gone if context.gone_has_new_address => 301,
            C::Gone => 410,
            C::InternalServerError | C::ResourceConstraint => 500,
            C::RemoteServerNotFound => 404,
            C::ItemNotFound => per_user(404, 604),
            C::NotAcceptable => per_user(406, 606),
            C::NotAllowed | C::PolicyViolation | C::ServiceUnavailable => 403,
            C::NotAuthorized => 401,
            C::RecipientUnavailable => per_user(480, 600),
            C::RemoteServerTimeout => 408,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEVICE: ErrorContext = ErrorContext {
        full_jid: true,
        gone_has_new_address: false,
    };
    const USER: ErrorContext = ErrorContext {
        full_jid: false,
        gone_has_new_address: false,
    };

    #[test]
    fn sip_codes_to_conditions() {
        for (code, condition) in [
            (403, C::Forbidden),
            (404, C::ItemNotFound),
            (408, C::RemoteServerTimeout),
            (415, C::NotAcceptable),
            (480, C::RecipientUnavailable),
            (486, C::RecipientUnavailable),
            (500, C::InternalServerError),
            (503, C::InternalServerError),
            (603, C::RecipientUnavailable),
        ] {
            assert_eq!(xmpp_condition_for(code), Some(condition.into()), "{code}");
        }
        assert_eq!(xmpp_condition_for(302), Some(XmppCondition::Redirect));
        assert_eq!(
            xmpp_condition_for(407),
            Some(XmppCondition::RegistrationRequired)
        );
        assert_eq!(XmppCondition::Redirect.name(), "redirect");
    }

    #[test]
    fn unknown_codes_map_by_class() {
        assert_eq!(xmpp_condition_for(399), Some(XmppCondition::Redirect));
        assert_eq!(xmpp_condition_for(499), Some(C::BadRequest.into()));
        assert_eq!(xmpp_condition_for(599), Some(C::InternalServerError.into()));
        assert_eq!(
            xmpp_condition_for(699),
            Some(C::RecipientUnavailable.into())
        );
        for code in [0, 100, 180, 200, 202, 299, 700, 999] {
            assert_eq!(xmpp_condition_for(code), None, "{code}");
        }
    }

    #[test]
    fn conditions_to_sip_codes() {
        for (condition, device, user) in [
            (C::BadRequest, 400, 400),
            (C::Forbidden, 403, 603),
            (C::ItemNotFound, 404, 604),
            (C::NotAcceptable, 406, 606),
            (C::RecipientUnavailable, 480, 600),
            (C::FeatureNotImplemented, 405, 501),
            (C::RemoteServerNotFound, 404, 404),
            (C::RemoteServerTimeout, 408, 408),
            (C::ServiceUnavailable, 403, 403),
            (C::NotAuthorized, 401, 401),
            (C::ResourceConstraint, 500, 500),
            (C::Gone, 410, 410),
            (C::UnexpectedRequest, 400, 400),
        ] {
            assert_eq!(
                sip_status_for(condition.into(), DEVICE),
                device,
                "{condition:?}"
            );
            assert_eq!(
                sip_status_for(condition.into(), USER),
                user,
                "{condition:?}"
            );
        }
        let moved = ErrorContext {
            gone_has_new_address: true,
            ..DEVICE
        };
        assert_eq!(sip_status_for(C::Gone.into(), moved), 301);
        assert_eq!(sip_status_for(XmppCondition::Redirect, USER), 302);
        assert_eq!(
            sip_status_for(XmppCondition::RegistrationRequired, USER),
            407
        );
    }

    #[test]
    fn service_unavailable_is_never_503() {
        for context in [DEVICE, USER] {
            assert_ne!(sip_status_for(C::ServiceUnavailable.into(), context), 503);
        }
    }

    #[test]
    fn table_has_no_duplicate_codes() {
        for (i, (code, _)) in SIP_TO_XMPP.iter().enumerate() {
            assert!(SIP_TO_XMPP[..i].iter().all(|(c, _)| c != code), "{code}");
        }
    }
}
