//! Settings of the SIP service, read from the `[sip]` table of the configuration.
//! Every limit has a safe default and can be changed.

use std::net::SocketAddr;
use std::time::Duration;

use herald_translate::sip::Limits;
use serde::Deserialize;

/// The `[sip]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipSettings {
    /// UDP listeners.
    pub listen_udp: Vec<SocketAddr>,
    /// TCP listeners.
    pub listen_tcp: Vec<SocketAddr>,
    /// TLS listeners (SIP over TLS, `sips:`; the certificates of `[tls]`).
    pub listen_tls: Vec<SocketAddr>,
    /// The digest realm SIP clients authenticate in; absent: the first of
    /// `server.domains`. Accounts' SIP digest credentials are derived for it when their
    /// password is set, so changing it needs every password set again.
    pub realm: Option<String>,
    /// Largest SIP message, in bytes (a larger one is answered 513, or closes a stream).
    pub max_message_bytes: usize,
    /// Largest message head (start line and headers), in bytes.
    pub max_head_bytes: usize,
    /// Most header fields in one message.
    pub max_headers: usize,
    /// Concurrent TCP and TLS connections, for the whole server.
    pub max_connections: usize,
    /// Concurrent TCP and TLS connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Requests accepted per second from one IP address, sustained (beyond it: 503
    /// with Retry-After)...
    pub requests_per_ip_per_sec: u32,
    /// ...and at once.
    pub requests_per_ip_burst: u32,
    /// Seconds a TCP or TLS connection may stay silent (CRLF keep-alives count) before
    /// it is closed.
    pub idle_timeout_secs: u64,
    /// Messages and bytes queued for one connection before it is treated as stuck and
    /// closed.
    pub send_queue: usize,
    pub send_queue_bytes: usize,
    /// Transactions in progress, for the whole server, and the bytes of the messages
    /// they hold for retransmission (beyond either: 503).
    pub max_transactions: usize,
    pub max_transaction_bytes: usize,
    /// Receive and send buffer asked for each UDP socket, in bytes (the kernel caps it
    /// at `net.core.rmem_max`/`wmem_max`): bursts wait there instead of being dropped.
    pub udp_buffer_bytes: usize,
    /// REGISTER: shortest expiry accepted (423 below it), longest granted, default.
    pub register_min_expires: u32,
    pub register_max_expires: u32,
    pub register_default_expires: u32,
    /// Contacts one account may have registered.
    pub max_bindings_per_user: usize,
    /// SUBSCRIBE: shortest expiry accepted (423 below it), longest granted, default.
    pub subscribe_min_expires: u32,
    pub subscribe_max_expires: u32,
    pub subscribe_default_expires: u32,
    /// Subscriptions one account may hold as a watcher, and for the whole server.
    pub max_subscriptions_per_user: usize,
    pub max_subscriptions: usize,
    /// PUBLISH: shortest expiry accepted (423 below it), longest granted, default.
    pub publish_min_expires: u32,
    pub publish_max_expires: u32,
    pub publish_default_expires: u32,
    /// Publications one account may hold, and for the whole server.
    pub max_publications_per_user: usize,
    pub max_publications: usize,
    /// Seconds a digest nonce is valid; an older one is answered with `stale=true`.
    pub nonce_lifetime_secs: u64,
    /// Seconds an account's digest credential (HA1) read from the store is reused
    /// for later requests (0: read it for every request), and most accounts kept. A
    /// password set again by another process (`herald user passwd` while the server
    /// runs) is read at once; the old one keeps working for at most this long.
    pub credential_cache_secs: u64,
    pub credential_cache_entries: usize,
    /// Digest algorithms offered, one challenge each, in this order: `MD5`, `SHA-256`.
    /// RFC 8760 has a client take the first it supports; many (SIPp 3.6, sipsak) read
    /// only the first, so MD5 leads by default. Put `SHA-256` first, or alone, when
    /// every client supports it.
    pub digest_algorithms: Vec<String>,
}

