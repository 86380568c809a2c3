//! `herald xep0227 export FILE` and `herald xep0227 import FILE`: XEP-0227 (Portable
//! Import/Export Format) files, to move accounts between Herald, Prosody and ejabberd.
//!
//! What a file holds per user: the account, the roster (`jabber:iq:roster` items with
//! name, groups, subscription, `ask` and `approved`) and the offline messages
//! (`<offline-messages/>`). Block lists and pending subscription requests are not part
//! of XEP-0227 and are not exported.
//!
//! Passwords: XEP-0227 has only a plaintext `password` attribute, and Herald stores no
//! plaintext passwords, only SCRAM keys. The export therefore writes the SCRAM records
//! as extension elements, `<scram xmlns='urn:xmpp:herald:scram:0' mechanism=
//! 'SCRAM-SHA-256' iterations='4096' salt='…' stored-key='…' server-key='…'/>` (base64),
//! which a Herald import takes back unchanged, so the users keep their passwords. When a
//! SCRAM-SHA-1 salt is plain text (accounts that came from Prosody), the record is also
//! written as Prosody's `mod_auth_internal_hashed` attributes in the namespace
//! `http://prosody.im/protocol/extended-xep0227` (`salt`, `iteration_count`, hex
//! `stored_key` and `server_key`), which Prosody reads back. Other servers see no
//! password, so their users would have to set one.
//!
//! The import accepts, for a password, in this order: Herald's `scram` elements,
//! Prosody's extended attributes (SCRAM-SHA-1), ejabberd's `password='==SCRAM==,stored,
//! server,salt,iterations'` (base64, SCRAM-SHA-1), or a plaintext `password` (turned into
//! SCRAM-SHA-1 and SCRAM-SHA-256 records at once). An account without any is created
//! without credentials and reported (`herald user passwd` sets one). Only hosts Herald
//! serves are imported; existing accounts are skipped whole, so an import that stopped
//! halfway can be run again.
//!
//! SIP digest credentials (`[sip] realm`) need the password: only accounts imported
//! from a plaintext `password` get them. The others are counted in
//! [`Report::without_sip`] and cannot register over SIP until their password is set
//! again. The export writes none, so a move from one Herald to another loses them too.
//!
//! The file is read and written with Herald's own XML reader and serializer
//! (`herald_translate`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use clap::Subcommand;
use herald_core::accounts;
use herald_core::store::{
    AccountCredentials, OfflineQuota, RosterItem, Store, StoreError, Subscription,
};
use herald_translate::sasl::{ScramHash, ScramRecord};
use herald_translate::xml::escape;
use herald_translate::{ns, Element, Jid, Node, StreamEvent, StreamReader, XmlLimits};

use crate::app::{load_config, open_existing_store};
use crate::error::EdgeError;

/// XEP-0227's namespace.
pub const PIE: &str = "urn:xmpp:pie:0";
/// Herald's SCRAM extension element.
pub const HERALD_SCRAM: &str = "urn:xmpp:herald:scram:0";
/// Prosody's namespace for `mod_auth_internal_hashed` account fields.
pub const PROSODY_EXTENDED: &str = "http://prosody.im/protocol/extended-xep0227";

#[derive(Debug, Subcommand)]
pub enum Xep0227Action {
    /// Write every account with its SCRAM credentials, roster and offline messages to
    /// an XEP-0227 file (works while the server runs).
    Export {
        /// The XEP-0227 XML file to write.
        file: PathBuf,
    },
    /// Create the accounts, rosters and offline messages of an XEP-0227 file (from
    /// Herald, Prosody or ejabberd). Existing accounts are skipped.
    Import {
        /// The XEP-0227 XML file to read.
        file: PathBuf,
    },
}

/// What an export or import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub users: usize,
    pub roster_items: usize,
    pub offline_messages: usize,
    /// Accounts left alone (import: they exist already).
    pub skipped: Vec<String>,
    pub warnings: Vec<String>,
    /// Imported accounts without SIP digest credentials (the file had no plaintext
    /// password for them).
    pub without_sip: usize,
}

fn fail(msg: impl Into<String>) -> EdgeError {
    EdgeError::Command(msg.into())
}

