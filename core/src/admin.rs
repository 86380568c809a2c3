//! What the admin API asks of the running core: a snapshot of the sessions (who, from
//! where, since when, resumable or waiting to be resumed) and ending sessions on an
//! operator's request (ejabberdctl `connected_users` / `kick_session`).

use herald_translate::{Jid, StreamError, StreamErrorCondition};
use serde::Serialize;

use crate::router::SessionView;
use crate::server::Server;

/// One session as the admin listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// The full JID.
    pub jid: String,
    /// The client's address, when known.
    pub ip: Option<String>,
    /// XEP-0368 direct TLS (false: STARTTLS).
    pub direct_tls: bool,
    /// When the resource was bound, milliseconds since the Unix epoch.
    pub since_unix_ms: i64,
    /// XEP-0198 resumption is enabled.
    pub resumable: bool,
    /// The connection is gone and the session waits to be resumed.
    pub detached: bool,
}

impl Server {
    /// Every session (`user: None`), or the sessions of one bare or full JID, sorted
    /// by JID.
    pub fn sessions_snapshot(&self, user: Option<&Jid>) -> Vec<SessionInfo> {
        let views: Vec<SessionView> = match user {
            None => self.router.all_sessions(),
            Some(jid) => self
                .router
                .sessions(&jid.bare())
                .iter()
                .filter(|s| jid.resource().is_none() || s.jid == *jid)
                .cloned()
                .collect(),
        };
        let mut out: Vec<SessionInfo> = views
            .iter()
            .map(|s| SessionInfo {
                jid: s.jid.to_string(),
                ip: s.info.ip.map(|ip| ip.to_string()),
                direct_tls: s.info.direct_tls,
                since_unix_ms: s.info.since_unix_ms,
                resumable: s.sm_id.is_some(),
                detached: s
                    .sm_id
                    .as_deref()
                    .is_some_and(|id| self.detached.contains(id)),
            })
            .collect();
        out.sort_by(|a, b| a.jid.cmp(&b.jid));
        out
    }

    /// Sessions waiting for XEP-0198 resumption: they count as sessions but have no
    /// connection.
    pub fn detached_count(&self) -> usize {
        self.detached.len()
    }

    /// End the session of a full JID, or every session of a bare JID. A connected
    /// session is closed with the stream error `policy-violation` carrying `reason`
    /// as its text; one waiting for resumption is ended at once (its messages go to
    /// the user's other sessions or offline storage, as on expiry). Returns the JIDs
    /// of the sessions ended.
    pub async fn kick(&self, jid: &Jid, reason: &str) -> Vec<String> {
        let targets: Vec<SessionView> = self
            .router
            .sessions(&jid.bare())
            .iter()
            .filter(|s| jid.resource().is_none() || s.jid == *jid)
            .cloned()
            .collect();
        let mut kicked = Vec::with_capacity(targets.len());
        for s in targets {
            tracing::info!(jid = %s.jid, reason, "session kicked by an administrator");
            kicked.push(s.jid.to_string());
            let detached = s.sm_id.as_deref().and_then(|id| self.detached.take(id));
            match detached {
                Some(d) => self.finish_detached(d).await,
                None => s.close(StreamError::with_text(
                    StreamErrorCondition::PolicyViolation,
                    reason,
                )),
            }
        }
        kicked
    }
}
