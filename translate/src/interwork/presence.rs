//! XMPP presence <-> PIDF/RPID (RFC 8048, which obsoletes RFC 7248).
//!
//! # XMPP to SIP
//!
//! | XMPP                                  | PIDF / RPID                                            |
//! |---------------------------------------|--------------------------------------------------------|
//! | no `type` (available)                 | `<basic>open</basic>`                                  |
//! | `type='unavailable'`                  | `<basic>closed</basic>`                                |
//! | resourcepart                          | `<tuple id>` ([`tuple_id_for_resource`])               |
//! | `<status xml:lang>` (each)            | `<note xml:lang>` of the tuple                         |
//! | `<priority>` -128..127                | `<contact priority>` 0..1 ([`qvalue_for_priority`])    |
//! | `<show>away</show>`                   | `<rpid:activities><rpid:away/>`                        |
//! | `<show>xa</show>`                     | `<rpid:activities><rpid:away/>` (lossy: becomes away)  |
//! | `<show>dnd</show>`                    | `<rpid:activities><rpid:busy/>`                        |
//! | `<show>chat</show>`, no `<show>`      | no activity (lossy: chat becomes plain available)      |
//!
//! # SIP to XMPP
//!
//! | PIDF / RPID                                                     | XMPP                    |
//! |-----------------------------------------------------------------|-------------------------|
//! | some tuple `open`                                               | available               |
//! | every tuple `closed`, or no tuple with a basic status           | `type='unavailable'`    |
//! | activity `busy`, `on-the-phone`, `meeting`, `appointment`, `presentation`, `performance` | `<show>dnd</show>` |
//! | activity `vacation`, `holiday`, `permanent-absence`             | `<show>xa</show>`       |
//! | activity `away`, `sleeping`, `travel`, `in-transit`, `steering`, `meal`, `breakfast`, `dinner`, `shopping` | `<show>away</show>` |
//! | other activities (`working`, `unknown`, `other`, ...), none     | no `<show>`             |
//! | notes of the chosen tuple, else of the person, else of the root | `<status xml:lang>`     |
//! | `<contact priority>` of the chosen tuple                        | `<priority>`            |
//!
//! When several activities apply the strongest wins: dnd, then xa, then away. The
//! chosen tuple is the open tuple with the highest contact priority (the first on
//! ties), else the first tuple.
//!
//! The basic-status, note and priority rows are those of RFC 8048's syntax tables. The
//! `<show>` rows are Herald's reading of RFC 4480's activity definitions, following the
//! direction RFC 8048 gives (away and xa are both "away" in RPID, dnd is "busy").
//!
//! Lossy, by design: `chat` and no `<show>` are the same in PIDF; `xa` comes back as
//! `away`; RPID activities beyond the three classes (and mood, place, devices) have no
//! XMPP form and are dropped; a priority is carried only when the tuple has a contact
//! URI. Round trip XMPP -> PIDF -> XMPP keeps availability, the show class
//! ([`Show::class`]), the statuses and the priority.

use crate::ns;
use crate::pidf::{Activities, Activity, Basic, Contact, Note, Person, Pidf, Priority, Tuple};
use crate::xml::Element;

/// `<show/>` values (RFC 6121 §4.7.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Show {
    Away,
    Chat,
    Dnd,
    Xa,
}

/// What a watcher can tell from a presence: the three kinds of availability that
/// survive the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShowClass {
    /// No `<show>` or `chat`.
    Available,
    /// `away` or `xa`.
    Away,
    /// `dnd`.
    Busy,
}

impl Show {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Away => "away",
            Self::Chat => "chat",
            Self::Dnd => "dnd",
            Self::Xa => "xa",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "away" => Self::Away,
            "chat" => Self::Chat,
            "dnd" => Self::Dnd,
            "xa" => Self::Xa,
            _ => return None,
        })
    }

    /// The class of an optional show.
    pub fn class(show: Option<Self>) -> ShowClass {
        match show {
            None | Some(Self::Chat) => ShowClass::Available,
            Some(Self::Away | Self::Xa) => ShowClass::Away,
            Some(Self::Dnd) => ShowClass::Busy,
        }
    }
}

