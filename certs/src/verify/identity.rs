//! Which XMPP server domains a certificate is valid for: RFC 6125 §6 as
//! profiled for XMPP servers by RFC 6120 §13.7.1.2 and RFC 7590 §3.
//!
//! For a domain `D` the reference identifiers are the DNS-ID `D`, the SRV-ID
//! `_xmpp-server.D` and the XmppAddr `D`. Only subjectAltName entries count:
//! there is no fallback to the subject's common name.

use std::fmt;

use crate::der::{general_names, other_name, GENERAL_NAME_DNS, GENERAL_NAME_OTHER};

/// id-on-xmppAddr, 1.3.6.1.5.5.7.8.5 (RFC 6120 §13.7.1.4).
const ID_ON_XMPP_ADDR: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x05];
/// id-on-dnsSRV, 1.3.6.1.5.5.7.8.7 (RFC 4985).
const ID_ON_DNS_SRV: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x07];
const UTF8_STRING: u8 = 0x0c;
const IA5_STRING: u8 = 0x16;
/// The service label of the SRV-ID for XMPP server-to-server.
const XMPP_SERVER_SERVICE: &str = "_xmpp-server";
/// More names than this in one certificate are not listed (nor matched):
/// the report stays bounded whatever a peer sends.
pub const MAX_PRESENTED_IDS: usize = 256;

/// An identifier the certificate presents in its subjectAltName extension,
/// as far as XMPP server authentication is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PresentedId {
    /// A dNSName entry, as written in the certificate (ASCII, possibly a
    /// `*.parent` wildcard).
    DnsName(String),
    /// An SRVName otherName entry, split into its service label (with its
    /// underscore, e.g. `_xmpp-server`) and name.
    SrvName {
        /// The service label, e.g. `_xmpp-server` or `_xmpp-client`.
        service: String,
        /// The domain the service is offered for.
        name: String,
    },
    /// An XmppAddr otherName entry (a JID; for a server, its domain).
    XmppAddr(String),
    /// An entry of one of the above kinds that could not be used: not
    /// ASCII where it must be, wrong string type, malformed SRVName...
    Unusable {
        /// Which kind of entry it claimed to be.
        kind: &'static str,
        /// Why it was not used.
        reason: &'static str,
    },
}

impl fmt::Display for PresentedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DnsName(name) => write!(f, "DNS-ID {name}"),
            Self::SrvName { service, name } => write!(f, "SRV-ID {service}.{name}"),
            Self::XmppAddr(jid) => write!(f, "XmppAddr {jid}"),
            Self::Unusable { kind, reason } => write!(f, "unusable {kind} ({reason})"),
        }
    }
}

/// Which kind of reference identifier matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdentityKind {
    /// An SRV-ID `_xmpp-server.D`.
    SrvId,
    /// An XmppAddr equal to `D`.
    XmppAddr,
    /// A DNS-ID equal to `D`.
    DnsId,
    /// A DNS-ID `*.parent` where `D` is one label followed by `parent`.
    WildcardDnsId,
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SrvId => "SRV-ID",
            Self::XmppAddr => "XmppAddr",
            Self::DnsId => "DNS-ID",
            Self::WildcardDnsId => "wildcard DNS-ID",
        })
    }
}

/// Whether a certificate is valid for a domain, and what it presents.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct IdentityCheck {
    /// The best kind of identifier that matched the domain, if any: an
    /// SRV-ID before an XmppAddr before an exact DNS-ID before a wildcard.
    pub matched: Option<IdentityKind>,
    /// Every identifier the certificate presents (at most
    /// [`MAX_PRESENTED_IDS`]), for logs and diagnostics.
    pub names: Vec<PresentedId>,
    /// Why the certificate's names could not be read at all (malformed
    /// DER); `names` is then empty and nothing matched.
    pub unreadable: Option<&'static str>,
}

impl IdentityCheck {
    /// Whether some identifier matched.
    pub fn is_match(&self) -> bool {
        self.matched.is_some()
    }

    /// The presented identifiers as text, e.g. for an error message.
    pub fn describe_names(&self) -> Vec<String> {
        self.names.iter().map(ToString::to_string).collect()
    }
}

/// The identifiers the certificate `cert_der` presents (subjectAltName
/// dNSName, SRVName and XmppAddr entries; other entries are skipped).
/// Fails only when the certificate's DER cannot be followed.
pub fn presented_ids(cert_der: &[u8]) -> Result<Vec<PresentedId>, &'static str> {
    let mut ids = Vec::new();
    for (tag, value) in general_names(cert_der)? {
        if ids.len() == MAX_PRESENTED_IDS {
            break;
        }
        match tag {
            GENERAL_NAME_DNS => ids.push(match ascii(value) {
                Some(name) => PresentedId::DnsName(name.to_owned()),
                None => unusable("DNS-ID", "not ASCII"),
            }),
            GENERAL_NAME_OTHER => {
                if let Some(id) = read_other_name(value) {
                    ids.push(id);
                }
            }
            _ => {}
        }
    }
    Ok(ids)
}

