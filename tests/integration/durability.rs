//! The `herald` binary as a child process: accounts created with `herald user`, contact
//! lists imported with `herald roster import`, a server killed with SIGKILL and
//! restarted keeps what it acknowledged.
//!
//! Where the binary comes from: `env!("CARGO_BIN_EXE_herald")` only exists in tests of
//! the package that owns the binary (herald-edge), so these tests look for it next to
//! their own executable's directory (`target/<profile>/herald`, found from
//! `target/<profile>/deps/integration-*`). Before the first use they run
//! `cargo build -p herald-edge --bin herald` in the workspace (without the variables
//! cargo sets for this crate, which would invalidate build scripts), a no-op when the
//! binary is up to date and a rebuild when other crates changed. Set `HERALD_BIN` to use
//! a given binary instead and skip the build.
//!
//! Ports: the client port must stay the same across a restart, so it is picked by
//! binding `127.0.0.1:0` and releasing it; the admin listener uses port 0.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// How long `herald serve` may take to print its banner (generous: CI machines are busy).
const STARTUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

use herald_tests::{body_of, unique_temp_dir, XmppClient, PASSWORD};
use herald_translate::ns;

/// Variables cargo sets for the crate under test (see `herald_binary`).
const CRATE_ENV_PREFIXES: &[&str] = &[
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "CARGO_CRATE_",
    "CARGO_BIN_",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "OUT_DIR",
];

/// The `herald` binary, built once per test process if needed.
fn herald_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("HERALD_BIN") {
            return PathBuf::from(bin);
        }
        let exe = std::env::current_exe().expect("the test executable's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test executable lives in target/<profile>/deps");
        let bin = profile_dir.join(format!("herald{}", std::env::consts::EXE_SUFFIX));
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("tests/ is inside the workspace");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "-p", "herald-edge", "--bin", "herald"])
            .current_dir(workspace);
        // Cargo runs this test with variables describing herald-tests (CARGO_PKG_NAME,
        // CARGO_MANIFEST_DIR, ...). Build scripts such as ring's rerun when those change,
        // so a nested cargo that inherited them would rebuild half the workspace, and the
        // next ordinary build would rebuild it back. Give it the environment a shell has.
        for (key, _) in std::env::vars_os() {
            let crate_specific = key
                .to_str()
                .is_some_and(|k| CRATE_ENV_PREFIXES.iter().any(|p| k.starts_with(p)));
            if crate_specific {
                build.env_remove(&key);
            }
        }
        let built = build.status().is_ok_and(|s| s.success());
        // A workspace broken mid-edit by someone else should not hide an existing binary.
        assert!(
            built || bin.exists(),
            "cargo build -p herald-edge --bin herald failed and {} does not exist",
            bin.display()
        );
        if !built {
            eprintln!(
                "warning: cargo build failed; testing the existing {}",
                bin.display()
            );
        }
        bin
    })
}

/// A loopback port that was free a moment ago, outside the ephemeral range.
fn free_port() -> SocketAddr {
    herald_tests::free_loopback_port()
}

/// A data directory, a configuration file and a fixed client port.
struct Installation {
    dir: PathBuf,
    config: PathBuf,
    c2s: SocketAddr,
}

impl Installation {
    fn new() -> Self {
        let dir = unique_temp_dir("bin");
        std::fs::create_dir_all(&dir).expect("create the test directory");
        let c2s = free_port();
        let config = dir.join("herald.toml");
        let data = dir.join("data").display().to_string();
        let text = format!(
            "[server]\n\
             domains = [\"localhost\"]\n\
             data_dir = {data:?}\n\
             [c2s]\n\
             listen = [\"{c2s}\"]\n\
             listen_tls = []\n\
             auth_failure_delay_ms = 10\n\
             [sip]\n\
             listen_udp = []\n\
             listen_tcp = []\n\
             listen_tls = []\n\
             [admin]\n\
             listen = \"127.0.0.1:0\"\n\
             [log]\n\
             level = \"warn\"\n"
        );
        std::fs::write(&config, text).expect("write the configuration");
        // The database a first `herald serve` creates: account commands never create one.
        std::fs::create_dir_all(dir.join("data")).expect("data directory");
        herald_core::store::SqliteStore::open(&dir.join("data/herald.db")).expect("database");
        Self { dir, config, c2s }
    }

