//! Persistent storage: accounts, rosters, pending subscription requests,
//! offline messages, block lists and SIP registrar bindings.
//!
//! Everything goes through the object-safe [`Store`] trait so that the server
//! can hold an `Arc<dyn Store>` and a second backend (PostgreSQL) can be added
//! later. The methods are synchronous: the server calls them from
//! `tokio::task::spawn_blocking`.
//!
//! Conventions shared by every backend:
//! * usernames are stored as given; the caller has already normalized them;
//! * JIDs (roster contacts, pending senders, block list entries) are strings
//!   the caller has already normalized;
//! * every method that names a user returns [`StoreError::NoSuchUser`] when that
//!   account does not exist (except [`Store::user_exists`] and
//!   [`Store::create_user`]);
//! * a write that returned `Ok` is durable (committed and synced).

use std::io;
use std::path::PathBuf;

use herald_translate::digest::Algorithm as DigestAlgorithm;
use herald_translate::sasl::{ScramHash, ScramRecord};

pub mod backup;
mod sqlite;
mod sqlite_rows;
mod sqlite_schema;

#[cfg(test)]
mod sqlite_tests;
#[cfg(test)]
mod tests;

pub use sqlite::SqliteStore;

/// Errors returned by a [`Store`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("user {0} already exists")]
    UserExists(String),
    #[error("no such user {0}")]
    NoSuchUser(String),
    #[error("database {path}: {source}")]
    Open { path: PathBuf, source: DbError },
    /// The database directory or file could not be created.
    #[error("database {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// The database was migrated by a newer Herald; refuse to touch it.
    #[error("database schema version {found} is newer than the supported version {supported}")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("database: {0}")]
    Db(DbError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// A failure inside the database engine. Opaque on purpose: callers do not depend on
/// the backend's own error type, only on its message.
#[derive(Debug)]
pub struct DbError(Box<dyn std::error::Error + Send + Sync>);

impl DbError {
    pub(crate) fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(e))
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// The SIP digest credentials of an account in one realm (RFC 3261 §22, RFC 8760):
/// `HA1 = H(username:realm:password)` per algorithm, lowercase hex. They stand in for
/// the password the way SCRAM records do, and, like them, only a password change
/// replaces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipCredentials {
    pub realm: String,
    /// One HA1 per base algorithm (`MD5`, `SHA-256`, ...; never a `-sess` form, whose
    /// HA1 is derived from this one per response). A later entry for the same
    /// algorithm replaces an earlier one.
    pub ha1: Vec<(DigestAlgorithm, String)>,
}

/// Everything a password gives an account, stored together in one transaction: its
/// SCRAM records (XMPP) and its SIP digest credentials. An account imported from
/// SCRAM hashes alone has no SIP credentials (`sip: None`): they cannot be derived
/// without the password.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountCredentials {
    /// One SCRAM record per hash; a later record for the same hash replaces an
    /// earlier one.
    pub scram: Vec<ScramRecord>,
    pub sip: Option<SipCredentials>,
}

impl From<Vec<ScramRecord>> for AccountCredentials {
    /// SCRAM records only, no SIP credentials.
    fn from(scram: Vec<ScramRecord>) -> Self {
        Self { scram, sip: None }
    }
}

/// One SIP registrar binding (RFC 3261 §10): a contact of an account's
/// address-of-record (`user@` the first hosted domain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipBinding {
    /// The account's localpart.
    pub user: String,
    /// The Contact URI exactly as registered, without the header parameters
    /// (`expires`, `q`, ...). Unique within one user's set.
    pub contact: String,
    /// When the binding expires, in unix milliseconds; it is expired from then on.
    pub expires_at_ms: i64,
    /// The Call-ID of the REGISTER that created or last refreshed it.
    pub call_id: String,
    /// The CSeq number of that REGISTER (below 2^31).
    pub cseq: u32,
    /// The `q` value in thousandths (0 to 1000), `None` when absent.
    pub q: Option<u16>,
    /// The `+sip.instance` value (RFC 5626 §4.1), without its quotes, if given.
    pub instance: Option<String>,
    /// The `reg-id` (RFC 5626 §4.2), kept only with an instance.
    pub reg_id: Option<u32>,
    /// Where the REGISTER came from, e.g. `udp:127.0.0.1:5062`, `tcp:...`, `tls:...`:
    /// the flow that reaches the UA (RFC 3581, NAT).
    pub source: String,
    /// The User-Agent of the REGISTER, if any.
    pub user_agent: Option<String>,
}

/// Roster subscription state (RFC 6121 §2.1.2.5), as the policy layer defines it.
pub use herald_rules::Subscription;

