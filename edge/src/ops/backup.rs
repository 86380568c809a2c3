//! `herald backup FILE` and `herald restore FILE`.
//!
//! The backup runs in the CLI process, directly against the database file, rather than
//! through the admin API: SQLite's online backup reads one consistent snapshot of the
//! WAL database without blocking the server's writers, so it needs nothing from the
//! server; it works the same whether the server runs or not (and when it is wedged);
//! the file is written with the operator's permissions wherever they can write, instead
//! of by the server; and a database of any size is copied without going through the
//! admin listener, which is bounded and time-limited by design.
//!
//! Restore must not run beside a server: it takes the data directory lock that a
//! running server holds ([`crate::lock`]) and refuses when it cannot. The file must be
//! a Herald database (SQLite integrity check, Herald tables, a schema version this
//! build knows); it replaces the database with one rename, and the previous database is
//! kept as `herald.db.pre-restore`.

use std::path::Path;
use std::process::ExitCode;

use herald_core::store::backup::{self, DbSummary};

use crate::app::{database_path, load_config};
use crate::config::Config;
use crate::error::EdgeError;

/// Back the configured database up to `file`.
pub fn backup_to(config: &Config, file: &Path) -> Result<DbSummary, EdgeError> {
    Ok(backup::backup(&database_path(config), file)?)
}

/// Restore `file` over the configured database; refuses while a server runs.
pub fn restore_from(config: &Config, file: &Path) -> Result<DbSummary, EdgeError> {
    let _lock = crate::lock::try_lock(&config.server.data_dir)?;
    Ok(backup::restore(file, &database_path(config))?)
}

pub fn run_backup(config_path: Option<&Path>, file: &Path) -> Result<ExitCode, EdgeError> {
    let config = load_config(config_path)?;
    let s = backup_to(&config, file)?;
    println!(
        "backed up {} to {}: {} account(s), {} offline message(s), schema version {}",
        database_path(&config).display(),
        file.display(),
        s.users,
        s.offline_messages,
        s.schema_version
    );
    Ok(ExitCode::SUCCESS)
}

pub fn run_restore(config_path: Option<&Path>, file: &Path) -> Result<ExitCode, EdgeError> {
    let config = load_config(config_path)?;
    let s = restore_from(&config, file)?;
    println!(
        "restored {} into {}: {} account(s), {} offline message(s), schema version {} \
         (the previous database, if any, is kept as herald.db.pre-restore)",
        file.display(),
        database_path(&config).display(),
        s.users,
        s.offline_messages,
        s.schema_version
    );
    Ok(ExitCode::SUCCESS)
}
