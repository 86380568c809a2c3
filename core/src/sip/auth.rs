//! Digest authentication of SIP requests (RFC 3261 §22, RFC 8760) against the same
//! accounts as XMPP: the HA1 stored per realm and algorithm when the password was set.
//! REGISTER is challenged with 401 (registrar), everything else with 407 (the
//! presence and message server acts as a proxy would, like Kamailio's `auth_check`
//! does for non-REGISTER requests).
//!
//! A refusal is always the same fresh challenge (an unknown user cannot be told from
//! a wrong password); an account that exists but has no SIP credentials (created
//! before they were derived) gets a 403 saying so, and a log line tells the admin to
//! set its password again.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use herald_translate::digest::{
    Algorithm, AuthOutcome, ChallengeReason, Credentials, DigestServer, NonceConfig,
};
use herald_translate::sip::{response_for, HeaderName, Message, RequestEssentials};
use herald_translate::Jid;
use rand::SeedableRng;

use super::credential_cache::CredentialCache;
use crate::accounts::NO_SIP_CREDENTIALS;
use crate::c2s::throttle::AuthThrottle;
use crate::db::Db;
use crate::metrics::Metrics;

/// The digest state of the SIP service.
#[derive(Debug)]
pub(crate) struct Auth {
    server: Mutex<(DigestServer, rand::rngs::StdRng)>,
    domain: String,
    db: Db,
    cache: CredentialCache,
}

/// An authenticated request's account: its normalized localpart and bare JID.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    pub(crate) user: String,
    pub(crate) jid: Jid,
}

impl Auth {
    pub(crate) fn new(
        realm: &str,
        domain: &str,
        algorithms: &[Algorithm],
        secret: [u8; 32],
        lifetime_secs: u64,
        cache: (Duration, usize),
        db: Db,
    ) -> Self {
        let config = NonceConfig {
            lifetime_secs,
            ..NonceConfig::default()
        };
        Self {
            server: Mutex::new((
                DigestServer::new(realm, algorithms, secret, config),
                rand::rngs::StdRng::from_os_rng(),
            )),
            domain: domain.to_owned(),
            db,
            cache: CredentialCache::new(cache.0, cache.1),
        }
    }

    /// Who sent `request` from `peer`, or the response to send instead (401/407
    /// challenge, 403).
    ///
    /// Failed attempts (an unknown user, a wrong password) count against the address
    /// and the account in the throttle XMPP logins use too; while either is blocked,
    /// requests with credentials are refused with 403 before any check.
    pub(crate) async fn authenticate(
        &self,
        request: &Message,
        proxy: bool,
        peer: IpAddr,
        throttle: &AuthThrottle,
        metrics: &Metrics,
    ) -> Result<Principal, Message> {
        let (header, challenge_header, code) = if proxy {
            (
                HeaderName::ProxyAuthorization,
                HeaderName::ProxyAuthenticate,
                407,
            )
        } else {
            (HeaderName::Authorization, HeaderName::WwwAuthenticate, 401)
        };
        let realm = self.realm();
        // The client may send credentials for several realms: take ours.
        let authorization = request
            .auth_values(&header)
            .find(|v| Credentials::parse(v).is_ok_and(|c| c.realm == realm))
            .or_else(|| request.auth_values(&header).next())
            .map(str::to_owned);
        let parsed = authorization
            .as_deref()
            .and_then(|v| Credentials::parse(v).ok());
        let user = parsed.as_ref().and_then(|c| self.normalize(&c.username));
        if let Some(scope) = user
            .as_deref()
            .and_then(|u| throttle.blocked_scope(peer, u))
        {
            metrics.auth_throttled(scope.label());
            tracing::info!(user = ?user, %peer, scope = scope.label(), "SIP authentication refused: too many failures");
            return Err(forbidden(
                request,
                "Forbidden: too many failed authentication attempts, try again later",
            ));
        }
        let method = request
            .request_line()
            .map(|l| l.method.to_string())
            .unwrap_or_default();
        let algorithm = parsed.as_ref().map(|c| c.algorithm.base());
        let judge = |fresh| {
            self.judge(
                user.as_deref(),
                &realm,
                algorithm,
                authorization.as_deref(),
                &method,
                fresh,
            )
        };
        // A cached HA1 first; when it does not match, the store's (the password may
        // have been set again by another process since it was cached).
        let (mut outcome, cached) = judge(false).await;
        if cached
            && matches!(
                outcome,
                AuthOutcome::Challenge {
                    reason: ChallengeReason::BadResponse,
                    ..
                }
            )
        {
            outcome = judge(true).await.0;
        }
        match outcome {
            AuthOutcome::Authenticated { .. } => {
                let user = user.ok_or_else(|| forbidden(request, "Forbidden"))?;
                let jid = Jid::parse(&format!("{user}@{}", self.domain))
                    .map_err(|_| forbidden(request, "Forbidden"))?;
                Ok(Principal { user, jid })
            }
            AuthOutcome::Challenge { challenges, reason } => {
                if reason == ChallengeReason::UnknownUser {
                    if let Some(user) = &user {
                        let u = user.clone();
                        if self
                            .db
                            .run(move |s| s.user_exists(&u))
                            .await
                            .unwrap_or(false)
                        {
                            tracing::warn!(
                                user = %user,
                                realm = %realm,
                                "SIP login refused: account has {NO_SIP_CREDENTIALS}"
                            );
                            return Err(forbidden(request, "Forbidden: account has no SIP credentials; the administrator must set its password again"));
                        }
                    }
                }
                if matches!(
                    reason,
                    ChallengeReason::UnknownUser | ChallengeReason::BadResponse
                ) {
                    metrics.auth_failures.inc();
                    for scope in throttle.failed(peer, user.as_deref()) {
                        metrics.auth_block(scope.label());
                        tracing::warn!(user = ?user, %peer, scope = scope.label(), "SIP authentication failures: blocked for a while");
                    }
                }
                if !matches!(reason, ChallengeReason::NoCredentials) {
                    tracing::info!(?reason, user = ?user, %peer, "SIP authentication failed");
                }
                let mut answer = response_for(
                    &RequestEssentials::from_message(request),
                    code,
                    reason_phrase(code, reason),
                    &super::new_tag(),
                );
                for c in challenges {
                    answer.push_header(challenge_header.clone(), c.to_string());
                }
                Err(answer)
            }
        }
    }

