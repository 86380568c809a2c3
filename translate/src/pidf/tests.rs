//! Tests of the presence documents: RFC examples, refusals, limits, round trips.

use proptest::prelude::*;

use super::*;
use crate::xml::{Element, XmlError};

fn limits() -> DocLimits {
    DocLimits::default()
}

/// An RPID document in the shape of RFC 4480's examples: a tuple with a device, a
/// person on the phone, a device, and an element of an unknown namespace.
const RICH: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
    xmlns:x="urn:example:x"
    entity="pres:someone@example.com">
  <tuple id="bs35r9">
    <status><basic>open</basic><x:flag/></status>
    <dm:deviceID>urn:x-mac:0003ba4811e3</dm:deviceID>
    <rpid:class>email</rpid:class>
    <contact priority="0.8">im:someone@mobilecarrier.net</contact>
    <note xml:lang="en">Don't Disturb Please!</note>
    <note xml:lang="fr">Ne derangez pas, s'il vous plait</note>
    <timestamp>2005-05-30T22:00:29Z</timestamp>
  </tuple>
  <dm:person id="p1">
    <rpid:activities from="2005-05-30T12:00:00+05:00" until="2005-05-30T17:00:00+05:00">
      <rpid:note>Far away</rpid:note>
      <rpid:on-the-phone/>
      <rpid:meeting/>
      <rpid:other>golfing</rpid:other>
      <x:hiking/>
    </rpid:activities>
    <rpid:mood><rpid:happy/><rpid:other>content</rpid:other></rpid:mood>
    <rpid:place-type><rpid:office/></rpid:place-type>
    <dm:note>Busy day &amp; more</dm:note>
    <dm:timestamp>2005-05-30T22:00:29Z</dm:timestamp>
  </dm:person>
  <dm:device id="pc122">
    <dm:deviceID>urn:x-mac:0003ba4811e3</dm:deviceID>
    <dm:note>PC</dm:note>
  </dm:device>
  <note>top level</note>
  <x:unknown a="1">kept<x:inner/></x:unknown>
</presence>"#;

#[test]
fn rich_document_is_read() {
    let doc = Pidf::parse(RICH.as_bytes(), &limits()).unwrap();
    assert_eq!(doc.entity, "pres:someone@example.com");
    assert!(doc.is_open());
    let t = &doc.tuples[0];
    assert_eq!(t.id, "bs35r9");
    assert_eq!(t.status.basic, Some(Basic::Open));
    assert_eq!(t.status.extensions.len(), 1);
    assert_eq!(t.device_id.as_deref(), Some("urn:x-mac:0003ba4811e3"));
    let contact = t.contact.as_ref().unwrap();
    assert_eq!(contact.uri, "im:someone@mobilecarrier.net");
    assert_eq!(contact.priority, Priority::from_thousandths(800));
    assert_eq!(t.notes.len(), 2);
    assert_eq!(t.notes[1].lang.as_deref(), Some("fr"));
    assert_eq!(t.timestamp.as_deref(), Some("2005-05-30T22:00:29Z"));
    assert_eq!(t.extensions[0].name, "class");
    let p = &doc.persons[0];
    let acts = p.activities.as_ref().unwrap();
    assert_eq!(acts.items.len(), 4);
    assert!(acts.contains(&Activity::OnThePhone));
    assert!(acts.contains(&Activity::Meeting));
    assert!(acts.contains(&Activity::Other("golfing".into())));
    assert!(matches!(&acts.items[3], Activity::Extension(e) if e.name == "hiking"));
    assert_eq!(acts.notes[0].text, "Far away");
    assert_eq!(acts.until.as_deref(), Some("2005-05-30T17:00:00+05:00"));
    let mood = p.mood.as_ref().unwrap();
    assert_eq!(mood.values, vec!["happy".to_string()]);
    assert_eq!(mood.other.as_deref(), Some("content"));
    assert_eq!(p.notes[0].text, "Busy day & more");
    assert_eq!(p.extensions[0].name, "place-type");
    assert_eq!(
        doc.devices[0].device_id.as_deref(),
        Some("urn:x-mac:0003ba4811e3")
    );
    assert_eq!(doc.notes[0].text, "top level");
    assert_eq!(doc.extensions[0].name, "unknown");
    assert_eq!(doc.extensions[0].ns, "urn:example:x");
}

