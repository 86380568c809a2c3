//! XMPP addresses (JIDs) as defined by RFC 7622.
//!
//! A [`Jid`] is always stored in its normalized form:
//!
//! * the localpart is enforced with the PRECIS `UsernameCaseMapped` profile (RFC 8265)
//!   and may not contain any of the characters RFC 7622 §3.3.1 forbids
//!   (`"` `&` `'` `/` `:` `<` `>` `@`);
//! * the domainpart loses one trailing dot, goes through UTS #46 / IDNA processing and is
//!   kept as lowercase Unicode (U-labels); IPv4 literals and bracketed IPv6 literals are
//!   accepted and kept in their canonical textual form;
//! * the resourcepart is enforced with the PRECIS `OpaqueString` profile.
//!
//! Each part is at most 1023 bytes long once normalized. Two `Jid`s are equal exactly when
//! their normalized forms are equal, so the derived `Eq`, `Hash` and `Ord` implement JID
//! comparison.
//!
//! Known deviation: RFC 7622 §3.5 lists `juliet@example.com/ foo` (leading space in the
//! resourcepart) as invalid, but no rule of RFC 7622 or of the `OpaqueString` profile
//! forbids it, so it is accepted, as most implementations do.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use precis_profiles::precis_core::profile::PrecisFastInvocation;
use precis_profiles::precis_core::Error as PrecisError;
use precis_profiles::{OpaqueString, UsernameCaseMapped};

/// Maximum length in bytes of each part of a JID (RFC 7622 §3.2, §3.3, §3.4).
pub const MAX_PART_LEN: usize = 1023;

/// Maximum length in bytes of one DNS label (RFC 1035 §2.3.4), checked on the ASCII form.
const MAX_LABEL_LEN: usize = 63;

/// Characters RFC 7622 §3.3.1 forbids in a localpart on top of the PRECIS profile.
const LOCAL_FORBIDDEN: &[char] = &['"', '&', '\'', '/', ':', '<', '>', '@'];

/// Why a string is not a valid JID or JID part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JidError {
    /// The JID, or its domainpart, is empty.
    #[error("the JID or its domainpart is empty")]
    Empty,
    /// An `@` is present but the localpart before it is empty.
    #[error("the localpart is empty")]
    EmptyLocal,
    /// A `/` is present but the resourcepart after it is empty.
    #[error("the resourcepart is empty")]
    EmptyResource,
    /// The normalized localpart is longer than 1023 bytes.
    #[error("the localpart is longer than 1023 bytes")]
    LocalTooLong,
    /// The normalized domainpart is longer than 1023 bytes.
    #[error("the domainpart is longer than 1023 bytes")]
    DomainTooLong,
    /// The normalized resourcepart is longer than 1023 bytes.
    #[error("the resourcepart is longer than 1023 bytes")]
    ResourceTooLong,
    /// The localpart violates the UsernameCaseMapped profile or RFC 7622 §3.3.1.
    #[error("the localpart contains disallowed characters")]
    InvalidLocal,
    /// The domainpart is neither a valid domain name nor an IP literal.
    #[error("the domainpart is not a valid domain name or IP literal")]
    InvalidDomain,
    /// The resourcepart violates the OpaqueString profile.
    #[error("the resourcepart contains disallowed characters")]
    InvalidResource,
}

/// A normalized XMPP address: `[localpart@]domainpart[/resourcepart]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Jid {
    local: Option<String>,
    domain: String,
    resource: Option<String>,
}

impl Jid {
    /// Parses and normalizes a JID string following RFC 7622 §3.1: the resourcepart is
    /// everything after the first `/`, the localpart everything before the first `@` of
    /// what remains, and the rest is the domainpart.
    pub fn parse(s: &str) -> Result<Self, JidError> {
        if s.is_empty() {
            return Err(JidError::Empty);
        }
        let (rest, resource) = match s.split_once('/') {
            Some((rest, res)) => (rest, Some(res)),
            None => (s, None),
        };
        let (local, domain) = match rest.split_once('@') {
            Some((local, domain)) => (Some(local), domain),
            None => (None, rest),
        };
        Self::new(local, domain, resource)
    }