fn read_other_name(value: &[u8]) -> Option<PresentedId> {
    let Ok((oid, tag, content)) = other_name(value) else {
        return Some(unusable("otherName", "malformed"));
    };
    if oid == ID_ON_XMPP_ADDR {
        return Some(match (tag, std::str::from_utf8(content)) {
            (UTF8_STRING, Ok(jid)) => PresentedId::XmppAddr(jid.to_owned()),
            (UTF8_STRING, Err(_)) => unusable("XmppAddr", "invalid UTF-8"),
            _ => unusable("XmppAddr", "not a UTF8String"),
        });
    }
    if oid == ID_ON_DNS_SRV {
        if tag != IA5_STRING {
            return Some(unusable("SRV-ID", "not an IA5String"));
        }
        let Some(text) = ascii(content) else {
            return Some(unusable("SRV-ID", "not ASCII"));
        };
        return Some(match text.split_once('.') {
            Some((service, name))
                if service.len() > 1 && service.starts_with('_') && !name.is_empty() =>
            {
                PresentedId::SrvName {
                    service: service.to_owned(),
                    name: name.to_owned(),
                }
            }
            _ => unusable("SRV-ID", "not of the form _service.name"),
        });
    }
    None
}

fn ascii(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok().filter(|s| s.is_ascii())
}

fn unusable(kind: &'static str, reason: &'static str) -> PresentedId {
    PresentedId::Unusable { kind, reason }
}

/// Checks whether the certificate `cert_der` is valid for the XMPP server
/// domain `domain` (DNS-ID, SRV-ID `_xmpp-server.domain` or XmppAddr; no
/// common-name fallback). `domain` is compared case-insensitively (ASCII)
/// and without a trailing dot; pass an internationalized domain in its
/// A-label form, as DNS-IDs and SRV-IDs carry it.
pub fn check_identity(cert_der: &[u8], domain: &str) -> IdentityCheck {
    match presented_ids(cert_der) {
        Ok(names) => IdentityCheck {
            matched: best_match(&names, domain),
            names,
            unreadable: None,
        },
        Err(reason) => IdentityCheck {
            matched: None,
            names: Vec::new(),
            unreadable: Some(reason),
        },
    }
}

/// The best kind of identifier among `names` that matches `domain`.
pub(crate) fn best_match(names: &[PresentedId], domain: &str) -> Option<IdentityKind> {
    let reference = normalize(domain)?;
    let kinds = names.iter().filter_map(|id| id_matches(id, &reference));
    // The enum's order is the order of preference.
    kinds.min_by_key(|kind| *kind as u8)
}

/// A reference domain, lower-cased and without its trailing dot, if it is
/// usable at all (non-empty, no empty label, no wildcard).
fn normalize(domain: &str) -> Option<String> {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    let usable = !domain.is_empty()
        && !domain.contains('*')
        && domain.split('.').all(|label| !label.is_empty());
    usable.then(|| domain.to_ascii_lowercase())
}

fn id_matches(id: &PresentedId, reference: &str) -> Option<IdentityKind> {
    match id {
        PresentedId::DnsName(pattern) => dns_id_matches(pattern, reference),
        PresentedId::SrvName { service, name } => {
            (service.eq_ignore_ascii_case(XMPP_SERVER_SERVICE) && presented_eq(name, reference))
                .then_some(IdentityKind::SrvId)
        }
        PresentedId::XmppAddr(jid) => {
            presented_eq(jid, reference).then_some(IdentityKind::XmppAddr)
        }
        PresentedId::Unusable { .. } => None,
    }
}

/// Whether a presented name (no wildcard allowed) equals the reference:
/// ASCII case-insensitive, one trailing dot tolerated.
fn presented_eq(presented: &str, reference: &str) -> bool {
    let presented = presented.strip_suffix('.').unwrap_or(presented);
    !presented.contains('*') && presented.eq_ignore_ascii_case(reference)
}

