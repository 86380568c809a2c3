//! Command-line options and their validation: every loop is bounded, and every address
//! must be on the loopback network.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// Most sessions one generator process may open (the open-files limit is 20,000).
pub(crate) const MAX_USERS: u32 = 19_500;
/// Longest any single phase may last, in seconds.
pub(crate) const MAX_PHASE_SECS: f64 = 3600.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mechanism {
    /// SCRAM-SHA-1 (RFC 5802), the default.
    ScramSha1,
    /// PLAIN over TLS.
    Plain,
}

/// XMPP load generator: logs users in over STARTTLS (certificate verified against --ca),
/// holds the sessions, exchanges chat messages and presence, and reports sessions, server
/// memory per session, throughput and latency.
#[derive(Debug, Clone, Parser)]
#[command(name = "herald-loadgen", version)]
pub(crate) struct Args {
    /// Server c2s address (STARTTLS); must be a loopback address.
    #[arg(long, default_value = "127.0.0.1:5222")]
    pub(crate) server: SocketAddr,
    /// XMPP domain of the accounts (also the TLS server name checked).
    #[arg(long, default_value = "localhost")]
    pub(crate) domain: String,
    /// PEM file of the CA the server certificate must chain to.
    #[arg(long)]
    pub(crate) ca: PathBuf,
    /// Number of sessions: accounts user{offset}..user{offset+users-1}.
    #[arg(long, default_value_t = 100)]
    pub(crate) users: u32,
    /// First account number.
    #[arg(long, default_value_t = 0)]
    pub(crate) offset: u32,
    /// Account name prefix (account i is <prefix><i>).
    #[arg(long, default_value = "user")]
    pub(crate) user_prefix: String,
    /// Password prefix (account i's password is <prefix><i>).
    #[arg(long, default_value = "pass")]
    pub(crate) pass_prefix: String,
    /// Resource bound by every session.
    #[arg(long, default_value = "lg")]
    pub(crate) resource: String,
    /// SASL mechanism.
    #[arg(long, value_enum, default_value = "scram-sha1")]
    pub(crate) mechanism: Mechanism,
    /// New sessions started per second.
    #[arg(long, default_value_t = 100.0)]
    pub(crate) connect_rate: f64,
    /// Logins in progress at once, at most.
    #[arg(long, default_value_t = 256)]
    pub(crate) max_pending: usize,
    /// Seconds one login (TCP to initial presence) may take before it counts as failed.
    #[arg(long, default_value_t = 30.0)]
    pub(crate) login_timeout: f64,
    /// Seconds to hold every session idle once all are up, before the traffic phase.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) hold: f64,
    /// Chat messages per second across all sessions during the traffic phase.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) msg_rate: f64,
    /// Presence changes per second across all sessions during the traffic phase.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) presence_rate: f64,
    /// Length of the traffic phase in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) duration: f64,
    /// Seconds to wait after the traffic phase for messages still in flight.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) drain: f64,
    /// Extra body bytes per chat message.
    #[arg(long, default_value_t = 0)]
    pub(crate) body_padding: usize,
    /// Server process whose VmRSS is read before connecting, once all sessions are up and
    /// at the end.
    #[arg(long)]
    pub(crate) server_pid: Option<u32>,
    /// Make every user subscribe to its K/2 ring neighbours on each side (within this
    /// process's users) and approve every request, for K mutual contacts. Persistent.
    #[arg(long, default_value_t = 0)]
    pub(crate) setup_rosters: u32,
    /// Roster setup: send the subscription requests of both directions at once (no
    /// ordering, no repair rounds), to exercise simultaneous mutual subscriptions.
    #[arg(long)]
    pub(crate) setup_simultaneous: bool,
    /// Longest the roster setup may take, in seconds.
    #[arg(long, default_value_t = 300.0)]
    pub(crate) setup_timeout: f64,
    /// Source addresses, used in turn (loopback only).
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1")]
    pub(crate) source_ips: Vec<IpAddr>,
    /// Print one JSON line instead of the text report.
    #[arg(long)]
    pub(crate) json: bool,
    /// Label for the report (e.g. the server's name).
    #[arg(long, default_value = "run")]
    pub(crate) label: String,
    /// Write the number of established sessions here once all logins are done.
    #[arg(long)]
    pub(crate) ready_file: Option<PathBuf>,
    /// After the hold, wait until this file exists before the traffic phase (to start
    /// several generator processes together).
    #[arg(long)]
    pub(crate) go_file: Option<PathBuf>,
    /// Longest wait for --go-file, in seconds.
    #[arg(long, default_value_t = 600.0)]
    pub(crate) go_timeout: f64,
    /// Tokio worker threads (1: a single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    pub(crate) threads: usize,
    /// Federated mode: a second server (c2s, STARTTLS; loopback only) for the peer
    /// domain. The same accounts log in on both servers; during the traffic phase
    /// user i on --server sends to user i on the peer, so every message crosses the
    /// servers' federation link (s2s). Needs --peer-domain.
    #[arg(long, requires = "peer_domain")]
    pub(crate) peer_server: Option<SocketAddr>,
    /// Federated mode: the XMPP domain of the peer server (and its TLS name).
    #[arg(long, requires = "peer_server")]
    pub(crate) peer_domain: Option<String>,
    /// Federated mode: the peer server's process, whose CPU time and VmRSS are read
    /// like --server-pid's.
    #[arg(long)]
    pub(crate) peer_pid: Option<u32>,
}

