//! SIGHUP: read the configuration again and put in force what can change while
//! sessions run — the log filter, the certificates (c2s and s2s), the client-service
//! limits, and federation's routes, ACL, policies, limits and trust anchors. A file
//! that does not load changes nothing (the caller logs why); s2s streams with a domain
//! the new ACL denies are closed, the others stay.

use crate::app::{certificates, Running};
use crate::config::Config;
use crate::error::EdgeError;
use crate::logging::LogControl;

impl Running {
    /// Apply `new`. Returns the keys whose change waits for a restart (see
    /// [`restart_keys`]). Nothing is applied when the certificates or the s2s trust
    /// anchors fail to load: the error is returned and the old settings stay.
    pub fn reload(
        &mut self,
        new: &Config,
        log: Option<&LogControl>,
    ) -> Result<Vec<String>, EdgeError> {
        let (sni, _) = certificates(new)?;
        // Build the new federation rules first: a failure leaves everything as it was.
        let federation = match &self.federation {
            Some(ctx) if new.s2s.enabled() => {
                Some((ctx, ctx.prepare(new.federation(), &new.s2s.trust)?))
            }
            _ => None,
        };
        if let Some(log) = log {
            if let Err(e) = log.set_level(&new.log.level) {
                tracing::warn!(error = %e, "log.level not reloaded");
            }
        }
        self.certs.replace(sni);
        if let Some((ctx, prepared)) = federation {
            let closed = ctx.apply(prepared);
            tracing::info!(closed, "s2s rules reloaded");
        }
        let mut restart: Vec<String> = self
            .server
            .reload_settings(new.c2s.clone())
            .into_iter()
            .map(|k| format!("c2s.{k}"))
            .collect();
        restart.extend(restart_keys(&self.config, new));
        self.config = new.clone();
        Ok(restart)
    }
}

/// The keys outside `[c2s]` whose change from `old` to `new` waits for a restart:
/// listeners (`s2s.listen` and `s2s.listen_tls` also turn federation on or off),
/// hosted domains, the data directory, the admin listener, `s2s.idle_timeout_secs`,
/// `s2s.send_queue`, `s2s.send_queue_bytes`, `s2s.dialback_secret_file`,
/// `[dns]`, `sip.realm`, the rest of `[sip]` (the SIP service reads it at start) and the
/// log format. Federation's routes, ACL, policies, limits and trust
/// anchors reload.
pub fn restart_keys(old: &Config, new: &Config) -> Vec<String> {
    let mut restart = Vec::new();
    let mut changed = |differs: bool, key: &str| {
        if differs {
            restart.push(key.to_string());
        }
    };
    changed(old.server.domains != new.server.domains, "server.domains");
    // Stored digest credentials are per realm; the realm is read once, at start.
    changed(old.sip.realm != new.sip.realm, "sip.realm");
    let (mut old_sip, mut new_sip) = (old.sip.clone(), new.sip.clone());
    old_sip.realm = None;
    new_sip.realm = None;
    changed(old_sip != new_sip, "[sip]");
    changed(
        old.server.data_dir != new.server.data_dir,
        "server.data_dir",
    );
    changed(
        old.admin.listen != new.admin.listen || old.admin.token_file != new.admin.token_file,
        "admin",
    );
    changed(old.s2s.listen != new.s2s.listen, "s2s.listen");
    changed(old.s2s.listen_tls != new.s2s.listen_tls, "s2s.listen_tls");
    // The outbound queues read it once, at start.
    changed(
        old.s2s.idle_timeout_secs != new.s2s.idle_timeout_secs,
        "s2s.idle_timeout_secs",
    );
    changed(old.s2s.send_queue != new.s2s.send_queue, "s2s.send_queue");
    changed(
        old.s2s.dialback_secret_file != new.s2s.dialback_secret_file,
        "s2s.dialback_secret_file",
    );
    changed(
        old.s2s.send_queue_bytes != new.s2s.send_queue_bytes,
        "s2s.send_queue_bytes",
    );
    changed(old.dns != new.dns, "dns");
    changed(old.log.format != new.log.format, "log.format");
    restart
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_rules::federation::{AclAction, AclRule, DomainPattern, RuleDirection};

    #[test]
    fn listeners_dns_and_domains_still_wait_for_a_restart() {
        let old = Config::default();
        let mut new = old.clone();
        new.s2s.listen = vec!["127.0.0.1:5269".parse().expect("addr")];
        new.s2s.listen_tls = vec!["127.0.0.1:5270".parse().expect("addr")];
        new.dns.nameservers = vec!["127.0.0.1:53".parse().expect("addr")];
        new.server.domains = vec!["other.example".into()];
        new.s2s.idle_timeout_secs = 5;
        new.sip.realm = Some("sip.example".into());
        assert_eq!(
            restart_keys(&old, &new),
            [
                "server.domains",
                "sip.realm",
                "s2s.listen",
                "s2s.listen_tls",
                "s2s.idle_timeout_secs",
                "dns"
            ]
        );
    }

    #[test]
    fn routes_acl_policies_limits_and_trust_reload() {
        let old = Config::default();
        let mut new = old.clone();
        new.s2s.default = AclAction::Deny;
        new.s2s.acl = vec![AclRule {
            pattern: DomainPattern::parse("*.example").expect("pattern"),
            action: AclAction::Allow,
            direction: RuleDirection::Both,
        }];
        new.s2s.limits.max_connections += 1;
        new.s2s.trust = vec!["ca.pem".into()];
        assert!(restart_keys(&old, &new).is_empty());
    }
}