#[test]
fn rich_document_round_trips() {
    let doc = Pidf::parse(RICH.as_bytes(), &limits()).unwrap();
    let xml = doc.to_xml().unwrap();
    assert!(xml.starts_with("<?xml version='1.0' encoding='UTF-8'?>\n<presence xmlns="));
    assert_eq!(Pidf::parse(xml.as_bytes(), &limits()).unwrap(), doc);
}

#[test]
fn rfc3863_minimal_example() {
    let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
       <presence xmlns="urn:ietf:params:xml:ns:pidf"
           entity="pres:someone@example.com">
         <tuple id="sg89ae">
           <status>
             <basic>open</basic>
           </status>
           <contact priority="0.8">tel:+09012345678</contact>
         </tuple>
       </presence>"#;
    let doc = Pidf::parse(xml, &limits()).unwrap();
    assert_eq!(
        doc.tuples[0].contact.as_ref().unwrap().uri,
        "tel:+09012345678"
    );
    assert!(doc.persons.is_empty() && doc.extensions.is_empty());
}

#[test]
fn built_document_serializes_escaped() {
    let mut doc = Pidf::new("pres:a&b@example.com");
    let mut tuple = Tuple::new("t1", Basic::Closed);
    tuple
        .notes
        .push(Note::new("<gone> & \"back\"").with_lang("en"));
    doc.tuples.push(tuple);
    let xml = doc.to_xml().unwrap();
    assert!(xml.contains("entity='pres:a&amp;b@example.com'"), "{xml}");
    assert!(xml.contains("&lt;gone&gt; &amp; &quot;back&quot;"), "{xml}");
    assert_eq!(Pidf::parse(xml.as_bytes(), &limits()).unwrap(), doc);
}

#[test]
fn malformed_documents_are_typed_errors() {
    type Check = fn(&PidfError) -> bool;
    let cases: [(&str, Check); 10] = [
        ("<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='e'>", |e| {
            *e == PidfError::Incomplete
        }),
        ("", |e| *e == PidfError::Incomplete),
        ("<presence xmlns='urn:x' entity='e'/>", |e| {
            matches!(e, PidfError::WrongRoot { expected: "presence", .. })
        }),
        ("<presence xmlns='urn:ietf:params:xml:ns:pidf'/>", |e| {
            *e == PidfError::Missing("presence entity")
        }),
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='e'><tuple><status/></tuple></presence>",
            |e| *e == PidfError::Missing("tuple id"),
        ),
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='e'><tuple id='t'/></presence>",
            |e| *e == PidfError::Missing("tuple status"),
        ),
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='e'><tuple id='t'><status><basic>maybe</basic></status></tuple></presence>",
            |e| matches!(e, PidfError::Invalid { what: "basic status", .. }),
        ),
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='e'><tuple id='t'><status/><contact priority='1.5'>x</contact></tuple></presence>",
            |e| matches!(e, PidfError::Invalid { what: "contact priority", .. }),
        ),
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='e'><!-- c --></presence>",
            |e| matches!(e, PidfError::Xml(XmlError::RestrictedXml(_))),
        ),
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='e'><tuple id='t'><status/><contact>a</contact><contact>b</contact></tuple></presence>",
            |e| matches!(e, PidfError::Invalid { what: "contact", .. }),
        ),
    ];
    for (xml, expected) in cases {
        let err = Pidf::parse(xml.as_bytes(), &limits()).unwrap_err();
        assert!(expected(&err), "{xml}: {err:?}");
    }
}

