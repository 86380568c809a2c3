//! XMPP addresses <-> SIP URIs (RFC 7247 §5) and `xmpp:` URIs (RFC 5122).
//!
//! | JID part     | `sip:` URI                                                     |
//! |--------------|----------------------------------------------------------------|
//! | localpart    | user part: XEP-0106 escapes undone, then percent-encoded       |
//! | domainpart   | host, in ASCII (A-labels)                                      |
//! | resourcepart | `gr` URI parameter (the GRUU form of RFC 5627), percent-encoded |
//!
//! From SIP to XMPP the user part is percent-decoded, and the characters a localpart
//! may not hold (space `"` `&` `'` `/` `:` `<` `>` `@`) are escaped with XEP-0106
//! (`\20`, `\22`, ...), as is a backslash that would read as an escape; the domain goes
//! through IDNA; a `gr` parameter becomes the resource. `sips:`, `pres:` (RFC 3859) and
//! `im:` (RFC 3860) URIs are read the same way. Other parameters, a password, a port
//! and headers are dropped.
//!
//! Lossy: a JID localpart is case-folded (PRECIS `UsernameCaseMapped`), SIP user parts
//! are not, so `sip:Alice@example.com` becomes `alice@example.com` and comes back in
//! lowercase. A localpart that is not in XEP-0106's canonical form (a `\5c` not
//! followed by an escape, e.g. `a\5cb`) comes back in canonical form. `tel:` and other
//! schemes have no XMPP form.

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

use super::InterworkError;
use crate::jid::Jid;

/// The XEP-0106 escapes: character and its two hex digits.
const ESCAPES: [(char, &str); 10] = [
    (' ', "20"),
    ('"', "22"),
    ('&', "26"),
    ('\'', "27"),
    ('/', "2f"),
    (':', "3a"),
    ('<', "3c"),
    ('>', "3e"),
    ('@', "40"),
    ('\\', "5c"),
];

/// Longest URI read.
const MAX_URI_BYTES: usize = 4096;

/// XEP-0106 escaping of a localpart: the nine forbidden characters become `\xx`; a
/// backslash becomes `\5c` only where it would otherwise start an escape.
pub fn escape_localpart(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.char_indices() {
        match c {
            '\\' if starts_escape(&s[i + 1..]) => out.push_str("\\5c"),
            '\\' => out.push('\\'),
            c => match ESCAPES.iter().find(|(e, _)| *e == c) {
                Some((_, hex)) => {
                    out.push('\\');
                    out.push_str(hex);
                }
                None => out.push(c),
            },
        }
    }
    out
}

