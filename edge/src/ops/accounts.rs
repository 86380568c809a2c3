//! Account commands that must reach the running server: removing an account (its
//! sessions end, its contacts' sessions get the pushes) and ending the sessions of an
//! account whose password changed. Whether a server runs is its data directory lock;
//! when none does, the command holds the lock itself while it works on the database,
//! so no server starts half-way.

use herald_core::accounts;
use herald_core::store::SqliteStore;
use serde_json::json;

use crate::admin_client::AdminClient;
use crate::config::Config;
use crate::error::EdgeError;
use crate::lock::{try_lock, DataDirLock};

/// Whether a server runs on the configuration's data directory.
pub enum ServerState {
    /// None does; this lock keeps one from starting until it is dropped.
    Stopped(DataDirLock),
    /// One does (it holds the lock).
    Running,
}

/// Look at the data directory lock.
pub fn server_state(config: &Config) -> Result<ServerState, EdgeError> {
    match try_lock(&config.server.data_dir) {
        Ok(lock) => Ok(ServerState::Stopped(lock)),
        Err(EdgeError::Locked { .. }) => Ok(ServerState::Running),
        Err(e) => Err(e),
    }
}

/// Remove `user` (a normalized username): through the running server, or in the
/// database when none runs. Returns a line saying what happened.
pub fn remove(config: &Config, store: &SqliteStore, user: &str) -> Result<String, EdgeError> {
    match server_state(config)? {
        ServerState::Stopped(_lock) => {
            let rosters = accounts::remove_account_offline(store, user, &config.server.domains)?;
            Ok(format!(
                "left {rosters} other roster(s); no server was running"
            ))
        }
        ServerState::Running => {
            let client = running_server(config, "remove an account")?;
            let answer = client.post("/api/users/remove", &json!({ "user": user }))?;
            Ok(format!(
                "{} session(s) ended, left {} other roster(s), {} offline message(s) deleted",
                answer["sessions_ended"], answer["rosters_updated"], answer["offline_deleted"]
            ))
        }
    }
}

/// After a password change: end the account's sessions on the running server, if one
/// runs. Returns how many ended.
pub fn end_sessions_after_password_change(config: &Config, user: &str) -> Result<u64, EdgeError> {
    match server_state(config)? {
        ServerState::Stopped(_) => Ok(0),
        ServerState::Running => {
            let client = running_server(config, "end the account's sessions")?;
            let answer = client.post(
                "/api/users/end-sessions",
                &json!({ "user": user, "reason": "the password was changed" }),
            )?;
            Ok(answer["ended"].as_u64().unwrap_or(0))
        }
    }
}

/// The admin client of a server known to run, with a message that says what could
/// not be done when its admin listener is off.
fn running_server(config: &Config, what: &str) -> Result<AdminClient, EdgeError> {
    AdminClient::from_config(config).map_err(|_| {
        EdgeError::Command(format!(
            "a server runs on {} but its admin listener is disabled (admin.listen): \
             cannot {what} while it runs",
            config.server.data_dir.display()
        ))
    })
}