#[test]
fn limits_are_enforced() {
    let small = DocLimits {
        max_bytes: 100,
        ..DocLimits::default()
    };
    let big = format!(
        "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='{}'/>",
        "x".repeat(100)
    );
    assert!(matches!(
        Pidf::parse(big.as_bytes(), &small),
        Err(PidfError::TooLarge(_))
    ));
    let few = DocLimits {
        max_items: 2,
        ..DocLimits::default()
    };
    let tuples = "<tuple id='t'><status/></tuple>".repeat(3);
    let doc =
        format!("<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='e'>{tuples}</presence>");
    assert_eq!(
        Pidf::parse(doc.as_bytes(), &few),
        Err(PidfError::TooMany("tuples"))
    );
    let deep = format!(
        "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='e'>{}{}</presence>",
        "<a>".repeat(40),
        "</a>".repeat(40)
    );
    assert!(matches!(
        Pidf::parse(deep.as_bytes(), &limits()),
        Err(PidfError::Xml(XmlError::LimitExceeded(_)))
    ));
    let notes = "<note>n</note>".repeat(17);
    let doc =
        format!("<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='e'>{notes}</presence>");
    assert_eq!(
        Pidf::parse(doc.as_bytes(), &limits()),
        Err(PidfError::TooMany("notes"))
    );
}

#[test]
fn priorities_parse_and_print_as_qvalues() {
    for (s, n, shown) in [
        ("0", 0, "0"),
        ("0.", 0, "0"),
        ("0.5", 500, "0.5"),
        ("0.25", 250, "0.25"),
        ("0.125", 125, "0.125"),
        ("1", 1000, "1"),
        ("1.000", 1000, "1"),
    ] {
        let p = Priority::parse(s).unwrap();
        assert_eq!(p.thousandths(), n, "{s}");
        assert_eq!(p.to_string(), shown);
    }
    for s in ["", "2", "1.1", "0.1234", "-0", "0.x", ".5", "01"] {
        assert_eq!(Priority::parse(s), None, "{s:?}");
    }
}

#[test]
fn every_named_activity_round_trips_by_name() {
    let names: Vec<_> = Activity::named().collect();
    assert_eq!(names.len(), 25);
    for a in names {
        let name = a.name().unwrap();
        assert_eq!(Activity::from_name(name), Some(a));
    }
}

#[test]
fn serializer_refuses_names_built_from_data() {
    let mut doc = Pidf::new("e");
    let mut person = Person::new("p");
    person.mood = Some(Mood {
        values: vec!["happy/><x".into()],
        ..Mood::default()
    });
    doc.persons.push(person);
    assert!(matches!(doc.to_xml(), Err(PidfError::Serialize(_))));
}

// ----- dialog-info -----

const DIALOGS: &str = r#"<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"
    version="1" state="full" entity="sip:alice@example.com">
  <dialog id="as7d900as8" call-id="a84b4c76e66710" local-tag="1928301774"
      remote-tag="456887766" direction="initiator">
    <state event="replaced" code="200">confirmed</state>
    <duration>274</duration>
    <local>
      <identity display="Alice">sip:alice@example.com</identity>
      <target uri="sip:alice@pc33.example.com"/>
    </local>
    <remote>
      <identity>sip:bob@example.org</identity>
      <target uri="sip:bobster@phone21.example.org"/>
    </remote>
    <replaces call-id="hjfd" local-tag="1" remote-tag="2"/>
  </dialog>
  <dialog id="x"><state>terminated</state></dialog>
</dialog-info>"#;

#[test]
fn dialog_info_is_read_and_round_trips() {
    let info = DialogInfo::parse(DIALOGS.as_bytes(), &limits()).unwrap();
    assert_eq!(info.version, 1);
    assert_eq!(info.state, DocState::Full);
    assert_eq!(info.entity, "sip:alice@example.com");
    let d = &info.dialogs[0];
    assert_eq!(d.state, DialogState::Confirmed);
    assert_eq!(d.state_code, Some(200));
    assert_eq!(d.state_event.as_deref(), Some("replaced"));
    assert_eq!(d.direction, Some(DialogDirection::Initiator));
    assert_eq!(d.duration, Some(274));
    let local = d.local.as_ref().unwrap();
    assert_eq!(local.display.as_deref(), Some("Alice"));
    assert_eq!(local.target.as_deref(), Some("sip:alice@pc33.example.com"));
    assert_eq!(d.extensions[0].name, "replaces");
    assert!(info.is_on_call());
    assert!(info.is_talking());
    let again = DialogInfo::parse(info.to_xml().unwrap().as_bytes(), &limits()).unwrap();
    assert_eq!(again, info);
}

