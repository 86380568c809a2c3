//! The one error type of the presence documents.

use crate::xml::{SerializeError, XmlError};

/// Why a presence document (PIDF, dialog-info, watcherinfo) was refused or could not be
/// written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PidfError {
    /// The document is longer than [`DocLimits::max_bytes`](super::DocLimits).
    #[error("document of {0} bytes is over the size limit")]
    TooLarge(usize),
    /// Not well-formed XML, restricted XML (comments, DTDs), bad namespaces, or one of
    /// the reader's limits (depth, attributes, names).
    #[error("malformed XML: {0}")]
    Xml(#[from] XmlError),
    /// The input ends before the root element is closed.
    #[error("the document ends before its root element closes")]
    Incomplete,
    /// The root element is not the one the document type requires.
    #[error("root element <{name}/> in {ns:?} is not <{expected}/>")]
    WrongRoot {
        name: String,
        ns: String,
        expected: &'static str,
    },
    /// A required element or attribute is absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A value outside its type (e.g. `<basic>maybe</basic>`), or a second copy of an
    /// element that may appear once.
    #[error("invalid {what}: {value:?}")]
    Invalid { what: &'static str, value: String },
    /// More items of one kind than [`DocLimits`](super::DocLimits) allows.
    #[error("too many {0}")]
    TooMany(&'static str),
    /// A body type that is none of the presence documents.
    #[error("unsupported content type {0:?}")]
    UnsupportedContentType(String),
    /// The model holds a name that is not an XML name (only possible for values built
    /// by hand, e.g. an extension element or a mood name).
    #[error("cannot serialize: {0}")]
    Serialize(#[from] SerializeError),
}

impl PidfError {
    pub(crate) fn invalid(what: &'static str, value: impl Into<String>) -> Self {
        Self::Invalid {
            what,
            value: value.into(),
        }
    }
}
