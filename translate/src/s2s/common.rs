//! Wire pieces both s2s machines use: stream headers, dialback elements, header checks.

use rand::RngCore;

use super::DialbackOutcome;
use crate::jid::Jid;
use crate::ns;
use crate::stanza::StanzaErrorCondition;
use crate::stream_error::{StreamError, StreamErrorCondition as Cond};
use crate::xml::{escape, Element, StreamHeader};

/// Our stream header: `jabber:server` content, the `db` prefix declared (XEP-0220 §2.4.1),
/// XMPP 1.0.
pub(crate) fn header(from: &str, to: Option<&str>, id: Option<&str>) -> String {
    let mut out = format!(
        "<?xml version='1.0'?><stream:stream xmlns='{}' xmlns:stream='{}' xmlns:db='{}'",
        ns::SERVER,
        ns::STREAM,
        ns::DIALBACK
    );
    for (name, value) in [("from", Some(from)), ("to", to), ("id", id)] {
        if let Some(value) = value {
            out.push(' ');
            out.push_str(name);
            out.push_str("='");
            escape(&mut out, value, true);
            out.push('\'');
        }
    }
    out.push_str(" version='1.0' xml:lang='en'>");
    out
}

/// What a dialback element carries besides its addresses.
pub(crate) enum DbBody<'a> {
    /// A request: the key as character data.
    Key(&'a str),
    /// An answer.
    Outcome(DialbackOutcome),
}

/// `<db:result/>` or `<db:verify/>`, written with the `db` prefix our headers declare:
/// some deployed servers recognize dialback only under that prefix.
pub(crate) fn db_element(
    name: &str,
    from: &str,
    to: &str,
    id: Option<&str>,
    body: DbBody<'_>,
) -> String {
    let mut out = format!("<db:{name} from='");
    escape(&mut out, from, true);
    out.push_str("' to='");
    escape(&mut out, to, true);
    out.push('\'');
    if let Some(id) = id {
        out.push_str(" id='");
        escape(&mut out, id, true);
        out.push('\'');
    }
    match body {
        DbBody::Key(key) => {
            out.push('>');
            escape(&mut out, key, false);
        }
        DbBody::Outcome(DialbackOutcome::Valid) => return out + " type='valid'/>",
        DbBody::Outcome(DialbackOutcome::Invalid) => return out + " type='invalid'/>",
        DbBody::Outcome(DialbackOutcome::Error(condition)) => {
            // The <error/> child is in jabber:server, the stream's default namespace.
            out.push_str(" type='error'><error type='");
            out.push_str(condition.default_type().as_str());
            out.push_str("'><");
            out.push_str(condition.name());
            out.push_str(" xmlns='");
            out.push_str(ns::STANZA_ERRORS);
            out.push_str("'/></error>");
        }
    }
    out.push_str("</db:");
    out.push_str(name);
    out.push('>');
    out
}

/// The outcome a dialback answer reports; `None` when it has no valid `type`.
pub(crate) fn parse_outcome(el: &Element) -> Option<DialbackOutcome> {
    match el.attr("type")? {
        "valid" => Some(DialbackOutcome::Valid),
        "invalid" => Some(DialbackOutcome::Invalid),
        "error" => {
            let condition = el
                .child("error", ns::SERVER)
                .and_then(|e| e.elements().find(|c| c.ns == ns::STANZA_ERRORS))
                .and_then(|c| condition_named(&c.name))
                .unwrap_or(StanzaErrorCondition::UndefinedCondition);
            Some(DialbackOutcome::Error(condition))
        }
        _ => None,
    }
}

fn condition_named(name: &str) -> Option<StanzaErrorCondition> {
    use StanzaErrorCondition as S;
    const ALL: [S; 20] = [
        S::BadRequest,
        S::Conflict,
        S::FeatureNotImplemented,
        S::Forbidden,
        S::Gone,
        S::InternalServerError,
        S::ItemNotFound,
        S::JidMalformed,
        S::NotAcceptable,
        S::NotAllowed,
        S::NotAuthorized,
        S::PolicyViolation,
        S::RecipientUnavailable,
        S::RemoteServerNotFound,
        S::RemoteServerTimeout,
        S::ResourceConstraint,
        S::ServiceUnavailable,
        S::SubscriptionRequired,
        S::UndefinedCondition,
        S::UnexpectedRequest,
    ];
    ALL.into_iter().find(|c| c.name() == name)
}

