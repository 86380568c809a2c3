//! What the types cannot say: limits in range, a log filter that parses, certificate
//! files that load and match their keys, listeners that do not collide, federation
//! routes and ACL rules that can take effect, trust anchors that load. (Domain
//! patterns, route targets without a port and bad pins are refused while reading, by
//! their types, with the same file, line and key.) `serve` runs
//! the same checks (through [`super::Config::parse`]), so a file `check-config`
//! accepts does not fail at start for a configuration reason.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use herald_certs::CertError;
use rustls_pki_types::DnsName;

use super::locate::{keys, Seg};
use super::Config;

/// A problem found in a deserialized configuration: where (a path into the document)
/// and what.
pub(super) struct Finding {
    pub(super) path: Vec<Seg>,
    pub(super) message: String,
}

fn at(dotted: &str, message: impl Into<String>) -> Finding {
    Finding {
        path: keys(dotted),
        message: message.into(),
    }
}

fn at_index(dotted: &str, index: usize, message: impl Into<String>) -> Finding {
    let mut path = keys(dotted);
    path.push(Seg::Index(index));
    Finding {
        path,
        message: message.into(),
    }
}

/// Every problem of `config`.
pub(super) fn check(config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    domains(config, &mut out);
    for (key, msg) in config.c2s.validate() {
        out.push(at(&format!("c2s.{key}"), msg));
    }
    if config.c2s.listen.is_empty() && config.c2s.listen_tls.is_empty() {
        out.push(at(
            "c2s.listen",
            "no client listener configured: write e.g. `listen = [\"127.0.0.1:5222\"]`",
        ));
    }
    listeners(config, &mut out);
    certificates(config, &mut out);
    files(config, &mut out);
    federation(config, &mut out);
    sip(config, &mut out);
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&config.log.level) {
        out.push(at(
            "log.level",
            format!(
                "invalid log filter {:?} ({e}): write e.g. \"info\" or \"herald_core=debug,info\"",
                config.log.level
            ),
        ));
    }
    out
}

fn domains(config: &Config, out: &mut Vec<Finding>) {
    let domains = &config.server.domains;
    if domains.is_empty() {
        out.push(at(
            "server.domains",
            "at least one domain is required: write e.g. `domains = [\"example.com\"]`",
        ));
    }
    for (i, d) in domains.iter().enumerate() {
        match herald_translate::Jid::domain_jid(d) {
            Ok(j) if j.domain() == d => {}
            Ok(j) => out.push(at_index(
                "server.domains",
                i,
                format!("{d:?} must be written in normalized form {:?}", j.domain()),
            )),
            Err(e) => out.push(at_index(
                "server.domains",
                i,
                format!("{d:?} is not a valid domain: {e}"),
            )),
        }
        let dev_cert = config.tls.certificates.is_empty();
        if dev_cert && d.parse::<IpAddr>().is_err() && DnsName::try_from(d.as_str()).is_err() {
            out.push(at_index(
                "server.domains",
                i,
                format!(
                    "{d:?} cannot be put in the development certificate generated when \
                     tls.certificates is empty: list a certificate for it in [tls]"
                ),
            ));
        }
        if domains[..i].contains(d) {
            out.push(at_index(
                "server.domains",
                i,
                format!("{d:?} is listed twice"),
            ));
        }
    }
}

/// `sip.realm` goes into every digest challenge as a quoted string and into every
/// stored HA1: a plain token (RFC 3261 §25.1 `token` characters; a domain name is one),
/// nothing that needs escaping or could be typed differently by a client.
fn sip(config: &Config, out: &mut Vec<Finding>) {
    for (key, msg) in config.sip.validate() {
        out.push(at(&format!("sip.{key}"), msg));
    }
    let Some(realm) = &config.sip.realm else {
        return;
    };
    let problem = if realm.is_empty() {
        Some("the realm is empty: remove the key to use the first of server.domains".to_owned())
    } else if let Some(c) = realm
        .chars()
        .find(|c| c.is_control() || *c == '"' || *c == '\\')
    {
        Some(format!(
            "{realm:?} contains {c:?}: write a plain name such as a hosted domain"
        ))
    } else if !realm
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c))
    {
        Some(format!(
            "{realm:?} is not a plain token or domain name (letters, digits and -.!%*_+`'~): \
             write e.g. \"example.com\""
        ))
    } else {
        None
    };
    if let Some(message) = problem {
        out.push(at("sip.realm", message));
    }
}

