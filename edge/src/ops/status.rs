//! `herald status`: what `prosodyctl status` and `ejabberdctl status` tell, from the
//! running server's admin API.

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;

use super::{human_bytes, human_duration};
use crate::admin_client::AdminClient;
use crate::app::load_config;
use crate::error::EdgeError;

/// Print the running server's status; `server not running` (exit 1) when the admin
/// listener does not answer.
pub fn run(config_path: Option<&Path>) -> Result<ExitCode, EdgeError> {
    let config = load_config(config_path)?;
    let client = AdminClient::from_config(&config)?;
    let v = client.get("/api/status")?;
    print!("{}", render(&v));
    Ok(ExitCode::SUCCESS)
}

/// The status report as text.
pub fn render(v: &Value) -> String {
    let num = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let mut out = format!(
        "Herald {} running, up {}{}\n",
        v.get("version").and_then(Value::as_str).unwrap_or("?"),
        human_duration(num("uptime_secs")),
        if v.get("stopping").and_then(Value::as_bool) == Some(true) {
            " (shutting down)"
        } else {
            ""
        }
    );
    let domains: Vec<&str> = v
        .get("domains")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.push_str(&format!("domains:     {}\n", domains.join(", ")));
    out.push_str("listeners:\n");
    for l in v
        .get("listeners")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push_str(&format!(
            "  {:<16} {}\n",
            l.get("kind").and_then(Value::as_str).unwrap_or("?"),
            l.get("addr").and_then(Value::as_str).unwrap_or("?")
        ));
    }
    let detached = num("detached_sessions");
    out.push_str(&format!("sessions:    {}", num("sessions")));
    if detached > 0 {
        out.push_str(&format!(" ({detached} detached, waiting for resumption)"));
    }
    out.push('\n');
    out.push_str(&format!("connections: {}\n", num("connections")));
    if let Some(db) = v.get("database") {
        let b = |k: &str| db.get(k).and_then(Value::as_u64).unwrap_or(0);
        out.push_str(&format!(
            "database:    {} {} (+ {} write-ahead log)\n",
            db.get("path").and_then(Value::as_str).unwrap_or("?"),
            human_bytes(b("bytes")),
            human_bytes(b("wal_bytes"))
        ));
    }
    out
}
