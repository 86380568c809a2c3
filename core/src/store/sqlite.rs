//! [`Store`] on one SQLite database file.
//!
//! One connection behind a mutex. The file is in WAL mode, so the running server
//! and the CLI can open it at the same time; `synchronous=FULL` makes accounts,
//! offline messages and SIP registrar bindings durable before the method returns.
//! Roster, pending-subscription, block-list changes, offline deletions and purges of
//! expired SIP bindings commit with `synchronous=NORMAL`: they
//! survive a process crash, and the next full sync covers them against power loss
//! (roster changes are frequent and fsync-bound otherwise). Writes use
//! `BEGIN IMMEDIATE` so that a concurrent writer in another process waits on
//! the busy timeout instead of failing on a lock upgrade.
//!
//! The SQL is kept close to what PostgreSQL accepts (`ON CONFLICT`,
//! `RETURNING`, no `INSERT OR REPLACE`) so that a second backend can reuse it.

use std::collections::HashSet;
use std::fmt;
use std::fs;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use herald_translate::digest::Algorithm as DigestAlgorithm;
use herald_translate::sasl::{ScramHash, ScramRecord};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::sqlite_rows::{
    bump_roster_version, count, hash_name, insert_bindings, insert_credentials,
    insert_sip_credentials, insert_user, load_bindings, load_roster, load_roster_item, now_unix_ms,
    offline_from_row, parse_hash, read_roster_version, require_user, to_u64, to_usize,
    BINDING_COLUMNS,
};
use super::sqlite_schema::{configure, create_private_file, migrate, Relaxed};
use super::{
    AccountCredentials, ClaimLimit, DbError, OfflineMessage, OfflinePush, OfflineQuota, RosterItem,
    SipBinding, Store, StoreError,
};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(DbError::new(e))
    }
}

/// Users created per transaction by [`Store::create_users`].
const BULK_CHUNK: usize = 500;

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: Option<PathBuf>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it, its parent directory and the schema if needed) the
    /// database file at `path`. A new file is created readable by its owner
    /// only: it holds SCRAM keys.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        create_private_file(path)?;
        let wrap = |source| StoreError::Open {
            path: path.to_path_buf(),
            source: DbError::new(source),
        };
        let mut conn = Connection::open(path).map_err(wrap)?;
        configure(&conn, true).map_err(wrap)?;
        migrate(&mut conn).map_err(|e| match e {
            StoreError::Db(source) => StoreError::Open {
                path: path.to_path_buf(),
                source,
            },
            other => other,
        })?;
        Ok(Self {
            conn: Mutex::new(conn),
            path: Some(path.to_path_buf()),
        })
    }

    /// A private database in memory (tests, throwaway servers).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let wrap = |source| StoreError::Open {
            path: PathBuf::from(":memory:"),
            source: DbError::new(source),
        };
        let mut conn = Connection::open_in_memory().map_err(wrap)?;
        configure(&conn, false).map_err(wrap)?;
        migrate(&mut conn).map_err(|e| match e {
            StoreError::Db(source) => StoreError::Open {
                path: PathBuf::from(":memory:"),
                source,
            },
            other => other,
        })?;
        Ok(Self {
            conn: Mutex::new(conn),
            path: None,
        })
    }

    /// The database file, `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock dropped the open transaction, which
        // rolled it back: the connection is still usable.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` in a write transaction (`BEGIN IMMEDIATE`) and commits if it
    /// returned `Ok`.
    fn write<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Like [`Self::write`], but committed with `synchronous = NORMAL`: the transaction
    /// survives a crash or kill -9 of the process (it is in the WAL), and only an OS crash
    /// or power loss before the next full sync could undo it. Used for roster, pending
    /// subscription and block list changes, which are many and cheap to redo; never for
    /// a write that acknowledges a message (offline storage stays `FULL`, and its sync
    /// also makes every earlier relaxed commit durable).
    fn write_relaxed<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let relaxed = Relaxed::new(&mut conn)?;
        let tx = relaxed
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        drop(relaxed);
        Ok(out)
    }

    /// Runs `f` in a read transaction (one consistent snapshot).
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

