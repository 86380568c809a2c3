//! The `herald` configuration file: one TOML document, every table closed to unknown
//! keys. Reading it reports every problem at once, each with file, line and key:
//! a syntax error alone (nothing after it can be trusted); otherwise every unknown key
//! and badly typed value (each is set aside and reading goes on), then the checks of
//! meaning in [`check`] on what was read.

mod check;
mod explain;
mod locate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use herald_core::C2sSettings;
use herald_rules::federation::{
    Acl, AclAction, AclRule, AuthPolicy, DomainLimits, Federation, Route, RouteTable, TlsPolicy,
};
use serde::Deserialize;
use toml::de::DeTable;

use locate::Seg;

/// Rounds of "set the bad key aside and read again" before giving up.
const MAX_ROUNDS: usize = 100;

/// The whole configuration. Every table and key is optional; the defaults are the
/// embedded all-in-one server on loopback.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub tls: TlsConfig,
    pub c2s: C2sSettings,
    pub admin: AdminConfig,
    pub log: LogConfig,
    pub s2s: S2sConfig,
    pub dns: DnsConfig,
    pub sip: SipConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Domains this server hosts; the first is the default.
    pub domains: Vec<String>,
    /// Where the database and the generated development certificates live.
    pub data_dir: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            domains: vec!["localhost".into()],
            data_dir: PathBuf::from("data"),
        }
    }
}