    /// Builds a JID from its parts, applying the same checks and normalization as
    /// [`Jid::parse`]. `Some("")` for the localpart or resourcepart is an error.
    pub fn new(
        local: Option<&str>,
        domain: &str,
        resource: Option<&str>,
    ) -> Result<Self, JidError> {
        let local = local.map(nodeprep).transpose()?;
        let domain = domainprep(domain)?;
        let resource = resource.map(resourceprep).transpose()?;
        Ok(Self {
            local,
            domain,
            resource,
        })
    }

    /// Builds a JID made of a domainpart only (a server or component address).
    pub fn domain_jid(domain: &str) -> Result<Self, JidError> {
        Self::new(None, domain, None)
    }

    /// The normalized localpart, if any.
    pub fn local(&self) -> Option<&str> {
        self.local.as_deref()
    }

    /// The normalized domainpart.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The normalized resourcepart, if any.
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// This JID without its resourcepart.
    pub fn bare(&self) -> Self {
        Self {
            local: self.local.clone(),
            domain: self.domain.clone(),
            resource: None,
        }
    }

    /// Whether this JID has no resourcepart.
    pub fn is_bare(&self) -> bool {
        self.resource.is_none()
    }

    /// Whether this JID has a resourcepart.
    pub fn is_full(&self) -> bool {
        self.resource.is_some()
    }

    /// This JID's bare part with the given resourcepart (normalized) attached.
    pub fn with_resource(&self, res: &str) -> Result<Self, JidError> {
        let resource = resourceprep(res)?;
        Ok(Self {
            local: self.local.clone(),
            domain: self.domain.clone(),
            resource: Some(resource),
        })
    }

    /// Whether this JID is a bare domain: no localpart and no resourcepart.
    pub fn is_domain(&self) -> bool {
        self.local.is_none() && self.resource.is_none()
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(local) = &self.local {
            f.write_str(local)?;
            f.write_str("@")?;
        }
        f.write_str(&self.domain)?;
        if let Some(resource) = &self.resource {
            f.write_str("/")?;
            f.write_str(resource)?;
        }
        Ok(())
    }
}

impl FromStr for Jid {
    type Err = JidError;

    fn from_str(s: &str) -> Result<Self, JidError> {
        Self::parse(s)
    }
}

/// Applies a PRECIS enforcement function until its output is stable (RFC 8264 §7),
/// rejecting strings that do not stabilize after a few rounds.
fn enforce_stable(
    s: &str,
    enforce: fn(&str) -> Result<Cow<'_, str>, PrecisError>,
) -> Option<String> {
    let mut current = enforce(s).ok()?.into_owned();
    for _ in 0..3 {
        let next = enforce(&current).ok()?;
        if next == current {
            return Some(current);
        }
        current = next.into_owned();
    }
    None
}

fn enforce_username(s: &str) -> Result<Cow<'_, str>, PrecisError> {
    <UsernameCaseMapped as PrecisFastInvocation>::enforce(s)
}

fn enforce_opaque(s: &str) -> Result<Cow<'_, str>, PrecisError> {
    <OpaqueString as PrecisFastInvocation>::enforce(s)
}

