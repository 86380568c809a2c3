//! The JSON endpoints of the admin listener (the bearer token is checked before these
//! run). Each returns an HTTP status line and a JSON body; errors are
//! `{"error": "..."}`.
//!
//! - `GET /api/status`: version, uptime, domains, listeners, session and connection
//!   counts, database size.
//! - `GET /api/sessions[?user=JID]`: every session, or those of a bare or full JID.
//! - `POST /api/sessions/kick` with `{"jid": "...", "reason": "..."}`: end a session
//!   (full JID) or all of a user's sessions (bare JID) with the stream error
//!   `policy-violation`; answers `{"kicked": [full JIDs]}`.

use herald_translate::Jid;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::admin::AdminCtx;
use crate::admin_http::Request;

/// The stream error text when the operator gives no reason.
pub(crate) const DEFAULT_KICK_REASON: &str = "disconnected by an administrator";
/// Longest kick reason accepted.
const MAX_REASON: usize = 1024;

fn ok(v: &Value) -> (&'static str, String) {
    ("200 OK", format!("{v}\n"))
}

fn error(status: &'static str, message: &str) -> (&'static str, String) {
    (status, format!("{}\n", json!({ "error": message })))
}

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

pub(crate) fn status(ctx: &AdminCtx) -> (&'static str, String) {
    let server = &ctx.server;
    let db = &ctx.info.database;
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let listeners: Vec<Value> = ctx
        .info
        .listeners
        .iter()
        .map(|(kind, addr)| json!({ "kind": kind, "addr": addr.to_string() }))
        .collect();
    ok(&json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": ctx.started.elapsed().as_secs(),
        "domains": server.domains,
        "listeners": listeners,
        "sessions": server.router.session_count(),
        "detached_sessions": server.detached_count(),
        "connections": server.metrics.connections.get(),
        "stopping": server.is_shutting_down(),
        "database": {
            "path": db.display().to_string(),
            "bytes": file_size(db),
            "wal_bytes": file_size(std::path::Path::new(&wal)),
        },
    }))
}

/// A JID given by the operator: a bare `user` is completed with the default domain.
fn operator_jid(ctx: &AdminCtx, text: &str) -> Result<Jid, String> {
    let text = text.trim();
    let full = if text.contains('@') {
        text.to_string()
    } else {
        format!("{text}@{}", ctx.server.default_domain())
    };
    let jid = Jid::parse(&full).map_err(|e| format!("invalid JID {text:?}: {e}"))?;
    if jid.local().is_none() || !ctx.server.is_local_domain(jid.domain()) {
        return Err(format!("{text} is not a user of a hosted domain"));
    }
    Ok(jid)
}

pub(crate) fn sessions(ctx: &AdminCtx, req: &Request) -> (&'static str, String) {
    let user = match req.param("user").filter(|u| !u.is_empty()) {
        None => None,
        Some(u) => match operator_jid(ctx, u) {
            Ok(j) => Some(j),
            Err(e) => return error("400 Bad Request", &e),
        },
    };
    let list = ctx.server.sessions_snapshot(user.as_ref());
    ok(&json!({ "sessions": list }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KickRequest {
    jid: String,
    reason: Option<String>,
}

pub(crate) async fn kick(ctx: &AdminCtx, req: &Request) -> (&'static str, String) {
    let body: KickRequest = match serde_json::from_slice(&req.body) {
        Ok(b) => b,
        Err(e) => return error("400 Bad Request", &format!("bad request body: {e}")),
    };
    let jid = match operator_jid(ctx, &body.jid) {
        Ok(j) => j,
        Err(e) => return error("400 Bad Request", &e),
    };
    let reason = body
        .reason
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_KICK_REASON.to_string());
    if reason.len() > MAX_REASON || reason.chars().any(|c| c.is_control() && c != '\n') {
        return error(
            "400 Bad Request",
            "the reason must be at most 1024 bytes of text",
        );
    }
    let kicked = ctx.server.kick(&jid, &reason).await;
    ok(&json!({ "kicked": kicked }))
}
