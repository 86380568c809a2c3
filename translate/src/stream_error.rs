//! RFC 6120 §4.9 stream errors: the conditions, and their wire form.

use crate::ns;
use crate::xml::{escape, XmlError};

/// A defined stream error condition (RFC 6120 §4.9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StreamErrorCondition {
    BadFormat,
    BadNamespacePrefix,
    Conflict,
    ConnectionTimeout,
    HostGone,
    HostUnknown,
    ImproperAddressing,
    InternalServerError,
    InvalidFrom,
    InvalidNamespace,
    InvalidXml,
    NotAuthorized,
    NotWellFormed,
    PolicyViolation,
    RemoteConnectionFailed,
    Reset,
    ResourceConstraint,
    RestrictedXml,
    SeeOtherHost,
    SystemShutdown,
    UndefinedCondition,
    UnsupportedEncoding,
    UnsupportedFeature,
    UnsupportedStanzaType,
    UnsupportedVersion,
}

impl StreamErrorCondition {
    /// The element name of the condition, e.g. `restricted-xml`.
    pub fn name(self) -> &'static str {
        match self {
            Self::BadFormat => "bad-format",
            Self::BadNamespacePrefix => "bad-namespace-prefix",
            Self::Conflict => "conflict",
            Self::ConnectionTimeout => "connection-timeout",
            Self::HostGone => "host-gone",
            Self::HostUnknown => "host-unknown",
            Self::ImproperAddressing => "improper-addressing",
            Self::InternalServerError => "internal-server-error",
            Self::InvalidFrom => "invalid-from",
            Self::InvalidNamespace => "invalid-namespace",
            Self::InvalidXml => "invalid-xml",
            Self::NotAuthorized => "not-authorized",
            Self::NotWellFormed => "not-well-formed",
            Self::PolicyViolation => "policy-violation",
            Self::RemoteConnectionFailed => "remote-connection-failed",
            Self::Reset => "reset",
            Self::ResourceConstraint => "resource-constraint",
            Self::RestrictedXml => "restricted-xml",
            Self::SeeOtherHost => "see-other-host",
            Self::SystemShutdown => "system-shutdown",
            Self::UndefinedCondition => "undefined-condition",
            Self::UnsupportedEncoding => "unsupported-encoding",
            Self::UnsupportedFeature => "unsupported-feature",
            Self::UnsupportedStanzaType => "unsupported-stanza-type",
            Self::UnsupportedVersion => "unsupported-version",
        }
    }
}

/// A stream error to send: a condition and an optional human-readable text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    pub condition: StreamErrorCondition,
    pub text: Option<String>,
}

impl StreamError {
    pub fn new(condition: StreamErrorCondition) -> Self {
        Self {
            condition,
            text: None,
        }
    }

    pub fn with_text(condition: StreamErrorCondition, text: impl Into<String>) -> Self {
        Self {
            condition,
            text: Some(text.into()),
        }
    }

    /// `<stream:error>…</stream:error>` followed by the stream close tag.
    pub fn to_xml(&self) -> String {
        // Written by hand rather than through `Element`: the condition names are fixed
        // NCNames, so this cannot fail, and the text is escaped.
        let mut out = String::from("<stream:error><");
        out.push_str(self.condition.name());
        out.push_str(" xmlns='");
        out.push_str(ns::STREAM_ERRORS);
        out.push_str("'/>");
        if let Some(text) = &self.text {
            out.push_str("<text xmlns='");
            out.push_str(ns::STREAM_ERRORS);
            out.push_str("' xml:lang='en'>");
            escape(&mut out, text, false);
            out.push_str("</text>");
        }
        out.push_str("</stream:error></stream:stream>");
        out
    }
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.condition.name())?;
        if let Some(text) = &self.text {
            write!(f, " ({text})")?;
        }
        Ok(())
    }
}

impl From<&XmlError> for StreamError {
    /// The stream error a reader failure maps to (RFC 6120 §4.9.3).
    fn from(err: &XmlError) -> Self {
        use StreamErrorCondition as C;
        let condition = match err {
            XmlError::NotWellFormed(_) => C::NotWellFormed,
            XmlError::RestrictedXml(_) => C::RestrictedXml,
            XmlError::LimitExceeded(_) => C::PolicyViolation,
            XmlError::InvalidNamespace(_) => C::InvalidNamespace,
            XmlError::UnsupportedEncoding => C::UnsupportedEncoding,
            XmlError::BadFormat(_) => C::BadFormat,
        };
        Self::with_text(condition, err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_names_the_condition_in_its_namespace() {
        let xml = StreamError::with_text(StreamErrorCondition::RestrictedXml, "comment").to_xml();
        assert!(xml.starts_with(
            "<stream:error><restricted-xml xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        ));
        assert!(xml.contains(">comment</text>"));
        assert!(xml.ends_with("</stream:error></stream:stream>"));
    }

    #[test]
    fn text_is_escaped() {
        let xml =
            StreamError::with_text(StreamErrorCondition::BadFormat, "</text><x a='1'>&").to_xml();
        assert_eq!(
            xml,
            "<stream:error><bad-format xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>\
             &lt;/text&gt;&lt;x a=&apos;1&apos;&gt;&amp;</text></stream:error></stream:stream>"
        );
    }

    #[test]
    fn reader_errors_map_to_rfc_conditions() {
        let cases = [
            (XmlError::RestrictedXml("comment"), "restricted-xml"),
            (XmlError::LimitExceeded("stanza size"), "policy-violation"),
            (XmlError::NotWellFormed("x".into()), "not-well-formed"),
            (XmlError::UnsupportedEncoding, "unsupported-encoding"),
            (XmlError::InvalidNamespace("p".into()), "invalid-namespace"),
            (XmlError::BadFormat("t".into()), "bad-format"),
        ];
        for (err, name) in cases {
            assert_eq!(StreamError::from(&err).condition.name(), name);
        }
    }
}
