//! Just enough DER reading to list the subjectAltName entries of an X.509
//! certificate. Signature and structure validation are rustls/webpki's job;
//! this only extracts names, and refuses anything it cannot follow.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const SEQUENCE: u8 = 0x30;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const OBJECT_IDENTIFIER: u8 = 0x06;
/// `[3] EXPLICIT Extensions` inside `TBSCertificate`.
const EXTENSIONS: u8 = 0xa3;
/// id-ce-subjectAltName, 2.5.29.17.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
/// `GeneralName` choices (implicit, primitive).
pub(crate) const GENERAL_NAME_DNS: u8 = 0x82;
const GENERAL_NAME_IP: u8 = 0x87;
/// `GeneralName` choice `otherName` (`[0]`, constructed).
pub(crate) const GENERAL_NAME_OTHER: u8 = 0xa0;
/// `[0] EXPLICIT` around an otherName's value.
const OTHER_NAME_VALUE: u8 = 0xa0;

/// A cursor over a sequence of DER TLVs.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads the next TLV, returning its tag and value.
    fn next_tlv(&mut self) -> Result<(u8, &'a [u8]), &'static str> {
        let (&tag, rest) = self.0.split_first().ok_or("truncated DER")?;
        if tag & 0x1f == 0x1f {
            return Err("unsupported multi-byte DER tag");
        }
        let (&first, mut rest) = rest.split_first().ok_or("truncated DER")?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return Err("unsupported DER length");
            }
            let (len_bytes, after) = rest.split_at(count);
            rest = after;
            len_bytes
                .iter()
                .fold(0usize, |acc, byte| (acc << 8) | usize::from(*byte))
        };
        if rest.len() < len {
            return Err("truncated DER");
        }
        let (value, after) = rest.split_at(len);
        self.0 = after;
        Ok((tag, value))
    }

    /// Reads the next TLV, which must carry `tag`.
    fn expect(&mut self, tag: u8) -> Result<&'a [u8], &'static str> {
        match self.next_tlv()? {
            (found, value) if found == tag => Ok(value),
            _ => Err("unexpected DER structure"),
        }
    }
}

/// The raw `GeneralName` entries of the certificate's subjectAltName
/// extension, as `(tag, value)` pairs in certificate order; empty when the
/// certificate has no such extension. A certificate listing the extension
/// twice (RFC 5280 §4.2 forbids it) is refused rather than read either way.
pub(crate) fn general_names(cert_der: &[u8]) -> Result<Vec<(u8, &[u8])>, &'static str> {
    let certificate = Reader(cert_der).expect(SEQUENCE)?;
    let mut tbs = Reader(Reader(certificate).expect(SEQUENCE)?);
    let mut names = Vec::new();
    let mut seen = false;
    while !tbs.is_empty() {
        let (tag, value) = tbs.next_tlv()?;
        if tag != EXTENSIONS {
            continue;
        }
        let mut extensions = Reader(Reader(value).expect(SEQUENCE)?);
        while !extensions.is_empty() {
            let mut extension = Reader(extensions.expect(SEQUENCE)?);
            let oid = extension.expect(OBJECT_IDENTIFIER)?;
            let (mut tag, mut value) = extension.next_tlv()?;
            if tag == BOOLEAN {
                (tag, value) = extension.next_tlv()?;
            }
            if tag != OCTET_STRING {
                return Err("malformed certificate extension");
            }
            if oid == SUBJECT_ALT_NAME {
                if seen {
                    return Err("duplicate subjectAltName extension");
                }
                seen = true;
                let mut entries = Reader(Reader(value).expect(SEQUENCE)?);
                while !entries.is_empty() {
                    names.push(entries.next_tlv()?);
                }
            }
        }
    }
    Ok(names)
}

/// The DNS names (lower-cased, wildcards kept as `*.parent`) and IP addresses
/// (in their canonical text form) listed in the certificate's
/// subjectAltName extension, in certificate order.
pub(crate) fn subject_alt_names(cert_der: &[u8]) -> Result<Vec<String>, &'static str> {
    let mut names = Vec::new();
    for (tag, value) in general_names(cert_der)? {
        match tag {
            GENERAL_NAME_DNS => {
                let name = std::str::from_utf8(value)
                    .ok()
                    .filter(|name| name.is_ascii())
                    .ok_or("non-ASCII dNSName")?;
                names.push(name.trim_end_matches('.').to_ascii_lowercase());
            }
            GENERAL_NAME_IP => {
                let address = if let Ok(octets) = <[u8; 4]>::try_from(value) {
                    IpAddr::V4(Ipv4Addr::from(octets))
                } else if let Ok(octets) = <[u8; 16]>::try_from(value) {
                    IpAddr::V6(Ipv6Addr::from(octets))
                } else {
                    return Err("malformed iPAddress");
                };
                names.push(address.to_string());
            }
            // Other name forms (e-mail, URI, XMPP otherName...) are not
            // used for server selection.
            _ => {}
        }
    }
    Ok(names)
}

