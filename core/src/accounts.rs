//! Account provisioning: usernames, credentials and bulk import.
//! Passwords are turned into SCRAM records (XMPP) and SIP digest credentials here, and
//! never stored.
//!
//! SIP digest credentials are `HA1 = H(username:realm:password)` for MD5 and SHA-256
//! (RFC 8760), in the one SIP realm (`[sip] realm`). The username in them is the
//! account's stored name, the normalized localpart (`Alice` is stored as `alice`): a
//! SIP client must authenticate with that exact name, since the digest covers it.
//! They can only be derived while the password is at hand, so an account created
//! before they existed, or imported from SCRAM hashes alone, has none until its
//! password is set again.

use herald_translate::digest::{self, Algorithm as DigestAlgorithm};
use herald_translate::jid::nodeprep;
use herald_translate::sasl::{ScramHash, ScramRecord};

use crate::error::CoreError;
use crate::store::{AccountCredentials, SipCredentials, Store, StoreError};

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

/// The digest algorithms SIP credentials are derived for: SHA-256 (RFC 8760) and MD5
/// for the clients that know no other.
pub const SIP_DIGEST_ALGORITHMS: [DigestAlgorithm; 2] =
    [DigestAlgorithm::Sha256, DigestAlgorithm::Md5];

/// What an account without SIP credentials for the realm is told, and its admin.
pub const NO_SIP_CREDENTIALS: &str =
    "no SIP credentials: set the password again (`herald user passwd`)";

/// The SIP digest credentials of `user` (the stored, normalized username) in `realm`:
/// one HA1 per [`SIP_DIGEST_ALGORITHMS`].
pub fn sip_credentials_for(user: &str, realm: &str, password: &str) -> SipCredentials {
    SipCredentials {
        realm: realm.to_owned(),
        ha1: SIP_DIGEST_ALGORITHMS
            .into_iter()
            .map(|a| (a, digest::ha1(a, user, realm, password)))
            .collect(),
    }
}

/// Everything a password gives the account `user` (already normalized): its SCRAM
/// records and its SIP digest credentials for `sip_realm`.
pub fn account_credentials(
    user: &str,
    password: &str,
    sip_realm: &str,
    iterations: u32,
) -> Result<AccountCredentials, CoreError> {
    Ok(AccountCredentials {
        scram: credentials_for(password, iterations)?,
        sip: Some(sip_credentials_for(user, sip_realm, password)),
    })
}

/// Create an account with a password; its SIP digest credentials are for `sip_realm`.
/// Returns the normalized username.
pub fn add_user(
    store: &dyn Store,
    username: &str,
    password: &str,
    sip_realm: &str,
) -> Result<String, CoreError> {
    let user = normalize_username(username)?;
    let creds = account_credentials(&user, password, sip_realm, DEFAULT_ITERATIONS)?;
    store.create_user(&user, &creds)?;
    Ok(user)
}

/// Set the password of an account: its SCRAM records and SIP digest credentials are
/// replaced (those of any other realm go). Returns the normalized username.
pub fn set_password(
    store: &dyn Store,
    username: &str,
    password: &str,
    sip_realm: &str,
) -> Result<String, CoreError> {
    let user = normalize_username(username)?;
    let creds = account_credentials(&user, password, sip_realm, DEFAULT_ITERATIONS)?;
    store.set_credentials(&user, &creds)?;
    Ok(user)
}

