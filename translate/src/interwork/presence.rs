//! XMPP presence <-> PIDF/RPID (RFC 8048, which obsoletes RFC 7248).
//!
//! # XMPP to SIP (RFC 8048 Table 1 and its notes)
//!
//! | XMPP                                  | PIDF / RPID                                                   |
//! |---------------------------------------|---------------------------------------------------------------|
//! | no `type` (available)                 | `<basic>open</basic>`                                         |
//! | `type='unavailable'`                  | `<basic>closed</basic>`                                       |
//! | other types (subscriptions, probes)   | not a notification: no document                               |
//! | resourcepart                          | `<tuple id='ID-resource'>` ([`tuple_id_for_resource`])        |
//! | `<status xml:lang>` (each)            | `<note xml:lang>` of the tuple                                |
//! | `<priority>` 0..127                   | `<contact priority>` 0..1 ([`qvalue_for_priority`])           |
//! | `<priority>` below 0                  | not mapped (RFC 8048: MUST NOT)                               |
//! | `<show>`                              | `<show xmlns='jabber:client'>` in `<status>` (RECOMMENDED)    |
//! | `<show>` away / xa                    | and `<rpid:activities><rpid:away/>` (Herald's extension)     |
//! | `<show>` dnd                          | and `<rpid:activities><rpid:busy/>`                           |
//! | `<show>` chat, no `<show>`            | no activity                                                   |
//!
//! # SIP to XMPP (RFC 8048 Table 2)
//!
//! | PIDF / RPID                                                     | XMPP                    |
//! |-----------------------------------------------------------------|-------------------------|
//! | some tuple `open`                                               | available (no `type`)   |
//! | every tuple `closed`, or no tuple with a basic status           | `type='unavailable'`    |
//! | `<show xmlns='jabber:client'>` of the chosen tuple              | that `<show>`           |
//! | else activity `busy`, `on-the-phone`, `meeting`, `appointment`, `presentation`, `performance` | `<show>dnd</show>` |
//! | else activity `vacation`, `holiday`, `permanent-absence`        | `<show>xa</show>`       |
//! | else activity `away`, `sleeping`, `travel`, `in-transit`, `steering`, `meal`, `breakfast`, `dinner`, `shopping` | `<show>away</show>` |
//! | other activities (`working`, `unknown`, `other`, ...), none     | no `<show>`             |
//! | notes of the chosen tuple, else of the person, else of the root | `<status xml:lang>`     |
//! | `<contact priority>` of the chosen tuple                        | `<priority>`            |
//!
//! When several activities apply the strongest wins: dnd, then xa, then away. The
//! chosen tuple is the open tuple with the highest contact priority (the first on
//! ties), else the first tuple.
//!
//! RFC 8048 gives `<show>` "no mapping" in its table and recommends carrying the
//! `jabber:client` `<show>` element inside the PIDF; it also suggests adding a custom
//! extension a SIP user agent understands. Herald does both: the `<show>` element, and
//! RPID activities read as RFC 4480 defines them (the activity rows are Herald's
//! choice).
//!
//! Lossy: a negative priority is not sent (it comes back as 0); RPID activities
//! beyond the three show classes (and mood, place, devices) have no XMPP form. When
//! the SIP side keeps only RPID (drops the `<show>` element), `chat` comes back as no
//! show and `xa` as `away`. Round trip XMPP -> PIDF -> XMPP keeps availability, the
//! show, the statuses and a non-negative priority; through RPID alone, the show class
//! ([`Show::class`]).

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
        let tuple = self.to_tuple(resource, contact);
        let mut doc = Pidf::new(entity);
        if let Some(activity) = self.activity() {
            let mut person = Person::new(format!("p-{}", tuple.id));
            person.activities = Some(Activities::of([activity]));
            doc.persons.push(person);
        }
        doc.tuples.push(tuple);
        doc
    }

    /// The tuple of this presence for `resource`.
    pub fn to_tuple(&self, resource: Option<&str>, contact: Option<&str>) -> Tuple {
        let basic = if self.available {
            Basic::Open
        } else {
            Basic::Closed
        };
        let mut tuple = Tuple::new(tuple_id_for_resource(resource), basic);
        if let (true, Some(show)) = (self.available, self.show) {
            tuple
                .status
                .extensions
                .push(Element::new("show", ns::CLIENT).with_text(show.as_str()));
        }
        tuple.notes = self.statuses.clone();
        tuple.contact = contact.map(|uri| Contact {
            uri: uri.to_owned(),
            priority: qvalue_for_priority(self.priority),
        });
        tuple
    }

    /// The RPID activity of this presence's show, if any.
    fn activity(&self) -> Option<Activity> {
        match (self.available, self.show) {
            (true, Some(Show::Away | Show::Xa)) => Some(Activity::Away),
            (true, Some(Show::Dnd)) => Some(Activity::Busy),
            _ => None,
        }
    }

    /// The XMPP presence a PIDF document amounts to (see the module's table).
    pub fn from_pidf(doc: &Pidf) -> Self {
        let available = doc
            .tuples
            .iter()
            .any(|t| t.status.basic == Some(Basic::Open));
        Self::for_tuple(doc, chosen_tuple(doc), available)
    }

    /// One presence per tuple, with the resource its id names
    /// ([`resource_for_tuple_id`]): what an XMPP watcher sees of a SIP presentity with
    /// several devices, each as its own resource. Shows, statuses and priorities are
    /// read as in [`from_pidf`](Self::from_pidf), from that tuple.
    pub fn per_tuple(doc: &Pidf) -> Vec<(Option<String>, Self)> {
        doc.tuples
            .iter()
            .map(|t| {
                let available = t.status.basic == Some(Basic::Open);
                (
                    resource_for_tuple_id(&t.id),
                    Self::for_tuple(doc, Some(t), available),
                )
            })
            .collect()
    }

    /// The presence of `tuple` (and the document's persons and notes around it).
    fn for_tuple(doc: &Pidf, tuple: Option<&Tuple>, available: bool) -> Self {
        let show = if available {
            tuple
                .and_then(show_element)
                .or_else(|| show_for_activities(doc))
        } else {
            None
        };
        let statuses = match tuple {
            Some(t) if !t.notes.is_empty() => t.notes.clone(),
            _ => doc
                .persons
                .iter()
                .find(|p| !p.notes.is_empty())
                .map_or_else(|| doc.notes.clone(), |p| p.notes.clone()),
        };
        let priority = tuple
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

/// One XMPP resource's presence, for [`presentity_to_pidf`].
#[derive(Debug, Clone, Copy)]
pub struct ResourcePresence<'a> {
    pub resource: Option<&'a str>,
    pub presence: &'a XmppPresence,
    /// A URI reaching this resource (it carries the priority).
    pub contact: Option<&'a str>,
}

