//! `herald dns-records`: the DNS records an admin publishes so clients and other
//! servers find this one: SRV records per hosted domain (RFC 6120 §3.2.1 and XEP-0368
//! for direct TLS), with the ports of the configured listeners, and A/AAAA hints when a
//! listener binds a specific public address.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;

use crate::app::load_config;
use crate::config::Config;
use crate::error::EdgeError;

const TTL: u32 = 86_400;

/// Print the records; `host` is the SRV target (default: each domain itself).
pub fn run(config_path: Option<&Path>, host: Option<&str>) -> Result<ExitCode, EdgeError> {
    let config = load_config(config_path)?;
    print!("{}", render(&config, host)?);
    Ok(ExitCode::SUCCESS)
}

/// A DNS name for an SRV target, normalized, without the final dot.
fn target_name(host: &str) -> Result<String, EdgeError> {
    let bad = |why: &str| EdgeError::Command(format!("--host {host:?}: {why}"));
    if host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
        return Err(bad(
            "an SRV target must be a host name, not an IP address (RFC 2782)",
        ));
    }
    herald_translate::jid::domainprep(host).map_err(|_| bad("not a valid host name"))
}

/// Whether an address is one other networks can reach (not loopback, private,
/// link-local, unique-local or unspecified).
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                // 100.64.0.0/10, carrier-grade NAT (RFC 6598).
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// The distinct usable ports of some listeners, and a note for each one that is of no
/// use to other networks.
fn ports(kind: &str, listeners: &[SocketAddr], notes: &mut Vec<String>) -> BTreeSet<u16> {
    let mut out = BTreeSet::new();
    for a in listeners {
        if a.port() == 0 {
            notes.push(format!("{kind} listener {a} has no fixed port: no record"));
            continue;
        }
        if a.ip().is_loopback() {
            notes.push(format!(
                "{kind} listener {a} is on loopback: other hosts cannot reach it; \
                 listen on a public address (or 0.0.0.0) before publishing"
            ));
        }
        out.insert(a.port());
    }
    out
}

