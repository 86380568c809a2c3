//! Incremental, bounded, namespace-aware XML stream reader for XMPP (RFC 6120 §4, §11),
//! the element tree and its serializer.
//!
//! - [`StreamReader`]: push-mode reader; feed bytes in any chunking, pull [`StreamEvent`]s.
//! - [`Element`] / [`Node`]: a stanza with resolved namespaces; [`Element::to_xml`] writes
//!   it back without prefixes, refusing names that are not XML names
//!   ([`SerializeError`]).

mod element;
mod lexer;
mod reader;
mod syntax;

#[cfg(test)]
mod reader_tests;

pub use element::{escape, Element, Node, SerializeError};
pub use reader::{StreamEvent, StreamHeader, StreamReader, XmlError, XmlLimits};
