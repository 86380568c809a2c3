//! Publications on virtual time: the four operations of RFC 3903 Table 1, expiry,
//! every refusal, the limits, and retransmitted or reordered PUBLISHes.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::sip::{parse_datagram, HeaderName, Limits};

pub(super) const ALICE: &str = "sip:alice@herald.example";

pub(super) const OPEN: &str = "<presence xmlns='urn:ietf:params:xml:ns:pidf' \
     entity='sip:alice@herald.example'><tuple id='t1'><status><basic>open</basic>\
     </status></tuple></presence>";

const CLOSED: &str = "<presence xmlns='urn:ietf:params:xml:ns:pidf' \
     entity='sip:alice@herald.example'><tuple id='t1'><status><basic>closed</basic>\
     </status></tuple></presence>";

const ON_CALL: &str = "<dialog-info xmlns='urn:ietf:params:xml:ns:dialog-info' \
     version='1' state='full' entity='sip:alice@herald.example'>\
     <dialog id='d1'><state>confirmed</state></dialog></dialog-info>";

/// A PUBLISH with the given Event, SIP-If-Match, Expires, Content-Type and body.
pub(super) fn publish(
    event: Option<&str>,
    if_match: Option<&str>,
    expires: Option<u32>,
    content_type: Option<&str>,
    body: &str,
) -> Message {
    let mut head = String::from(
        "PUBLISH sip:alice@herald.example SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKp1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@herald.example>;tag=pub\r\n\
         To: <sip:alice@herald.example>\r\n\
         Call-ID: pub1@192.0.2.1\r\n\
         CSeq: 1 PUBLISH\r\n",
    );
    if let Some(e) = event {
        head.push_str(&format!("Event: {e}\r\n"));
    }
    if let Some(t) = if_match {
        head.push_str(&format!("SIP-If-Match: {t}\r\n"));
    }
    if let Some(x) = expires {
        head.push_str(&format!("Expires: {x}\r\n"));
    }
    if let Some(c) = content_type {
        head.push_str(&format!("Content-Type: {c}\r\n"));
    }
    let text = format!("{head}Content-Length: {}\r\n\r\n{body}", body.len());
    parse_datagram(text.as_bytes(), &Limits::DEFAULT).unwrap_or_else(|e| panic!("{e}: {text}"))
}

pub(super) fn initial(body: &str, expires: Option<u32>) -> Message {
    publish(
        Some("presence"),
        None,
        expires,
        Some("application/pidf+xml"),
        body,
    )
}

pub(super) fn refresh(etag: &str, expires: Option<u32>) -> Message {
    publish(Some("presence"), Some(etag), expires, None, "")
}

fn modify(etag: &str, body: &str) -> Message {
    publish(
        Some("presence"),
        Some(etag),
        None,
        Some("application/pidf+xml"),
        body,
    )
}

pub(super) fn remove(etag: &str) -> Message {
    publish(Some("presence"), Some(etag), Some(0), None, "")
}

pub(super) fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

fn code(o: &PublishOutcome) -> u16 {
    o.response.status_line().unwrap().code
}

fn header<'a>(o: &'a PublishOutcome, name: &HeaderName) -> Option<&'a str> {
    o.response.header(name)
}

pub(super) fn etag(o: &PublishOutcome) -> String {
    header(o, &HeaderName::SipETag).unwrap().to_owned()
}

fn alice(package: Package) -> Change {
    Change {
        presentity: ALICE.into(),
        package,
    }
}

fn store() -> Publications {
    Publications::new(PublicationConfig::default())
}

fn basic_of(store: &Publications) -> Vec<bool> {
    store.pidfs(ALICE).iter().map(|d| d.is_open()).collect()
}

