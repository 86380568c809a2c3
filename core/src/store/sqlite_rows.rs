//! Row-level helpers of the SQLite store: conversions, the account and credential
//! inserts shared by single and bulk creation, roster versions and rows, offline rows.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use herald_translate::sasl::{ScramHash, ScramRecord};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{
    AccountCredentials, OfflineMessage, RosterItem, SipCredentials, StoreError, Subscription,
};

pub(super) fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(super) fn to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} = {v}")))
}

pub(super) fn to_usize(v: i64, what: &str) -> Result<usize, StoreError> {
    usize::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} = {v}")))
}

pub(super) fn hash_name(hash: ScramHash) -> &'static str {
    match hash {
        ScramHash::Sha1 => "SHA-1",
        ScramHash::Sha256 => "SHA-256",
    }
}

pub(super) fn parse_hash(name: &str) -> Option<ScramHash> {
    match name {
        "SHA-1" => Some(ScramHash::Sha1),
        "SHA-256" => Some(ScramHash::Sha256),
        _ => None,
    }
}

pub(super) fn require_user(conn: &Connection, user: &str) -> Result<(), StoreError> {
    conn.prepare_cached("SELECT 1 FROM users WHERE username = ?1")?
        .query_row([user], |_| Ok(()))
        .optional()?
        .ok_or_else(|| StoreError::NoSuchUser(user.to_owned()))
}

/// Inserts a user; `false` if the username is taken.
pub(super) fn insert_user(
    conn: &Connection,
    user: &str,
    creds: &AccountCredentials,
    now: i64,
) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO users (username, roster_version, created_at_unix_ms) VALUES (?1, 0, ?2)
             ON CONFLICT (username) DO NOTHING",
        )?
        .execute(params![user, now])?;
    if inserted == 0 {
        return Ok(false);
    }
    insert_credentials(conn, user, &creds.scram)?;
    if let Some(sip) = &creds.sip {
        insert_sip_credentials(conn, user, sip)?;
    }
    Ok(true)
}

pub(super) fn insert_credentials(
    conn: &Connection,
    user: &str,
    creds: &[ScramRecord],
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO credentials (username, mechanism, salt, iterations, stored_key, server_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (username, mechanism) DO UPDATE SET salt = excluded.salt,
             iterations = excluded.iterations, stored_key = excluded.stored_key,
             server_key = excluded.server_key",
    )?;
    for c in creds {
        stmt.execute(params![
            user,
            hash_name(c.hash),
            c.salt,
            i64::from(c.iterations),
            c.stored_key,
            c.server_key
        ])?;
    }
    Ok(())
}

pub(super) fn insert_sip_credentials(
    conn: &Connection,
    user: &str,
    sip: &SipCredentials,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO sip_credentials (username, realm, algorithm, ha1) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (username, realm, algorithm) DO UPDATE SET ha1 = excluded.ha1",
    )?;
    for (algorithm, ha1) in &sip.ha1 {
        stmt.execute(params![user, sip.realm, algorithm.base().as_str(), ha1])?;
    }
    Ok(())
}

/// Bumps the roster version of `user` and returns the new value.
pub(super) fn bump_roster_version(conn: &Connection, user: &str) -> Result<u64, StoreError> {
    let version: i64 = conn
        .prepare_cached(
            "UPDATE users SET roster_version = roster_version + 1 WHERE username = ?1
             RETURNING roster_version",
        )?
        .query_row([user], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NoSuchUser(user.to_owned()))?;
    to_u64(version, "roster_version")
}

pub(super) fn read_roster_version(conn: &Connection, user: &str) -> Result<u64, StoreError> {
    let version: i64 = conn
        .prepare_cached("SELECT roster_version FROM users WHERE username = ?1")?
        .query_row([user], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NoSuchUser(user.to_owned()))?;
    to_u64(version, "roster_version")
}

const ITEM_COLUMNS: &str = "jid, name, subscription, ask, approved";

/// Reads the [`ITEM_COLUMNS`] of a row into an item without groups.
pub(super) fn item_from_row(row: &Row<'_>) -> rusqlite::Result<Result<RosterItem, StoreError>> {
    let jid: String = row.get(0)?;
    let subscription: String = row.get(2)?;
    let Some(subscription) = Subscription::parse(&subscription) else {
        return Ok(Err(StoreError::Corrupt(format!(
            "roster item {jid}: subscription {subscription:?}"
        ))));
    };
    Ok(Ok(RosterItem {
        jid,
        name: row.get(1)?,
        subscription,
        ask: row.get(3)?,
        approved: row.get(4)?,
        groups: Vec::new(),
    }))
}

/// All roster items of `user` (which must exist), sorted by JID.
pub(super) fn load_roster(conn: &Connection, user: &str) -> Result<Vec<RosterItem>, StoreError> {
    let mut groups: HashMap<String, Vec<String>> = HashMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT jid, group_name FROM roster_groups WHERE username = ?1 ORDER BY jid, position",
    )?;
    let mut rows = stmt.query([user])?;
    while let Some(row) = rows.next()? {
        groups.entry(row.get(0)?).or_default().push(row.get(1)?);
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ITEM_COLUMNS} FROM roster_items WHERE username = ?1 ORDER BY jid"
    ))?;
    let mut rows = stmt.query([user])?;
    let mut items = Vec::new();
    while let Some(row) = rows.next()? {
        let mut item = item_from_row(row)??;
        item.groups = groups.remove(&item.jid).unwrap_or_default();
        items.push(item);
    }
    Ok(items)
}

pub(super) fn load_roster_item(
    conn: &Connection,
    user: &str,
    contact: &str,
) -> Result<Option<RosterItem>, StoreError> {
    let item = conn
        .prepare_cached(&format!(
            "SELECT {ITEM_COLUMNS} FROM roster_items WHERE username = ?1 AND jid = ?2"
        ))?
        .query_row([user, contact], item_from_row)
        .optional()?;
    let Some(item) = item else {
        return Ok(None);
    };
    let mut item = item?;
    let mut stmt = conn.prepare_cached(
        "SELECT group_name FROM roster_groups WHERE username = ?1 AND jid = ?2 ORDER BY position",
    )?;
    item.groups = stmt
        .query_map([user, contact], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(Some(item))
}

pub(super) fn offline_from_row(r: &Row<'_>) -> rusqlite::Result<OfflineMessage> {
    Ok(OfflineMessage {
        id: r.get(0)?,
        stanza: r.get(1)?,
        stored_at_unix_ms: r.get(2)?,
    })
}

pub(super) fn count(conn: &Connection, sql: &str, user: &str) -> Result<i64, StoreError> {
    Ok(conn.prepare_cached(sql)?.query_row([user], |r| r.get(0))?)
}
