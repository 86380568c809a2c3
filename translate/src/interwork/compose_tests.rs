//! Composition of one presentity: XMPP sessions only, SIP publications only, both, a
//! call, closed documents and tuple id clashes.

use super::compose::{availability_rank, compose_pidf, sip_side_xmpp_presence};
use super::presence::{ResourcePresence, Show, XmppPresence};
use super::state::PresenceState;
use crate::pidf::{Activity, Basic, Device, DocLimits, Note, Pidf, Tuple};

const ALICE: &str = "sip:alice@herald.example";

fn resource<'a>(name: &'a str, presence: &'a XmppPresence) -> ResourcePresence<'a> {
    ResourcePresence {
        resource: Some(name),
        presence,
        contact: None,
    }
}

/// A published document in `state`, one tuple `id`, with an optional note.
fn published(state: PresenceState, id: &str, note: Option<&str>) -> Pidf {
    let mut doc = state.to_pidf(ALICE, id);
    if let Some(note) = note {
        doc.tuples[0].notes.push(Note::new(note));
    }
    doc
}

fn activities(doc: &Pidf) -> Vec<Activity> {
    doc.persons
        .iter()
        .filter_map(|p| p.activities.as_ref())
        .flat_map(|a| a.items.clone())
        .collect()
}

fn tuple_ids(doc: &Pidf) -> Vec<&str> {
    doc.tuples.iter().map(|t| t.id.as_str()).collect()
}

/// The composed document survives serialization and parsing.
fn round_trip(doc: &Pidf) -> Pidf {
    let xml = doc.to_xml().unwrap();
    Pidf::parse(xml.as_bytes(), &DocLimits::default()).unwrap()
}

#[test]
fn nothing_is_one_closed_tuple_and_no_sip_side() {
    let doc = compose_pidf(ALICE, &[], &[], false);
    assert_eq!(doc.entity, ALICE);
    assert_eq!(doc.tuples.len(), 1);
    assert!(!doc.is_open());
    assert_eq!(PresenceState::from_pidf(&doc), PresenceState::Offline);
    assert_eq!(sip_side_xmpp_presence(&[], false), None);
    assert_eq!(sip_side_xmpp_presence(&[], true), None);
}

#[test]
fn xmpp_only_is_a_tuple_per_resource() {
    let desk = XmppPresence::available().with_show(Show::Away);
    let phone = XmppPresence::available();
    let doc = compose_pidf(
        ALICE,
        &[resource("desk", &desk), resource("phone", &phone)],
        &[],
        false,
    );
    assert_eq!(
        tuple_ids(&doc),
        ["ID-phone", "ID-desk"],
        "most available first"
    );
    assert!(
        activities(&doc).is_empty(),
        "the most available is available"
    );
    assert_eq!(PresenceState::from_pidf(&doc), PresenceState::Available);
    assert_eq!(round_trip(&doc), doc);
}

#[test]
fn sip_only_keeps_the_published_tuples() {
    let away = published(PresenceState::Away, "pc", Some("lunch"));
    let doc = compose_pidf(ALICE, &[], &[&away], false);
    assert_eq!(tuple_ids(&doc), ["pc"]);
    assert_eq!(doc.tuples[0].notes, [Note::new("lunch")]);
    assert_eq!(activities(&doc), [Activity::Away]);
    assert_eq!(PresenceState::from_pidf(&doc), PresenceState::Away);

    let xmpp = sip_side_xmpp_presence(&[&away], false).unwrap();
    assert!(xmpp.available);
    assert_eq!(xmpp.show, Some(Show::Away));
    assert_eq!(xmpp.statuses, [Note::new("lunch")]);
}

#[test]
fn both_sources_give_the_most_available_state() {
    let dnd = XmppPresence::available().with_show(Show::Dnd);
    let meeting = published(PresenceState::InAMeeting, "pc", None);
    let phone = published(PresenceState::Available, "deskphone", None);
    let doc = compose_pidf(
        ALICE,
        &[resource("laptop", &dnd)],
        &[&meeting, &phone],
        false,
    );
    assert_eq!(tuple_ids(&doc), ["deskphone", "pc", "ID-laptop"]);
    assert_eq!(PresenceState::from_pidf(&doc), PresenceState::Available);
    assert!(activities(&doc).is_empty());

    // The SIP side alone: the available phone beats the meeting.
    let xmpp = sip_side_xmpp_presence(&[&meeting, &phone], false).unwrap();
    assert_eq!((xmpp.available, xmpp.show), (true, None));

    // XMPP away beats a SIP meeting.
    let away = XmppPresence::available().with_show(Show::Away);
    let doc = compose_pidf(ALICE, &[resource("laptop", &away)], &[&meeting], false);
    assert_eq!(activities(&doc), [Activity::Away]);
}

