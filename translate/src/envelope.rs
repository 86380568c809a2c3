//! A stanza with its addresses parsed once.
//!
//! An [`Envelope`] is made where a stanza enters Herald (a client session today, a
//! federation stream or a SIP translation tomorrow): `from` is the authenticated sender,
//! `to` the parsed recipient, `kind` the stanza kind. Routing and delivery read these
//! fields and never parse the element's `from`/`to` attributes again. The element's
//! attributes are kept equal to the fields, so the element can be written out as is.

use crate::jid::Jid;
use crate::stanza::{error_reply, StanzaError, StanzaKind};
use crate::xml::Element;

/// A stanza whose `from`, `to` and kind are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    from: Jid,
    to: Jid,
    kind: StanzaKind,
    stanza: Element,
}

/// Why an element cannot be put into an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Not a `message`, `presence` or `iq` in a stanza namespace.
    #[error("not a stanza")]
    NotAStanza,
    /// The `from` or `to` attribute is missing.
    #[error("the stanza has no {0} address")]
    MissingAddress(&'static str),
    /// The `from` or `to` attribute is not a valid JID.
    #[error("the {0} address is not a valid JID")]
    BadAddress(&'static str),
}

impl Envelope {
    /// Wrap `stanza`, stamping its `from` and `to` attributes with the given addresses.
    pub fn new(from: Jid, to: Jid, mut stanza: Element) -> Result<Self, EnvelopeError> {
        let kind = StanzaKind::of(&stanza).ok_or(EnvelopeError::NotAStanza)?;
        stanza.set_attr("from", from.to_string());
        stanza.set_attr("to", to.to_string());
        Ok(Self {
            from,
            to,
            kind,
            stanza,
        })
    }

    /// Wrap a stanza whose addresses are in its attributes (a stored stanza, or one
    /// from a peer whose `from` the caller has authenticated). Parses both once.
    pub fn parse(stanza: Element) -> Result<Self, EnvelopeError> {
        let kind = StanzaKind::of(&stanza).ok_or(EnvelopeError::NotAStanza)?;
        let addr = |name: &'static str| {
            let value = stanza
                .attr(name)
                .ok_or(EnvelopeError::MissingAddress(name))?;
            Jid::parse(value).map_err(|_| EnvelopeError::BadAddress(name))
        };
        let from = addr("from")?;
        let to = addr("to")?;
        Ok(Self {
            from,
            to,
            kind,
            stanza,
        })
    }

    pub fn from(&self) -> &Jid {
        &self.from
    }

    pub fn to(&self) -> &Jid {
        &self.to
    }

    pub fn kind(&self) -> StanzaKind {
        self.kind
    }

    /// The element, with `from` and `to` attributes equal to [`from`](Self::from) and
    /// [`to`](Self::to).
    pub fn stanza(&self) -> &Element {
        &self.stanza
    }

    pub fn into_stanza(self) -> Element {
        self.stanza
    }

    /// The addresses and the element, taken apart (the element keeps its attributes).
    pub fn into_parts(self) -> (Jid, Jid, Element) {
        (self.from, self.to, self.stanza)
    }

    /// The `type` attribute, if any.
    pub fn stanza_type(&self) -> Option<&str> {
        self.stanza.attr("type")
    }

    pub fn is_error(&self) -> bool {
        self.stanza_type() == Some("error")
    }

    /// The same stanza for another recipient (presence broadcast, a bare-JID message
    /// handed to one resource).
    pub fn with_to(mut self, to: Jid) -> Self {
        self.stanza.set_attr("to", to.to_string());
        self.to = to;
        self
    }

    /// The same stanza from another sender (a subscription stanza stamped with the
    /// user's bare JID).
    pub fn with_from(mut self, from: Jid) -> Self {
        self.stanza.set_attr("from", from.to_string());
        self.from = from;
        self
    }

    /// Change the element without touching its addresses (`f` must not change `from`,
    /// `to` or the element's name; both are restored if it does).
    pub fn map_stanza(mut self, f: impl FnOnce(&mut Element)) -> Self {
        let name = self.stanza.name.clone();
        f(&mut self.stanza);
        self.stanza.name = name;
        self.stanza.set_attr("from", self.from.to_string());
        self.stanza.set_attr("to", self.to.to_string());
        self
    }

    /// The error reply to this stanza, addressed back to its sender; `None` for an error
    /// (errors are never answered with errors, RFC 6120 §8.3.1).
    pub fn error_reply(&self, err: &StanzaError) -> Option<Self> {
        if self.is_error() {
            return None;
        }
        let reply = error_reply(&self.stanza, err, None);
        Some(Self {
            from: self.to.clone(),
            to: self.from.clone(),
            kind: self.kind,
            stanza: reply,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns;
    use crate::stanza::StanzaErrorCondition;

    fn j(s: &str) -> Jid {
        Jid::parse(s).expect("jid")
    }

    #[test]
    fn new_stamps_the_addresses() {
        let el = Element::new("message", ns::CLIENT)
            .with_attr("from", "mallory@evil.example")
            .with_attr("type", "chat");
        let env = Envelope::new(j("alice@x/phone"), j("bob@x"), el).expect("stanza");
        assert_eq!(env.stanza().attr("from"), Some("alice@x/phone"));
        assert_eq!(env.stanza().attr("to"), Some("bob@x"));
        assert_eq!(env.kind(), StanzaKind::Message);
        assert_eq!(env.stanza_type(), Some("chat"));
        let env = env.with_to(j("bob@x/desk"));
        assert_eq!(env.to(), &j("bob@x/desk"));
        assert_eq!(env.stanza().attr("to"), Some("bob@x/desk"));
    }

    #[test]
    fn parse_needs_both_addresses() {
        let el = Element::new("iq", ns::CLIENT).with_attr("from", "a@x");
        assert_eq!(
            Envelope::parse(el.clone()),
            Err(EnvelopeError::MissingAddress("to"))
        );
        let el = el.with_attr("to", "@@");
        assert_eq!(Envelope::parse(el), Err(EnvelopeError::BadAddress("to")));
        let not = Element::new("features", ns::STREAM);
        assert_eq!(
            Envelope::new(j("a@x"), j("b@x"), not),
            Err(EnvelopeError::NotAStanza)
        );
    }

    #[test]
    fn error_replies_go_back_and_are_never_answered() {
        let el = Element::new("message", ns::CLIENT).with_attr("id", "1");
        let env = Envelope::new(j("a@x/r"), j("b@y"), el).expect("stanza");
        let err = StanzaError::new(StanzaErrorCondition::ServiceUnavailable);
        let reply = env.error_reply(&err).expect("a reply");
        assert_eq!(reply.from(), &j("b@y"));
        assert_eq!(reply.to(), &j("a@x/r"));
        assert_eq!(reply.stanza().attr("from"), Some("b@y"));
        assert_eq!(reply.stanza().attr("id"), Some("1"));
        assert!(reply.is_error());
        assert!(reply.error_reply(&err).is_none());
    }

    #[test]
    fn map_stanza_keeps_the_addresses() {
        let el = Element::new("message", ns::CLIENT);
        let env = Envelope::new(j("a@x"), j("b@x"), el).expect("stanza");
        let env = env.map_stanza(|s| {
            s.set_attr("to", "c@x");
            s.name = "iq".into();
            s.push_child(Element::new("body", ns::CLIENT));
        });
        assert_eq!(env.stanza().attr("to"), Some("b@x"));
        assert_eq!(env.stanza().name, "message");
        assert!(env.stanza().has_child("body", ns::CLIENT));
    }
}
