//! The message parser: start line, header fields (folds, compact names, white space
//! around the colon), Content-Length, and the syntax checks of the headers the core
//! reads. Framing (where a message ends) is in `framing.rs`.

use std::sync::LazyLock;

use memchr::memmem::Finder;
use memchr::{memchr, memchr2};

use super::error::{SipError, SipErrorKind};
use super::essentials::RequestEssentials;
use super::grammar::{find_byte, is_token_char, is_wsp, trim_end_wsp, trim_start_wsp, trim_wsp};
use super::header::{
    check_address, check_address_list, check_call_id, check_token_list, delta_seconds,
    max_forwards, CSeq, Contact, Event, HeaderName, MediaType, SubscriptionState, Via,
};
use super::limits::Limits;
use super::message::{Header, Message, RequestLine, StartLine, StatusLine};
use super::method::Method;
use super::uri::Uri;

/// A parsed head: the start line, the header fields, and the Content-Length if given.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) start: StartLine,
    pub(crate) headers: Vec<Header>,
    pub(crate) content_length: Option<usize>,
}

/// The offset of the `CRLF CRLF` that ends the head, searching from `from`.
pub(crate) fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    static FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\r\n\r\n"));
    FINDER.find(&buf[from..]).map(|at| from + at)
}

/// Parses one message from a datagram (UDP): the datagram is the message. Without
/// Content-Length the body is the rest of the datagram; a larger Content-Length is an
/// error, a smaller one truncates the body (RFC 3261 §18.3). CRLFs before the start
/// line are skipped (RFC 3261 §7.5).
pub fn parse_datagram(bytes: &[u8], limits: &Limits) -> Result<Message, SipError> {
    let mut at = 0;
    while bytes[at..].starts_with(b"\r\n") {
        at += 2;
    }
    let bytes = &bytes[at..];
    parse_datagram_inner(bytes, limits).map_err(|e| with_request(e, bytes, limits))
}

#[inline]
fn parse_datagram_inner(bytes: &[u8], limits: &Limits) -> Result<Message, SipError> {
    if bytes.len() > limits.max_message_size {
        return Err(SipErrorKind::TooLarge("message size").into());
    }
    let (head, rest) = match find_head_end(bytes, 0) {
        Some(end) => (&bytes[..end + 2], &bytes[end + 4..]),
        // Liberal: a datagram of header lines without the empty line has no body.
        None if bytes.ends_with(b"\r\n") => (bytes, &[][..]),
        None => return Err(SipError::bad("Incomplete message")),
    };
    let head = parse_head(head, limits)?;
    let body = match head.content_length {
        None => rest,
        Some(n) if n <= rest.len() => &rest[..n],
        Some(_) => return Err(SipError::bad("Content-Length larger than the body")),
    };
    finish(head, body.to_vec())
}

/// Adds what a response needs to a request's error.
pub(crate) fn with_request(mut e: SipError, head: &[u8], limits: &Limits) -> SipError {
    if e.request.is_none() && !head.starts_with(b"SIP/") {
        let head = &head[..head.len().min(limits.max_head_size)];
        e.request = Some(Box::new(RequestEssentials::scan(head)));
    }
    e
}