/// Whether binding `a` and then `b` fails: the same port, and the same address or one
/// of them is the wildcard of the other's family (`[::]` also takes IPv4 on the usual
/// dual-stack setup). Port 0 picks a free port and never collides.
pub(super) fn collide(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() != b.port() || a.port() == 0 {
        return false;
    }
    let covers = |w: IpAddr, other: IpAddr| match w {
        IpAddr::V4(v4) => v4.is_unspecified() && other.is_ipv4(),
        IpAddr::V6(v6) => v6.is_unspecified(),
    };
    a.ip() == b.ip() || covers(a.ip(), b.ip()) || covers(b.ip(), a.ip())
}

fn listeners(config: &Config, out: &mut Vec<Finding>) {
    let mut all: Vec<(&str, usize, SocketAddr)> = Vec::new();
    for (i, a) in config.c2s.listen.iter().enumerate() {
        all.push(("c2s.listen", i, *a));
    }
    for (i, a) in config.c2s.listen_tls.iter().enumerate() {
        all.push(("c2s.listen_tls", i, *a));
    }
    if let Some(a) = config.admin.listen {
        all.push(("admin.listen", usize::MAX, a));
    }
    for (i, a) in config.s2s.listen.iter().enumerate() {
        all.push(("s2s.listen", i, *a));
    }
    for (i, a) in config.s2s.listen_tls.iter().enumerate() {
        all.push(("s2s.listen_tls", i, *a));
    }
    for (i, a) in config.sip.listen_tcp.iter().enumerate() {
        all.push(("sip.listen_tcp", i, *a));
    }
    for (i, a) in config.sip.listen_tls.iter().enumerate() {
        all.push(("sip.listen_tls", i, *a));
    }
    // UDP ports are their own space: only SIP's UDP listeners can collide.
    let udp: Vec<(&str, usize, SocketAddr)> = config
        .sip
        .listen_udp
        .iter()
        .enumerate()
        .map(|(i, a)| ("sip.listen_udp", i, *a))
        .collect();
    for (n, &(key, i, addr)) in udp.iter().enumerate() {
        if let Some(&(_, _, other)) = udp[..n].iter().find(|(_, _, o)| collide(*o, addr)) {
            out.push(at_index(
                key,
                i,
                format!("`{addr}` collides with `{other}` in sip.listen_udp: give it another port"),
            ));
        }
    }
    for (n, &(key, i, addr)) in all.iter().enumerate() {
        let Some(&(other_key, _, other)) = all[..n].iter().find(|(_, _, o)| collide(*o, addr))
        else {
            continue;
        };
        let message = format!(
            "`{addr}` collides with `{other}` in {other_key}: both take port {}; \
             give one of them another port",
            addr.port()
        );
        out.push(if i == usize::MAX {
            at(key, message)
        } else {
            at_index(key, i, message)
        });
    }
}

