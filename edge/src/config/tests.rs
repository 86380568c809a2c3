use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("herald.toml"))
}

fn issues(text: &str) -> Vec<ConfigIssue> {
    parse(text)
        .expect_err("the configuration must be refused")
        .0
}

/// (key, line) of every issue.
fn where_(issues: &[ConfigIssue]) -> Vec<(String, Option<usize>)> {
    issues
        .iter()
        .map(|i| (i.key.clone().unwrap_or_default(), i.line))
        .collect()
}

fn the_one(issues: &[ConfigIssue], key: &str) -> ConfigIssue {
    let found: Vec<_> = issues
        .iter()
        .filter(|i| i.key.as_deref() == Some(key))
        .collect();
    assert_eq!(found.len(), 1, "one issue for {key}: {issues:#?}");
    found[0].clone()
}

fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "herald-config-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn empty_file_is_the_embedded_default() {
    let c = parse("").expect("empty config");
    assert_eq!(c.server.domains, vec!["localhost".to_string()]);
    assert_eq!(c.c2s.max_stanza_bytes, 262_144);
}

#[test]
fn the_example_file_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../herald.example.toml");
    let c = Config::load(&path).expect("herald.example.toml must be valid");
    assert_eq!(c.server.domains, vec!["localhost".to_string()]);
    // It spells out the defaults.
    let d = Config::default();
    assert_eq!(c.s2s.listen, d.s2s.listen);
    assert_eq!(c.s2s.tls, d.s2s.tls);
    assert_eq!(c.s2s.auth, d.s2s.auth);
    assert_eq!(c.s2s.default, d.s2s.default);
    assert_eq!(c.s2s.idle_timeout_secs, d.s2s.idle_timeout_secs);
    assert_eq!(c.s2s.limits, d.s2s.limits);
    assert_eq!(c.sip, d.sip);
}

#[test]
fn the_sip_realm_defaults_to_the_first_domain() {
    let c = parse("[server]\ndomains = [\"a.example\", \"b.example\"]\n").expect("config");
    assert_eq!(c.sip.realm, None);
    assert_eq!(c.sip_realm(), "a.example");
    let c = parse("[server]\ndomains = [\"a.example\"]\n[sip]\nrealm = \"sip.example\"\n")
        .expect("config");
    assert_eq!(c.sip_realm(), "sip.example");
    let c = parse("[sip]\nrealm = \"Herald_Realm-1\"\n").expect("a token");
    assert_eq!(c.sip_realm(), "Herald_Realm-1");
}

#[test]
fn the_sip_realm_must_be_a_plain_name() {
    for (bad, says) in [
        ("\"\"", "the realm is empty"),
        ("\"a\\\"b\"", "contains '\"'"),
        ("\"a\\tb\"", "contains '\\t'"),
        ("\"my realm\"", "is not a plain token or domain name"),
        (
            "\"caf\u{e9}.example\"",
            "is not a plain token or domain name",
        ),
    ] {
        let text = format!("[server]\ndomains = [\"a.example\"]\n\n[sip]\nrealm = {bad}\n");
        let i = the_one(&issues(&text), "sip.realm");
        assert_eq!(i.line, Some(5), "{text}");
        assert!(i.message.contains(says), "{text}: {}", i.message);
        assert!(
            i.to_string()
                .starts_with("herald.toml:5: key `sip.realm`: "),
            "{i}"
        );
    }
}

#[test]
fn the_sip_section_takes_no_other_key() {
    let i = the_one(&issues("[sip]\nrelm = \"a.example\"\n"), "sip.relm");
    assert_eq!(i.line, Some(2));
    assert!(i.message.contains("realm"), "{}", i.message);
}

#[test]
fn a_syntax_error_is_reported_alone_with_its_line() {
    let all = issues("[c2s]\nmax_depth = 1\nlisten = [\"127.0.0.1:5222\"\n");
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].line, Some(3));
    assert!(
        all[0].message.starts_with("TOML syntax"),
        "{}",
        all[0].message
    );
}