/// Printable ASCII other than space (U+0021 to U+007E): every such character is valid
/// in the PRECIS IdentifierClass and FreeformClass and left alone by their width and
/// normalization rules, so a string made only of them needs no PRECIS pass beyond the
/// case mapping the profile asks for.
fn is_plain_ascii(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

/// Normalizes a localpart (UsernameCaseMapped plus the RFC 7622 §3.3.1 restrictions).
/// Used for JID parsing and for usernames at account creation.
pub fn nodeprep(local: &str) -> Result<String, JidError> {
    if local.is_empty() {
        return Err(JidError::EmptyLocal);
    }
    // Fast path: already-normalized ASCII (what nearly every address on the wire is)
    // comes out of the profile unchanged.
    if local.len() <= MAX_PART_LEN
        && local
            .bytes()
            .all(|b| is_plain_ascii(b) && !b.is_ascii_uppercase())
        && !local.contains(LOCAL_FORBIDDEN)
    {
        return Ok(local.to_owned());
    }
    nodeprep_precis(local)
}

/// [`nodeprep`] through the PRECIS profile, always.
fn nodeprep_precis(local: &str) -> Result<String, JidError> {
    if local.is_empty() {
        return Err(JidError::EmptyLocal);
    }
    let out = enforce_stable(local, enforce_username).ok_or(JidError::InvalidLocal)?;
    if out.contains(LOCAL_FORBIDDEN) {
        return Err(JidError::InvalidLocal);
    }
    if out.len() > MAX_PART_LEN {
        return Err(JidError::LocalTooLong);
    }
    Ok(out)
}

/// Normalizes a resourcepart (OpaqueString profile).
pub fn resourceprep(res: &str) -> Result<String, JidError> {
    // Fast path: printable ASCII without spaces is its own OpaqueString form.
    if !res.is_empty() && res.len() <= MAX_PART_LEN && res.bytes().all(is_plain_ascii) {
        return Ok(res.to_owned());
    }
    resourceprep_precis(res)
}

/// [`resourceprep`] through the PRECIS profile, always.
fn resourceprep_precis(res: &str) -> Result<String, JidError> {
    if res.is_empty() {
        return Err(JidError::EmptyResource);
    }
    let out = enforce_stable(res, enforce_opaque).ok_or(JidError::InvalidResource)?;
    if out.len() > MAX_PART_LEN {
        return Err(JidError::ResourceTooLong);
    }
    Ok(out)
}

/// Normalizes a domainpart: strips one trailing dot, accepts IPv4 and bracketed IPv6
/// literals (canonicalized), otherwise applies UTS #46 processing with the STD3 ASCII
/// rules and returns the lowercase Unicode form.
pub fn domainprep(domain: &str) -> Result<String, JidError> {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_empty() {
        return Err(JidError::Empty);
    }
    if let Some(inner) = domain.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or(JidError::InvalidDomain)?;
        let addr: Ipv6Addr = inner.parse().map_err(|_| JidError::InvalidDomain)?;
        return Ok(format!("[{addr}]"));
    }
    if let Ok(addr) = domain.parse::<Ipv4Addr>() {
        return Ok(addr.to_string());
    }
    // Fast path: lowercase LDH labels (no A-labels, which must be decoded) are what
    // UTS #46 returns for them.
    if domain.len() <= MAX_PART_LEN && domain.split('.').all(is_plain_ldh_label) {
        return Ok(domain.to_owned());
    }
    domainprep_uts46(domain)
}

