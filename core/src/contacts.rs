//! Bulk contact-list import (the seed's Bulk Administration Tool imports contact lists
//! as well as users): a CSV file of `owner,contact[,name[,groups[,subscription]]]` rows
//! becomes roster items.
//!
//! - `owner` is a local username; `contact` a bare JID, or a username of the default
//!   domain;
//! - `groups` are separated by `;`;
//! - `subscription` is `none`, `to`, `from` or `both` (default `both`: an enterprise
//!   contact list is authorized by the administrator, as in the seed);
//! - an optional header line starts with `owner`; blank lines and `#` comments are
//!   skipped.
//!
//! Mutual contacts need a row on each side. Users who are online see the new items at
//! their next login (no roster push is sent).

use std::collections::HashMap;

use herald_translate::Jid;

use crate::accounts::{csv_records, normalize_username, ImportError};
use crate::store::{RosterItem, Store, StoreError, Subscription};

/// One parsed row: the owner's normalized username and the item to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRow {
    pub line: usize,
    pub owner: String,
    pub item: RosterItem,
}

/// Parse a contact-list CSV. `domain` completes contacts given without one.
pub fn parse_contacts_csv(text: &str, domain: &str) -> (Vec<ContactRow>, Vec<ImportError>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (line, fields) in csv_records(text, "owner") {
        match fields.and_then(|f| parse_row(&f, domain)) {
            Ok((owner, item)) => rows.push(ContactRow { line, owner, item }),
            Err(message) => errors.push(ImportError { line, message }),
        }
    }
    (rows, errors)
}

fn parse_row(fields: &[String], domain: &str) -> Result<(String, RosterItem), String> {
    if !(2..=5).contains(&fields.len()) {
        return Err(format!(
            "expected 2 to 5 fields (owner,contact,name,groups,subscription), found {}",
            fields.len()
        ));
    }
    let owner = normalize_username(&fields[0]).map_err(|e| e.to_string())?;
    let contact = fields[1].trim();
    let contact = if contact.contains('@') {
        contact.to_string()
    } else {
        format!("{contact}@{domain}")
    };
    let jid = Jid::parse(&contact).map_err(|e| format!("contact {contact:?}: {e}"))?;
    if !jid.is_bare() {
        return Err(format!("contact {contact:?} must be a bare JID"));
    }
    let jid = jid.to_string();
    if jid == format!("{owner}@{domain}") {
        return Err("a user cannot be their own contact".into());
    }
    let mut item = RosterItem::new(jid);
    item.name = fields
        .get(2)
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if let Some(groups) = fields.get(3) {
        for g in groups.split(';').map(str::trim).filter(|g| !g.is_empty()) {
            if !item.groups.iter().any(|have| have == g) {
                item.groups.push(g.to_string());
            }
        }
    }
    item.subscription = match fields.get(4).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Subscription::Both,
        Some(s) => Subscription::parse(s)
            .ok_or_else(|| format!("subscription {s:?} is not none, to, from or both"))?,
    };
    Ok((owner, item))
}

/// Store parsed rows. Rows whose owner does not exist, or whose owner's roster is full
/// (`max_items`), become errors; other rows are stored even then. Returns how many
/// items were stored.
pub fn store_contacts(
    store: &dyn Store,
    rows: &[ContactRow],
    max_items: usize,
) -> Result<(usize, Vec<ImportError>), StoreError> {
    // Per owner: whether the account exists, and its roster size so far.
    let mut owners: HashMap<&str, Option<usize>> = HashMap::new();
    let mut stored = 0;
    let mut errors = Vec::new();
    for row in rows {
        let state = match owners.get(row.owner.as_str()) {
            Some(s) => *s,
            None => {
                let s = if store.user_exists(&row.owner)? {
                    Some(store.roster_len(&row.owner)?)
                } else {
                    None
                };
                owners.insert(&row.owner, s);
                s
            }
        };
        let Some(len) = state else {
            errors.push(ImportError {
                line: row.line,
                message: format!("no such user: {}", row.owner),
            });
            continue;
        };
        let is_new = store.roster_item(&row.owner, &row.item.jid)?.is_none();
        if is_new && len >= max_items {
            errors.push(ImportError {
                line: row.line,
                message: format!("{}'s roster is full ({max_items} items)", row.owner),
            });
            continue;
        }
        store.roster_put(&row.owner, &row.item)?;
        if is_new {
            owners.insert(&row.owner, Some(len + 1));
        }
        stored += 1;
    }
    Ok((stored, errors))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    #[test]
    fn rows_with_defaults_groups_and_errors() {
        let text = "owner,contact,name,groups,subscription\n\
                    alice,bob\n\
                    Alice,carol@example.org,Carol C,Work; Friends ;Work,from\n\
                    alice,dave@localhost/phone\n\
                    alice,erin,,,pending\n\
                    alice\n\
                    alice,alice\n";
        let (rows, errors) = parse_contacts_csv(text, "localhost");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].owner, "alice");
        assert_eq!(rows[0].item.jid, "bob@localhost");
        assert_eq!(rows[0].item.subscription, Subscription::Both);
        assert_eq!(rows[1].owner, "alice");
        assert_eq!(rows[1].item.jid, "carol@example.org");
        assert_eq!(rows[1].item.name.as_deref(), Some("Carol C"));
        assert_eq!(rows[1].item.groups, vec!["Work", "Friends"]);
        assert_eq!(rows[1].item.subscription, Subscription::From);
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![4, 5, 6, 7]);
        assert!(errors[0].message.contains("bare JID"));
        assert!(errors[1].message.contains("pending"));
        assert!(errors[2].message.contains("expected 2 to 5 fields"));
        assert!(errors[3].message.contains("own contact"));
    }

    fn store_with(users: &[&str]) -> SqliteStore {
        let store = SqliteStore::open_in_memory().expect("open");
        for u in users {
            crate::accounts::add_user(&store, u, "pw", "localhost").expect("user");
        }
        store
    }

    #[test]
    fn stored_rows_become_roster_items_and_respect_the_limit() {
        let store = store_with(&["alice", "bob"]);
        let text =
            "alice,bob,,Team\nbob,alice\nalice,carol\nalice,dave\nzoe,alice\nalice,bob,Bobby\n";
        let (rows, parse_errors) = parse_contacts_csv(text, "localhost");
        assert!(parse_errors.is_empty());
        let (stored, errors) = store_contacts(&store, &rows, 2).expect("store");
        // alice: bob, carol (full at 2), dave refused; bob updated in place (not new).
        assert_eq!(stored, 4);
        let messages: Vec<(usize, &str)> = errors
            .iter()
            .map(|e| (e.line, e.message.as_str()))
            .collect();
        assert_eq!(
            messages,
            vec![
                (4, "alice's roster is full (2 items)"),
                (5, "no such user: zoe")
            ]
        );
        let (_, alice) = store.roster("alice").expect("roster");
        let bob = alice
            .iter()
            .find(|i| i.jid == "bob@localhost")
            .expect("bob");
        assert_eq!(bob.subscription, Subscription::Both);
        assert_eq!(bob.name.as_deref(), Some("Bobby"));
        assert_eq!(alice.len(), 2);
        let (_, bobs) = store.roster("bob").expect("roster");
        assert_eq!(bobs.len(), 1);
        assert_eq!(bobs[0].jid, "alice@localhost");
    }
}