impl Default for SipSettings {
    fn default() -> Self {
        Self {
            listen_udp: vec![SocketAddr::from(([127, 0, 0, 1], 5060))],
            listen_tcp: vec![SocketAddr::from(([127, 0, 0, 1], 5060))],
            listen_tls: vec![SocketAddr::from(([127, 0, 0, 1], 5061))],
            realm: None,
            max_message_bytes: 32 * 1024,
            max_head_bytes: 16 * 1024,
            max_headers: 128,
            max_connections: 10_000,
            max_connections_per_ip: 100,
            requests_per_ip_per_sec: 500,
            requests_per_ip_burst: 1000,
            idle_timeout_secs: 600,
            send_queue: 256,
            send_queue_bytes: 1024 * 1024,
            max_transactions: 100_000,
            max_transaction_bytes: 128 * 1024 * 1024,
            udp_buffer_bytes: 4 * 1024 * 1024,
            register_min_expires: 60,
            register_max_expires: 3600,
            register_default_expires: 3600,
            max_bindings_per_user: 10,
            subscribe_min_expires: 60,
            subscribe_max_expires: 3600,
            subscribe_default_expires: 3600,
            max_subscriptions_per_user: 1000,
            max_subscriptions: 200_000,
            publish_min_expires: 60,
            publish_max_expires: 3600,
            publish_default_expires: 3600,
            max_publications_per_user: 16,
            max_publications: 100_000,
            nonce_lifetime_secs: 300,
            credential_cache_secs: 30,
            credential_cache_entries: 100_000,
            digest_algorithms: vec!["MD5".into(), "SHA-256".into()],
        }
    }
}

impl SipSettings {
    /// Whether any SIP listener is configured.
    pub fn enabled(&self) -> bool {
        !(self.listen_udp.is_empty() && self.listen_tcp.is_empty() && self.listen_tls.is_empty())
    }

