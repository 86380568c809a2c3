//! Settings replaced while the server runs (SIGHUP). Sessions keep running; each
//! setting read per use (stanza and XML limits, queue bounds, timeouts, quotas, roster
//! and block-list caps, the delivery policy) applies from its next use. What the
//! listeners were built with (addresses, admission caps, connection rates, the
//! authentication throttle, the negotiation parameters) applies at the next restart;
//! a reload names those keys when they changed.

use crate::server::Server;
use crate::settings::C2sSettings;

/// The `c2s` keys whose change needs a restart, compared between two settings.
pub fn restart_only_changes(old: &C2sSettings, new: &C2sSettings) -> Vec<&'static str> {
    let mut changed = Vec::new();
    macro_rules! check {
        ($($field:ident),* $(,)?) => {
            $(
                if old.$field != new.$field {
                    changed.push(stringify!($field));
                }
            )*
        };
    }
    check!(
        listen,
        listen_tls,
        allow_plain,
        negotiation_timeout_secs,
        auth_failure_delay_ms,
        max_auth_attempts,
        max_connections,
        max_unauthenticated,
        max_unauthenticated_per_ip,
        connections_per_ip_per_sec,
        connections_per_ip_burst,
        auth_failures_per_ip_per_min,
        auth_failures_per_ip_burst,
        auth_block_ip_secs,
        auth_failures_per_account_per_min,
        auth_failures_per_account_burst,
        auth_block_account_secs,
        max_concurrent_auth_per_account,
    );
    // Stream management is offered or not from the negotiation parameters.
    if (old.sm_resume_timeout_secs == 0) != (new.sm_resume_timeout_secs == 0) {
        changed.push("sm_resume_timeout_secs");
    }
    changed
}

impl Server {
    /// Put `new` in force for everything read per use. Returns the keys whose change
    /// waits for a restart (they keep their old effect until then).
    pub fn reload_settings(&self, new: C2sSettings) -> Vec<&'static str> {
        let old = self.replace_settings(new);
        restart_only_changes(&old, &self.settings())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_use_settings_need_no_restart() {
        let old = C2sSettings::default();
        let new = C2sSettings {
            max_stanza_bytes: 1 << 20,
            send_queue: 64,
            idle_timeout_secs: 5,
            offline_quota: 3,
            sm_resume_timeout_secs: old.sm_resume_timeout_secs + 1,
            ..old.clone()
        };
        assert!(restart_only_changes(&old, &new).is_empty());
    }

    #[test]
    fn listener_and_admission_changes_are_named() {
        let old = C2sSettings::default();
        let new = C2sSettings {
            listen: vec![],
            max_connections: 7,
            auth_block_ip_secs: 1,
            sm_resume_timeout_secs: 0,
            ..old.clone()
        };
        assert_eq!(
            restart_only_changes(&old, &new),
            [
                "listen",
                "max_connections",
                "auth_block_ip_secs",
                "sm_resume_timeout_secs"
            ]
        );
    }
}