/// Whether the account `user` (normalized) has SIP digest credentials for `realm`, for
/// every algorithm in [`SIP_DIGEST_ALGORITHMS`]. `NoSuchUser` if there is no such
/// account. When it has not, [`NO_SIP_CREDENTIALS`] says what to do.
pub fn sip_ready(store: &dyn Store, user: &str, realm: &str) -> Result<bool, StoreError> {
    for algorithm in SIP_DIGEST_ALGORITHMS {
        if store.sip_credentials(user, realm, algorithm)?.is_none() {
            return Ok(false);
        }
    }
    Ok(true)
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
pub type PreparedRow = (usize, String, AccountCredentials);

/// Prepare rows for [`Store::create_users`]: normalize names and derive credentials
/// (SIP digest credentials for `sip_realm`). Bad rows become errors; good rows keep
/// their line numbers.
pub fn prepare_rows(
    rows: &[ImportRow],
    iterations: u32,
    sip_realm: &str,
) -> (Vec<PreparedRow>, Vec<ImportError>) {
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for row in rows {
        match normalize_username(&row.username).and_then(|u| {
            account_credentials(&u, &row.password, sip_realm, iterations).map(|c| (u, c))
        }) {
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
    let batch: Vec<(String, AccountCredentials)> =
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
            add_user(&store, u, "pw", "localhost").expect("user");
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

    /// HA1 of alice in herald.example with password "secret", from
    /// `printf 'alice:herald.example:secret' | md5sum` (and `sha256sum`).
    const ALICE_MD5: &str = "da4051bed7a33a0a81dc95a00ac66168";
    const ALICE_SHA256: &str = "f912cf74e0883da5451f45b2b32d6472999896066e91c703166ac268c5c92c01";

    #[test]
    fn sip_credentials_match_the_known_vector() {
        let sip = sip_credentials_for("alice", "herald.example", "secret");
        assert_eq!(sip.realm, "herald.example");
        assert_eq!(
            sip.ha1,
            vec![
                (DigestAlgorithm::Sha256, ALICE_SHA256.to_owned()),
                (DigestAlgorithm::Md5, ALICE_MD5.to_owned()),
            ]
        );
    }

    #[test]
    fn a_password_gives_scram_and_sip_credentials_for_the_stored_name() {
        use crate::store::SqliteStore;
        let store = SqliteStore::open_in_memory().expect("store");
        // The digest covers the normalized name, whatever the admin typed.
        assert_eq!(
            add_user(&store, " Alice ", "secret", "herald.example").expect("user"),
            "alice"
        );
        let ha1 = |realm: &str, a| store.sip_credentials("alice", realm, a).expect("lookup");
        assert_eq!(
            ha1("herald.example", DigestAlgorithm::Md5).as_deref(),
            Some(ALICE_MD5)
        );
        assert_eq!(
            ha1("herald.example", DigestAlgorithm::Sha256).as_deref(),
            Some(ALICE_SHA256)
        );
        assert!(store
            .credentials("alice", ScramHash::Sha256)
            .expect("lookup")
            .is_some());
        assert!(sip_ready(&store, "alice", "herald.example").expect("ready"));
        assert!(!sip_ready(&store, "alice", "other.example").expect("ready"));

        // A new password in another realm replaces them all.
        set_password(&store, "alice", "secret", "other.example").expect("passwd");
        assert_eq!(ha1("herald.example", DigestAlgorithm::Md5), None);
        assert_eq!(
            ha1("other.example", DigestAlgorithm::Md5).as_deref(),
            Some("784d8716318d9a400b1b8e7f4d206abe")
        );
        set_password(&store, "alice", "changed", "herald.example").expect("passwd");
        let md5 = ha1("herald.example", DigestAlgorithm::Md5).expect("md5");
        assert_ne!(md5, ALICE_MD5);
        assert_eq!(
            md5,
            digest::ha1(DigestAlgorithm::Md5, "alice", "herald.example", "changed")
        );
        assert!(matches!(
            sip_ready(&store, "ghost", "herald.example"),
            Err(StoreError::NoSuchUser(_))
        ));
    }

    #[test]
    fn imported_rows_get_sip_credentials() {
        use crate::store::SqliteStore;
        let store = SqliteStore::open_in_memory().expect("store");
        let (rows, errors) = parse_import_csv("alice,secret\nbob,hunter2\n");
        assert!(errors.is_empty());
        let (prepared, errors) = prepare_rows(&rows, 4096, "herald.example");
        assert!(errors.is_empty());
        assert_eq!(store_rows(&store, prepared).expect("stored").0, 2);
        assert_eq!(
            store
                .sip_credentials("alice", "herald.example", DigestAlgorithm::Sha256)
                .expect("lookup")
                .as_deref(),
            Some(ALICE_SHA256)
        );
        assert!(sip_ready(&store, "bob", "herald.example").expect("ready"));
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
