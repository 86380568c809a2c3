//! `herald sessions list [USER]` and `herald sessions kick JID [--reason TEXT]`, like
//! `ejabberdctl connected_users` and `kick_session`, through the running server's admin
//! API.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{json, Value};

use crate::admin_client::AdminClient;
use crate::admin_http::percent_encode;
use crate::app::load_config;
use crate::error::EdgeError;

#[derive(Debug, Subcommand)]
pub enum SessionsAction {
    /// List client sessions: full JID, address, TLS kind, since when, and whether the
    /// session is resumable (XEP-0198) or detached (waiting to be resumed).
    List {
        /// Only this user's sessions (`alice`, `alice@example.org`, or a full JID).
        user: Option<String>,
    },
    /// End a session with the stream error `policy-violation`. A bare JID (or a plain
    /// username) ends all of that user's sessions.
    Kick {
        /// The session (`alice@example.org/phone`) or the user (`alice`).
        jid: String,
        /// Text sent to the client inside the stream error.
        #[arg(long)]
        reason: Option<String>,
    },
}

pub fn run(config_path: Option<&Path>, action: SessionsAction) -> Result<ExitCode, EdgeError> {
    let config = load_config(config_path)?;
    let client = AdminClient::from_config(&config)?;
    match action {
        SessionsAction::List { user } => {
            let path = match user {
                Some(u) => format!("/api/sessions?user={}", percent_encode(&u)),
                None => "/api/sessions".to_string(),
            };
            let v = client.get(&path)?;
            print!("{}", render_list(&v));
            Ok(ExitCode::SUCCESS)
        }
        SessionsAction::Kick { jid, reason } => {
            let v = client.post(
                "/api/sessions/kick",
                &json!({ "jid": jid, "reason": reason }),
            )?;
            let kicked: Vec<&str> = v
                .get("kicked")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if kicked.is_empty() {
                eprintln!("herald: no session of {jid}");
                return Ok(ExitCode::FAILURE);
            }
            for k in kicked {
                println!("kicked {k}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The session table as text, one line per session after a header.
pub fn render_list(v: &Value) -> String {
    let sessions = v
        .get("sessions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if sessions.is_empty() {
        return "no sessions\n".to_string();
    }
    let rows: Vec<[String; 5]> = sessions
        .iter()
        .map(|s| {
            let text = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
            let flag = |k: &str| s.get(k).and_then(Value::as_bool).unwrap_or(false);
            let since = s
                .get("since_unix_ms")
                .and_then(Value::as_i64)
                .map_or_else(|| "-".into(), herald_core::time::xep0082);
            let state = if flag("detached") {
                "detached"
            } else if flag("resumable") {
                "resumable"
            } else {
                "active"
            };
            [
                text("jid"),
                text("ip"),
                if flag("direct_tls") {
                    "direct".into()
                } else {
                    "starttls".into()
                },
                since,
                state.into(),
            ]
        })
        .collect();
    let header = ["JID", "ADDRESS", "TLS", "SINCE (UTC)", "STATE"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  "));
            }
        }
        l.push('\n');
        l
    };
    let mut out = line(header);
    for r in &rows {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
    }
    out.push_str(&format!("{} session(s)\n", rows.len()));
    out
}