fn loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

fn check_secs(name: &str, v: f64, min: f64) -> Result<(), String> {
    if !(v.is_finite() && v >= min && v <= MAX_PHASE_SECS) {
        return Err(format!(
            "--{name} must be between {min} and {MAX_PHASE_SECS} seconds"
        ));
    }
    Ok(())
}

fn check_rate(name: &str, v: f64, min: f64, max: f64) -> Result<(), String> {
    if !(v.is_finite() && v >= min && v <= max) {
        return Err(format!("--{name} must be between {min} and {max}"));
    }
    Ok(())
}

impl Args {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !loopback(self.server.ip()) {
            return Err(format!(
                "--server {} is not a loopback address: this tool only loads local servers",
                self.server
            ));
        }
        if let Some(peer) = self.peer_server {
            if !loopback(peer.ip()) {
                return Err(format!(
                    "--peer-server {peer} is not a loopback address: this tool only loads local servers"
                ));
            }
            if peer.is_ipv4() != self.server.is_ipv4() {
                return Err("--peer-server and --server must be of the same address family".into());
            }
            if self.setup_rosters > 0 || self.presence_rate > 0.0 {
                return Err(
                    "federated mode (--peer-server) sends messages only: no --setup-rosters or --presence-rate"
                        .into(),
                );
            }
        }
        if let Some(d) = &self.peer_domain {
            if d.is_empty() || d.contains(['\'', '"', '<', '>', '&', '/', '@']) {
                return Err("--peer-domain is not a plain domain name".into());
            }
            if d.eq_ignore_ascii_case(&self.domain) {
                return Err("--peer-domain must differ from --domain".into());
            }
        }
        if self.source_ips.is_empty() {
            return Err("--source-ips needs at least one address".into());
        }
        if let Some(ip) = self.source_ips.iter().find(|ip| !loopback(**ip)) {
            return Err(format!("--source-ips {ip} is not a loopback address"));
        }
        if self
            .source_ips
            .iter()
            .any(|ip| ip.is_ipv4() != self.server.is_ipv4())
        {
            return Err("--source-ips and --server must be of the same address family".into());
        }
        if self.users == 0 || self.users > MAX_USERS {
            return Err(format!("--users must be between 1 and {MAX_USERS}"));
        }
        if self.offset.checked_add(self.users).is_none() {
            return Err("--offset + --users overflows".into());
        }
        if self.domain.is_empty() || self.domain.contains(['\'', '"', '<', '>', '&', '/', '@']) {
            return Err("--domain is not a plain domain name".into());
        }
        for (name, v) in [
            ("user-prefix", &self.user_prefix),
            ("pass-prefix", &self.pass_prefix),
            ("resource", &self.resource),
            ("label", &self.label),
        ] {
            if v.contains(['\'', '"', '<', '>', '&', '/', '@', ',', ' ']) {
                return Err(format!(
                    "--{name} must not contain quotes, markup, '/', '@', ',' or spaces"
                ));
            }
        }
        if self.resource.is_empty() || self.pass_prefix.is_empty() && self.user_prefix.is_empty() {
            return Err("--resource and the prefixes must not all be empty".into());
        }
        check_rate("connect-rate", self.connect_rate, 0.01, 100_000.0)?;
        check_rate("msg-rate", self.msg_rate, 0.0, 1_000_000.0)?;
        check_rate("presence-rate", self.presence_rate, 0.0, 1_000_000.0)?;
        check_secs("login-timeout", self.login_timeout, 1.0)?;
        check_secs("hold", self.hold, 0.0)?;
        check_secs("duration", self.duration, 0.0)?;
        check_secs("drain", self.drain, 0.0)?;
        check_secs("setup-timeout", self.setup_timeout, 1.0)?;
        check_secs("go-timeout", self.go_timeout, 0.0)?;
        if self.max_pending == 0 || self.max_pending > 100_000 {
            return Err("--max-pending must be between 1 and 100000".into());
        }
        if self.threads == 0 || self.threads > 64 {
            return Err("--threads must be between 1 and 64".into());
        }
        if self.body_padding > 100_000 {
            return Err("--body-padding must be at most 100000".into());
        }
        if self.setup_rosters > 1000 {
            return Err("--setup-rosters must be at most 1000".into());
        }
        Ok(())
    }

    pub(crate) fn username(&self, i: u32) -> String {
        format!("{}{}", self.user_prefix, self.offset + i)
    }

    pub(crate) fn password(&self, i: u32) -> String {
        format!("{}{}", self.pass_prefix, self.offset + i)
    }

    /// Sessions this process opens: `users`, twice over in federated mode (user i on
    /// the server is session i, user i on the peer is session users + i).
    pub(crate) fn sessions(&self) -> u32 {
        if self.peer_server.is_some() {
            self.users * 2
        } else {
            self.users
        }
    }

    /// Where session `s` logs in: the server and domain, and its account number
    /// (local index).
    pub(crate) fn home(&self, s: u32) -> (SocketAddr, &str, u32) {
        match (self.peer_server, &self.peer_domain) {
            (Some(addr), Some(domain)) if s >= self.users => (addr, domain, s - self.users),
            _ => (self.server, &self.domain, s),
        }
    }

    /// The bare JID of account `i` on the peer server (federated mode).
    pub(crate) fn peer_bare_jid(&self, i: u32) -> Option<String> {
        let domain = self.peer_domain.as_deref()?;
        Some(format!("{}{}@{domain}", self.user_prefix, self.offset + i))
    }

    pub(crate) fn bare_jid(&self, i: u32) -> String {
        format!("{}{}@{}", self.user_prefix, self.offset + i, self.domain)
    }

    /// The local index (0..users) of a JID's account, when it is one of ours.
    pub(crate) fn local_index(&self, jid: &str) -> Option<u32> {
        let bare = jid.split('/').next()?;
        let (node, domain) = bare.split_once('@')?;
        if !domain.eq_ignore_ascii_case(&self.domain) {
            return None;
        }
        let digits = node.strip_prefix(self.user_prefix.as_str())?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u32 = digits.parse().ok()?;
        let local = n.checked_sub(self.offset)?;
        (local < self.users).then_some(local)
    }

    /// The K ring neighbours of local user `i`: K/2 on each side, wrapping within this
    /// process's users.
    pub(crate) fn ring_neighbours(&self, i: u32) -> Vec<u32> {
        let mut out = self.ring_side(i, true);
        for j in self.ring_side(i, false) {
            if !out.contains(&j) {
                out.push(j);
            }
        }
        out
    }

    /// The K/2 ring neighbours after `i` (`after`) or before it.
    pub(crate) fn ring_side(&self, i: u32, after: bool) -> Vec<u32> {
        let n = self.users;
        let mut out = Vec::new();
        for d in 1..=self.setup_rosters / 2 {
            let d = d % n;
            let j = if after { (i + d) % n } else { (i + n - d) % n };
            if j != i && !out.contains(&j) {
                out.push(j);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut v = vec!["herald-loadgen", "--ca", "ca.pem"];
        v.extend_from_slice(extra);
        Args::parse_from(v)
    }

    #[test]
    fn refuses_non_loopback() {
        assert!(args(&["--server", "10.0.0.1:5222"]).validate().is_err());
        assert!(args(&["--source-ips", "127.0.0.1,192.168.1.2"])
            .validate()
            .is_err());
        assert!(args(&["--source-ips", "127.0.0.1,127.0.0.2"])
            .validate()
            .is_ok());
    }

    #[test]
    fn jids_and_ring() {
        let a = args(&["--users", "10", "--offset", "100", "--setup-rosters", "4"]);
        assert_eq!(a.bare_jid(3), "user103@localhost");
        assert_eq!(a.local_index("user103@localhost/lg"), Some(3));
        assert_eq!(a.local_index("user99@localhost"), None);
        assert_eq!(a.local_index("user110@localhost"), None);
        assert_eq!(a.local_index("user103@example.com"), None);
        let mut r = a.ring_neighbours(0);
        r.sort_unstable();
        assert_eq!(r, vec![1, 2, 8, 9]);
        let fed = args(&[
            "--users",
            "4",
            "--domain",
            "a.example",
            "--peer-server",
            "127.0.0.1:6222",
            "--peer-domain",
            "b.example",
        ]);
        assert!(fed.validate().is_ok());
        assert_eq!(fed.sessions(), 8);
        assert_eq!(fed.home(1).1, "a.example");
        assert_eq!(
            fed.home(5),
            ("127.0.0.1:6222".parse().unwrap(), "b.example", 1)
        );
        assert_eq!(fed.peer_bare_jid(2).as_deref(), Some("user2@b.example"));
        assert!(args(&[
            "--peer-server",
            "127.0.0.1:6222",
            "--peer-domain",
            "localhost"
        ])
        .validate()
        .is_err());
        assert!(args(&[
            "--peer-server",
            "10.1.1.1:6222",
            "--peer-domain",
            "b.example"
        ])
        .validate()
        .is_err());
        let small = args(&["--users", "3", "--setup-rosters", "10"]);
        let mut r = small.ring_neighbours(1);
        r.sort_unstable();
        assert_eq!(r, vec![0, 2]);
    }
}