/// Parses the head: `head` holds the start line and the header lines, each ending with
/// CRLF, without the empty line.
pub(crate) fn parse_head(head: &[u8], limits: &Limits) -> Result<Head, SipError> {
    if head.len() > limits.max_head_size {
        return Err(SipErrorKind::TooLarge("head size").into());
    }
    let text = std::str::from_utf8(head).map_err(|_| SipError::bad("Invalid UTF-8"))?;
    let mut lines = Lines { text, pos: 0 };
    let first = lines
        .next()
        .ok_or_else(|| SipError::bad("Empty message"))??;
    let start = start_line(first, limits)?;
    let mut headers = Vec::with_capacity(16);
    let mut content_length = None;
    while let Some(line) = lines.next() {
        let line = line?;
        if line.as_bytes().first().copied().is_some_and(is_wsp) {
            return Err(SipError::bad("Continuation line without a header"));
        }
        let (name, first_value) = split_field(line)?;
        let mut value = first_value;
        let mut folded: Option<String> = None;
        let mut size = line.len();
        while lines.peek_is_fold() {
            let cont = lines.next().ok_or_else(|| SipError::bad("Bad fold"))??;
            size += cont.len() + 2;
            if size > limits.max_header_line {
                return Err(SipErrorKind::TooLarge("header line").into());
            }
            let f = folded.get_or_insert_with(|| value.to_owned());
            let cont = trim_start_wsp(cont);
            if !cont.is_empty() {
                if !f.is_empty() {
                    f.push(' ');
                }
                f.push_str(cont);
            }
        }
        if size > limits.max_header_line {
            return Err(SipErrorKind::TooLarge("header line").into());
        }
        let name = HeaderName::from_wire(name);
        if matches!(name, HeaderName::ContentLength) {
            if content_length.is_some() {
                return Err(SipError::bad("Multiple Content-Length"));
            }
            let text = folded.as_deref().unwrap_or(value);
            content_length = Some(parse_content_length(trim_end_wsp(text), limits)?);
            continue;
        }
        if headers.len() >= limits.max_headers {
            return Err(SipErrorKind::TooLarge("header count").into());
        }
        // The value is copied once, and only for a stored header.
        let value = match folded {
            Some(mut f) => {
                f.truncate(trim_end_wsp(&f).len());
                f
            }
            None => {
                value = trim_end_wsp(value);
                value.to_owned()
            }
        };
        headers.push(Header { name, value });
    }
    Ok(Head {
        start,
        headers,
        content_length,
    })
}

/// CRLF-terminated lines of the head; a bare CR or LF is an error.
struct Lines<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lines<'a> {
    #[inline]
    fn next(&mut self) -> Option<Result<&'a str, SipError>> {
        if self.pos >= self.text.len() {
            return None;
        }
        let rest = &self.text[self.pos..];
        // The common case in one scan: the first CR or LF is a CR followed by LF.
        let b = rest.as_bytes();
        if let Some(cr) = memchr2(b'\r', b'\n', b) {
            if b[cr] == b'\r' && b.get(cr + 1) == Some(&b'\n') {
                self.pos += cr + 2;
                return Some(Ok(&rest[..cr]));
            }
        }
        self.next_slow()
    }

    /// Anything but a line ending in CRLF: the error, said as before the fast path.
    #[cold]
    #[inline(never)]
    fn next_slow(&mut self) -> Option<Result<&'a str, SipError>> {
        let rest = &self.text[self.pos..];
        let Some(nl) = memchr(b'\n', rest.as_bytes()) else {
            self.pos = self.text.len();
            return Some(Err(SipError::bad("Line without CRLF")));
        };
        self.pos += nl + 1;
        let line = &rest[..nl];
        match line.strip_suffix('\r') {
            Some(l) if memchr(b'\r', l.as_bytes()).is_none() => Some(Ok(l)),
            _ => Some(Err(SipError::bad("Bare CR or LF"))),
        }
    }

    fn peek_is_fold(&self) -> bool {
        self.text
            .as_bytes()
            .get(self.pos)
            .copied()
            .is_some_and(is_wsp)
    }
}

/// `name *WSP ":" *WSP value`.
#[inline]
fn split_field(line: &str) -> Result<(&str, &str), SipError> {
    let b = line.as_bytes();
    let mut n = 0;
    while n < b.len() && is_token_char(b[n]) {
        n += 1;
    }
    if n == 0 {
        return Err(SipError::bad("Malformed header name"));
    }
    let mut c = n;
    while c < b.len() && is_wsp(b[c]) {
        c += 1;
    }
    if b.get(c) != Some(&b':') {
        return Err(SipError::bad("Malformed header line"));
    }
    let value = trim_start_wsp(&line[c + 1..]);
    Ok((&line[..n], value))
}

fn parse_content_length(value: &str, limits: &Limits) -> Result<usize, SipError> {
    let v = trim_wsp(value);
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SipError::bad("Malformed Content-Length"));
    }
    let v = v.trim_start_matches('0');
    if v.len() > 12 {
        return Err(SipErrorKind::TooLarge("Content-Length").into());
    }
    let n: usize = if v.is_empty() {
        0
    } else {
        v.parse().unwrap_or(usize::MAX)
    };
    if n > limits.max_message_size {
        return Err(SipErrorKind::TooLarge("Content-Length").into());
    }
    Ok(n)
}

