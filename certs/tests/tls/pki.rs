//! Test certificates (a CA and leaves, ECDSA P-256 like the development CA)
//! and rustls configurations built on them.

use std::sync::{Arc, OnceLock};

use herald_certs::crypto_provider;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, PKCS_ECDSA_P256_SHA256,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

pub const XMPP_CLIENT: &[u8] = b"xmpp-client";

pub struct Pki {
    pub ca: CertificateDer<'static>,
    pub server_chain: Vec<CertificateDer<'static>>,
    server_key: Vec<u8>,
    pub client_chain: Vec<CertificateDer<'static>>,
    client_key: Vec<u8>,
}

impl Pki {
    pub fn server_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()))
    }

    pub fn client_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.client_key.clone()))
    }

    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).expect("CA");
        roots
    }
}

/// One PKI per test binary: key generation is the slow part.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("CA key");
        let mut ca_params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "Herald TLS test CA");
        ca_params.distinguished_name = name;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("CA cert");
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |names: Vec<String>, usage| {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("leaf key");
            let mut params = CertificateParams::new(names).expect("names");
            params.is_ca = IsCa::ExplicitNoCa;
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &issuer).expect("leaf cert");
            (vec![cert.der().clone()], key.serialize_der())
        };
        let (server_chain, server_key) = leaf(
            vec!["localhost".into(), "chat.example.org".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_chain, client_key) = leaf(
            vec!["client.example.org".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        Pki {
            ca: ca.der().clone(),
            server_chain,
            server_key,
            client_chain,
            client_key,
        }
    })
}

pub const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
pub const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
pub const BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// What a configuration may differ in.
#[derive(Clone)]
pub struct Options {
    pub versions: &'static [&'static SupportedProtocolVersion],
    pub provider: CryptoProvider,
    pub alpn: Vec<Vec<u8>>,
    /// Server: require client certificates. Client: present one.
    pub mtls: bool,
    pub extract_secrets: bool,
    /// Record size for both ends' sending.
    pub max_fragment_size: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            versions: BOTH,
            provider: (*crypto_provider()).clone(),
            alpn: Vec::new(),
            mtls: false,
            extract_secrets: false,
            max_fragment_size: None,
        }
    }
}

impl Options {
    pub fn versions(mut self, versions: &'static [&'static SupportedProtocolVersion]) -> Self {
        self.versions = versions;
        self
    }

    pub fn alpn(mut self, protocols: &[&[u8]]) -> Self {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    pub fn suites(mut self, suites: &[rustls::SupportedCipherSuite]) -> Self {
        self.provider.cipher_suites = suites.to_vec();
        self
    }

    pub fn groups(mut self, groups: &[&'static dyn rustls::crypto::SupportedKxGroup]) -> Self {
        self.provider.kx_groups = groups.to_vec();
        self
    }

    pub fn mtls(mut self) -> Self {
        self.mtls = true;
        self
    }

    /// Lets a buffered rustls peer hand out its traffic keys, so that a test
    /// can craft records of its own after the handshake.
    pub fn extract_secrets(mut self) -> Self {
        self.extract_secrets = true;
        self
    }

    pub fn server(&self) -> Arc<ServerConfig> {
        let pki = pki();
        let builder = ServerConfig::builder_with_provider(Arc::new(self.provider.clone()))
            .with_protocol_versions(self.versions)
            .expect("versions");
        let builder = if self.mtls {
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(pki.roots()),
                Arc::new(self.provider.clone()),
            )
            .build()
            .expect("verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder
            .with_single_cert(pki.server_chain.clone(), pki.server_key())
            .expect("server cert");
        config.alpn_protocols = self.alpn.clone();
        config.enable_secret_extraction = self.extract_secrets;
        config.max_fragment_size = self.max_fragment_size;
        Arc::new(config)
    }

    pub fn client(&self) -> Arc<ClientConfig> {
        let pki = pki();
        let builder = ClientConfig::builder_with_provider(Arc::new(self.provider.clone()))
            .with_protocol_versions(self.versions)
            .expect("versions")
            .with_root_certificates(pki.roots());
        let mut config = if self.mtls {
            builder
                .with_client_auth_cert(pki.client_chain.clone(), pki.client_key())
                .expect("client cert")
        } else {
            builder.with_no_client_auth()
        };
        config.alpn_protocols = self.alpn.clone();
        config.enable_secret_extraction = self.extract_secrets;
        config.max_fragment_size = self.max_fragment_size;
        Arc::new(config)
    }
}

pub fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("name")
}