/// One roster entry of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterItem {
    /// Bare JID of the contact, normalized.
    pub jid: String,
    pub name: Option<String>,
    pub subscription: Subscription,
    /// Pending outbound subscription request ("ask='subscribe'").
    pub ask: bool,
    /// Subscription pre-approval (RFC 6121 §3.4). Pending inbound requests are kept
    /// apart (`pending_in_*`), since they exist for contacts not in the roster too.
    pub approved: bool,
    /// Group names, in order, without duplicates (a backend drops repeated
    /// names, keeping the first occurrence).
    pub groups: Vec<String>,
}

impl RosterItem {
    /// An item with no name, no groups, subscription `none` and no flags.
    pub fn new(jid: impl Into<String>) -> Self {
        Self {
            jid: jid.into(),
            name: None,
            subscription: Subscription::None,
            ask: false,
            approved: false,
            groups: Vec::new(),
        }
    }
}

/// A stored offline message (XEP-0160).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineMessage {
    /// Identifier used by [`Store::offline_delete`]; increases with storage order
    /// and is never reused.
    pub id: i64,
    /// The serialized stanza.
    pub stanza: String,
    pub stored_at_unix_ms: i64,
}

/// How much offline storage one user may hold: both bounds apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfflineQuota {
    pub messages: usize,
    /// Sum of the stored stanzas' sizes in bytes.
    pub bytes: usize,
}

impl OfflineQuota {
    /// A quota on the number of messages only.
    pub fn messages(messages: usize) -> Self {
        Self {
            messages,
            bytes: usize::MAX,
        }
    }
}

/// Outcome of [`Store::offline_push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflinePush {
    Stored,
    QuotaExceeded,
}

/// A page of offline messages to claim (see [`Store::offline_claim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimLimit {
    pub messages: usize,
    /// The page stops once this many stanza bytes are in it; the first message is
    /// always taken, whatever its size.
    pub bytes: usize,
}

