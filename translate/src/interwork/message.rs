//! SIP MESSAGE <-> XMPP `<message type='chat'/>` (RFC 7572).
//!
//! | XMPP                        | SIP MESSAGE                                           |
//! |-----------------------------|-------------------------------------------------------|
//! | `from`                      | `From` (URI by [`jid_to_sip_uri`])                    |
//! | `to`                        | `To` and Request-URI                                  |
//! | `<body/>`                   | body: `text/plain; charset=UTF-8`, or the text part of a `message/cpim` body |
//! | `<subject/>`                | `Subject` header (and CPIM `Subject` in a CPIM body)  |
//! | `<thread/>`                 | `Call-ID`                                             |
//! | `xml:lang`                  | `Content-Language`                                    |
//! | `type`                      | no mapping; from SIP: no `type` (see below)           |
//! | `id`                        | no mapping                                            |
//!
//! These are RFC 7572's Tables 1 and 2. RFC 7572 says a pager-mode MESSAGE becomes a
//! message with no `type` (or `normal`), so [`XmppChat::from_sip`] gives
//! [`MessageType::Normal`]; a gateway that keeps a SIP conversation as an XMPP chat
//! (replies in a thread it knows) sets [`MessageType::Chat`] before writing the stanza.
//! The sender's GRUU becomes its resource (RFC 7572 note 1, via
//! [`uri_to_jid`]).
//! Accepted SIP bodies: `text/plain` in UTF-8 (or US-ASCII, or no charset), and
//! `message/cpim` wrapping such a part. Any other type (HTML, `is-composing`, ...) is
//! [`InterworkError::UnsupportedContentType`]; the gateway answers 415.

use super::address::{jid_to_sip_uri, requires_secure_hops, uri_to_jid};
use super::cpim::{Cpim, CpimAddress};
use super::InterworkError;
use crate::jid::Jid;
use crate::ns;
use crate::pidf::Note;
use crate::xml::Element;