fn certificates(config: &Config, out: &mut Vec<Finding>) {
    for (i, c) in config.tls.certificates.iter().enumerate() {
        let Err(e) = herald_certs::load_identity(&c.cert, &c.key) else {
            continue;
        };
        let field = |path: &Path| if path == c.cert { "cert" } else { "key" };
        let (which, message) = match &e {
            CertError::Io { path, source } => (
                field(path),
                format!("cannot read {}: {source}", shown(path)),
            ),
            CertError::Pem { path, reason } => (
                field(path),
                format!("{} is not usable: {reason}", shown(path)),
            ),
            CertError::NoCertificate(path) => {
                ("cert", format!("{} holds no PEM certificate", shown(path)))
            }
            CertError::NoPrivateKey(path) => {
                ("key", format!("{} holds no PEM private key", shown(path)))
            }
            CertError::KeyMismatch { .. } => (
                "key",
                format!(
                    "the private key in {} does not belong to the certificate in {}",
                    shown(&c.key),
                    shown(&c.cert)
                ),
            ),
            other => ("cert", other.to_string()),
        };
        let mut path = keys("tls.certificates");
        path.push(Seg::Index(i));
        path.push(Seg::Key(which.to_string()));
        out.push(Finding { path, message });
    }
}

/// A path in a message; a relative one says what it is relative to.
fn shown(path: &Path) -> String {
    if path.is_relative() {
        format!(
            "`{}` (relative paths are taken from the configuration file's directory)",
            path.display()
        )
    } else {
        format!("`{}`", path.display())
    }
}

fn files(config: &Config, out: &mut Vec<Finding>) {
    let dir = &config.server.data_dir;
    if dir.exists() && !dir.is_dir() {
        out.push(at(
            "server.data_dir",
            format!("{} exists and is not a directory", shown(dir)),
        ));
    }
    if let Some(token) = &config.admin.token_file {
        if token.is_dir() {
            out.push(at(
                "admin.token_file",
                format!("{} is a directory: name a file", shown(token)),
            ));
        }
    }
}

/// A path into a list entry: `s2s.route[2].domain`.
fn in_entry(list: &str, index: usize, rest: &[&str]) -> Vec<Seg> {
    let mut path = keys(list);
    path.push(Seg::Index(index));
    path.extend(rest.iter().map(|k| Seg::Key((*k).to_string())));
    path
}

fn federation(config: &Config, out: &mut Vec<Finding>) {
    let s2s = &config.s2s;
    for (i, file) in s2s.trust.iter().enumerate() {
        let message = match herald_certs::read_certs(file) {
            Ok(_) => continue,
            Err(CertError::Io { source, .. }) => {
                format!("cannot read {}: {source}", shown(file))
            }
            Err(CertError::NoCertificate(_)) => {
                format!("{} holds no PEM certificate", shown(file))
            }
            Err(CertError::Pem { reason, .. }) => {
                format!("{} is not usable: {reason}", shown(file))
            }
            Err(other) => other.to_string(),
        };
        out.push(at_index("s2s.trust", i, message));
    }
    for (key, message) in s2s.limits.validate() {
        out.push(at(&format!("s2s.limits.{key}"), message));
    }
    const MAX_SECS: u64 = 366 * 24 * 3600;
    if !(1..=MAX_SECS).contains(&s2s.idle_timeout_secs) {
        out.push(at(
            "s2s.idle_timeout_secs",
            format!(
                "{} is out of range: write 1 to {MAX_SECS} (default 600)",
                s2s.idle_timeout_secs
            ),
        ));
    }
    const MAX_QUEUE: usize = 1_000_000;
    if !(1..=MAX_QUEUE).contains(&s2s.send_queue) {
        out.push(at(
            "s2s.send_queue",
            format!(
                "{} is out of range: write 1 to {MAX_QUEUE} (default 4096)",
                s2s.send_queue
            ),
        ));
    }
    const MAX_QUEUE_BYTES: usize = 1 << 30;
    if !(1024..=MAX_QUEUE_BYTES).contains(&s2s.send_queue_bytes) {
        out.push(at(
            "s2s.send_queue_bytes",
            format!(
                "{} is out of range: write 1024 to {MAX_QUEUE_BYTES} (default 4194304)",
                s2s.send_queue_bytes
            ),
        ));
    }
    for (i, ns) in config.dns.nameservers.iter().enumerate() {
        if ns.port() == 0 {
            out.push(at_index(
                "dns.nameservers",
                i,
                format!("`{ns}` has port 0: write `{}:53`", ns.ip()),
            ));
        }
    }
    routes(config, out);
    acl(config, out);
}

