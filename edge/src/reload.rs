//! SIGHUP: read the configuration again and put in force what can change while
//! sessions run — the log filter, the certificates, the client-service limits. A file
//! that does not load changes nothing (the caller logs why).

use crate::app::{certificates, Running};
use crate::config::Config;
use crate::error::EdgeError;
use crate::logging::LogControl;

impl Running {
    /// Apply `new`. Returns the keys whose change waits for a restart (listeners,
    /// hosted domains, the data directory, the admin listener, admission and
    /// authentication throttling, `[s2s]` and `[dns]`). Nothing is applied when the certificates fail to
    /// load.
    pub fn reload(
        &mut self,
        new: &Config,
        log: Option<&LogControl>,
    ) -> Result<Vec<String>, EdgeError> {
        let (sni, _) = certificates(new)?;
        if let Some(log) = log {
            if let Err(e) = log.set_level(&new.log.level) {
                tracing::warn!(error = %e, "log.level not reloaded");
            }
        }
        self.certs.replace(sni);
        let mut restart: Vec<String> = self
            .server
            .reload_settings(new.c2s.clone())
            .into_iter()
            .map(|k| format!("c2s.{k}"))
            .collect();
        let old = &self.config;
        if old.server.domains != new.server.domains {
            restart.push("server.domains".into());
        }
        if old.server.data_dir != new.server.data_dir {
            restart.push("server.data_dir".into());
        }
        if old.admin.listen != new.admin.listen || old.admin.token_file != new.admin.token_file {
            restart.push("admin".into());
        }
        // Federation reads its rules, trust and resolver once, at start.
        if old.s2s != new.s2s {
            restart.push("s2s".into());
        }
        if old.dns != new.dns {
            restart.push("dns".into());
        }
        if old.log.format != new.log.format {
            restart.push("log.format".into());
        }
        self.config = new.clone();
        Ok(restart)
    }
}