/// The records for every hosted domain, as zone-file lines with `;` comments.
pub fn render(config: &Config, host: Option<&str>) -> Result<String, EdgeError> {
    let host = host.map(target_name).transpose()?;
    let mut notes = Vec::new();
    let services = [
        (
            "_xmpp-client._tcp",
            ports("c2s (STARTTLS)", &config.c2s.listen, &mut notes),
        ),
        (
            "_xmpps-client._tcp",
            ports("c2s (direct TLS)", &config.c2s.listen_tls, &mut notes),
        ),
        (
            "_xmpp-server._tcp",
            ports("s2s (STARTTLS)", &config.s2s.listen, &mut notes),
        ),
        (
            "_xmpps-server._tcp",
            ports("s2s (direct TLS)", &config.s2s.listen_tls, &mut notes),
        ),
    ];
    let mut out = String::from(
        "; DNS records for the domains of this server; publish them in each domain's zone.\n",
    );
    if !config.s2s.enabled() {
        out.push_str(
            "; [s2s] has no listener: federation is off, so there are no _xmpp-server \
             records.\n",
        );
    }
    for n in &notes {
        out.push_str(&format!("; note: {n}\n"));
    }
    let addresses: BTreeSet<IpAddr> = config
        .c2s
        .listen
        .iter()
        .chain(&config.c2s.listen_tls)
        .chain(&config.s2s.listen)
        .chain(&config.s2s.listen_tls)
        .map(SocketAddr::ip)
        .filter(|ip| !ip.is_unspecified() && !ip.is_loopback())
        .collect();
    for domain in &config.server.domains {
        out.push('\n');
        if domain.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
            out.push_str(&format!(
                "; {domain} is an IP address: there is no zone to publish records in\n"
            ));
            continue;
        }
        let target = host.as_deref().unwrap_or(domain);
        out.push_str(&format!("; {domain}\n"));
        for (service, ports) in &services {
            for port in ports {
                out.push_str(&format!(
                    "{service}.{domain}. {TTL} IN SRV 5 0 {port} {target}.\n"
                ));
            }
        }
        for ip in &addresses {
            let kind = if ip.is_ipv4() { "A" } else { "AAAA" };
            if is_public(*ip) {
                out.push_str(&format!("{target}. {TTL} IN {kind} {ip}\n"));
            } else {
                out.push_str(&format!(
                    "; {ip} is not a public address: {target}. needs an {kind} record for the \
                     public address that forwards to it\n"
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(text, Path::new("herald.toml")).expect("config")
    }

    #[test]
    fn one_srv_record_per_service_port_and_domain() {
        let c = config(
            "[server]\ndomains = [\"a.example\", \"b.example\"]\n\
             [c2s]\nlisten = [\"10.0.0.1:5222\", \"10.0.0.2:5222\"]\nlisten_tls = [\"0.0.0.0:5223\"]\n\
             [s2s]\nlisten = [\"0.0.0.0:5269\"]\nlisten_tls = [\"0.0.0.0:5270\"]\n",
        );
        let text = render(&c, Some("XMPP.a.example.")).expect("render");
        for want in [
            "_xmpp-client._tcp.a.example. 86400 IN SRV 5 0 5222 xmpp.a.example.\n",
            "_xmpps-client._tcp.a.example. 86400 IN SRV 5 0 5223 xmpp.a.example.\n",
            "_xmpp-server._tcp.a.example. 86400 IN SRV 5 0 5269 xmpp.a.example.\n",
            "_xmpps-server._tcp.a.example. 86400 IN SRV 5 0 5270 xmpp.a.example.\n",
            "_xmpp-server._tcp.b.example. 86400 IN SRV 5 0 5269 xmpp.a.example.\n",
        ] {
            assert!(text.contains(want), "{want:?} in\n{text}");
        }
        assert_eq!(
            text.matches("_xmpp-client._tcp.a.example.").count(),
            1,
            "{text}"
        );
        assert!(!text.contains(" IN A "), "{text}");
        assert!(!text.contains("note:"), "{text}");
    }

    #[test]
    fn the_target_defaults_to_the_domain_and_addresses_get_hints() {
        let c = config(
            "[server]\ndomains = [\"a.example\"]\n\
             [c2s]\nlisten = [\"203.0.113.5:5222\"]\nlisten_tls = [\"[2001:db8::5]:5223\"]\n\
             [s2s]\nlisten = [\"10.0.0.5:5269\"]\n",
        );
        let text = render(&c, None).expect("render");
        assert!(
            text.contains("_xmpp-client._tcp.a.example. 86400 IN SRV 5 0 5222 a.example.\n"),
            "{text}"
        );
        assert!(
            text.contains("a.example. 86400 IN A 203.0.113.5\n"),
            "{text}"
        );
        assert!(
            text.contains("a.example. 86400 IN AAAA 2001:db8::5\n"),
            "{text}"
        );
        assert!(
            text.contains("; 10.0.0.5 is not a public address"),
            "{text}"
        );
    }

    #[test]
    fn the_default_configuration_says_federation_is_off_and_loopback_is_private() {
        let text = render(&config(""), None).expect("render");
        assert!(text.contains("federation is off"), "{text}");
        assert!(text.contains("is on loopback"), "{text}");
        assert!(!text.contains("_xmpp-server._tcp"), "{text}");
        assert!(
            text.contains("_xmpp-client._tcp.localhost. 86400 IN SRV 5 0 5222 localhost.\n"),
            "{text}"
        );
    }

    #[test]
    fn ip_domains_and_ip_targets_are_refused() {
        let c = config("[server]\ndomains = [\"127.0.0.1\"]\n");
        let text = render(&c, None).expect("render");
        assert!(text.contains("is an IP address"), "{text}");
        assert!(!text.contains("SRV"), "{text}");
        assert!(render(&c, Some("10.0.0.1")).is_err());
        assert!(render(&c, Some("bad host")).is_err());
    }
}
