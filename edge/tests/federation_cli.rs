//! `herald explain` and `herald dns-records` as an admin runs them, on a configuration
//! file named with --config.

use std::path::PathBuf;
use std::process::Command;

const CONFIG: &str = "\
[server]
domains = [\"herald.example\"]
data_dir = \"data\"

[c2s]
listen = [\"0.0.0.0:5222\"]
listen_tls = []

[admin]
listen = \"127.0.0.1:0\"

[s2s]
listen = [\"0.0.0.0:5269\"]
listen_tls = [\"0.0.0.0:5270\"]

[[s2s.route]]
domain = \"partner.example\"
target = \"10.0.0.7:5269\"
auth = \"pkix\"

[[s2s.acl]]
domain = \"*.spam.example\"
action = \"deny\"
";

fn config_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("herald-federation-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, CONFIG).expect("write the configuration");
    path
}

fn herald(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .env_remove("HERALD_CONFIG")
        .output()
        .expect("run herald");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn explain_prints_every_decision() {
    let path = config_file("explain.toml");
    let p = path.to_str().expect("utf-8 path");
    let (ok, stdout, stderr) = herald(&[
        "--config",
        p,
        "explain",
        "--from",
        "b@herald.example",
        "--to",
        "a@partner.example",
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains(p),
        "the configuration used is named: {stderr}"
    );
    for want in [
        "from b@herald.example to a@partner.example",
        "direction:  outbound: herald.example is hosted here and partner.example is not",
        "route:      partner.example ([[s2s.route]] entry 1)",
        "acl:        allow (the default)",
        "tls:        required",
        "auth:       pkix (set by route partner.example)",
        "limits:     max_connections = 8",
        "outcome:    sent on a stream to partner.example via 10.0.0.7:5269",
    ] {
        assert!(stdout.contains(want), "{want:?} in\n{stdout}");
    }
    let (ok, stdout, _) = herald(&[
        "--config",
        p,
        "explain",
        "--from",
        "a@x.spam.example",
        "--to",
        "b@herald.example",
    ]);
    assert!(ok);
    assert!(stdout.contains("direction:  inbound"), "{stdout}");
    assert!(
        stdout.contains("acl:        deny ([[s2s.acl]] entry 1, domain = \"*.spam.example\")"),
        "{stdout}"
    );
    assert!(stdout.contains("route:      none (DNS)"), "{stdout}");
}

#[test]
fn explain_refuses_a_bad_address() {
    let path = config_file("explain-bad.toml");
    let p = path.to_str().expect("utf-8 path");
    let (ok, _, stderr) = herald(&[
        "--config",
        p,
        "explain",
        "--from",
        "a@@b",
        "--to",
        "herald.example",
    ]);
    assert!(!ok);
    assert!(stderr.contains("`a@@b` is not a JID"), "{stderr}");
}

#[test]
fn dns_records_uses_the_listener_ports_and_the_host() {
    let path = config_file("dns.toml");
    let p = path.to_str().expect("utf-8 path");
    let (ok, stdout, stderr) = herald(&[
        "--config",
        p,
        "dns-records",
        "--host",
        "xmpp.herald.example",
    ]);
    assert!(ok, "{stderr}");
    for want in [
        "_xmpp-client._tcp.herald.example. 86400 IN SRV 5 0 5222 xmpp.herald.example.\n",
        "_xmpp-server._tcp.herald.example. 86400 IN SRV 5 0 5269 xmpp.herald.example.\n",
        "_xmpps-server._tcp.herald.example. 86400 IN SRV 5 0 5270 xmpp.herald.example.\n",
    ] {
        assert!(stdout.contains(want), "{want:?} in\n{stdout}");
    }
    assert!(
        !stdout.contains("_xmpps-client"),
        "no direct-TLS client listener: {stdout}"
    );
    let (ok, stdout, _) = herald(&["--config", p, "dns-records"]);
    assert!(ok);
    assert!(
        stdout.contains("IN SRV 5 0 5269 herald.example.\n"),
        "{stdout}"
    );
}
