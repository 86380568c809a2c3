//! The product's presence states, as the seed's Table 23-5 ("Mapping of Presence
//! States") lists them, and their forms in XMPP and in PIDF/RPID.
//!
//! Table 23-5 maps each Cisco IM and Presence status to a colour and to the status
//! shown to the two SIP federation partners it names:
//!
//! | State (Table 23-5)    | Colour | To Microsoft OCS | To AOL    | XMPP              | PIDF / RPID                    |
//! |-----------------------|--------|------------------|-----------|-------------------|--------------------------------|
//! | Out of office         | red    | Away             | Away      | `xa`              | open, `xa`, `vacation`         |
//! | Do not disturb        | red    | Busy             | Away      | `dnd`             | open, `dnd`, `busy`            |
//! | Busy                  | red    | Busy             | Away      | `dnd`             | open, `dnd`, `busy`            |
//! | On the phone          | yellow | Busy             | Away      | `dnd`             | open, `dnd`, `on-the-phone`    |
//! | In a meeting          | yellow | Busy             | Away      | `dnd`             | open, `dnd`, `meeting`         |
//! | Idle on all clients   | yellow | Away             | Away      | `away`            | open, `away`, `away`           |
//! | Available             | green  | Available        | Available | no `<show>`       | open, no show, no activity     |
//! | Unavailable/offline   | grey   | Offline          | Offline   | `unavailable`     | closed                         |
//!
//! In the PIDF column: basic status, the `jabber:client` `<show>` carried in the
//! status (RFC 8048), and the RPID activity of the person.
//!
//! The first four columns are the table's; the XMPP and PIDF columns are Herald's.
//! The OCS column is what Herald calls the basic state ([`BasicState`]): the four
//! states every federation partner understands; rich states (on the phone, in a
//! meeting, out of office) degrade to it.
//!
//! Lossy: Busy and Do not disturb are one RPID activity (`busy`) and one XMPP show
//! (`dnd`); reading either back gives Do not disturb from XMPP and Busy from PIDF.
//! The rich states become `dnd`/`xa` in XMPP, and come back as Do not disturb / Out of
//! office. From PIDF every state of the table comes back except Do not disturb. A
//! SIP document with no RPID activity is read through its XMPP `<show>`, if any.

use super::presence::{show_for_activity, Show, XmppPresence};
use crate::ns;
use crate::pidf::{Activities, Activity, Basic, Person, Pidf, Tuple};
use crate::xml::Element;

/// A presence state of Table 23-5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PresenceState {
    OutOfOffice,
    DoNotDisturb,
    Busy,
    OnThePhone,
    InAMeeting,
    /// "Idle on all clients".
    Away,
    Available,
    /// "Unavailable/offline".
    Offline,
}

/// The colour of a state in the product's clients (Table 23-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Colour {
    Red,
    Yellow,
    Green,
    Grey,
}

/// The four states of basic presence: Table 23-5's "Status to Microsoft Office
/// Communications Server" column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BasicState {
    Available,
    Away,
    Busy,
    Offline,
}

/// Table 23-5's "Status to AOL" column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AolState {
    Available,
    Away,
    Offline,
}

impl PresenceState {
    /// The table's rows, in its order.
    pub const ALL: [Self; 8] = [
        Self::OutOfOffice,
        Self::DoNotDisturb,
        Self::Busy,
        Self::OnThePhone,
        Self::InAMeeting,
        Self::Away,
        Self::Available,
        Self::Offline,
    ];

