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

/// Start federation for `server` as `config` says (the caller checked that it is
/// enabled). The dialback secret is random per process.
pub async fn start(
    server: &Arc<Server>,
    config: &Config,
    certs: Arc<ReloadableCerts>,
) -> Result<S2sRunning, EdgeError> {
    let rules = config.federation();
    let trust = S2sTrust::new(true, &config.s2s.trust)?;
    let secret = DialbackSecret::generate(&mut rand::rng());
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
