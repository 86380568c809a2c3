//! The store as the async core calls it: every call runs on tokio's blocking pool.

use std::sync::Arc;

use crate::error::CoreError;
use crate::store::{Store, StoreError};

/// The store, called on tokio's blocking pool.
#[derive(Clone)]
pub struct Db(Arc<dyn Store>);

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db")
    }
}

impl Db {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self(store)
    }

    /// The store itself, for synchronous callers (CLI, tests).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0
    }

    /// Run a storage call on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, CoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || f(&*store))
            .await
            .map_err(|e| CoreError::Task(e.to_string()))?
            .map_err(CoreError::from)
    }
}
