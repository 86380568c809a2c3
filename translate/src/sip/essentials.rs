//! What a response to a request needs (RFC 3261 §8.2.6), read from a parsed request or
//! scanned leniently from one that failed to parse, and the error response built from it.

use super::error::SipErrorKind;
use super::header::{HeaderName, NameAddr};
use super::message::{Header, Message};

/// The raw Via, From, To, Call-ID and CSeq values of a request, in order, and its method.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestEssentials {
    /// The request's method as written, if the request line had one.
    pub method: Option<String>,
    /// Every Via field value, top first.
    pub vias: Vec<String>,
    /// The From value.
    pub from: Option<String>,
    /// The To value.
    pub to: Option<String>,
    /// The Call-ID value.
    pub call_id: Option<String>,
    /// The CSeq value.
    pub cseq: Option<String>,
}

impl RequestEssentials {
    /// Takes the values from a parsed request.
    pub fn from_message(msg: &Message) -> Self {
        let first = |n: HeaderName| msg.header(&n).map(str::to_owned);
        Self {
            method: msg.request_line().map(|r| r.method.to_string()),
            vias: msg
                .header_values(&HeaderName::Via)
                .map(str::to_owned)
                .collect(),
            from: first(HeaderName::From),
            to: first(HeaderName::To),
            call_id: first(HeaderName::CallId),
            cseq: first(HeaderName::CSeq),
        }
    }

    /// Scans a head that did not parse, line by line and leniently (invalid UTF-8
    /// replaced, malformed lines skipped, folds joined).
    pub(crate) fn scan(head: &[u8]) -> Self {
        let mut out = Self::default();
        let mut lines = head
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        if let Some(first) = lines.next() {
            let first = String::from_utf8_lossy(first);
            out.method = first
                .split(' ')
                .next()
                .filter(|m| !m.is_empty())
                .map(str::to_owned);
        }
        let mut current: Option<(HeaderName, String)> = None;
        for line in lines {
            if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
                if let Some((_, v)) = current.as_mut() {
                    v.push(' ');
                    v.push_str(String::from_utf8_lossy(line).trim());
                }
                continue;
            }
            if let Some((n, v)) = current.take() {
                out.keep(n, v);
            }
            let line = String::from_utf8_lossy(line);
            if let Some((name, value)) = line.split_once(':') {
                let name = HeaderName::from_wire(name.trim());
                current = Some((name, value.trim().to_owned()));
            }
        }
        if let Some((n, v)) = current.take() {
            out.keep(n, v);
        }
        out
    }

    /// The value of the one Content-Length field of a head that did not parse, when
    /// there is exactly one and it is a number: the message's extent on a stream.
    pub(crate) fn scan_content_length(head: &[u8]) -> Option<usize> {
        let mut found = None;
        for line in head.split(|&b| b == b'\n').skip(1) {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let name = std::str::from_utf8(&line[..colon]).ok()?;
            if HeaderName::from_wire(name.trim_end_matches([' ', '\t']))
                != HeaderName::ContentLength
            {
                continue;
            }
            let value = std::str::from_utf8(&line[colon + 1..]).ok()?.trim();
            if found.is_some() || value.is_empty() || value.len() > 12 {
                return None;
            }
            found = Some(value.parse().ok()?);
        }
        found
    }

    fn keep(&mut self, name: HeaderName, value: String) {
        let value = value.replace(['\r', '\n'], " ");
        match name {
            HeaderName::Via => self.vias.push(value),
            HeaderName::From => {
                self.from.get_or_insert(value);
            }
            HeaderName::To => {
                self.to.get_or_insert(value);
            }
            HeaderName::CallId => {
                self.call_id.get_or_insert(value);
            }
            HeaderName::CSeq => {
                self.cseq.get_or_insert(value);
            }
            _ => {}
        }
    }

    /// Whether the request was an ACK, which is never answered.
    pub fn is_ack(&self) -> bool {
        self.method.as_deref() == Some("ACK")
    }
}

/// A response to a request (RFC 3261 §8.2.6): the Vias, From, To, Call-ID and CSeq
/// copied, a `tag` added to To when it has none (and the status is above 100), and no
/// body. The caller supplies the tag (randomness is an input).
pub fn response_for(req: &RequestEssentials, code: u16, reason: &str, to_tag: &str) -> Message {
    let mut msg = Message::response(code, reason.replace(['\r', '\n'], " "));
    for v in &req.vias {
        msg.headers.push(Header::new(HeaderName::Via, v.clone()));
    }
    if let Some(from) = &req.from {
        msg.push_header(HeaderName::From, from.clone());
    }
    if let Some(to) = &req.to {
        let needs_tag = code > 100
            && !to_tag.is_empty()
            && NameAddr::parse(to).is_ok_and(|a| a.tag().is_none());
        let to = if needs_tag {
            format!("{to};tag={to_tag}")
        } else {
            to.clone()
        };
        msg.push_header(HeaderName::To, to);
    }
    if let Some(id) = &req.call_id {
        msg.push_header(HeaderName::CallId, id.clone());
    }
    if let Some(cseq) = &req.cseq {
        msg.push_header(HeaderName::CSeq, cseq.clone());
    }
    msg
}

/// The error response for a refused request: status and reason from `kind`, plus the
/// `Unsupported` header of a 420 or the `Require` header of a 421.
pub fn error_response(req: &RequestEssentials, kind: &SipErrorKind, to_tag: &str) -> Message {
    let mut msg = response_for(req, kind.status(), &kind.reason_phrase(), to_tag);
    match kind {
        SipErrorKind::BadExtension(tags) => {
            msg.push_header(HeaderName::Unsupported, tags.join(", "))
        }
        SipErrorKind::ExtensionRequired(tags) => {
            msg.push_header(HeaderName::Require, tags.join(", "))
        }
        _ => {}
    }
    msg
}