/// The whole presentity as one PIDF document: a tuple per XMPP resource, and one
/// person whose activity is that of the most available resource (watchers show the most
/// available status, as RFC 8048 remarks about several devices): `chat`, then no show,
/// then `away`, `xa`, `dnd`; unavailable resources last. Without resources the document
/// has one closed tuple, so a SIP watcher reads "offline" rather than "unknown".
pub fn presentity_to_pidf(entity: &str, resources: &[ResourcePresence<'_>]) -> Pidf {
    let mut doc = Pidf::new(entity);
    for r in resources {
        doc.tuples.push(r.presence.to_tuple(r.resource, r.contact));
    }
    if doc.tuples.is_empty() {
        doc.tuples
            .push(XmppPresence::unavailable().to_tuple(None, None));
    }
    let most_available = resources
        .iter()
        .min_by_key(|r| availability_rank(r.presence));
    if let Some(activity) = most_available.and_then(|r| r.presence.activity()) {
        let mut person = Person::new("person");
        person.activities = Some(Activities::of([activity]));
        doc.persons.push(person);
    }
    doc
}

/// Lower is more available.
fn availability_rank(p: &XmppPresence) -> u8 {
    match (p.available, p.show) {
        (true, Some(Show::Chat)) => 0,
        (true, None) => 1,
        (true, Some(Show::Away)) => 2,
        (true, Some(Show::Xa)) => 3,
        (true, Some(Show::Dnd)) => 4,
        (false, _) => 5,
    }
}

/// The `jabber:client` `<show>` a tuple carries in its status (or, from some
/// implementations, directly in the tuple).
fn show_element(tuple: &Tuple) -> Option<Show> {
    tuple
        .status
        .extensions
        .iter()
        .chain(&tuple.extensions)
        .find(|e| e.is("show", ns::CLIENT))
        .and_then(|e| Show::parse(e.text().trim()))
}

/// The strongest show the activities of the document's persons imply.
fn show_for_activities(doc: &Pidf) -> Option<Show> {
    doc.persons
        .iter()
        .filter_map(|p| p.activities.as_ref())
        .flat_map(|a| a.items.iter())
        .filter_map(show_for_activity)
        .max_by_key(|s| show_rank(*s))
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

/// XMPP priority to a PIDF qvalue as RFC 8048 (note 6 of Table 1) asks: a negative
/// priority is not mapped; 0 is 0, 127 is 1, and each value between gets its own
/// thousandths (1 is 0.007, 2 is 0.015, ..., 126 is 0.992), so
/// [`priority_for_qvalue`] gives it back exactly.
pub fn qvalue_for_priority(priority: i8) -> Option<Priority> {
    let p = u32::try_from(priority).ok()?;
    Priority::from_thousandths(u16::try_from(p * 1000 / 127).ok()?)
}

/// A PIDF qvalue to the nearest XMPP priority in 0..=127 (inverse of
/// [`qvalue_for_priority`]).
pub fn priority_for_qvalue(q: Priority) -> i8 {
    let p = (u32::from(q.thousandths()) * 127 * 2 + 1000) / 2000;
    i8::try_from(p).unwrap_or(i8::MAX)
}

/// The tuple id for a resource. A tuple id is an XML `ID` (an NCName, which cannot
/// start with a digit); RFC 8048 (note 2 of Table 1) recommends prepending `ID-`. A
/// resource made of ASCII letters, digits, `.`, `-` and `_` becomes `ID-` + resource;
/// any other becomes `IDx-` + the lowercase hex of its UTF-8. No resource gives
/// `xmpp`.
pub fn tuple_id_for_resource(resource: Option<&str>) -> String {
    match resource {
        None => "xmpp".to_owned(),
        Some(r) if is_plain_id(r) => format!("ID-{r}"),
        Some(r) => {
            let mut id = String::from("IDx-");
            for b in r.bytes() {
                id.push_str(&format!("{b:02x}"));
            }
            id
        }
    }
}

/// The resource a tuple id names (inverse of [`tuple_id_for_resource`]); `None` for
/// `xmpp`. Any other id (a SIP user agent's own) is taken as written.
pub fn resource_for_tuple_id(id: &str) -> Option<String> {
    if id == "xmpp" {
        return None;
    }
    if let Some(decoded) = id.strip_prefix("IDx-").and_then(decode_hex_utf8) {
        return Some(decoded);
    }
    match id.strip_prefix("ID-") {
        Some(rest) if !rest.is_empty() => Some(rest.to_owned()),
        _ => Some(id.to_owned()),
    }
}

/// Whether `ID-` + `s` is an NCName made of ASCII only.
fn is_plain_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
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

    fn through_pidf(p: &XmppPresence, keep_show_element: bool) -> XmppPresence {
        let mut doc = p.to_pidf(
            "pres:juliet@example.com",
            Some("balcony"),
            Some("xmpp:juliet@example.com/balcony"),
        );
        if !keep_show_element {
            doc.tuples[0].status.extensions.clear();
        }
        let xml = doc.to_xml().unwrap();
        let back = Pidf::parse(xml.as_bytes(), &DocLimits::default()).unwrap();
        XmppPresence::from_pidf(&back)
    }

    #[test]
    fn rfc8048_notification_from_sip() {
        // The shape of RFC 8048's NOTIFY body: the XMPP show carried inside the status.
        let xml = "<?xml version='1.0' encoding='UTF-8'?>
            <presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:romeo@example.net'>
              <tuple id='ID-dr4hcr0st3lup4c'>
                <status><basic>open</basic><show xmlns='jabber:client'>away</show></status>
              </tuple>
            </presence>";
        let doc = Pidf::parse(xml.as_bytes(), &DocLimits::default()).unwrap();
        let p = XmppPresence::from_pidf(&doc);
        assert_eq!(p, XmppPresence::available().with_show(Show::Away));
        assert_eq!(
            resource_for_tuple_id(&doc.tuples[0].id).as_deref(),
            Some("dr4hcr0st3lup4c")
        );
    }

    #[test]
    fn xmpp_notification_to_sip() {
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
        assert_eq!(t.id, "ID-balcony");
        assert_eq!(t.status.basic, Some(Basic::Open));
        assert!(t.status.extensions[0].is("show", ns::CLIENT));
        assert_eq!(t.notes, vec![Note::new("Busy").with_lang("en")]);
        assert_eq!(
            t.contact.as_ref().unwrap().priority,
            Priority::from_thousandths(39)
        );
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
        assert_eq!(through_pidf(&p, true), p);
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
    fn every_show_survives_and_rpid_alone_keeps_the_class() {
        for show in [Show::Away, Show::Chat, Show::Dnd, Show::Xa] {
            let p = XmppPresence::available().with_show(show);
            assert_eq!(through_pidf(&p, true).show, Some(show));
        }
        let rpid_only = |show| through_pidf(&XmppPresence::available().with_show(show), false).show;
        assert_eq!(rpid_only(Show::Xa), Some(Show::Away));
        assert_eq!(rpid_only(Show::Chat), None);
        assert_eq!(rpid_only(Show::Dnd), Some(Show::Dnd));
        assert_eq!(rpid_only(Show::Away), Some(Show::Away));
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
    fn the_presentity_has_a_tuple_per_resource() {
        let phone = XmppPresence::available().with_show(Show::Dnd);
        let laptop = XmppPresence::available().with_show(Show::Away);
        let doc = presentity_to_pidf(
            "pres:juliet@example.com",
            &[
                ResourcePresence {
                    resource: Some("phone"),
                    presence: &phone,
                    contact: None,
                },
                ResourcePresence {
                    resource: Some("laptop"),
                    presence: &laptop,
                    contact: None,
                },
            ],
        );
        assert_eq!(doc.tuples.len(), 2);
        assert_eq!(doc.persons.len(), 1);
        let acts = doc.persons[0].activities.as_ref().unwrap();
        assert_eq!(
            acts.items,
            vec![Activity::Away],
            "away is more available than dnd"
        );
        let back = XmppPresence::per_tuple(&doc);
        assert_eq!(back[0], (Some("phone".into()), phone));
        assert_eq!(back[1], (Some("laptop".into()), laptop));
        let nobody = presentity_to_pidf("pres:juliet@example.com", &[]);
        assert!(!nobody.is_open());
        assert_eq!(nobody.tuples.len(), 1);
    }

    #[test]
    fn each_tuple_is_a_resource() {
        let mut doc = Pidf::new("pres:romeo@example.net");
        let mut phone = Tuple::new("ID-phone", Basic::Open);
        phone
            .status
            .extensions
            .push(Element::new("show", ns::CLIENT).with_text("dnd"));
        phone.notes.push(Note::new("on a call"));
        doc.tuples.push(phone);
        doc.tuples.push(Tuple::new("sg89ae", Basic::Closed));
        let all = XmppPresence::per_tuple(&doc);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].0.as_deref(), Some("phone"));
        assert_eq!(
            all[0].1,
            XmppPresence::available()
                .with_show(Show::Dnd)
                .with_status("on a call")
        );
        assert_eq!(all[1], (Some("sg89ae".into()), XmppPresence::unavailable()));
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
        assert_eq!(p.priority, 89);
    }

    #[test]
    fn priorities_follow_rfc8048() {
        for p in i8::MIN..0 {
            assert_eq!(qvalue_for_priority(p), None, "{p}");
        }
        for p in 0..=i8::MAX {
            let q = qvalue_for_priority(p).unwrap();
            assert_eq!(priority_for_qvalue(q), p);
        }
        let q = |p| qvalue_for_priority(p).unwrap().thousandths();
        assert_eq!((q(0), q(1), q(2), q(126), q(127)), (0, 7, 15, 992, 1000));
    }

    #[test]
    fn tuple_ids_for_resources() {
        for (res, id) in [
            (None, "xmpp"),
            (Some("balcony"), "ID-balcony"),
            (Some("1st"), "ID-1st"),
            (Some("xmpp"), "ID-xmpp"),
            (Some("my phone"), "IDx-6d792070686f6e65"),
            (Some("x-41"), "ID-x-41"),
        ] {
            assert_eq!(tuple_id_for_resource(res), id);
            assert_eq!(resource_for_tuple_id(id).as_deref(), res);
        }
        assert_eq!(resource_for_tuple_id("sg89ae").as_deref(), Some("sg89ae"));
        assert_eq!(resource_for_tuple_id("IDx-zz").as_deref(), Some("IDx-zz"));
        assert_eq!(resource_for_tuple_id("ID-").as_deref(), Some("ID-"));
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
            statuses in proptest::collection::vec(
                ("[a-zA-Z0-9 <&>]{0,10}", proptest::option::of("[a-z]{2}")), 0..3),
            priority in any::<i8>(),
            resource in proptest::option::of("\\PC{1,8}"),
            keep_show_element in any::<bool>(),
        ) {
            let p = XmppPresence {
                available,
                show,
                statuses: statuses.into_iter().map(|(text, lang)| Note { text, lang }).collect(),
                priority,
            };
            let mut doc = p.to_pidf("pres:a@b", resource.as_deref(), Some("sip:a@b"));
            if !keep_show_element {
                doc.tuples[0].status.extensions.clear();
            }
            let xml = doc.to_xml().unwrap();
            let parsed = Pidf::parse(xml.as_bytes(), &DocLimits::default()).unwrap();
            let back = XmppPresence::from_pidf(&parsed);
            prop_assert_eq!(back.available, p.available);
            if p.available && keep_show_element {
                prop_assert_eq!(back.show, p.show);
            } else if p.available {
                prop_assert_eq!(Show::class(back.show), Show::class(p.show));
            }
            prop_assert_eq!(&back.statuses, &p.statuses);
            prop_assert_eq!(back.priority, p.priority.max(0));
            prop_assert_eq!(resource_for_tuple_id(&doc.tuples[0].id), resource);
        }
    }
}
