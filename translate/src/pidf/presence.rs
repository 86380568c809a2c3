//! The PIDF document (RFC 3863): a presentity's tuples, notes, and the data-model
//! person and devices (RFC 4479).

use std::fmt;

use super::data_model::{Device, Person};
use super::document::{
    expect_root, read_document, required_attr, room_for, set_once, text_element, token_text,
    write_document, DocLimits,
};
use super::error::PidfError;
use super::note::Note;
use super::{DATA_MODEL_NS, PIDF_NS};
use crate::xml::Element;

/// A PIDF document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pidf {
    /// The presentity's URI (`pres:`, `sip:`, ...), the root's `entity`.
    pub entity: String,
    pub tuples: Vec<Tuple>,
    /// `<note/>` children of the root.
    pub notes: Vec<Note>,
    /// `<dm:person/>` elements (RFC 4479).
    pub persons: Vec<Person>,
    /// `<dm:device/>` elements (RFC 4479).
    pub devices: Vec<Device>,
    /// Other children of the root, as read.
    pub extensions: Vec<Element>,
}

/// A `<tuple/>`: one service of the presentity (RFC 3863 §4.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tuple {
    pub id: String,
    pub status: Status,
    pub contact: Option<Contact>,
    pub notes: Vec<Note>,
    /// `<timestamp/>`, an XML Schema `dateTime`, as written.
    pub timestamp: Option<String>,
    /// `<dm:deviceID/>`: the device that provides this service (RFC 4479).
    pub device_id: Option<String>,
    /// Other children, as read (capabilities, RPID `class`, ...).
    pub extensions: Vec<Element>,
}

/// A tuple's `<status/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    pub basic: Option<Basic>,
    /// Other children of `<status/>`, as read.
    pub extensions: Vec<Element>,
}

/// `<basic/>`: whether the service can be reached (RFC 3863 §4.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Basic {
    Open,
    Closed,
}

impl Basic {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }

    fn parse(s: &str) -> Result<Self, PidfError> {
        match s {
            "open" => Ok(Self::Open),
            "closed" => Ok(Self::Closed),
            other => Err(PidfError::invalid("basic status", other)),
        }
    }
}

/// `<contact/>`: the URI to reach the service, with an optional priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub uri: String,
    pub priority: Option<Priority>,
}

/// A `priority` qvalue (RFC 3261 §25.1: 0 to 1 with at most three decimals), held as
/// thousandths so it compares and round-trips exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(u16);

impl Priority {
    pub const MAX: Self = Self(1000);

    /// `thousandths` of 1; `None` above 1000.
    pub fn from_thousandths(thousandths: u16) -> Option<Self> {
        (thousandths <= 1000).then_some(Self(thousandths))
    }

    pub fn thousandths(self) -> u16 {
        self.0
    }

    /// Parses `0`, `0.5`, `0.125`, `1`, `1.000`.
    pub fn parse(s: &str) -> Option<Self> {
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut thousandths: u16 = 0;
        for i in 0..3 {
            let digit = frac.as_bytes().get(i).map_or(0, |b| u16::from(b - b'0'));
            thousandths = thousandths * 10 + digit;
        }
        match int {
            "0" => Some(Self(thousandths)),
            "1" if thousandths == 0 => Some(Self(1000)),
            _ => None,
        }
    }
}

impl fmt::Display for Priority {
    /// The shortest qvalue: `0`, `1`, `0.5`, `0.25`, `0.125`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("0"),
            1000 => f.write_str("1"),
            n => {
                let digits = format!("{n:03}");
                write!(f, "0.{}", digits.trim_end_matches('0'))
            }
        }
    }
}

impl Pidf {
    /// An empty document for `entity`.
    pub fn new(entity: impl Into<String>) -> Self {
        Self {
            entity: entity.into(),
            ..Self::default()
        }
    }

    /// Parses a PIDF document (`application/pidf+xml`).
    pub fn parse(xml: &[u8], limits: &DocLimits) -> Result<Self, PidfError> {
        let root = read_document(xml, limits)?;
        Self::from_element(&root, limits)
    }

    /// The model of a `<presence/>` element already read.
    pub fn from_element(root: &Element, limits: &DocLimits) -> Result<Self, PidfError> {
        expect_root(root, "presence", PIDF_NS)?;
        let mut doc = Self::new(required_attr(root, "entity", "presence entity")?);
        for child in root.elements() {
            if child.is("tuple", PIDF_NS) {
                room_for(doc.tuples.len(), limits.max_items, "tuples")?;
                doc.tuples.push(Tuple::from_element(child, limits)?);
            } else if child.is("note", PIDF_NS) {
                Note::push(&mut doc.notes, child, limits.max_notes)?;
            } else if child.is("person", DATA_MODEL_NS) {
                room_for(doc.persons.len(), limits.max_items, "persons")?;
                doc.persons.push(Person::from_element(child, limits)?);
            } else if child.is("device", DATA_MODEL_NS) {
                room_for(doc.devices.len(), limits.max_items, "devices")?;
                doc.devices.push(Device::from_element(child, limits)?);
            } else {
                room_for(doc.extensions.len(), limits.max_items, "extensions")?;
                doc.extensions.push(child.clone());
            }
        }
        Ok(doc)
    }

