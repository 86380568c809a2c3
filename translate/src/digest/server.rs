//! The registrar's side of Digest in one call: read the `Authorization` value, check it
//! against the stored HA1 and the nonce, and either accept or say which challenge to
//! send. Every refusal is the same fresh challenge to the client (only `stale`
//! differs); the reason is for the server's logs, so an unknown user cannot be told
//! from a wrong password.

use rand::RngCore;

use super::challenge::Challenge;
use super::compute::{ha1, verify_response, Algorithm};
use super::credentials::Credentials;
use super::nonce::{NonceConfig, NonceManager, NonceVerdict};
use super::DigestError;

/// Why a request was challenged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeReason {
    /// No credentials for this realm: the first request of a client.
    NoCredentials,
    /// Credentials that could not be read.
    Malformed(DigestError),
    /// Credentials for another realm.
    OtherRealm,
    /// An algorithm other than the one offered.
    OtherAlgorithm,
    /// The `opaque` value is not the one sent.
    OpaqueMismatch,
    /// The `uri` is not the Request-URI.
    UriMismatch,
    /// No such user.
    UnknownUser,
    /// The response does not match the password.
    BadResponse,
    /// Right password, but the nonce expired or is not ours: `stale=true`.
    StaleNonce,
    /// A nonce count already used.
    ReplayedCount,
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The request comes from `username`.
    Authenticated { username: String },
    /// Answer 401 (or 407 for a proxy) with this challenge.
    Challenge {
        challenge: Challenge,
        reason: ChallengeReason,
    },
}

/// A realm's Digest state: what it offers and its nonces.
#[derive(Debug)]
pub struct DigestServer {
    realm: String,
    algorithm: Algorithm,
    opaque: Option<String>,
    nonces: NonceManager,
}

impl DigestServer {
    /// `secret` keys the nonces (keep it across restarts to keep nonces valid).
    pub fn new(
        realm: impl Into<String>,
        algorithm: Algorithm,
        secret: [u8; 32],
        config: NonceConfig,
    ) -> Self {
        Self {
            realm: realm.into(),
            algorithm,
            opaque: None,
            nonces: NonceManager::new(secret, config),
        }
    }

    /// Sends `opaque` in every challenge and requires it back.
    pub fn with_opaque(mut self, opaque: impl Into<String>) -> Self {
        self.opaque = Some(opaque.into());
        self
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// A fresh challenge (`qop="auth"`).
    pub fn challenge(&self, stale: bool, now: u64, rng: &mut impl RngCore) -> Challenge {
        let mut c = Challenge::new(
            self.realm.clone(),
            self.nonces.issue(now, rng),
            self.algorithm,
        )
        .with_stale(stale);
        c.opaque.clone_from(&self.opaque);
        c
    }

    /// Checks the `Authorization` (or `Proxy-Authorization`) value of a request.
    /// `request_uri`, when given, must equal the credentials' `uri` as a string.
    /// `stored_ha1` looks up a user's HA1 for this realm and algorithm
    /// ([`ha1`] of `user:realm:password`).
    pub fn check(
        &mut self,
        authorization: Option<&str>,
        method: &str,
        request_uri: Option<&str>,
        now: u64,
        rng: &mut impl RngCore,
        stored_ha1: impl FnOnce(&str) -> Option<String>,
    ) -> AuthOutcome {
        match self.judge(authorization, method, request_uri, now, stored_ha1) {
            Ok(username) => AuthOutcome::Authenticated { username },
            Err(reason) => AuthOutcome::Challenge {
                challenge: self.challenge(reason == ChallengeReason::StaleNonce, now, rng),
                reason,
            },
        }
    }

    fn judge(
        &mut self,
        authorization: Option<&str>,
        method: &str,
        request_uri: Option<&str>,
        now: u64,
        stored_ha1: impl FnOnce(&str) -> Option<String>,
    ) -> Result<String, ChallengeReason> {
        let value = authorization.ok_or(ChallengeReason::NoCredentials)?;
        let creds = Credentials::parse(value).map_err(ChallengeReason::Malformed)?;
        if creds.realm != self.realm {
            return Err(ChallengeReason::OtherRealm);
        }
        if creds.algorithm != self.algorithm {
            return Err(ChallengeReason::OtherAlgorithm);
        }
        if self.opaque.is_some() && creds.opaque != self.opaque {
            return Err(ChallengeReason::OpaqueMismatch);
        }
        if request_uri.is_some_and(|uri| uri != creds.uri) {
            return Err(ChallengeReason::UriMismatch);
        }
        // An unknown user costs the same hashing as a known one.
        let (known, stored) = match stored_ha1(&creds.username) {
            Some(h) => (true, h),
            None => (
                false,
                ha1(self.algorithm.base(), &creds.username, &self.realm, ""),
            ),
        };
        let right = verify_response(&creds, method, &stored);
        if !known {
            return Err(ChallengeReason::UnknownUser);
        }
        if !right {
            return Err(ChallengeReason::BadResponse);
        }
        match self.nonces.accept(&creds.nonce, creds.nc, now) {
            NonceVerdict::Fresh => Ok(creds.username),
            NonceVerdict::Stale | NonceVerdict::Invalid => Err(ChallengeReason::StaleNonce),
            NonceVerdict::Replayed => Err(ChallengeReason::ReplayedCount),
        }
    }
}
