//! Logging: human or JSON lines on standard error, colours only on a terminal, and a
//! filter a reload can replace.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// The environment variable whose filter overrides `log.level`.
pub const LOG_ENV: &str = "HERALD_LOG";

type SetFilter = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

/// Replaces the log filter of the running process.
pub struct LogControl {
    set: SetFilter,
    /// `HERALD_LOG` was set: it keeps precedence over the file at reload.
    from_env: bool,
}

impl std::fmt::Debug for LogControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogControl")
            .field("from_env", &self.from_env)
            .finish_non_exhaustive()
    }
}

impl LogControl {
    /// Put `level` (a filter such as `info` or `herald_core=debug,info`) in force,
    /// unless `HERALD_LOG` set the filter. The filter was checked with the file.
    pub fn set_level(&self, level: &str) -> Result<(), String> {
        if self.from_env {
            tracing::info!("log.level not reloaded: {LOG_ENV} is set and takes precedence");
            return Ok(());
        }
        let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        (self.set)(filter)
    }
}

/// Install the global subscriber for `herald serve`.
pub fn init(config: &Config) -> LogControl {
    let env = std::env::var(LOG_ENV)
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok());
    let from_env = env.is_some();
    let filter = env.unwrap_or_else(|| EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let set: SetFilter = match config.log.format {
        LogFormat::Json => {
            let builder = builder.json().with_filter_reloading();
            let handle = builder.reload_handle();
            builder.init();
            Box::new(move |f| handle.reload(f).map_err(|e| e.to_string()))
        }
        LogFormat::Human => {
            let builder = builder.with_filter_reloading();
            let handle = builder.reload_handle();
            builder.init();
            Box::new(move |f| handle.reload(f).map_err(|e| e.to_string()))
        }
    };
    LogControl { set, from_env }
}