/// The presence-relevant content of an XMPP `<presence/>` (available or unavailable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmppPresence {
    pub available: bool,
    pub show: Option<Show>,
    /// `<status/>` texts with their `xml:lang`.
    pub statuses: Vec<Note>,
    pub priority: i8,
}

impl XmppPresence {
    pub fn available() -> Self {
        Self {
            available: true,
            show: None,
            statuses: Vec::new(),
            priority: 0,
        }
    }

    pub fn unavailable() -> Self {
        Self {
            available: false,
            ..Self::available()
        }
    }

    pub fn with_show(mut self, show: Show) -> Self {
        self.show = Some(show);
        self
    }

    pub fn with_status(mut self, text: impl Into<String>) -> Self {
        self.statuses.push(Note::new(text));
        self
    }

    /// Reads an available or unavailable presence stanza (`jabber:client` or
    /// `jabber:server`). Other types (subscriptions, probes, errors) are not presence
    /// information: `None`. An unknown `<show>` is ignored and a bad `<priority>` read
    /// as 0, as RFC 6121 §4.7.2 lets a receiver do.
    pub fn from_element(el: &Element) -> Option<Self> {
        if el.name != "presence" || (el.ns != ns::CLIENT && el.ns != ns::SERVER) {
            return None;
        }
        let available = match el.attr("type") {
            None => true,
            Some("unavailable") => false,
            Some(_) => return None,
        };
        let stanza_ns = el.ns.as_str();
        let mut p = Self {
            available,
            ..Self::available()
        };
        for child in el.elements().filter(|c| c.ns == stanza_ns) {
            match child.name.as_str() {
                "show" => p.show = p.show.or_else(|| Show::parse(child.text().trim())),
                "status" => p.statuses.push(Note {
                    text: child.text(),
                    lang: child.attr("xml:lang").map(str::to_owned),
                }),
                "priority" => p.priority = child.text().trim().parse().unwrap_or(0),
                _ => {}
            }
        }
        Some(p)
    }

    /// The stanza (without addresses) in `stanza_ns`. An unavailable presence carries
    /// its statuses only.
    pub fn to_element(&self, stanza_ns: &str) -> Element {
        let mut el = Element::new("presence", stanza_ns);
        if !self.available {
            el.set_attr("type", "unavailable");
        }
        if let (true, Some(show)) = (self.available, self.show) {
            el.push_child(Element::new("show", stanza_ns).with_text(show.as_str()));
        }
        for status in &self.statuses {
            let mut s = Element::new("status", stanza_ns).with_text(status.text.clone());
            if let Some(lang) = &status.lang {
                s.set_attr("xml:lang", lang.clone());
            }
            el.push_child(s);
        }
        if self.available && self.priority != 0 {
            el.push_child(Element::new("priority", stanza_ns).with_text(self.priority.to_string()));
        }
        el
    }

    /// The PIDF document for this presence of `entity` (the presentity's URI). The
    /// tuple's id comes from `resource`; `contact` (a URI reaching this resource)
    /// carries the priority. A person element holds the activities when there are any.
    pub fn to_pidf(&self, entity: &str, resource: Option<&str>, contact: Option<&str>) -> Pidf {
        let basic = if self.available {
            Basic::Open
        } else {
            Basic::Closed
        };
        let mut tuple = Tuple::new(tuple_id_for_resource(resource), basic);
        tuple.notes = self.statuses.clone();
        tuple.contact = contact.map(|uri| Contact {
            uri: uri.to_owned(),
            priority: Some(qvalue_for_priority(self.priority)),
        });
        let mut doc = Pidf::new(entity);
        doc.tuples.push(tuple);
        let activity = match (self.available, self.show) {
            (true, Some(Show::Away | Show::Xa)) => Some(Activity::Away),
            (true, Some(Show::Dnd)) => Some(Activity::Busy),
            _ => None,
        };
        if let Some(activity) = activity {
            let mut person = Person::new(format!("p-{}", doc.tuples[0].id));
            person.activities = Some(Activities::of([activity]));
            doc.persons.push(person);
        }
        doc
    }