#[test]
fn a_call_puts_an_available_or_idle_user_on_the_phone() {
    let online = XmppPresence::available();
    let doc = compose_pidf(ALICE, &[resource("laptop", &online)], &[], true);
    assert_eq!(activities(&doc), [Activity::OnThePhone]);
    assert_eq!(PresenceState::from_pidf(&doc), PresenceState::OnThePhone);

    let idle = published(PresenceState::Away, "pc", Some("back soon"));
    let doc = compose_pidf(ALICE, &[], &[&idle], true);
    assert_eq!(activities(&doc), [Activity::OnThePhone]);
    let xmpp = sip_side_xmpp_presence(&[&idle], true).unwrap();
    assert!(xmpp.available);
    assert_eq!(xmpp.show, Some(Show::Dnd));
    assert_eq!(
        xmpp.statuses,
        [Note::new(PresenceState::OnThePhone.label())]
    );
    assert_eq!(xmpp.statuses[0].text, "On the phone");
}

#[test]
fn a_call_leaves_chosen_states_and_offline_alone() {
    let meeting = published(PresenceState::InAMeeting, "pc", Some("standup"));
    let doc = compose_pidf(ALICE, &[], &[&meeting], true);
    assert_eq!(activities(&doc), [Activity::Meeting]);
    let xmpp = sip_side_xmpp_presence(&[&meeting], true).unwrap();
    assert_eq!(xmpp.show, Some(Show::Dnd));
    assert_eq!(xmpp.statuses, [Note::new("standup")]);

    let doc = compose_pidf(ALICE, &[], &[], true);
    assert!(!doc.is_open());
    assert!(activities(&doc).is_empty());
}

#[test]
fn closed_documents_are_offline_unless_another_source_is_open() {
    let closed = published(PresenceState::Offline, "pc", Some("gone home"));
    let doc = compose_pidf(ALICE, &[], &[&closed], false);
    assert!(!doc.is_open());
    assert_eq!(doc.tuples[0].status.basic, Some(Basic::Closed));
    let xmpp = sip_side_xmpp_presence(&[&closed], true).unwrap();
    assert!(!xmpp.available, "closed stays closed on a call");
    assert_eq!(xmpp.statuses, [Note::new("gone home")]);

    let open = published(PresenceState::Available, "phone", None);
    let xmpp = sip_side_xmpp_presence(&[&closed, &open], false).unwrap();
    assert!(xmpp.available);
    let online = XmppPresence::available();
    let doc = compose_pidf(ALICE, &[resource("laptop", &online)], &[&closed], false);
    assert!(doc.is_open());
}

#[test]
fn tuple_and_device_id_clashes_are_renamed() {
    let online = XmppPresence::available();
    let mut a = published(PresenceState::Available, "ID-laptop", None);
    a.devices.push(Device::new("dev"));
    let mut b = Pidf::new(ALICE);
    b.tuples.push(Tuple::new("ID-laptop", Basic::Open));
    b.tuples.push(Tuple::new("ID-laptop-2", Basic::Open));
    b.devices.push(Device::new("dev"));
    let doc = compose_pidf(ALICE, &[resource("laptop", &online)], &[&a, &b], false);
    assert_eq!(
        tuple_ids(&doc),
        ["ID-laptop", "ID-laptop-2", "ID-laptop-3", "ID-laptop-2-2"]
    );
    let devices: Vec<_> = doc.devices.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(devices, ["dev", "dev-2"]);
    assert_eq!(round_trip(&doc), doc);
}

#[test]
fn availability_order_follows_the_xmpp_show_order() {
    let order = [
        PresenceState::Available,
        PresenceState::Away,
        PresenceState::OutOfOffice,
        PresenceState::OnThePhone,
        PresenceState::InAMeeting,
        PresenceState::Busy,
        PresenceState::DoNotDisturb,
        PresenceState::Offline,
    ];
    for pair in order.windows(2) {
        assert!(availability_rank(pair[0]) < availability_rank(pair[1]));
    }
    for state in PresenceState::ALL {
        assert!(order.contains(&state));
    }
}
