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
//! - `POST /api/users/remove` with `{"user": "..."}`: remove an account on the running
//!   server (its sessions end with `not-authorized`, it leaves its contacts' rosters
//!   with pushes); answers what was done, 404 when there is no such account.
//! - `POST /api/users/end-sessions` with `{"user": "...", "reason": "..."}`: end every
//!   session of an account with `reset` (after a password change); answers
//!   `{"ended": n}`.

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserRequest {
    user: String,
    reason: Option<String>,
}

/// The username of a request body's `user`: `alice` or `alice@hosted.domain`.
fn user_of(
    ctx: &AdminCtx,
    req: &Request,
) -> Result<(String, Option<String>), (&'static str, String)> {
    let body: UserRequest = serde_json::from_slice(&req.body)
        .map_err(|e| error("400 Bad Request", &format!("bad request body: {e}")))?;
    let user = crate::account_arg::username_of(&body.user, &ctx.server.domains)
        .map_err(|e| error("400 Bad Request", &e.to_string()))?;
    Ok((user, body.reason))
}

pub(crate) async fn remove_user(ctx: &AdminCtx, req: &Request) -> (&'static str, String) {
    let user = match user_of(ctx, req) {
        Ok((u, _)) => u,
        Err(e) => return e,
    };
    match ctx.server.remove_account(&user).await {
        Ok(r) => ok(&json!({
            "user": user,
            "sessions_ended": r.sessions_ended,
            "rosters_updated": r.rosters_updated,
            "offline_deleted": r.offline_deleted,
        })),
        Err(herald_core::CoreError::Store(herald_core::store::StoreError::NoSuchUser(u))) => {
            error("404 Not Found", &format!("no such account: {u}"))
        }
        Err(e) => {
            tracing::error!(error = %e, %user, "account removal failed");
            error("500 Internal Server Error", &e.to_string())
        }
    }
}

pub(crate) async fn end_sessions(ctx: &AdminCtx, req: &Request) -> (&'static str, String) {
    let (user, reason) = match user_of(ctx, req) {
        Ok(u) => u,
        Err(e) => return e,
    };
    let reason = reason.unwrap_or_else(|| "the account's credentials changed".into());
    if reason.len() > MAX_REASON {
        return error("400 Bad Request", "the reason must be at most 1024 bytes");
    }
    let err = herald_translate::StreamError::with_text(
        herald_translate::StreamErrorCondition::Reset,
        reason,
    );
    let ended = ctx.server.end_account_sessions(&user, &err).await;
    ok(&json!({ "ended": ended }))
}
