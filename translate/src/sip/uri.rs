//! SIP, SIPS and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966), IPv6 references as
//! RFC 5118 reads them, and any other absolute URI kept opaque.
//!
//! Escapes (`%HH`) are kept as written, so a URI serializes back byte for byte;
//! [`unescape`](super::unescape) decodes a part when its meaning is needed.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::grammar::{escapes_ok, find_byte, is_unreserved, HCHAR, PARAMCHAR, PASSWORD, USER};

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
    /// Whether `s` is a URI this module accepts, without building it.
    pub(crate) fn check(s: &str) -> bool {
        let Some(colon) = find_byte(s, b':') else {
            return false;
        };
        let (scheme, rest) = (&s[..colon], &s[colon + 1..]);
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            sip_parts(rest).is_some()
        } else if scheme.eq_ignore_ascii_case("tel") {
            tel_parts(rest).is_some()
        } else {
            is_scheme(scheme) && !rest.is_empty() && rest.bytes().all(is_uric) && escapes_ok(rest)
        }
    }

    /// Parses a URI as a whole.
    pub fn parse(s: &str) -> Option<Self> {
        let colon = memchr::memchr(b':', s.as_bytes())?;
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

#[inline]
fn is_user_char(b: u8) -> bool {
    USER[usize::from(b)]
}

#[inline]
fn is_password_char(b: u8) -> bool {
    PASSWORD[usize::from(b)]
}

/// `paramchar`: `param-unreserved / unreserved / escaped`.
#[inline]
fn is_paramchar(b: u8) -> bool {
    PARAMCHAR[usize::from(b)]
}

/// `hnv-unreserved / unreserved / escaped`.
#[inline]
fn is_hchar(b: u8) -> bool {
    HCHAR[usize::from(b)]
}

/// Scans `*( ";" pname [ "=" pvalue ] )`, calling `f` for each parameter; returns
/// what follows, or `None` on a malformed parameter.
fn scan_uri_params<'a>(
    mut i: &'a str,
    mut f: impl FnMut(&'a str, Option<&'a str>),
) -> Option<&'a str> {
    while let Some(rest) = i.strip_prefix(';') {
        let (name, rest) = span(rest, is_paramchar);
        if name.is_empty() || !escapes_ok(name) {
            return None;
        }
        let (value, rest) = match rest.strip_prefix('=') {
            Some(v) => {
                let (value, rest) = span(v, is_paramchar);
                if value.is_empty() || !escapes_ok(value) {
                    return None;
                }
                (Some(value), rest)
            }
            None => (None, rest),
        };
        f(name, value);
        i = rest;
    }
    Some(i)
}

/// Scans `"?" hname "=" hvalue *( "&" hname "=" hvalue )` up to the end of `i`.
fn scan_uri_headers<'a>(i: &'a str, mut f: impl FnMut(&'a str, &'a str)) -> Option<()> {
    let mut rest = i.strip_prefix('?')?;
    loop {
        let (name, r) = span(rest, is_hchar);
        let r = r.strip_prefix('=')?;
        let (value, r) = span(r, is_hchar);
        if name.is_empty() || !escapes_ok(name) || !escapes_ok(value) {
            return None;
        }
        f(name, value);
        match r.strip_prefix('&') {
            Some(next) => rest = next,
            None if r.is_empty() => return Some(()),
            None => return None,
        }
    }
}

/// The longest prefix of `i` whose bytes satisfy `ok`, and the rest.
#[inline]
fn span(i: &str, ok: impl Fn(u8) -> bool) -> (&str, &str) {
    let n = i.bytes().position(|b| !ok(b)).unwrap_or(i.len());
    i.split_at(n)
}

/// A host as it appears in the input (a name is borrowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostRef<'a> {
    Name(&'a str),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl HostRef<'_> {
    pub(crate) fn to_host(self) -> Host {
        match self {
            Self::Name(n) => Host::Name(n.to_owned()),
            Self::V4(a) => Host::V4(a),
            Self::V6(a) => Host::V6(a),
        }
    }
}

/// The parts of a SIP URI after the scheme, borrowed from the input and checked.
struct SipParts<'a> {
    user: Option<&'a str>,
    password: Option<&'a str>,
    host: HostRef<'a>,
    port: Option<u16>,
    params: &'a str,
    headers: &'a str,
}

fn sip_parts(s: &str) -> Option<SipParts<'_>> {
    // No `@` may appear unescaped after the userinfo, so the first one ends it.
    let (user, password, hostpart) = match find_byte(s, b'@') {
        Some(at) => {
            let info = &s[..at];
            let (user, password) = match find_byte(info, b':') {
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
            (Some(user), password, &s[at + 1..])
        }
        None => (None, None, s),
    };
    let (rest, (host, port)) = host_port(hostpart)?;
    let after = scan_uri_params(rest, |_, _| {})?;
    let params = &rest[..rest.len() - after.len()];
    if !after.is_empty() {
        scan_uri_headers(after, |_, _| {})?;
    }
    Some(SipParts {
        user,
        password,
        host,
        port,
        params,
        headers: after,
    })
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
        let p = sip_parts(s)?;
        let mut params = Vec::new();
        scan_uri_params(p.params, |n, v| params.push(Param::new(n, v)));
        let mut headers = Vec::new();
        if !p.headers.is_empty() {
            scan_uri_headers(p.headers, |n, v| headers.push((n.to_owned(), v.to_owned())));
        }
        Some(Self {
            secure,
            user: p.user.map(str::to_owned),
            password: p.password.map(str::to_owned),
            host: p.host.to_host(),
            port: p.port,
            params,
            headers,
        })
    }

    /// The value of uri-parameter `name` (`Some(None)` when present without value).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }
}

