//! The Digest hashes (RFC 7616 §3.4, RFC 2617 §3.2.2 for MD5 and RFC 2069
//! compatibility) and the constant-time check of a response.

use md5::Md5;
use sha2::{Sha256, Sha512_256};

use super::credentials::{Credentials, Qop};
use super::DigestError;

/// A Digest algorithm (RFC 8760: MD5, SHA-256, SHA-512-256, and their `-sess`
/// forms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
    Sha512_256,
    Sha512_256Sess,
}

impl Algorithm {
    /// The token as written in `algorithm=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
            Self::Sha512_256 => "SHA-512-256",
            Self::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Parses an `algorithm` token, without regard to case.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        [
            Self::Md5,
            Self::Md5Sess,
            Self::Sha256,
            Self::Sha256Sess,
            Self::Sha512_256,
            Self::Sha512_256Sess,
        ]
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(s))
        .ok_or_else(|| DigestError::UnsupportedAlgorithm(s.to_owned()))
    }

    /// Whether HA1 is rehashed with the nonces (`-sess`).
    pub fn is_session(self) -> bool {
        matches!(
            self,
            Self::Md5Sess | Self::Sha256Sess | Self::Sha512_256Sess
        )
    }

    /// The algorithm without `-sess`: the one a stored HA1 is computed with.
    pub fn base(self) -> Self {
        match self {
            Self::Md5 | Self::Md5Sess => Self::Md5,
            Self::Sha256 | Self::Sha256Sess => Self::Sha256,
            Self::Sha512_256 | Self::Sha512_256Sess => Self::Sha512_256,
        }
    }

    /// Lowercase hex of the hash of the `:`-joined parts.
    pub fn hash_hex(self, parts: &[&[u8]]) -> String {
        fn run<D: sha2::digest::Digest>(parts: &[&[u8]]) -> String {
            let mut d = D::new();
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(part);
            }
            lower_hex(&d.finalize())
        }
        match self.base() {
            Self::Md5 => run::<Md5>(parts),
            Self::Sha256 => run::<Sha256>(parts),
            _ => run::<Sha512_256>(parts),
        }
    }
}

/// HA1 = H(username:realm:password), lowercase hex, for storing instead of the
/// password. For a `-sess` algorithm this is the stored part; the session HA1 is
/// derived per response.
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hash_hex(&[username.as_bytes(), realm.as_bytes(), password.as_bytes()])
}

/// The response the client should have sent for `method`, given the stored HA1 (of
/// `credentials.algorithm`'s base algorithm).
pub fn expected_response(
    credentials: &Credentials,
    method: &str,
    stored_ha1: &str,
) -> Result<String, DigestError> {
    let alg = credentials.algorithm;
    let ha1 = if alg.is_session() {
        let cnonce = credentials
            .cnonce
            .as_deref()
            .ok_or(DigestError::Missing("cnonce"))?;
        alg.hash_hex(&[
            stored_ha1.as_bytes(),
            credentials.nonce.as_bytes(),
            cnonce.as_bytes(),
        ])
    } else {
        stored_ha1.to_owned()
    };
    let ha2 = alg.hash_hex(&[method.as_bytes(), credentials.uri.as_bytes()]);
    Ok(match credentials.qop {
        Some(Qop::Auth) => {
            let nc = credentials.nc.ok_or(DigestError::Missing("nc"))?;
            let cnonce = credentials
                .cnonce
                .as_deref()
                .ok_or(DigestError::Missing("cnonce"))?;
            alg.hash_hex(&[
                ha1.as_bytes(),
                credentials.nonce.as_bytes(),
                format!("{nc:08x}").as_bytes(),
                cnonce.as_bytes(),
                b"auth",
                ha2.as_bytes(),
            ])
        }
        None => alg.hash_hex(&[ha1.as_bytes(), credentials.nonce.as_bytes(), ha2.as_bytes()]),
    })
}

/// Whether `credentials.response` is right for `method` and the stored HA1. The
/// comparison takes the same time wherever the first difference is. The caller
/// checks separately that `realm` and `uri` are the ones expected, and the nonce
/// with [`NonceManager`](super::NonceManager).
pub fn verify_response(credentials: &Credentials, method: &str, stored_ha1: &str) -> bool {
    match expected_response(credentials, method, stored_ha1) {
        Ok(expected) => constant_time_eq(
            expected.as_bytes(),
            credentials.response.to_ascii_lowercase().as_bytes(),
        ),
        Err(_) => false,
    }
}

/// Equality whose time depends only on the lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Lowercase hex, as Digest writes hashes.
fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}