#[test]
fn on_call_means_a_confirmed_or_early_dialog() {
    for (state, on_call) in [
        (DialogState::Trying, false),
        (DialogState::Proceeding, false),
        (DialogState::Early, true),
        (DialogState::Confirmed, true),
        (DialogState::Terminated, false),
    ] {
        let mut info = DialogInfo::new("sip:a@b", 0, DocState::Partial);
        info.dialogs.push(Dialog::new("d", state));
        assert_eq!(info.is_on_call(), on_call, "{state:?}");
    }
    assert!(!DialogInfo::new("sip:a@b", 0, DocState::Full).is_on_call());
}

#[test]
fn partial_notifications_keep_the_view_current() {
    let mut view = DialogInfo::new("sip:alice@example.com", 0, DocState::Full);
    assert!(!view.is_on_call());
    let mut ringing = DialogInfo::new("sip:alice@example.com", 1, DocState::Partial);
    ringing.dialogs.push(Dialog::new("d1", DialogState::Early));
    assert_eq!(view.apply(ringing.clone()), Applied::Updated);
    assert!(view.is_on_call() && !view.is_talking());
    assert_eq!(view.apply(ringing), Applied::Ignored, "same version again");
    let mut answered = DialogInfo::new("sip:alice@example.com", 2, DocState::Partial);
    answered
        .dialogs
        .push(Dialog::new("d1", DialogState::Confirmed));
    answered
        .dialogs
        .push(Dialog::new("d2", DialogState::Trying));
    assert_eq!(view.apply(answered), Applied::Updated);
    assert!(view.is_talking());
    assert_eq!(view.dialogs.len(), 2);
    let mut hung_up = DialogInfo::new("sip:alice@example.com", 3, DocState::Partial);
    hung_up
        .dialogs
        .push(Dialog::new("d1", DialogState::Terminated));
    assert_eq!(view.apply(hung_up), Applied::Updated);
    assert!(!view.is_on_call());
    assert_eq!(view.dialogs.len(), 1, "d2 is still trying");
    let skipped = DialogInfo::new("sip:alice@example.com", 5, DocState::Partial);
    assert_eq!(view.apply(skipped), Applied::Gap);
    assert_eq!(view.version, 3);
    let mut full = DialogInfo::new("sip:alice@example.com", 9, DocState::Full);
    full.dialogs.push(Dialog::new("d3", DialogState::Confirmed));
    full.dialogs
        .push(Dialog::new("d4", DialogState::Terminated));
    assert_eq!(view.apply(full), Applied::Updated);
    assert_eq!(view.version, 9);
    assert_eq!(view.dialogs.len(), 1);
    assert!(view.is_talking());
}

#[test]
fn dialog_info_refusals() {
    let head = "<dialog-info xmlns='urn:ietf:params:xml:ns:dialog-info'";
    for (xml, what) in [
        (format!("{head} state='full' entity='e'/>"), "version"),
        (format!("{head} version='x' state='full' entity='e'/>"), "x"),
        (format!("{head} version='1' state='half' entity='e'/>"), "half"),
        (
            format!("{head} version='1' state='full' entity='e'><dialog id='d'><state>ringing</state></dialog></dialog-info>"),
            "ringing",
        ),
        (
            format!("{head} version='1' state='full' entity='e'><dialog id='d'/></dialog-info>"),
            "dialog state",
        ),
    ] {
        let err = DialogInfo::parse(xml.as_bytes(), &limits()).unwrap_err();
        assert!(err.to_string().contains(what), "{xml}: {err}");
    }
}

// ----- watcherinfo -----

const WINFO: &str = r#"<?xml version="1.0"?>
<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full">
  <watcher-list resource="sip:professor@example.net" package="presence">
    <watcher status="active" id="8ajksjda7s" duration-subscribed="509"
        event="approved">sip:userA@example.net</watcher>
    <watcher status="pending" id="hh8juja87s997-ass7" display-name="Mr. Subscriber"
        event="subscribe" xml:lang="en">sip:userB@example.org</watcher>
  </watcher-list>