/// Body bytes a message may carry across (RFC 3428 §8 keeps MESSAGE small; this
/// bounds what the gateway holds).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The parts of a SIP MESSAGE request this mapping reads and writes. The SIP codec
/// fills it from a parsed request, and builds a request from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImMessage {
    /// `From` URI (without display name or tag).
    pub from: String,
    /// `To` URI; also the Request-URI when sending.
    pub to: String,
    /// `Call-ID`; the XMPP `<thread/>`. `None` when writing: the SIP layer makes a
    /// fresh one, as every request needs one.
    pub call_id: Option<String>,
    /// `Subject` header.
    pub subject: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Content-Type`, with parameters.
    pub content_type: String,
    pub body: Vec<u8>,
}

/// The `type` of a one-to-one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// No `type` attribute (RFC 6121: `normal`).
    Normal,
    /// `type='chat'`.
    Chat,
}

/// A one-to-one XMPP message as the gateway sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmppChat {
    pub from: Jid,
    pub to: Jid,
    pub message_type: MessageType,
    pub id: Option<String>,
    pub body: String,
    pub subject: Option<String>,
    pub thread: Option<String>,
    /// The stanza's `xml:lang`.
    pub lang: Option<String>,
}

impl XmppChat {
    /// Reads a `<message/>` of type `chat` or `normal` (or none) that has a body.
    /// Other messages (groupchat, headline, error, or bodiless notifications) are not
    /// carried to SIP: `None`.
    pub fn from_stanza(from: Jid, to: Jid, el: &Element) -> Option<Self> {
        if el.name != "message" || (el.ns != ns::CLIENT && el.ns != ns::SERVER) {
            return None;
        }
        let message_type = match el.attr("type") {
            None | Some("normal") => MessageType::Normal,
            Some("chat") => MessageType::Chat,
            Some(_) => return None,
        };
        let stanza_ns = el.ns.as_str();
        let lang = el.attr("xml:lang").map(str::to_owned);
        let pick = |name: &str| -> Option<String> {
            let notes: Vec<Note> = el
                .elements()
                .filter(|c| c.is(name, stanza_ns))
                .map(|c| Note {
                    text: c.text(),
                    lang: c.attr("xml:lang").map(str::to_owned),
                })
                .collect();
            Note::pick(&notes, lang.as_deref()).map(|n| n.text.clone())
        };
        let body = pick("body")?;
        Some(Self {
            from,
            to,
            message_type,
            id: el.attr("id").map(str::to_owned),
            body,
            subject: pick("subject"),
            thread: el
                .child("thread", stanza_ns)
                .map(|t| t.text().trim().to_owned()),
            lang,
        })
    }

    /// The `<message/>` stanza in `stanza_ns`.
    pub fn to_element(&self, stanza_ns: &str) -> Element {
        let mut el = Element::new("message", stanza_ns)
            .with_attr("from", self.from.to_string())
            .with_attr("to", self.to.to_string());
        if self.message_type == MessageType::Chat {
            el.set_attr("type", "chat");
        }
        if let Some(id) = &self.id {
            el.set_attr("id", id.clone());
        }
        if let Some(lang) = &self.lang {
            el.set_attr("xml:lang", lang.clone());
        }
        if let Some(subject) = &self.subject {
            el.push_child(Element::new("subject", stanza_ns).with_text(subject.clone()));
        }
        el.push_child(Element::new("body", stanza_ns).with_text(self.body.clone()));
        if let Some(thread) = &self.thread {
            el.push_child(Element::new("thread", stanza_ns).with_text(thread.clone()));
        }
        el
    }

    /// The SIP MESSAGE for this chat message: a `text/plain` body, or with `cpim` a
    /// `message/cpim` body whose `From`/`To`/`Subject` repeat the SIP headers
    /// (`date_time`, RFC 3339, is the caller's clock).
    pub fn to_sip(&self, cpim: bool, date_time: Option<&str>) -> Result<ImMessage, InterworkError> {
        if self.body.len() > MAX_BODY_BYTES {
            return Err(InterworkError::TooLong("message body"));
        }
        let from = jid_to_sip_uri(&self.from)?;
        let to = jid_to_sip_uri(&self.to)?;
        let plain_type = "text/plain; charset=UTF-8";
        let (content_type, body) = if cpim {
            let mut m = Cpim::new(plain_type, self.body.as_bytes());
            m.from = Some(CpimAddress::new(from.clone()));
            m.to.push(CpimAddress::new(to.clone()));
            m.date_time = date_time.map(str::to_owned);
            if let Some(subject) = &self.subject {
                m.subjects.push(Note {
                    text: subject.clone(),
                    lang: self.lang.clone(),
                });
            }
            ("message/cpim".to_owned(), m.to_bytes())
        } else {
            (plain_type.to_owned(), self.body.as_bytes().to_vec())
        };
        Ok(ImMessage {
            from,
            to,
            call_id: self.thread.clone(),
            subject: self.subject.clone(),
            content_language: self.lang.clone(),
            content_type,
            body,
        })
    }

    /// The XMPP message for a SIP MESSAGE. Addresses come from the SIP `From` and `To`
    /// (a CPIM body's own addresses are not trusted for routing). A `sips:` target is
    /// refused ([`InterworkError::SecureHopsRequired`]).
    pub fn from_sip(msg: &ImMessage) -> Result<Self, InterworkError> {
        if msg.body.len() > MAX_BODY_BYTES {
            return Err(InterworkError::TooLong("message body"));
        }
        if requires_secure_hops(&msg.to) {
            return Err(InterworkError::SecureHopsRequired);
        }
        let (media, params) = media_type(&msg.content_type);
        let (body, cpim_subject) = match media.as_str() {
            "text/plain" => (utf8_text(&msg.body, params)?, None),
            "message/cpim" => {
                let inner = Cpim::parse(&msg.body)?;
                let (inner_media, inner_params) = media_type(&inner.content_type);
                if inner_media != "text/plain" {
                    return Err(InterworkError::UnsupportedContentType(inner.content_type));
                }
                let subject = inner
                    .subject(msg.content_language.as_deref())
                    .map(str::to_owned);
                (utf8_text(&inner.content, inner_params)?, subject)
            }
            _ => {
                return Err(InterworkError::UnsupportedContentType(
                    msg.content_type.clone(),
                ))
            }
        };
        Ok(Self {
            from: uri_to_jid(&msg.from)?,
            to: uri_to_jid(&msg.to)?,
            message_type: MessageType::Normal,
            id: None,
            body,
            subject: msg.subject.clone().or(cpim_subject),
            thread: msg.call_id.clone(),
            lang: msg.content_language.clone(),
        })
    }
}

/// `type/subtype` in lowercase and the parameter string.
fn media_type(content_type: &str) -> (String, &str) {
    let (media, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    (media.trim().to_ascii_lowercase(), params)
}

/// The text of a `text/plain` body whose `charset` is UTF-8, US-ASCII or absent.
fn utf8_text(bytes: &[u8], params: &str) -> Result<String, InterworkError> {
    let charset = params.split(';').find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_ascii_lowercase())
    });
    match charset.as_deref() {
        None | Some("utf-8" | "utf8" | "us-ascii") => {}
        Some(_) => return Err(InterworkError::NotUtf8),
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| InterworkError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn jid(s: &str) -> Jid {
        Jid::parse(s).unwrap()
    }

    fn chat() -> XmppChat {
        XmppChat {
            from: jid("juliet@example.com/balcony"),
            to: jid("romeo@example.net"),
            message_type: MessageType::Chat,
            id: Some("m1".into()),
            body: "Art thou not Romeo, & a Montague?".into(),
            subject: Some("question".into()),
            thread: Some("e0ffe42b28561960c6b12b944a092794b9683a38".into()),
            lang: Some("en".into()),
        }
    }

    #[test]
    fn xmpp_to_sip_plain() {
        let sip = chat().to_sip(false, None).unwrap();
        assert_eq!(sip.from, "sip:juliet@example.com;gr=balcony");
        assert_eq!(sip.to, "sip:romeo@example.net");
        assert_eq!(sip.content_type, "text/plain; charset=UTF-8");
        assert_eq!(sip.body, b"Art thou not Romeo, & a Montague?");
        assert_eq!(
            sip.call_id.as_deref(),
            Some("e0ffe42b28561960c6b12b944a092794b9683a38")
        );
        assert_eq!(sip.subject.as_deref(), Some("question"));
        assert_eq!(sip.content_language.as_deref(), Some("en"));
        let back = XmppChat::from_sip(&sip).unwrap();
        assert_eq!(
            back,
            XmppChat {
                id: None,
                message_type: MessageType::Normal,
                ..chat()
            }
        );
        assert_eq!(
            back.to_element(ns::CLIENT).attr("type"),
            None,
            "RFC 7572: no type"
        );
    }

    #[test]
    fn xmpp_to_sip_cpim() {
        let sip = chat().to_sip(true, Some("2026-11-30T04:00:00Z")).unwrap();
        assert_eq!(sip.content_type, "message/cpim");
        let inner = Cpim::parse(&sip.body).unwrap();
        assert_eq!(inner.from.unwrap().uri, "sip:juliet@example.com;gr=balcony");
        assert_eq!(inner.date_time.as_deref(), Some("2026-11-30T04:00:00Z"));
        let mut no_header = sip.clone();
        no_header.subject = None;
        let back = XmppChat::from_sip(&no_header).unwrap();
        assert_eq!(
            back.subject.as_deref(),
            Some("question"),
            "from the CPIM Subject"
        );
        assert_eq!(back.body, chat().body);
    }

    #[test]
    fn stanza_round_trip() {
        let c = chat();
        let el = c.to_element(ns::CLIENT);
        assert_eq!(el.attr("type"), Some("chat"));
        let normal = XmppChat {
            message_type: MessageType::Normal,
            ..c.clone()
        };
        let normal_el = normal.to_element(ns::CLIENT);
        assert_eq!(
            XmppChat::from_stanza(c.from.clone(), c.to.clone(), &normal_el),
            Some(normal)
        );
        assert_eq!(
            XmppChat::from_stanza(c.from.clone(), c.to.clone(), &el),
            Some(c)
        );
    }

    #[test]
    fn stanzas_that_do_not_cross() {
        let (a, b) = (jid("a@x"), jid("b@y"));
        let body = Element::new("body", ns::CLIENT).with_text("hi");
        for t in ["groupchat", "headline", "error"] {
            let el = Element::new("message", ns::CLIENT)
                .with_attr("type", t)
                .with_child(body.clone());
            assert_eq!(
                XmppChat::from_stanza(a.clone(), b.clone(), &el),
                None,
                "{t}"
            );
        }
        let no_body = Element::new("message", ns::CLIENT).with_attr("type", "chat");
        assert_eq!(XmppChat::from_stanza(a.clone(), b.clone(), &no_body), None);
        let normal = Element::new("message", ns::CLIENT).with_child(body);
        assert!(XmppChat::from_stanza(a, b, &normal).is_some());
    }

    #[test]
    fn body_in_the_stanza_language_is_chosen() {
        let el = Element::new("message", ns::CLIENT)
            .with_attr("xml:lang", "de")
            .with_child(
                Element::new("body", ns::CLIENT)
                    .with_attr("xml:lang", "en")
                    .with_text("hello"),
            )
            .with_child(
                Element::new("body", ns::CLIENT)
                    .with_attr("xml:lang", "de")
                    .with_text("hallo"),
            );
        let c = XmppChat::from_stanza(jid("a@x"), jid("b@y"), &el).unwrap();
        assert_eq!(c.body, "hallo");
    }

    #[test]
    fn sip_bodies_refused() {
        let base = chat().to_sip(false, None).unwrap();
        for (content_type, body, expected) in [
            ("text/html", &b"<b>x</b>"[..], "unsupported content type"),
            (
                "application/im-iscomposing+xml",
                b"<x/>",
                "unsupported content type",
            ),
            ("text/plain; charset=ISO-8859-1", b"caf\xe9", "not UTF-8"),
            ("text/plain", b"caf\xe9", "not UTF-8"),
            ("message/cpim", b"garbage", "cpim"),
        ] {
            let msg = ImMessage {
                content_type: content_type.into(),
                body: body.to_vec(),
                ..base.clone()
            };
            let err = XmppChat::from_sip(&msg).unwrap_err();
            assert!(err.to_string().contains(expected), "{content_type}: {err}");
        }
        let ok = ImMessage {
            content_type: "TEXT/PLAIN;CHARSET=\"utf-8\"".into(),
            ..base.clone()
        };
        assert!(XmppChat::from_sip(&ok).is_ok());
        let sips = ImMessage {
            to: "sips:romeo@example.net".into(),
            ..base.clone()
        };
        assert_eq!(
            XmppChat::from_sip(&sips),
            Err(InterworkError::SecureHopsRequired)
        );
        let tel = ImMessage {
            from: "tel:+15551234".into(),
            ..base
        };
        assert!(matches!(
            XmppChat::from_sip(&tel),
            Err(InterworkError::UnsupportedScheme(_))
        ));
    }

    proptest! {
        #[test]
        fn bodies_cross_both_ways(body in "\\PC{0,80}", cpim in any::<bool>()) {
            let c = XmppChat {
                body,
                subject: None,
                id: None,
                message_type: MessageType::Normal,
                ..chat()
            };
            let back = XmppChat::from_sip(&c.to_sip(cpim, None).unwrap()).unwrap();
            prop_assert_eq!(back, c);
        }
    }
}
