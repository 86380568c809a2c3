//! Row-level helpers of the SQLite store: conversions, the account and credential
//! inserts shared by single and bulk creation, roster versions and rows, offline rows,
//! SIP binding rows.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use herald_translate::sasl::{ScramHash, ScramRecord};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{
    AccountCredentials, OfflineMessage, RosterItem, SipBinding, SipCredentials, StoreError,
    Subscription,
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

/// The columns [`binding_from_row`] reads, in order.
pub(super) const BINDING_COLUMNS: &str =
    "username, contact, expires_at_ms, call_id, cseq, q, instance, reg_id, source, user_agent";

/// Reads the [`BINDING_COLUMNS`] of a row.
pub(super) fn binding_from_row(r: &Row<'_>) -> rusqlite::Result<Result<SipBinding, StoreError>> {
    let user: String = r.get(0)?;
    let contact: String = r.get(1)?;
    let cseq: i64 = r.get(4)?;
    let q: Option<i64> = r.get(5)?;
    let reg_id: Option<i64> = r.get(7)?;
    let corrupt = |what: String| StoreError::Corrupt(format!("SIP binding {contact}: {what}"));
    let Ok(cseq) = u32::try_from(cseq) else {
        return Ok(Err(corrupt(format!("cseq {cseq}"))));
    };
    let q = match q.map(u16::try_from).transpose() {
        Ok(q) if q.is_none_or(|q| q <= 1000) => q,
        _ => return Ok(Err(corrupt(format!("q {q:?}")))),
    };
    let Ok(reg_id) = reg_id.map(u32::try_from).transpose() else {
        return Ok(Err(corrupt(format!("reg-id {reg_id:?}"))));
    };
    Ok(Ok(SipBinding {
        user,
        contact,
        expires_at_ms: r.get(2)?,
        call_id: r.get(3)?,
        cseq,
        q,
        instance: r.get(6)?,
        reg_id,
        source: r.get(8)?,
        user_agent: r.get(9)?,
    }))
}

/// Inserts the bindings of `user` (whose old set is already deleted); a later binding
/// with the same contact replaces an earlier one.
pub(super) fn insert_bindings(
    conn: &Connection,
    user: &str,
    bindings: &[SipBinding],
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "INSERT INTO sip_bindings ({BINDING_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (username, contact) DO UPDATE SET expires_at_ms = excluded.expires_at_ms,
             call_id = excluded.call_id, cseq = excluded.cseq, q = excluded.q,
             instance = excluded.instance, reg_id = excluded.reg_id,
             source = excluded.source, user_agent = excluded.user_agent"
    ))?;
    for b in bindings {
        stmt.execute(params![
            user,
            b.contact,
            b.expires_at_ms,
            b.call_id,
            i64::from(b.cseq),
            b.q.map(i64::from),
            b.instance,
            b.reg_id.map(i64::from),
            b.source,
            b.user_agent
        ])?;
    }
    Ok(())
}

/// Runs a binding query with parameters `p` and reads every row.
pub(super) fn load_bindings(
    conn: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<SipBinding>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(p)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(binding_from_row(row)??);
    }
    Ok(out)
}
