//! Small typed headers: CSeq, Content-Type, Event, Subscription-State, and the
//! number and word checks of Call-ID, Max-Forwards and Expires.

use std::fmt;

use super::super::error::SipError;
use super::super::grammar::{find_byte, is_word_char, is_wsp, trim_wsp};
use super::super::method::Method;
use super::super::uri::{find_param, write_params, Param};
use super::{at_end, generic_params, scan_generic_params, sep, sws, token};

/// `CSeq: number method` (RFC 3261 §8.1.1.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number, below 2^31.
    pub seq: u32,
    /// The method.
    pub method: Method,
}

impl CSeq {
    /// Parses a CSeq value.
    pub fn parse(value: &str) -> Result<Self, SipError> {
        let bad = || SipError::bad("Malformed CSeq");
        let v = trim_wsp(value);
        let split = v.bytes().position(is_wsp).ok_or_else(bad)?;
        let (num, method) = (&v[..split], sws(&v[split..]));
        if num.is_empty() || num.len() > 10 || !num.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let seq: u64 = num.parse().map_err(|_| bad())?;
        if seq >= 1 << 31 {
            return Err(bad());
        }
        let method = Method::parse(method).ok_or_else(bad)?;
        Ok(Self {
            seq: seq as u32,
            method,
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Checks a Call-ID: `word [ "@" word ]`.
pub(crate) fn check_call_id(value: &str) -> Result<&str, SipError> {
    let bad = || SipError::bad("Malformed Call-ID");
    let (a, b) = match find_byte(value, b'@') {
        Some(at) => (&value[..at], &value[at + 1..]),
        None => (value, "x"),
    };
    let word = |w: &str| !w.is_empty() && w.bytes().all(is_word_char);
    if word(a) && word(b) {
        Ok(value)
    } else {
        Err(bad())
    }
}

/// Parses Max-Forwards: digits, 0 to 255 (RFC 3261 §20.22).
pub(crate) fn max_forwards(value: &str) -> Result<u8, SipError> {
    let v = trim_wsp(value);
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SipError::bad("Malformed Max-Forwards"));
    }
    v.trim_start_matches('0')
        .parse::<u8>()
        .or_else(|e| {
            if v.bytes().all(|b| b == b'0') {
                Ok(0)
            } else {
                Err(e)
            }
        })
        .map_err(|_| SipError::bad("Malformed Max-Forwards"))
}

/// A media type: `type/subtype;params` (Content-Type, RFC 3261 §20.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// The type, as written (compare ignoring case).
    pub mtype: String,
    /// The subtype, as written.
    pub subtype: String,
    /// The parameters in order.
    pub params: Vec<Param>,
}

impl MediaType {
    /// Parses a media type.
    pub fn parse(value: &str) -> Result<Self, SipError> {
        let bad = || SipError::bad("Malformed Content-Type");
        let i = sws(value);
        let (i, mtype) = token(i).ok_or_else(bad)?;
        let (i, subtype) = token(sep(i, b'/').ok_or_else(bad)?).ok_or_else(bad)?;
        let (i, params) = generic_params(i).ok_or_else(bad)?;
        if !at_end(i) {
            return Err(bad());
        }
        Ok(Self {
            mtype: mtype.to_owned(),
            subtype: subtype.to_owned(),
            params,
        })
    }

    /// Checks a media type without building it (what [`MediaType::parse`] accepts).
    pub(crate) fn check(value: &str) -> bool {
        let Some((i, _)) = token(sws(value)) else {
            return false;
        };
        let Some((i, _)) = sep(i, b'/').and_then(token) else {
            return false;
        };
        scan_generic_params(i, |_, _| true).is_some_and(at_end)
    }

    /// Whether this is `mtype/subtype`, ignoring case.
    pub fn is(&self, mtype: &str, subtype: &str) -> bool {
        self.mtype.eq_ignore_ascii_case(mtype) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    /// The value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.mtype, self.subtype)?;
        write_params(f, &self.params)
    }
}

/// `Event: package[.template];params` (RFC 6665 §8.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event type (`presence`, `presence.winfo`...).
    pub package: String,
    /// The parameters in order (`id`...).
    pub params: Vec<Param>,
}

impl Event {
    /// Parses an Event (or one Allow-Events element).
    pub fn parse(value: &str) -> Result<Self, SipError> {
        let bad = || SipError::bad("Malformed Event");
        let (i, package) = token(sws(value)).ok_or_else(bad)?;
        let (i, params) = generic_params(i).ok_or_else(bad)?;
        if !at_end(i) {
            return Err(bad());
        }
        Ok(Self {
            package: package.to_owned(),
            params,
        })
    }

    /// Checks an Event without building it (what [`Event::parse`] accepts).
    pub(crate) fn check(value: &str) -> bool {
        check_token_params(value)
    }

    /// The `id` parameter.
    pub fn id(&self) -> Option<&str> {
        find_param(&self.params, "id").flatten()
    }
}

/// `Subscription-State: state;params` (RFC 6665 §8.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    /// `active`, `pending`, `terminated` or an extension, as written.
    pub state: String,
    /// The parameters in order (`expires`, `reason`, `retry-after`).
    pub params: Vec<Param>,
}

impl SubscriptionState {
    /// Parses a Subscription-State value.
    pub fn parse(value: &str) -> Result<Self, SipError> {
        let bad = || SipError::bad("Malformed Subscription-State");
        let (i, state) = token(sws(value)).ok_or_else(bad)?;
        let (i, params) = generic_params(i).ok_or_else(bad)?;
        if !at_end(i) {
            return Err(bad());
        }
        Ok(Self {
            state: state.to_owned(),
            params,
        })
    }

    /// Checks a Subscription-State without building it (what
    /// [`SubscriptionState::parse`] accepts).
    pub(crate) fn check(value: &str) -> bool {
        check_token_params(value)
    }

    /// The `expires` parameter, in seconds.
    pub fn expires(&self) -> Option<u32> {
        find_param(&self.params, "expires")
            .flatten()
            .and_then(super::name_addr::delta_seconds)
    }

    /// The `reason` parameter.
    pub fn reason(&self) -> Option<&str> {
        find_param(&self.params, "reason").flatten()
    }
}

/// `token *( SEMI generic-param )` with white space around: the syntax of Event and
/// Subscription-State.
fn check_token_params(value: &str) -> bool {
    token(sws(value)).is_some_and(|(i, _)| scan_generic_params(i, |_, _| true).is_some_and(at_end))
}
