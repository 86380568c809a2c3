//! XEP-0191 block list matching, with the JID rules of XEP-0016 §2.1: an item blocks the
//! exact full JID, a bare JID blocks all its resources, a domain blocks everyone there,
//! and `domain/resource` blocks that resource of the domain itself.
//!
//! [`BlockList`] parses each item once and indexes it by domain, so a check costs a
//! few hash lookups whatever the list's length. [`blocks`] is the plain definition
//! (it parses every item on every call) and is kept as the reference the index is
//! tested against.

use std::collections::HashMap;

use herald_translate::Jid;

/// Which block-list item covered the address, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMatch {
    /// The item as it was given.
    pub item: String,
    /// The XEP-0016 §2.1 rule: "full JID", "bare JID", "domain/resource" or "domain".
    pub rule: &'static str,
}

const FULL: &str = "full JID";
const BARE: &str = "bare JID";
const DOMAIN_RESOURCE: &str = "domain/resource";
const DOMAIN: &str = "domain";

/// Whether `addr` is covered by any item of `list` (items are JID strings; malformed
/// items never match). The first matching item in list order is reported.
pub fn blocks(list: &[String], addr: &Jid) -> Option<BlockMatch> {
    list.iter().find_map(|item| {
        let it = Jid::parse(item).ok()?;
        let rule = match (it.local(), it.resource()) {
            (Some(_), Some(_)) => (it == *addr).then_some(FULL),
            (Some(_), None) => (it == addr.bare()).then_some(BARE),
            (None, Some(_)) => (addr.local().is_none()
                && it.domain() == addr.domain()
                && it.resource() == addr.resource())
            .then_some(DOMAIN_RESOURCE),
            (None, None) => (it.domain() == addr.domain()).then_some(DOMAIN),
        }?;
        Some(BlockMatch {
            item: item.clone(),
            rule,
        })
    })
}

/// The items of one domain. Values are positions in the list, so that the first
/// matching item in list order wins, as in [`blocks`].
#[derive(Debug, Clone, Default)]
struct DomainItems {
    /// The domain itself (`example.org`).
    whole: Option<usize>,
    /// Bare JIDs, by localpart.
    bare: HashMap<String, usize>,
    /// Full JIDs, by localpart then resourcepart.
    full: HashMap<String, HashMap<String, usize>>,
    /// `domain/resource` items, by resourcepart.
    resources: HashMap<String, usize>,
}

/// A block list parsed once, for fast repeated checks.
#[derive(Debug, Clone, Default)]
pub struct BlockList {
    /// The items as given, in order (malformed ones included).
    items: Vec<String>,
    /// Positions of the items that are not JIDs; they never match.
    malformed: Vec<usize>,
    domains: HashMap<String, DomainItems>,
}

impl BlockList {
    /// Parses and indexes `items` (normalized JID strings as stored; any JID string is
    /// accepted and normalized). Items that are not JIDs are kept aside and never match.
    pub fn new(items: Vec<String>) -> Self {
        let mut malformed = Vec::new();
        let mut domains: HashMap<String, DomainItems> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let Ok(jid) = Jid::parse(item) else {
                malformed.push(i);
                continue;
            };
            let d = domains.entry(jid.domain().to_string()).or_default();
            match (jid.local(), jid.resource()) {
                (Some(l), Some(r)) => {
                    d.full
                        .entry(l.to_string())
                        .or_default()
                        .entry(r.to_string())
                        .or_insert(i);
                }
                (Some(l), None) => {
                    d.bare.entry(l.to_string()).or_insert(i);
                }
                (None, Some(r)) => {
                    d.resources.entry(r.to_string()).or_insert(i);
                }
                (None, None) => {
                    d.whole.get_or_insert(i);
                }
            }
        }
        Self {
            items,
            malformed,
            domains,
        }
    }

    /// Whether `addr` is covered by an item; the first matching item in list order is
    /// reported.
    pub fn matches(&self, addr: &Jid) -> Option<BlockMatch> {
        let d = self.domains.get(addr.domain())?;
        let mut best: Option<(usize, &'static str)> = d.whole.map(|i| (i, DOMAIN));
        let mut consider = |hit: Option<&usize>, rule: &'static str| {
            if let Some(&i) = hit {
                if best.is_none_or(|(b, _)| i < b) {
                    best = Some((i, rule));
                }
            }
        };
        match (addr.local(), addr.resource()) {
            (Some(l), resource) => {
                consider(d.bare.get(l), BARE);
                if let Some(r) = resource {
                    consider(d.full.get(l).and_then(|m| m.get(r)), FULL);
                }
            }
            (None, Some(r)) => consider(d.resources.get(r), DOMAIN_RESOURCE),
            (None, None) => {}
        }
        let (i, rule) = best?;
        Some(BlockMatch {
            item: self.items.get(i)?.clone(),
            rule,
        })
    }

    /// Whether `addr` is covered by an item.
    pub fn blocks(&self, addr: &Jid) -> bool {
        self.matches(addr).is_some()
    }

    /// The items as given, in order, malformed ones included.
    pub fn items(&self) -> &[String] {
        &self.items
    }

    /// Whether the list has no items at all.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The number of items, malformed ones included.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The items that are not JIDs and are ignored, in list order.
    pub fn malformed(&self) -> impl Iterator<Item = &str> {
        self.malformed
            .iter()
            .filter_map(|&i| self.items.get(i).map(String::as_str))
    }

    /// How many items are not JIDs and are ignored.
    pub fn malformed_count(&self) -> usize {
        self.malformed.len()
    }
}

impl FromIterator<String> for BlockList {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Self {
        Self::new(iter.into_iter().collect())
    }
}

#[cfg(test)]
#[path = "blocklist_tests.rs"]
mod tests;