    /// The `<presence/>` element. Order as RFC 3863's schema has it: tuples, notes,
    /// then the elements of other namespaces (persons, devices, extensions).
    pub fn to_element(&self) -> Element {
        let mut root = Element::new("presence", PIDF_NS).with_attr("entity", self.entity.clone());
        for tuple in &self.tuples {
            root.push_child(tuple.to_element());
        }
        for note in &self.notes {
            root.push_child(note.to_element(PIDF_NS));
        }
        for person in &self.persons {
            root.push_child(person.to_element());
        }
        for device in &self.devices {
            root.push_child(device.to_element());
        }
        for ext in &self.extensions {
            root.push_child(ext.clone());
        }
        root
    }

    /// The document text, with an XML declaration.
    pub fn to_xml(&self) -> Result<String, PidfError> {
        write_document(&self.to_element())
    }

    /// Whether any tuple is `open`.
    pub fn is_open(&self) -> bool {
        self.tuples
            .iter()
            .any(|t| t.status.basic == Some(Basic::Open))
    }

    /// The tuple with this id.
    pub fn tuple(&self, id: &str) -> Option<&Tuple> {
        self.tuples.iter().find(|t| t.id == id)
    }
}

impl Tuple {
    /// A tuple with this id and basic status.
    pub fn new(id: impl Into<String>, basic: Basic) -> Self {
        Self {
            id: id.into(),
            status: Status {
                basic: Some(basic),
                extensions: Vec::new(),
            },
            ..Self::default()
        }
    }

    fn from_element(el: &Element, limits: &DocLimits) -> Result<Self, PidfError> {
        let mut tuple = Self {
            id: required_attr(el, "id", "tuple id")?,
            ..Self::default()
        };
        let mut status = None;
        for child in el.elements() {
            if child.is("status", PIDF_NS) {
                set_once(&mut status, Status::from_element(child, limits)?, "status")?;
            } else if child.is("contact", PIDF_NS) {
                let contact = Contact::from_element(child)?;
                set_once(&mut tuple.contact, contact, "contact")?;
            } else if child.is("note", PIDF_NS) {
                Note::push(&mut tuple.notes, child, limits.max_notes)?;
            } else if child.is("timestamp", PIDF_NS) {
                set_once(&mut tuple.timestamp, token_text(child), "timestamp")?;
            } else if child.is("deviceID", DATA_MODEL_NS) {
                set_once(&mut tuple.device_id, token_text(child), "deviceID")?;
            } else {
                room_for(tuple.extensions.len(), limits.max_items, "extensions")?;
                tuple.extensions.push(child.clone());
            }
        }
        tuple.status = status.ok_or(PidfError::Missing("tuple status"))?;
        Ok(tuple)
    }

    fn to_element(&self) -> Element {
        let mut el = Element::new("tuple", PIDF_NS).with_attr("id", self.id.clone());
        el.push_child(self.status.to_element());
        if let Some(device) = &self.device_id {
            el.push_child(text_element("deviceID", DATA_MODEL_NS, device));
        }
        for ext in &self.extensions {
            el.push_child(ext.clone());
        }
        if let Some(contact) = &self.contact {
            let mut c = text_element("contact", PIDF_NS, &contact.uri);
            if let Some(p) = contact.priority {
                c.set_attr("priority", p.to_string());
            }
            el.push_child(c);
        }
        for note in &self.notes {
            el.push_child(note.to_element(PIDF_NS));
        }
        if let Some(ts) = &self.timestamp {
            el.push_child(text_element("timestamp", PIDF_NS, ts));
        }
        el
    }
}

impl Status {
    fn from_element(el: &Element, limits: &DocLimits) -> Result<Self, PidfError> {
        let mut status = Self::default();
        for child in el.elements() {
            if child.is("basic", PIDF_NS) {
                let basic = Basic::parse(&token_text(child))?;
                set_once(&mut status.basic, basic, "basic")?;
            } else {
                room_for(status.extensions.len(), limits.max_items, "extensions")?;
                status.extensions.push(child.clone());
            }
        }
        Ok(status)
    }

    fn to_element(&self) -> Element {
        let mut el = Element::new("status", PIDF_NS);
        if let Some(basic) = self.basic {
            el.push_child(text_element("basic", PIDF_NS, basic.as_str()));
        }
        for ext in &self.extensions {
            el.push_child(ext.clone());
        }
        el
    }
}

impl Contact {
    fn from_element(el: &Element) -> Result<Self, PidfError> {
        let priority = match el.attr("priority") {
            None => None,
            Some(p) => Some(
                Priority::parse(p.trim())
                    .ok_or_else(|| PidfError::invalid("contact priority", p))?,
            ),
        };
        Ok(Self {
            uri: token_text(el),
            priority,
        })
    }
}