#[test]
fn initial_publication_is_stored_with_an_etag_and_expiry() {
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    let o = s.on_publish(ALICE, &initial(OPEN, Some(600)), now, &mut r);
    assert_eq!(code(&o), 200);
    assert_eq!(header(&o, &HeaderName::Expires), Some("600"));
    assert!(o
        .response
        .header(&HeaderName::To)
        .unwrap()
        .contains(";tag="));
    assert_eq!(o.changes, vec![alice(Package::Presence)]);
    let tag = etag(&o);
    let docs: Vec<_> = s.documents(ALICE, Package::Presence).collect();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].0, tag);
    assert_eq!(docs[0].1.body, OPEN.as_bytes());
    assert_eq!(basic_of(&s), [true]);
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(600)));
}

#[test]
fn default_and_clamped_expiry() {
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    let o = s.on_publish(ALICE, &initial(OPEN, None), now, &mut r);
    assert_eq!(header(&o, &HeaderName::Expires), Some("3600"));
    let o = s.on_publish(ALICE, &initial(OPEN, Some(100_000)), now, &mut r);
    assert_eq!(header(&o, &HeaderName::Expires), Some("3600"));
}

#[test]
fn refresh_issues_a_new_etag_and_retires_the_old_one() {
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    let first = etag(&s.on_publish(ALICE, &initial(OPEN, Some(600)), now, &mut r));
    let later = now + Duration::from_secs(500);
    let o = s.on_publish(ALICE, &refresh(&first, Some(600)), later, &mut r);
    assert_eq!(code(&o), 200);
    assert!(o.changes.is_empty(), "a refresh changes no state");
    let second = etag(&o);
    assert_ne!(first, second);
    assert_eq!(basic_of(&s), [true], "the document is kept");
    assert_eq!(
        s.expires_at(ALICE, &second),
        Some(later + Duration::from_secs(600))
    );
    // The old tag is gone: a retransmission of the refresh fails.
    let again = s.on_publish(ALICE, &refresh(&first, Some(600)), later, &mut r);
    assert_eq!(code(&again), 412);
    assert_eq!(s.count(ALICE), 1);
}

#[test]
fn modify_replaces_the_document() {
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    let first = etag(&s.on_publish(ALICE, &initial(OPEN, None), now, &mut r));
    let o = s.on_publish(ALICE, &modify(&first, CLOSED), now, &mut r);
    assert_eq!(code(&o), 200);
    assert_eq!(o.changes, vec![alice(Package::Presence)]);
    assert_ne!(etag(&o), first);
    assert_eq!(basic_of(&s), [false]);
    assert_eq!(s.count(ALICE), 1);
}

#[test]
fn expires_zero_removes_and_answers_with_expires_zero() {
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    let first = etag(&s.on_publish(ALICE, &initial(OPEN, None), now, &mut r));
    let o = s.on_publish(ALICE, &remove(&first), now, &mut r);
    assert_eq!(code(&o), 200);
    assert_eq!(header(&o, &HeaderName::Expires), Some("0"));
    assert!(
        header(&o, &HeaderName::SipETag).is_some(),
        "RFC 3903 §6 step 7"
    );
    assert_eq!(o.changes, vec![alice(Package::Presence)]);
    assert!(s.is_empty());
    assert_eq!(s.poll_timeout(), None);
    // Removing again: the state is gone.
    assert_eq!(
        code(&s.on_publish(ALICE, &remove(&first), now, &mut r)),
        412
    );
}

#[test]
fn initial_with_expires_zero_stores_nothing() {
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    let o = s.on_publish(ALICE, &initial(OPEN, Some(0)), now, &mut r);
    assert_eq!(code(&o), 200);
    assert_eq!(header(&o, &HeaderName::Expires), Some("0"));
    assert!(o.changes.is_empty());
    assert!(s.is_empty());
}

#[test]
fn expiry_removes_on_timeout_and_the_etag_then_fails() {
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    let tag = etag(&s.on_publish(ALICE, &initial(OPEN, Some(60)), now, &mut r));
    let early = now + Duration::from_secs(59);
    assert!(s.handle_timeout(early).is_empty());
    let at = s.poll_timeout().unwrap();
    assert_eq!(at, now + Duration::from_secs(60));
    assert_eq!(s.handle_timeout(at), vec![alice(Package::Presence)]);
    assert!(s.is_empty());
    assert_eq!(
        code(&s.on_publish(ALICE, &refresh(&tag, None), at, &mut r)),
        412
    );
}

