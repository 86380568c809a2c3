//! Herald certificates: everything the server needs to speak TLS.
//!
//! This crate loads certificate chains and private keys from PEM files
//! ([`load_identity`], [`read_certs`]), chooses the certificate to present
//! from the client's SNI ([`SniStore`]), builds rustls client and server
//! configurations ([`server_config`], [`server_config_mtls`],
//! [`client_config`]), and creates a development PKI so that a fresh
//! install works out of the box ([`ensure_dev_pki`]). For operators it makes
//! keys and signing requests, checks and imports certificates ([`request`],
//! [`inspect`], [`import`]). Its [`tls`] module is
//! the record layer connections use: a sans-IO session on rustls' unbuffered
//! API and a thin async adapter. Its [`verify`] module checks federated
//! servers' certificates (RFC 7590 / RFC 6125, pins) for s2s.
//!
//! What it must never do:
//! - rely on a process-wide default rustls crypto provider: every
//!   configuration is built explicitly on [`crypto_provider`] (ring);
//! - weaken verification: no "accept any certificate" verifier, no system
//!   roots slipped in; a client trusts exactly the CA files it is given.
//!   The one exception is server-to-server ([`verify`]): federation must
//!   complete handshakes with unauthenticated peers (Server Dialback), so
//!   its verifiers check handshake signatures and leave the certificate's
//!   verdict to [`check_peer`], which callers must ask; and its trust
//!   anchors ([`S2sTrust`]) include the system's CA bundle on purpose;
//! - write a private key readable by anyone but its owner (keys are 0600,
//!   the development directory 0700), or log key material;
//! - silently serve a key that does not match its certificate;
//! - touch the network itself: it reads and writes local files, and the
//!   [`tls`] adapter only uses the transport its caller hands it.

mod config;
mod der;
mod dev_ca;
mod error;
mod identity;
mod inspect;
mod reloadable;
mod store;
pub mod tls;
pub mod verify;

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;

pub use config::{client_config, server_config, server_config_mtls};
pub use dev_ca::{ensure_dev_pki, DevPki, DEV_CA_COMMON_NAME};
pub use error::CertError;
pub use identity::{load_identity, read_certs, CertifiedIdentity};
pub use inspect::{
    certificate_validity, import, inspect, request, unix_now, CertReport, CsrFiles, Imported,
};
pub use reloadable::ReloadableCerts;
pub use store::SniStore;
pub use verify::{
    check_identity, check_peer, pin_sha256, s2s_client_config, s2s_server_config, CertPin,
    ChainError, IdentityCheck, IdentityKind, PeerCertOutcome, PeerRole, PresentedId, S2sTrust,
    S2sVerifyMode,
};

/// The crypto provider (ring) every configuration of this crate is built on.
/// Other crates building rustls objects themselves should use it too.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())))
}
