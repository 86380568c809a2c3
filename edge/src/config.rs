//! The `herald` configuration file: one TOML document, every table closed to unknown
//! keys. Errors name the file, the line and the key.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use herald_core::C2sSettings;
use serde::Deserialize;

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

    /// Parse and validate configuration text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| {
            let (line, key) = match e.span() {
                Some(span) => (Some(line_of(text, span.start)), key_at(text, span.start)),
                None => (None, None),
            };
            ConfigError(vec![ConfigIssue {
                file: path.to_path_buf(),
                line,
                key,
                message: e.message().trim().to_string(),
            }])
        })?;
        let issues: Vec<ConfigIssue> = config
            .validate()
            .into_iter()
            .map(|(key, message)| ConfigIssue {
                file: path.to_path_buf(),
                line: find_key(text, &key),
                key: Some(key),
                message,
            })
            .collect();
        if issues.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(issues))
        }
    }

    /// Checks that need more than the types: (dotted key, message).
    fn validate(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.server.domains.is_empty() {
            out.push((
                "server.domains".into(),
                "at least one domain is required".into(),
            ));
        }
        for d in &self.server.domains {
            match herald_translate::Jid::domain_jid(d) {
                Ok(j) if j.domain() == d => {}
                Ok(j) => out.push((
                    "server.domains".into(),
                    format!("{d:?} must be written in normalized form {:?}", j.domain()),
                )),
                Err(e) => out.push(("server.domains".into(), format!("{d:?}: {e}"))),
            }
        }
        for (key, msg) in self.c2s.validate() {
            out.push((format!("c2s.{key}"), msg));
        }
        if self.c2s.listen.is_empty() && self.c2s.listen_tls.is_empty() {
            out.push(("c2s.listen".into(), "no client listener configured".into()));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            out.push((
                "log.level".into(),
                format!("invalid filter {:?}", self.log.level),
            ));
        }
        out
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The dotted key at an offset: the table header in force plus the key on that line.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let line_no = line_of(text, offset);
    let mut table = String::new();
    let mut key = None;
    for (i, line) in text.lines().enumerate().take(line_no) {
        let t = line.trim();
        if t.starts_with('[') {
            table = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        } else if i + 1 == line_no {
            key = t.split_once('=').map(|(k, _)| k.trim().to_string());
        }
    }
    match (table.is_empty(), key) {
        (_, None) if !table.is_empty() => Some(table),
        (true, k) => k,
        (false, Some(k)) => Some(format!("{table}.{k}")),
        (false, None) => None,
    }
}

/// The line where a dotted key (`table.key`) is written, if it is.
fn find_key(text: &str, dotted: &str) -> Option<usize> {
    let (table, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            current = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        } else if current == table && t.split_once('=').is_some_and(|(k, _)| k.trim() == key) {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("herald.toml"))
    }

    #[test]
    fn empty_file_is_the_embedded_default() {
        let c = parse("").expect("empty config");
        assert_eq!(c.server.domains, vec!["localhost".to_string()]);
        assert_eq!(c.c2s.max_stanza_bytes, 262_144);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = parse("[server]\ndomains = [\"a.example\"]\n\n[c2s]\nmax_stanza_byte = 5\n")
            .expect_err("typo");
        let issue = &err.0[0];
        assert_eq!(issue.line, Some(5));
        assert_eq!(issue.key.as_deref(), Some("c2s.max_stanza_byte"));
        assert!(issue.message.contains("unknown field"), "{}", issue.message);
        assert!(err
            .to_string()
            .starts_with("herald.toml:5: key `c2s.max_stanza_byte`"));
    }

    #[test]
    fn wrong_type_is_located() {
        let err = parse("[c2s]\noffline_quota = \"lots\"\n").expect_err("type");
        assert_eq!(err.0[0].line, Some(2));
        assert_eq!(err.0[0].key.as_deref(), Some("c2s.offline_quota"));
    }

    #[test]
    fn semantic_errors_are_located() {
        let err = parse("[c2s]\nmax_depth = 1\nmax_attributes = 2\n").expect_err("limits");
        let keys: Vec<_> = err
            .0
            .iter()
            .map(|i| (i.key.clone().unwrap_or_default(), i.line))
            .collect();
        assert!(
            keys.contains(&("c2s.max_depth".to_string(), Some(2))),
            "{keys:?}"
        );
        assert!(
            keys.contains(&("c2s.max_attributes".to_string(), Some(3))),
            "{keys:?}"
        );
    }

    #[test]
    fn domains_must_be_normalized() {
        let err = parse("[server]\ndomains = [\"Example.COM\"]\n").expect_err("case");
        assert_eq!(err.0[0].key.as_deref(), Some("server.domains"));
        assert_eq!(err.0[0].line, Some(2));
    }

    #[test]
    fn the_example_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../herald.example.toml");
        let c = Config::load(&path).expect("herald.example.toml must be valid");
        assert_eq!(c.server.domains, vec!["localhost".to_string()]);
    }
}
