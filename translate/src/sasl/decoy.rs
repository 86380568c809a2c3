//! Decoy credentials for unknown users, so that SASL does not reveal which accounts exist.
//!
//! An unknown user must see the same exchange as a known one: a salt that stays the same
//! on every attempt and across server restarts, the usual iteration count, and the same
//! amount of password work. The decoy record is derived from a secret the operator keeps
//! (Herald stores it in the data directory) and the normalized username, with
//! HMAC-SHA-256, so it is stable for as long as the secret is, and unpredictable without
//! it.

use rand::RngCore;

use super::{ScramHash, ScramRecord, DEFAULT_ITERATIONS, SALT_LEN};

/// The secret decoy credentials are derived from. Its `Debug` output does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct DecoySecret([u8; 32]);

impl DecoySecret {
    /// Length of the secret in bytes.
    pub const LEN: usize = 32;

    /// A secret from stored bytes.
    pub fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        Self(bytes)
    }

    /// A fresh secret, to be stored and reused: a new secret changes every decoy salt.
    pub fn generate(rng: &mut (impl RngCore + ?Sized)) -> Self {
        let mut bytes = [0u8; Self::LEN];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The bytes to store.
    pub fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }

    /// The decoy record for `username` (normalized, as looked up) and `hash`: a
    /// [`SALT_LEN`]-byte salt, [`DEFAULT_ITERATIONS`], and StoredKey/ServerKey no password
    /// is known to match. It has the shape of a record made by
    /// [`ScramRecord::generate`] with the default iteration count.
    pub fn record(&self, hash: ScramHash, username: &str) -> ScramRecord {
        let mut salt = self.derive(b"salt", hash, username);
        salt.truncate(SALT_LEN);
        let mut stored_key = self.derive(b"stored-key", hash, username);
        stored_key.truncate(hash.output_len());
        let mut server_key = self.derive(b"server-key", hash, username);
        server_key.truncate(hash.output_len());
        ScramRecord {
            hash,
            salt,
            iterations: DEFAULT_ITERATIONS,
            stored_key,
            server_key,
        }
    }

    /// HMAC-SHA-256(secret, label NUL mechanism NUL username).
    fn derive(&self, label: &[u8], hash: ScramHash, username: &str) -> Vec<u8> {
        let mechanism = hash.mechanism().as_bytes();
        let mut input = Vec::with_capacity(label.len() + mechanism.len() + username.len() + 2);
        input.extend_from_slice(label);
        input.push(0);
        input.extend_from_slice(mechanism);
        input.push(0);
        input.extend_from_slice(username.as_bytes());
        ScramHash::Sha256.hmac(&self.0, &input)
    }
}

impl std::fmt::Debug for DecoySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DecoySecret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn records_are_stable_per_secret_and_user() {
        let a = DecoySecret::from_bytes([1; 32]);
        let a2 = DecoySecret::from_bytes([1; 32]);
        let b = DecoySecret::from_bytes([2; 32]);
        let r = a.record(ScramHash::Sha256, "mallory");
        assert_eq!(r, a2.record(ScramHash::Sha256, "mallory"));
        assert_ne!(r.salt, b.record(ScramHash::Sha256, "mallory").salt);
        assert_ne!(r.salt, a.record(ScramHash::Sha256, "mallorz").salt);
        assert_ne!(r.salt, a.record(ScramHash::Sha1, "mallory").salt);
        assert_eq!(r.salt.len(), SALT_LEN);
        assert_eq!(r.iterations, DEFAULT_ITERATIONS);
        assert_eq!(r.stored_key.len(), 32);
        assert_eq!(a.record(ScramHash::Sha1, "m").stored_key.len(), 20);
        assert_ne!(r.stored_key, r.server_key);
    }

    #[test]
    fn debug_hides_the_secret() {
        let s = DecoySecret::generate(&mut StdRng::seed_from_u64(1));
        assert_eq!(format!("{s:?}"), "DecoySecret(..)");
        assert_eq!(DecoySecret::from_bytes(*s.as_bytes()), s);
    }
}