#[test]
fn a_publish_after_an_unhandled_expiry_reports_it() {
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    let tag = etag(&s.on_publish(ALICE, &initial(OPEN, Some(60)), now, &mut r));
    let late = now + Duration::from_secs(61);
    let o = s.on_publish(ALICE, &refresh(&tag, None), late, &mut r);
    assert_eq!(code(&o), 412);
    assert_eq!(o.changes, vec![alice(Package::Presence)]);
    assert!(s.is_empty());
}

#[test]
fn unknown_etag_is_412() {
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    s.on_publish(ALICE, &initial(OPEN, None), now, &mut r);
    let o = s.on_publish(ALICE, &refresh("nosuchtag", None), now, &mut r);
    assert_eq!(code(&o), 412);
    // Another presentity's tag, or the same tag under another package, fails too.
    let bob = "sip:bob@herald.example";
    let tag = etag(&s.on_publish(bob, &initial(OPEN, None), now, &mut r));
    assert_eq!(
        code(&s.on_publish(ALICE, &refresh(&tag, None), now, &mut r)),
        412
    );
    let dialog = publish(Some("dialog"), Some(&tag), None, None, "");
    assert_eq!(code(&s.on_publish(bob, &dialog, now, &mut r)), 412);
}

#[test]
fn missing_or_unknown_event_is_489_with_allow_events() {
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    for event in [None, Some("message-summary"), Some("presence.winfo")] {
        let m = publish(event, None, None, Some("application/pidf+xml"), OPEN);
        let o = s.on_publish(ALICE, &m, now, &mut r);
        assert_eq!(code(&o), 489, "{event:?}");
        assert_eq!(
            header(&o, &HeaderName::AllowEvents),
            Some("presence, dialog")
        );
    }
    let config = PublicationConfig {
        packages: vec![Package::Presence],
        ..PublicationConfig::default()
    };
    let mut only_presence = Publications::new(config);
    let m = publish(
        Some("dialog"),
        None,
        None,
        Some("application/dialog-info+xml"),
        ON_CALL,
    );
    let o = only_presence.on_publish(ALICE, &m, now, &mut r);
    assert_eq!(code(&o), 489);
    assert_eq!(header(&o, &HeaderName::AllowEvents), Some("presence"));
    assert!(s.is_empty());
}

#[test]
fn wrong_content_type_is_415_with_accept() {
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    for ct in [
        Some("text/plain"),
        Some("application/dialog-info+xml"),
        None,
    ] {
        let m = publish(Some("presence"), None, None, ct, OPEN);
        let o = s.on_publish(ALICE, &m, now, &mut r);
        assert_eq!(code(&o), 415, "{ct:?}");
        assert_eq!(
            header(&o, &HeaderName::Accept),
            Some("application/pidf+xml, application/cpim-pidf+xml")
        );
    }
    let m = publish(
        Some("dialog"),
        None,
        None,
        Some("application/pidf+xml"),
        OPEN,
    );
    let o = s.on_publish(ALICE, &m, now, &mut r);
    assert_eq!(
        header(&o, &HeaderName::Accept),
        Some("application/dialog-info+xml")
    );
    assert!(s.is_empty());
}

#[test]
fn too_brief_is_423_with_min_expires() {
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    let o = s.on_publish(ALICE, &initial(OPEN, Some(30)), now, &mut r);
    assert_eq!(code(&o), 423);
    assert_eq!(header(&o, &HeaderName::MinExpires), Some("60"));
    let tag = etag(&s.on_publish(ALICE, &initial(OPEN, None), now, &mut r));
    assert_eq!(
        code(&s.on_publish(ALICE, &refresh(&tag, Some(1)), now, &mut r)),
        423
    );
    assert_eq!(s.count(ALICE), 1, "a refused refresh keeps the state");
}