/// Undoes [`escape_localpart`]: each `\xx` that is one of the ten escapes becomes its
/// character; other backslashes stay.
pub fn unescape_localpart(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match escape_at(after) {
            Some(c) => {
                out.push(c);
                rest = &after[2..];
            }
            None => {
                out.push('\\');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `s` starts with the two hex digits of an escape (either case).
fn starts_escape(s: &str) -> bool {
    escape_at(s).is_some()
}

fn escape_at(s: &str) -> Option<char> {
    let pair = s.get(..2)?;
    ESCAPES
        .iter()
        .find(|(_, hex)| hex.eq_ignore_ascii_case(pair))
        .map(|(c, _)| *c)
}

/// `sip:user@host[;gr=resource]` for a JID.
pub fn jid_to_sip_uri(jid: &Jid) -> Result<String, InterworkError> {
    let mut uri = String::from("sip:");
    if let Some(local) = jid.local() {
        percent_encode(&mut uri, &unescape_localpart(local), is_sip_user_char);
        uri.push('@');
    }
    uri.push_str(&ascii_host(jid.domain())?);
    if let Some(resource) = jid.resource() {
        uri.push_str(";gr=");
        percent_encode(&mut uri, resource, is_sip_param_char);
    }
    Ok(uri)
}

/// `xmpp:node@domain/resource` (RFC 5122), ASCII: non-ASCII and reserved characters
/// percent-encoded, the domain in A-labels.
pub fn jid_to_xmpp_uri(jid: &Jid) -> Result<String, InterworkError> {
    let mut uri = String::from("xmpp:");
    if let Some(local) = jid.local() {
        percent_encode(&mut uri, local, is_xmpp_node_char);
        uri.push('@');
    }
    uri.push_str(&ascii_host(jid.domain())?);
    if let Some(resource) = jid.resource() {
        uri.push('/');
        percent_encode(&mut uri, resource, is_xmpp_resource_char);
    }
    Ok(uri)
}

/// Whether a request to `uri` asks for TLS on every hop (`sips:`). RFC 7247's
/// security considerations forbid a SIP-to-XMPP gateway to carry such a request
/// (To or Request-URI) into XMPP, which cannot promise it.
pub fn requires_secure_hops(uri: &str) -> bool {
    uri.trim()
        .split_once(':')
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("sips"))
}

/// The JID a `sip:`, `sips:`, `pres:`, `im:` or `xmpp:` URI names (for a request's
/// target, check [`requires_secure_hops`] first).
pub fn uri_to_jid(uri: &str) -> Result<Jid, InterworkError> {
    if uri.len() > MAX_URI_BYTES {
        return Err(InterworkError::TooLong("URI"));
    }
    let uri = uri.trim();
    let malformed = || InterworkError::MalformedUri(uri.to_owned());
    let (scheme, rest) = uri.split_once(':').ok_or_else(malformed)?;
    match scheme.to_ascii_lowercase().as_str() {
        "xmpp" => xmpp_uri_to_jid(rest).ok_or_else(malformed)?,
        "sip" | "sips" | "pres" | "im" => {
            let parts = SipParts::parse(rest).ok_or_else(malformed)?;
            let local = match parts.user {
                Some(user) => Some(escape_localpart(
                    &percent_decode(user).ok_or_else(malformed)?,
                )),
                None => None,
            };
            let resource = match parts.gr {
                Some(gr) => Some(percent_decode(gr).ok_or_else(malformed)?),
                None => None,
            };
            Ok(Jid::new(local.as_deref(), parts.host, resource.as_deref())?)
        }
        _ => Err(InterworkError::UnsupportedScheme(uri.to_owned())),
    }
}

/// `[//authority/]node@domain/resource[?query][#fragment]`, percent-decoded.
fn xmpp_uri_to_jid(rest: &str) -> Option<Result<Jid, InterworkError>> {
    let rest = match rest.strip_prefix("//") {
        // An authority names the account to act as, not the target.
        Some(auth) => &auth[auth.find('/')? + 1..],
        None => rest,
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let decoded = percent_decode(&rest[..end])?;
    Some(Jid::parse(&decoded).map_err(InterworkError::from))
}

/// The pieces of a SIP URI after the scheme that matter for a JID.
struct SipParts<'a> {
    user: Option<&'a str>,
    host: &'a str,
    gr: Option<&'a str>,
}

impl<'a> SipParts<'a> {
    fn parse(rest: &'a str) -> Option<Self> {
        let rest = rest.split('?').next()?;
        let (userinfo, hostpart) = match rest.rfind('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let user = match userinfo {
            // A password follows the first colon; the user part has none unescaped.
            Some(u) => Some(u.split(':').next()?).filter(|u| !u.is_empty()),
            None => None,
        };
        if userinfo.is_some() && user.is_none() {
            return None;
        }
        let mut pieces = hostpart.split(';');
        let hostport = pieces.next()?;
        let host = if hostport.starts_with('[') {
            &hostport[..=hostport.find(']')?]
        } else {
            hostport.split(':').next()?
        };
        if host.is_empty() {
            return None;
        }
        let gr = pieces.find_map(|p| {
            let (name, value) = p.split_once('=')?;
            name.eq_ignore_ascii_case("gr").then_some(value)
        });
        Some(Self { user, host, gr })
    }
}

/// The domain in ASCII; IP literals as they are.
fn ascii_host(domain: &str) -> Result<String, InterworkError> {
    if domain.starts_with('[') || domain.is_ascii() {
        return Ok(domain.to_owned());
    }
    Uts46::new()
        .to_ascii(
            domain.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
            DnsLength::Ignore,
        )
        .map(|a| a.into_owned())
        .map_err(|_| InterworkError::MalformedUri(domain.to_owned()))
}

/// RFC 3261 `unreserved` (alphanumerics and `mark`).
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

/// Bytes written as they are in a SIP user part: `unreserved` and the
/// `user-unreserved` characters other than `;` and `?` (which some parsers split on).
fn is_sip_user_char(b: u8) -> bool {
    is_unreserved(b) || b"&=+$,/".contains(&b)
}

/// Bytes written as they are in a SIP URI parameter value (`paramchar`).
fn is_sip_param_char(b: u8) -> bool {
    is_unreserved(b) || b"[]/:&+$".contains(&b)
}

/// RFC 5122 `nodeallow` and `unreserved`.
fn is_xmpp_node_char(b: u8) -> bool {
    (b.is_ascii_alphanumeric() || b"-._~".contains(&b)) || b"!$()*+,;=".contains(&b)
}

/// RFC 5122 `resallow` and `unreserved`.
fn is_xmpp_resource_char(b: u8) -> bool {
    (b.is_ascii_alphanumeric() || b"-._~".contains(&b)) || b"!$&'()*+,:;=@".contains(&b)
}

fn percent_encode(out: &mut String, s: &str, keep: fn(u8) -> bool) {
    for b in s.bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// Percent-decodes to UTF-8; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(s.len());
    let mut iter = s.bytes();
    while let Some(b) = iter.next() {
        if b == b'%' {
            let hi = char::from(iter.next()?).to_digit(16)?;
            let lo = char::from(iter.next()?).to_digit(16)?;
            bytes.push(u8::try_from(hi * 16 + lo).ok()?);
        } else {
            bytes.push(b);
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn jid(s: &str) -> Jid {
        Jid::parse(s).unwrap()
    }

    #[test]
    fn plain_addresses() {
        let j = jid("juliet@example.com");
        assert_eq!(jid_to_sip_uri(&j).unwrap(), "sip:juliet@example.com");
        assert_eq!(jid_to_xmpp_uri(&j).unwrap(), "xmpp:juliet@example.com");
        for uri in [
            "sip:juliet@example.com",
            "SIP:juliet@example.com",
            "sips:juliet@example.com:5061;transport=tls",
            "sip:juliet:secret@example.com",
            "pres:juliet@example.com",
            "im:juliet@example.com",
            "xmpp:juliet@example.com",
            "xmpp://romeo@example.net/juliet@example.com?message",
            "sip:juliet@example.com?Subject=hi",
        ] {
            assert_eq!(uri_to_jid(uri).unwrap(), j, "{uri}");
        }
        assert_eq!(uri_to_jid("sip:example.com").unwrap(), jid("example.com"));
    }

    #[test]
    fn rfc7247_examples() {
        for (jid_text, uri) in [
            ("m\\26m@xmpp.example", "sip:m&m@xmpp.example"),
            ("tsch\u{fc}ss@xmpp.example", "sip:tsch%C3%BCss@xmpp.example"),
            ("baz@xmpp.example/qux", "sip:baz@xmpp.example;gr=qux"),
        ] {
            assert_eq!(jid_to_sip_uri(&jid(jid_text)).unwrap(), uri);
        }
        for (uri, jid_text) in [
            ("sip:f%C3%BC@sip.example", "f\u{fc}@sip.example"),
            ("sip:o'malley@sip.example", "o\\27malley@sip.example"),
            ("sip:foo@sip.example;gr=bar", "foo@sip.example/bar"),
        ] {
            assert_eq!(uri_to_jid(uri).unwrap(), jid(jid_text));
        }
    }

    #[test]
    fn resources_are_gruus() {
        let j = jid("juliet@example.com/balcony phone");
        let uri = jid_to_sip_uri(&j).unwrap();
        assert_eq!(uri, "sip:juliet@example.com;gr=balcony%20phone");
        assert_eq!(uri_to_jid(&uri).unwrap(), j);
        assert_eq!(
            uri_to_jid("sip:juliet@example.com;lr;GR=urn:uuid:f81d4fae").unwrap(),
            jid("juliet@example.com/urn:uuid:f81d4fae")
        );
        assert_eq!(
            jid_to_xmpp_uri(&j).unwrap(),
            "xmpp:juliet@example.com/balcony%20phone"
        );
        assert_eq!(uri_to_jid(&jid_to_xmpp_uri(&j).unwrap()).unwrap(), j);
    }

    #[test]
    fn characters_a_localpart_cannot_hold_are_escaped() {
        for (sip_user, local) in [
            ("d'artagnan", "d\\27artagnan"),
            ("tom&jerry", "tom\\26jerry"),
            ("a/b", "a\\2fb"),
            ("a%3Ab", "a\\3ab"),
            ("a%40b", "a\\40b"),
            ("a%20b", "a\\20b"),
            ("%22q%22", "\\22q\\22"),
            ("%3Ctag%3E", "\\3ctag\\3e"),
            ("back%5Cslash", "back\\slash"),
            ("esc%5C20", "esc\\5c20"),
        ] {
            let uri = format!("sip:{sip_user}@example.com");
            let j = uri_to_jid(&uri).unwrap();
            assert_eq!(j.local(), Some(local), "{uri}");
            assert_eq!(jid_to_sip_uri(&j).unwrap(), uri, "{local}");
        }
    }

    #[test]
    fn non_ascii_and_case() {
        let j = uri_to_jid("sip:%C3%A9lise@xn--bcher-kva.example").unwrap();
        assert_eq!(j.to_string(), "élise@bücher.example");
        assert_eq!(
            jid_to_sip_uri(&j).unwrap(),
            "sip:%C3%A9lise@xn--bcher-kva.example"
        );
        assert_eq!(uri_to_jid("sip:élise@bücher.example").unwrap(), j);
        assert_eq!(
            uri_to_jid("sip:Alice@Example.COM").unwrap(),
            jid("alice@example.com"),
            "lossy: case folded"
        );
        let v6 = jid("alice@[::1]");
        assert_eq!(jid_to_sip_uri(&v6).unwrap(), "sip:alice@[::1]");
        assert_eq!(uri_to_jid("sip:alice@[::1]:5060").unwrap(), v6);
    }

    #[test]
    fn sips_targets_are_flagged() {
        assert!(requires_secure_hops("sips:juliet@example.com"));
        assert!(requires_secure_hops(" SIPS:juliet@example.com"));
        assert!(!requires_secure_hops("sip:juliet@example.com"));
        assert!(!requires_secure_hops("xmpp:juliet@example.com"));
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            uri_to_jid("tel:+15551234"),
            Err(InterworkError::UnsupportedScheme(_))
        ));
        for bad in [
            "sip:",
            "sip:@example.com",
            "sip:a%zz@example.com",
            "sip:a%FF@example.com",
            "nocolon",
        ] {
            assert!(
                matches!(uri_to_jid(bad), Err(InterworkError::MalformedUri(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            uri_to_jid("sip:a@exa mple.com"),
            Err(InterworkError::Jid(_))
        ));
    }

    proptest! {
        #[test]
        fn escaping_round_trips(s in "[a-z \"&'/:<>@\\\\0-9]{0,16}") {
            prop_assert_eq!(unescape_localpart(&escape_localpart(&s)), s);
        }

        #[test]
        fn sip_users_round_trip_through_jids(user in "[a-z0-9 \"&'/:<>@\\\\%é.+_-]{1,16}") {
            let mut uri = String::from("sip:");
            percent_encode(&mut uri, &user, is_sip_user_char);
            uri.push_str("@example.com");
            if let Ok(j) = uri_to_jid(&uri) {
                prop_assert_eq!(jid_to_sip_uri(&j).unwrap(), uri);
            }
        }

        #[test]
        fn jids_round_trip_through_sip_uris(local in "[a-z0-9\\\\.é-]{1,12}", res in proptest::option::of("\\PC{1,10}")) {
            let text = match &res {
                Some(r) => format!("{local}@example.com/{r}"),
                None => format!("{local}@example.com"),
            };
            if let Ok(j) = Jid::parse(&text) {
                // Only localparts in XEP-0106's canonical form can come back the same.
                let l = j.local().unwrap_or_default();
                prop_assume!(escape_localpart(&unescape_localpart(l)) == l);
                prop_assert_eq!(uri_to_jid(&jid_to_sip_uri(&j).unwrap()).unwrap(), j.clone());
                prop_assert_eq!(uri_to_jid(&jid_to_xmpp_uri(&j).unwrap()).unwrap(), j);
            }
        }
    }
}