/// A label of lowercase letters, digits and inner hyphens, 1 to 63 bytes, not an A-label.
fn is_plain_ldh_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL_LEN
        && !label.starts_with('-')
        && !label.ends_with('-')
        && !label.starts_with("xn--")
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The UTS #46 part of [`domainprep`] (after the trailing dot and IP literals).
fn domainprep_uts46(domain: &str) -> Result<String, JidError> {
    let uts46 = Uts46::new();
    let ascii = uts46
        .to_ascii(
            domain.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
            DnsLength::Ignore,
        )
        .map_err(|_| JidError::InvalidDomain)?;
    let (unicode, result) = uts46.to_unicode(
        ascii.as_bytes(),
        AsciiDenyList::STD3,
        Hyphens::CheckFirstLast,
    );
    if result.is_err() {
        return Err(JidError::InvalidDomain);
    }
    // The stored (Unicode) form must map back to the same ASCII form, or a JID would
    // not survive being written out and read again (e.g. an A-label that decodes to a
    // label which itself starts with "xn--").
    let round_trip = uts46.to_ascii(
        unicode.as_bytes(),
        AsciiDenyList::STD3,
        Hyphens::CheckFirstLast,
        DnsLength::Ignore,
    );
    if round_trip.ok().as_deref() != Some(ascii.as_ref()) {
        return Err(JidError::InvalidDomain);
    }
    if unicode.len() > MAX_PART_LEN {
        return Err(JidError::DomainTooLong);
    }
    if ascii
        .split('.')
        .any(|label| label.is_empty() || label.len() > MAX_LABEL_LEN)
    {
        return Err(JidError::InvalidDomain);
    }
    Ok(unicode.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &str) -> (Option<String>, String, Option<String>) {
        let j = Jid::parse(s).unwrap_or_else(|e| panic!("{s:?} should be valid: {e}"));
        (
            j.local().map(str::to_owned),
            j.domain().to_owned(),
            j.resource().map(str::to_owned),
        )
    }

    fn p(l: Option<&str>, d: &str, r: Option<&str>) -> (Option<String>, String, Option<String>) {
        (l.map(str::to_owned), d.to_owned(), r.map(str::to_owned))
    }

    proptest::proptest! {
        /// The ASCII fast paths give exactly what the PRECIS and UTS #46 passes give.
        #[test]
        fn fast_paths_agree_with_the_profiles(s in "[ -~]{0,40}") {
            proptest::prop_assert_eq!(nodeprep(&s), nodeprep_precis(&s));
            proptest::prop_assert_eq!(resourceprep(&s), resourceprep_precis(&s));
            let d = s.strip_suffix('.').unwrap_or(&s);
            if !d.is_empty() && !d.starts_with('[') && d.parse::<Ipv4Addr>().is_err() {
                proptest::prop_assert_eq!(domainprep(&s), domainprep_uts46(d));
            }
        }

        #[test]
        fn fast_paths_agree_on_domain_like_strings(s in "[a-z0-9.-]{1,40}") {
            let d = s.strip_suffix('.').unwrap_or(&s);
            if !d.is_empty() && d.parse::<Ipv4Addr>().is_err() {
                proptest::prop_assert_eq!(domainprep(&s), domainprep_uts46(d));
            }
            proptest::prop_assert_eq!(nodeprep(&s), nodeprep_precis(&s));
        }
    }

    #[test]
    fn nested_a_label_is_refused_so_display_reparses() {
        // Found by the jid fuzz target: decodes to a label that starts with "xn--".
        assert_eq!(
            Jid::parse("XN--XN--HHHoHHn-M6M"),
            Err(JidError::InvalidDomain)
        );
    }

    #[test]
    fn rfc7622_valid_examples() {
        assert_eq!(
            parts("juliet@example.com"),
            p(Some("juliet"), "example.com", None)
        );
        assert_eq!(
            parts("juliet@example.com/foo"),
            p(Some("juliet"), "example.com", Some("foo"))
        );
        assert_eq!(
            parts("juliet@example.com/foo bar"),
            p(Some("juliet"), "example.com", Some("foo bar"))
        );
        assert_eq!(
            parts("juliet@example.com/foo@bar"),
            p(Some("juliet"), "example.com", Some("foo@bar"))
        );
        assert_eq!(
            parts("foo\\20bar@example.com"),
            p(Some("foo\\20bar"), "example.com", None)
        );
        assert_eq!(
            parts("fussball@example.com"),
            p(Some("fussball"), "example.com", None)
        );
        assert_eq!(
            parts("fußball@example.com"),
            p(Some("fußball"), "example.com", None)
        );
        assert_eq!(parts("π@example.com"), p(Some("π"), "example.com", None));
        assert_eq!(
            parts("Σ@example.com/foo"),
            p(Some("σ"), "example.com", Some("foo"))
        );
        assert_eq!(
            parts("σ@example.com/foo"),
            p(Some("σ"), "example.com", Some("foo"))
        );
        assert_eq!(
            parts("ς@example.com/foo"),
            p(Some("ς"), "example.com", Some("foo"))
        );
        assert_eq!(
            parts("king@example.com/♚"),
            p(Some("king"), "example.com", Some("♚"))
        );
        assert_eq!(parts("example.com"), p(None, "example.com", None));
        assert_eq!(
            parts("example.com/foobar"),
            p(None, "example.com", Some("foobar"))
        );
        assert_eq!(
            parts("a.example.com/b@example.net"),
            p(None, "a.example.com", Some("b@example.net"))
        );
        // Accepted on purpose, see the module documentation.
        assert_eq!(
            parts("juliet@example.com/ foo"),
            p(Some("juliet"), "example.com", Some(" foo"))
        );
    }

    #[test]
    fn rfc7622_invalid_examples() {
        assert_eq!(
            Jid::parse("\"juliet\"@example.com"),
            Err(JidError::InvalidLocal)
        );
        assert_eq!(
            Jid::parse("foo bar@example.com"),
            Err(JidError::InvalidLocal)
        );
        assert_eq!(Jid::parse("@example.com/"), Err(JidError::EmptyLocal));
        assert_eq!(
            Jid::parse("henryⅣ@example.com"),
            Err(JidError::InvalidLocal)
        );
        assert_eq!(Jid::parse("♚@example.com"), Err(JidError::InvalidLocal));
        assert_eq!(Jid::parse("juliet@"), Err(JidError::Empty));
        assert_eq!(Jid::parse("/foobar"), Err(JidError::Empty));
        assert_eq!(
            Jid::parse("juliet@@example.com"),
            Err(JidError::InvalidDomain)
        );
    }
}