/// The storage backend.
pub trait Store: Send + Sync + 'static {
    // ----- accounts -----

    /// Creates an account with its credentials (SCRAM records and SIP digest
    /// credentials, in one transaction). `UserExists` if taken.
    fn create_user(&self, username: &str, creds: &AccountCredentials) -> Result<(), StoreError>;
    /// Replaces all the credentials of an account in one transaction: every SCRAM
    /// record and the SIP digest credentials of every realm (those of another realm
    /// were derived from the old password). `creds.sip == None` leaves it without SIP
    /// credentials.
    fn set_credentials(&self, username: &str, creds: &AccountCredentials)
        -> Result<(), StoreError>;
    /// Deletes an account with its credentials (SCRAM and SIP), roster, pending requests,
    /// offline messages, block list and SIP registrar bindings.
    fn remove_user(&self, username: &str) -> Result<(), StoreError>;
    fn user_exists(&self, username: &str) -> Result<bool, StoreError>;
    /// All usernames, sorted by their UTF-8 bytes (the order of `str`'s `Ord`).
    fn list_users(&self) -> Result<Vec<String>, StoreError>;
    /// The SCRAM record of an account for one hash; `None` if the account has
    /// none for that hash. `NoSuchUser` if the account does not exist.
    fn credentials(
        &self,
        username: &str,
        hash: ScramHash,
    ) -> Result<Option<ScramRecord>, StoreError>;
    /// The SIP digest HA1 (lowercase hex) of an account for `realm` and `algorithm`
    /// (its base form; a `-sess` algorithm is looked up as its base). `None` if the
    /// account has none for them: created before SIP credentials existed, imported
    /// from SCRAM hashes alone, or set up for another realm. `NoSuchUser` if the
    /// account does not exist.
    fn sip_credentials(
        &self,
        username: &str,
        realm: &str,
        algorithm: DigestAlgorithm,
    ) -> Result<Option<String>, StoreError>;
    /// Bulk provisioning: creates many users, several hundred per transaction.
    /// Returns one result per entry in input order: an existing username (or
    /// one repeated within `users`) gives `Err(UserExists)` for that entry and
    /// the others are still created. The outer `Err` is a database failure;
    /// batches committed before it stay committed.
    fn create_users(
        &self,
        users: &[(String, AccountCredentials)],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError>;

    // ----- roster (RFC 6121, versioned per XEP-0237) -----

    /// The roster version and all items, sorted by JID.
    fn roster(&self, user: &str) -> Result<(u64, Vec<RosterItem>), StoreError>;
    /// The roster version: 0 for a new account, bumped by every change.
    fn roster_version(&self, user: &str) -> Result<u64, StoreError>;
    fn roster_item(&self, user: &str, contact: &str) -> Result<Option<RosterItem>, StoreError>;
    /// Inserts or replaces the item (keyed by `item.jid`); returns the new
    /// roster version (always bumped, even if the item was unchanged).
    fn roster_put(&self, user: &str, item: &RosterItem) -> Result<u64, StoreError>;
    /// Removes an item; returns `Some(new version)` if it existed, `None`
    /// (version unchanged) otherwise.
    fn roster_remove(&self, user: &str, contact: &str) -> Result<Option<u64>, StoreError>;
    /// Number of items (for the per-user roster size limit).
    fn roster_len(&self, user: &str) -> Result<usize, StoreError>;
    /// Users whose roster holds `contact` or who have a pending request from it,
    /// sorted (an account being removed leaves every roster).
    fn roster_owners_of(&self, contact: &str) -> Result<Vec<String>, StoreError>;

    // ----- pending inbound subscription requests (RFC 6121 §3.1.3) -----

    /// Stores the subscription request stanza from `from`, replacing an
    /// earlier one from the same sender.
    fn pending_in_put(&self, user: &str, from: &str, stanza: &str) -> Result<(), StoreError>;
    /// Removes the request from `from`; `true` if there was one.
    fn pending_in_remove(&self, user: &str, from: &str) -> Result<bool, StoreError>;
    /// All pending requests as `(from, stanza)`, sorted by sender.
    fn pending_in_list(&self, user: &str) -> Result<Vec<(String, String)>, StoreError>;

    // ----- offline messages (XEP-0160) -----

    /// Stores a message unless it would take the user over `quota` (checked in the
    /// same transaction). Durable when it returns `Stored`.
    fn offline_push(
        &self,
        user: &str,
        stanza: &str,
        quota: OfflineQuota,
    ) -> Result<OfflinePush, StoreError>;
    /// The stored messages of a user, oldest first, claimed or not.
    fn offline_list(&self, user: &str) -> Result<Vec<OfflineMessage>, StoreError>;
    /// Claims the oldest unclaimed messages of a user for one delivery, up to
    /// `limit`, marking them with `claim` in one transaction: two concurrent claims
    /// never return the same message. Claimed messages stay stored until
    /// [`Store::offline_delete`], or go back to the pool with [`Store::offline_release`].
    fn offline_claim(
        &self,
        user: &str,
        claim: i64,
        limit: ClaimLimit,
    ) -> Result<Vec<OfflineMessage>, StoreError>;
    /// Returns the messages still held by `claim` to the pool; how many.
    fn offline_release(&self, user: &str, claim: i64) -> Result<usize, StoreError>;
    /// Returns every claimed message to the pool (a server starting up: claims of a
    /// process that died are void). Returns how many.
    fn offline_release_all(&self) -> Result<usize, StoreError>;
    /// Deletes delivered messages; ids that are unknown or belong to another
    /// user are ignored. Returns how many were deleted.
    fn offline_delete(&self, user: &str, ids: &[i64]) -> Result<usize, StoreError>;
    fn offline_count(&self, user: &str) -> Result<usize, StoreError>;
    /// Messages stored for all users (metrics gauge).
    fn offline_total(&self) -> Result<u64, StoreError>;

    // ----- XEP-0191 block list -----

    /// Blocked JIDs (bare, full or domains), sorted.
    fn blocklist(&self, user: &str) -> Result<Vec<String>, StoreError>;
    /// Adds entries; entries already present are ignored.
    fn block(&self, user: &str, jids: &[String]) -> Result<(), StoreError>;
    /// Removes entries (absent ones are ignored); an empty slice removes all.
    fn unblock(&self, user: &str, jids: &[String]) -> Result<(), StoreError>;

    // ----- SIP registrar bindings (RFC 3261 §10) -----

    /// The bindings of a user, expired ones included, sorted by contact.
    fn sip_bindings(&self, user: &str) -> Result<Vec<SipBinding>, StoreError>;
    /// Replaces the whole binding set of `user` with `bindings` in one durable
    /// transaction (the registrar computes the new set). Every binding's `user` field
    /// is ignored: they are stored under `user`. A later binding with the same contact
    /// replaces an earlier one.
    fn sip_bindings_replace(&self, user: &str, bindings: &[SipBinding]) -> Result<(), StoreError>;
    /// The bindings of every user, expired ones included, sorted by user then contact
    /// (loaded when the server starts).
    fn sip_bindings_all(&self) -> Result<Vec<SipBinding>, StoreError>;
    /// Deletes every binding expired at `now_ms` (`expires_at_ms <= now_ms`); returns
    /// how many.
    fn sip_bindings_purge_expired(&self, now_ms: i64) -> Result<usize, StoreError>;
}
