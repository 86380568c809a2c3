//! The request checks of RFC 3261 §8.2 that come before any method's processing, as
//! one call: required and single-valued headers (400), the Request-URI scheme (416),
//! required extensions (420).

use super::error::{SipError, SipErrorKind};
use super::essentials::RequestEssentials;
use super::header::HeaderName;
use super::message::Message;
use super::method::Method;

/// What the element supports.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// Request-URI schemes handled (lowercase), e.g. `["sip", "sips"]`.
    pub schemes: &'a [&'a str],
    /// Option tags supported (compared ignoring case).
    pub extensions: &'a [&'a str],
    /// Check `Proxy-Require` (a proxy) rather than `Require` (a UAS or registrar).
    pub proxy: bool,
}

/// Headers a request must carry (RFC 3261 §8.1.1). Max-Forwards is left out: RFC 2543
/// requests lack it and must still be accepted (RFC 4475 §3.4.1).
const REQUIRED: [(HeaderName, &str); 5] = [
    (HeaderName::To, "Missing To"),
    (HeaderName::From, "Missing From"),
    (HeaderName::CallId, "Missing Call-ID"),
    (HeaderName::CSeq, "Missing CSeq"),
    (HeaderName::Via, "Missing Via"),
];

/// Headers that may appear once at most.
const SINGLE: [(HeaderName, &str); 12] = [
    (HeaderName::To, "Multiple To"),
    (HeaderName::From, "Multiple From"),
    (HeaderName::CallId, "Multiple Call-ID"),
    (HeaderName::CSeq, "Multiple CSeq"),
    (HeaderName::MaxForwards, "Multiple Max-Forwards"),
    (HeaderName::ContentType, "Multiple Content-Type"),
    (HeaderName::Expires, "Multiple Expires"),
    (HeaderName::MinExpires, "Multiple Min-Expires"),
    (HeaderName::Event, "Multiple Event"),
    (HeaderName::SubscriptionState, "Multiple Subscription-State"),
    (HeaderName::SipETag, "Multiple SIP-ETag"),
    (HeaderName::SipIfMatch, "Multiple SIP-If-Match"),
];

/// Checks a parsed request against RFC 3261 §8.2 and `policy`. The error carries the
/// request's essentials for [`error_response`](super::error_response). Responses pass.
pub fn check_request(msg: &Message, policy: &Policy<'_>) -> Result<(), SipError> {
    let Some(line) = msg.request_line() else {
        return Ok(());
    };
    let with = |kind: SipErrorKind| SipError {
        kind,
        request: Some(Box::new(RequestEssentials::from_message(msg))),
    };
    for (name, what) in &REQUIRED {
        if msg.count(name) == 0 {
            return Err(with(SipErrorKind::BadRequest((*what).into())));
        }
    }
    for (name, what) in &SINGLE {
        if msg.count(name) > 1 {
            return Err(with(SipErrorKind::BadRequest((*what).into())));
        }
    }
    let scheme = line.uri.scheme();
    if !policy
        .schemes
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return Err(with(SipErrorKind::UnsupportedUriScheme(scheme.to_owned())));
    }
    if matches!(line.method, Method::Ack | Method::Cancel) {
        return Ok(());
    }
    let required = if policy.proxy {
        msg.proxy_require()
    } else {
        msg.require()
    }
    .map_err(|e| with(e.kind))?;
    let unsupported = unsupported(&required, policy.extensions);
    if unsupported.is_empty() {
        Ok(())
    } else {
        Err(with(SipErrorKind::BadExtension(unsupported)))
    }
}

/// The option tags of `required` that are not in `supported` (ignoring case).
pub fn unsupported(required: &[String], supported: &[&str]) -> Vec<String> {
    required
        .iter()
        .filter(|r| !supported.iter().any(|s| s.eq_ignore_ascii_case(r)))
        .cloned()
        .collect()
}
