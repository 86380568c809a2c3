//! Settings of the client service, read from the `[c2s]` table of the configuration.
//! Every limit has a safe default and can be changed.

use std::net::SocketAddr;
use std::time::Duration;

use herald_rules::DeliveryPolicy;
use herald_translate::XmlLimits;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct C2sSettings {
    /// STARTTLS listeners (RFC 6120).
    pub listen: Vec<SocketAddr>,
    /// Direct TLS listeners (XEP-0368).
    pub listen_tls: Vec<SocketAddr>,
    /// Offer SASL PLAIN (only ever over TLS).
    pub allow_plain: bool,
    /// Messages to a bare JID go to `all` non-negative available resources, or the `highest`.
    pub delivery: DeliveryPolicy,
    /// Largest stanza after authentication, in bytes.
    pub max_stanza_bytes: usize,
    /// Largest stanza before authentication, in bytes.
    pub max_stanza_bytes_preauth: usize,
    /// Deepest element nesting inside a stanza.
    pub max_depth: usize,
    /// Most attributes on one element.
    pub max_attributes: usize,
    /// Seconds from connect to a bound resource.
    pub negotiation_timeout_secs: u64,
    /// Delay before a failed authentication is answered, in milliseconds.
    pub auth_failure_delay_ms: u64,
    /// Failed authentications allowed per connection.
    pub max_auth_attempts: u32,
    /// Concurrent sessions per account; the oldest is replaced beyond it.
    pub max_sessions_per_account: usize,
    /// Concurrent client connections for the whole server (kept below the process's
    /// open-files limit, which is raised to its hard limit at start).
    pub max_connections: usize,
    /// Concurrent connections that have not authenticated yet, for the whole server: the
    /// rest of `max_connections` stays for authenticated users.
    pub max_unauthenticated: usize,
    /// Concurrent unauthenticated connections from one IP address.
    pub max_unauthenticated_per_ip: usize,
    /// New connections accepted per second from one IP address (sustained rate).
    pub connections_per_ip_per_sec: u32,
    /// Burst of new connections allowed from one IP address.
    pub connections_per_ip_burst: u32,
    /// Seconds without input before the server pings the client; after as long again
    /// without an answer the stream is closed with `connection-timeout`.
    pub idle_timeout_secs: u64,
    /// Seconds a write to a client may stall (the client does not read) before the
    /// connection is closed.
    pub write_timeout_secs: u64,
    /// Failed authentications allowed per minute from one IP address, on average...
    pub auth_failures_per_ip_per_min: u32,
    /// ...and at once; beyond it the address is blocked for `auth_block_ip_secs`.
    pub auth_failures_per_ip_burst: u32,
    pub auth_block_ip_secs: u64,
    /// Failed authentications allowed per minute for one account, on average...
    pub auth_failures_per_account_per_min: u32,
    /// ...and at once; beyond it new logins to the account are refused for
    /// `auth_block_account_secs` (open sessions are not touched).
    pub auth_failures_per_account_burst: u32,
    pub auth_block_account_secs: u64,
    /// Authentication attempts for one account running at the same time (a failure is
    /// only counted once its password check is done).
    pub max_concurrent_auth_per_account: usize,
    /// Offline messages kept per user (XEP-0160); beyond it the sender gets an error.
    pub offline_quota: usize,
    /// Bytes of offline messages kept per user.
    pub offline_quota_bytes: usize,
    /// Roster items per user.
    pub max_roster_items: usize,
    /// Items in one block list.
    pub max_blocklist_items: usize,
    /// Seconds a stream-management session stays resumable after a disconnect.
    pub sm_resume_timeout_secs: u64,
    /// Unacknowledged stanzas kept for a stream-management session.
    pub sm_max_unacked: usize,
    /// Bytes of unacknowledged stanzas kept for a stream-management session.
    pub sm_max_unacked_bytes: usize,
    /// Stanzas queued for one session before it is treated as stuck and closed.
    pub send_queue: usize,
    /// Bytes queued for one session before it is treated as stuck and closed.
    pub send_queue_bytes: usize,
}

