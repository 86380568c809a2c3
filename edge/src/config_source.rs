//! Which configuration a command uses. The server and every command that touches its
//! data find it the same way, whatever the working directory: `--config FILE`, then
//! the `HERALD_CONFIG` environment variable, then `./herald.toml`, then
//! `/etc/herald/herald.toml`, then the embedded default. Relative paths inside a file
//! are resolved against the file's directory, so a file names one database wherever
//! the command runs.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError, ConfigIssue};

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "HERALD_CONFIG";
/// The file looked for in the working directory.
pub const LOCAL_FILE: &str = "herald.toml";
/// The system-wide file.
pub const SYSTEM_FILE: &str = "/etc/herald/herald.toml";

/// Where the configuration in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// `--config FILE`.
    Flag(PathBuf),
    /// `HERALD_CONFIG`.
    Env(PathBuf),
    /// `./herald.toml` or `/etc/herald/herald.toml`, found by the search.
    Found(PathBuf),
    /// No file anywhere: the embedded default.
    Embedded,
}

impl ConfigSource {
    /// The file, when there is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::Flag(p) | Self::Env(p) | Self::Found(p) => Some(p),
            Self::Embedded => None,
        }
    }
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(p) => write!(f, "{} (--config)", p.display()),
            Self::Env(p) => write!(f, "{} ({CONFIG_ENV})", p.display()),
            Self::Found(p) => write!(f, "{}", p.display()),
            Self::Embedded => write!(
                f,
                "embedded default (no --config, no {CONFIG_ENV}, no ./{LOCAL_FILE}, no {SYSTEM_FILE})"
            ),
        }
    }
}

/// A configuration and where it came from.
#[derive(Debug, Clone)]
pub struct Located {
    pub config: Config,
    pub source: ConfigSource,
}

/// Find and load the configuration: `flag` (from `--config`) first, then the
/// environment, the working directory, the system file and the embedded default.
pub fn locate(flag: Option<&Path>) -> Result<Located, ConfigError> {
    locate_in(
        flag,
        std::env::var_os(CONFIG_ENV),
        &[PathBuf::from(LOCAL_FILE), PathBuf::from(SYSTEM_FILE)],
    )
}

/// [`locate`] with the environment value and the searched files given (tests).
pub fn locate_in(
    flag: Option<&Path>,
    env: Option<OsString>,
    search: &[PathBuf],
) -> Result<Located, ConfigError> {
    let source = match (flag, env.filter(|v| !v.is_empty())) {
        (Some(p), _) => ConfigSource::Flag(p.to_path_buf()),
        (None, Some(v)) => ConfigSource::Env(PathBuf::from(v)),
        (None, None) => search
            .iter()
            .find(|p| p.is_file())
            .map_or(ConfigSource::Embedded, |p| ConfigSource::Found(p.clone())),
    };
    let config = match source.file() {
        None => Config::default(),
        Some(file) => {
            if !file.exists() {
                return Err(ConfigError(vec![ConfigIssue {
                    file: file.to_path_buf(),
                    line: None,
                    key: None,
                    message: format!("no such file (named by {})", named_by(&source)),
                }]));
            }
            Config::load(file)?
        }
    };
    Ok(Located { config, source })
}

fn named_by(source: &ConfigSource) -> &'static str {
    match source {
        ConfigSource::Flag(_) => "--config",
        ConfigSource::Env(_) => CONFIG_ENV,
        _ => "the search",
    }
}

/// The directory relative paths in `file` are taken from.
pub(crate) fn base_dir(file: &Path) -> PathBuf {
    let dir = file.parent().unwrap_or_else(|| Path::new(""));
    if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir.to_path_buf()
    }
}

fn resolve(base: &Path, path: &mut PathBuf) {
    if path.is_relative() {
        *path = base.join(&*path);
    }
}