    /// The XMPP presence a PIDF document amounts to (see the module's table).
    pub fn from_pidf(doc: &Pidf) -> Self {
        let chosen = chosen_tuple(doc);
        let available = doc
            .tuples
            .iter()
            .any(|t| t.status.basic == Some(Basic::Open));
        let show = if available {
            doc.persons
                .iter()
                .filter_map(|p| p.activities.as_ref())
                .flat_map(|a| a.items.iter())
                .filter_map(show_for_activity)
                .max_by_key(|s| show_rank(*s))
        } else {
            None
        };
        let statuses = match chosen {
            Some(t) if !t.notes.is_empty() => t.notes.clone(),
            _ => doc
                .persons
                .iter()
                .find(|p| !p.notes.is_empty())
                .map_or_else(|| doc.notes.clone(), |p| p.notes.clone()),
        };
        let priority = chosen
            .and_then(|t| t.contact.as_ref())
            .and_then(|c| c.priority)
            .map_or(0, priority_for_qvalue);
        Self {
            available,
            show,
            statuses,
            priority,
        }
    }
}

/// The `<show>` an RPID activity implies, if any.
pub fn show_for_activity(activity: &Activity) -> Option<Show> {
    use Activity as A;
    match activity {
        A::Busy
        | A::OnThePhone
        | A::Meeting
        | A::Appointment
        | A::Presentation
        | A::Performance => Some(Show::Dnd),
        A::Vacation | A::Holiday | A::PermanentAbsence => Some(Show::Xa),
        A::Away
        | A::Sleeping
        | A::Travel
        | A::InTransit
        | A::Steering
        | A::Meal
        | A::Breakfast
        | A::Dinner
        | A::Shopping => Some(Show::Away),
        _ => None,
    }
}

/// Which show wins when activities imply several.
fn show_rank(show: Show) -> u8 {
    match show {
        Show::Chat => 0,
        Show::Away => 1,
        Show::Xa => 2,
        Show::Dnd => 3,
    }
}

/// The open tuple with the highest contact priority, else the first tuple.
fn chosen_tuple(doc: &Pidf) -> Option<&Tuple> {
    let prio = |t: &Tuple| t.contact.as_ref().and_then(|c| c.priority);
    doc.tuples
        .iter()
        .filter(|t| t.status.basic == Some(Basic::Open))
        .fold(None, |best: Option<&Tuple>, t| match best {
            Some(b) if prio(b) >= prio(t) => Some(b),
            _ => Some(t),
        })
        .or_else(|| doc.tuples.first())
}

/// XMPP priority (-128..=127) to a PIDF qvalue, linearly: -128 is 0, 127 is 1, 0 is
/// 0.502. The 256 priorities land on distinct thousandths, so
/// [`priority_for_qvalue`] gives each back exactly.
pub fn qvalue_for_priority(priority: i8) -> Priority {
    let steps = u32::try_from(i32::from(priority) + 128).unwrap_or(0);
    let thousandths = (steps * 1000 * 2 + 255) / (255 * 2);
    Priority::from_thousandths(u16::try_from(thousandths).unwrap_or(1000)).unwrap_or(Priority::MAX)
}

/// A PIDF qvalue to the nearest XMPP priority (inverse of [`qvalue_for_priority`]).
pub fn priority_for_qvalue(q: Priority) -> i8 {
    let steps = (u32::from(q.thousandths()) * 255 * 2 + 1000) / (1000 * 2);
    i8::try_from(i32::try_from(steps).unwrap_or(255) - 128).unwrap_or(i8::MAX)
}

/// The tuple id for a resource. A tuple id is an XML `ID` (an NCName): a resource that
/// is a plain ASCII NCName not starting with `r-` is used as it is; any other is
/// written `r-` + the lowercase hex of its UTF-8. No resource gives `xmpp`.
pub fn tuple_id_for_resource(resource: Option<&str>) -> String {
    match resource {
        None => "xmpp".to_owned(),
        Some(r) if is_plain_id(r) && !r.starts_with("r-") && r != "xmpp" => r.to_owned(),
        Some(r) => {
            let mut id = String::from("r-");
            for b in r.bytes() {
                id.push_str(&format!("{b:02x}"));
            }
            id
        }
    }
}

