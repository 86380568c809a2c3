//! rustls configurations for server-to-server connections.
//!
//! Federation must be able to finish a TLS handshake with a peer whose
//! certificate proves nothing (Server Dialback then authenticates it), so
//! these verifiers only decide the handshake in [`S2sVerifyMode::Strict`]
//! and [`S2sVerifyMode::Pinned`]. In every mode they verify the handshake
//! signatures, so the peer holds the key of the certificate it presented;
//! whether that certificate is valid for a domain is [`check_peer`]'s
//! answer, asked after the handshake.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, ResolvesServerCert};
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, Error, ServerConfig, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::peer::check_peer_at;
use super::pin::CertPin;
use super::trust::{PeerRole, S2sTrust};
use crate::config::{alpn_list, FixedClientIdentity, VERSIONS};
use crate::error::CertError;
use crate::identity::CertifiedIdentity;

#[cfg(doc)]
use super::peer::check_peer;

/// What an outbound s2s handshake does with the peer's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum S2sVerifyMode {
    /// Complete the handshake whatever the certificate (dialback may
    /// follow); the caller checks it afterwards with [`check_peer`].
    Record,
    /// Refuse the handshake unless the chain is valid and the certificate
    /// is valid for the domain connected to (the `ServerName` given to the
    /// connection), with the matching alert (`unknown_ca`,
    /// `bad_certificate`, `certificate_expired`...). For routes that
    /// require TLS with PKIX authentication.
    Strict,
    /// Refuse the handshake unless the end-entity certificate is the pinned
    /// one (alert `certificate_unknown`); chain and identity are not
    /// required, so a self-signed certificate can be pinned.
    Pinned(CertPin),
}

/// The client configuration of outbound s2s connections.
///
/// SNI is the remote domain: connect with `ServerName::DnsName(domain)`
/// (rustls sends it as server_name). `identity` is the certificate offered
/// when the peer asks for one (SASL EXTERNAL, XEP-0178). Session resumption
/// is disabled, so every connection presents and checks a certificate.
pub fn s2s_client_config(
    trust: &S2sTrust,
    mode: S2sVerifyMode,
    identity: Option<&CertifiedIdentity>,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, CertError> {
    let provider = crate::crypto_provider();
    let verifier = Arc::new(S2sServerCertVerifier {
        trust: trust.clone(),
        mode,
        signatures: Signatures(Arc::clone(&provider)),
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some(identity) => builder.with_client_cert_resolver(Arc::new(FixedClientIdentity(
            Arc::clone(identity.certified_key()),
        ))),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn_list(alpn);
    config.resumption = Resumption::disabled();
    config.enable_sni = true;
    Ok(Arc::new(config))
}

/// The server configuration of s2s listeners: certificates chosen by SNI
/// from `resolver` (an [`SniStore`](crate::SniStore) or
/// [`ReloadableCerts`](crate::ReloadableCerts)); a client certificate is
/// requested but optional, and accepted whatever its chain, once the peer
/// proved it holds its key. Check it after the handshake with
/// [`check_peer`] ([`PeerRole::Client`]) against the domain the peer claims
/// in its stream header. No session tickets or session cache: each
/// connection presents its certificate anew.
pub fn s2s_server_config(
    resolver: Arc<dyn ResolvesServerCert>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, CertError> {
    let provider = crate::crypto_provider();
    let verifier = Arc::new(S2sClientCertVerifier {
        signatures: Signatures(Arc::clone(&provider)),
    });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    config.alpn_protocols = alpn_list(alpn);
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// The handshake-signature checks both s2s verifiers make with the crate's provider,
/// whatever they decide about the certificate itself.
#[derive(Debug)]
struct Signatures(Arc<CryptoProvider>);

impl Signatures {
    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Outbound: checks the server's certificate per [`S2sVerifyMode`].
#[derive(Debug)]
struct S2sServerCertVerifier {
    trust: S2sTrust,
    mode: S2sVerifyMode,
    signatures: Signatures,
}

impl ServerCertVerifier for S2sServerCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let pin = match &self.mode {
            S2sVerifyMode::Record => return Ok(ServerCertVerified::assertion()),
            S2sVerifyMode::Strict => None,
            S2sVerifyMode::Pinned(pin) => Some(pin),
        };
        let ServerName::DnsName(domain) = server_name else {
            return Err(Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ));
        };
        let mut chain = Vec::with_capacity(1 + intermediates.len());
        chain.push(CertificateDer::from(end_entity.as_ref()));
        chain.extend(
            intermediates
                .iter()
                .map(|c| CertificateDer::from(c.as_ref())),
        );
        let outcome = check_peer_at(
            &chain,
            domain.as_ref(),
            &self.trust,
            PeerRole::Server,
            pin,
            now,
        );
        match outcome.failure() {
            None => Ok(ServerCertVerified::assertion()),
            Some(reason) => {
                tracing::debug!(%outcome, "s2s: refusing the server certificate");
                Err(Error::InvalidCertificate(reason))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.signatures.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.signatures.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.schemes()
    }
}

/// Inbound: asks for a client certificate, never requires one, and leaves
/// its evaluation to [`check_peer`] after the handshake.
#[derive(Debug)]
struct S2sClientCertVerifier {
    signatures: Signatures,
}

impl ClientCertVerifier for S2sClientCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    /// No hints: a list of every system root would bloat each
    /// CertificateRequest, and peers present their one server certificate
    /// anyway.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.signatures.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.signatures.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.schemes()
    }
}
