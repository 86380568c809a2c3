//! Wiring: configuration -> storage, certificates, core, listeners.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use herald_certs::{ensure_dev_pki, load_identity, server_config, ReloadableCerts, SniStore};
use herald_core::c2s::{C2sParts, Listeners};
use herald_core::server::ServerParts;
use herald_core::store::SqliteStore;
use herald_core::Server;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::error::EdgeError;

/// ALPN protocol of XEP-0368 direct TLS.
const ALPN_XMPP_CLIENT: &[u8] = b"xmpp-client";

/// A started Herald.
pub struct Running {
    pub server: Arc<Server>,
    pub c2s: Listeners,
    /// The SIP listeners, when any is configured.
    pub sip: Option<herald_core::sip::SipListeners>,
    pub admin: Option<SocketAddr>,
    /// The s2s listeners, when federation is enabled.
    pub s2s: Option<crate::s2s::inbound::S2sListeners>,
    /// Federation's shared state, when it is enabled: a reload swaps its rules.
    pub(crate) federation: Option<Arc<crate::s2s::context::S2sContext>>,
    /// The development CA certificate, when one was generated.
    pub dev_ca: Option<PathBuf>,
    /// The certificates every listener presents; a reload replaces them.
    pub(crate) certs: Arc<ReloadableCerts>,
    /// The configuration in force (a reload compares against it).
    pub(crate) config: Config,
    tasks: Vec<JoinHandle<()>>,
    /// Held for as long as this server runs (see [`crate::lock`]).
    _lock: crate::lock::DataDirLock,
}

impl Running {
    /// The configuration in force (as started, or as last reloaded).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The live authenticated s2s streams, `(number, remote domain, direction)` (see
    /// [`crate::s2s::context::Streams::live`]); empty when federation is off.
    pub fn s2s_streams(&self) -> Vec<(u64, String, herald_core::metrics_s2s::Direction)> {
        self.federation.as_ref().map_or_else(Vec::new, |f| {
            f.streams.lock().unwrap_or_else(|e| e.into_inner()).live()
        })
    }

    /// Close every session with `system-shutdown`, stop listening, and wait (bounded)
    /// for connections and background writes (expiring resumable sessions whose
    /// messages go to offline storage) to finish.
    pub async fn shutdown(self, grace: Duration) {
        self.server.shutdown();
        for t in self.tasks {
            let _ = t.await;
        }
        if !self.server.drained(grace).await {
            tracing::warn!(?grace, "shutdown grace period over with work still running");
        }
    }
}

/// Where the database lives.
pub fn database_path(config: &Config) -> PathBuf {
    config.server.data_dir.join("herald.db")
}

/// Open the store of an existing database: account and roster commands never create
/// one (a second, empty database the server does not use would take their changes).
pub fn open_existing_store(config: &Config) -> Result<SqliteStore, EdgeError> {
    let path = database_path(config);
    if !path.is_file() {
        return Err(EdgeError::NoDatabase { path });
    }
    Ok(SqliteStore::open(&path)?)
}

/// Open the configured store (creating the data directory).
pub fn open_store(config: &Config) -> Result<SqliteStore, EdgeError> {
    let dir = &config.server.data_dir;
    std::fs::create_dir_all(dir).map_err(|source| EdgeError::DataDir {
        path: dir.clone(),
        source,
    })?;
    Ok(SqliteStore::open(&database_path(config))?)
}

pub(crate) fn certificates(config: &Config) -> Result<(SniStore, Option<PathBuf>), EdgeError> {
    if config.tls.certificates.is_empty() {
        let pki = ensure_dev_pki(&config.server.data_dir.join("tls"), &config.server.domains)?;
        let identity = load_identity(&pki.cert, &pki.key)?;
        return Ok((SniStore::new(identity), Some(pki.ca_cert)));
    }
    let mut loaded = config
        .tls
        .certificates
        .iter()
        .map(|c| load_identity(&c.cert, &c.key));
    let first = loaded
        .next()
        .transpose()?
        .ok_or_else(|| herald_certs::CertError::NoCertificate(PathBuf::from("tls.certificates")))?;
    let mut store = SniStore::new(first);
    for identity in loaded {
        store.add(identity?);
    }
    Ok((store, None))
}

