//! One presentity across both protocols: what SIP watchers and XMPP contacts see of a
//! user who is online through XMPP sessions, SIP publications (RFC 3903), or both.
//!
//! Every source is read as a [`PresenceState`] of Table 23-5: an XMPP resource through
//! [`PresenceState::from_xmpp`], a published PIDF document through
//! [`PresenceState::from_pidf`]. When several sources disagree the most available one
//! wins ([`availability_rank`]), as watchers of a presentity with several devices show
//! the most available status (RFC 8048), and a call ([`PresenceState::with_call`])
//! turns an available or idle user into On the phone.
//!
//! | Sources                     | SIP watchers ([`compose_pidf`])                                    | XMPP contacts, SIP side ([`sip_side_xmpp_presence`]) |
//! |-----------------------------|--------------------------------------------------------------------|------------------------------------------------------|
//! | nothing                     | one closed tuple (offline)                                         | none: unavailable                                    |
//! | XMPP sessions only          | a tuple per resource; person activity of the most available one    | none (the sessions speak for themselves)             |
//! | SIP publications only       | their tuples; person activity of the most available document       | the most available document's presence               |
//! | both                        | all tuples; activity of the most available source                  | the most available document's presence              |
//! | on a call (dialog state)    | available/idle become `on-the-phone`; other states stay            | available/idle become `dnd`, status "On the phone"   |
//! | every document closed       | closed tuples (open XMPP tuples still count)                      | unavailable, with the documents' notes               |

use super::presence::{ResourcePresence, XmppPresence};
use super::state::PresenceState;
use crate::pidf::{Activities, Basic, Note, Person, Pidf};

/// How available a state is: lower is more available. Available, then Away ("Idle on
/// all clients", XMPP `away`), Out of office (`xa`), then the `dnd` states from the
/// most to the least reachable (On the phone and In a meeting end on their own; Busy
/// and Do not disturb are the user's choice), Offline last. This follows XMPP's order
/// of `<show>` (no show, `away`, `xa`, `dnd`, unavailable).
pub fn availability_rank(state: PresenceState) -> u8 {
    match state {
        PresenceState::Available => 0,
        PresenceState::Away => 1,
        PresenceState::OutOfOffice => 2,
        PresenceState::OnThePhone => 3,
        PresenceState::InAMeeting => 4,
        PresenceState::Busy => 5,
        PresenceState::DoNotDisturb => 6,
        PresenceState::Offline => 7,
    }
}

/// The most available of `states` (the first on ties); Offline when there are none.
fn most_available(states: impl IntoIterator<Item = PresenceState>) -> PresenceState {
    states
        .into_iter()
        .min_by_key(|s| availability_rank(*s))
        .unwrap_or(PresenceState::Offline)
}

/// The document a SIP watcher of `entity` gets: a tuple per XMPP resource
/// ([`XmppPresence::to_tuple`]) and the tuples of the published documents (a tuple
/// id already taken gets `-2`, `-3`... appended, XMPP resources claiming theirs
/// first), most available source first (stable), so a reader that takes the first
/// open tuple reads the composed state; the published devices; one person
/// (`person`) with the RPID activity of the composed state (the most available
/// source, then [`PresenceState::with_call`]). Without any tuple the document has
/// one closed tuple, so the watcher reads offline; with no open tuple it is closed
/// overall. The persons of published documents (their mood, place...) are not
/// carried: the composed person speaks for the user.
pub fn compose_pidf(
    entity: &str,
    xmpp: &[ResourcePresence<'_>],
    published: &[&Pidf],
    on_call: bool,
) -> Pidf {
    let mut doc = Pidf::new(entity);
    let mut ids = Vec::new();
    // (rank of the tuple's source, tuple), ids made unique in source order.
    let mut ranked = Vec::new();
    for r in xmpp {
        let mut tuple = r.presence.to_tuple(r.resource, r.contact);
        tuple.id = unique_id(&tuple.id, &ids);
        ids.push(tuple.id.clone());
        ranked.push((
            availability_rank(PresenceState::from_xmpp(r.presence)),
            tuple,
        ));
    }
    let mut device_ids = Vec::new();
    for source in published {
        let rank = availability_rank(PresenceState::from_pidf(source));
        for tuple in &source.tuples {
            let mut tuple = tuple.clone();
            tuple.id = unique_id(&tuple.id, &ids);
            ids.push(tuple.id.clone());
            let open = tuple.status.basic == Some(Basic::Open);
            let offline = availability_rank(PresenceState::Offline);
            ranked.push((if open { rank } else { offline }, tuple));
        }
        for device in &source.devices {
            let mut device = device.clone();
            device.id = unique_id(&device.id, &device_ids);
            device_ids.push(device.id.clone());
            doc.devices.push(device);
        }
    }
    ranked.sort_by_key(|(rank, _)| *rank);
    doc.tuples = ranked.into_iter().map(|(_, tuple)| tuple).collect();
    if doc.tuples.is_empty() {
        doc.tuples
            .push(XmppPresence::unavailable().to_tuple(None, None));
    }
    let xmpp_states = xmpp.iter().map(|r| PresenceState::from_xmpp(r.presence));
    let sip_states = published.iter().map(|d| PresenceState::from_pidf(d));
    let state = most_available(xmpp_states.chain(sip_states)).with_call(on_call);
    if let (_, Some(activity)) = state.to_rpid() {
        let mut person = Person::new("person");
        person.activities = Some(Activities::of([activity]));
        doc.persons.push(person);
    }
    doc
}

/// The presence the SIP side of a user shows to XMPP contacts: `None` without any
/// published PIDF document (unavailable from the SIP side). Otherwise the presence of
/// the most available document ([`availability_rank`] of its
/// [`PresenceState::from_pidf`], the first on ties) read as RFC 8048 says
/// ([`XmppPresence::from_pidf`]: its notes become statuses, its priority the
/// priority). When a call turns that state into On the phone
/// ([`PresenceState::with_call`]), the show is `dnd` and the one status is Table
/// 23-5's "On the phone".
pub fn sip_side_xmpp_presence(published: &[&Pidf], on_call: bool) -> Option<XmppPresence> {
    let doc = published
        .iter()
        .min_by_key(|d| availability_rank(PresenceState::from_pidf(d)))?;
    let state = PresenceState::from_pidf(doc);
    let mut presence = XmppPresence::from_pidf(doc);
    let with_call = state.with_call(on_call);
    if with_call != state {
        let (available, show) = with_call.to_xmpp();
        presence.available = available;
        presence.show = show;
        presence.statuses = vec![Note::new(with_call.label())];
    }
    Some(presence)
}

/// `id`, or `id-2`, `id-3`... when taken (an `ID` stays an `ID` with a suffix).
fn unique_id(id: &str, taken: &[String]) -> String {
    if !taken.iter().any(|t| t == id) {
        return id.to_owned();
    }
    (2..)
        .map(|n| format!("{id}-{n}"))
        .find(|candidate| !taken.iter().any(|t| t == candidate))
        .unwrap_or_else(|| id.to_owned())
}
