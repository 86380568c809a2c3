//! Certificates replaced while the server runs (SIGHUP): connections that already
//! finished their handshake keep their keys; the next handshake gets the new ones.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::store::SniStore;

/// An [`SniStore`] that can be swapped whole.
pub struct ReloadableCerts {
    current: ArcSwap<SniStore>,
}

impl ReloadableCerts {
    pub fn new(store: SniStore) -> Self {
        Self {
            current: ArcSwap::from_pointee(store),
        }
    }

    /// Serve `store` from the next handshake on.
    pub fn replace(&self, store: SniStore) {
        self.current.store(Arc::new(store));
    }

    /// The store in force.
    pub fn current(&self) -> Arc<SniStore> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for ReloadableCerts {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.load().resolve(client_hello)
    }
}

impl fmt::Debug for ReloadableCerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReloadableCerts")
            .field(&*self.current.load())
            .finish()
    }
}
