//! What an administrator does to a live account: end its sessions (a password change,
//! a kick of every resource) and remove it with everything that points at it.
//!
//! Removal order matters. The sessions end first, while the account's roster still
//! exists, so its contacts get the ordinary unavailable presence. Then every local
//! roster that holds the account loses the item, with `unsubscribe`/`unsubscribed`
//! presence and a roster push to the owner's sessions. Only then is the account
//! deleted (credentials, roster, offline messages and block list in one
//! transaction), and a last sweep ends any session that logged in meanwhile.

use std::time::Duration;

use herald_translate::{ns, Element, Jid, StreamError, StreamErrorCondition};

use crate::accounts::normalize_username;
use crate::error::CoreError;
use crate::server::Server;
use crate::store::{StoreError, Subscription};

/// How long removal waits for the account's sessions to finish before it goes on.
const SESSIONS_END_WAIT: Duration = Duration::from_secs(5);

/// What [`Server::remove_account`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountRemoval {
    /// Sessions ended (live and detached).
    pub sessions_ended: usize,
    /// Local users whose roster (or pending requests) held the account.
    pub rosters_updated: usize,
    /// Offline messages deleted with the account.
    pub offline_deleted: usize,
}

impl Server {
    /// The account's addresses: one per hosted domain (accounts are per server).
    fn account_jids(&self, username: &str) -> Vec<Jid> {
        self.domains
            .iter()
            .filter_map(|d| Jid::new(Some(username), d, None).ok())
            .collect()
    }

    /// End every session of the account `username`, live ones with the stream error
    /// `err`, detached (resumable) ones at once. Returns how many ended.
    pub async fn end_account_sessions(&self, username: &str, err: &StreamError) -> usize {
        let mut ended = 0;
        for bare in self.account_jids(username) {
            for s in self.router.sessions(&bare).iter() {
                s.close(err.clone());
                ended += 1;
            }
            for d in self.detached.take_user(&bare) {
                self.finish_detached(d).await;
                ended += 1;
            }
        }
        if ended > 0 {
            tracing::info!(user = username, ended, reason = ?err.text, "account sessions ended");
        }
        ended
    }

    /// Whether a session of the account is still registered.
    fn account_online(&self, username: &str) -> bool {
        self.account_jids(username)
            .iter()
            .any(|j| self.router.is_online(j))
    }

    /// Remove an account: end its sessions (`not-authorized`), take it off every local
    /// roster with the pushes its contacts expect, and delete it with its roster,
    /// offline messages and block list. `NoSuchUser` if there is no such account.
    pub async fn remove_account(&self, username: &str) -> Result<AccountRemoval, CoreError> {
        let user = normalize_username(username)?;
        let u = user.clone();
        if !self.db.run(move |s| s.user_exists(&u)).await? {
            return Err(StoreError::NoSuchUser(user).into());
        }
        let removed = StreamError::with_text(
            StreamErrorCondition::NotAuthorized,
            "the account was removed",
        );
        let mut report = AccountRemoval {
            sessions_ended: self.end_account_sessions(&user, &removed).await,
            ..AccountRemoval::default()
        };
        let deadline = tokio::time::Instant::now() + SESSIONS_END_WAIT;
        while self.account_online(&user) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for gone in self.account_jids(&user) {
            let contact = gone.to_string();
            let owners = self.db.run(move |s| s.roster_owners_of(&contact)).await?;
            for owner in owners.iter().filter(|o| **o != user) {
                let Ok(owner) = Jid::new(Some(owner), gone.domain(), None) else {
                    continue;
                };
                self.leave_roster(&owner, &gone).await?;
                report.rosters_updated += 1;
            }
        }
        let u = user.clone();
        let offline = self
            .db
            .run(move |s| {
                let n = s.offline_count(&u)?;
                s.remove_user(&u)?;
                Ok(n)
            })
            .await?;
        report.offline_deleted = offline;
        self.metrics
            .offline_queue
            .dec_by(i64::try_from(offline).unwrap_or(i64::MAX));
        for bare in self.account_jids(&user) {
            self.blocks.forget(&bare);
        }
        self.account_removed(&user);
        // A login that raced the removal ends now: its account is gone.
        report.sessions_ended += self.end_account_sessions(&user, &removed).await;
        tracing::info!(user, ?report, "account removed");
        Ok(report)
    }

    /// `gone` leaves `owner`'s roster: the subscriptions it had are cancelled towards
    /// the owner's sessions (RFC 6121 §3.2, §3.3, as if `gone` had cancelled them) and
    /// the item's removal is pushed.
    async fn leave_roster(&self, owner: &Jid, gone: &Jid) -> Result<(), CoreError> {
        let o = owner.local().unwrap_or_default().to_string();
        let c = gone.to_string();
        let guard = self.rosters.lock(owner).await;
        let (item, ver) = self
            .db
            .run(move |s| {
                let item = s.roster_item(&o, &c)?;
                s.pending_in_remove(&o, &c)?;
                let ver = s.roster_remove(&o, &c)?;
                Ok((item, ver))
            })
            .await?;
        drop(guard);
        let Some(item) = item else {
            return Ok(());
        };
        let mut presence = Vec::new();
        if matches!(item.subscription, Subscription::To | Subscription::Both) {
            presence.push("unsubscribed");
        }
        if matches!(item.subscription, Subscription::From | Subscription::Both) {
            presence.push("unsubscribe");
        }
        for s in self.router.sessions(owner).iter().filter(|s| s.available) {
            for t in &presence {
                let p = Element::new("presence", ns::CLIENT)
                    .with_attr("type", *t)
                    .with_attr("from", gone.to_string())
                    .with_attr("to", s.jid.to_string());
                self.deliver(s, p);
            }
        }
        if let Some(ver) = ver {
            self.rosters.push_removal(owner, gone, ver);
        }
        Ok(())
    }
}