/// Checks a `tel:` URI after the scheme; returns the number and the parameters' span.
fn tel_parts(s: &str) -> Option<(&str, &str)> {
    let end = memchr::memchr(b';', s.as_bytes()).unwrap_or(s.len());
    let number = &s[..end];
    let valid = |c: u8| {
        c.is_ascii_hexdigit() || matches!(c, b'+' | b'-' | b'.' | b'(' | b')' | b'*' | b'#')
    };
    if number.is_empty() || !number.bytes().all(valid) {
        return None;
    }
    let rest = scan_uri_params(&s[end..], |_, _| {})?;
    rest.is_empty().then_some((number, &s[end..]))
}

impl TelUri {
    fn parse_rest(s: &str) -> Option<Self> {
        let (number, params_text) = tel_parts(s)?;
        let mut params = Vec::new();
        scan_uri_params(params_text, |n, v| params.push(Param::new(n, v)));
        Some(Self {
            number: number.to_owned(),
            params,
        })
    }
}

/// `hostport`: returns what follows (`;`, `?`, `,`, `>`, white space or the end).
pub(crate) fn host_port(i: &str) -> Option<(&str, (HostRef<'_>, Option<u16>))> {
    let (rest, host) = host(i)?;
    match rest.strip_prefix(':') {
        Some(p) => {
            let (digits, rest) = span(p, |b| b.is_ascii_digit());
            if digits.is_empty() || digits.len() > 5 {
                return None;
            }
            let port = digits.parse().ok()?;
            Some((rest, (host, Some(port))))
        }
        None => Some((rest, (host, None))),
    }
}

/// `host = hostname / IPv4address / IPv6reference`.
pub(crate) fn host(i: &str) -> Option<(&str, HostRef<'_>)> {
    if let Some(inner) = i.strip_prefix('[') {
        let close = find_byte(inner, b']')?;
        let addr: Ipv6Addr = inner[..close].parse().ok()?;
        return Some((&inner[close + 1..], HostRef::V6(addr)));
    }
    let b = i.as_bytes();
    // One pass over the name (alphanum, `-`, `.`): whether it is all digits and dots
    // (an IPv4 address), and the hostname rules of `parse_host_name` label by label.
    let mut n = 0;
    let mut numeric = true;
    let mut labels_ok = true;
    let mut label_start = 0;
    let mut last_first = 0u8;
    while n < b.len() {
        let c = b[n];
        if c == b'.' {
            let label = &b[label_start..n];
            labels_ok &= !label.is_empty() && label[0] != b'-' && label[label.len() - 1] != b'-';
            last_first = label.first().copied().unwrap_or(0);
            label_start = n + 1;
        } else if c.is_ascii_digit() {
        } else if c.is_ascii_alphabetic() || c == b'-' {
            numeric = false;
        } else {
            break;
        }
        n += 1;
    }
    let (name, rest) = i.split_at(n);
    if n == 0 {
        return None;
    }
    if numeric {
        return name.parse().ok().map(|a| (rest, HostRef::V4(a)));
    }
    // The last label: the one after the last dot, or before a single trailing dot.
    if label_start < n {
        let label = &b[label_start..n];
        labels_ok &= label[0] != b'-' && label[label.len() - 1] != b'-';
        last_first = label[0];
    }
    (labels_ok && last_first.is_ascii_alphabetic()).then_some((rest, HostRef::Name(name)))
}

/// An IPv4 address or a `hostname` (labels of alphanum and `-`, the last starting
/// with a letter, one trailing dot allowed): what [`host`] checks in one pass, kept as
/// the reference it is tested against.
#[cfg(test)]
fn parse_host_name(name: &str) -> Option<HostRef<'_>> {
    if name.is_empty() {
        return None;
    }
    if name.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        return name.parse().ok().map(HostRef::V4);
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
    Some(HostRef::Name(name))
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

#[cfg(test)]
mod host_tests {
    use proptest::prelude::*;

    use super::{host, parse_host_name};

    /// The one-pass `host` against the reference: the span of alphanum, `-` and `.`
    /// checked by `parse_host_name`.
    fn reference(i: &str) -> Option<(&str, super::HostRef<'_>)> {
        let n = i
            .bytes()
            .position(|c| !(c.is_ascii_alphanumeric() || c == b'-' || c == b'.'))
            .unwrap_or(i.len());
        parse_host_name(&i[..n]).map(|h| (&i[n..], h))
    }

    #[test]
    fn host_names_and_addresses() {
        for i in [
            "",
            ".",
            "..",
            "a",
            "a.",
            "a..",
            ".a",
            "-a",
            "a-",
            "a-b.c",
            "1.2.3.4",
            "1.2.3.4.",
            "1.2.3",
            "01.2.3.4",
            "256.1.1.1",
            "1a.b2",
            "a.1b",
            "a.b-",
            "a.-b",
            "x.example.com.",
            "x.example.com..",
            "a:5060",
            "1.2.3.4:5",
            "é",
            "a;b",
            "9",
            "9.",
            "a9.b",
            "a.b.",
        ] {
            assert_eq!(host(i), reference(i), "{i:?}");
        }
    }

    proptest! {
        #[test]
        fn one_pass_host_agrees_with_the_reference(i in "[a-c0-2.:;-]{0,12}") {
            prop_assert_eq!(host(&i), reference(&i));
        }
    }
}