impl Config {
    /// Make the file paths of a configuration read from a file in `base` absolute
    /// (or relative to `base` when `base` is).
    pub fn resolve_paths(&mut self, base: &Path) {
        resolve(base, &mut self.server.data_dir);
        for c in &mut self.tls.certificates {
            resolve(base, &mut c.cert);
            resolve(base, &mut c.key);
        }
        if let Some(t) = &mut self.admin.token_file {
            resolve(base, t);
        }
        for t in &mut self.s2s.trust {
            resolve(base, t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new() -> Self {
            let p = std::env::temp_dir().join(format!("herald-cfgsrc-{}", rand::random::<u64>()));
            std::fs::create_dir_all(&p).expect("dir");
            Self(p)
        }

        fn file(&self, name: &str, text: &str) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, text).expect("write");
            p
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_flag_wins_over_everything() {
        let d = Dir::new();
        let flag = d.file("a.toml", "[server]\ndomains = [\"a.example\"]\n");
        let env = d.file("b.toml", "[server]\ndomains = [\"b.example\"]\n");
        let local = d.file("c.toml", "[server]\ndomains = [\"c.example\"]\n");
        let l = locate_in(Some(&flag), Some(env.into()), &[local]).expect("load");
        assert_eq!(l.source, ConfigSource::Flag(flag));
        assert_eq!(l.config.server.domains, ["a.example"]);
    }

    #[test]
    fn the_environment_comes_before_the_search() {
        let d = Dir::new();
        let env = d.file("b.toml", "[server]\ndomains = [\"b.example\"]\n");
        let local = d.file("c.toml", "[server]\ndomains = [\"c.example\"]\n");
        let l = locate_in(None, Some(env.clone().into()), &[local]).expect("load");
        assert_eq!(l.source, ConfigSource::Env(env));
        assert_eq!(l.config.server.domains, ["b.example"]);
        // An empty variable is unset.
        let l = locate_in(None, Some(OsString::new()), &[]).expect("load");
        assert_eq!(l.source, ConfigSource::Embedded);
    }

    #[test]
    fn the_search_takes_the_first_file_that_exists() {
        let d = Dir::new();
        let missing = d.0.join("herald.toml");
        let system = d.file("system.toml", "[server]\ndomains = [\"s.example\"]\n");
        let l = locate_in(None, None, &[missing.clone(), system.clone()]).expect("load");
        assert_eq!(l.source, ConfigSource::Found(system));
        assert_eq!(l.config.server.domains, ["s.example"]);
        let l = locate_in(None, None, &[missing]).expect("load");
        assert_eq!(l.source, ConfigSource::Embedded);
        assert_eq!(l.config.server.domains, ["localhost"]);
        assert!(l.source.to_string().contains("/etc/herald/herald.toml"));
    }

    #[test]
    fn a_named_file_that_does_not_exist_is_an_error() {
        let d = Dir::new();
        let err = locate_in(None, Some(d.0.join("nope.toml").into()), &[])
            .expect_err("missing")
            .to_string();
        assert!(
            err.contains("nope.toml") && err.contains("HERALD_CONFIG"),
            "{err}"
        );
    }

    #[test]
    fn relative_paths_are_taken_from_the_file_directory() {
        let d = Dir::new();
        let f = d.file(
            "h.toml",
            "[server]\ndata_dir = \"state\"\n[admin]\ntoken_file = \"/abs/token\"\n\
             [s2s]\ntrust = [\"peers-ca.pem\"]\n",
        );
        let pki = herald_certs::ensure_dev_pki(&d.0.join("pki"), &["a.example".to_string()])
            .expect("pki");
        std::fs::copy(&pki.ca_cert, d.0.join("peers-ca.pem")).expect("copy");
        let l = locate_in(Some(&f), None, &[]).expect("load");
        assert_eq!(l.config.server.data_dir, d.0.join("state"));
        assert_eq!(
            l.config.admin.token_file.as_deref(),
            Some(Path::new("/abs/token"))
        );
        assert_eq!(l.config.s2s.trust, [d.0.join("peers-ca.pem")]);
    }
}
