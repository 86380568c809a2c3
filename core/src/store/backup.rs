//! Online backup and restore of the SQLite database file.
//!
//! [`backup`] copies a database that a running server may be writing to, with SQLite's
//! online backup API in one step: the copy reads one WAL snapshot (a read transaction,
//! which never blocks the server's writers), so it is consistent — every transaction
//! committed before the snapshot, none after. The copy is written to a temporary file
//! beside the destination, checked, synced and then renamed into place, in rollback
//! journal mode so that the backup is a single self-contained file.
//!
//! [`restore`] replaces the database file with a backup. The caller must make sure no
//! server uses the database (the edge holds the data directory's lock while it does).

use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::sqlite_schema::{create_private_file, SCHEMA_VERSION};
use super::{DbError, StoreError};

/// Tables every Herald database has.
const HERALD_TABLES: [&str; 5] = [
    "users",
    "credentials",
    "roster_items",
    "offline_messages",
    "blocklist",
];

/// What a checked database holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbSummary {
    /// `PRAGMA user_version`: how many migrations it has.
    pub schema_version: i64,
    pub users: u64,
    pub offline_messages: u64,
}

fn open_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Open {
        path: path.to_path_buf(),
        source: DbError::new(e),
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Whether `path` is a Herald database this build can use: an SQLite file that passes
/// `quick_check`, with Herald's tables and a schema version between 1 and this build's.
pub fn check(path: &Path) -> Result<DbSummary, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err(path))?;
    summarize(&conn, path)
}

