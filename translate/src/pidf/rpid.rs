//! RPID (RFC 4480): what the person is doing (`<activities/>`, §3.2) and how they feel
//! (`<mood/>`, §3.6).

use super::document::{room_for, DocLimits};
use super::error::PidfError;
use super::note::Note;
use super::RPID_NS;
use crate::xml::Element;

/// One activity of RFC 4480
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    Appointment,
    Away,
    Breakfast,
    Busy,
    Dinner,
    Holiday,
    InTransit,
    LookingForWork,
    Meal,
    Meeting,
    OnThePhone,
    Performance,
    PermanentAbsence,
    Playing,
    Presentation,
    Shopping,
    Sleeping,
    Spectator,
    Steering,
    Travel,
    Tv,
    Unknown,
    Vacation,
    Working,
    Worship,
    /// `<other>text</other>`: an activity the list does not name.
    Other(String),
    /// An element of another namespace (or an RPID name this version does not know),
    /// kept as read.
    Extension(Element),
}

/// The named activities and their element names, in RFC 4480's order.
const NAMED: [(Activity, &str); 25] = [
    (Activity::Appointment, "appointment"),
    (Activity::Away, "away"),
    (Activity::Breakfast, "breakfast"),
    (Activity::Busy, "busy"),
    (Activity::Dinner, "dinner"),
    (Activity::Holiday, "holiday"),
    (Activity::InTransit, "in-transit"),
    (Activity::LookingForWork, "looking-for-work"),
    (Activity::Meal, "meal"),
    (Activity::Meeting, "meeting"),
    (Activity::OnThePhone, "on-the-phone"),
    (Activity::Performance, "performance"),
    (Activity::PermanentAbsence, "permanent-absence"),
    (Activity::Playing, "playing"),
    (Activity::Presentation, "presentation"),
    (Activity::Shopping, "shopping"),
    (Activity::Sleeping, "sleeping"),
    (Activity::Spectator, "spectator"),
    (Activity::Steering, "steering"),
    (Activity::Travel, "travel"),
    (Activity::Tv, "tv"),
    (Activity::Unknown, "unknown"),
    (Activity::Vacation, "vacation"),
    (Activity::Working, "working"),
    (Activity::Worship, "worship"),
];

impl Activity {
    /// Every activity RFC 4480 names (not `Other`, not `Extension`).
    pub fn named() -> impl Iterator<Item = Self> {
        NAMED.iter().map(|(a, _)| a.clone())
    }

    /// The RPID element name of a named activity; `other` for [`Activity::Other`];
    /// `None` for an extension.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            Self::Other(_) => Some("other"),
            Self::Extension(_) => None,
            named => NAMED.iter().find(|(a, _)| a == named).map(|(_, n)| *n),
        }
    }

    /// The named activity with this RPID element name.
    pub fn from_name(name: &str) -> Option<Self> {
        NAMED
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(a, _)| a.clone())
    }

    fn from_element(el: &Element) -> Self {
        if el.ns == RPID_NS {
            if el.name == "other" {
                return Self::Other(el.text());
            }
            if let Some(named) = Self::from_name(&el.name) {
                return named;
            }
        }
        Self::Extension(el.clone())
    }

    fn to_element(&self) -> Element {
        match self {
            Self::Other(text) => Element::new("other", RPID_NS).with_text(text.clone()),
            Self::Extension(el) => el.clone(),
            named => Element::new(named.name().unwrap_or("unknown"), RPID_NS),
        }
    }
}

/// `<rpid:activities/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Activities {
    pub items: Vec<Activity>,
    pub notes: Vec<Note>,
    /// `from` and `until` (RFC 4480), `dateTime`s as written.
    pub from: Option<String>,
    pub until: Option<String>,
    /// `id`, if any.
    pub id: Option<String>,
}

impl Activities {
    pub fn of(items: impl IntoIterator<Item = Activity>) -> Self {
        Self {
            items: items.into_iter().collect(),
            ..Self::default()
        }
    }

    pub fn contains(&self, activity: &Activity) -> bool {
        self.items.contains(activity)
    }

    pub(super) fn from_element(el: &Element, limits: &DocLimits) -> Result<Self, PidfError> {
        let mut out = Self {
            from: el.attr("from").map(str::to_owned),
            until: el.attr("until").map(str::to_owned),
            id: el.attr("id").map(str::to_owned),
            ..Self::default()
        };
        for child in el.elements() {
            if child.is("note", RPID_NS) {
                Note::push(&mut out.notes, child, limits.max_notes)?;
            } else {
                room_for(out.items.len(), limits.max_items, "activities")?;
                out.items.push(Activity::from_element(child));
            }
        }
        Ok(out)
    }

    pub(super) fn to_element(&self) -> Element {
        let mut el = Element::new("activities", RPID_NS);
        for (k, v) in [
            ("id", &self.id),
            ("from", &self.from),
            ("until", &self.until),
        ] {
            if let Some(v) = v {
                el.set_attr(k, v.clone());
            }
        }
        for note in &self.notes {
            el.push_child(note.to_element(RPID_NS));
        }
        for item in &self.items {
            el.push_child(item.to_element());
        }
        el
    }
}

/// `<rpid:mood/>`: the RFC 4480 values by element name (`happy`, `in_love`, ...);
/// the list is long and purely descriptive, so names are kept as strings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mood {
    /// Names of the RPID mood elements, in order.
    pub values: Vec<String>,
    /// `<other>text</other>`.
    pub other: Option<String>,
    pub notes: Vec<Note>,
}

impl Mood {
    pub(super) fn from_element(el: &Element, limits: &DocLimits) -> Result<Self, PidfError> {
        let mut out = Self::default();
        for child in el.elements().filter(|c| c.ns == RPID_NS) {
            match child.name.as_str() {
                "note" => Note::push(&mut out.notes, child, limits.max_notes)?,
                "other" => out.other = Some(child.text()),
                name => {
                    room_for(out.values.len(), limits.max_items, "moods")?;
                    out.values.push(name.to_owned());
                }
            }
        }
        Ok(out)
    }

    pub(super) fn to_element(&self) -> Element {
        let mut el = Element::new("mood", RPID_NS);
        for note in &self.notes {
            el.push_child(note.to_element(RPID_NS));
        }
        for value in &self.values {
            el.push_child(Element::new(value.clone(), RPID_NS));
        }
        if let Some(other) = &self.other {
            el.push_child(Element::new("other", RPID_NS).with_text(other.clone()));
        }
        el
    }
}