</watcherinfo>"#;

#[test]
fn watcherinfo_is_read_and_round_trips() {
    let info = WatcherInfo::parse(WINFO.as_bytes(), &limits()).unwrap();
    assert_eq!(info.state, DocState::Full);
    let list = &info.lists[0];
    assert_eq!(list.resource, "sip:professor@example.net");
    assert_eq!(list.package, "presence");
    assert_eq!(list.watchers[0].status, WatcherStatus::Active);
    assert_eq!(list.watchers[0].event, WatcherEvent::Approved);
    assert_eq!(list.watchers[0].duration_subscribed, Some(509));
    assert_eq!(list.watchers[1].uri, "sip:userB@example.org");
    assert_eq!(
        list.watchers[1].display_name.as_deref(),
        Some("Mr. Subscriber")
    );
    assert_eq!(list.watchers[1].lang.as_deref(), Some("en"));
    let again = WatcherInfo::parse(info.to_xml().unwrap().as_bytes(), &limits()).unwrap();
    assert_eq!(again, info);
}

#[test]
fn watcherinfo_is_built_for_an_xmpp_watcher() {
    let mut info = WatcherInfo::new(3, DocState::Partial);
    let mut list = WatcherList::new("sip:alice@example.com", "presence");
    let mut w = WatcherRecord::new(
        "w1",
        "xmpp:juliet@example.org",
        WatcherStatus::Terminated,
        WatcherEvent::Rejected,
    );
    w.expiration = Some(0);
    list.watchers.push(w);
    info.lists.push(list);
    let xml = info.to_xml().unwrap();
    assert!(
        xml.contains("status='terminated' event='rejected'"),
        "{xml}"
    );
    assert_eq!(WatcherInfo::parse(xml.as_bytes(), &limits()).unwrap(), info);
    let bad = xml.replace("rejected", "refused");
    assert!(matches!(
        WatcherInfo::parse(bad.as_bytes(), &limits()),
        Err(PidfError::Invalid {
            what: "watcher event",
            ..
        })
    ));
}

#[test]
fn bodies_are_read_by_content_type() {
    for (content_type, doc) in [
        ("application/pidf+xml", RICH),
        ("Application/PIDF+XML; charset=UTF-8", RICH),
        ("application/cpim-pidf+xml", RICH),
        ("application/dialog-info+xml", DIALOGS),
        ("application/watcherinfo+xml", WINFO),
    ] {
        let body = PresenceBody::parse(content_type, doc.as_bytes(), &limits()).unwrap();
        let again = PresenceBody::parse(
            body.content_type(),
            body.to_xml().unwrap().as_bytes(),
            &limits(),
        );
        assert_eq!(again, Ok(body), "{content_type}");
    }
    assert_eq!(
        PresenceBody::parse("application/xpidf+xml", RICH.as_bytes(), &limits()),
        Err(PidfError::UnsupportedContentType(
            "application/xpidf+xml".into()
        ))
    );
    assert!(matches!(
        PresenceBody::parse("application/pidf+xml", DIALOGS.as_bytes(), &limits()),
        Err(PidfError::WrongRoot { .. })
    ));
}

// ----- properties -----

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 <>&'\"\u{e9}\u{4e2d}]{0,12}"
}

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9:@.+_-]{1,12}"
}

fn note() -> impl Strategy<Value = Note> {
    (text(), proptest::option::of("[a-z]{2}")).prop_map(|(text, lang)| Note { text, lang })
}

fn activity() -> impl Strategy<Value = Activity> {
    prop_oneof![
        (0..25usize).prop_map(|i| Activity::named().nth(i).unwrap()),
        text().prop_map(Activity::Other),
        "[a-z]{1,8}".prop_map(|n| Activity::Extension(Element::new(n, "urn:example:ext"))),
    ]
}