fn routes(config: &Config, out: &mut Vec<Finding>) {
    let routes = &config.s2s.route;
    for (i, first) in herald_rules::federation::RouteTable::duplicates(routes) {
        out.push(Finding {
            path: in_entry("s2s.route", i, &["domain"]),
            message: format!(
                "route `{}` is already entry {} of [[s2s.route]]: merge the two",
                routes[i].pattern,
                first + 1
            ),
        });
    }
    for (i, r) in routes.iter().enumerate() {
        if let herald_rules::federation::DomainPattern::Exact(d) = &r.pattern {
            if config.server.domains.contains(d) {
                out.push(Finding {
                    path: in_entry("s2s.route", i, &["domain"]),
                    message: format!(
                        "{d} is hosted here (server.domains): its stanzas are delivered \
                         locally and never routed; remove the route or the domain"
                    ),
                });
            }
        }
        if r.direct_tls && r.target.is_none() {
            out.push(Finding {
                path: in_entry("s2s.route", i, &["direct_tls"]),
                message: "direct_tls applies to a route's target: add `target = \"host:port\"` \
                          (usually port 5270), or drop direct_tls (DNS finds direct TLS through \
                          _xmpps-server records)"
                    .to_string(),
            });
        }
        if r.limits.is_empty() {
            continue;
        }
        // Only what the route sets: a bad [s2s.limits] value is reported there.
        let merged = config.s2s.limits.with(&r.limits);
        let global: Vec<&str> = config
            .s2s
            .limits
            .validate()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        for (key, message) in merged.validate() {
            if !global.contains(&key) {
                out.push(Finding {
                    path: in_entry("s2s.route", i, &["limits", key]),
                    message: format!("{message} (with the [s2s.limits] values it does not set)"),
                });
            }
        }
    }
}

/// A rule that an earlier rule always decides before it is a mistake: say which.
fn acl(config: &Config, out: &mut Vec<Finding>) {
    let rules = &config.s2s.acl;
    for (i, r) in rules.iter().enumerate() {
        let earlier = rules[..i].iter().position(|e| {
            e.pattern.covers(&r.pattern)
                && [
                    herald_rules::federation::Direction::Inbound,
                    herald_rules::federation::Direction::Outbound,
                ]
                .iter()
                .all(|d| !r.direction.covers(*d) || e.direction.covers(*d))
        });
        if let Some(e) = earlier {
            out.push(Finding {
                path: in_entry("s2s.acl", i, &["domain"]),
                message: format!(
                    "this rule never applies: entry {} (domain = \"{}\", direction = {}) \
                     matches every domain it does, first; move it above or remove it",
                    e + 1,
                    rules[e].pattern,
                    rules[e].direction.name()
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::collide;

    fn a(s: &str) -> std::net::SocketAddr {
        s.parse().expect("address")
    }

    #[test]
    fn collisions() {
        assert!(collide(a("127.0.0.1:5222"), a("127.0.0.1:5222")));
        assert!(collide(a("0.0.0.0:5222"), a("127.0.0.1:5222")));
        assert!(collide(a("127.0.0.1:5222"), a("0.0.0.0:5222")));
        assert!(collide(a("[::]:5222"), a("10.0.0.1:5222")));
        assert!(collide(a("[::]:5222"), a("[::1]:5222")));
        assert!(!collide(a("0.0.0.0:5222"), a("[::1]:5222")));
        assert!(!collide(a("127.0.0.1:5222"), a("127.0.0.1:5223")));
        assert!(!collide(a("127.0.0.1:5222"), a("10.0.0.1:5222")));
        assert!(!collide(a("127.0.0.1:0"), a("127.0.0.1:0")));
    }
}