/// A normalized domain from an address attribute; `None` unless it is a bare domain.
pub(crate) fn domain(value: &str) -> Option<String> {
    Jid::parse(value)
        .ok()
        .filter(Jid::is_domain)
        .map(|j| j.domain().to_string())
}

/// The namespace and version checks every s2s header gets (RFC 6120 §4.7, §4.8).
pub(crate) fn check_header(header: &StreamHeader) -> Result<(), StreamError> {
    if header.name != "stream" || header.ns != ns::STREAM {
        return Err(StreamError::with_text(
            Cond::InvalidNamespace,
            "expected a stream",
        ));
    }
    if header.default_ns.as_deref() != Some(ns::SERVER) {
        return Err(StreamError::with_text(
            Cond::InvalidNamespace,
            "the content namespace must be jabber:server",
        ));
    }
    Ok(())
}

/// Whether the version attribute says XMPP 1.x.
pub(crate) fn version_ok(version: Option<&str>) -> bool {
    version
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(major, _)| major.trim() == "1")
}

/// A stream id: 16 random bytes, URL-safe base64 (the client machine's format).
pub(crate) fn stream_id(rng: &mut (impl RngCore + ?Sized)) -> String {
    crate::negotiation::id_from(rng)
}

/// `message`, `presence` or `iq` in `jabber:server`.
pub(crate) fn is_stanza(el: &Element) -> bool {
    el.ns == ns::SERVER && matches!(el.name.as_str(), "message" | "presence" | "iq")
}

/// The condition of a received `<stream:error/>`.
pub(crate) fn stream_error_condition(el: &Element) -> Option<Cond> {
    let name = el
        .elements()
        .find(|c| c.ns == ns::STREAM_ERRORS)?
        .name
        .clone();
    STREAM_CONDITIONS.into_iter().find(|c| c.name() == name)
}

const STREAM_CONDITIONS: [Cond; 25] = [
    Cond::BadFormat,
    Cond::BadNamespacePrefix,
    Cond::Conflict,
    Cond::ConnectionTimeout,
    Cond::HostGone,
    Cond::HostUnknown,
    Cond::ImproperAddressing,
    Cond::InternalServerError,
    Cond::InvalidFrom,
    Cond::InvalidNamespace,
    Cond::InvalidXml,
    Cond::NotAuthorized,
    Cond::NotWellFormed,
    Cond::PolicyViolation,
    Cond::RemoteConnectionFailed,
    Cond::Reset,
    Cond::ResourceConstraint,
    Cond::RestrictedXml,
    Cond::SeeOtherHost,
    Cond::SystemShutdown,
    Cond::UndefinedCondition,
    Cond::UnsupportedEncoding,
    Cond::UnsupportedFeature,
    Cond::UnsupportedStanzaType,
    Cond::UnsupportedVersion,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialback_elements_use_the_db_prefix_and_escape() {
        let key = db_element("result", "a.example", "b'x", None, DbBody::Key("k<1"));
        assert_eq!(
            key,
            "<db:result from='a.example' to='b&apos;x'>k&lt;1</db:result>"
        );
        let valid = db_element(
            "verify",
            "b",
            "a",
            Some("id1"),
            DbBody::Outcome(DialbackOutcome::Valid),
        );
        assert_eq!(valid, "<db:verify from='b' to='a' id='id1' type='valid'/>");
        let err = db_element(
            "result",
            "b",
            "a",
            None,
            DbBody::Outcome(DialbackOutcome::Error(StanzaErrorCondition::ItemNotFound)),
        );
        assert_eq!(
            err,
            "<db:result from='b' to='a' type='error'><error type='cancel'>\
             <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>"
        );
    }

    #[test]
    fn every_condition_name_is_known() {
        for c in STREAM_CONDITIONS {
            let el = Element::new("error", ns::STREAM)
                .with_child(Element::new(c.name(), ns::STREAM_ERRORS));
            assert_eq!(stream_error_condition(&el), Some(c));
        }
        assert_eq!(
            condition_named("remote-server-timeout"),
            Some(StanzaErrorCondition::RemoteServerTimeout)
        );
        assert_eq!(condition_named("nonsense"), None);
    }
}