fn tuple() -> impl Strategy<Value = Tuple> {
    (
        token(),
        proptest::option::of(prop_oneof![Just(Basic::Open), Just(Basic::Closed)]),
        proptest::option::of((token(), proptest::option::of(0..=1000u16))),
        proptest::collection::vec(note(), 0..3),
        proptest::option::of(token()),
        proptest::option::of(token()),
    )
        .prop_map(|(id, basic, contact, notes, timestamp, device_id)| Tuple {
            id,
            status: Status {
                basic,
                extensions: Vec::new(),
            },
            contact: contact.map(|(uri, p)| Contact {
                uri,
                priority: p.and_then(Priority::from_thousandths),
            }),
            notes,
            timestamp,
            device_id,
            extensions: Vec::new(),
        })
}

fn person() -> impl Strategy<Value = Person> {
    (
        token(),
        proptest::option::of(proptest::collection::vec(activity(), 0..4)),
        proptest::collection::vec(note(), 0..2),
    )
        .prop_map(|(id, acts, notes)| Person {
            id,
            activities: acts.map(Activities::of),
            notes,
            ..Person::default()
        })
}

proptest! {
    #[test]
    fn built_documents_round_trip(
        entity in token(),
        tuples in proptest::collection::vec(tuple(), 0..4),
        persons in proptest::collection::vec(person(), 0..2),
        notes in proptest::collection::vec(note(), 0..3),
    ) {
        let doc = Pidf { entity, tuples, persons, notes, ..Pidf::default() };
        let xml = doc.to_xml().unwrap();
        prop_assert_eq!(Pidf::parse(xml.as_bytes(), &limits()).unwrap(), doc);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(doc) = Pidf::parse(&bytes, &limits()) {
            let again = Pidf::parse(doc.to_xml().unwrap().as_bytes(), &limits()).unwrap();
            prop_assert_eq!(again, doc);
        }
        let _ = DialogInfo::parse(&bytes, &limits());
        let _ = WatcherInfo::parse(&bytes, &limits());
    }
}

/// Pieces spliced into valid documents to reach the corners of the readers.
const SPLICES: [&str; 14] = [
    "<",
    ">",
    "/",
    "'",
    "\"",
    " ",
    "x",
    "<x/>",
    "<note>n</note>",
    "</tuple>",
    "<basic>open</basic>",
    "<rpid:away/>",
    "xmlns='urn:ietf:params:xml:ns:pidf'",
    "&amp;",
];

/// Applies `edits` (position, what) to `doc`: deleting a byte, or splicing a piece.
fn mutate(doc: &str, edits: &[(prop::sample::Index, usize)]) -> Vec<u8> {
    let mut bytes = doc.as_bytes().to_vec();
    for (at, what) in edits {
        let i = at.index(bytes.len() + 1);
        match SPLICES.get(*what) {
            Some(piece) => {
                bytes.splice(i..i, piece.bytes());
            }
            None if i < bytes.len() => {
                bytes.remove(i);
            }
            None => {}
        }
    }
    bytes
}

proptest! {
    #[test]
    fn mutated_documents_round_trip_or_fail_cleanly(
        edits in proptest::collection::vec(
            (any::<prop::sample::Index>(), 0..SPLICES.len() + 4), 1..4),
    ) {
        for doc in [RICH, DIALOGS, WINFO] {
            let bytes = mutate(doc, &edits);
            if let Ok(parsed) = Pidf::parse(&bytes, &limits()) {
                let again = Pidf::parse(parsed.to_xml().unwrap().as_bytes(), &limits());
                prop_assert_eq!(again, Ok(parsed));
            }
            if let Ok(parsed) = DialogInfo::parse(&bytes, &limits()) {
                let again = DialogInfo::parse(parsed.to_xml().unwrap().as_bytes(), &limits());
                prop_assert_eq!(again, Ok(parsed));
            }
            if let Ok(parsed) = WatcherInfo::parse(&bytes, &limits()) {
                let again = WatcherInfo::parse(parsed.to_xml().unwrap().as_bytes(), &limits());
                prop_assert_eq!(again, Ok(parsed));
            }
        }
    }
}