    /// `user`'s HA1 for `algorithm`, and whether it came from the cache (never when
    /// `fresh`: then from the store, and cached again).
    async fn ha1(
        &self,
        user: &str,
        realm: &str,
        algorithm: Algorithm,
        fresh: bool,
    ) -> (Option<String>, bool) {
        let now = std::time::Instant::now();
        if fresh {
            self.cache.forget(user);
        } else if let Some(h) = self.cache.get(user, algorithm, now) {
            return (Some(h), true);
        }
        let (u, r) = (user.to_owned(), realm.to_owned());
        match self
            .db
            .run(move |s| s.sip_credentials(&u, &r, algorithm))
            .await
        {
            Ok(Some(h)) => {
                self.cache.put(user, algorithm, &h, now);
                (Some(h), false)
            }
            _ => (None, false),
        }
    }

    /// The digest check of `authorization` against `user`'s HA1 for `algorithm` (read
    /// from the store when `fresh`), and whether that HA1 came from the cache.
    async fn judge(
        &self,
        user: Option<&str>,
        realm: &str,
        algorithm: Option<Algorithm>,
        authorization: Option<&str>,
        method: &str,
        fresh: bool,
    ) -> (AuthOutcome, bool) {
        let (ha1, cached) = match (user, algorithm) {
            (Some(u), Some(alg)) => {
                let (h, cached) = self.ha1(u, realm, alg, fresh).await;
                (h.map(|h| (alg, h)), cached)
            }
            _ => (None, false),
        };
        (self.check(authorization, method, ha1), cached)
    }

    /// The digest check proper, with `ha1` as the stored credential for its algorithm.
    fn check(
        &self,
        authorization: Option<&str>,
        method: &str,
        ha1: Option<(Algorithm, String)>,
    ) -> AuthOutcome {
        let mut guard = self.server.lock().unwrap_or_else(|e| e.into_inner());
        let (server, rng) = &mut *guard;
        server.check(authorization, method, None, unix_now(), rng, |_, alg| {
            ha1.filter(|(a, _)| *a == alg).map(|(_, h)| h)
        })
    }

    /// Forget what is cached for `user` (the account was removed).
    pub(crate) fn forget(&self, user: &str) {
        self.cache.forget(user);
    }

    pub(crate) fn realm(&self) -> String {
        self.server
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .realm()
            .to_owned()
    }

    /// The stored form of a SIP username (the localpart as XMPP normalizes it).
    pub(crate) fn normalize(&self, username: &str) -> Option<String> {
        let local = username.split('@').next()?;
        Jid::parse(&format!("{local}@{}", self.domain))
            .ok()?
            .local()
            .map(str::to_owned)
    }
}

fn reason_phrase(code: u16, _reason: ChallengeReason) -> &'static str {
    if code == 401 {
        "Unauthorized"
    } else {
        "Proxy Authentication Required"
    }
}

/// A 403 with `reason` as its phrase.
pub(crate) fn forbidden(request: &Message, reason: &str) -> Message {
    response_for(
        &RequestEssentials::from_message(request),
        403,
        reason,
        &super::new_tag(),
    )
}

fn unix_now() -> u64 {
    // The digest nonces carry wall-clock seconds so that they stay valid across a
    // restart; tokio's clock (virtual in tests) is added as an offset.
    u64::try_from(crate::time::now_unix_ms() / 1000).unwrap_or(0)
}