pub fn run(config_path: Option<&Path>, action: Xep0227Action) -> Result<ExitCode, EdgeError> {
    let config = load_config(config_path)?;
    let store = open_existing_store(&config)?;
    let (report, verb, file) = match action {
        Xep0227Action::Export { file } => {
            let domain = config
                .server
                .domains
                .first()
                .map_or("localhost", String::as_str);
            let xml = export(&store, domain)?;
            let (xml, report) = xml;
            write_private(&file, xml.as_bytes())?;
            (report, "exported", file)
        }
        Xep0227Action::Import { file } => {
            let bytes = std::fs::read(&file).map_err(|source| EdgeError::File {
                path: file.clone(),
                source,
            })?;
            (
                import(&store, &config.server.domains, &config.sip_realm(), &bytes)?,
                "imported",
                file,
            )
        }
    };
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    for s in &report.skipped {
        eprintln!("skipped {s}: the account exists");
    }
    println!(
        "{verb} {} account(s), {} roster item(s), {} offline message(s) ({})",
        report.users,
        report.roster_items,
        report.offline_messages,
        file.display()
    );
    if report.without_sip > 0 {
        println!(
            "{} imported account(s) have no SIP digest credentials (the file has no \
             plaintext password for them): they cannot register over SIP until their \
             password is set again (`herald user passwd`)",
            report.without_sip
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The export holds SCRAM keys: owner-only, like the database.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), EdgeError> {
    use std::io::Write;
    let err = |source| EdgeError::File {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)
}

// ----- export -----

/// The XEP-0227 document of every account, under the host `domain`.
pub fn export(store: &dyn Store, domain: &str) -> Result<(String, Report), EdgeError> {
    let mut report = Report::default();
    let mut out = String::from("<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='");
    out.push_str(PIE);
    out.push_str("'>\n<host jid='");
    escape(&mut out, domain, true);
    out.push_str("'>\n");
    for user in store.list_users()? {
        let el = export_user(store, &user, &mut report)?;
        el.write_to(&mut out, PIE)
            .map_err(|e| fail(format!("account {user}: {e}")))?;
        out.push('\n');
        report.users += 1;
    }
    out.push_str("</host>\n</server-data>\n");
    Ok((out, report))
}

fn export_user(store: &dyn Store, user: &str, report: &mut Report) -> Result<Element, EdgeError> {
    let mut el = Element::new("user", PIE).with_attr("name", user);
    for hash in [ScramHash::Sha256, ScramHash::Sha1] {
        let Some(rec) = store.credentials(user, hash)? else {
            continue;
        };
        if hash == ScramHash::Sha1 {
            if let Some(salt) = std::str::from_utf8(&rec.salt)
                .ok()
                .filter(|s| !s.is_empty() && !s.chars().any(char::is_control))
            {
                let attr = |k: &str| format!("{{{PROSODY_EXTENDED}}}{k}");
                el.set_attr(attr("salt"), salt);
                el.set_attr(attr("iteration_count"), rec.iterations.to_string());
                el.set_attr(attr("stored_key"), hex::encode(&rec.stored_key));
                el.set_attr(attr("server_key"), hex::encode(&rec.server_key));
            }
        }
        el.push_child(
            Element::new("scram", HERALD_SCRAM)
                .with_attr("mechanism", hash.mechanism())
                .with_attr("iterations", rec.iterations.to_string())
                .with_attr("salt", B64.encode(&rec.salt))
                .with_attr("stored-key", B64.encode(&rec.stored_key))
                .with_attr("server-key", B64.encode(&rec.server_key)),
        );
    }
    let (_, items) = store.roster(user)?;
    if !items.is_empty() {
        let mut query = Element::new("query", ns::ROSTER);
        for item in items {
            query.push_child(herald_core::services::roster::item_element(&item));
            report.roster_items += 1;
        }
        el.push_child(query);
    }
    let offline = store.offline_list(user)?;
    if !offline.is_empty() {
        let mut box_ = Element::new("offline-messages", PIE);
        for m in offline {
            match parse_fragment(&m.stanza) {
                Ok(msg) => {
                    box_.push_child(msg);
                    report.offline_messages += 1;
                }
                Err(e) => report
                    .warnings
                    .push(format!("{user}: offline message {} left out: {e}", m.id)),
            }
        }
        el.push_child(box_);
    }
    Ok(el)
}

/// A stored stanza (serialized in the `jabber:client` namespace) back as an element.
fn parse_fragment(xml: &str) -> Result<Element, String> {
    let mut reader = StreamReader::new(XmlLimits {
        max_stanza_bytes: xml.len() + 1024,
        max_depth: 64,
        ..XmlLimits::default()
    });
    reader.feed(format!("<w xmlns='{}'>", ns::CLIENT).as_bytes());
    reader.feed(xml.as_bytes());
    let mut found = None;
    while let Some(ev) = reader.next_event().map_err(|e| e.to_string())? {
        if let StreamEvent::Stanza(el) = ev {
            found = Some(el);
        }
    }
    found.ok_or_else(|| "no element".to_string())
}

// ----- import -----

/// Import an XEP-0227 document into `store`. Hosts not in `domains` are skipped with a
/// warning; it is an error when no host of the file is served. Accounts with a
/// plaintext password get SIP digest credentials for `sip_realm`.
pub fn import(
    store: &dyn Store,
    domains: &[String],
    sip_realm: &str,
    xml: &[u8],
) -> Result<Report, EdgeError> {
    let hosts = parse_document(xml)?;
    let mut report = Report::default();
    let mut served = 0;
    for host in hosts {
        let jid = host.attr("jid").unwrap_or_default().to_ascii_lowercase();
        if !domains.contains(&jid) {
            report
                .warnings
                .push(format!("host {jid:?} is not a hosted domain: skipped"));
            continue;
        }
        served += 1;
        for user in host.elements().filter(|e| e.name == "user") {
            import_user(store, &jid, sip_realm, user, &mut report)?;
        }
    }
    if served == 0 {
        return Err(fail(format!(
            "no <host/> in the file is one of the hosted domains ({})",
            domains.join(", ")
        )));
    }
    Ok(report)
}

/// The `<host/>` elements of a `<server-data/>` document.
fn parse_document(xml: &[u8]) -> Result<Vec<Element>, EdgeError> {
    let mut reader = StreamReader::new(XmlLimits {
        max_stanza_bytes: xml.len() + 1,
        max_depth: 128,
        max_attrs: 64,
        max_name_len: 1024,
        max_header_bytes: 64 * 1024,
    });
    reader.feed(xml);
    let bad = |e: herald_translate::XmlError| fail(format!("not a XEP-0227 file: {e}"));
    let mut hosts = Vec::new();
    let mut closed = false;
    while let Some(ev) = reader.next_event().map_err(bad)? {
        match ev {
            StreamEvent::Open(root) => {
                if root.name != "server-data" || root.ns != PIE {
                    return Err(fail(format!(
                        "not a XEP-0227 file: the root is <{}/> in {:?}, not <server-data/> in {PIE}",
                        root.name, root.ns
                    )));
                }
            }
            StreamEvent::Stanza(el) if el.name == "host" && el.ns == PIE => hosts.push(el),
            StreamEvent::Stanza(_) => {}
            StreamEvent::Close => closed = true,
        }
    }
    if !closed {
        return Err(fail("not a XEP-0227 file: the document is incomplete"));
    }
    Ok(hosts)
}

fn import_user(
    store: &dyn Store,
    host: &str,
    sip_realm: &str,
    user: &Element,
    report: &mut Report,
) -> Result<(), EdgeError> {
    let raw = user.attr("name").unwrap_or_default();
    let name = match accounts::normalize_username(raw) {
        Ok(n) => n,
        Err(e) => {
            report.warnings.push(format!("user {raw:?} skipped: {e}"));
            return Ok(());
        }
    };
    let creds = credentials_of(user, &name, sip_realm, report);
    if creds.scram.is_empty() {
        report.warnings.push(format!(
            "{name}@{host}: no usable password in the file; the account has none \
             (set one with `herald user passwd {name}`)"
        ));
    }
    match store.create_user(&name, &creds) {
        Ok(()) => {}
        Err(StoreError::UserExists(_)) => {
            report.skipped.push(format!("{name}@{host}"));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    }
    report.users += 1;
    if creds.sip.is_none() {
        report.without_sip += 1;
    }
    for query in user
        .elements()
        .filter(|e| e.name == "query" && e.ns == ns::ROSTER)
    {
        for item in query.elements().filter(|e| e.name == "item") {
            match roster_item(item) {
                Ok(Some(ri)) => {
                    store.roster_put(&name, &ri)?;
                    report.roster_items += 1;
                }
                Ok(None) => {}
                Err(e) => report
                    .warnings
                    .push(format!("{name}@{host}: roster item: {e}")),
            }
        }
    }
    let own = format!("{name}@{host}");
    let quota = OfflineQuota {
        messages: usize::MAX,
        bytes: usize::MAX,
    };
    for box_ in user.elements().filter(|e| e.name == "offline-messages") {
        for msg in box_.elements().filter(|e| e.name == "message") {
            let xml = offline_stanza(msg.clone(), &own, host)
                .map_err(|e| fail(format!("{own}: offline message: {e}")))?;
            store.offline_push(&name, &xml, quota)?;
            report.offline_messages += 1;
        }
    }
    Ok(())
}

/// The credentials a `<user/>` element carries (see the module documentation): SCRAM
/// records, and SIP digest credentials for `sip_realm` when the password is plaintext.
fn credentials_of(
    user: &Element,
    name: &str,
    sip_realm: &str,
    report: &mut Report,
) -> AccountCredentials {
    let mut creds: Vec<ScramRecord> = Vec::new();
    for el in user
        .elements()
        .filter(|e| e.name == "scram" && e.ns == HERALD_SCRAM)
    {
        match herald_scram(el) {
            Ok(r) => creds.push(r),
            Err(e) => report
                .warnings
                .push(format!("{name}: SCRAM record ignored: {e}")),
        }
    }
    if creds.is_empty() {
        match prosody_scram(user) {
            Some(Ok(r)) => creds.push(r),
            Some(Err(e)) => report
                .warnings
                .push(format!("{name}: Prosody SCRAM fields ignored: {e}")),
            None => {}
        }
    }
    if creds.is_empty() {
        if let Some(pw) = user.attr("password").filter(|p| !p.is_empty()) {
            if let Some(fields) = pw.strip_prefix("==SCRAM==,") {
                match ejabberd_scram(fields) {
                    Ok(r) => creds.push(r),
                    Err(e) => report
                        .warnings
                        .push(format!("{name}: ejabberd SCRAM password ignored: {e}")),
                }
            } else {
                match accounts::account_credentials(
                    name,
                    pw,
                    sip_realm,
                    accounts::DEFAULT_ITERATIONS,
                ) {
                    Ok(c) => return c,
                    Err(e) => report
                        .warnings
                        .push(format!("{name}: password ignored: {e}")),
                }
            }
        }
    }
    creds.into()
}

fn b64(v: &str) -> Result<Vec<u8>, String> {
    B64.decode(v.trim()).map_err(|e| format!("bad base64: {e}"))
}

fn record(
    hash: ScramHash,
    salt: Vec<u8>,
    iterations: &str,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
) -> Result<ScramRecord, String> {
    let iterations: u32 = iterations
        .trim()
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or("bad iteration count")?;
    let len = hash.output_len();
    if stored_key.len() != len || server_key.len() != len || salt.is_empty() {
        return Err(format!("keys must be {len} bytes and the salt non-empty"));
    }
    Ok(ScramRecord {
        hash,
        salt,
        iterations,
        stored_key,
        server_key,
    })
}

fn herald_scram(el: &Element) -> Result<ScramRecord, String> {
    let get = |k: &str| el.attr(k).ok_or(format!("{k} missing"));
    let hash = ScramHash::from_mechanism(get("mechanism")?).ok_or("unknown mechanism")?;
    record(
        hash,
        b64(get("salt")?)?,
        get("iterations")?,
        b64(get("stored-key")?)?,
        b64(get("server-key")?)?,
    )
}

fn prosody_scram(user: &Element) -> Option<Result<ScramRecord, String>> {
    let get = |k: &str| user.attr(&format!("{{{PROSODY_EXTENDED}}}{k}"));
    let stored = get("stored_key")?;
    Some((|| {
        let hex_key = |v: Option<&str>| {
            hex::decode(v.unwrap_or_default().trim()).map_err(|e| format!("bad hex: {e}"))
        };
        record(
            ScramHash::Sha1,
            get("salt").unwrap_or_default().as_bytes().to_vec(),
            get("iteration_count").unwrap_or_default(),
            hex_key(Some(stored))?,
            hex_key(get("server_key"))?,
        )
    })())
}

/// `stored,server,salt,iterations`, base64 fields (ejabberd's SCRAM password form).
fn ejabberd_scram(fields: &str) -> Result<ScramRecord, String> {
    let parts: Vec<&str> = fields.split(',').collect();
    let [stored, server, salt, iterations] = parts.as_slice() else {
        return Err("expected stored key, server key, salt and iteration count".into());
    };
    record(
        ScramHash::Sha1,
        b64(salt)?,
        iterations,
        b64(stored)?,
        b64(server)?,
    )
}

fn roster_item(item: &Element) -> Result<Option<RosterItem>, String> {
    let raw = item.attr("jid").ok_or("no jid")?;
    let jid = Jid::parse(raw).map_err(|e| format!("{raw:?}: {e}"))?.bare();
    let subscription = match item.attr("subscription").unwrap_or("none") {
        "remove" => return Ok(None),
        s => Subscription::parse(s).ok_or(format!("{raw}: unknown subscription {s:?}"))?,
    };
    let mut groups: Vec<String> = Vec::new();
    for g in item.elements().filter(|e| e.name == "group") {
        let g = g.text();
        if !g.is_empty() && !groups.contains(&g) {
            groups.push(g);
        }
    }
    Ok(Some(RosterItem {
        jid: jid.to_string(),
        name: item
            .attr("name")
            .filter(|n| !n.is_empty())
            .map(str::to_string),
        subscription,
        ask: item.attr("ask") == Some("subscribe"),
        approved: matches!(item.attr("approved"), Some("true" | "1")),
        groups,
    }))
}

/// An offline message ready to store: in `jabber:client` (a file may leave the
/// namespace out and so put it in XEP-0227's), addressed to the user, with a delay
/// stamp (the import time when the file has none).
fn offline_stanza(mut msg: Element, own: &str, host: &str) -> Result<String, String> {
    fn to_client(el: &mut Element) {
        if el.ns == PIE {
            el.ns = ns::CLIENT.to_string();
            for c in &mut el.children {
                if let Node::Element(e) = c {
                    to_client(e);
                }
            }
        }
    }
    to_client(&mut msg);
    if msg.attr("to").is_none() {
        msg.set_attr("to", own);
    }
    if !msg.has_child("delay", ns::DELAY) {
        let stamp = herald_core::time::xep0082(herald_core::time::now_unix_ms());
        msg.push_child(
            Element::new("delay", ns::DELAY)
                .with_attr("from", host)
                .with_attr("stamp", stamp)
                .with_text("Offline Storage"),
        );
    }
    msg.to_xml(ns::CLIENT).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scram_forms_are_read() {
        let r = ejabberd_scram(&format!(
            "{},{},{},4096",
            B64.encode([1u8; 20]),
            B64.encode([2u8; 20]),
            B64.encode(b"salt")
        ))
        .expect("ejabberd form");
        assert_eq!(
            (r.hash, r.iterations, r.salt.as_slice()),
            (ScramHash::Sha1, 4096, &b"salt"[..])
        );
        assert!(ejabberd_scram("a,b").is_err());
        let el = Element::new("scram", HERALD_SCRAM)
            .with_attr("mechanism", "SCRAM-SHA-256")
            .with_attr("iterations", "10")
            .with_attr("salt", B64.encode(b"s"))
            .with_attr("stored-key", B64.encode([3u8; 32]))
            .with_attr("server-key", B64.encode([4u8; 20]));
        assert!(herald_scram(&el).is_err(), "a SHA-1-sized key for SHA-256");
    }

    #[test]
    fn offline_messages_without_namespace_are_made_client_stanzas() {
        let msg = Element::new("message", PIE)
            .with_attr("from", "bob@localhost/x")
            .with_child(Element::new("body", PIE).with_text("hi"));
        let xml = offline_stanza(msg, "alice@localhost", "localhost").expect("xml");
        assert!(xml.starts_with("<message from='bob@localhost/x' to='alice@localhost'><body>hi</body><delay xmlns='urn:xmpp:delay'"), "{xml}");
    }
}