/// The resource a tuple id names (inverse of [`tuple_id_for_resource`]); `None` for
/// `xmpp`. An id in the `r-` form that does not decode is taken as written.
pub fn resource_for_tuple_id(id: &str) -> Option<String> {
    if id == "xmpp" {
        return None;
    }
    if let Some(hex) = id.strip_prefix("r-") {
        if let Some(decoded) = decode_hex_utf8(hex) {
            return Some(decoded);
        }
    }
    Some(id.to_owned())
}

fn is_plain_id(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn decode_hex_utf8(hex: &str) -> Option<String> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            let pair = hex.get(i..i + 2)?;
            if pair.bytes().any(|b| b.is_ascii_uppercase()) {
                return None;
            }
            u8::from_str_radix(pair, 16).ok()
        })
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::pidf::DocLimits;

    fn round_trip(p: &XmppPresence) -> XmppPresence {
        let doc = p.to_pidf(
            "pres:juliet@example.com",
            Some("balcony"),
            Some("xmpp:juliet@example.com/balcony"),
        );
        let xml = doc.to_xml().unwrap();
        let back = Pidf::parse(xml.as_bytes(), &DocLimits::default()).unwrap();
        XmppPresence::from_pidf(&back)
    }

    #[test]
    fn rfc8048_style_notification() {
        let el = Element::new("presence", ns::CLIENT)
            .with_child(Element::new("show", ns::CLIENT).with_text("dnd"))
            .with_child(
                Element::new("status", ns::CLIENT)
                    .with_attr("xml:lang", "en")
                    .with_text("Busy"),
            )
            .with_child(Element::new("priority", ns::CLIENT).with_text("5"));
        let p = XmppPresence::from_element(&el).unwrap();
        let doc = p.to_pidf(
            "pres:juliet@example.com",
            Some("balcony"),
            Some("sip:juliet@example.com;gr=balcony"),
        );
        let t = &doc.tuples[0];
        assert_eq!(t.id, "balcony");
        assert_eq!(t.status.basic, Some(Basic::Open));
        assert_eq!(t.notes, vec![Note::new("Busy").with_lang("en")]);
        assert!(doc.persons[0]
            .activities
            .as_ref()
            .unwrap()
            .contains(&Activity::Busy));
        assert_eq!(XmppPresence::from_pidf(&doc), p);
        assert_eq!(XmppPresence::from_pidf(&doc).to_element(ns::CLIENT), el);
    }

    #[test]
    fn unavailable_maps_to_closed_and_back() {
        let p = XmppPresence::unavailable().with_status("gone home");
        let doc = p.to_pidf("pres:a@b", None, None);
        assert_eq!(doc.tuples[0].status.basic, Some(Basic::Closed));
        assert_eq!(doc.tuples[0].id, "xmpp");
        assert!(doc.persons.is_empty());
        assert_eq!(round_trip(&p), p);
        let el = p.to_element(ns::CLIENT);
        assert_eq!(el.attr("type"), Some("unavailable"));
        assert_eq!(XmppPresence::from_element(&el), Some(p));
    }

    #[test]
    fn non_presence_information_is_not_mapped() {
        for t in ["subscribe", "probe", "error", "subscribed"] {
            let el = Element::new("presence", ns::CLIENT).with_attr("type", t);
            assert_eq!(XmppPresence::from_element(&el), None, "{t}");
        }
        assert_eq!(
            XmppPresence::from_element(&Element::new("message", ns::CLIENT)),
            None
        );
    }

    #[test]
    fn lossy_rows_are_as_documented() {
        let xa = round_trip(&XmppPresence::available().with_show(Show::Xa));
        assert_eq!(xa.show, Some(Show::Away));
        let chat = round_trip(&XmppPresence::available().with_show(Show::Chat));
        assert_eq!(chat.show, None);
    }

    #[test]
    fn rich_sip_presence_maps_to_the_strongest_show() {
        let mut doc = Pidf::new("sip:bob@example.org");
        doc.tuples.push(Tuple::new("t", Basic::Open));
        let mut person = Person::new("p");
        person.activities = Some(Activities::of([Activity::Away, Activity::OnThePhone]));
        person.notes.push(Note::new("on a call"));
        doc.persons.push(person);
        let p = XmppPresence::from_pidf(&doc);
        assert_eq!(p.show, Some(Show::Dnd));
        assert_eq!(p.statuses[0].text, "on a call");
        for (activity, show) in [
            (Activity::Vacation, Some(Show::Xa)),
            (Activity::Sleeping, Some(Show::Away)),
            (Activity::Meeting, Some(Show::Dnd)),
            (Activity::Working, None),
            (Activity::Other("golf".into()), None),
        ] {
            doc.persons[0].activities = Some(Activities::of([activity.clone()]));
            assert_eq!(XmppPresence::from_pidf(&doc).show, show, "{activity:?}");
        }
        doc.tuples[0].status.basic = Some(Basic::Closed);
        let p = XmppPresence::from_pidf(&doc);
        assert!(!p.available);
        assert_eq!(p.show, None);
        assert!(!XmppPresence::from_pidf(&Pidf::new("sip:x@y")).available);
    }

    #[test]
    fn the_open_tuple_with_the_highest_priority_is_chosen() {
        let mut doc = Pidf::new("sip:bob@example.org");
        for (id, basic, q) in [
            ("a", Basic::Closed, 900),
            ("b", Basic::Open, 300),
            ("c", Basic::Open, 700),
        ] {
            let mut t = Tuple::new(id, basic);
            t.contact = Some(Contact {
                uri: format!("sip:bob@{id}"),
                priority: Priority::from_thousandths(q),
            });
            t.notes.push(Note::new(id));
            doc.tuples.push(t);
        }
        let p = XmppPresence::from_pidf(&doc);
        assert_eq!(p.statuses[0].text, "c");
        assert_eq!(
            p.priority,
            priority_for_qvalue(Priority::from_thousandths(700).unwrap())
        );
    }

    #[test]
    fn every_priority_survives_the_qvalue() {
        for p in i8::MIN..=i8::MAX {
            assert_eq!(priority_for_qvalue(qvalue_for_priority(p)), p);
        }
        assert_eq!(qvalue_for_priority(-128).thousandths(), 0);
        assert_eq!(qvalue_for_priority(127).thousandths(), 1000);
        assert_eq!(qvalue_for_priority(0).thousandths(), 502);
    }

    #[test]
    fn tuple_ids_for_resources() {
        for (res, id) in [
            (None, "xmpp"),
            (Some("balcony"), "balcony"),
            (Some("my phone"), "r-6d792070686f6e65"),
            (Some("r-x"), "r-722d78"),
            (Some("xmpp"), "r-786d7070"),
            (Some("1st"), "r-317374"),
        ] {
            assert_eq!(tuple_id_for_resource(res), id);
            assert_eq!(resource_for_tuple_id(id).as_deref(), res);
        }
        assert_eq!(resource_for_tuple_id("r-zz").as_deref(), Some("r-zz"));
    }

    fn show() -> impl Strategy<Value = Option<Show>> {
        proptest::option::of(prop_oneof![
            Just(Show::Away),
            Just(Show::Chat),
            Just(Show::Dnd),
            Just(Show::Xa)
        ])
    }

    proptest! {
        #[test]
        fn xmpp_to_pidf_to_xmpp_keeps_what_it_promises(
            available in any::<bool>(),
            show in show(),
            statuses in proptest::collection::vec(("[a-zA-Z0-9 <&>]{0,10}", proptest::option::of("[a-z]{2}")), 0..3),
            priority in any::<i8>(),
            resource in proptest::option::of("\\PC{1,8}"),
        ) {
            let p = XmppPresence {
                available,
                show,
                statuses: statuses.into_iter().map(|(text, lang)| Note { text, lang }).collect(),
                priority,
            };
            let doc = p.to_pidf("pres:a@b", resource.as_deref(), Some("sip:a@b"));
            let xml = doc.to_xml().unwrap();
            let back = XmppPresence::from_pidf(&Pidf::parse(xml.as_bytes(), &DocLimits::default()).unwrap());
            prop_assert_eq!(back.available, p.available);
            if p.available {
                prop_assert_eq!(Show::class(back.show), Show::class(p.show));
            }
            prop_assert_eq!(&back.statuses, &p.statuses);
            prop_assert_eq!(back.priority, p.priority);
            prop_assert_eq!(resource_for_tuple_id(&doc.tuples[0].id), resource);
        }
    }
}
