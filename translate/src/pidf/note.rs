//! `<note/>`: human-readable text with an optional language (RFC 3863 §4.1.6; the same
//! shape in the data-model and RPID namespaces).

use super::document::room_for;
use super::error::PidfError;
use crate::xml::Element;

/// A note and its `xml:lang`. The text is kept as written, whitespace included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub lang: Option<String>,
}

impl Note {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            lang: None,
        }
    }

    pub fn with_lang(mut self, lang: impl Into<String>) -> Self {
        self.lang = Some(lang.into());
        self
    }

    pub(super) fn from_element(el: &Element) -> Self {
        Self {
            text: el.text(),
            lang: el.attr("xml:lang").map(str::to_owned),
        }
    }

    pub(super) fn to_element(&self, ns: &str) -> Element {
        let mut el = Element::new("note", ns);
        if let Some(lang) = &self.lang {
            el.set_attr("xml:lang", lang.clone());
        }
        el.with_text(self.text.clone())
    }

    /// Adds a parsed note to `notes`, within the limit.
    pub(super) fn push(notes: &mut Vec<Self>, el: &Element, max: usize) -> Result<(), PidfError> {
        room_for(notes.len(), max, "notes")?;
        notes.push(Self::from_element(el));
        Ok(())
    }

    /// The note for `lang`: the one in that language, else one without a language,
    /// else the first.
    pub fn pick<'a>(notes: &'a [Self], lang: Option<&str>) -> Option<&'a Self> {
        lang.and_then(|l| {
            notes.iter().find(|n| {
                n.lang
                    .as_deref()
                    .is_some_and(|nl| nl.eq_ignore_ascii_case(l))
            })
        })
        .or_else(|| notes.iter().find(|n| n.lang.is_none()))
        .or_else(|| notes.first())
    }
}
