//! The data-model elements of RFC 4479: `<dm:person/>` (§3.2) carrying RPID, and
//! `<dm:device/>` (§3.4) with its `<dm:deviceID/>`.

use super::document::{required_attr, room_for, set_once, text_element, token_text, DocLimits};
use super::error::PidfError;
use super::note::Note;
use super::rpid::{Activities, Mood};
use super::{DATA_MODEL_NS, RPID_NS};
use crate::xml::Element;

/// `<dm:person/>`: the human behind the presentity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Person {
    pub id: String,
    pub activities: Option<Activities>,
    pub mood: Option<Mood>,
    /// `<dm:note/>` children.
    pub notes: Vec<Note>,
    /// `<dm:timestamp/>`, as written.
    pub timestamp: Option<String>,
    /// Other children (RPID `place-type`, `privacy`, ..., or other namespaces), as read.
    pub extensions: Vec<Element>,
}

/// `<dm:device/>`: a physical device the presentity uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Device {
    pub id: String,
    /// `<dm:deviceID/>`, a URN naming the device.
    pub device_id: Option<String>,
    pub notes: Vec<Note>,
    pub timestamp: Option<String>,
    pub extensions: Vec<Element>,
}

impl Person {
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            ..Self::default()
        }
    }

    pub(super) fn from_element(el: &Element, limits: &DocLimits) -> Result<Self, PidfError> {
        let mut person = Self::new(required_attr(el, "id", "person id")?);
        for child in el.elements() {
            if child.is("activities", RPID_NS) {
                let activities = Activities::from_element(child, limits)?;
                set_once(&mut person.activities, activities, "activities")?;
            } else if child.is("mood", RPID_NS) {
                set_once(&mut person.mood, Mood::from_element(child, limits)?, "mood")?;
            } else if child.is("note", DATA_MODEL_NS) {
                Note::push(&mut person.notes, child, limits.max_notes)?;
            } else if child.is("timestamp", DATA_MODEL_NS) {
                set_once(&mut person.timestamp, token_text(child), "timestamp")?;
            } else {
                room_for(person.extensions.len(), limits.max_items, "extensions")?;
                person.extensions.push(child.clone());
            }
        }
        Ok(person)
    }

    pub(super) fn to_element(&self) -> Element {
        let mut el = Element::new("person", DATA_MODEL_NS).with_attr("id", self.id.clone());
        if let Some(activities) = &self.activities {
            el.push_child(activities.to_element());
        }
        if let Some(mood) = &self.mood {
            el.push_child(mood.to_element());
        }
        for ext in &self.extensions {
            el.push_child(ext.clone());
        }
        for note in &self.notes {
            el.push_child(note.to_element(DATA_MODEL_NS));
        }
        if let Some(ts) = &self.timestamp {
            el.push_child(text_element("timestamp", DATA_MODEL_NS, ts));
        }
        el
    }
}

impl Device {
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            ..Self::default()
        }
    }

    pub(super) fn from_element(el: &Element, limits: &DocLimits) -> Result<Self, PidfError> {
        let mut device = Self::new(required_attr(el, "id", "device id")?);
        for child in el.elements() {
            if child.is("deviceID", DATA_MODEL_NS) {
                set_once(&mut device.device_id, token_text(child), "deviceID")?;
            } else if child.is("note", DATA_MODEL_NS) {
                Note::push(&mut device.notes, child, limits.max_notes)?;
            } else if child.is("timestamp", DATA_MODEL_NS) {
                set_once(&mut device.timestamp, token_text(child), "timestamp")?;
            } else {
                room_for(device.extensions.len(), limits.max_items, "extensions")?;
                device.extensions.push(child.clone());
            }
        }
        Ok(device)
    }

    pub(super) fn to_element(&self) -> Element {
        let mut el = Element::new("device", DATA_MODEL_NS).with_attr("id", self.id.clone());
        for ext in &self.extensions {
            el.push_child(ext.clone());
        }
        if let Some(device_id) = &self.device_id {
            el.push_child(text_element("deviceID", DATA_MODEL_NS, device_id));
        }
        for note in &self.notes {
            el.push_child(note.to_element(DATA_MODEL_NS));
        }
        if let Some(ts) = &self.timestamp {
            el.push_child(text_element("timestamp", DATA_MODEL_NS, ts));
        }
        el
    }
}
