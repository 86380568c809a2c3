//! SQLite-specific store tests: two handles on one file (server and CLI),
//! pragmas and schema version, open errors, and no loss on SIGKILL.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use herald_translate::sasl::ScramHash;

use super::tests::sip_bindings::binding;
use super::tests::{creds, item, record, TempDir};
use super::{
    AccountCredentials, OfflinePush, OfflineQuota, SipBinding, SqliteStore, Store, StoreError,
    Subscription,
};

/// A second handle on the same file (the CLI while the server runs) sees the
/// first one's writes and the other way round, and a reopen keeps everything.
#[test]
fn sqlite_two_handles_share_the_file() {
    let dir = TempDir::new();
    let server = SqliteStore::open(&dir.db()).unwrap();
    let cli = SqliteStore::open(&dir.db()).unwrap();
    assert_eq!(server.path(), Some(dir.db().as_path()));

    cli.create_user("alice", &creds(1)).unwrap();
    assert!(server.user_exists("alice").unwrap());
    assert_eq!(
        server.credentials("alice", ScramHash::Sha256).unwrap(),
        Some(record(ScramHash::Sha256, 1))
    );
    server
        .roster_put(
            "alice",
            &item("bob@example.org", Subscription::Both, &["G"]),
        )
        .unwrap();
    server
        .offline_push("alice", "<message/>", OfflineQuota::messages(10))
        .unwrap();
    assert_eq!(cli.roster_version("alice").unwrap(), 1);
    assert_eq!(cli.offline_count("alice").unwrap(), 1);
    cli.set_credentials("alice", &creds(2)).unwrap();
    assert_eq!(
        server.credentials("alice", ScramHash::Sha1).unwrap(),
        Some(record(ScramHash::Sha1, 2))
    );
    cli.remove_user("alice").unwrap();
    assert!(!server.user_exists("alice").unwrap());
    assert_eq!(server.offline_total().unwrap(), 0);

    // Both handles write concurrently; the quota holds across connections.
    server
        .create_user("bob", &AccountCredentials::default())
        .unwrap();
    thread::scope(|scope| {
        for store in [&server, &cli] {
            scope.spawn(move || {
                for _ in 0..20 {
                    store
                        .offline_push("bob", "<message/>", OfflineQuota::messages(30))
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(server.offline_count("bob").unwrap(), 30);

    drop(server);
    drop(cli);
    let reopened = SqliteStore::open(&dir.db()).unwrap();
    assert_eq!(reopened.offline_count("bob").unwrap(), 30);
}

#[test]
fn sqlite_pragmas_and_schema_version() {
    let dir = TempDir::new();
    drop(SqliteStore::open(&dir.db()).unwrap());
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert!(version >= 1);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.db()).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "database readable by others: {mode:o}");
    }

    // Reopening an up-to-date database is fine; a newer schema is refused.
    drop(SqliteStore::open(&dir.db()).unwrap());
    conn.pragma_update(None, "user_version", version + 1)
        .unwrap();
    let err = SqliteStore::open(&dir.db()).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, supported } if found == version + 1 && supported == version),
        "{err}"
    );
}

/// A database written by schema 1 keeps its offline messages through the upgrade, and
/// their sizes count against the byte quota.
#[test]
fn sqlite_migrates_offline_messages_from_schema_1() {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.db().parent().unwrap()).unwrap();
    {
        let conn = rusqlite::Connection::open(dir.db()).unwrap();
        conn.execute_batch(super::sqlite_schema::MIGRATION_1)
            .unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO users VALUES ('alice', 0, 0);
             INSERT INTO offline_messages (username, stanza, stored_at_unix_ms)
                 VALUES ('alice', '<message>\u{e9}</message>', 1);",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&dir.db()).unwrap();
    assert_eq!(store.offline_count("alice").unwrap(), 1);
    // An account from before SIP credentials has none until its password is set.
    assert_eq!(
        store
            .sip_credentials(
                "alice",
                "localhost",
                herald_translate::digest::Algorithm::Md5
            )
            .unwrap(),
        None
    );
    // The binding table arrives empty with the upgrade.
    assert!(store.sip_bindings("alice").unwrap().is_empty());
    let quota = OfflineQuota {
        messages: 10,
        bytes: 25,
    };
    // 21 bytes stored (é takes two), so 4 more fit and 5 do not.
    assert_eq!(
        store.offline_push("alice", "12345", quota).unwrap(),
        OfflinePush::QuotaExceeded
    );
    assert_eq!(
        store.offline_push("alice", "1234", quota).unwrap(),
        OfflinePush::Stored
    );
}

