//! Starting federation: the shared [`S2sContext`] from the configuration, the outbound
//! driver with the real connector behind the outbound ACL, and the inbound listeners.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use herald_certs::{s2s_server_config, ReloadableCerts, S2sTrust};
use herald_core::Server;
use herald_translate::s2s::DialbackSecret;
use tokio::task::JoinHandle;

use super::connector::{Guarded, S2sConnector};
use super::context::{S2sContext, Tuning, ALPN_XMPP_SERVER};
use super::dns::{DnsConfig, Resolver};
use super::inbound::{listen, S2sListeners};
use super::outbound::Outbound;
use super::outbound_queue::QueueLimits;
use crate::config::Config;
use crate::error::EdgeError;

/// Federation as started.
pub struct S2sRunning {
    pub listeners: S2sListeners,
    /// The accept loops; they end when the server shuts down.
    pub task: JoinHandle<()>,
    /// What the connections share; a reload swaps its rules.
    pub ctx: Arc<S2sContext>,
}

/// The dialback secret: `s2s.dialback_secret_file`, else `dialback.key` in the data
/// directory, created on first start and the same after a restart (so keys a peer
/// is still checking stay valid, and nodes sharing the file agree).
pub fn dialback_secret(config: &Config) -> Result<DialbackSecret, EdgeError> {
    let path = config
        .s2s
        .dialback_secret_file
        .clone()
        .unwrap_or_else(|| config.server.data_dir.join("dialback.key"));
    let text = crate::secrets::load_or_create(&path)?;
    Ok(DialbackSecret::new(text.as_bytes()))
}

/// Start federation for `server` as `config` says (the caller checked that it is
/// enabled).
pub async fn start(
    server: &Arc<Server>,
    config: &Config,
    certs: Arc<ReloadableCerts>,
) -> Result<S2sRunning, EdgeError> {
    let rules = config.federation();
    let trust = S2sTrust::new(true, &config.s2s.trust)?;
    let secret = dialback_secret(config)?;
    let dns = DnsConfig {
        nameservers: (!config.dns.nameservers.is_empty()).then(|| config.dns.nameservers.clone()),
        ..DnsConfig::default()
    };
    let resolver = match Resolver::new(&dns) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(error = %e, "no DNS resolver: only static s2s routes will work");
            None
        }
    };
    let tuning = Tuning::new(&rules, &secret);
    let ctx = Arc::new(S2sContext {
        server: Arc::downgrade(server),
        rules: ArcSwap::from_pointee(rules),
        trust: ArcSwap::from_pointee(trust),
        tls_starttls: s2s_server_config(certs.clone(), &[])?,
        tls_direct: s2s_server_config(certs.clone(), &[ALPN_XMPP_SERVER])?,
        certs,
        secret,
        resolver,
        tuning: ArcSwap::from_pointee(tuning),
        streams: Default::default(),
        rates: Default::default(),
        idle_timeout: Duration::from_secs(config.s2s.idle_timeout_secs),
        preauth: Default::default(),
    });
    let queue_limits = QueueLimits {
        idle_timeout: Duration::from_secs(config.s2s.idle_timeout_secs),
        max_stanzas: config.s2s.send_queue,
        max_bytes: config.s2s.send_queue_bytes,
        ..QueueLimits::default()
    };
    let connector = Arc::new(
        S2sConnector::new(Arc::clone(&ctx))
            .with_link_limits(config.s2s.send_queue, config.s2s.send_queue_bytes),
    );
    let outbound = Outbound::start(server, connector, queue_limits);
    let (listeners, task) = listen(Arc::clone(&ctx), &config.s2s.listen, &config.s2s.listen_tls)
        .await
        .map_err(|(addr, source)| EdgeError::S2sListener { addr, source })?;
    server.set_federation(Arc::new(Guarded {
        outbound,
        ctx: Arc::clone(&ctx),
    }));
    Ok(S2sRunning {
        listeners,
        task,
        ctx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dialback_secret_survives_a_restart_and_can_be_shared() {
        let dir = std::env::temp_dir().join(format!("herald-dialback-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let mut config = Config::default();
        config.server.data_dir = dir.clone();
        let first = dialback_secret(&config).expect("created");
        assert!(dir.join("dialback.key").exists());
        assert_eq!(dialback_secret(&config).expect("read back"), first);
        // Another node of the domain, pointed at a copy of the file, agrees.
        let shared = dir.join("shared.key");
        std::fs::copy(dir.join("dialback.key"), &shared).expect("copy");
        let mut other = Config::default();
        other.server.data_dir = dir.join("elsewhere");
        other.s2s.dialback_secret_file = Some(shared);
        assert_eq!(dialback_secret(&other).expect("shared"), first);
        // A different file is a different secret.
        other.s2s.dialback_secret_file = Some(dir.join("new.key"));
        assert_ne!(dialback_secret(&other).expect("new"), first);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