#[test]
fn unknown_key_names_file_line_and_key_and_the_key_meant() {
    let all = issues("[server]\ndomains = [\"a.example\"]\n\n[c2s]\nmax_stanza_byte = 5\n");
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].line, Some(5));
    assert_eq!(all[0].key.as_deref(), Some("c2s.max_stanza_byte"));
    assert_eq!(
        all[0].to_string(),
        "herald.toml:5: key `c2s.max_stanza_byte`: unknown key `max_stanza_byte`; \
         did you mean `max_stanza_bytes`?"
    );
}

#[test]
fn no_suggestion_when_nothing_is_close() {
    let i = the_one(&issues("[log]\ncolour = true\n"), "log.colour");
    assert!(!i.message.contains("did you mean"), "{}", i.message);
    assert!(i.message.contains("`format`, `level`"), "{}", i.message);
}

#[test]
fn unknown_table_gets_a_suggestion() {
    let i = the_one(&issues("[servr]\ndomains = [\"a.example\"]\n"), "servr");
    assert_eq!(i.line, Some(1));
    assert!(
        i.message.contains("did you mean [server]?"),
        "{}",
        i.message
    );
}

#[test]
fn wrong_type_is_located() {
    let i = the_one(
        &issues("[c2s]\noffline_quota = \"lots\"\n"),
        "c2s.offline_quota",
    );
    assert_eq!(i.line, Some(2));
    assert!(i.message.contains("whole number"), "{}", i.message);
}

