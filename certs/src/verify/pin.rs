//! Certificate pinning: the SHA-256 digest of a peer's end-entity
//! certificate (its whole DER encoding), as a static route may require.

use std::fmt;
use std::str::FromStr;

/// The SHA-256 digest of an end-entity certificate's DER encoding.
///
/// Written as 64 hexadecimal digits, optionally in colon-separated pairs
/// (`openssl x509 -noout -fingerprint -sha256` prints that form) and
/// optionally prefixed with `sha256:`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertPin([u8; 32]);

impl CertPin {
    /// The pin of the certificate `cert_der`.
    pub fn of(cert_der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, cert_der);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Self(bytes)
    }

    /// A pin from its raw digest.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `cert_der` is the pinned certificate. The digests are
    /// compared in constant time.
    pub fn matches(&self, cert_der: &[u8]) -> bool {
        constant_time_eq(&self.0, &Self::of(cert_der).0)
    }
}

/// The pin of `cert_der` (the SHA-256 digest of the end-entity DER).
pub fn pin_sha256(cert_der: &[u8]) -> CertPin {
    CertPin::of(cert_der)
}

/// Compares every byte, whatever the first difference.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    std::hint::black_box(diff) == 0
}

impl fmt::Display for CertPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CertPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertPin({self})")
    }
}

/// Why a pin could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid certificate pin: expected 64 hexadecimal digits (SHA-256), optionally colon-separated"
)]
pub struct InvalidPin;

impl FromStr for CertPin {
    type Err = InvalidPin;

    fn from_str(text: &str) -> Result<Self, InvalidPin> {
        let text = text.trim();
        let text = text
            .get(..7)
            .filter(|prefix| prefix.eq_ignore_ascii_case("sha256:"))
            .map_or(text, |_| &text[7..]);
        let digits: Vec<u8> = text.bytes().filter(|byte| *byte != b':').collect();
        if digits.len() != 64 {
            return Err(InvalidPin);
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let high = hex_value(pair[0]).ok_or(InvalidPin)?;
            let low = hex_value(pair[1]).ok_or(InvalidPin)?;
            *byte = (high << 4) | low;
        }
        Ok(Self(bytes))
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_round_trip_through_text() {
        let pin = CertPin::of(b"certificate");
        let text = pin.to_string();
        assert!(text.starts_with("sha256:"));
        assert_eq!(text.len(), 7 + 64);
        assert_eq!(text.parse::<CertPin>(), Ok(pin));
        assert_eq!(text[7..].parse::<CertPin>(), Ok(pin));
        let colons: Vec<String> = pin.as_bytes().iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(colons.join(":").parse::<CertPin>(), Ok(pin));
        assert_eq!(
            format!("SHA256:{}", &text[7..].to_uppercase()).parse::<CertPin>(),
            Ok(pin)
        );
    }

    #[test]
    fn known_digest() {
        // SHA-256 of the empty string.
        let pin: CertPin = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            .parse()
            .expect("pin");
        assert!(pin.matches(b""));
        assert!(!pin.matches(b"x"));
        assert_eq!(pin_sha256(b""), pin);
    }

    #[test]
    fn malformed_pins_are_refused() {
        for text in [
            "",
            "sha256:",
            "abcd",
            &"g".repeat(64),
            &"a".repeat(63),
            &"a".repeat(66),
            "sha1:00",
        ] {
            assert_eq!(text.parse::<CertPin>(), Err(InvalidPin), "{text:?}");
        }
        // Multi-byte characters never panic the prefix check.
        assert_eq!("é".repeat(40).parse::<CertPin>(), Err(InvalidPin));
    }
}
