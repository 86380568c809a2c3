//! SIP, SIPS and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966), IPv6 references as
//! RFC 5118 reads them, and any other absolute URI kept opaque.
//!
//! Escapes (`%HH`) are kept as written, so a URI serializes back byte for byte;
//! [`unescape`](super::unescape) decodes a part when its meaning is needed.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use nom::bytes::complete::{take_till, take_while1};
use nom::character::complete::char;
use nom::combinator::{all_consuming, opt};
use nom::multi::many0;
use nom::sequence::preceded;
use nom::{IResult, Parser};

use super::grammar::{escapes_ok, is_unreserved};

/// A Request-URI or the URI of a name-addr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    /// `sip:` or `sips:`.
    Sip(SipUri),
    /// `tel:` (RFC 3966).
    Tel(TelUri),
    /// Any other `absoluteURI`, kept as written (RFC 3261 §19.1.1 allows them; the
    /// application decides, e.g. 416 for a Request-URI).
    Other(String),
}

/// A `sip:`/`sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// The user part, escapes kept.
    pub user: Option<String>,
    /// The password, escapes kept.
    pub password: Option<String>,
    /// The host.
    pub host: Host,
    /// The port, when given.
    pub port: Option<u16>,
    /// The uri-parameters in order (`;name[=value]`), escapes kept.
    pub params: Vec<Param>,
    /// The headers (`?name=value&...`), escapes kept.
    pub headers: Vec<(String, String)>,
}

/// The host of a SIP URI or Via.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A host name, as written (compare ignoring case).
    Name(String),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 reference (`[...]` on the wire).
    V6(Ipv6Addr),
}

/// A `tel:` URI: the number and its parameters, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelUri {
    /// The telephone-subscriber up to the first `;`.
    pub number: String,
    /// The parameters in order.
    pub params: Vec<Param>,
}

/// A `;name[=value]` parameter (URI, Via, name-addr, media type...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The name, as written (compare ignoring case).
    pub name: String,
    /// The value, as written (a quoted string keeps its quotes).
    pub value: Option<String>,
}

impl Param {
    /// A parameter with an optional value.
    pub fn new(name: impl Into<String>, value: Option<&str>) -> Self {
        Self {
            name: name.into(),
            value: value.map(str::to_owned),
        }
    }
}

/// The value of the first parameter named `name` (ignoring case): `Some(None)` when it
/// is present without a value.
pub fn find_param<'a>(params: &'a [Param], name: &str) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .map(|p| p.value.as_deref())
}

impl Uri {
    /// Parses a URI as a whole.
    pub fn parse(s: &str) -> Option<Self> {
        let colon = s.find(':')?;
        let (scheme, rest) = (&s[..colon], &s[colon + 1..]);
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            SipUri::parse_rest(scheme.len() == 4, rest).map(Self::Sip)
        } else if scheme.eq_ignore_ascii_case("tel") {
            TelUri::parse_rest(rest).map(Self::Tel)
        } else if is_scheme(scheme) && !rest.is_empty() && rest.bytes().all(is_uric) {
            escapes_ok(rest).then(|| Self::Other(s.to_owned()))
        } else {
            None
        }
    }

    /// The scheme, lowercase for the known ones.
    pub fn scheme(&self) -> &str {
        match self {
            Self::Sip(u) if u.secure => "sips",
            Self::Sip(_) => "sip",
            Self::Tel(_) => "tel",
            Self::Other(s) => s.split(':').next().unwrap_or(""),
        }
    }

    /// The SIP URI, when it is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Self::Sip(u) => Some(u),
            _ => None,
        }
    }
}

/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

/// Characters of an opaque absolute URI (RFC 2396 `uric` plus `/`, `%`).
fn is_uric(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b';' | b'/' | b'?' | b':' | b'@' | b'&' | b'=' | b'+' | b'$' | b',' | b'%'
        )
}

fn is_user_char(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'%' | b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/'
        )
}

fn is_password_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'%' | b'&' | b'=' | b'+' | b'$' | b',')
}

/// `paramchar`: `param-unreserved / unreserved / escaped`.
fn is_paramchar(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'%' | b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$')
}

/// `hnv-unreserved / unreserved / escaped`.
fn is_hchar(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'%' | b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$')
}

fn uri_param(i: &str) -> IResult<&str, Param> {
    let (i, name) = preceded(char(';'), take_while1(|c: char| is_paramchar(c as u8))).parse(i)?;
    let (i, value) = opt(preceded(
        char('='),
        take_while1(|c: char| is_paramchar(c as u8)),
    ))
    .parse(i)?;
    Ok((i, Param::new(name, value)))
}

fn uri_header(i: &str) -> IResult<&str, (String, String)> {
    let (i, name) = take_while1(|c: char| is_hchar(c as u8)).parse(i)?;
    let (i, _) = char('=').parse(i)?;
    let (i, value) = take_till(|c: char| !is_hchar(c as u8)).parse(i)?;
    Ok((i, (name.to_owned(), value.to_owned())))
}

fn uri_headers(i: &str) -> IResult<&str, Vec<(String, String)>> {
    let (mut i, first) = preceded(char('?'), uri_header).parse(i)?;
    let mut all = vec![first];
    while let Ok((rest, h)) = preceded(char('&'), uri_header).parse(i) {
        all.push(h);
        i = rest;
    }
    Ok((i, all))
}

