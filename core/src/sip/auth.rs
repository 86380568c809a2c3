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

use std::sync::Mutex;

use herald_translate::digest::{
    Algorithm, AuthOutcome, ChallengeReason, Credentials, DigestServer, NonceConfig,
};
use herald_translate::sip::{response_for, HeaderName, Message, RequestEssentials};
use herald_translate::Jid;
use rand::SeedableRng;

use crate::accounts::NO_SIP_CREDENTIALS;
use crate::db::Db;

/// The digest state of the SIP service.
#[derive(Debug)]
pub(crate) struct Auth {
    server: Mutex<(DigestServer, rand::rngs::StdRng)>,
    domain: String,
    db: Db,
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
        }
    }

    /// Who sent `request`, or the response to send instead (401/407 challenge, 403).
    pub(crate) async fn authenticate(
        &self,
        request: &Message,
        proxy: bool,
    ) -> Result<Principal, Message> {
        let (header, challenge_header, code, _) = if proxy {
            (
                HeaderName::ProxyAuthorization,
                HeaderName::ProxyAuthenticate,
                407,
                "Proxy Authentication Required",
            )
        } else {
            (
                HeaderName::Authorization,
                HeaderName::WwwAuthenticate,
                401,
                "Unauthorized",
            )
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
        // Look the HA1s up before taking the lock (the store is async).
        let mut stored: Vec<(Algorithm, String)> = Vec::new();
        if let (Some(user), Some(creds)) = (&user, &parsed) {
            let (u, r, alg) = (user.clone(), realm.clone(), creds.algorithm.base());
            if let Ok(Some(h)) = self.db.run(move |s| s.sip_credentials(&u, &r, alg)).await {
                stored.push((alg, h));
            }
        }
        let method = request
            .request_line()
            .map(|l| l.method.to_string())
            .unwrap_or_default();
        let now = unix_now();
        let outcome = {
            let mut guard = self.server.lock().unwrap_or_else(|e| e.into_inner());
            let (server, rng) = &mut *guard;
            server.check(
                authorization.as_deref(),
                &method,
                None,
                now,
                rng,
                |_, alg| {
                    stored
                        .iter()
                        .find(|(a, _)| *a == alg)
                        .map(|(_, h)| h.clone())
                },
            )
        };
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
                if !matches!(reason, ChallengeReason::NoCredentials) {
                    tracing::info!(?reason, user = ?user, "SIP authentication failed");
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