/// SIP bindings written through one handle are there after the file is closed and
/// opened again (a server restart), and a second handle sees them at once.
#[test]
fn sqlite_sip_bindings_survive_reopen() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.db()).unwrap();
    store
        .create_user("alice", &AccountCredentials::default())
        .unwrap();
    let set = vec![
        SipBinding {
            q: Some(700),
            instance: Some("<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>".to_owned()),
            reg_id: Some(1),
            user_agent: Some("UA".to_owned()),
            ..binding("alice", "sip:alice@192.0.2.1:5062;transport=tcp", 4_000_000)
        },
        binding("alice", "sip:alice@192.0.2.2", 5_000_000),
    ];
    store.sip_bindings_replace("alice", &set).unwrap();
    let other = SqliteStore::open(&dir.db()).unwrap();
    assert_eq!(other.sip_bindings("alice").unwrap(), set);
    drop(other);
    drop(store);

    let reopened = SqliteStore::open(&dir.db()).unwrap();
    assert_eq!(reopened.sip_bindings("alice").unwrap(), set);
    assert_eq!(reopened.sip_bindings_all().unwrap(), set);
}

#[test]
fn sqlite_open_errors_name_the_path() {
    let dir = TempDir::new();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let err = SqliteStore::open(&blocker.join("herald.db")).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err}");

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x42; 4096]).unwrap();
    let err = SqliteStore::open(&garbage).unwrap_err();
    assert!(
        matches!(err, StoreError::Open { ref path, .. } if path == &garbage),
        "{err}"
    );
}

/// Set in the child process of [`sqlite_survives_kill_9`]: the database path.
const KILL_CHILD_ENV: &str = "HERALD_STORE_KILL9_CHILD_DB";
const STORED_MARKER: &str = "herald-store-kill9-stored";

/// The writer half of [`sqlite_survives_kill_9`]; does nothing in a normal run.
#[test]
fn sqlite_kill9_child_writer() {
    let Some(path) = std::env::var_os(KILL_CHILD_ENV) else {
        return;
    };
    let store = SqliteStore::open(Path::new(&path)).unwrap();
    let mut stdout = std::io::stdout();
    for i in 0.. {
        let push = store.offline_push(
            "alice",
            &format!("<message id='{i}'/>"),
            OfflineQuota::messages(usize::MAX),
        );
        assert_eq!(push.unwrap(), OfflinePush::Stored);
        // A REGISTER answered 200 must survive as well.
        let contact = format!("sip:alice@192.0.2.1;n={i}");
        store
            .sip_bindings_replace("alice", &[binding("alice", &contact, i64::MAX)])
            .unwrap();
        writeln!(stdout, "{STORED_MARKER} {i}").unwrap();
        stdout.flush().unwrap();
    }
}

/// Messages whose `offline_push` returned, and SIP bindings whose
/// `sip_bindings_replace` returned, survive a SIGKILL of the writer
/// (killed while it keeps writing), and the database stays readable.
#[test]
fn sqlite_survives_kill_9() {
    const ACKED: u64 = 3;
    let dir = TempDir::new();
    SqliteStore::open(&dir.db())
        .unwrap()
        .create_user("alice", &AccountCredentials::default())
        .unwrap();

    let module = module_path!();
    let test = format!(
        "{}::sqlite_kill9_child_writer",
        module.split_once("::").map_or(module, |(_, rest)| rest)
    );
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(KILL_CHILD_ENV, dir.db())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line
                .split_once(STORED_MARKER)
                .and_then(|(_, n)| n.trim().parse::<u64>().ok())
            {
                if tx.send(n).is_err() {
                    break;
                }
            }
        }
    });
    let acked = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(n) if n + 1 >= ACKED => break n + 1,
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("child writer did not report: {e}");
            }
        }
    };
    child.kill().unwrap();
    let status = child.wait().unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status}");
    }
    assert!(!status.success());

    let store = SqliteStore::open(&dir.db()).unwrap();
    let list = store.offline_list("alice").unwrap();
    assert!(list.len() as u64 >= acked, "{} < {acked}", list.len());
    for (i, m) in list.iter().enumerate() {
        assert_eq!(m.stanza, format!("<message id='{i}'/>"));
    }
    // The binding set of the last acknowledged round or a later one.
    let bindings = store.sip_bindings("alice").unwrap();
    assert_eq!(bindings.len(), 1, "{bindings:?}");
    let n: u64 = bindings[0]
        .contact
        .rsplit_once(";n=")
        .and_then(|(_, n)| n.parse().ok())
        .unwrap();
    assert!(
        n + 1 >= acked,
        "binding {n} older than acknowledged {acked}"
    );
    // Still writable after recovery.
    assert_eq!(
        store
            .offline_push("alice", "<message/>", OfflineQuota::messages(usize::MAX))
            .unwrap(),
        OfflinePush::Stored
    );
}
