//! XML namespace names used by XMPP.

pub const STREAM: &str = "http://etherx.jabber.org/streams";
pub const CLIENT: &str = "jabber:client";
pub const SERVER: &str = "jabber:server";
/// Server dialback elements (XEP-0220), conventionally prefixed `db`.
pub const DIALBACK: &str = "jabber:server:dialback";
/// The stream feature announcing dialback with error handling (XEP-0220 §2.4.2).
pub const DIALBACK_FEATURE: &str = "urn:xmpp:features:dialback";
pub const STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
pub const STANZA_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
pub const ROSTER: &str = "jabber:iq:roster";
pub const ROSTER_VER: &str = "urn:xmpp:features:rosterver";
pub const PRE_APPROVAL: &str = "urn:xmpp:features:pre-approval";
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
pub const VERSION: &str = "jabber:iq:version";
pub const PING: &str = "urn:xmpp:ping";
pub const BLOCKING: &str = "urn:xmpp:blocking";
pub const BLOCKING_ERRORS: &str = "urn:xmpp:blocking:errors";
pub const CARBONS: &str = "urn:xmpp:carbons:2";
pub const FORWARD: &str = "urn:xmpp:forward:0";
pub const SM: &str = "urn:xmpp:sm:3";
pub const DELAY: &str = "urn:xmpp:delay";
pub const HINTS: &str = "urn:xmpp:hints";
pub const MSGOFFLINE: &str = "msgoffline";
pub const XML: &str = "http://www.w3.org/XML/1998/namespace";
/// The namespace of `xmlns` declarations; nothing may be bound to it.
pub const XMLNS: &str = "http://www.w3.org/2000/xmlns/";