    /// The name in the table.
    pub fn label(self) -> &'static str {
        match self {
            Self::OutOfOffice => "Out of office",
            Self::DoNotDisturb => "Do not disturb",
            Self::Busy => "Busy",
            Self::OnThePhone => "On the phone",
            Self::InAMeeting => "In a meeting",
            Self::Away => "Idle on all clients",
            Self::Available => "Available",
            Self::Offline => "Unavailable/offline",
        }
    }

    pub fn colour(self) -> Colour {
        match self {
            Self::OutOfOffice | Self::DoNotDisturb | Self::Busy => Colour::Red,
            Self::OnThePhone | Self::InAMeeting | Self::Away => Colour::Yellow,
            Self::Available => Colour::Green,
            Self::Offline => Colour::Grey,
        }
    }

    /// The status shown to Microsoft OCS / Lync: basic presence.
    pub fn basic(self) -> BasicState {
        match self {
            Self::OutOfOffice | Self::Away => BasicState::Away,
            Self::DoNotDisturb | Self::Busy | Self::OnThePhone | Self::InAMeeting => {
                BasicState::Busy
            }
            Self::Available => BasicState::Available,
            Self::Offline => BasicState::Offline,
        }
    }

    /// The status shown to AOL.
    pub fn aol(self) -> AolState {
        match self {
            Self::Available => AolState::Available,
            Self::Offline => AolState::Offline,
            _ => AolState::Away,
        }
    }

    /// Available (`true`) and the `<show>` in XMPP.
    pub fn to_xmpp(self) -> (bool, Option<Show>) {
        match self {
            Self::OutOfOffice => (true, Some(Show::Xa)),
            Self::DoNotDisturb | Self::Busy | Self::OnThePhone | Self::InAMeeting => {
                (true, Some(Show::Dnd))
            }
            Self::Away => (true, Some(Show::Away)),
            Self::Available => (true, None),
            Self::Offline => (false, None),
        }
    }

    /// The state an XMPP presence shows.
    pub fn from_xmpp(presence: &XmppPresence) -> Self {
        if !presence.available {
            return Self::Offline;
        }
        match presence.show {
            None | Some(Show::Chat) => Self::Available,
            Some(Show::Away) => Self::Away,
            Some(Show::Xa) => Self::OutOfOffice,
            Some(Show::Dnd) => Self::DoNotDisturb,
        }
    }

    /// PIDF basic status and the RPID activity of the state.
    pub fn to_rpid(self) -> (Basic, Option<Activity>) {
        let activity = match self {
            Self::OutOfOffice => Activity::Vacation,
            Self::DoNotDisturb | Self::Busy => Activity::Busy,
            Self::OnThePhone => Activity::OnThePhone,
            Self::InAMeeting => Activity::Meeting,
            Self::Away => Activity::Away,
            Self::Available => return (Basic::Open, None),
            Self::Offline => return (Basic::Closed, None),
        };
        (Basic::Open, Some(activity))
    }

    /// A one-tuple PIDF document for `entity` in this state: basic status, the XMPP
    /// `<show>` (as RFC 8048 recommends) and the RPID activity.
    pub fn to_pidf(self, entity: &str, tuple_id: &str) -> Pidf {
        let (basic, activity) = self.to_rpid();
        let mut tuple = Tuple::new(tuple_id, basic);
        if let (true, Some(show)) = self.to_xmpp() {
            tuple
                .status
                .extensions
                .push(Element::new("show", ns::CLIENT).with_text(show.as_str()));
        }
        let mut doc = Pidf::new(entity);
        doc.tuples.push(tuple);
        if let Some(activity) = activity {
            let mut person = Person::new(format!("p-{tuple_id}"));
            person.activities = Some(Activities::of([activity]));
            doc.persons.push(person);
        }
        doc
    }

    /// The state a PIDF document shows: closed everywhere is offline; otherwise the
    /// strongest activity of its persons (on the phone, in a meeting, busy, out of
    /// office, away); without one, what its XMPP `<show>` (or its absence) says.
    pub fn from_pidf(doc: &Pidf) -> Self {
        if !doc.is_open() {
            return Self::Offline;
        }
        doc.persons
            .iter()
            .filter_map(|p| p.activities.as_ref())
            .flat_map(|a| a.items.iter())
            .filter_map(Self::for_activity)
            .min_by_key(|s| s.strength())
            .unwrap_or_else(|| Self::from_xmpp(&XmppPresence::from_pidf(doc)))
    }

    /// The user is on a call (a confirmed or early dialog,
    /// [`DialogInfo::is_on_call`](crate::pidf::DialogInfo::is_on_call)): available and
    /// idle become On the phone; the other states, set by the user or their calendar,
    /// stay.
    pub fn with_call(self, on_call: bool) -> Self {
        match self {
            Self::Available | Self::Away if on_call => Self::OnThePhone,
            other => other,
        }
    }

    /// The states the busy activities name apart; the rest follow the `<show>` class
    /// the activity implies (`show_for_activity`: away-like and extended-away lists).
    fn for_activity(activity: &Activity) -> Option<Self> {
        use Activity as A;
        Some(match activity {
            A::OnThePhone => Self::OnThePhone,
            A::Meeting | A::Appointment | A::Presentation | A::Performance => Self::InAMeeting,
            A::Busy => Self::Busy,
            other => match show_for_activity(other)? {
                Show::Xa => Self::OutOfOffice,
                Show::Away => Self::Away,
                Show::Dnd => Self::Busy,
                Show::Chat => return None,
            },
        })
    }

    /// Lower wins when a document carries several activities.
    fn strength(self) -> u8 {
        match self {
            Self::OnThePhone => 0,
            Self::InAMeeting => 1,
            Self::DoNotDisturb => 2,
            Self::Busy => 3,
            Self::OutOfOffice => 4,
            Self::Away => 5,
            Self::Available => 6,
            Self::Offline => 7,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pidf::{Dialog, DialogInfo, DialogState, DocState};

    /// Table 23-5 as written in the seed: state, colour, OCS, AOL.
    const TABLE_23_5: [(&str, Colour, BasicState, AolState); 8] = [
        (
            "Out of office",
            Colour::Red,
            BasicState::Away,
            AolState::Away,
        ),
        (
            "Do not disturb",
            Colour::Red,
            BasicState::Busy,
            AolState::Away,
        ),
        ("Busy", Colour::Red, BasicState::Busy, AolState::Away),
        (
            "On the phone",
            Colour::Yellow,
            BasicState::Busy,
            AolState::Away,
        ),
        (
            "In a meeting",
            Colour::Yellow,
            BasicState::Busy,
            AolState::Away,
        ),
        (
            "Idle on all clients",
            Colour::Yellow,
            BasicState::Away,
            AolState::Away,
        ),
        (
            "Available",
            Colour::Green,
            BasicState::Available,
            AolState::Available,
        ),
        (
            "Unavailable/offline",
            Colour::Grey,
            BasicState::Offline,
            AolState::Offline,
        ),
    ];

    #[test]
    fn states_follow_table_23_5() {
        for (state, (label, colour, ocs, aol)) in PresenceState::ALL.into_iter().zip(TABLE_23_5) {
            assert_eq!(state.label(), label);
            assert_eq!(state.colour(), colour, "{label}");
            assert_eq!(state.basic(), ocs, "{label}");
            assert_eq!(state.aol(), aol, "{label}");
        }
    }

    #[test]
    fn pidf_round_trip_keeps_every_state_but_dnd() {
        for state in PresenceState::ALL {
            let back = PresenceState::from_pidf(&state.to_pidf("sip:a@b", "t"));
            let expected = if state == PresenceState::DoNotDisturb {
                PresenceState::Busy
            } else {
                state
            };
            assert_eq!(back, expected, "{state:?}");
            assert_eq!(back.basic(), state.basic(), "basic state always survives");
        }
    }

    #[test]
    fn xmpp_round_trip_keeps_the_basic_state() {
        for state in PresenceState::ALL {
            let (available, show) = state.to_xmpp();
            let p = XmppPresence {
                available,
                show,
                ..XmppPresence::available()
            };
            let back = PresenceState::from_xmpp(&p);
            assert_eq!(back.basic(), state.basic(), "{state:?}");
            assert_eq!(
                back.colour() == Colour::Grey,
                state == PresenceState::Offline
            );
        }
    }

    #[test]
    fn xmpp_then_pidf_keeps_the_basic_state() {
        // A state set on an XMPP client, published to SIP watchers, read back.
        for state in PresenceState::ALL {
            let (available, show) = state.to_xmpp();
            let p = XmppPresence {
                available,
                show,
                ..XmppPresence::available()
            };
            let doc = p.to_pidf("sip:a@b", Some("desk"), None);
            let back = PresenceState::from_pidf(&doc);
            assert_eq!(back.basic(), state.basic(), "{state:?}");
            assert_eq!(back.aol(), state.aol(), "{state:?}");
        }
    }

    #[test]
    fn a_call_puts_an_available_user_on_the_phone() {
        let mut info = DialogInfo::new("sip:a@b", 1, DocState::Full);
        info.dialogs.push(Dialog::new("d", DialogState::Confirmed));
        let on_call = info.is_on_call();
        assert_eq!(
            PresenceState::Available.with_call(on_call),
            PresenceState::OnThePhone
        );
        assert_eq!(
            PresenceState::Away.with_call(on_call),
            PresenceState::OnThePhone
        );
        assert_eq!(
            PresenceState::DoNotDisturb.with_call(on_call),
            PresenceState::DoNotDisturb
        );
        assert_eq!(
            PresenceState::Offline.with_call(on_call),
            PresenceState::Offline
        );
        assert_eq!(
            PresenceState::Available.with_call(false),
            PresenceState::Available
        );
    }

    #[test]
    fn without_activities_the_xmpp_show_decides() {
        for state in PresenceState::ALL {
            let mut doc = state.to_pidf("sip:a@b", "t");
            doc.persons.clear();
            let back = PresenceState::from_pidf(&doc);
            assert_eq!(
                back,
                PresenceState::from_xmpp(&XmppPresence::from_pidf(&doc))
            );
            assert_eq!(back.basic(), state.basic(), "{state:?}");
        }
    }

    #[test]
    fn strongest_activity_wins() {
        let mut doc = PresenceState::Away.to_pidf("sip:a@b", "t");
        doc.persons[0]
            .activities
            .as_mut()
            .unwrap()
            .items
            .extend([Activity::Meeting, Activity::OnThePhone]);
        assert_eq!(PresenceState::from_pidf(&doc), PresenceState::OnThePhone);
    }
}