impl Default for C2sSettings {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 5222))],
            listen_tls: vec![SocketAddr::from(([127, 0, 0, 1], 5223))],
            allow_plain: true,
            delivery: DeliveryPolicy::All,
            max_stanza_bytes: 256 * 1024,
            max_stanza_bytes_preauth: 8 * 1024,
            max_depth: 32,
            max_attributes: 64,
            negotiation_timeout_secs: 30,
            auth_failure_delay_ms: 2000,
            max_auth_attempts: 3,
            max_sessions_per_account: 10,
            max_connections: 50_000,
            max_unauthenticated: 2_000,
            max_unauthenticated_per_ip: 100,
            connections_per_ip_per_sec: 100,
            connections_per_ip_burst: 200,
            idle_timeout_secs: 600,
            write_timeout_secs: 30,
            auth_failures_per_ip_per_min: 10,
            auth_failures_per_ip_burst: 20,
            auth_block_ip_secs: 300,
            auth_failures_per_account_per_min: 5,
            auth_failures_per_account_burst: 10,
            auth_block_account_secs: 60,
            max_concurrent_auth_per_account: 3,
            offline_quota: 1000,
            offline_quota_bytes: 16 * 1024 * 1024,
            max_roster_items: 1000,
            max_blocklist_items: 1000,
            sm_resume_timeout_secs: 300,
            sm_max_unacked: 500,
            sm_max_unacked_bytes: 4 * 1024 * 1024,
            send_queue: 512,
            send_queue_bytes: 2 * 1024 * 1024,
        }
    }
}

impl C2sSettings {
    pub fn limits_preauth(&self) -> XmlLimits {
        XmlLimits {
            max_stanza_bytes: self.max_stanza_bytes_preauth,
            ..self.limits()
        }
    }

    pub fn limits(&self) -> XmlLimits {
        XmlLimits {
            max_stanza_bytes: self.max_stanza_bytes,
            max_depth: self.max_depth,
            max_attrs: self.max_attributes,
            ..XmlLimits::default()
        }
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }

    pub fn write_timeout(&self) -> Duration {
        Duration::from_secs(self.write_timeout_secs.max(1))
    }

    /// Problems a running server would trip over, as (key, message).
    pub fn validate(&self) -> Vec<(&'static str, String)> {
        let mut errs = Vec::new();
        if self.max_stanza_bytes < 1024 {
            errs.push(("max_stanza_bytes", "must be at least 1024".to_string()));
        }
        if self.max_stanza_bytes_preauth < 512
            || self.max_stanza_bytes_preauth > self.max_stanza_bytes
        {
            errs.push((
                "max_stanza_bytes_preauth",
                "must be between 512 and max_stanza_bytes".to_string(),
            ));
        }
        if self.max_depth < 4 {
            errs.push(("max_depth", "must be at least 4".to_string()));
        }
        if self.max_attributes < 8 {
            errs.push(("max_attributes", "must be at least 8".to_string()));
        }
        if self.connections_per_ip_per_sec == 0 || self.connections_per_ip_burst == 0 {
            errs.push((
                "connections_per_ip_per_sec",
                "rate and burst must be positive".to_string(),
            ));
        }
        if self.max_sessions_per_account == 0 {
            errs.push(("max_sessions_per_account", "must be positive".to_string()));
        }
        if self.send_queue < 16 {
            errs.push(("send_queue", "must be at least 16".to_string()));
        }
        if self.send_queue_bytes < 64 * 1024 {
            errs.push(("send_queue_bytes", "must be at least 65536".to_string()));
        }
        if self.sm_max_unacked_bytes < self.max_stanza_bytes {
            errs.push((
                "sm_max_unacked_bytes",
                "must be at least max_stanza_bytes".to_string(),
            ));
        }
        if self.max_connections == 0 {
            errs.push(("max_connections", "must be positive".to_string()));
        }
        if self.max_unauthenticated == 0 || self.max_unauthenticated_per_ip == 0 {
            errs.push((
                "max_unauthenticated",
                "max_unauthenticated and max_unauthenticated_per_ip must be positive".to_string(),
            ));
        }
        if self.write_timeout_secs == 0 {
            errs.push(("write_timeout_secs", "must be positive".to_string()));
        }
        if self.auth_failures_per_ip_burst == 0 || self.auth_failures_per_account_burst == 0 {
            errs.push((
                "auth_failures_per_ip_burst",
                "failure bursts must be positive".to_string(),
            ));
        }
        errs
    }
}