/// RFC 6125 §6.4: an exact DNS-ID, or a wildcard `*` that is the complete
/// left-most label, stands for exactly one non-empty label, and sits above
/// at least two labels (`*.example.org`, never `*.org`). Partial-label
/// wildcards (`f*.example.org`, `xn--*.example.org`; §6.4.3 allows refusing
/// them, and RFC 9525 forbids them) never match.
fn dns_id_matches(pattern: &str, reference: &str) -> Option<IdentityKind> {
    let pattern = pattern.strip_suffix('.').unwrap_or(pattern);
    if let Some(parent) = pattern.strip_prefix("*.") {
        let (label, rest) = reference.split_once('.')?;
        let wildcard_ok = !label.is_empty()
            && parent.contains('.')
            && !parent.contains('*')
            && parent.split('.').all(|l| !l.is_empty())
            && rest.eq_ignore_ascii_case(parent);
        return wildcard_ok.then_some(IdentityKind::WildcardDnsId);
    }
    presented_eq(pattern, reference).then_some(IdentityKind::DnsId)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(name: &str) -> PresentedId {
        PresentedId::DnsName(name.to_owned())
    }

    fn srv(service: &str, name: &str) -> PresentedId {
        PresentedId::SrvName {
            service: service.to_owned(),
            name: name.to_owned(),
        }
    }

    #[test]
    fn exact_dns_id_is_case_insensitive_and_ignores_trailing_dots() {
        let names = [dns("Example.ORG")];
        assert_eq!(best_match(&names, "example.org"), Some(IdentityKind::DnsId));
        assert_eq!(
            best_match(&names, "EXAMPLE.org."),
            Some(IdentityKind::DnsId)
        );
        assert_eq!(best_match(&names, "example.net"), None);
        assert_eq!(best_match(&names, "sub.example.org"), None);
    }

    #[test]
    fn wildcards_cover_exactly_one_whole_left_most_label() {
        let names = [dns("*.example.org")];
        let wild = Some(IdentityKind::WildcardDnsId);
        assert_eq!(best_match(&names, "chat.example.org"), wild);
        assert_eq!(best_match(&names, "xn--bcher-kva.example.org"), wild);
        assert_eq!(best_match(&names, "example.org"), None);
        assert_eq!(best_match(&names, "a.b.example.org"), None);
        assert_eq!(best_match(&names, ".example.org"), None);
        for pattern in [
            "f*.example.org",
            "*oo.example.org",
            "xn--*.example.org",
            "a.*.example.org",
            "*.org",
            "*.*.example.org",
            "*",
        ] {
            let names = [dns(pattern)];
            for domain in ["foo.example.org", "xn--x.example.org", "a.b.example.org"] {
                assert_eq!(best_match(&names, domain), None, "{pattern} vs {domain}");
            }
        }
        assert_eq!(best_match(&[dns("*.org")], "example.org"), None);
    }

    #[test]
    fn wildcards_apply_to_dns_ids_only() {
        assert_eq!(
            best_match(&[srv("_xmpp-server", "*.example.org")], "a.example.org"),
            None
        );
        assert_eq!(
            best_match(
                &[PresentedId::XmppAddr("*.example.org".into())],
                "a.example.org"
            ),
            None
        );
        // A reference identifier is never a pattern.
        assert_eq!(best_match(&[dns("*.example.org")], "*.example.org"), None);
    }

    #[test]
    fn srv_id_needs_the_xmpp_server_service() {
        assert_eq!(
            best_match(&[srv("_XMPP-Server", "Example.org")], "example.org"),
            Some(IdentityKind::SrvId)
        );
        assert_eq!(
            best_match(&[srv("_xmpp-client", "example.org")], "example.org"),
            None
        );
    }

    #[test]
    fn xmpp_addr_must_equal_the_domain() {
        let names = [PresentedId::XmppAddr("example.org".into())];
        assert_eq!(
            best_match(&names, "example.org"),
            Some(IdentityKind::XmppAddr)
        );
        let user = [PresentedId::XmppAddr("juliet@example.org".into())];
        assert_eq!(best_match(&user, "example.org"), None);
    }

    #[test]
    fn the_most_specific_kind_is_reported() {
        let names = [
            dns("*.example.org"),
            dns("chat.example.org"),
            PresentedId::XmppAddr("chat.example.org".into()),
            srv("_xmpp-server", "chat.example.org"),
        ];
        assert_eq!(
            best_match(&names, "chat.example.org"),
            Some(IdentityKind::SrvId)
        );
        assert_eq!(
            best_match(&names[..3], "chat.example.org"),
            Some(IdentityKind::XmppAddr)
        );
        assert_eq!(
            best_match(&names[..2], "chat.example.org"),
            Some(IdentityKind::DnsId)
        );
    }

    #[test]
    fn unusable_references_match_nothing() {
        let names = [dns("example.org")];
        for domain in ["", ".", "example..org", ".example.org"] {
            assert_eq!(best_match(&names, domain), None, "{domain:?}");
        }
    }

    #[test]
    fn other_names_are_decoded() {
        // otherName content: OID id-on-dnsSRV, [0] { IA5String "_xmpp-server.example.org" }
        let value = b"_xmpp-server.example.org";
        let mut content = vec![0x06, 8];
        content.extend_from_slice(ID_ON_DNS_SRV);
        content.extend_from_slice(&[0xa0, value.len() as u8 + 2, IA5_STRING, value.len() as u8]);
        content.extend_from_slice(value);
        assert_eq!(
            read_other_name(&content),
            Some(srv("_xmpp-server", "example.org"))
        );
        // The same with a UTF8String is refused.
        let utf8 = content.iter().position(|b| *b == IA5_STRING).expect("tag");
        content[utf8] = UTF8_STRING;
        assert_eq!(
            read_other_name(&content),
            Some(unusable("SRV-ID", "not an IA5String"))
        );
        // Unknown otherName types are skipped; garbage is reported.
        assert_eq!(read_other_name(&[0x06, 1, 0x2a, 0xa0, 2, 0x0c, 0]), None);
        assert_eq!(
            read_other_name(&[0x06, 1]),
            Some(unusable("otherName", "malformed"))
        );
    }
}