/// Certificates. Without any, a development CA and a server certificate for every
/// hosted domain are generated under `<data_dir>/tls` so TLS is always on.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub certificates: Vec<CertificateConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    /// PEM chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// `/health` and `/metrics`; keep it on loopback or a management network.
    pub listen: Option<SocketAddr>,
    /// The bearer token `/metrics` requires; created with a random value when missing.
    /// Default: `admin.token` in the data directory.
    pub token_file: Option<PathBuf>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 9090))),
            token_file: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `herald_core=debug,info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

/// XMPP federation (server-to-server). Without listeners federation is off.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S2sConfig {
    /// Listeners for s2s streams with STARTTLS (RFC 6120), usually port 5269.
    pub listen: Vec<SocketAddr>,
    /// Listeners for direct-TLS s2s streams (XEP-0368), usually port 5270.
    pub listen_tls: Vec<SocketAddr>,
    /// PEM files of extra trust anchors for peers' certificates (the system roots are
    /// always trusted).
    pub trust: Vec<PathBuf>,
    /// Whether streams must be encrypted; a route may override it.
    pub tls: TlsPolicy,
    /// How peers authenticate: `pkix`, `dialback` or `any`; a route may override it.
    pub auth: AuthPolicy,
    /// What the ACL does with a domain no `[[s2s.acl]]` rule matches.
    pub default: AclAction,
    /// An s2s stream idle this long is closed.
    pub idle_timeout_secs: u64,
    /// Stanzas that may wait for one remote domain: while its stream is set up, and
    /// on the established stream while the peer reads slower than we send. Past it
    /// (or past `send_queue_bytes`) a stanza bounces with `resource-constraint`.
    pub send_queue: usize,
    /// The same bound in bytes.
    pub send_queue_bytes: usize,
    /// The file holding the secret dialback keys are derived from (XEP-0185); created
    /// with 32 random bytes when missing. Absent: `dialback.key` in the data
    /// directory. Nodes serving one domain must share it (copy the file).
    pub dialback_secret_file: Option<PathBuf>,
    /// Per-remote-domain limits; a route may override any of them.
    pub limits: DomainLimits,
    /// Static routes (`[[s2s.route]]`).
    pub route: Vec<Route>,
    /// ACL rules in order (`[[s2s.acl]]`): the first that matches decides.
    pub acl: Vec<AclRule>,
}

impl Default for S2sConfig {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            listen_tls: Vec::new(),
            trust: Vec::new(),
            tls: TlsPolicy::Required,
            auth: AuthPolicy::Any,
            default: AclAction::Allow,
            idle_timeout_secs: 600,
            send_queue: 4096,
            send_queue_bytes: 4 << 20,
            dialback_secret_file: None,
            limits: DomainLimits::default(),
            route: Vec::new(),
            acl: Vec::new(),
        }
    }
}

impl S2sConfig {
    /// Federation runs when there is at least one s2s listener.
    pub fn enabled(&self) -> bool {
        !self.listen.is_empty() || !self.listen_tls.is_empty()
    }
}

/// How remote domains are looked up in DNS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Nameservers to ask, `ip:port`; empty: the system resolver.
    pub nameservers: Vec<SocketAddr>,
}

/// SIP: the `[sip]` table (listeners, realm, limits) is the core's settings.
pub type SipConfig = herald_core::sip::SipSettings;

impl Config {
    /// The SIP digest realm: `sip.realm`, or the first hosted domain.
    pub fn sip_realm(&self) -> String {
        match &self.sip.realm {
            Some(realm) => realm.clone(),
            None => self
                .server
                .domains
                .first()
                .cloned()
                .unwrap_or_else(|| "localhost".into()),
        }
    }

    /// The federation policy of this configuration, as `herald_rules` evaluates it.
    pub fn federation(&self) -> Federation {
        Federation {
            enabled: self.s2s.enabled(),
            hosted: self.server.domains.clone(),
            routes: RouteTable::new(self.s2s.route.clone()),
            acl: Acl::new(self.s2s.acl.clone(), self.s2s.default),
            tls: self.s2s.tls,
            auth: self.s2s.auth,
            limits: self.s2s.limits,
        }
    }
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Configuration could not be used; every issue found is listed.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError(pub Vec<ConfigIssue>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Read, parse and validate a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(vec![ConfigIssue {
                file: path.to_path_buf(),
                line: None,
                key: None,
                message: format!("cannot read: {e}"),
            }])
        })?;
        Self::parse(&text, path)
    }

    /// Parse and validate configuration text; `path` is only used in messages. Fails
    /// with every problem found.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let issue = |offset: Option<usize>, key: Option<String>, message: String| ConfigIssue {
            file: path.to_path_buf(),
            line: offset.map(|o| locate::line_of(text, o)),
            key,
            message,
        };
        let doc = match DeTable::parse(text) {
            Ok(doc) => doc,
            Err(e) => {
                let offset = e.span().map(|s| s.start);
                let message = format!("TOML syntax: {}", e.message().trim());
                return Err(ConfigError(vec![issue(offset, None, message)]));
            }
        };
        let mut issues = Vec::new();
        let (config, errors) = read_all(doc.clone());
        for (offset, path, message) in errors {
            let key = (!path.is_empty()).then(|| locate::dotted(&path));
            issues.push(issue(offset, key, message));
        }
        let mut config = config;
        if let Some(config) = &mut config {
            // Relative paths are the file's: one file names one database wherever the
            // command runs.
            config.resolve_paths(&crate::config_source::base_dir(path));
            for f in check::check(config) {
                let offset = locate::offset_of(doc.get_ref(), &f.path);
                issues.push(issue(offset, Some(locate::dotted(&f.path)), f.message));
            }
        }
        issues.sort_by_key(|i| i.line.unwrap_or(usize::MAX));
        match config {
            Some(config) if issues.is_empty() => Ok(config),
            _ => Err(ConfigError(issues)),
        }
    }
}

/// A deserialization problem: (offset, path, message).
type Located = (Option<usize>, Vec<Seg>, String);

/// Deserialize, setting aside each key or element serde stops at, until it reads.
/// Returns the configuration read without them (`None` when a problem could not be
/// located and set aside) and every problem.
fn read_all(mut doc: toml::Spanned<DeTable<'_>>) -> (Option<Config>, Vec<Located>) {
    let mut errors = Vec::new();
    // Tables a key was taken from: their "missing field" follows from that problem.
    let mut emptied: Vec<Vec<Seg>> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let e = match Config::deserialize(toml::de::Deserializer::from(doc.clone())) {
            Ok(config) => return (Some(config), errors),
            Err(e) => e,
        };
        let path = e
            .span()
            .map(|s| locate::path_at(doc.get_ref(), s.start))
            .unwrap_or_default();
        let key = locate::dotted(&path);
        let value = locate::get(doc.get_ref(), &path).map(|v| v.get_ref());
        let mut message = explain::explain(e.message(), &key, value);
        let offset = e.span().map(|s| s.start);
        let missing = e.message().starts_with("missing field");
        if let (true, Some(Seg::Index(i))) = (missing, path.last()) {
            // The key alone does not say which entry of the list lacks the field.
            message = format!("entry {} of the list: {message}", i + 1);
        }
        if !(missing && emptied.contains(&path)) {
            errors.push((offset, path.clone(), message));
        }
        if !locate::remove(doc.get_mut(), &path) {
            return (None, errors);
        }
        if let Some((_, parent)) = path.split_last() {
            emptied.push(parent.to_vec());
        }
    }
    (None, errors)
}

#[cfg(test)]
mod tests;
