//! SASL on an XMPP stream (RFC 6120 §6.4): the `<auth/>`, `<challenge/>`,
//! `<response/>`, `<success/>` and `<failure/>` elements and their base64 payloads.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use super::SaslError;
use crate::ns;
use crate::xml::Element;

/// The payload of a SASL element; empty for no text or `=` (RFC 6120 §6.4.2).
pub(crate) fn decode_sasl(el: &Element) -> Result<Vec<u8>, SaslError> {
    let text = el.text();
    let text = text.trim();
    if text.is_empty() || text == "=" {
        return Ok(Vec::new());
    }
    B64.decode(text).map_err(|_| SaslError::IncorrectEncoding)
}

/// A SASL element carrying `data`; an empty payload is `=`, except in an empty
/// challenge.
pub(crate) fn sasl_element(name: &str, data: &[u8]) -> Element {
    let el = Element::new(name, ns::SASL);
    if name == "challenge" && data.is_empty() {
        el
    } else if data.is_empty() {
        el.with_text("=")
    } else {
        el.with_text(B64.encode(data))
    }
}

/// `<failure><condition/></failure>`.
pub(crate) fn sasl_failure(condition: &str) -> Element {
    Element::new("failure", ns::SASL).with_child(Element::new(condition, ns::SASL))
}