#[test]
fn initial_without_body_is_400() {
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    let m = publish(Some("presence"), None, None, None, "");
    let o = s.on_publish(ALICE, &m, now, &mut r);
    assert_eq!(code(&o), 400);
    assert_eq!(o.response.status_line().unwrap().reason, "Missing Body");
}

#[test]
fn bad_documents_are_400_with_the_reason() {
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    for body in [
        "<presence",
        "<foo xmlns='x'/>",
        "<presence xmlns='urn:ietf:params:xml:ns:pidf'/>",
    ] {
        let o = s.on_publish(ALICE, &initial(body, None), now, &mut r);
        assert_eq!(code(&o), 400, "{body}");
        assert!(o
            .response
            .status_line()
            .unwrap()
            .reason
            .starts_with("Bad Body: "));
    }
    let m = publish(
        Some("presence"),
        None,
        None,
        Some("application/pidf+xml;charset=UTF-8"),
        OPEN,
    );
    assert_eq!(
        code(&s.on_publish(ALICE, &m, now, &mut r)),
        200,
        "parameters allowed"
    );
}

#[test]
fn malformed_headers_are_400() {
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    let mut m = initial(OPEN, None);
    m.push_header(HeaderName::Expires, "soon");
    assert_eq!(code(&s.on_publish(ALICE, &m, now, &mut r)), 400);
    let mut m = refresh("a", None);
    m.push_header(HeaderName::SipIfMatch, "b");
    assert_eq!(code(&s.on_publish(ALICE, &m, now, &mut r)), 400);
    let mut m = publish(Some("presence"), None, None, None, "");
    m.push_header(HeaderName::SipIfMatch, "not a token");
    assert_eq!(code(&s.on_publish(ALICE, &m, now, &mut r)), 400);
}

#[test]
fn document_size_bound_is_413() {
    let config = PublicationConfig {
        max_document_bytes: 64,
        ..PublicationConfig::default()
    };
    let (mut s, now, mut r) = (Publications::new(config), Instant::now(), rng());
    assert_eq!(
        code(&s.on_publish(ALICE, &initial(OPEN, None), now, &mut r)),
        413
    );
}

#[test]
fn per_presentity_limit_is_403_and_total_limit_503() {
    let config = PublicationConfig {
        max_per_presentity: 2,
        max_total: 3,
        ..PublicationConfig::default()
    };
    let (mut s, now, mut r) = (Publications::new(config), Instant::now(), rng());
    let a1 = etag(&s.on_publish(ALICE, &initial(OPEN, None), now, &mut r));
    s.on_publish(ALICE, &initial(OPEN, None), now, &mut r);
    let o = s.on_publish(ALICE, &initial(OPEN, None), now, &mut r);
    assert_eq!(code(&o), 403);
    // Refresh and modify need no room.
    let a1 = etag(&s.on_publish(ALICE, &refresh(&a1, None), now, &mut r));
    assert_eq!(
        code(&s.on_publish(ALICE, &modify(&a1, CLOSED), now, &mut r)),
        200
    );
    let bob = "sip:bob@herald.example";
    assert_eq!(
        code(&s.on_publish(bob, &initial(OPEN, None), now, &mut r)),
        200
    );
    let o = s.on_publish(bob, &initial(OPEN, None), now, &mut r);
    assert_eq!(code(&o), 503);
    assert_eq!(
        o.response.header(&HeaderName::Other("Retry-After".into())),
        Some("60")
    );
    assert_eq!(s.len(), 3);
    assert!(s.index_consistent());
}

#[test]
fn dialog_publications_tell_whether_the_user_is_on_a_call() {
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    assert!(!s.on_call(ALICE));
    let m = publish(
        Some("dialog"),
        None,
        None,
        Some("application/dialog-info+xml"),
        ON_CALL,
    );
    let o = s.on_publish(ALICE, &m, now, &mut r);
    assert_eq!(code(&o), 200);
    assert_eq!(o.changes, vec![alice(Package::Dialog)]);
    assert!(s.on_call(ALICE));
    assert!(
        s.pidfs(ALICE).is_empty(),
        "dialog state is not presence state"
    );
    assert_eq!(s.documents(ALICE, Package::Dialog).count(), 1);
}

