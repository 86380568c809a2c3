//! Starting federation: the shared [`S2sContext`] from the configuration, the outbound
//! driver with the real connector behind the outbound ACL, and the inbound listeners.

use std::sync::Arc;
use std::time::Duration;

use herald_certs::{s2s_server_config, ReloadableCerts, S2sTrust};
use herald_core::Server;
use herald_translate::s2s::{DialbackSecret, InitiatingConfig, ReceivingConfig};
use herald_translate::XmlLimits;
use tokio::task::JoinHandle;

use super::connector::{Guarded, S2sConnector};
use super::context::{S2sContext, ALPN_XMPP_SERVER};
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
}

/// Start federation for `server` as `config` says (the caller checked that it is
/// enabled). The dialback secret is random per process.
pub async fn start(
    server: &Arc<Server>,
    config: &Config,
    certs: Arc<ReloadableCerts>,
) -> Result<S2sRunning, EdgeError> {
    let rules = Arc::new(config.federation());
    let limits = rules.limits;
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
    let negotiation = Duration::from_secs(limits.negotiation_timeout_secs.into());
    let max_stanza = usize::try_from(limits.max_stanza_bytes).unwrap_or(usize::MAX);
    let mut initiating = InitiatingConfig::new(secret.clone());
    initiating.negotiation_timeout = negotiation;
    initiating.limits.max_stanza_bytes = max_stanza;
    let preauth = usize::try_from(limits.preauth_bytes).unwrap_or(usize::MAX);
    let defaults = ReceivingConfig::default();
    let receiving = ReceivingConfig {
        hosted: rules.hosted.clone(),
        limits_preauth: XmlLimits {
            max_stanza_bytes: defaults.limits_preauth.max_stanza_bytes.min(preauth),
            ..defaults.limits_preauth
        },
        limits: XmlLimits {
            max_stanza_bytes: max_stanza,
            ..defaults.limits
        },
        negotiation_timeout: negotiation,
        ..defaults
    };
    let ctx = Arc::new(S2sContext {
        server: Arc::downgrade(server),
        rules: Arc::clone(&rules),
        trust,
        tls_starttls: s2s_server_config(certs.clone(), &[])?,
        tls_direct: s2s_server_config(certs.clone(), &[ALPN_XMPP_SERVER])?,
        certs,
        secret,
        resolver,
        initiating: Arc::new(initiating),
        receiving: Arc::new(receiving),
        attempt_timeout: negotiation,
        preauth_bytes: preauth,
        streams: Default::default(),
        rates: Default::default(),
        idle_timeout: Duration::from_secs(config.s2s.idle_timeout_secs),
        preauth: Default::default(),
    });
    let queue_limits = QueueLimits {
        idle_timeout: Duration::from_secs(config.s2s.idle_timeout_secs),
        ..QueueLimits::default()
    };
    let connector = Arc::new(S2sConnector::new(Arc::clone(&ctx)));
    let outbound = Outbound::start(server, connector, queue_limits);
    let (listeners, task) = listen(Arc::clone(&ctx), &config.s2s.listen, &config.s2s.listen_tls)
        .await
        .map_err(|(addr, source)| EdgeError::S2sListener { addr, source })?;
    server.set_federation(Arc::new(Guarded { outbound, ctx }));
    Ok(S2sRunning { listeners, task })
}
