//! XEP-0191 block lists as routing consults them: a matcher (`rules::BlockList`) built
//! once per user from storage, cached, and dropped when the list changes.

use std::sync::{Arc, RwLock};

use herald_rules::BlockList;
use herald_translate::Jid;

use crate::bare_map::BareMap;
use crate::db::Db;

/// Users whose block list is kept in memory at most; beyond it the cache starts over.
const MAX_CACHED: usize = 100_000;

/// Block lists of users seen recently, as matchers; invalidated on change.
#[derive(Debug)]
pub(crate) struct BlockLists {
    db: Db,
    cache: RwLock<BareMap<Arc<BlockList>>>,
    empty: Arc<BlockList>,
}

impl BlockLists {
    pub(crate) fn new(db: Db) -> Self {
        Self {
            db,
            cache: RwLock::new(BareMap::default()),
            empty: Arc::new(BlockList::default()),
        }
    }

    /// The block list of a local user.
    pub(crate) async fn of(&self, user: &Jid) -> Arc<BlockList> {
        if let Some(l) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(user)
        {
            return Arc::clone(l);
        }
        let Some(username) = user.local().map(str::to_string) else {
            return Arc::clone(&self.empty);
        };
        let items = self
            .db
            .run(move |s| s.blocklist(&username))
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "block list unavailable");
                Vec::new()
            });
        let list = if items.is_empty() {
            Arc::clone(&self.empty)
        } else {
            Arc::new(BlockList::new(items))
        };
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(user, Arc::clone(&list));
        list
    }

    /// Whether the local `user` has blocked `addr`.
    pub(crate) async fn has_blocked(&self, user: &Jid, addr: &Jid) -> bool {
        let list = self.of(user).await;
        !list.is_empty() && list.matches(addr).is_some()
    }

    pub(crate) fn forget(&self, user: &Jid) {
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(user);
    }
}