/// Start Herald as configured.
pub async fn start(config: &Config) -> Result<Running, EdgeError> {
    let lock = crate::lock::try_lock(&config.server.data_dir)?;
    let store = open_store(config)?;
    let (sni, dev_ca) = certificates(config)?;
    let certs = Arc::new(ReloadableCerts::new(sni));
    let decoy_secret =
        crate::secrets::load_or_create_key(&config.server.data_dir.join("scram-decoy.key"))?;
    let server = Server::new(ServerParts {
        domains: config.server.domains.clone(),
        settings: config.c2s.clone(),
        store: Arc::new(store),
    });
    let c2s_parts = C2sParts {
        tls: server_config(certs.clone(), &[])?,
        tls_direct: server_config(certs.clone(), &[ALPN_XMPP_CLIENT])?,
        decoy_secret,
    };
    let (c2s, task) = herald_core::c2s::serve(Arc::clone(&server), c2s_parts).await?;
    let mut tasks = vec![task];
    let sip = if config.sip.enabled() {
        let parts = herald_core::sip::SipParts {
            settings: config.sip.clone(),
            tls: Some(server_config(certs.clone(), &[])?),
            nonce_secret: crate::secrets::load_or_create_key(
                &config.server.data_dir.join("sip-nonce.key"),
            )?,
        };
        let (listeners, task) = herald_core::sip::serve(Arc::clone(&server), parts).await?;
        tasks.push(task);
        Some(listeners)
    } else {
        None
    };
    let (s2s, federation) = if config.s2s.enabled() {
        let fed = crate::s2s::front::start(&server, config, Arc::clone(&certs)).await?;
        tasks.push(fed.task);
        (Some(fed.listeners), Some(fed.ctx))
    } else {
        (None, None)
    };
    let admin = match config.admin.listen {
        Some(addr) => {
            let token = crate::admin::load_or_create_token(&admin_token_path(config))?;
            let mut listeners: Vec<(&'static str, SocketAddr)> = Vec::new();
            listeners.extend(c2s.starttls.iter().map(|a| ("c2s-starttls", *a)));
            listeners.extend(c2s.direct_tls.iter().map(|a| ("c2s-direct-tls", *a)));
            if let Some(sip) = &sip {
                listeners.extend(sip.udp.iter().map(|a| ("sip-udp", *a)));
                listeners.extend(sip.tcp.iter().map(|a| ("sip-tcp", *a)));
                listeners.extend(sip.tls.iter().map(|a| ("sip-tls", *a)));
            }
            if let Some(s2s) = &s2s {
                listeners.extend(s2s.starttls.iter().map(|a| ("s2s-starttls", *a)));
                listeners.extend(s2s.direct_tls.iter().map(|a| ("s2s-direct-tls", *a)));
            }
            let info = crate::admin::AdminInfo {
                listeners,
                database: database_path(config),
            };
            let (local, t) = crate::admin::serve(Arc::clone(&server), addr, token, info).await?;
            tasks.push(t);
            Some(local)
        }
        None => None,
    };
    Ok(Running {
        server,
        c2s,
        sip,
        admin,
        s2s,
        federation,
        dev_ca,
        certs,
        config: config.clone(),
        tasks,
        _lock: lock,
    })
}

/// Where the admin bearer token is kept.
pub fn admin_token_path(config: &Config) -> PathBuf {
    config
        .admin
        .token_file
        .clone()
        .unwrap_or_else(|| config.server.data_dir.join("admin.token"))
}

/// The configuration found by the search order (see [`crate::config_source`]), for a
/// command: which one is said on standard error.
pub fn load_config(flag: Option<&Path>) -> Result<Config, EdgeError> {
    let located = crate::config_source::locate(flag)?;
    eprintln!("configuration: {}", located.source);
    Ok(located.config)
}