fn start_line(line: &str, limits: &Limits) -> Result<StartLine, SipError> {
    if line.starts_with("SIP/") {
        return status_line(line).map(StartLine::Response);
    }
    let bad = |what: &'static str| SipError::bad(what);
    let sp = find_byte(line, b' ').ok_or_else(|| bad("Malformed Request-Line"))?;
    let (method, rest) = (&line[..sp], &line[sp + 1..]);
    let sp = find_byte(rest, b' ').ok_or_else(|| bad("Malformed Request-Line"))?;
    let (uri, version) = (&rest[..sp], &rest[sp + 1..]);
    if uri.len() > limits.max_uri_len {
        return Err(SipErrorKind::UriTooLong.into());
    }
    check_version(version)?;
    let method = Method::parse(method).ok_or_else(|| bad("Malformed method"))?;
    let uri = Uri::parse(uri).ok_or_else(|| bad("Malformed Request-URI"))?;
    if uri.as_sip().is_some_and(|u| !u.headers.is_empty()) {
        return Err(bad("Headers in Request-URI"));
    }
    Ok(StartLine::Request(RequestLine { method, uri }))
}

/// `SIP/2.0` (any case) passes; another well-formed version is a 505; anything else
/// a 400.
fn check_version(version: &str) -> Result<(), SipError> {
    if version.eq_ignore_ascii_case("SIP/2.0") {
        return Ok(());
    }
    let well_formed = version
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
        && version[4..].split_once('.').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        });
    if well_formed {
        Err(SipErrorKind::VersionNotSupported.into())
    } else {
        Err(SipError::bad("Malformed SIP-Version"))
    }
}

fn status_line(line: &str) -> Result<StatusLine, SipError> {
    let bad = || SipError::bad("Malformed Status-Line");
    let sp = line.find(' ').ok_or_else(bad)?;
    check_version(&line[..sp])?;
    let rest = &line[sp + 1..];
    let (code, reason) = match rest.find(' ') {
        Some(s) => (&rest[..s], &rest[s + 1..]),
        None => (rest, ""),
    };
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let code: u16 = code.parse().map_err(|_| bad())?;
    if !(100..=699).contains(&code) {
        return Err(bad());
    }
    if reason.chars().any(|c| c.is_control() && c != '\t') {
        return Err(bad());
    }
    Ok(StatusLine {
        code,
        reason: reason.to_owned(),
    })
}

/// Builds the message and checks the syntax of the headers the core reads, and the
/// CSeq method of a request (RFC 4475 §3.1.2.17).
#[inline]
pub(crate) fn finish(head: Head, body: Vec<u8>) -> Result<Message, SipError> {
    let msg = Message {
        start: head.start,
        headers: head.headers,
        body,
    };
    let cseq_method = check_headers(&msg)?;
    if let (StartLine::Request(r), Some(method)) = (&msg.start, cseq_method) {
        if method != r.method {
            return Err(SipError::bad("CSeq method does not match the request"));
        }
    }
    Ok(msg)
}

/// Checks every header the core reads, in order; returns the method of the first
/// CSeq (each CSeq is parsed once, here).
fn check_headers(msg: &Message) -> Result<Option<Method>, SipError> {
    let mut cseq_method = None;
    for h in &msg.headers {
        let v = h.value.as_str();
        let ok = match h.name {
            HeaderName::Via => Via::check_list(v).is_ok(),
            HeaderName::From | HeaderName::To => check_address(v),
            HeaderName::Contact => Contact::check(v),
            HeaderName::Route | HeaderName::RecordRoute => check_address_list(v, true, false),
            HeaderName::ContentType => MediaType::check(v),
            HeaderName::CallId => check_call_id(v).is_ok(),
            HeaderName::CSeq => match CSeq::parse(v) {
                Ok(c) => {
                    cseq_method.get_or_insert(c.method);
                    true
                }
                Err(_) => false,
            },
            HeaderName::MaxForwards => max_forwards(v).is_ok(),
            HeaderName::Expires | HeaderName::MinExpires => delta_seconds(v).is_some(),
            HeaderName::Event => Event::check(v),
            HeaderName::SubscriptionState => SubscriptionState::check(v),
            HeaderName::SipETag | HeaderName::SipIfMatch => super::grammar::is_token(v),
            HeaderName::Require | HeaderName::ProxyRequire | HeaderName::Supported => {
                check_token_list(v)
            }
            _ => true,
        };
        if !ok {
            return Err(SipError::bad(format!("Malformed {}", h.name)));
        }
    }
    Ok(cseq_method)
}
