//! Dialback keys as XEP-0185 recommends them:
//!
//! ```text
//! key = HEX( HMAC-SHA256( HEX(SHA256(secret)), receiving + ' ' + originating + ' ' + stream_id ) )
//! ```
//!
//! The HMAC key is the lowercase hexadecimal form of the secret's SHA-256 digest (XEP-0185
//! §2, note 4: "the output of the SHA256 hashing algorithm MUST be provided in the
//! hexadecimal representation"), so the 64 ASCII characters are the key bytes. The three
//! inputs are joined with single U+0020 spaces, receiving server first. The result is
//! written in lowercase hexadecimal too.
//!
//! The secret never leaves the authoritative server: the initiating side computes the
//! key it sends, and the same server, asked through `<db:verify/>`, recomputes it and
//! compares in constant time.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The secret dialback keys are derived from. It may be per process (keys then die with
/// a restart, costing only a re-run of dialback) or configured and shared by the nodes
/// serving one domain. `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct DialbackSecret {
    /// `HEX(SHA256(secret))`, the HMAC key; the secret itself is not kept.
    hmac_key: [u8; 64],
}

impl std::fmt::Debug for DialbackSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DialbackSecret(..)")
    }
}

impl DialbackSecret {
    /// A secret from configured bytes (any length; XEP-0185 hashes it first).
    pub fn new(secret: &[u8]) -> Self {
        let digest = Sha256::digest(secret);
        let mut hmac_key = [0u8; 64];
        hex_into(&digest, &mut hmac_key);
        Self { hmac_key }
    }

    /// A fresh random secret of 32 bytes.
    pub fn generate(rng: &mut (impl RngCore + ?Sized)) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Self::new(&bytes)
    }

    /// The key the originating server sends in `<db:result/>` for the stream `stream_id`
    /// that `receiving` opened towards it.
    pub fn key(&self, receiving: &str, originating: &str, stream_id: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.hmac_key)
            .expect("HMAC accepts keys of any length");
        mac.update(receiving.as_bytes());
        mac.update(b" ");
        mac.update(originating.as_bytes());
        mac.update(b" ");
        mac.update(stream_id.as_bytes());
        let tag = mac.finalize().into_bytes();
        let mut out = [0u8; 64];
        hex_into(&tag, &mut out);
        out.iter().map(|&b| char::from(b)).collect()
    }

    /// Whether `presented` (surrounding whitespace ignored, hex digits in either case) is
    /// the key for these inputs. The comparison takes the same time wherever the first
    /// difference is.
    pub fn verify(
        &self,
        receiving: &str,
        originating: &str,
        stream_id: &str,
        presented: &str,
    ) -> bool {
        let expected = self.key(receiving, originating, stream_id);
        let presented = presented.trim().to_ascii_lowercase();
        constant_time_eq(expected.as_bytes(), presented.as_bytes())
    }
}

/// Byte-string equality whose running time depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Read through a black box so the fold is not turned into an early exit.
    std::hint::black_box(diff) == 0
}

fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// XEP-0185 §3: secret `s3cr3tf0rd14lb4ck`, receiving `xmpp.example.com`, originating
    /// `example.org`, stream id `D60000229F`.
    #[test]
    fn xep_0185_example() {
        let secret = DialbackSecret::new(b"s3cr3tf0rd14lb4ck");
        assert_eq!(
            std::str::from_utf8(&secret.hmac_key).expect("hex"),
            "a7136eb1f46c9ef18c5e78c36ca257067c69b3d518285f0b18a96c33beae9acc"
        );
        assert_eq!(
            secret.key("xmpp.example.com", "example.org", "D60000229F"),
            "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643"
        );
    }

    /// XEP-0220 §2.2.2: secret `d14lb4ck43v3r`, receiving `capulet.example`, originating
    /// `montague.example`, stream id `417GAF25`.
    #[test]
    fn xep_0220_example() {
        let secret = DialbackSecret::new(b"d14lb4ck43v3r");
        let key = "225cc5aa6a071133249d25fef42ae516fc7a86c523aa1c6980a7f73e784c972d";
        assert_eq!(
            secret.key("capulet.example", "montague.example", "417GAF25"),
            key
        );
        // As it arrives in a pretty-printed <db:verify/>.
        let wrapped = format!("\n       {}\n     ", key.to_ascii_uppercase());
        assert!(secret.verify("capulet.example", "montague.example", "417GAF25", &wrapped));
    }

    /// The construction written out with the hash primitives directly, for inputs of our
    /// own: hex of the digest as the HMAC key, spaces between the parts.
    #[test]
    fn matches_the_construction_spelled_out() {
        let digest = Sha256::digest(b"another secret");
        let hex_key: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(hex_key.as_bytes()).expect("key");
        mac.update(b"b.example a.example stream-1");
        let want: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let secret = DialbackSecret::new(b"another secret");
        assert_eq!(secret.key("b.example", "a.example", "stream-1"), want);
    }

    #[test]
    fn every_input_matters() {
        let secret = DialbackSecret::generate(&mut rand::rngs::StdRng::seed_from_u64(7));
        let key = secret.key("r.example", "o.example", "id1");
        assert!(secret.verify("r.example", "o.example", "id1", &key));
        assert!(!secret.verify("o.example", "r.example", "id1", &key));
        assert!(!secret.verify("r.example", "o.example", "id2", &key));
        assert!(!secret.verify("r.example", "o.example", "id1", &key[1..]));
        let other = DialbackSecret::new(b"other");
        assert!(!other.verify("r.example", "o.example", "id1", &key));
        // The separator keeps "ab" + "c" apart from "a" + "bc" (domains have no spaces).
        assert_ne!(secret.key("ab", "c", "x"), secret.key("a", "bc", "x"));
    }

    #[test]
    fn debug_hides_the_secret() {
        let secret = DialbackSecret::new(b"s3cr3tf0rd14lb4ck");
        assert_eq!(format!("{secret:?}"), "DialbackSecret(..)");
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
