//! Account provisioning: usernames, SCRAM credentials and bulk import.
//! Passwords are turned into SCRAM records here and never stored.

use herald_translate::jid::nodeprep;
use herald_translate::sasl::{ScramHash, ScramRecord};

use crate::error::CoreError;
use crate::store::{Store, StoreError};

/// PBKDF2 iterations for new credentials (RFC 7677 asks for at least 4096); the same
/// count unknown users' decoy credentials announce.
pub const DEFAULT_ITERATIONS: u32 = herald_translate::sasl::DEFAULT_ITERATIONS;

/// Normalize a username (RFC 7622 localpart, PRECIS UsernameCaseMapped).
pub fn normalize_username(name: &str) -> Result<String, CoreError> {
    nodeprep(name.trim()).map_err(|e| CoreError::InvalidUsername(name.to_string(), e))
}

/// SCRAM-SHA-1 and SCRAM-SHA-256 records for a password.
pub fn credentials_for(password: &str, iterations: u32) -> Result<Vec<ScramRecord>, CoreError> {
    if password.is_empty() {
        return Err(CoreError::EmptyPassword);
    }
    [ScramHash::Sha256, ScramHash::Sha1]
        .into_iter()
        .map(|h| ScramRecord::generate(h, password, iterations).map_err(CoreError::InvalidPassword))
        .collect()
}

pub fn add_user(store: &dyn Store, username: &str, password: &str) -> Result<String, CoreError> {
    let user = normalize_username(username)?;
    let creds = credentials_for(password, DEFAULT_ITERATIONS)?;
    store.create_user(&user, &creds)?;
    Ok(user)
}

pub fn set_password(
    store: &dyn Store,
    username: &str,
    password: &str,
) -> Result<String, CoreError> {
    let user = normalize_username(username)?;
    let creds = credentials_for(password, DEFAULT_ITERATIONS)?;
    store.set_credentials(&user, &creds)?;
    Ok(user)
}

/// Remove an account while no server runs on the database: it leaves every local
/// roster and pending request that names it (one address per hosted domain), then goes
/// with its own roster, offline messages and block list. Returns how many other
/// users' rosters changed. A running server does this itself
/// ([`Server::remove_account`](crate::Server::remove_account)), with the pushes and
/// presence its contacts' sessions expect.
pub fn remove_account_offline(
    store: &dyn Store,
    username: &str,
    domains: &[String],
) -> Result<usize, CoreError> {
    let user = normalize_username(username)?;
    if !store.user_exists(&user)? {
        return Err(StoreError::NoSuchUser(user).into());
    }
    let mut updated = 0;
    for domain in domains {
        let jid = format!("{user}@{domain}");
        for owner in store.roster_owners_of(&jid)? {
            if owner == user {
                continue;
            }
            store.pending_in_remove(&owner, &jid)?;
            store.roster_remove(&owner, &jid)?;
            updated += 1;
        }
    }
    store.remove_user(&user)?;
    Ok(updated)
}

/// One line of an import file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub line: usize,
    pub message: String,
}

/// A parsed import row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    pub line: usize,
    pub username: String,
    pub password: String,
}

/// Parse a provisioning CSV: `username,password` per line, an optional header line
/// `username,password`, blank lines and `#` comments ignored, fields may be quoted with
/// `"` (a doubled `""` inside is a quote).
pub fn parse_import_csv(text: &str) -> (Vec<ImportRow>, Vec<ImportError>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (line, fields) in csv_records(text, "username") {
        let fields = match fields {
            Ok(f) => f,
            Err(message) => {
                errors.push(ImportError { line, message });
                continue;
            }
        };
        match fields.as_slice() {
            [user, pass] if !user.trim().is_empty() && !pass.is_empty() => rows.push(ImportRow {
                line,
                username: user.trim().to_string(),
                password: pass.clone(),
            }),
            [_, _] => errors.push(ImportError {
                line,
                message: "username and password must not be empty".into(),
            }),
            _ => errors.push(ImportError {
                line,
                message: format!(
                    "expected 2 fields (username,password), found {}",
                    fields.len()
                ),
            }),
        }
    }
    (rows, errors)
}

/// The records of an import CSV as `(line number, fields)`: blank lines, `#` comments
/// and a header (a first line whose first field is `header`) are skipped; a line that
/// does not split into fields gives its error message.
pub(crate) fn csv_records<'a>(
    text: &'a str,
    header: &'a str,
) -> impl Iterator<Item = (usize, Result<Vec<String>, String>)> + 'a {
    text.lines().enumerate().filter_map(move |(idx, raw)| {
        let line = idx + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return None;
        }
        let fields = split_csv(trimmed);
        let is_header = line == 1
            && fields.as_ref().is_ok_and(|f| {
                f.first()
                    .is_some_and(|first| first.trim().eq_ignore_ascii_case(header))
            });
        (!is_header).then_some((line, fields))
    })
}

fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if cur.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                fields.push(std::mem::take(&mut cur));
                was_quoted = false;
            }
            (false, '"') => return Err("stray quote inside a field".into()),
            (_, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    fields.push(cur);
    Ok(fields)
}

/// A row ready to store: line number, normalized username, credentials.
pub type PreparedRow = (usize, String, Vec<ScramRecord>);

/// Prepare rows for [`Store::create_users`]: normalize names and derive credentials.
/// Bad rows become errors; good rows keep their line numbers.
pub fn prepare_rows(rows: &[ImportRow], iterations: u32) -> (Vec<PreparedRow>, Vec<ImportError>) {
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for row in rows {
        match normalize_username(&row.username)
            .and_then(|u| credentials_for(&row.password, iterations).map(|c| (u, c)))
        {
            Ok((u, c)) => ok.push((row.line, u, c)),
            Err(e) => errors.push(ImportError {
                line: row.line,
                message: e.to_string(),
            }),
        }
    }
    (ok, errors)
}

/// Store prepared rows in one batch; per-row failures (existing users) become errors.
pub fn store_rows(
    store: &dyn Store,
    prepared: Vec<PreparedRow>,
) -> Result<(usize, Vec<ImportError>), StoreError> {
    let lines: Vec<usize> = prepared.iter().map(|(l, _, _)| *l).collect();
    let batch: Vec<(String, Vec<ScramRecord>)> =
        prepared.into_iter().map(|(_, u, c)| (u, c)).collect();
    let results = store.create_users(&batch)?;
    let mut created = 0;
    let mut errors = Vec::new();
    for (line, r) in lines.into_iter().zip(results) {
        match r {
            Ok(()) => created += 1,
            Err(e) => errors.push(ImportError {
                line,
                message: e.to_string(),
            }),
        }
    }
    Ok((created, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_header_comments_quotes_and_errors() {
        let text = "username,password\n# staff\nalice,secret\n\"bob\",\"pa,ss\"\"w\"\ncarol\n,x\n";
        let (rows, errors) = parse_import_csv(text);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].password, "pa,ss\"w");
        assert_eq!(rows[1].line, 4);
        assert_eq!(
            errors.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![5, 6]
        );
        assert!(errors[0].message.contains("expected 2 fields"));
    }

    #[test]
    fn unterminated_quote_is_reported() {
        let (rows, errors) = parse_import_csv("\"alice,secret\n");
        assert!(rows.is_empty());
        assert_eq!(errors[0].message, "unterminated quoted field");
    }

    #[test]
    fn offline_removal_leaves_every_roster_that_names_the_account() {
        use crate::store::{RosterItem, SqliteStore};
        let store = SqliteStore::open_in_memory().expect("store");
        for u in ["alice", "bob", "carol"] {
            add_user(&store, u, "pw").expect("user");
        }
        let domains = vec!["localhost".to_string(), "example.com".to_string()];
        store
            .roster_put("alice", &RosterItem::new("bob@localhost"))
            .expect("item");
        store
            .roster_put("alice", &RosterItem::new("carol@localhost"))
            .expect("item");
        store
            .pending_in_put("carol", "bob@example.com", "<presence type='subscribe'/>")
            .expect("pending");
        assert_eq!(
            remove_account_offline(&store, "Bob", &domains).expect("removed"),
            2
        );
        assert!(!store.user_exists("bob").expect("lookup"));
        let (_, items) = store.roster("alice").expect("roster");
        assert_eq!(items.len(), 1, "carol stays: {items:?}");
        assert!(store.pending_in_list("carol").expect("pending").is_empty());
        assert!(matches!(
            remove_account_offline(&store, "bob", &domains),
            Err(CoreError::Store(StoreError::NoSuchUser(_)))
        ));
    }

    #[test]
    fn an_empty_password_is_named() {
        let err = credentials_for("", 4096).expect_err("empty").to_string();
        assert_eq!(err, "the password is empty");
    }

    #[test]
    fn usernames_are_normalized() {
        assert_eq!(normalize_username("Alice").expect("ok"), "alice");
        assert!(normalize_username("a@b").is_err());
        assert!(normalize_username("").is_err());
    }
}
