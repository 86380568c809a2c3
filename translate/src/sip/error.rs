//! The one error type of the SIP codec, and the status code each error answers with.

use std::borrow::Cow;
use std::fmt;

use super::essentials::RequestEssentials;

/// What is wrong with a message, mapped onto the SIP status a server answers a request
/// with ([`SipErrorKind::status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SipErrorKind {
    /// The message does not follow the RFC 3261 grammar, or breaks one of its rules
    /// (a missing or repeated header, a CSeq method that is not the request's). The text
    /// says what, and is the reason phrase of the 400 (RFC 3261 §21.4.1).
    BadRequest(Cow<'static, str>),
    /// The SIP-Version is not `SIP/2.0`: 505.
    VersionNotSupported,
    /// The Request-URI's scheme is not one the element handles: 416.
    UnsupportedUriScheme(String),
    /// The request `Require`s (or `Proxy-Require`s) extensions that are not supported:
    /// 420, with an `Unsupported` header listing them.
    BadExtension(Vec<String>),
    /// The element needs extensions the request does not declare: 421, with a
    /// `Require` header listing them.
    ExtensionRequired(Vec<String>),
    /// The Request-URI is longer than [`Limits::max_uri_len`](super::Limits): 414.
    UriTooLong,
    /// A limit of [`Limits`](super::Limits) was exceeded: 513. On a stream the
    /// connection cannot be resynchronised and should be closed.
    TooLarge(&'static str),
}

impl SipErrorKind {
    /// The status code a request with this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::VersionNotSupported => 505,
            Self::UnsupportedUriScheme(_) => 416,
            Self::BadExtension(_) => 420,
            Self::ExtensionRequired(_) => 421,
            Self::UriTooLong => 414,
            Self::TooLarge(_) => 513,
        }
    }

    /// The reason phrase of that answer. For a 400 it says what is wrong.
    pub fn reason_phrase(&self) -> Cow<'static, str> {
        match self {
            Self::BadRequest(what) => what.clone(),
            Self::VersionNotSupported => Cow::Borrowed("Version Not Supported"),
            Self::UnsupportedUriScheme(_) => Cow::Borrowed("Unsupported URI Scheme"),
            Self::BadExtension(_) => Cow::Borrowed("Bad Extension"),
            Self::ExtensionRequired(_) => Cow::Borrowed("Extension Required"),
            Self::UriTooLong => Cow::Borrowed("Request-URI Too Long"),
            Self::TooLarge(_) => Cow::Borrowed("Message Too Large"),
        }
    }
}

impl fmt::Display for SipErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadRequest(what) => write!(f, "bad request: {what}"),
            Self::VersionNotSupported => f.write_str("unsupported SIP version"),
            Self::UnsupportedUriScheme(s) => write!(f, "unsupported URI scheme {s:?}"),
            Self::BadExtension(e) => write!(f, "unsupported extensions required: {}", e.join(", ")),
            Self::ExtensionRequired(e) => write!(f, "extensions required: {}", e.join(", ")),
            Self::UriTooLong => f.write_str("Request-URI too long"),
            Self::TooLarge(what) => write!(f, "limit exceeded: {what}"),
        }
    }
}

/// A message refused by the codec.
///
/// `kind` says why and which status answers it. When the refused message was a
/// request and enough of it could be read, `request` holds the headers a response
/// needs (RFC 3261 §8.2.6), so the caller can answer with
/// [`error_response`](super::error_response); a refused response is dropped
/// (`request` is `None`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct SipError {
    /// Why the message was refused.
    pub kind: SipErrorKind,
    /// What could be read of a refused request, for the error response.
    pub request: Option<Box<RequestEssentials>>,
}

impl SipError {
    /// An error without request context.
    pub fn new(kind: SipErrorKind) -> Self {
        Self {
            kind,
            request: None,
        }
    }

    /// A 400 saying `what` is wrong.
    pub fn bad(what: impl Into<Cow<'static, str>>) -> Self {
        Self::new(SipErrorKind::BadRequest(what.into()))
    }

    /// The status code (shortcut for `kind.status()`).
    pub fn status(&self) -> u16 {
        self.kind.status()
    }
}

impl From<SipErrorKind> for SipError {
    fn from(kind: SipErrorKind) -> Self {
        Self::new(kind)
    }
}