    fn ca(&self) -> PathBuf {
        self.dir.join("data").join("tls").join("dev-ca.pem")
    }

    /// `herald user add <name> --password secret`.
    fn add_user(&self, name: &str) {
        let out = Command::new(herald_binary())
            .args(["user", "add", name, "--password", PASSWORD, "--config"])
            .arg(&self.config)
            .output()
            .expect("run herald user add");
        assert!(
            out.status.success(),
            "herald user add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("created {name}@localhost")),
            "{stdout}"
        );
    }

    /// `herald roster import FILE`: (success, stdout, stderr).
    fn import_contacts(&self, csv: &str) -> (bool, String, String) {
        let file = self.dir.join("contacts.csv");
        std::fs::write(&file, csv).expect("write contacts.csv");
        let out = Command::new(herald_binary())
            .args(["roster", "import"])
            .arg(&file)
            .arg("--config")
            .arg(&self.config)
            .output()
            .expect("run herald roster import");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn list_users(&self) -> String {
        let out = Command::new(herald_binary())
            .args(["user", "list", "--config"])
            .arg(&self.config)
            .output()
            .expect("run herald user list");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `herald serve`, returned once its banner says it is listening.
    async fn serve(&self) -> Server {
        let log = self.dir.join("herald.log");
        let stderr = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open the server log");
        let mut child = Command::new(herald_binary())
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn herald serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the banner, then keeps draining stdout so the server never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let ready = tokio::task::spawn_blocking(move || loop {
            match rx.recv_timeout(STARTUP_TIMEOUT) {
                Ok(line) if line.contains("XMPP clients (STARTTLS)") => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        })
        .await
        .expect("banner reader");
        let server = Server { child };
        if let Err(e) = ready {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("herald serve did not come up ({e}); its log:\n{log}");
        }
        server
    }

    async fn login(&self, user: &str, resource: &str) -> XmppClient {
        XmppClient::connect_starttls(self.c2s, &self.ca(), user, PASSWORD, Some(resource)).await
    }
}

impl Drop for Installation {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running `herald serve`; killed if still running when dropped.
struct Server {
    child: Child,
}

impl Server {
    /// SIGKILL: no shutdown code runs.
    fn kill(mut self) {
        self.child.kill().expect("kill herald");
        self.child.wait().expect("reap herald");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn acknowledged_offline_message_survives_sigkill() {
    let install = Installation::new();
    install.add_user("alice");
    install.add_user("bob");
    let server = install.serve().await;

    let mut alice = install.login("alice", "a").await;
    // Stream management gives the sender its proof: <a h='1'/> says the server has
    // handled (here: stored) the message.
    alice.send("<enable xmlns='urn:xmpp:sm:3'/>").await;
    alice
        .recv_where("<enabled/>", |e| e.is("enabled", ns::SM))
        .await;
    alice.send_message("bob@localhost", "written to disk").await;
    alice.send("<r xmlns='urn:xmpp:sm:3'/>").await;
    let ack = alice.recv_where("<a/>", |e| e.is("a", ns::SM)).await;
    assert_eq!(ack.attr("h"), Some("1"));

    server.kill();
    alice.expect_closed().await;

    let _server = install.serve().await;
    let mut bob = install.login("bob", "b").await;
    bob.send("<presence/>").await;
    let m = bob.recv_message().await;
    assert_eq!(body_of(&m).as_deref(), Some("written to disk"));
    assert_eq!(m.attr("from"), Some("alice@localhost/a"));
    assert!(m.has_child("delay", ns::DELAY));
}

#[tokio::test]
async fn user_added_while_the_server_runs_can_log_in() {
    let install = Installation::new();
    let _server = install.serve().await;
    install.add_user("carol");
    assert!(install.list_users().contains("carol@localhost"));
    let mut carol = install.login("carol", "c").await;
    carol.assert_alive().await;
    // A second account, created while sessions are active, can reach the first.
    install.add_user("dave");
    let mut dave = install.login("dave", "d").await;
    dave.send_message("carol@localhost/c", "hi carol").await;
    carol.recv_message_with_body("hi carol").await;
}

#[tokio::test]
async fn imported_contact_lists_are_mutual_subscriptions() {
    let install = Installation::new();
    install.add_user("erin");
    install.add_user("frank");
    let (ok, stdout, stderr) = install.import_contacts(
        "owner,contact,name,groups\nerin,frank,Frank F,Team;Lunch\nfrank,erin@localhost\nzoe,erin\n",
    );
    assert!(!ok, "a line with errors makes the command fail");
    assert!(
        stdout.contains("stored 2 contact(s); 1 line(s) with errors"),
        "{stdout}"
    );
    assert!(
        stderr.contains("contacts.csv:4: no such user: zoe"),
        "{stderr}"
    );

    let _server = install.serve().await;
    let mut erin = install.login("erin", "e").await;
    let roster = erin
        .iq("get", None, "<query xmlns='jabber:iq:roster'/>")
        .await;
    let query = roster.child("query", ns::ROSTER).expect("roster query");
    let items: Vec<_> = query
        .elements()
        .filter(|e| e.is("item", ns::ROSTER))
        .collect();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].attr("jid"), Some("frank@localhost"));
    assert_eq!(items[0].attr("subscription"), Some("both"));
    assert_eq!(items[0].attr("name"), Some("Frank F"));
    let groups: Vec<String> = items[0]
        .elements()
        .filter(|g| g.is("group", ns::ROSTER))
        .map(|g| g.text())
        .collect();
    assert_eq!(groups, vec!["Team", "Lunch"]);

    // The subscription works both ways: each sees the other's presence.
    erin.send("<presence/>").await;
    let mut frank = install.login("frank", "f").await;
    frank.send("<presence/>").await;
    let from_erin = frank
        .recv_where("erin's presence", |e| {
            e.is("presence", ns::CLIENT) && e.attr("from") == Some("erin@localhost/e")
        })
        .await;
    assert_eq!(from_erin.attr("type"), None);
    erin.recv_where("frank's presence", |e| {
        e.is("presence", ns::CLIENT) && e.attr("from") == Some("frank@localhost/f")
    })
    .await;
}

/// Wait until the server log contains `what` (bounded), and return the log.
async fn log_shows(install: &Installation, what: &str) -> String {
    let path = install.dir.join("herald.log");
    let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
    loop {
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        if log.contains(what) {
            return log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server log never showed {what:?}:\n{log}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Send `signal` (`HUP`, `TERM`) to the server, by its process id.
fn signal(server: &Server, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(server.child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal}");
}

#[tokio::test]
async fn sighup_reloads_the_configuration_and_the_sessions_stay() {
    let install = Installation::new();
    install.add_user("alice");
    let mut server = install.serve().await;
    let mut alice = install.login("alice", "desk").await;

    // A changed limit and a more verbose log level: put in force, nobody disconnected.
    let text = std::fs::read_to_string(&install.config).expect("read the configuration");
    let changed = text
        .replace("level = \"warn\"", "level = \"info\"")
        .replace("[c2s]\n", "[c2s]\nmax_stanza_bytes = 100000\n");
    std::fs::write(&install.config, &changed).expect("write the configuration");
    signal(&server, "HUP");
    log_shows(&install, "configuration reloaded").await;
    assert!(
        server.child.try_wait().expect("status").is_none(),
        "still running"
    );
    alice.assert_alive().await;

    // A broken file: refused with the reason, the old configuration stays.
    std::fs::write(&install.config, format!("{changed}\n[c2s\n")).expect("write");
    signal(&server, "HUP");
    let log = log_shows(&install, "reload refused").await;
    assert!(log.contains("TOML syntax"), "{log}");
    assert!(
        server.child.try_wait().expect("status").is_none(),
        "still running"
    );
    alice.assert_alive().await;
    // Written to a file, the log has no terminal colour codes.
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escapes in a log file:\n{log}"
    );

    // SIGTERM still shuts down cleanly.
    signal(&server, "TERM");
    assert_eq!(alice.expect_stream_error().await, "system-shutdown");
    let status = tokio::task::spawn_blocking(move || server.child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success(), "{status:?}");
}
