//! Reading a whole XML document into one element tree, within limits, and writing one
//! back. Shared by the PIDF, dialog-info and watcherinfo models.
//!
//! Herald's [`StreamReader`] reports the root's start tag as the stream header and each
//! child of the root as a stanza; a document is the root with those children attached.
//! Text directly under the root may only be whitespace, which every document type here
//! allows (their roots hold elements only).

use super::error::PidfError;
use crate::xml::{Element, StreamEvent, StreamReader, XmlLimits};

/// Bounds on what one presence document may make Herald hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocLimits {
    /// Bytes of the whole document.
    pub max_bytes: usize,
    /// Element depth below the root.
    pub max_depth: usize,
    /// Children of the root element.
    pub max_children: usize,
    /// Items of one kind: tuples, persons, devices, activities, dialogs, watcher lists,
    /// watchers of one list.
    pub max_items: usize,
    /// Notes on one element.
    pub max_notes: usize,
}

impl Default for DocLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024,
            max_depth: 16,
            max_children: 256,
            max_items: 64,
            max_notes: 16,
        }
    }
}

/// Reads `xml` (UTF-8, an optional XML declaration, one root element) into the root's
/// element tree.
pub(super) fn read_document(xml: &[u8], limits: &DocLimits) -> Result<Element, PidfError> {
    if xml.len() > limits.max_bytes {
        return Err(PidfError::TooLarge(xml.len()));
    }
    let mut reader = StreamReader::new(XmlLimits {
        max_stanza_bytes: limits.max_bytes,
        max_depth: limits.max_depth,
        max_attrs: 32,
        max_name_len: 256,
        max_header_bytes: limits.max_bytes,
    });
    reader.feed(xml);
    let mut root: Option<Element> = None;
    let mut closed = false;
    while let Some(event) = reader.next_event()? {
        match event {
            StreamEvent::Open(header) => {
                root = Some(Element {
                    name: header.name,
                    ns: header.ns,
                    attrs: header.attrs,
                    children: Vec::new(),
                });
            }
            StreamEvent::Stanza(child) => {
                // The reader reports no stanza before the header.
                let Some(root) = root.as_mut() else {
                    return Err(PidfError::Incomplete);
                };
                if root.children.len() >= limits.max_children {
                    return Err(PidfError::TooMany("elements under the root"));
                }
                root.push_child(child);
            }
            StreamEvent::Close => closed = true,
        }
    }
    match root {
        Some(root) if closed => Ok(root),
        _ => Err(PidfError::Incomplete),
    }
}

/// Checks that `root` is `<name/>` in `ns`.
pub(super) fn expect_root(
    root: &Element,
    name: &'static str,
    ns: &'static str,
) -> Result<(), PidfError> {
    if root.is(name, ns) {
        Ok(())
    } else {
        Err(PidfError::WrongRoot {
            name: root.name.clone(),
            ns: root.ns.clone(),
            expected: name,
        })
    }
}

/// The document text of `root`: an XML declaration and the tree, namespaces declared
/// where they change.
pub(super) fn write_document(root: &Element) -> Result<String, PidfError> {
    let mut out = String::from("<?xml version='1.0' encoding='UTF-8'?>\n");
    root.write_to(&mut out, "")?;
    Ok(out)
}

/// The element's direct text with surrounding XML whitespace removed, for values of
/// token-like types (`basic`, URIs, timestamps, ids).
pub(super) fn token_text(el: &Element) -> String {
    el.text()
        .trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
        .to_owned()
}

/// A required attribute.
pub(super) fn required_attr(
    el: &Element,
    name: &str,
    what: &'static str,
) -> Result<String, PidfError> {
    el.attr(name)
        .map(str::to_owned)
        .ok_or(PidfError::Missing(what))
}

/// Fails when `count` items of `what` reached `max` and one more is coming.
pub(super) fn room_for(count: usize, max: usize, what: &'static str) -> Result<(), PidfError> {
    if count >= max {
        Err(PidfError::TooMany(what))
    } else {
        Ok(())
    }
}

/// Stores the value of a singleton element, refusing a second copy.
pub(super) fn set_once<T>(
    slot: &mut Option<T>,
    value: T,
    what: &'static str,
) -> Result<(), PidfError> {
    if slot.is_some() {
        return Err(PidfError::invalid(what, "a second copy"));
    }
    *slot = Some(value);
    Ok(())
}

/// `<name>text</name>` in `ns`.
pub(super) fn text_element(name: &str, ns: &str, text: &str) -> Element {
    Element::new(name, ns).with_text(text)
}
