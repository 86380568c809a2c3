//! The server's own IQ answers: XEP-0030 service discovery, XEP-0092 version and
//! XEP-0199 ping, for the server's domains and on behalf of an account.

use herald_translate::stanza::{error_reply, iq_payload, iq_result};
use herald_translate::{ns, Element, StanzaError, StanzaErrorCondition};

/// Features the server domain announces.
const SERVER_FEATURES: &[&str] = &[
    ns::DISCO_INFO,
    ns::DISCO_ITEMS,
    ns::PING,
    ns::VERSION,
    ns::BLOCKING,
    ns::CARBONS,
    ns::MSGOFFLINE,
    ns::ROSTER,
];

fn disco_info(category: &str, kind: &str, name: Option<&str>, features: &[&str]) -> Element {
    let mut identity = Element::new("identity", ns::DISCO_INFO)
        .with_attr("category", category)
        .with_attr("type", kind);
    if let Some(n) = name {
        identity.set_attr("name", n);
    }
    let mut q = Element::new("query", ns::DISCO_INFO).with_child(identity);
    for f in features {
        q.push_child(Element::new("feature", ns::DISCO_INFO).with_attr("var", *f));
    }
    q
}

/// The payload of a get/set request: None for results and errors (never answered),
/// Err(bad-request reply) when it does not carry exactly one child.
pub(crate) fn request_payload(iq: &Element) -> Option<Result<&Element, Element>> {
    if !matches!(iq.attr("type"), Some("get" | "set")) {
        return None;
    }
    Some(iq_payload(iq).ok_or_else(|| {
        error_reply(
            iq,
            &StanzaError::new(StanzaErrorCondition::BadRequest),
            None,
        )
    }))
}

pub(crate) fn unavailable(iq: &Element) -> Element {
    error_reply(
        iq,
        &StanzaError::new(StanzaErrorCondition::ServiceUnavailable),
        None,
    )
}

/// An IQ addressed to one of our domains. None for results and errors.
pub(crate) fn server_iq(iq: &Element) -> Option<Element> {
    let payload = match request_payload(iq)? {
        Ok(p) => p,
        Err(reply) => return Some(reply),
    };
    let get = iq.attr("type") == Some("get");
    let reply = match (get, payload.name.as_str(), payload.ns.as_str()) {
        (_, "ping", ns::PING) => iq_result(iq, None, None),
        (true, "query", ns::DISCO_INFO) if payload.attr("node").is_none() => iq_result(
            iq,
            None,
            Some(disco_info("server", "im", Some("Herald"), SERVER_FEATURES)),
        ),
        (true, "query", ns::DISCO_ITEMS) => {
            iq_result(iq, None, Some(Element::new("query", ns::DISCO_ITEMS)))
        }
        (true, "query", ns::VERSION) => {
            let q = Element::new("query", ns::VERSION)
                .with_child(Element::new("name", ns::VERSION).with_text("Herald"))
                .with_child(
                    Element::new("version", ns::VERSION).with_text(env!("CARGO_PKG_VERSION")),
                );
            iq_result(iq, None, Some(q))
        }
        _ => unavailable(iq),
    };
    Some(reply)
}

/// A request to a user's bare JID answered by the server on the account's behalf.
pub(crate) fn account_iq(iq: &Element) -> Option<Element> {
    let payload = iq_payload(iq)?;
    if iq.attr("type") != Some("get") {
        return None;
    }
    match (payload.name.as_str(), payload.ns.as_str()) {
        ("query", ns::DISCO_INFO) => Some(iq_result(
            iq,
            None,
            Some(disco_info("account", "registered", None, &[ns::DISCO_INFO])),
        )),
        ("query", ns::DISCO_ITEMS) => Some(iq_result(
            iq,
            None,
            Some(Element::new("query", ns::DISCO_ITEMS)),
        )),
        ("ping", ns::PING) => Some(iq_result(iq, None, None)),
        _ => None,
    }
}
