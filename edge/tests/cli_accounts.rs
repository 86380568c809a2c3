//! Account commands as an admin runs them, from any directory: they find the server's
//! configuration by the search order, say which one they use, and never create a
//! second database.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use herald_core::accounts;
use herald_core::store::{SqliteStore, Store};
use herald_translate::digest::{self, Algorithm};

struct Dirs {
    root: PathBuf,
}

impl Dirs {
    fn new(tag: &str) -> Self {
        let root = std::env::temp_dir().join(format!(
            "herald-cli-{tag}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(root.join("server")).expect("server dir");
        std::fs::create_dir_all(root.join("elsewhere")).expect("other dir");
        std::fs::write(
            root.join("server/herald.toml"),
            "[server]\ndomains = [\"localhost\", \"example.com\"]\ndata_dir = \"data\"\n",
        )
        .expect("config");
        Self { root }
    }

    fn server(&self) -> PathBuf {
        self.root.join("server")
    }

    fn elsewhere(&self) -> PathBuf {
        self.root.join("elsewhere")
    }

    fn config(&self) -> PathBuf {
        self.server().join("herald.toml")
    }

    /// The server's database, as `herald serve` would have created it.
    fn create_database(&self) {
        std::fs::create_dir_all(self.server().join("data")).expect("data dir");
        SqliteStore::open(&self.server().join("data/herald.db")).expect("database");
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Run `herald ARGS` in `dir` with `HERALD_CONFIG` set to `env` (or unset), feeding
/// `stdin`.
fn herald(dir: &Path, env: Option<&Path>, args: &[&str], stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("HERALD_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(env) = env {
        cmd.env("HERALD_CONFIG", env);
    }
    let mut child = cmd.spawn().expect("run herald");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("herald ends")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn account_commands_refuse_to_create_a_database() {
    let d = Dirs::new("nodb");
    let config = d.config();
    let out = herald(
        &d.elsewhere(),
        None,
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "user",
            "add",
            "bob",
            "--password",
            "x",
        ],
        "",
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("no database at") && err.contains("server/data/herald.db"),
        "{err}"
    );
    assert!(
        err.contains("HERALD_CONFIG"),
        "says how to point at the server: {err}"
    );
    assert!(!d.server().join("data").exists(), "nothing was created");

    // Without any configuration: the embedded default, said so, and nothing created.
    let out = herald(&d.elsewhere(), None, &["user", "list"], "");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("configuration: embedded default"), "{err}");
    assert!(err.contains("no database at data/herald.db"), "{err}");
    assert!(!d.elsewhere().join("data").exists());
}

#[test]
fn every_way_of_naming_the_configuration_reaches_one_database() {
    let d = Dirs::new("search");
    d.create_database();
    let config = d.config();
    // HERALD_CONFIG from another directory; a JID of a hosted domain; the password on
    // standard input.
    let out = herald(
        &d.elsewhere(),
        Some(&config),
        &["user", "add", "alice@example.com"],
        "s3cret\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "created alice@example.com\n");
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "configuration: {} (HERALD_CONFIG)",
            config.display()
        )),
        "{err}"
    );
    // ./herald.toml in the server's directory finds the same database.
    let out = herald(&d.server(), None, &["user", "list"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "alice@localhost\n");
    assert!(text(&out.stderr).contains("configuration: herald.toml"));
    assert!(!d.elsewhere().join("data").exists());
}

#[test]
fn account_arguments_and_passwords_get_clear_answers() {
    let d = Dirs::new("args");
    d.create_database();
    let config = d.config();
    let run = |args: &[&str], stdin: &str| herald(&d.elsewhere(), Some(&config), args, stdin);

    let out = run(&["user", "add", "eve@other.example", "--password", "x"], "");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("other.example is not a domain this server hosts"),
        "{err}"
    );

    let out = run(&["user", "add", "dave"], "\n");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("the password is empty"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&["user", "add", "carol", "--password", "pw"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["user", "remove", "carol@localhost"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("removed carol@localhost: left 0 other roster(s)"),
        "{}",
        text(&out.stdout)
    );
    let out = run(&["user", "list"], "");
    assert_eq!(text(&out.stdout), "");
}

/// The SIP digest HA1 of `user` for `realm` and `algorithm` in the server's database.
fn stored_ha1(d: &Dirs, user: &str, realm: &str, algorithm: Algorithm) -> Option<String> {
    let store = SqliteStore::open(&d.server().join("data/herald.db")).expect("database");
    store
        .sip_credentials(user, realm, algorithm)
        .expect("lookup")
}

#[test]
fn passwords_give_sip_digest_credentials_for_the_configured_realm() {
    let d = Dirs::new("sip");
    d.create_database();
    let config = d.config();
    let run = |args: &[&str], stdin: &str| herald(&d.elsewhere(), Some(&config), args, stdin);
    let expect = |user: &str, realm: &str, password: &str| {
        for a in [Algorithm::Md5, Algorithm::Sha256] {
            assert_eq!(
                stored_ha1(&d, user, realm, a),
                Some(digest::ha1(a, user, realm, password)),
                "{user} {realm} {a:?}"
            );
        }
    };

    // `user add`: both algorithms, in the first hosted domain (no [sip] realm), for
    // the stored name.
    let out = run(&["user", "add", "Alice", "--password", "secret"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    expect("alice", "localhost", "secret");
    assert_eq!(
        stored_ha1(&d, "alice", "localhost", Algorithm::Md5).as_deref(),
        // printf 'alice:localhost:secret' | md5sum
        Some("c4bd012dfa61b3000723c206d202a63c")
    );
    let out = run(&["user", "list"], "");
    assert_eq!(text(&out.stdout), "alice@localhost\n");

    // `user passwd` replaces them.
    let out = run(&["user", "passwd", "alice", "--password", "changed"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    expect("alice", "localhost", "changed");

    // `user import`.
    let csv = d.root.join("users.csv");
    std::fs::write(&csv, "username,password\nbob,hunter2\n").expect("csv");
    let out = run(&["user", "import", csv.to_str().expect("utf-8")], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    expect("bob", "localhost", "hunter2");

    // Another realm: the old rows are of no use there, and the listing says so.
    std::fs::write(
        &config,
        "[server]\ndomains = [\"localhost\", \"example.com\"]\ndata_dir = \"data\"\n\
         [sip]\nrealm = \"sip.example\"\n",
    )
    .expect("config");
    assert_eq!(stored_ha1(&d, "alice", "sip.example", Algorithm::Md5), None);
    let out = run(&["user", "list"], "");
    let listed = text(&out.stdout);
    assert!(
        listed.contains(
            "alice@localhost  (no SIP credentials: set the password again \
             (`herald user passwd`) in realm sip.example)"
        ),
        "{listed}"
    );
    let out = run(&["user", "passwd", "alice", "--password", "changed"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    expect("alice", "sip.example", "changed");
    assert_eq!(stored_ha1(&d, "alice", "localhost", Algorithm::Md5), None);
    let out = run(&["user", "list"], "");
    assert!(
        text(&out.stdout).starts_with("alice@localhost\nbob@localhost  (no SIP"),
        "{}",
        text(&out.stdout)
    );
}

/// An account from before SIP credentials existed (its rows deleted, as a database
/// migrated from schema 2 has none) is listed with what to do.
#[test]
fn an_account_without_sip_credentials_is_told_to_set_its_password() {
    let d = Dirs::new("nosip");
    d.create_database();
    let config = d.config();
    let run = |args: &[&str], stdin: &str| herald(&d.elsewhere(), Some(&config), args, stdin);
    let out = run(&["user", "add", "carol", "--password", "pw"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let conn = rusqlite::Connection::open(d.server().join("data/herald.db")).expect("open");
    conn.execute("DELETE FROM sip_credentials WHERE username = 'carol'", [])
        .expect("delete");
    drop(conn);
    let out = run(&["user", "list"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "carol@localhost  (no SIP credentials: set the password again \
         (`herald user passwd`) in realm localhost)\n"
    );
    // The XMPP side is untouched: SCRAM records are still there.
    let store = SqliteStore::open(&d.server().join("data/herald.db")).expect("database");
    assert!(store
        .credentials("carol", herald_translate::sasl::ScramHash::Sha256)
        .expect("lookup")
        .is_some());
    assert!(!accounts::sip_ready(&store, "carol", "localhost").expect("lookup"));
    drop(store);
    let out = run(&["user", "passwd", "carol", "--password", "pw"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["user", "list"], "");
    assert_eq!(text(&out.stdout), "carol@localhost\n");
}