#[test]
fn every_problem_is_reported_in_one_run() {
    let text = "\
[server]
domain = [\"a.example\"]

[c2s]
listen = [\"127.0.0.1\"]
max_connections = 0
offline_quota = \"lots\"
max_stanza_byte = 5
delivery = \"best\"

[log]
level = \"herald_core=loud\"
";
    let all = issues(text);
    assert_eq!(
        where_(&all),
        vec![
            ("server.domain".to_string(), Some(2)),
            ("c2s.listen".to_string(), Some(5)),
            ("c2s.max_connections".to_string(), Some(6)),
            ("c2s.offline_quota".to_string(), Some(7)),
            ("c2s.max_stanza_byte".to_string(), Some(8)),
            ("c2s.delivery".to_string(), Some(9)),
            ("log.level".to_string(), Some(12)),
        ],
        "{all:#?}"
    );
}

#[test]
fn an_address_without_port_says_what_to_write() {
    let i = the_one(&issues("[c2s]\nlisten = [\"127.0.0.1\"]\n"), "c2s.listen");
    assert_eq!(i.message, "`127.0.0.1` has no port: write `127.0.0.1:5222`");
    let i = the_one(&issues("[admin]\nlisten = \"0.0.0.0\"\n"), "admin.listen");
    assert_eq!(i.message, "`0.0.0.0` has no port: write `0.0.0.0:9090`");
}

#[test]
fn each_bad_address_of_a_list_is_reported() {
    let text =
        "[c2s]\nlisten = [\n  \"127.0.0.1\",\n  \"127.0.0.1:5222\",\n  \"localhost:5222\",\n]\n";
    let all = issues(text);
    assert_eq!(
        where_(&all),
        vec![
            ("c2s.listen".to_string(), Some(3)),
            ("c2s.listen".to_string(), Some(5)),
        ],
        "{all:#?}"
    );
    assert!(
        all[1].message.contains("not an IP address"),
        "{}",
        all[1].message
    );
}

#[test]
fn listeners_must_not_collide() {
    let text = "\
[c2s]
listen = [\"0.0.0.0:5222\"]
listen_tls = [\"127.0.0.1:5223\", \"127.0.0.1:5222\"]

[admin]
listen = \"127.0.0.1:5223\"
";
    let all = issues(text);
    assert_eq!(
        where_(&all),
        vec![
            ("c2s.listen_tls".to_string(), Some(3)),
            ("admin.listen".to_string(), Some(6)),
        ],
        "{all:#?}"
    );
    assert!(
        all[0].message.contains("`0.0.0.0:5222`"),
        "{}",
        all[0].message
    );
    assert!(
        all[1].message.contains("c2s.listen_tls"),
        "{}",
        all[1].message
    );
}

#[test]
fn port_zero_never_collides() {
    parse(
        "[c2s]\nlisten = [\"127.0.0.1:0\"]\nlisten_tls = []\n[admin]\nlisten = \"127.0.0.1:0\"\n",
    )
    .expect("ephemeral ports");
}

#[test]
fn limits_must_be_in_range() {
    let all = issues("[c2s]\nmax_depth = 1\nmax_attributes = 2\nmax_connections = 0\n");
    assert_eq!(
        where_(&all),
        vec![
            ("c2s.max_depth".to_string(), Some(2)),
            ("c2s.max_attributes".to_string(), Some(3)),
            ("c2s.max_connections".to_string(), Some(4)),
        ]
    );
    let i = the_one(
        &issues("[c2s]\nmax_connections = 0\n"),
        "c2s.max_connections",
    );
    assert_eq!(
        i.message,
        "0 is too small: write at least 1 (default 50000)"
    );
    let all = issues("[c2s]\nnegotiation_timeout_secs = 0\nmax_connections = 1000000000000\n");
    assert_eq!(
        where_(&all),
        vec![
            ("c2s.negotiation_timeout_secs".to_string(), Some(2)),
            ("c2s.max_connections".to_string(), Some(3)),
        ]
    );
    assert!(all[1].message.contains("too large"), "{}", all[1].message);
    let i = the_one(
        &issues("[c2s]\nmax_auth_attempts = -1\n"),
        "c2s.max_auth_attempts",
    );
    assert!(i.message.contains("negative"), "{}", i.message);
}

#[test]
fn no_listener_at_all_is_refused() {
    let i = the_one(
        &issues("[c2s]\nlisten = []\nlisten_tls = []\n"),
        "c2s.listen",
    );
    assert_eq!(i.line, Some(2));
}

#[test]
fn the_log_filter_must_parse() {
    let i = the_one(
        &issues("[log]\nlevel = \"herald_core=loud\"\n"),
        "log.level",
    );
    assert_eq!(i.line, Some(2));
    parse("[log]\nlevel = \"herald_core=debug,info\"\n").expect("a valid filter");
}

#[test]
fn domains_must_be_normalized() {
    let all = issues("[server]\ndomains = [\"a.example\",\n  \"Example.COM\"]\n");
    assert_eq!(where_(&all), vec![("server.domains".to_string(), Some(3))]);
}

#[test]
fn domains_must_fit_in_the_development_certificate() {
    let i = the_one(
        &issues("[server]\ndomains = [\"münchen.de\"]\n"),
        "server.domains",
    );
    assert!(
        i.message.contains("development certificate"),
        "{}",
        i.message
    );
    parse("[server]\ndomains = [\"127.0.0.1\", \"localhost\"]\n").expect("IP and DNS names");
}

#[test]
fn data_dir_must_be_a_directory() {
    let dir = temp_dir("datadir");
    let file = dir.join("file");
    std::fs::write(&file, "x").expect("write");
    let text = format!("[server]\ndata_dir = {file:?}\n");
    let i = the_one(&issues(&text), "server.data_dir");
    assert!(i.message.contains("not a directory"), "{}", i.message);
}

mod certificates {
    use super::*;

    fn pki(name: &str) -> herald_certs::DevPki {
        herald_certs::ensure_dev_pki(&temp_dir(name), &["a.example".to_string()]).expect("pki")
    }

    fn config(cert: &Path, key: &Path) -> String {
        format!("[tls]\ncertificates = [\n  {{ cert = {cert:?}, key = {key:?} }},\n]\n")
    }

    #[test]
    fn a_matching_pair_loads() {
        let p = pki("good");
        let c = parse(&config(&p.cert, &p.key)).expect("valid pair");
        assert_eq!(c.tls.certificates.len(), 1);
    }

    #[test]
    fn missing_files_are_named() {
        let dir = temp_dir("missing");
        let text = config(&dir.join("none.pem"), &dir.join("none.key"));
        let i = the_one(&issues(&text), "tls.certificates[0].cert");
        assert_eq!(i.line, Some(3));
        assert!(i.message.contains("none.pem"), "{}", i.message);
    }

    #[test]
    fn a_missing_key_file_is_named() {
        let p = pki("nokey");
        let text = config(&p.cert, &p.cert.with_file_name("nothing.key"));
        let i = the_one(&issues(&text), "tls.certificates[0].key");
        assert!(i.message.contains("nothing.key"), "{}", i.message);
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        let p = pki("garbage");
        let junk = p.cert.with_file_name("junk.pem");
        std::fs::write(&junk, "not a certificate\n").expect("write");
        let i = the_one(&issues(&config(&junk, &p.key)), "tls.certificates[0].cert");
        assert!(i.message.contains("no PEM certificate"), "{}", i.message);
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let (a, b) = (pki("mismatch-a"), pki("mismatch-b"));
        let i = the_one(&issues(&config(&a.cert, &b.key)), "tls.certificates[0].key");
        assert!(i.message.contains("does not belong"), "{}", i.message);
    }

    #[test]
    fn an_entry_without_key_is_one_problem() {
        let text = "[tls]\ncertificates = [{ cert = \"a.pem\" }]\n";
        let all = issues(text);
        assert_eq!(all.len(), 1, "{all:#?}");
        assert_eq!(all[0].line, Some(2));
        assert_eq!(
            all[0].message,
            "entry 1 of the list: `key` is required here"
        );
    }

    #[test]
    fn a_misspelt_field_is_one_problem() {
        let text = "[[tls.certificates]]\ncert = \"a.pem\"\nkeyfile = \"a.key\"\n";
        let all = issues(text);
        assert_eq!(
            where_(&all),
            vec![("tls.certificates[0].keyfile".to_string(), Some(3))]
        );
        assert!(
            all[0].message.contains("did you mean `key`?"),
            "{}",
            all[0].message
        );
    }
}

mod federation {
    use herald_rules::federation::{AclAction, AuthPolicy, Direction, TlsPolicy};

    use super::*;

    #[test]
    fn federation_is_off_and_strict_by_default() {
        let c = parse("").expect("defaults");
        assert!(!c.s2s.enabled());
        assert_eq!(c.s2s.tls, TlsPolicy::Required);
        assert_eq!(c.s2s.auth, AuthPolicy::Any);
        assert_eq!(c.s2s.default, AclAction::Allow);
        assert_eq!(c.s2s.idle_timeout_secs, 600);
        assert!(c.dns.nameservers.is_empty());
        assert!(!c.federation().enabled);
    }

    #[test]
    fn the_documented_keys_load_into_the_policy() {
        let text = "\
[server]
domains = [\"herald.example\"]
[s2s]
listen = [\"0.0.0.0:5269\"]
listen_tls = [\"0.0.0.0:5270\"]
tls = \"optional\"
auth = \"dialback\"
default = \"deny\"
idle_timeout_secs = 300
[s2s.limits]
max_connections = 4
[dns]
nameservers = [\"127.0.0.1:53\"]
[[s2s.route]]
domain = \"Partner.Example\"
target = \"10.0.0.7:5269\"
direct_tls = true
auth = \"pkix\"
pin_sha256 = \"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"
limits = { max_connections = 2 }
[[s2s.acl]]
domain = \"*.spam.example\"
action = \"deny\"
direction = \"both\"
[[s2s.acl]]
domain = \"partner.example\"
action = \"allow\"
";
        let c = parse(text).expect("valid federation config");
        assert!(c.s2s.enabled());
        assert_eq!(c.dns.nameservers.len(), 1);
        let f = c.federation();
        let r = f.routes.lookup("partner.example");
        assert_eq!(
            r.target().map(ToString::to_string).as_deref(),
            Some("10.0.0.7:5269")
        );
        assert!(r.route().is_some_and(|r| r.direct_tls));
        assert_eq!(f.policy_for("partner.example").auth, AuthPolicy::Pkix);
        assert_eq!(f.policy_for("partner.example").tls, TlsPolicy::Optional);
        assert_eq!(f.limits_for("partner.example").0.max_connections, 2);
        assert_eq!(f.limits_for("other.example").0.max_connections, 4);
        assert!(f.pin_for("partner.example").is_some());
        assert!(!f.acl.decide("a.spam.example", Direction::Inbound).allowed);
        assert!(f.acl.decide("partner.example", Direction::Outbound).allowed);
        assert!(
            !f.acl
                .decide("stranger.example", Direction::Outbound)
                .allowed
        );
    }

    #[test]
    fn a_bad_pattern_is_located() {
        let i = the_one(
            &issues("[[s2s.acl]]\ndomain = \"a.*.example\"\naction = \"deny\"\n"),
            "s2s.acl[0].domain",
        );
        assert_eq!(i.line, Some(2));
        assert!(i.message.contains("first label"), "{}", i.message);
        let i = the_one(
            &issues("[[s2s.route]]\ndomain = \"user@example.com\"\n"),
            "s2s.route[0].domain",
        );
        assert!(i.message.contains("not a domain pattern"), "{}", i.message);
    }

    #[test]
    fn a_route_target_needs_a_port() {
        let i = the_one(
            &issues("[[s2s.route]]\ndomain = \"p.example\"\ntarget = \"10.0.0.7\"\n"),
            "s2s.route[0].target",
        );
        assert_eq!(i.line, Some(3));
        assert_eq!(i.message, "`10.0.0.7` has no port: write `10.0.0.7:5269`");
    }

    #[test]
    fn a_bad_pin_is_located() {
        let i = the_one(
            &issues("[[s2s.route]]\ndomain = \"p.example\"\npin_sha256 = \"abcd\"\n"),
            "s2s.route[0].pin_sha256",
        );
        assert!(i.message.contains("64 hex digits"), "{}", i.message);
    }

    #[test]
    fn unknown_values_and_keys_get_suggestions() {
        let i = the_one(&issues("[s2s]\ntls = \"requried\"\n"), "s2s.tls");
        assert!(
            i.message.contains("did you mean `required`?"),
            "{}",
            i.message
        );
        let i = the_one(
            &issues(
                "[[s2s.acl]]\ndomain = \"a.example\"\naction = \"deny\"\ndirecton = \"both\"\n",
            ),
            "s2s.acl[0].directon",
        );
        assert!(
            i.message.contains("did you mean `direction`?"),
            "{}",
            i.message
        );
        let i = the_one(
            &issues("[s2s.limits]\nmax_conections = 3\n"),
            "s2s.limits.max_conections",
        );
        assert!(i.message.contains("`max_connections`"), "{}", i.message);
    }

    #[test]
    fn a_duplicate_route_is_refused() {
        let text = "\
[[s2s.route]]
domain = \"p.example\"
[[s2s.route]]
domain = \"*.q.example\"
[[s2s.route]]
domain = \"P.example\"
";
        let i = the_one(&issues(text), "s2s.route[2].domain");
        assert_eq!(i.line, Some(6));
        assert!(i.message.contains("already entry 1"), "{}", i.message);
    }

    #[test]
    fn a_route_for_a_hosted_domain_is_refused() {
        let text = "[server]\ndomains = [\"herald.example\"]\n[[s2s.route]]\ndomain = \"herald.example\"\n";
        let i = the_one(&issues(text), "s2s.route[0].domain");
        assert!(i.message.contains("hosted here"), "{}", i.message);
    }

    #[test]
    fn a_shadowed_acl_rule_is_refused() {
        let text = "\
[[s2s.acl]]
domain = \"*.example\"
action = \"deny\"
[[s2s.acl]]
domain = \"a.example\"
action = \"allow\"
direction = \"inbound\"
[[s2s.acl]]
domain = \"b.example\"
action = \"allow\"
direction = \"inbound\"
[[s2s.acl]]
domain = \"*.b.example\"
action = \"deny\"
direction = \"outbound\"
";
        let all = issues(text);
        assert_eq!(
            where_(&all),
            vec![
                ("s2s.acl[1].domain".to_string(), Some(5)),
                ("s2s.acl[2].domain".to_string(), Some(9)),
                ("s2s.acl[3].domain".to_string(), Some(13)),
            ],
            "{all:#?}"
        );
        assert!(
            all[0].message.contains("never applies: entry 1"),
            "{}",
            all[0].message
        );
        // Different directions do not shadow each other.
        parse(
            "[[s2s.acl]]\ndomain = \"*\"\naction = \"deny\"\ndirection = \"inbound\"\n\
               [[s2s.acl]]\ndomain = \"a.example\"\naction = \"allow\"\ndirection = \"outbound\"\n",
        )
        .expect("no shadowing");
    }

    #[test]
    fn limits_must_be_in_range_globally_and_per_route() {
        let text = "\
[s2s.limits]
max_connections = 0
[[s2s.route]]
domain = \"p.example\"
limits = { bytes_per_sec = 2048, negotiation_timeout_secs = 0 }
";
        let all = issues(text);
        let mut keys: Vec<String> = all.iter().filter_map(|i| i.key.clone()).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "s2s.limits.max_connections",
                "s2s.route[0].limits.bytes_per_sec",
                "s2s.route[0].limits.negotiation_timeout_secs",
            ],
            "{all:#?}"
        );
        assert!(all.iter().all(|i| i.line.is_some()), "{all:#?}");
        let i = the_one(
            &issues("[s2s]\nidle_timeout_secs = 0\n"),
            "s2s.idle_timeout_secs",
        );
        assert!(i.message.contains("out of range"), "{}", i.message);
        let i = the_one(
            &issues("[[s2s.route]]\ndomain = \"p.example\"\ndirect_tls = true\n"),
            "s2s.route[0].direct_tls",
        );
        assert!(i.message.contains("target"), "{}", i.message);
        let i = the_one(&issues("[s2s]\nsend_queue = 0\n"), "s2s.send_queue");
        assert!(i.message.contains("out of range"), "{}", i.message);
        let i = the_one(
            &issues("[s2s]\nsend_queue_bytes = 10\n"),
            "s2s.send_queue_bytes",
        );
        assert!(i.message.contains("1024"), "{}", i.message);
    }

    #[test]
    fn s2s_listeners_must_not_collide_with_the_others() {
        let text = "\
[c2s]
listen = [\"127.0.0.1:5222\"]
listen_tls = []
[admin]
listen = \"127.0.0.1:9090\"
[s2s]
listen = [\"0.0.0.0:5222\"]
listen_tls = [\"127.0.0.1:9090\", \"0.0.0.0:5270\", \"127.0.0.1:5270\"]
";
        let all = issues(text);
        let keys: Vec<String> = all.iter().filter_map(|i| i.key.clone()).collect();
        assert_eq!(
            keys,
            ["s2s.listen", "s2s.listen_tls", "s2s.listen_tls"],
            "{all:#?}"
        );
        assert!(all[0].message.contains("c2s.listen"), "{}", all[0].message);
        let i = the_one(&issues("[s2s]\nlisten = [\"0.0.0.0\"]\n"), "s2s.listen");
        assert_eq!(i.message, "`0.0.0.0` has no port: write `0.0.0.0:5269`");
    }

    #[test]
    fn trust_files_must_hold_certificates() {
        let dir = temp_dir("trust");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "nothing here\n").expect("write");
        let text = format!(
            "[s2s]\ntrust = [\n  {:?},\n  {:?},\n]\n",
            dir.join("missing.pem"),
            junk
        );
        let all = issues(&text);
        assert_eq!(
            where_(&all),
            vec![
                ("s2s.trust".to_string(), Some(3)),
                ("s2s.trust".to_string(), Some(4)),
            ],
            "{all:#?}"
        );
        assert!(all[0].message.contains("cannot read"), "{}", all[0].message);
        assert!(
            all[1].message.contains("no PEM certificate"),
            "{}",
            all[1].message
        );
        let pki = herald_certs::ensure_dev_pki(&dir.join("pki"), &["a.example".to_string()])
            .expect("pki");
        parse(&format!("[s2s]\ntrust = [{:?}]\n", pki.ca_cert)).expect("a CA file");
    }

    #[test]
    fn a_nameserver_needs_a_port() {
        let i = the_one(
            &issues("[dns]\nnameservers = [\"127.0.0.1\"]\n"),
            "dns.nameservers",
        );
        assert_eq!(i.message, "`127.0.0.1` has no port: write `127.0.0.1:53`");
        let i = the_one(
            &issues("[dns]\nnameservers = [\"127.0.0.1:0\"]\n"),
            "dns.nameservers",
        );
        assert!(i.message.contains("port 0"), "{}", i.message);
    }
}