impl Store for SqliteStore {
    fn create_user(&self, username: &str, creds: &AccountCredentials) -> Result<(), StoreError> {
        let now = now_unix_ms();
        self.write(|tx| {
            if insert_user(tx, username, creds, now)? {
                Ok(())
            } else {
                Err(StoreError::UserExists(username.to_owned()))
            }
        })
    }

    fn set_credentials(
        &self,
        username: &str,
        creds: &AccountCredentials,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            require_user(tx, username)?;
            tx.prepare_cached("DELETE FROM credentials WHERE username = ?1")?
                .execute([username])?;
            tx.prepare_cached("DELETE FROM sip_credentials WHERE username = ?1")?
                .execute([username])?;
            insert_credentials(tx, username, &creds.scram)?;
            match &creds.sip {
                Some(sip) => insert_sip_credentials(tx, username, sip),
                None => Ok(()),
            }
        })
    }

    fn remove_user(&self, username: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            // Everything else goes with ON DELETE CASCADE.
            let removed = tx
                .prepare_cached("DELETE FROM users WHERE username = ?1")?
                .execute([username])?;
            if removed == 0 {
                return Err(StoreError::NoSuchUser(username.to_owned()));
            }
            Ok(())
        })
    }

    fn user_exists(&self, username: &str) -> Result<bool, StoreError> {
        self.read(|tx| match require_user(tx, username) {
            Ok(()) => Ok(true),
            Err(StoreError::NoSuchUser(_)) => Ok(false),
            Err(e) => Err(e),
        })
    }

    fn list_users(&self) -> Result<Vec<String>, StoreError> {
        self.read(|tx| {
            // BINARY collation: byte order, the same as `str`'s `Ord`.
            let mut stmt = tx.prepare_cached("SELECT username FROM users ORDER BY username")?;
            let users = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(users)
        })
    }

    fn credentials(
        &self,
        username: &str,
        hash: ScramHash,
    ) -> Result<Option<ScramRecord>, StoreError> {
        self.read(|tx| {
            require_user(tx, username)?;
            let row = tx
                .prepare_cached(
                    "SELECT mechanism, salt, iterations, stored_key, server_key FROM credentials
                     WHERE username = ?1 AND mechanism = ?2",
                )?
                .query_row([username, hash_name(hash)], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                        r.get::<_, Vec<u8>>(4)?,
                    ))
                })
                .optional()?;
            let Some((mechanism, salt, iterations, stored_key, server_key)) = row else {
                return Ok(None);
            };
            let corrupt =
                |what: String| StoreError::Corrupt(format!("credentials of {username}: {what}"));
            let hash = parse_hash(&mechanism)
                .ok_or_else(|| corrupt(format!("mechanism {mechanism:?}")))?;
            let iterations = u32::try_from(iterations)
                .map_err(|_| corrupt(format!("iterations {iterations}")))?;
            Ok(Some(ScramRecord {
                hash,
                salt,
                iterations,
                stored_key,
                server_key,
            }))
        })
    }

    fn sip_credentials(
        &self,
        username: &str,
        realm: &str,
        algorithm: DigestAlgorithm,
    ) -> Result<Option<String>, StoreError> {
        self.read(|tx| {
            require_user(tx, username)?;
            Ok(tx
                .prepare_cached(
                    "SELECT ha1 FROM sip_credentials
                     WHERE username = ?1 AND realm = ?2 AND algorithm = ?3",
                )?
                .query_row([username, realm, algorithm.base().as_str()], |r| r.get(0))
                .optional()?)
        })
    }

    fn create_users(
        &self,
        users: &[(String, AccountCredentials)],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let now = now_unix_ms();
        let mut results = Vec::with_capacity(users.len());
        for chunk in users.chunks(BULK_CHUNK) {
            let chunk_results = self.write(|tx| {
                chunk
                    .iter()
                    .map(|(name, creds)| {
                        Ok(if insert_user(tx, name, creds, now)? {
                            Ok(())
                        } else {
                            Err(StoreError::UserExists(name.clone()))
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
            })?;
            results.extend(chunk_results);
        }
        Ok(results)
    }

    fn roster(&self, user: &str) -> Result<(u64, Vec<RosterItem>), StoreError> {
        self.read(|tx| {
            let version = read_roster_version(tx, user)?;
            Ok((version, load_roster(tx, user)?))
        })
    }

    fn roster_version(&self, user: &str) -> Result<u64, StoreError> {
        self.read(|tx| read_roster_version(tx, user))
    }

    fn roster_item(&self, user: &str, contact: &str) -> Result<Option<RosterItem>, StoreError> {
        self.read(|tx| {
            require_user(tx, user)?;
            load_roster_item(tx, user, contact)
        })
    }

    fn roster_put(&self, user: &str, item: &RosterItem) -> Result<u64, StoreError> {
        self.write_relaxed(|tx| {
            let version = bump_roster_version(tx, user)?;
            tx.prepare_cached(
                "INSERT INTO roster_items
                     (username, jid, name, subscription, ask, approved)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (username, jid) DO UPDATE SET name = excluded.name,
                     subscription = excluded.subscription, ask = excluded.ask,
                     approved = excluded.approved",
            )?
            .execute(params![
                user,
                item.jid,
                item.name,
                item.subscription.as_str(),
                item.ask,
                item.approved
            ])?;
            tx.prepare_cached("DELETE FROM roster_groups WHERE username = ?1 AND jid = ?2")?
                .execute([user, item.jid.as_str()])?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO roster_groups (username, jid, position, group_name)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut seen = HashSet::new();
            let mut position = 0_i64;
            for group in &item.groups {
                if seen.insert(group.as_str()) {
                    insert.execute(params![user, item.jid, position, group])?;
                    position += 1;
                }
            }
            Ok(version)
        })
    }

    fn roster_remove(&self, user: &str, contact: &str) -> Result<Option<u64>, StoreError> {
        self.write_relaxed(|tx| {
            require_user(tx, user)?;
            // The groups go with ON DELETE CASCADE.
            let removed = tx
                .prepare_cached("DELETE FROM roster_items WHERE username = ?1 AND jid = ?2")?
                .execute([user, contact])?;
            if removed == 0 {
                return Ok(None);
            }
            bump_roster_version(tx, user).map(Some)
        })
    }

    fn roster_len(&self, user: &str) -> Result<usize, StoreError> {
        self.read(|tx| {
            require_user(tx, user)?;
            let n = count(
                tx,
                "SELECT COUNT(*) FROM roster_items WHERE username = ?1",
                user,
            )?;
            to_usize(n, "roster length")
        })
    }

    fn pending_in_put(&self, user: &str, from: &str, stanza: &str) -> Result<(), StoreError> {
        self.write_relaxed(|tx| {
            require_user(tx, user)?;
            tx.prepare_cached(
                "INSERT INTO pending_in (username, from_jid, stanza) VALUES (?1, ?2, ?3)
                 ON CONFLICT (username, from_jid) DO UPDATE SET stanza = excluded.stanza",
            )?
            .execute([user, from, stanza])?;
            Ok(())
        })
    }

    fn roster_owners_of(&self, contact: &str) -> Result<Vec<String>, StoreError> {
        self.read(|tx| {
            // A scan: removing an account is rare, and an index on the contact would
            // cost every roster write.
            let mut stmt = tx.prepare_cached(
                "SELECT username FROM roster_items WHERE jid = ?1
                 UNION SELECT username FROM pending_in WHERE from_jid = ?1
                 ORDER BY username",
            )?;
            let owners = stmt
                .query_map([contact], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(owners)
        })
    }

    fn pending_in_remove(&self, user: &str, from: &str) -> Result<bool, StoreError> {
        self.write_relaxed(|tx| {
            require_user(tx, user)?;
            let removed = tx
                .prepare_cached("DELETE FROM pending_in WHERE username = ?1 AND from_jid = ?2")?
                .execute([user, from])?;
            Ok(removed > 0)
        })
    }

    fn pending_in_list(&self, user: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|tx| {
            require_user(tx, user)?;
            let mut stmt = tx.prepare_cached(
                "SELECT from_jid, stanza FROM pending_in WHERE username = ?1 ORDER BY from_jid",
            )?;
            let list = stmt
                .query_map([user], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(list)
        })
    }

    fn offline_push(
        &self,
        user: &str,
        stanza: &str,
        quota: OfflineQuota,
    ) -> Result<OfflinePush, StoreError> {
        let max_count = i64::try_from(quota.messages).unwrap_or(i64::MAX);
        let max_bytes = i64::try_from(quota.bytes).unwrap_or(i64::MAX);
        let size = i64::try_from(stanza.len()).unwrap_or(i64::MAX);
        let now = now_unix_ms();
        self.write(|tx| {
            require_user(tx, user)?;
            let (count, bytes): (i64, i64) = tx
                .prepare_cached(
                    "SELECT COUNT(*), COALESCE(SUM(size_bytes), 0) FROM offline_messages
                     WHERE username = ?1",
                )?
                .query_row([user], |r| Ok((r.get(0)?, r.get(1)?)))?;
            if count >= max_count || bytes.saturating_add(size) > max_bytes {
                return Ok(OfflinePush::QuotaExceeded);
            }
            tx.prepare_cached(
                "INSERT INTO offline_messages (username, stanza, stored_at_unix_ms, size_bytes)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![user, stanza, now, size])?;
            Ok(OfflinePush::Stored)
        })
    }

    fn offline_list(&self, user: &str) -> Result<Vec<OfflineMessage>, StoreError> {
        self.read(|tx| {
            require_user(tx, user)?;
            let mut stmt = tx.prepare_cached(
                "SELECT id, stanza, stored_at_unix_ms FROM offline_messages
                 WHERE username = ?1 ORDER BY id",
            )?;
            let list = stmt
                .query_map([user], offline_from_row)?
                .collect::<Result<_, _>>()?;
            Ok(list)
        })
    }

    fn offline_claim(
        &self,
        user: &str,
        claim: i64,
        limit: ClaimLimit,
    ) -> Result<Vec<OfflineMessage>, StoreError> {
        let max = i64::try_from(limit.messages).unwrap_or(i64::MAX);
        self.write_relaxed(|tx| {
            require_user(tx, user)?;
            let mut page = Vec::new();
            let mut bytes = 0usize;
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT id, stanza, stored_at_unix_ms FROM offline_messages
                     WHERE username = ?1 AND claim IS NULL ORDER BY id LIMIT ?2",
                )?;
                let mut rows = stmt.query(params![user, max])?;
                while let Some(row) = rows.next()? {
                    let m = offline_from_row(row)?;
                    if !page.is_empty() && bytes + m.stanza.len() > limit.bytes {
                        break;
                    }
                    bytes += m.stanza.len();
                    page.push(m);
                }
            }
            let mut mark =
                tx.prepare_cached("UPDATE offline_messages SET claim = ?1 WHERE id = ?2")?;
            for m in &page {
                mark.execute(params![claim, m.id])?;
            }
            Ok(page)
        })
    }

    fn offline_release(&self, user: &str, claim: i64) -> Result<usize, StoreError> {
        self.write_relaxed(|tx| {
            require_user(tx, user)?;
            Ok(tx
                .prepare_cached(
                    "UPDATE offline_messages SET claim = NULL WHERE username = ?1 AND claim = ?2",
                )?
                .execute(params![user, claim])?)
        })
    }

    fn offline_release_all(&self) -> Result<usize, StoreError> {
        self.write_relaxed(|tx| {
            Ok(tx
                .prepare_cached("UPDATE offline_messages SET claim = NULL WHERE claim IS NOT NULL")?
                .execute([])?)
        })
    }

    fn offline_delete(&self, user: &str, ids: &[i64]) -> Result<usize, StoreError> {
        self.write_relaxed(|tx| {
            require_user(tx, user)?;
            let mut stmt =
                tx.prepare_cached("DELETE FROM offline_messages WHERE username = ?1 AND id = ?2")?;
            let mut deleted = 0;
            for id in ids {
                deleted += stmt.execute(params![user, id])?;
            }
            Ok(deleted)
        })
    }

    fn offline_count(&self, user: &str) -> Result<usize, StoreError> {
        self.read(|tx| {
            require_user(tx, user)?;
            let n = count(
                tx,
                "SELECT COUNT(*) FROM offline_messages WHERE username = ?1",
                user,
            )?;
            to_usize(n, "offline count")
        })
    }

    fn offline_total(&self) -> Result<u64, StoreError> {
        self.read(|tx| {
            let n: i64 = tx
                .prepare_cached("SELECT COUNT(*) FROM offline_messages")?
                .query_row([], |r| r.get(0))?;
            to_u64(n, "offline total")
        })
    }

    fn blocklist(&self, user: &str) -> Result<Vec<String>, StoreError> {
        self.read(|tx| {
            require_user(tx, user)?;
            let mut stmt =
                tx.prepare_cached("SELECT jid FROM blocklist WHERE username = ?1 ORDER BY jid")?;
            let list = stmt
                .query_map([user], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(list)
        })
    }

    fn block(&self, user: &str, jids: &[String]) -> Result<(), StoreError> {
        self.write_relaxed(|tx| {
            require_user(tx, user)?;
            let mut stmt = tx.prepare_cached(
                "INSERT INTO blocklist (username, jid) VALUES (?1, ?2)
                 ON CONFLICT (username, jid) DO NOTHING",
            )?;
            for jid in jids {
                stmt.execute([user, jid.as_str()])?;
            }
            Ok(())
        })
    }

    fn unblock(&self, user: &str, jids: &[String]) -> Result<(), StoreError> {
        self.write_relaxed(|tx| {
            require_user(tx, user)?;
            if jids.is_empty() {
                tx.prepare_cached("DELETE FROM blocklist WHERE username = ?1")?
                    .execute([user])?;
                return Ok(());
            }
            let mut stmt =
                tx.prepare_cached("DELETE FROM blocklist WHERE username = ?1 AND jid = ?2")?;
            for jid in jids {
                stmt.execute([user, jid.as_str()])?;
            }
            Ok(())
        })
    }

    fn sip_bindings(&self, user: &str) -> Result<Vec<SipBinding>, StoreError> {
        self.read(|tx| {
            require_user(tx, user)?;
            load_bindings(
                tx,
                &format!(
                    "SELECT {BINDING_COLUMNS} FROM sip_bindings WHERE username = ?1
                     ORDER BY contact"
                ),
                [user],
            )
        })
    }

    fn sip_bindings_replace(&self, user: &str, bindings: &[SipBinding]) -> Result<(), StoreError> {
        // FULL sync: a 200 OK to a REGISTER promises the binding survives a restart.
        self.write(|tx| {
            require_user(tx, user)?;
            tx.prepare_cached("DELETE FROM sip_bindings WHERE username = ?1")?
                .execute([user])?;
            insert_bindings(tx, user, bindings)
        })
    }

    fn sip_bindings_all(&self) -> Result<Vec<SipBinding>, StoreError> {
        self.read(|tx| {
            load_bindings(
                tx,
                &format!("SELECT {BINDING_COLUMNS} FROM sip_bindings ORDER BY username, contact"),
                [],
            )
        })
    }

    fn sip_bindings_purge_expired(&self, now_ms: i64) -> Result<usize, StoreError> {
        // Relaxed: losing a purge to a power cut only leaves expired rows, which every
        // reader drops by their expiry anyway.
        self.write_relaxed(|tx| {
            Ok(tx
                .prepare_cached("DELETE FROM sip_bindings WHERE expires_at_ms <= ?1")?
                .execute([now_ms])?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synchronous(store: &SqliteStore) -> i64 {
        store
            .lock()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .expect("pragma")
    }

    /// A panic inside a relaxed write must not leave the connection at NORMAL: the next
    /// offline message would then be acknowledged without a full sync.
    #[test]
    fn relaxed_writes_restore_full_sync_even_on_panic() {
        let store = SqliteStore::open_in_memory().expect("open");
        assert_eq!(synchronous(&store), 2);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = store.write_relaxed(|_| -> Result<(), StoreError> {
                panic!("boom");
            });
        }));
        assert!(outcome.is_err());
        assert_eq!(synchronous(&store), 2, "FULL (2) restored after the panic");
        store
            .write_relaxed(|_| Err::<(), _>(StoreError::Corrupt("x".into())))
            .expect_err("the closure's error is returned");
        assert_eq!(synchronous(&store), 2, "FULL (2) restored after an error");
    }
}
