//! The message model: a start line, header fields in order, and a body.
//!
//! Header values are kept as received once unfolded (each line fold becomes one space,
//! surrounding white space trimmed), so unknown headers and header order survive a
//! parse and a serialization; the typed views (`Message::vias`, `Message::cseq`...)
//! read them on demand. `Content-Length` is not a stored header: the body's length is
//! the content length, and the serializer writes it.

use super::header::HeaderName;
use super::method::Method;
use super::uri::Uri;

/// A SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The request line or the status line.
    pub start: StartLine,
    /// Header fields in the order received, `Content-Length` excepted.
    pub headers: Vec<Header>,
    /// The body (exactly `Content-Length` bytes).
    pub body: Vec<u8>,
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `Method SP Request-URI SP SIP/2.0`.
    Request(RequestLine),
    /// `SIP/2.0 SP Status-Code SP Reason-Phrase`.
    Response(StatusLine),
}

/// A request line. The version is always `SIP/2.0` (others are refused with 505).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLine {
    /// The method (case-sensitive).
    pub method: Method,
    /// The Request-URI.
    pub uri: Uri,
}

/// A status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    /// The status code, 100 to 699.
    pub code: u16,
    /// The reason phrase, possibly empty (UTF-8, no CR or LF).
    pub reason: String,
}

/// One header field: its name and its unfolded raw value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name.
    pub name: HeaderName,
    /// The value as received, unfolded and trimmed.
    pub value: String,
}

impl Header {
    /// A header field.
    pub fn new(name: HeaderName, value: impl Into<String>) -> Self {
        Self {
            name,
            value: value.into(),
        }
    }
}

impl Message {
    /// A request with no headers and no body.
    pub fn request(method: Method, uri: Uri) -> Self {
        Self {
            start: StartLine::Request(RequestLine { method, uri }),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A response with no headers and no body.
    pub fn response(code: u16, reason: impl Into<String>) -> Self {
        Self {
            start: StartLine::Response(StatusLine {
                code,
                reason: reason.into(),
            }),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The request line, for a request.
    pub fn request_line(&self) -> Option<&RequestLine> {
        match &self.start {
            StartLine::Request(r) => Some(r),
            StartLine::Response(_) => None,
        }
    }

    /// The status line, for a response.
    pub fn status_line(&self) -> Option<&StatusLine> {
        match &self.start {
            StartLine::Response(s) => Some(s),
            StartLine::Request(_) => None,
        }
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request(_))
    }

    /// Appends a header field.
    pub fn push_header(&mut self, name: HeaderName, value: impl Into<String>) {
        self.headers.push(Header::new(name, value));
    }

    /// The values of every `name` field, in order.
    pub fn header_values<'a, 'n>(
        &'a self,
        name: &'n HeaderName,
    ) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.headers
            .iter()
            .filter(move |h| &h.name == name)
            .map(|h| h.value.as_str())
    }

    /// The value of the first `name` field.
    pub fn header(&self, name: &HeaderName) -> Option<&str> {
        self.header_values(name).next()
    }

    /// How many `name` fields there are.
    pub fn count(&self, name: &HeaderName) -> usize {
        self.header_values(name).count()
    }

    /// The content length: the body's length.
    pub fn content_length(&self) -> usize {
        self.body.len()
    }
}
