//! Stanza helpers: the three kinds, addressing, and RFC 6120 §8.3 stanza errors.

use crate::jid::Jid;
use crate::ns;
use crate::xml::Element;

/// The three stanza kinds (RFC 6120 §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StanzaKind {
    Message,
    Presence,
    Iq,
}

impl StanzaKind {
    /// The kind of a top-level element in `jabber:client` or `jabber:server`, if it is a stanza.
    pub fn of(el: &Element) -> Option<Self> {
        if el.ns != ns::CLIENT && el.ns != ns::SERVER {
            return None;
        }
        match el.name.as_str() {
            "message" => Some(Self::Message),
            "presence" => Some(Self::Presence),
            "iq" => Some(Self::Iq),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Presence => "presence",
            Self::Iq => "iq",
        }
    }
}

/// The `type` of an error (RFC 6120 §8.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    Auth,
    Cancel,
    Continue,
    Modify,
    Wait,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Cancel => "cancel",
            Self::Continue => "continue",
            Self::Modify => "modify",
            Self::Wait => "wait",
        }
    }
}

/// A defined stanza error condition (RFC 6120 §8.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StanzaErrorCondition {
    BadRequest,
    Conflict,
    FeatureNotImplemented,
    Forbidden,
    Gone,
    InternalServerError,
    ItemNotFound,
    JidMalformed,
    NotAcceptable,
    NotAllowed,
    NotAuthorized,
    PolicyViolation,
    RecipientUnavailable,
    RemoteServerNotFound,
    RemoteServerTimeout,
    ResourceConstraint,
    ServiceUnavailable,
    SubscriptionRequired,
    UndefinedCondition,
    UnexpectedRequest,
}

impl StanzaErrorCondition {
    pub fn name(self) -> &'static str {
        match self {
            Self::BadRequest => "bad-request",
            Self::Conflict => "conflict",
            Self::FeatureNotImplemented => "feature-not-implemented",
            Self::Forbidden => "forbidden",
            Self::Gone => "gone",
            Self::InternalServerError => "internal-server-error",
            Self::ItemNotFound => "item-not-found",
            Self::JidMalformed => "jid-malformed",
            Self::NotAcceptable => "not-acceptable",
            Self::NotAllowed => "not-allowed",
            Self::NotAuthorized => "not-authorized",
            Self::PolicyViolation => "policy-violation",
            Self::RecipientUnavailable => "recipient-unavailable",
            Self::RemoteServerNotFound => "remote-server-not-found",
            Self::RemoteServerTimeout => "remote-server-timeout",
            Self::ResourceConstraint => "resource-constraint",
            Self::ServiceUnavailable => "service-unavailable",
            Self::SubscriptionRequired => "subscription-required",
            Self::UndefinedCondition => "undefined-condition",
            Self::UnexpectedRequest => "unexpected-request",
        }
    }

    /// The error type RFC 6120 §8.3.3 recommends for the condition.
    pub fn default_type(self) -> ErrorType {
        match self {
            Self::BadRequest
            | Self::JidMalformed
            | Self::NotAcceptable
            | Self::PolicyViolation
            | Self::UnexpectedRequest => ErrorType::Modify,
            Self::Forbidden | Self::NotAuthorized | Self::SubscriptionRequired => ErrorType::Auth,
            Self::RecipientUnavailable | Self::RemoteServerTimeout | Self::ResourceConstraint => {
                ErrorType::Wait
            }
            Self::Conflict
            | Self::FeatureNotImplemented
            | Self::Gone
            | Self::InternalServerError
            | Self::ItemNotFound
            | Self::NotAllowed
            | Self::RemoteServerNotFound
            | Self::ServiceUnavailable
            | Self::UndefinedCondition => ErrorType::Cancel,
        }
    }
}

/// A stanza error to attach to a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaError {
    pub condition: StanzaErrorCondition,
    pub error_type: ErrorType,
    pub text: Option<String>,
    /// An application-specific condition element (e.g. XEP-0191 `<blocked/>`).
    pub app: Option<Box<Element>>,
}

impl StanzaError {
    pub fn new(condition: StanzaErrorCondition) -> Self {
        Self {
            condition,
            error_type: condition.default_type(),
            text: None,
            app: None,
        }
    }

    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    pub fn with_type(mut self, error_type: ErrorType) -> Self {
        self.error_type = error_type;
        self
    }

    pub fn with_app(mut self, app: Element) -> Self {
        self.app = Some(Box::new(app));
        self
    }

