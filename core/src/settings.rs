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

    /// Problems a running server would trip over, as (key, message). Each message says
    /// what would do instead.
    pub fn validate(&self) -> Vec<(&'static str, String)> {
        let d = Self::default();
        let mut errs = Vec::new();
        let mut at_least = |key: &'static str, value: u64, min: u64, default: u64| {
            if value < min {
                errs.push((
                    key,
                    format!("{value} is too small: write at least {min} (default {default})"),
                ));
            }
        };
        let n = |v: usize| v as u64;
        at_least(
            "max_stanza_bytes",
            n(self.max_stanza_bytes),
            1024,
            n(d.max_stanza_bytes),
        );
        at_least("max_depth", n(self.max_depth), 4, n(d.max_depth));
        at_least(
            "max_attributes",
            n(self.max_attributes),
            8,
            n(d.max_attributes),
        );
        let positive: [(&'static str, u64, u64); 13] = [
            (
                "connections_per_ip_per_sec",
                self.connections_per_ip_per_sec.into(),
                d.connections_per_ip_per_sec.into(),
            ),
            (
                "connections_per_ip_burst",
                self.connections_per_ip_burst.into(),
                d.connections_per_ip_burst.into(),
            ),
            (
                "max_sessions_per_account",
                n(self.max_sessions_per_account),
                n(d.max_sessions_per_account),
            ),
            (
                "max_connections",
                n(self.max_connections),
                n(d.max_connections),
            ),
            (
                "max_unauthenticated",
                n(self.max_unauthenticated),
                n(d.max_unauthenticated),
            ),
            (
                "max_unauthenticated_per_ip",
                n(self.max_unauthenticated_per_ip),
                n(d.max_unauthenticated_per_ip),
            ),
            (
                "write_timeout_secs",
                self.write_timeout_secs,
                d.write_timeout_secs,
            ),
            (
                "negotiation_timeout_secs",
                self.negotiation_timeout_secs,
                d.negotiation_timeout_secs,
            ),
            (
                "max_auth_attempts",
                self.max_auth_attempts.into(),
                d.max_auth_attempts.into(),
            ),
            (
                "auth_failures_per_ip_burst",
                self.auth_failures_per_ip_burst.into(),
                d.auth_failures_per_ip_burst.into(),
            ),
            (
                "auth_failures_per_account_burst",
                self.auth_failures_per_account_burst.into(),
                d.auth_failures_per_account_burst.into(),
            ),
            (
                "auth_failures_per_ip_per_min",
                self.auth_failures_per_ip_per_min.into(),
                d.auth_failures_per_ip_per_min.into(),
            ),
            (
                "auth_failures_per_account_per_min",
                self.auth_failures_per_account_per_min.into(),
                d.auth_failures_per_account_per_min.into(),
            ),
        ];
        for (key, value, default) in positive {
            at_least(key, value, 1, default);
        }
        at_least("send_queue", n(self.send_queue), 16, n(d.send_queue));
        at_least(
            "send_queue_bytes",
            n(self.send_queue_bytes),
            64 * 1024,
            n(d.send_queue_bytes),
        );
        if self.max_stanza_bytes_preauth < 512
            || self.max_stanza_bytes_preauth > self.max_stanza_bytes
        {
            errs.push((
                "max_stanza_bytes_preauth",
                format!(
                    "{} is out of range: write a value from 512 to max_stanza_bytes ({}) \
                     (default {})",
                    self.max_stanza_bytes_preauth,
                    self.max_stanza_bytes,
                    d.max_stanza_bytes_preauth
                ),
            ));
        }
        if self.sm_max_unacked_bytes < self.max_stanza_bytes {
            errs.push((
                "sm_max_unacked_bytes",
                format!(
                    "{} is smaller than max_stanza_bytes ({}): write at least that (default {})",
                    self.sm_max_unacked_bytes, self.max_stanza_bytes, d.sm_max_unacked_bytes
                ),
            ));
        }
        // Counts that size semaphores, and durations added to the clock: past these
        // bounds they stop meaning anything and may overflow.
        const MAX_COUNT: u64 = 100_000_000;
        const MAX_SECS: u64 = 366 * 24 * 3600;
        let bounded: [(&'static str, u64, u64); 9] = [
            ("max_connections", n(self.max_connections), MAX_COUNT),
            (
                "max_unauthenticated",
                n(self.max_unauthenticated),
                MAX_COUNT,
            ),
            (
                "negotiation_timeout_secs",
                self.negotiation_timeout_secs,
                MAX_SECS,
            ),
            ("idle_timeout_secs", self.idle_timeout_secs, MAX_SECS),
            ("write_timeout_secs", self.write_timeout_secs, MAX_SECS),
            ("auth_block_ip_secs", self.auth_block_ip_secs, MAX_SECS),
            (
                "auth_block_account_secs",
                self.auth_block_account_secs,
                MAX_SECS,
            ),
            (
                "sm_resume_timeout_secs",
                self.sm_resume_timeout_secs,
                MAX_SECS,
            ),
            ("auth_failure_delay_ms", self.auth_failure_delay_ms, 60_000),
        ];
        for (key, value, max) in bounded {
            if value > max {
                errs.push((key, format!("{value} is too large: write at most {max}")));
            }
        }
        errs
    }
}