    /// The codec limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_message_size: self.max_message_bytes,
            max_head_size: self.max_head_bytes.min(self.max_message_bytes),
            max_headers: self.max_headers,
            ..Limits::DEFAULT
        }
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }

    /// The realm: `realm`, or the first hosted domain.
    pub fn realm_or<'a>(&'a self, first_domain: &'a str) -> &'a str {
        self.realm.as_deref().unwrap_or(first_domain)
    }

    /// The offered digest algorithms (unknown names are left out; `validate` names them).
    pub fn algorithms(&self) -> Vec<herald_translate::digest::Algorithm> {
        self.digest_algorithms
            .iter()
            .filter_map(|a| match a.to_ascii_uppercase().as_str() {
                "MD5" => Some(herald_translate::digest::Algorithm::Md5),
                "SHA-256" => Some(herald_translate::digest::Algorithm::Sha256),
                _ => None,
            })
            .collect()
    }

    /// Problems a running server would trip over, as (key, message).
    pub fn validate(&self) -> Vec<(&'static str, String)> {
        let mut errs = Vec::new();
        let d = Self::default();
        let mut range = |key: &'static str, value: u64, min: u64, max: u64, default: u64| {
            if value < min || value > max {
                errs.push((
                    key,
                    format!("{value} is out of range: write a value from {min} to {max} (default {default})"),
                ));
            }
        };
        let n = |v: usize| v as u64;
        range(
            "max_message_bytes",
            n(self.max_message_bytes),
            1500,
            1 << 20,
            n(d.max_message_bytes),
        );
        range(
            "max_head_bytes",
            n(self.max_head_bytes),
            1024,
            1 << 20,
            n(d.max_head_bytes),
        );
        range(
            "max_headers",
            n(self.max_headers),
            16,
            4096,
            n(d.max_headers),
        );
        range(
            "max_connections",
            n(self.max_connections),
            1,
            10_000_000,
            n(d.max_connections),
        );
        range(
            "max_connections_per_ip",
            n(self.max_connections_per_ip),
            1,
            10_000_000,
            n(d.max_connections_per_ip),
        );
        range(
            "requests_per_ip_per_sec",
            self.requests_per_ip_per_sec.into(),
            1,
            10_000_000,
            d.requests_per_ip_per_sec.into(),
        );
        range(
            "requests_per_ip_burst",
            self.requests_per_ip_burst.into(),
            1,
            10_000_000,
            d.requests_per_ip_burst.into(),
        );
        range(
            "idle_timeout_secs",
            self.idle_timeout_secs,
            10,
            366 * 24 * 3600,
            d.idle_timeout_secs,
        );
        range(
            "send_queue",
            n(self.send_queue),
            8,
            1_000_000,
            n(d.send_queue),
        );
        range(
            "send_queue_bytes",
            n(self.send_queue_bytes),
            n(self.max_message_bytes),
            1 << 30,
            n(d.send_queue_bytes),
        );
        range(
            "max_transactions",
            n(self.max_transactions),
            16,
            10_000_000,
            n(d.max_transactions),
        );
        range(
            "max_bindings_per_user",
            n(self.max_bindings_per_user),
            1,
            1000,
            n(d.max_bindings_per_user),
        );
        range(
            "max_subscriptions_per_user",
            n(self.max_subscriptions_per_user),
            1,
            1_000_000,
            n(d.max_subscriptions_per_user),
        );
        range(
            "max_subscriptions",
            n(self.max_subscriptions),
            1,
            100_000_000,
            n(d.max_subscriptions),
        );
        range(
            "max_publications_per_user",
            n(self.max_publications_per_user),
            1,
            1000,
            n(d.max_publications_per_user),
        );
        range(
            "max_publications",
            n(self.max_publications),
            1,
            100_000_000,
            n(d.max_publications),
        );
        range(
            "nonce_lifetime_secs",
            self.nonce_lifetime_secs,
            10,
            86_400,
            d.nonce_lifetime_secs,
        );
        range(
            "max_transaction_bytes",
            n(self.max_transaction_bytes),
            1 << 20,
            1 << 36,
            n(d.max_transaction_bytes),
        );
        range(
            "credential_cache_secs",
            self.credential_cache_secs,
            0,
            3600,
            d.credential_cache_secs,
        );
        range(
            "credential_cache_entries",
            n(self.credential_cache_entries),
            0,
            10_000_000,
            n(d.credential_cache_entries),
        );
        if self.digest_algorithms.is_empty()
            || self.algorithms().len() != self.digest_algorithms.len()
        {
            errs.push((
                "digest_algorithms",
                format!(
                    "{:?}: write a list of \"MD5\" and \"SHA-256\" (default [\"MD5\", \"SHA-256\"])",
                    self.digest_algorithms
                ),
            ));
        }
        for (what, min, max, default) in [
            (
                "register",
                self.register_min_expires,
                self.register_max_expires,
                self.register_default_expires,
            ),
            (
                "subscribe",
                self.subscribe_min_expires,
                self.subscribe_max_expires,
                self.subscribe_default_expires,
            ),
            (
                "publish",
                self.publish_min_expires,
                self.publish_max_expires,
                self.publish_default_expires,
            ),
        ] {
            let key: &'static str = match what {
                "register" => "register_min_expires",
                "subscribe" => "subscribe_min_expires",
                _ => "publish_min_expires",
            };
            if min == 0 || min > max || default < min || default > max || max > 7 * 24 * 3600 {
                errs.push((
                    key,
                    format!(
                        "{what} expiries must satisfy 1 <= min ({min}) <= default ({default}) <= max ({max}) <= 604800"
                    ),
                ));
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_on_loopback() {
        let s = SipSettings::default();
        assert!(s.validate().is_empty(), "{:?}", s.validate());
        assert!(s.enabled());
        assert!(s.listen_udp.iter().all(|a| a.ip().is_loopback()));
        assert_eq!(s.listen_tls[0].port(), 5061);
    }

    #[test]
    fn bad_values_are_named() {
        let s = SipSettings {
            max_message_bytes: 10,
            register_min_expires: 4000,
            ..SipSettings::default()
        };
        let keys: Vec<_> = s.validate().into_iter().map(|(k, _)| k).collect();
        assert!(keys.contains(&"max_message_bytes"));
        assert!(keys.contains(&"register_min_expires"));
    }
}
