//! Opening an SQLite database file for the store: a private file, WAL, busy timeout,
//! full sync, foreign keys, and the schema migrations; plus the guard that relaxes the
//! sync level for one transaction.

use std::fs;
use std::io;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// How long a statement waits for a lock held by another connection.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema migrations; migration `i` brings the schema from version `i` to
/// `i + 1` (stored in `PRAGMA user_version`). Append only, never edit.
const MIGRATIONS: &[&str] = &[MIGRATION_1, MIGRATION_2, MIGRATION_3, MIGRATION_4];

/// The schema version this build writes (`PRAGMA user_version` after migrating).
pub(super) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// 1: the initial schema.
pub(super) const MIGRATION_1: &str = "CREATE TABLE users (
        username TEXT NOT NULL PRIMARY KEY,
        roster_version INTEGER NOT NULL DEFAULT 0,
        created_at_unix_ms INTEGER NOT NULL
    );
    CREATE TABLE credentials (
        username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
        mechanism TEXT NOT NULL,
        salt BLOB NOT NULL,
        iterations INTEGER NOT NULL,
        stored_key BLOB NOT NULL,
        server_key BLOB NOT NULL,
        PRIMARY KEY (username, mechanism)
    );
    CREATE TABLE roster_items (
        username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
        jid TEXT NOT NULL,
        name TEXT,
        subscription TEXT NOT NULL,
        ask INTEGER NOT NULL,
        approved INTEGER NOT NULL,
        PRIMARY KEY (username, jid)
    );
    CREATE TABLE roster_groups (
        username TEXT NOT NULL,
        jid TEXT NOT NULL,
        position INTEGER NOT NULL,
        group_name TEXT NOT NULL,
        PRIMARY KEY (username, jid, position),
        FOREIGN KEY (username, jid) REFERENCES roster_items (username, jid) ON DELETE CASCADE
    );
    CREATE TABLE pending_in (
        username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
        from_jid TEXT NOT NULL,
        stanza TEXT NOT NULL,
        PRIMARY KEY (username, from_jid)
    );
    CREATE TABLE offline_messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
        stanza TEXT NOT NULL,
        stored_at_unix_ms INTEGER NOT NULL
    );
    CREATE INDEX offline_messages_by_user ON offline_messages (username, id);
    CREATE TABLE blocklist (
        username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
        jid TEXT NOT NULL,
        PRIMARY KEY (username, jid)
    );";

/// 2: offline messages carry their size (byte quota) and a delivery claim.
const MIGRATION_2: &str =
    "ALTER TABLE offline_messages ADD COLUMN size_bytes INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE offline_messages ADD COLUMN claim INTEGER;
    UPDATE offline_messages SET size_bytes = length(CAST(stanza AS BLOB));";

/// 3: SIP digest credentials (RFC 8760 HA1 per realm and algorithm), set with the
/// SCRAM records when a password is set. Existing accounts get none: the password is
/// needed to derive them.
const MIGRATION_3: &str = "CREATE TABLE sip_credentials (
        username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
        realm TEXT NOT NULL,
        algorithm TEXT NOT NULL,
        ha1 TEXT NOT NULL,
        PRIMARY KEY (username, realm, algorithm)
    );";

/// 4: SIP registrar bindings (RFC 3261 §10): one row per contact of an account's
/// address-of-record, replaced as a set by each REGISTER; the expiry index serves the
/// purge of expired bindings.
const MIGRATION_4: &str = "CREATE TABLE sip_bindings (
        username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
        contact TEXT NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        call_id TEXT NOT NULL,
        cseq INTEGER NOT NULL,
        q INTEGER,
        instance TEXT,
        reg_id INTEGER,
        source TEXT NOT NULL,
        user_agent TEXT,
        PRIMARY KEY (username, contact)
    );
    CREATE INDEX sip_bindings_by_expiry ON sip_bindings (expires_at_ms);";

/// `synchronous = NORMAL` for as long as it lives. Dropping it restores `FULL` on every
/// way out, a panic in the caller's closure included, so the next write that
/// acknowledges a message is never committed without a full sync.
pub(super) struct Relaxed<'a> {
    pub(super) conn: &'a mut Connection,
}

impl<'a> Relaxed<'a> {
    pub(super) fn new(conn: &'a mut Connection) -> Result<Self, StoreError> {
        conn.execute_batch("PRAGMA synchronous = NORMAL")?;
        Ok(Self { conn })
    }
}

impl Drop for Relaxed<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.conn.execute_batch("PRAGMA synchronous = FULL") {
            tracing::error!(error = %e, "cannot restore synchronous=FULL");
        }
    }
}

#[cfg(unix)]
pub(super) fn create_private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    // SQLite gives the -wal and -shm files the mode of the database file.
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(not(unix))]
pub(super) fn create_private_file(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

pub(super) fn configure(conn: &Connection, file: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if file {
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(journal_mode = %mode, "SQLite refused WAL mode");
        }
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
}

pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let supported = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current == supported {
        return Ok(());
    }
    // Another process may be migrating too: decide again under the write lock.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > supported {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    let done = usize::try_from(current)
        .map_err(|_| StoreError::Corrupt(format!("schema version {current}")))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        tx.execute_batch(sql)?;
        tracing::info!(version = i + 1, "database schema migrated");
    }
    tx.pragma_update(None, "user_version", supported)?;
    tx.commit()?;
    Ok(())
}
