//! Typed reads of a [`Message`]'s headers. Every list-valued header is read across all
//! its fields and all comma-separated elements, in order.

use super::super::error::SipError;
use super::super::message::Message;
use super::lists::token_list;
use super::name_addr::delta_seconds;
use super::scalar::{check_call_id, max_forwards};
use super::{CSeq, Contact, Event, HeaderName, MediaType, NameAddr, SubscriptionState, Via};

impl Message {
    fn single(&self, name: &HeaderName) -> Option<&str> {
        self.header(name)
    }

    fn missing(what: &'static str) -> SipError {
        SipError::bad(what)
    }

    /// Every Via, top first.
    pub fn vias(&self) -> Result<Vec<Via>, SipError> {
        let mut out = Vec::new();
        for v in self.header_values(&HeaderName::Via) {
            out.extend(Via::parse_list(v)?);
        }
        Ok(out)
    }

    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via, SipError> {
        let v = self
            .single(&HeaderName::Via)
            .ok_or_else(|| Self::missing("Missing Via"))?;
        let first = super::split_list(v)?[0];
        Via::parse(first)
    }

    /// The From address.
    pub fn from(&self) -> Result<NameAddr, SipError> {
        let v = self
            .single(&HeaderName::From)
            .ok_or_else(|| Self::missing("Missing From"))?;
        NameAddr::parse(v).map_err(|_| SipError::bad("Malformed From"))
    }

    /// The To address.
    pub fn to(&self) -> Result<NameAddr, SipError> {
        let v = self
            .single(&HeaderName::To)
            .ok_or_else(|| Self::missing("Missing To"))?;
        NameAddr::parse(v).map_err(|_| SipError::bad("Malformed To"))
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Result<&str, SipError> {
        let v = self
            .single(&HeaderName::CallId)
            .ok_or_else(|| Self::missing("Missing Call-ID"))?;
        check_call_id(v)
    }

    /// The CSeq.
    pub fn cseq(&self) -> Result<CSeq, SipError> {
        let v = self
            .single(&HeaderName::CSeq)
            .ok_or_else(|| Self::missing("Missing CSeq"))?;
        CSeq::parse(v)
    }

    /// Max-Forwards, if present.
    pub fn max_forwards(&self) -> Result<Option<u8>, SipError> {
        self.single(&HeaderName::MaxForwards)
            .map(max_forwards)
            .transpose()
    }

    /// The Contact values: `Star` if any field is `*`, else every address in order.
    pub fn contacts(&self) -> Result<Option<Contact>, SipError> {
        let mut all = Vec::new();
        let mut any = false;
        for v in self.header_values(&HeaderName::Contact) {
            any = true;
            match Contact::parse(v)? {
                Contact::Star => return Ok(Some(Contact::Star)),
                Contact::Addresses(list) => all.extend(list),
            }
        }
        Ok(any.then_some(Contact::Addresses(all)))
    }

    fn seconds(&self, name: &HeaderName, what: &'static str) -> Result<Option<u32>, SipError> {
        self.single(name)
            .map(|v| delta_seconds(v).ok_or_else(|| SipError::bad(what)))
            .transpose()
    }

    /// Expires, in seconds (saturating at 2^32 - 1).
    pub fn expires(&self) -> Result<Option<u32>, SipError> {
        self.seconds(&HeaderName::Expires, "Malformed Expires")
    }

    /// Min-Expires, in seconds.
    pub fn min_expires(&self) -> Result<Option<u32>, SipError> {
        self.seconds(&HeaderName::MinExpires, "Malformed Min-Expires")
    }

    /// Content-Type, if present.
    pub fn content_type(&self) -> Result<Option<MediaType>, SipError> {
        self.single(&HeaderName::ContentType)
            .map(MediaType::parse)
            .transpose()
    }

    /// Event, if present.
    pub fn event(&self) -> Result<Option<Event>, SipError> {
        self.single(&HeaderName::Event)
            .map(Event::parse)
            .transpose()
    }

    /// Subscription-State, if present.
    pub fn subscription_state(&self) -> Result<Option<SubscriptionState>, SipError> {
        self.single(&HeaderName::SubscriptionState)
            .map(SubscriptionState::parse)
            .transpose()
    }

    /// The tokens of every `name` field (Allow, Supported, Require, Proxy-Require,
    /// Allow-Events, Unsupported...), in order.
    pub fn tokens(&self, name: &HeaderName) -> Result<Vec<String>, SipError> {
        let mut out = Vec::new();
        for v in self.header_values(name) {
            out.extend(token_list(v)?);
        }
        Ok(out)
    }

    /// Allow.
    pub fn allow(&self) -> Result<Vec<String>, SipError> {
        self.tokens(&HeaderName::Allow)
    }

    /// Supported.
    pub fn supported(&self) -> Result<Vec<String>, SipError> {
        self.tokens(&HeaderName::Supported)
    }

    /// Require.
    pub fn require(&self) -> Result<Vec<String>, SipError> {
        self.tokens(&HeaderName::Require)
    }

    /// Proxy-Require.
    pub fn proxy_require(&self) -> Result<Vec<String>, SipError> {
        self.tokens(&HeaderName::ProxyRequire)
    }

    fn etag(&self, name: &HeaderName, what: &'static str) -> Result<Option<&str>, SipError> {
        match self.single(name) {
            None => Ok(None),
            Some(v) if super::super::grammar::is_token(v) => Ok(Some(v)),
            Some(_) => Err(SipError::bad(what)),
        }
    }

    /// SIP-ETag (RFC 3903).
    pub fn sip_etag(&self) -> Result<Option<&str>, SipError> {
        self.etag(&HeaderName::SipETag, "Malformed SIP-ETag")
    }

    /// SIP-If-Match (RFC 3903).
    pub fn sip_if_match(&self) -> Result<Option<&str>, SipError> {
        self.etag(&HeaderName::SipIfMatch, "Malformed SIP-If-Match")
    }

    /// Route addresses, in order.
    pub fn routes(&self) -> Result<Vec<NameAddr>, SipError> {
        self.route_set(&HeaderName::Route, "Malformed Route")
    }

    /// Record-Route addresses, in order.
    pub fn record_routes(&self) -> Result<Vec<NameAddr>, SipError> {
        self.route_set(&HeaderName::RecordRoute, "Malformed Record-Route")
    }

    fn route_set(&self, name: &HeaderName, what: &'static str) -> Result<Vec<NameAddr>, SipError> {
        let mut out = Vec::new();
        for v in self.header_values(name) {
            for a in NameAddr::parse_list(v).map_err(|_| SipError::bad(what))? {
                if !a.angle {
                    return Err(SipError::bad(what));
                }
                out.push(a);
            }
        }
        Ok(out)
    }

    /// The raw credentials or challenges of an authentication header (Authorization,
    /// WWW-Authenticate, Proxy-Authenticate, Proxy-Authorization), in order; the digest
    /// parameters are parsed elsewhere.
    pub fn auth_values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> {
        self.header_values(name)
    }
}