impl SipUri {
    /// A `sip:` URI of `host` without user, port or parameters.
    pub fn new(host: Host) -> Self {
        Self {
            secure: false,
            user: None,
            password: None,
            host,
            port: None,
            params: Vec::new(),
            headers: Vec::new(),
        }
    }

    fn parse_rest(secure: bool, s: &str) -> Option<Self> {
        // No `@` may appear unescaped after the userinfo, so the first one ends it.
        let (user, password, hostpart) = match memchr::memchr(b'@', s.as_bytes()) {
            Some(at) => {
                let info = &s[..at];
                let (user, password) = match info.find(':') {
                    Some(c) => (&info[..c], Some(&info[c + 1..])),
                    None => (info, None),
                };
                if user.is_empty() || !user.bytes().all(is_user_char) || !escapes_ok(user) {
                    return None;
                }
                if let Some(p) = password {
                    if !p.bytes().all(is_password_char) || !escapes_ok(p) {
                        return None;
                    }
                }
                (
                    Some(user.to_owned()),
                    password.map(str::to_owned),
                    &s[at + 1..],
                )
            }
            None => (None, None, s),
        };
        let (rest, (host, port)) = host_port(hostpart).ok()?;
        let (rest, params) = many0(uri_param).parse(rest).ok()?;
        let (_, headers) = all_consuming(opt(uri_headers)).parse(rest).ok()?;
        let ok = params
            .iter()
            .all(|p| escapes_ok(&p.name) && p.value.as_deref().is_none_or(escapes_ok));
        let headers = headers.unwrap_or_default();
        let ok = ok && headers.iter().all(|(n, v)| escapes_ok(n) && escapes_ok(v));
        ok.then_some(Self {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }

    /// The value of uri-parameter `name` (`Some(None)` when present without value).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }
}

impl TelUri {
    fn parse_rest(s: &str) -> Option<Self> {
        let end = s.find(';').unwrap_or(s.len());
        let number = &s[..end];
        let valid = |c: u8| {
            c.is_ascii_hexdigit() || matches!(c, b'+' | b'-' | b'.' | b'(' | b')' | b'*' | b'#')
        };
        if number.is_empty() || !number.bytes().all(valid) {
            return None;
        }
        let (_, params) = all_consuming(many0(uri_param)).parse(&s[end..]).ok()?;
        Some(Self {
            number: number.to_owned(),
            params,
        })
    }
}

/// `hostport`, ended by `;`, `?`, `,`, `>`, white space or the end of the input.
pub(crate) fn host_port(i: &str) -> IResult<&str, (Host, Option<u16>)> {
    let (i, host) = host(i)?;
    let (i, port) = opt(preceded(char(':'), port)).parse(i)?;
    Ok((i, (host, port)))
}

fn port(i: &str) -> IResult<&str, u16> {
    let (rest, digits) = take_while1(|c: char| c.is_ascii_digit()).parse(i)?;
    match digits.parse() {
        Ok(p) if digits.len() <= 5 => Ok((rest, p)),
        _ => Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Digit,
        ))),
    }
}

/// `host = hostname / IPv4address / IPv6reference`.
pub(crate) fn host(i: &str) -> IResult<&str, Host> {
    let fail = || nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Verify));
    if let Some(inner) = i.strip_prefix('[') {
        let close = inner.find(']').ok_or_else(fail)?;
        let addr: Ipv6Addr = inner[..close].parse().map_err(|_| fail())?;
        return Ok((&inner[close + 1..], Host::V6(addr)));
    }
    let (rest, name) =
        take_while1(|c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.').parse(i)?;
    parse_host_name(name).map(|h| (rest, h)).ok_or_else(fail)
}

/// An IPv4 address or a `hostname` (labels of alphanum and `-`, the last starting
/// with a letter, one trailing dot allowed).
pub(crate) fn parse_host_name(name: &str) -> Option<Host> {
    if name.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        return name.parse().ok().map(Host::V4);
    }
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    let mut labels = trimmed.split('.').peekable();
    while let Some(label) = labels.next() {
        let b = label.as_bytes();
        if b.is_empty() || b[0] == b'-' || b[b.len() - 1] == b'-' {
            return None;
        }
        if labels.peek().is_none() && !b[0].is_ascii_alphabetic() {
            return None;
        }
    }
    Some(Host::Name(name.to_owned()))
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(n) => f.write_str(n),
            Self::V4(a) => write!(f, "{a}"),
            Self::V6(a) => write!(f, "[{a}]"),
        }
    }
}

pub(crate) fn write_params(f: &mut fmt::Formatter<'_>, params: &[Param]) -> fmt::Result {
    for p in params {
        f.write_str(";")?;
        f.write_str(&p.name)?;
        if let Some(v) = &p.value {
            f.write_str("=")?;
            f.write_str(v)?;
        }
    }
    Ok(())
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write_params(f, &self.params)?;
        for (n, (name, value)) in self.headers.iter().enumerate() {
            f.write_str(if n == 0 { "?" } else { "&" })?;
            write!(f, "{name}={value}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sip(u) => u.fmt(f),
            Self::Tel(t) => {
                write!(f, "tel:{}", t.number)?;
                write_params(f, &t.params)
            }
            Self::Other(s) => f.write_str(s),
        }
    }
}
