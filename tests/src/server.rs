//! A Herald started in this process for one test, on ephemeral loopback ports with its
//! own data directory.

use super::*;

/// A Herald started in this process for one test.
pub struct TestServer {
    running: Option<herald_edge::Running>,
    pub server: Arc<herald_core::Server>,
    /// The STARTTLS client port.
    pub starttls: SocketAddr,
    /// The XEP-0368 direct TLS client port.
    pub direct_tls: SocketAddr,
    /// The generated development CA clients must trust.
    pub ca: PathBuf,
    pub data_dir: PathBuf,
    /// The first hosted domain (what clients open streams to).
    pub domain: String,
    /// The s2s STARTTLS listener, when federation is configured.
    pub s2s: Option<SocketAddr>,
    /// The s2s direct TLS listener (XEP-0368), when configured.
    pub s2s_tls: Option<SocketAddr>,
    /// The configuration it was started with, the admin listener's real address in
    /// `admin.listen` (what the `herald` admin commands read).
    pub config: herald_edge::Config,
    /// The SIP listeners, when `[sip]` has any (off unless a test turns it on, e.g.
    /// with [`sip_on_loopback`](crate::sip_client::sip_on_loopback)).
    pub sip: Option<herald_core::sip::SipListeners>,
}

impl TestServer {
    /// A server with the test defaults (see [`start_with`](Self::start_with)).
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server on ephemeral loopback ports with a fresh data directory and a 10 ms
    /// authentication failure delay; `tune` changes anything else before it starts.
    pub async fn start_with(tune: impl FnOnce(&mut herald_edge::Config)) -> Self {
        let mut config = herald_edge::Config::default();
        config.server.data_dir = unique_temp_dir("server");
        config.c2s.listen = vec![loopback_any_port()];
        config.c2s.listen_tls = vec![loopback_any_port()];
        config.admin.listen = Some(loopback_any_port());
        config.c2s.auth_failure_delay_ms = 10;
        // SIP's defaults are fixed ports (5060, 5061): off unless a test asks.
        config.sip.listen_udp = Vec::new();
        config.sip.listen_tcp = Vec::new();
        config.sip.listen_tls = Vec::new();
        tune(&mut config);
        let running = herald_edge::start(&config)
            .await
            .expect("the test server starts");
        Self {
            server: Arc::clone(&running.server),
            starttls: running.c2s.starttls[0],
            direct_tls: running.c2s.direct_tls[0],
            ca: running
                .dev_ca
                .clone()
                .expect("a development CA was generated"),
            data_dir: config.server.data_dir.clone(),
            domain: config.server.domains[0].clone(),
            s2s: running
                .s2s
                .as_ref()
                .and_then(|l| l.starttls.first().copied()),
            s2s_tls: running
                .s2s
                .as_ref()
                .and_then(|l| l.direct_tls.first().copied()),
            config: {
                let mut c = config.clone();
                c.admin.listen = running.admin;
                c
            },
            sip: running.sip.clone(),
            running: Some(running),
        }
    }

    /// Create an account with password [`PASSWORD`].
    pub fn add_user(&self, name: &str) {
        herald_core::accounts::add_user(&**self.server.db.store(), name, PASSWORD, &self.domain)
            .expect("the account is created");
    }

    /// Log `user` in over STARTTLS with SCRAM-SHA-256 and bind `resource`.
    pub async fn login(&self, user: &str, resource: &str) -> XmppClient {
        XmppClient::connect_plain(self.starttls, &self.ca)
            .await
            .for_domain(&self.domain)
            .login(user, PASSWORD, Some(resource))
            .await
    }

    /// A plain TCP connection to the STARTTLS port, nothing sent yet.
    pub async fn connect(&self) -> XmppClient {
        XmppClient::connect_plain(self.starttls, &self.ca)
            .await
            .for_domain(&self.domain)
    }

    /// A connection that went through STARTTLS and stopped before authenticating; the
    /// returned features are the ones offered after TLS.
    pub async fn connect_tls(&self) -> (XmppClient, Element) {
        let mut c = self.connect().await;
        c.open_stream().await;
        c.starttls().await;
        let features = c.open_stream().await;
        (c, features)
    }

    /// What SIGHUP does to `herald serve`: the configuration changed by `tune`, put in
    /// force while sessions run. Returns the keys that wait for a restart.
    pub fn reload(
        &mut self,
        tune: impl FnOnce(&mut herald_edge::Config),
    ) -> Result<Vec<String>, herald_edge::EdgeError> {
        let running = self.running.as_mut().expect("the server runs");
        let mut config = running.config().clone();
        tune(&mut config);
        running.reload(&config, None)
    }

    /// The live authenticated s2s streams: `(number, remote domain, direction)`.
    pub fn s2s_streams(&self) -> Vec<(u64, String, herald_core::metrics_s2s::Direction)> {
        self.running
            .as_ref()
            .map_or_else(Vec::new, herald_edge::Running::s2s_streams)
    }

    /// The graceful shutdown of `herald serve`: every session gets `system-shutdown`.
    pub async fn shutdown(&mut self, grace: Duration) {
        if let Some(running) = self.running.take() {
            running.shutdown(grace).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server.shutdown();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
