//! A map keyed by a user's bare JID that looks entries up through the parsed parts of any
//! JID (full or bare) without building a key: domain first, then localpart. Lookups on
//! the message path allocate nothing.

use std::collections::HashMap;

use herald_translate::Jid;

#[derive(Debug)]
pub(crate) struct BareMap<V> {
    by_domain: HashMap<String, HashMap<String, V>>,
    len: usize,
}

impl<V> Default for BareMap<V> {
    fn default() -> Self {
        Self {
            by_domain: HashMap::new(),
            len: 0,
        }
    }
}

impl<V> BareMap<V> {
    /// The entry of `jid`'s bare JID; `None` for a JID without a localpart.
    pub(crate) fn get(&self, jid: &Jid) -> Option<&V> {
        self.by_domain.get(jid.domain())?.get(jid.local()?)
    }

    /// Insert or replace; a JID without a localpart is ignored (returns `None`).
    pub(crate) fn insert(&mut self, jid: &Jid, value: V) -> Option<V> {
        let local = jid.local()?;
        let users = match self.by_domain.get_mut(jid.domain()) {
            Some(users) => users,
            None => self.by_domain.entry(jid.domain().to_string()).or_default(),
        };
        let old = match users.get_mut(local) {
            Some(slot) => Some(std::mem::replace(slot, value)),
            None => {
                users.insert(local.to_string(), value);
                None
            }
        };
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub(crate) fn remove(&mut self, jid: &Jid) -> Option<V> {
        let users = self.by_domain.get_mut(jid.domain())?;
        let old = users.remove(jid.local()?)?;
        if users.is_empty() {
            self.by_domain.remove(jid.domain());
        }
        self.len -= 1;
        Some(old)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn clear(&mut self) {
        self.by_domain.clear();
        self.len = 0;
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.by_domain.values().flat_map(HashMap::values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str) -> Jid {
        Jid::parse(s).expect("jid")
    }

    #[test]
    fn full_and_bare_jids_find_the_same_entry() {
        let mut m = BareMap::default();
        assert_eq!(m.insert(&j("alice@x/phone"), 1), None);
        assert_eq!(m.get(&j("alice@x")), Some(&1));
        assert_eq!(m.get(&j("ALICE@x/desk")), Some(&1));
        assert_eq!(m.get(&j("alice@y")), None);
        assert_eq!(m.get(&j("x")), None);
        assert_eq!(m.insert(&j("alice@x"), 2), Some(1));
        assert_eq!(m.insert(&j("bob@x"), 3), None);
        assert_eq!(m.insert(&j("x"), 9), None);
        assert_eq!(m.len(), 2);
        assert_eq!(m.remove(&j("alice@x/r")), Some(2));
        assert_eq!(m.remove(&j("alice@x")), None);
        assert_eq!(m.len(), 1);
        assert_eq!(m.values().copied().collect::<Vec<_>>(), vec![3]);
    }
}
