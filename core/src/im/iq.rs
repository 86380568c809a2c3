//! The server's own IQ services: XEP-0030 service discovery, XEP-0092 version,
//! XEP-0199 ping, and dispatch of a session's own requests (roster, block list,
//! carbons, legacy session establishment).

use std::sync::Arc;

use herald_translate::stanza::{error_reply, iq_payload, iq_result};
use herald_translate::{ns, Element, Jid, StanzaError, StanzaErrorCondition};

use crate::server::Server;

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
fn request_payload(iq: &Element) -> Option<Result<&Element, Element>> {
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

fn unavailable(iq: &Element) -> Element {
    error_reply(
        iq,
        &StanzaError::new(StanzaErrorCondition::ServiceUnavailable),
        None,
    )
}

impl Server {
    /// An IQ addressed to one of our domains. None for results and errors.
    pub(crate) async fn server_iq(&self, iq: &Element, _from: &Jid, _to: &Jid) -> Option<Element> {
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
    pub(crate) fn account_iq(&self, iq: &Element, _user: &Jid) -> Option<Element> {
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

    /// An IQ from a session to itself (no `to`, or its own bare JID).
    pub(crate) async fn own_iq(
        self: &Arc<Self>,
        iq: &Element,
        session: &Jid,
        conn_id: u64,
    ) -> Option<Element> {
        let payload = match request_payload(iq)? {
            Ok(p) => p,
            Err(reply) => return Some(reply),
        };
        let set = iq.attr("type") == Some("set");
        let reply = match (payload.name.as_str(), payload.ns.as_str()) {
            ("query", ns::ROSTER) => self.roster_iq(iq, payload, session, conn_id).await,
            ("blocklist" | "block" | "unblock", ns::BLOCKING) => {
                self.blocking_iq(iq, payload, session).await
            }
            ("enable" | "disable", ns::CARBONS) if set => {
                let on = payload.name == "enable";
                self.router.update(session, conn_id, |s| s.carbons = on);
                iq_result(iq, None, None)
            }
            ("session", ns::SESSION) if set => iq_result(iq, None, None),
            ("ping", ns::PING) => iq_result(iq, None, None),
            _ => self
                .account_iq(iq, session)
                .unwrap_or_else(|| unavailable(iq)),
        };
        Some(reply)
    }
}
