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
    /// An algorithm that was not offered.
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
    /// Answer 401 (or 407 for a proxy) with these challenges, one header each, in
    /// order of preference.
    Challenge {
        challenges: Vec<Challenge>,
        reason: ChallengeReason,
    },
}

/// A realm's Digest state: what it offers and its nonces.
#[derive(Debug)]
pub struct DigestServer {
    realm: String,
    /// Offered algorithms, preferred first; never empty.
    algorithms: Vec<Algorithm>,
    opaque: Option<String>,
    nonces: NonceManager,
}

impl DigestServer {
    /// A realm offering `algorithms`, preferred first (RFC 8760: e.g. SHA-256 then
    /// MD5 for user agents that know only MD5; an empty list offers MD5). `secret` keys
    /// the nonces (keep it across restarts to keep nonces valid).
    pub fn new(
        realm: impl Into<String>,
        algorithms: &[Algorithm],
        secret: [u8; 32],
        config: NonceConfig,
    ) -> Self {
        let algorithms = if algorithms.is_empty() {
            vec![Algorithm::Md5]
        } else {
            algorithms.to_vec()
        };
        Self {
            realm: realm.into(),
            algorithms,
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

    /// Fresh challenges (`qop="auth"`), one per offered algorithm, sharing one nonce.
    pub fn challenges(&self, stale: bool, now: u64, rng: &mut impl RngCore) -> Vec<Challenge> {
        let nonce = self.nonces.issue(now, rng);
        self.algorithms
            .iter()
            .map(|&alg| {
                let mut c =
                    Challenge::new(self.realm.clone(), nonce.clone(), alg).with_stale(stale);
                c.opaque.clone_from(&self.opaque);
                c
            })
            .collect()
    }

    /// Checks the `Authorization` (or `Proxy-Authorization`) value of a request.
    /// `request_uri`, when given, must equal the credentials' `uri` as a string.
    /// `stored_ha1` looks up a user's HA1 for this realm and the algorithm the client
    /// chose ([`ha1`] of `user:realm:password`; the base algorithm for `-sess`).
    pub fn check(
        &mut self,
        authorization: Option<&str>,
        method: &str,
        request_uri: Option<&str>,
        now: u64,
        rng: &mut impl RngCore,
        stored_ha1: impl FnOnce(&str, Algorithm) -> Option<String>,
    ) -> AuthOutcome {
        match self.judge(authorization, method, request_uri, now, stored_ha1) {
            Ok(username) => AuthOutcome::Authenticated { username },
            Err(reason) => AuthOutcome::Challenge {
                challenges: self.challenges(reason == ChallengeReason::StaleNonce, now, rng),
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
        stored_ha1: impl FnOnce(&str, Algorithm) -> Option<String>,
    ) -> Result<String, ChallengeReason> {
        let value = authorization.ok_or(ChallengeReason::NoCredentials)?;
        let creds = Credentials::parse(value).map_err(ChallengeReason::Malformed)?;
        if creds.realm != self.realm {
            return Err(ChallengeReason::OtherRealm);
        }
        if !self.algorithms.contains(&creds.algorithm) {
            return Err(ChallengeReason::OtherAlgorithm);
        }
        if self.opaque.is_some() && creds.opaque != self.opaque {
            return Err(ChallengeReason::OpaqueMismatch);
        }
        if request_uri.is_some_and(|uri| uri != creds.uri) {
            return Err(ChallengeReason::UriMismatch);
        }
        // An unknown user costs the same hashing as a known one.
        let base = creds.algorithm.base();
        let (known, stored) = match stored_ha1(&creds.username, base) {
            Some(h) => (true, h),
            None => (false, ha1(base, &creds.username, &self.realm, "")),
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