fn summarize(conn: &Connection, path: &Path) -> Result<DbSummary, StoreError> {
    let not_herald = |why: String| {
        StoreError::Corrupt(format!(
            "{} is not a Herald database: {why}",
            path.display()
        ))
    };
    let quick: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| not_herald(e.to_string()))?;
    if quick != "ok" {
        return Err(not_herald(format!("integrity check: {quick}")));
    }
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version < 1 {
        return Err(not_herald("no schema version".into()));
    }
    for table in HERALD_TABLES {
        let n: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )?;
        if n != 1 {
            return Err(not_herald(format!("table {table} is missing")));
        }
    }
    let count = |sql: &str| -> Result<u64, StoreError> {
        let n: i64 = conn.query_row(sql, [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    Ok(DbSummary {
        schema_version: version,
        users: count("SELECT count(*) FROM users")?,
        offline_messages: count("SELECT count(*) FROM offline_messages")?,
    })
}

/// Copy the database at `src` into a new, standalone file at `dest` (in one step, see
/// the module documentation), check the copy and sync it. Returns what the copy holds.
fn copy_checked(src: &Connection, src_path: &Path, dest: &Path) -> Result<DbSummary, StoreError> {
    let tmp = sibling(dest, &format!(".tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    create_private_file(&tmp)?;
    let result = (|| {
        let mut out = Connection::open(&tmp).map_err(open_err(&tmp))?;
        {
            let b = rusqlite::backup::Backup::new(src, &mut out)?;
            // -1: every page in one step, under one read snapshot of the source.
            match b.step(-1)? {
                rusqlite::backup::StepResult::Done => {}
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "backup of {} did not complete: {other:?}",
                        src_path.display()
                    )))
                }
            }
        }
        let _: String = out.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
        let summary = summarize(&out, src_path)?;
        drop(out);
        fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io_err(&tmp))?;
        fs::rename(&tmp, dest).map_err(io_err(dest))?;
        sync_dir(dest);
        Ok(summary)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Make a rename in `path`'s directory durable (best effort).
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Back up the live database at `db` to `dest` (replaced if it exists). Safe while a
/// server is writing to `db`.
pub fn backup(db: &Path, dest: &Path) -> Result<DbSummary, StoreError> {
    if !db.exists() {
        return Err(StoreError::Io {
            path: db.to_path_buf(),
            source: std::io::ErrorKind::NotFound.into(),
        });
    }
    // Read-write without create: a WAL database is read through its shared-memory
    // index, which a read-only connection may not be able to create.
    let src = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err(db))?;
    src.busy_timeout(super::sqlite_schema::BUSY_TIMEOUT)?;
    copy_checked(&src, db, dest)
}

/// Replace the database at `db` with the backup at `backup_file`, which must pass
/// [`check`]. Nobody may be using `db`. The previous database (when there was one) is
/// kept as `<db>.pre-restore`; the new one is put in place with one rename, after the
/// old write-ahead log was checkpointed and removed (a stale log must never be replayed
/// onto the restored file).
pub fn restore(backup_file: &Path, db: &Path) -> Result<DbSummary, StoreError> {
    check(backup_file)?;
    let src = Connection::open_with_flags(
        backup_file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err(backup_file))?;
    let staged = sibling(db, ".restore");
    let summary = copy_checked(&src, backup_file, &staged)?;
    drop(src);
    if db.exists() {
        // Fold the old log into the old file, so the kept copy is complete and the log
        // can go.
        if let Ok(old) = Connection::open(db) {
            let _ = old.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
        let kept = sibling(db, ".pre-restore");
        let _ = fs::remove_file(&kept);
        fs::hard_link(db, &kept)
            .or_else(|_| fs::copy(db, &kept).map(|_| ()))
            .map_err(io_err(&kept))?;
    }
    for side in ["-wal", "-shm"] {
        let p = sibling(db, side);
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&p)(e)),
        }
    }
    fs::rename(&staged, db).map_err(io_err(db))?;
    sync_dir(db);
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AccountCredentials, SqliteStore, Store};

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "herald-backup-{tag}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        fs::create_dir_all(&d).expect("dir");
        d
    }

    #[test]
    fn backup_of_an_open_database_restores_elsewhere() {
        let d = dir("rt");
        let db = d.join("herald.db");
        let store = SqliteStore::open(&db).expect("open");
        store
            .create_user("alice", &AccountCredentials::default())
            .expect("user");
        let out = d.join("copy.db");
        let s = backup(&db, &out).expect("backup while open");
        assert_eq!(s.users, 1);
        store
            .create_user("bob", &AccountCredentials::default())
            .expect("user after the backup");
        drop(store);
        assert!(!sibling(&out, "-wal").exists(), "a standalone file");

        let fresh = d.join("fresh").join("herald.db");
        fs::create_dir_all(fresh.parent().expect("parent")).expect("dir");
        assert_eq!(restore(&out, &fresh).expect("restore").users, 1);
        let users = SqliteStore::open(&fresh)
            .expect("open")
            .list_users()
            .expect("users");
        assert_eq!(users, ["alice"]);

        // Over an existing database: replaced, the old one kept.
        restore(&out, &db).expect("restore over");
        assert_eq!(
            SqliteStore::open(&db)
                .expect("open")
                .list_users()
                .expect("u"),
            ["alice"]
        );
        assert!(sibling(&db, ".pre-restore").exists());
        let _ = fs::remove_dir_all(d);
    }

    #[test]
    fn restore_refuses_what_is_not_a_herald_database() {
        let d = dir("bad");
        let db = d.join("herald.db");
        SqliteStore::open(&db)
            .expect("open")
            .create_user("alice", &AccountCredentials::default())
            .expect("u");
        let text = d.join("notes.txt");
        fs::write(&text, "hello").expect("write");
        assert!(restore(&text, &db).is_err());
        let other = d.join("other.db");
        Connection::open(&other)
            .expect("open")
            .execute_batch("CREATE TABLE t (x)")
            .expect("table");
        let err = restore(&other, &db).expect_err("not Herald").to_string();
        assert!(err.contains("not a Herald database"), "{err}");
        assert_eq!(
            SqliteStore::open(&db)
                .expect("open")
                .list_users()
                .expect("u"),
            ["alice"],
            "left alone"
        );
        let _ = fs::remove_dir_all(d);
    }
}
