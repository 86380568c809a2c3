//! Server-certificate selection by SNI.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::identity::CertifiedIdentity;

/// Picks the certificate to present from the server name the client asked
/// for (SNI): an exact match first, then a `*.parent` wildcard covering a
/// single leading label, and otherwise the default identity (also used when
/// the client sends no SNI, e.g. when connecting by IP address).
#[derive(Clone)]
pub struct SniStore {
    default: Arc<CertifiedKey>,
    default_names: Vec<String>,
    /// Exact names (DNS names and IP addresses).
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.parent` wildcards, keyed by `parent`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

impl SniStore {
    /// A store serving `default` when nothing more specific matches; the
    /// default is also registered under the names it covers.
    pub fn new(default: CertifiedIdentity) -> Self {
        let mut store = Self {
            default: Arc::clone(default.certified_key()),
            default_names: default.names().to_vec(),
            exact: HashMap::new(),
            wildcard: HashMap::new(),
        };
        store.add(default);
        store
    }

    /// Registers `identity` under every name it covers. A later identity
    /// replaces an earlier one for the names they share.
    pub fn add(&mut self, identity: CertifiedIdentity) {
        for name in identity.names() {
            let key = Arc::clone(identity.certified_key());
            let replaced = match name.strip_prefix("*.") {
                Some(parent) => self.wildcard.insert(parent.to_owned(), key),
                None => self.exact.insert(name.clone(), key),
            };
            if replaced.is_some() {
                tracing::debug!(%name, "SNI: a later certificate replaces an earlier one");
            }
        }
    }

    /// Whether a registered identity (not merely the fallback default)
    /// covers `name`.
    pub fn covers(&self, name: &str) -> bool {
        self.lookup(name).is_some()
    }

    /// The key registered for `name`, if any (no fallback to the default).
    pub fn lookup(&self, name: &str) -> Option<&Arc<CertifiedKey>> {
        let name = normalize_name(name);
        if let Some(key) = self.exact.get(&name) {
            return Some(key);
        }
        match name.split_once('.') {
            Some((label, parent)) if !label.is_empty() => self.wildcard.get(parent),
            _ => None,
        }
    }

    /// The key presented for a connection that asked for `server_name`.
    pub fn select(&self, server_name: Option<&str>) -> &Arc<CertifiedKey> {
        server_name
            .and_then(|name| self.lookup(name))
            .unwrap_or(&self.default)
    }
}

impl ResolvesServerCert for SniStore {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let server_name = client_hello.server_name();
        if let Some(name) = server_name {
            if !self.covers(name) {
                tracing::debug!(%name, "SNI: no certificate for this name, serving the default");
            }
        }
        Some(Arc::clone(self.select(server_name)))
    }
}

impl fmt::Debug for SniStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut exact: Vec<&String> = self.exact.keys().collect();
        exact.sort();
        let mut wildcard: Vec<String> = self.wildcard.keys().map(|p| format!("*.{p}")).collect();
        wildcard.sort();
        f.debug_struct("SniStore")
            .field("default", &self.default_names)
            .field("exact", &exact)
            .field("wildcard", &wildcard)
            .finish()
    }
}

/// Lower-cases a name and strips a trailing dot.
pub(crate) fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether the certificate name `pattern` (already normalized) covers the
/// normalized `name`: equal, or `*.parent` with `name` = one label + parent.
pub(crate) fn name_matches(pattern: &str, name: &str) -> bool {
    if pattern == name {
        return true;
    }
    match (pattern.strip_prefix("*."), name.split_once('.')) {
        (Some(parent), Some((label, rest))) => !label.is_empty() && rest == parent,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::name_matches;

    #[test]
    fn wildcard_covers_exactly_one_label() {
        assert!(name_matches("example.org", "example.org"));
        assert!(name_matches("*.example.org", "chat.example.org"));
        assert!(!name_matches("*.example.org", "example.org"));
        assert!(!name_matches("*.example.org", "a.b.example.org"));
        assert!(!name_matches("*.example.org", ".example.org"));
        assert!(!name_matches("example.org", "other.org"));
    }
}