#[test]
fn remove_presentity_drops_everything() {
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    s.on_publish(ALICE, &initial(OPEN, None), now, &mut r);
    s.on_publish(ALICE, &initial(OPEN, None), now, &mut r);
    let bob = "sip:bob@herald.example";
    s.on_publish(bob, &initial(OPEN, None), now, &mut r);
    assert_eq!(s.remove_presentity(ALICE), vec![alice(Package::Presence)]);
    assert_eq!(s.count(ALICE), 0);
    assert_eq!(s.len(), 1);
    assert!(s.remove_presentity(ALICE).is_empty());
    assert!(s.index_consistent());
}

#[test]
fn duplicated_initial_publish_creates_two_publications() {
    // A retransmitted initial PUBLISH that reaches the store twice (its transaction
    // lost) is a second publication; the first expires unrefreshed.
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    let a = etag(&s.on_publish(ALICE, &initial(OPEN, Some(60)), now, &mut r));
    let b = etag(&s.on_publish(ALICE, &initial(OPEN, Some(60)), now, &mut r));
    assert_ne!(a, b);
    assert_eq!(s.count(ALICE), 2);
    let later = now + Duration::from_secs(30);
    let b = etag(&s.on_publish(ALICE, &refresh(&b, Some(60)), later, &mut r));
    let changes = s.handle_timeout(now + Duration::from_secs(60));
    assert_eq!(changes, vec![alice(Package::Presence)]);
    let left: Vec<_> = s
        .documents(ALICE, Package::Presence)
        .map(|(t, _)| t)
        .collect();
    assert_eq!(left, [b.as_str()]);
}

#[test]
fn reordered_modify_after_refresh_is_412() {
    // The publisher refreshed (new tag) but a modify built on the old tag arrives late.
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    let a = etag(&s.on_publish(ALICE, &initial(OPEN, None), now, &mut r));
    s.on_publish(ALICE, &refresh(&a, None), now, &mut r);
    let o = s.on_publish(ALICE, &modify(&a, CLOSED), now, &mut r);
    assert_eq!(code(&o), 412);
    assert!(o.changes.is_empty());
    assert_eq!(basic_of(&s), [true]);
}

#[test]
fn non_publish_is_refused() {
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    let text = "OPTIONS sip:alice@herald.example SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKo\r\n\
         From: <sip:a@b>;tag=x\r\nTo: <sip:alice@herald.example>\r\n\
         Call-ID: o@h\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let m = parse_datagram(text.as_bytes(), &Limits::DEFAULT).unwrap();
    assert_eq!(code(&s.on_publish(ALICE, &m, now, &mut r)), 400);
}

#[test]
fn event_names_ignore_case_and_params() {
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    let m = publish(
        Some("Presence;id=1"),
        None,
        None,
        Some("Application/PIDF+XML"),
        OPEN,
    );
    assert_eq!(code(&s.on_publish(ALICE, &m, now, &mut r)), 200);
    assert_eq!(s.documents(ALICE, Package::Presence).count(), 1);
}

#[test]
fn timeout_reports_each_presentity_and_package_once() {
    let (mut s, now, mut r) = (store(), Instant::now(), rng());
    s.on_publish(ALICE, &initial(OPEN, Some(60)), now, &mut r);
    s.on_publish(ALICE, &initial(CLOSED, Some(60)), now, &mut r);
    let dialog = publish(
        Some("dialog"),
        None,
        Some(120),
        Some("application/dialog-info+xml"),
        ON_CALL,
    );
    s.on_publish(ALICE, &dialog, now, &mut r);
    let changes = s.handle_timeout(now + Duration::from_secs(3600));
    assert_eq!(
        changes,
        vec![alice(Package::Presence), alice(Package::Dialog)]
    );
    assert!(s.is_empty());
    assert!(!s.on_call(ALICE));
    assert_eq!(s.poll_timeout(), None);
}