    /// The `<error/>` child element.
    pub fn to_element(&self, stanza_ns: &str) -> Element {
        let mut el = Element::new("error", stanza_ns).with_attr("type", self.error_type.as_str());
        el.push_child(Element::new(self.condition.name(), ns::STANZA_ERRORS));
        if let Some(text) = &self.text {
            el.push_child(
                Element::new("text", ns::STANZA_ERRORS)
                    .with_attr("xml:lang", "en")
                    .with_text(text.clone()),
            );
        }
        if let Some(app) = &self.app {
            el.push_child((**app).clone());
        }
        el
    }
}

/// Read `to`/`from` of a stanza as JIDs. A missing attribute is `Ok(None)`; a malformed one
/// is `Err` (the caller answers `jid-malformed`).
pub fn addr(el: &Element, attr: &str) -> Result<Option<Jid>, crate::JidError> {
    el.attr(attr).map(Jid::parse).transpose()
}

/// Whether this stanza is itself an error (errors are never answered with errors).
pub fn is_error(el: &Element) -> bool {
    el.attr("type") == Some("error")
}

/// Build the error reply to `stanza` (RFC 6120 §8.3.1): same kind and id, `to` and `from`
/// swapped, `type='error'`, the original payload kept for messages and presence and dropped
/// for IQs. `from` is the address the error comes from (the server or the addressee).
pub fn error_reply(stanza: &Element, err: &StanzaError, from: Option<&str>) -> Element {
    let mut reply = Element::new(stanza.name.clone(), stanza.ns.clone());
    if let Some(id) = stanza.attr("id") {
        reply.set_attr("id", id);
    }
    reply.set_attr("type", "error");
    if let Some(sender) = stanza.attr("from") {
        reply.set_attr("to", sender);
    }
    match (from, stanza.attr("to")) {
        (Some(f), _) => reply.set_attr("from", f),
        (None, Some(to)) => reply.set_attr("from", to),
        (None, None) => {}
    }
    if stanza.name != "iq" {
        for child in stanza.elements() {
            reply.push_child(child.clone());
        }
    }
    reply.push_child(err.to_element(&stanza.ns));
    reply
}

/// An empty IQ result for `iq`, optionally carrying a payload.
pub fn iq_result(iq: &Element, from: Option<&str>, payload: Option<Element>) -> Element {
    let mut reply = Element::new("iq", iq.ns.clone()).with_attr("type", "result");
    if let Some(id) = iq.attr("id") {
        reply.set_attr("id", id);
    }
    if let Some(sender) = iq.attr("from") {
        reply.set_attr("to", sender);
    }
    if let Some(f) = from.or(iq.attr("to")) {
        reply.set_attr("from", f);
    }
    if let Some(p) = payload {
        reply.push_child(p);
    }
    reply
}

/// The single payload child of an IQ (RFC 6120 §8.2.3: get/set carry exactly one).
pub fn iq_payload(iq: &Element) -> Option<&Element> {
    let mut it = iq.elements();
    let first = it.next()?;
    if it.next().is_some() {
        return None;
    }
    Some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iq_error_swaps_addresses_and_drops_payload() {
        let iq = Element::new("iq", ns::CLIENT)
            .with_attr("type", "get")
            .with_attr("id", "q1")
            .with_attr("from", "a@x/r")
            .with_attr("to", "x")
            .with_child(Element::new("query", "urn:unknown"));
        let reply = error_reply(
            &iq,
            &StanzaError::new(StanzaErrorCondition::ServiceUnavailable),
            None,
        );
        assert_eq!(reply.attr("to"), Some("a@x/r"));
        assert_eq!(reply.attr("from"), Some("x"));
        assert_eq!(reply.attr("type"), Some("error"));
        assert_eq!(reply.attr("id"), Some("q1"));
        assert!(!reply.has_child("query", "urn:unknown"));
        let err = reply.child("error", ns::CLIENT).expect("error child");
        assert_eq!(err.attr("type"), Some("cancel"));
        assert!(err.has_child("service-unavailable", ns::STANZA_ERRORS));
    }

    #[test]
    fn message_error_keeps_body() {
        let msg = Element::new("message", ns::CLIENT)
            .with_attr("to", "b@y")
            .with_child(Element::new("body", ns::CLIENT).with_text("hi"));
        let reply = error_reply(
            &msg,
            &StanzaError::new(StanzaErrorCondition::RemoteServerNotFound),
            None,
        );
        assert!(reply.has_child("body", ns::CLIENT));
        assert_eq!(reply.attr("from"), Some("b@y"));
    }

    #[test]
    fn payload_requires_exactly_one_child() {
        let two = Element::new("iq", ns::CLIENT)
            .with_child(Element::new("a", "x"))
            .with_child(Element::new("b", "x"));
        assert!(iq_payload(&two).is_none());
        let one = Element::new("iq", ns::CLIENT).with_child(Element::new("a", "x"));
        assert_eq!(iq_payload(&one).map(|e| e.name.as_str()), Some("a"));
    }
}
