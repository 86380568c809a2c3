//! `name-addr` / `addr-spec` with parameters: From, To, Contact, Route, Record-Route,
//! Refer-To (RFC 3261 §20.10, §25.1).

use std::fmt;

use super::super::error::SipError;
use super::super::grammar::{find_byte, trim_wsp};
use super::super::uri::{find_param, write_params, Param, Uri};
use super::{
    at_end, generic_params, quoted_string, scan_generic_params, split_list, sws, token, unquote,
};

/// An address with an optional display name and header parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name as written: a quoted string with its quotes, or tokens.
    pub display: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Whether the URI was written in `<...>` (a name-addr); the serializer writes `<>`
    /// whenever there is a display name or the URI needs it.
    pub angle: bool,
    /// The header parameters (`;tag=...`, `;expires=...`) in order.
    pub params: Vec<Param>,
}

impl NameAddr {
    /// An address in angle brackets, without display name or parameters.
    pub fn new(uri: Uri) -> Self {
        Self {
            display: None,
            uri,
            angle: true,
            params: Vec::new(),
        }
    }

    /// Parses one address with its parameters (From, To, one Contact or Route element).
    pub fn parse(value: &str) -> Result<Self, SipError> {
        Self::parse_inner(value).ok_or_else(|| SipError::bad("Malformed address"))
    }

    fn parse_inner(value: &str) -> Option<Self> {
        let p = scan(value, |_, _| true)?;
        let (_, params) = generic_params(p.params)?;
        Some(Self {
            display: p.display.map(str::to_owned),
            uri: Uri::parse(p.uri)?,
            angle: p.angle,
            params,
        })
    }

    /// Parses a comma-separated list of addresses (Contact, Route, Record-Route).
    pub fn parse_list(value: &str) -> Result<Vec<Self>, SipError> {
        split_list(value)?.into_iter().map(Self::parse).collect()
    }

    /// The display name, unquoted.
    pub fn display_name(&self) -> Option<String> {
        let d = self.display.as_deref()?;
        Some(if d.starts_with('"') {
            unquote(d)
        } else {
            d.to_owned()
        })
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").flatten()
    }

    /// The value of parameter `name` (`Some(None)` when present without value).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// The `expires` parameter of a Contact, in seconds (saturating at 2^32 - 1).
    pub fn expires(&self) -> Option<u32> {
        self.param("expires").flatten().and_then(delta_seconds)
    }

    /// The `q` parameter of a Contact, in thousandths (0 to 1000).
    pub fn q(&self) -> Option<u16> {
        self.param("q").flatten().and_then(qvalue)
    }
}

/// The parts of an address, borrowed and checked.
struct Parts<'a> {
    display: Option<&'a str>,
    uri: &'a str,
    angle: bool,
    params: &'a str,
}

/// `( name-addr / addr-spec ) *( SEMI param )`; `f` checks each parameter.
fn scan<'a>(value: &'a str, f: impl FnMut(&'a str, Option<&'a str>) -> bool) -> Option<Parts<'a>> {
    let i = sws(value);
    let (display, i) = if i.starts_with('"') {
        let (rest, q) = quoted_string(i)?;
        (Some(q), sws(rest))
    } else {
        display_tokens(i)
    };
    let (uri, angle, rest) = if let Some(inner) = i.strip_prefix('<') {
        let close = find_byte(inner, b'>')?;
        let text = &inner[..close];
        // LAQUOT and RAQUOT carry no white space inside (RFC 4475 §3.1.2.15).
        if text.starts_with([' ', '\t']) || text.ends_with([' ', '\t']) {
            return None;
        }
        (text, true, &inner[close + 1..])
    } else {
        if display.is_some() {
            return None;
        }
        // addr-spec: parameters after it belong to the header; a URI with `?` or
        // `,` must be in angle brackets (RFC 3261 §20.10).
        let end = i
            .bytes()
            .position(|b| matches!(b, b';' | b' ' | b'\t' | b','))
            .unwrap_or(i.len());
        let text = &i[..end];
        if find_byte(text, b'?').is_some() {
            return None;
        }
        (text, false, &i[end..])
    };
    if !Uri::check(uri) {
        return None;
    }
    let after = scan_generic_params(rest, f)?;
    at_end(after).then(|| Parts {
        display,
        uri,
        angle,
        params: &rest[..rest.len() - after.len()],
    })
}

/// Checks one address (From, To) without building it.
pub(crate) fn check_address(value: &str) -> bool {
    scan(value, |_, _| true).is_some()
}

/// Checks a list of addresses; with `route`, each must be a name-addr (Route,
/// Record-Route); with `contact`, `q` and `expires` must be valid.
pub(crate) fn check_address_list(value: &str, route: bool, contact: bool) -> bool {
    super::lists::for_each_element(value, |a| {
        let check = |name: &str, v: Option<&str>| {
            !contact
                || if name.eq_ignore_ascii_case("q") {
                    v.and_then(qvalue).is_some()
                } else if name.eq_ignore_ascii_case("expires") {
                    v.and_then(delta_seconds).is_some()
                } else {
                    true
                }
        };
        scan(a, check).is_some_and(|p| p.angle || !route)
    })
    .is_ok()
}

/// `*(token LWS)` before `<` as the display name; anything else is no display name.
fn display_tokens(i: &str) -> (Option<&str>, &str) {
    let mut rest = i;
    let mut end = 0;
    while let Some((after, _)) = token(rest) {
        end = i.len() - after.len();
        rest = sws(after);
    }
    if end > 0 && rest.starts_with('<') {
        (Some(&i[..end]), rest)
    } else {
        (None, i)
    }
}

/// `delta-seconds`, saturating at 2^32 - 1 (RFC 3261 §20.19 caps the range; RFC 4475
/// §3.1.2.4 lets an element treat larger values as the cap).
pub(crate) fn delta_seconds(s: &str) -> Option<u32> {
    let s = trim_wsp(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse::<u32>().unwrap_or(u32::MAX))
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in thousandths.
fn qvalue(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (n, d) in frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .enumerate()
    {
        thousandths += u16::from(d - b'0') * [100, 10, 1][n];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// A Contact header value: `*` or addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    /// `Contact: *` (remove all bindings, with `Expires: 0`).
    Star,
    /// One or more addresses.
    Addresses(Vec<NameAddr>),
}

impl Contact {
    /// Checks a Contact value without building it.
    pub(crate) fn check(value: &str) -> bool {
        trim_wsp(value) == "*" || check_address_list(value, false, true)
    }

    /// Parses a Contact value, checking `expires` and `q` when present.
    pub fn parse(value: &str) -> Result<Self, SipError> {
        if trim_wsp(value) == "*" {
            return Ok(Self::Star);
        }
        let list = NameAddr::parse_list(value)?;
        for c in &list {
            if c.param("q").is_some() && c.q().is_none() {
                return Err(SipError::bad("Malformed Contact q"));
            }
            if c.param("expires").is_some() && c.expires().is_none() {
                return Err(SipError::bad("Malformed Contact expires"));
            }
        }
        Ok(Self::Addresses(list))
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{d} ")?;
        }
        let sip_params = self
            .uri
            .as_sip()
            .is_some_and(|u| !u.params.is_empty() || !u.headers.is_empty());
        if self.angle || self.display.is_some() || sip_params || !matches!(self.uri, Uri::Sip(_)) {
            write!(f, "<{}>", self.uri)?;
        } else {
            write!(f, "{}", self.uri)?;
        }
        write_params(f, &self.params)
    }
}