/// An `otherName` (`[0] IMPLICIT SEQUENCE { type-id OID, [0] EXPLICIT value }`)
/// split into its type OID (content octets) and the tag and content of its
/// value. `value` is the content of the `[0]` GeneralName entry.
pub(crate) fn other_name(value: &[u8]) -> Result<(&[u8], u8, &[u8]), &'static str> {
    let mut fields = Reader(value);
    let oid = fields.expect(OBJECT_IDENTIFIER)?;
    let mut wrapper = Reader(fields.expect(OTHER_NAME_VALUE)?);
    let (tag, inner) = wrapper.next_tlv()?;
    if !wrapper.is_empty() || !fields.is_empty() {
        return Err("trailing data in otherName");
    }
    Ok((oid, tag, inner))
}

const INTEGER: u8 = 0x02;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0] EXPLICIT Version` inside `TBSCertificate`.
const VERSION: u8 = 0xa0;

/// The certificate's validity period, `(notBefore, notAfter)`, in seconds since the
/// Unix epoch.
pub(crate) fn validity(cert_der: &[u8]) -> Result<(i64, i64), &'static str> {
    let certificate = Reader(cert_der).expect(SEQUENCE)?;
    let mut tbs = Reader(Reader(certificate).expect(SEQUENCE)?);
    let (mut tag, _) = tbs.next_tlv()?;
    if tag == VERSION {
        (tag, _) = tbs.next_tlv()?;
    }
    if tag != INTEGER {
        return Err("unexpected DER structure");
    }
    tbs.expect(SEQUENCE)?; // signature algorithm
    tbs.expect(SEQUENCE)?; // issuer
    let mut validity = Reader(tbs.expect(SEQUENCE)?);
    let not_before = read_time(&mut validity)?;
    let not_after = read_time(&mut validity)?;
    Ok((not_before, not_after))
}

/// A UTCTime (`YYMMDDHHMMSSZ`, years 1950-2049) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`), as RFC 5280 §4.1.2.5 allows them.
fn read_time(r: &mut Reader<'_>) -> Result<i64, &'static str> {
    let (tag, value) = r.next_tlv()?;
    let text = std::str::from_utf8(value).map_err(|_| "malformed time")?;
    let digits = text.strip_suffix('Z').ok_or("time not in UTC")?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("malformed time");
    }
    let num = |s: &str| s.parse::<i64>().map_err(|_| "malformed time");
    let (year, rest) = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy = num(&digits[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        (GENERALIZED_TIME, 14) => (num(&digits[..4])?, &digits[4..]),
        _ => return Err("malformed time"),
    };
    let (month, day) = (num(&rest[..2])?, num(&rest[2..4])?);
    let (h, m, s) = (num(&rest[4..6])?, num(&rest[6..8])?, num(&rest[8..10])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return Err("malformed time");
    }
    Ok(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::{days_from_civil, subject_alt_names, validity};

    #[test]
    fn validity_is_read_from_rcgen_certificates() {
        let mut params = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).expect("p");
        params.not_before = rcgen::date_time_ymd(2020, 2, 29);
        params.not_after = rcgen::date_time_ymd(2051, 1, 2);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        let (from, to) = validity(cert.der()).expect("validity");
        assert_eq!(from, days_from_civil(2020, 2, 29) * 86_400);
        assert_eq!(from, 1_582_934_400);
        assert_eq!(to, days_from_civil(2051, 1, 2) * 86_400);
        assert!(validity(&cert.der()[..40]).is_err());
    }

    #[test]
    fn reads_dns_and_ip_names_from_rcgen_certificate() {
        let names = vec![
            "Example.ORG".to_owned(),
            "*.example.org".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let generated = rcgen::generate_simple_self_signed(names).expect("generate");
        let found = subject_alt_names(generated.cert.der()).expect("parse");
        assert_eq!(found, ["example.org", "*.example.org", "127.0.0.1", "::1"]);
    }

    #[test]
    fn certificate_without_names_gives_empty_list() {
        let generated = rcgen::generate_simple_self_signed(Vec::<String>::new()).expect("gen");
        assert!(subject_alt_names(generated.cert.der())
            .expect("parse")
            .is_empty());
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        assert!(subject_alt_names(b"").is_err());
        assert!(subject_alt_names(b"\x30\x05\x01").is_err());
        assert!(subject_alt_names(b"\x30\x84\xff\xff\xff\xff").is_err());
        let generated =
            rcgen::generate_simple_self_signed(vec!["a.example".to_owned()]).expect("generate");
        let der = generated.cert.der();
        assert!(subject_alt_names(&der[..der.len() / 2]).is_err());
    }
}
