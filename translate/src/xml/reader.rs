//! The XMPP stream reader: bytes in, stream events out (RFC 6120 §4, §11).
//!
//! The reader is push-mode: [`StreamReader::feed`] appends input, and
//! [`StreamReader::next_event`] turns as much of it as possible into events. The
//! [`lexer`](super::lexer) cuts complete tokens within a byte budget (so a huge or endless
//! stanza is refused as soon as it outgrows the limit); this module tracks the stream
//! phase, the open elements of the current stanza and the namespace scopes.

use std::fmt;

use super::element::Element;
use super::lexer::{Ctx, Kind, Lexer};
use super::syntax::{self, Mode, RawTag};
use crate::ns;

/// Bounds on what one peer may make the reader hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmlLimits {
    /// Bytes of one top-level stanza, its tags included.
    pub max_stanza_bytes: usize,
    /// Nesting depth inside a stanza; the stanza element itself is depth 1.
    pub max_depth: usize,
    /// Attributes per element, namespace declarations included.
    pub max_attrs: usize,
    /// Length in bytes of an element or attribute name (with its prefix).
    pub max_name_len: usize,
    /// Bytes of the stream header tag (and of the XML declaration before it).
    pub max_header_bytes: usize,
}

impl Default for XmlLimits {
    fn default() -> Self {
        Self {
            max_stanza_bytes: 262_144,
            max_depth: 32,
            max_attrs: 64,
            max_name_len: 256,
            max_header_bytes: 8192,
        }
    }
}

/// The opening `<stream:stream>` tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHeader {
    /// Local name; `stream` in a valid XMPP stream.
    pub name: String,
    /// Resolved namespace; [`ns::STREAM`] in a valid XMPP stream.
    pub ns: String,
    /// The `xmlns` declared on the root (the stanzas' default namespace), if any.
    pub default_ns: Option<String>,
    /// The other attributes (to, from, id, version, xml:lang, ...), in document order.
    pub attrs: Vec<(String, String)>,
}

impl StreamHeader {
    pub fn attr(&self, k: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The stream header's start tag is complete.
    Open(StreamHeader),
    /// A complete depth-1 element, namespaces resolved.
    Stanza(Element),
    /// `</stream:stream>` (or a self-closed root).
    Close,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    #[error("not well-formed: {0}")]
    NotWellFormed(String),
    /// Comments, processing instructions (other than the XML declaration at the start),
    /// DOCTYPE/DTD, entity declarations, references to undeclared entities.
    #[error("restricted XML: {0}")]
    RestrictedXml(&'static str),
    /// Stanza size, depth, attributes, name length, header size.
    #[error("limit exceeded: {0}")]
    LimitExceeded(&'static str),
    /// Undeclared prefix or illegal declaration. Whether the root is in the streams
    /// namespace is the caller's check.
    #[error("invalid namespace: {0}")]
    InvalidNamespace(String),
    /// XML declaration naming an encoding other than UTF-8, or bytes that are not UTF-8.
    #[error("unsupported encoding")]
    UnsupportedEncoding,
    /// Non-whitespace text (or CDATA) at stream level.
    #[error("bad format: {0}")]
    BadFormat(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the stream header.
    Prolog,
    /// Inside the stream.
    Stream,
    /// The root element is closed.
    Closed,
}

/// An element of the current stanza whose end tag has not been read.
#[derive(Debug)]
struct Open {
    /// The name as written, to match the end tag.
    qname: String,
    /// Namespace declarations it pushed onto `scopes`.
    decls: usize,
    el: Element,
}

/// An element after namespace processing.
struct Resolved {
    el: Element,
    decls: usize,
    default_decl: Option<String>,
}

/// Incremental, bounded, namespace-aware reader of one XMPP stream.
pub struct StreamReader {
    limits: XmlLimits,
    lexer: Lexer,
    phase: Phase,
    /// The root's name as written, to match `</stream:stream>`.
    root_qname: String,
    /// In-scope namespace declarations, innermost last: (prefix, uri), "" = default.
    scopes: Vec<(String, String)>,
    /// Open elements of the current stanza, outermost first.
    stack: Vec<Open>,
    /// Bytes of the current stanza consumed so far.
    stanza_bytes: usize,
    /// An event produced together with the previous one (Close after a self-closed root).
    queued: Option<StreamEvent>,
    error: Option<XmlError>,
}

impl fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamReader")
            .field("limits", &self.limits)
            .field("phase", &self.phase)
            .field("depth", &self.stack.len())
            .field("buffered", &self.buffered_len())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl Default for StreamReader {
    fn default() -> Self {
        Self::new(XmlLimits::default())
    }
}

impl StreamReader {
    pub fn new(limits: XmlLimits) -> Self {
        Self {
            limits,
            lexer: Lexer::new(),
            phase: Phase::Prolog,
            root_qname: String::new(),
            scopes: Vec::new(),
            stack: Vec::new(),
            stanza_bytes: 0,
            queued: None,
            error: None,
        }
    }

    pub fn limits(&self) -> XmlLimits {
        self.limits
    }

    /// Changes the limits (e.g. raised after authentication); they apply from the next
    /// call to [`next_event`](Self::next_event), to the stanza in progress too.
    pub fn set_limits(&mut self, limits: XmlLimits) {
        self.limits = limits;
    }

    /// Appends input; never parses by itself. Ignored once the reader has failed.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            self.lexer.feed(bytes);
        }
    }

    /// The next event, or `Ok(None)` when more input is needed. After an error the reader
    /// is poisoned: it drops its input and every later call returns the same error.
    pub fn next_event(&mut self) -> Result<Option<StreamEvent>, XmlError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let result = self.step();
        if let Err(e) = &result {
            self.error = Some(e.clone());
            self.lexer = Lexer::new();
            self.stack = Vec::new();
            self.scopes = Vec::new();
            self.queued = None;
        }
        result
    }

    /// XMPP stream restart (after STARTTLS or SASL): forgets everything but the limits,
    /// drops buffered input and expects a new (optional XML declaration and) header.
    pub fn reset(&mut self) {
        *self = Self::new(self.limits);
    }

    /// Input bytes held: received and not yet parsed, plus those of the stanza in
    /// progress. Zero right after a stanza means nothing was pipelined behind it.
    pub fn buffered_len(&self) -> usize {
        let partial = if self.stack.is_empty() {
            0
        } else {
            self.stanza_bytes
        };
        self.lexer.pending() + partial
    }

    /// Whether everything held is whitespace between stanzas (XML `S`: space, tab, CR,
    /// LF), which a client may write after a top-level element (e.g. a newline after
    /// `<starttls/>`): no stanza in progress, no other byte received. True when nothing
    /// is held; false once the reader has failed.
    pub fn only_whitespace_buffered(&self) -> bool {
        self.error.is_none()
            && self.queued.is_none()
            && self.stack.is_empty()
            && self
                .lexer
                .pending_bytes()
                .iter()
                .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    }

    fn step(&mut self) -> Result<Option<StreamEvent>, XmlError> {
        if let Some(ev) = self.queued.take() {
            return Ok(Some(ev));
        }
        loop {
            let (ctx, budget, label) = match self.phase {
                Phase::Prolog => (Ctx::Prolog, self.limits.max_header_bytes, "header size"),
                Phase::Stream if self.stack.is_empty() => {
                    (Ctx::Stream, self.limits.max_stanza_bytes, "stanza size")
                }
                Phase::Stream => (
                    Ctx::Stanza,
                    self.limits
                        .max_stanza_bytes
                        .saturating_sub(self.stanza_bytes),
                    "stanza size",
                ),
                Phase::Closed => (Ctx::Epilog, usize::MAX, "stream"),
            };
            let Some(tok) = self.lexer.next_token(ctx, budget, label)? else {
                return Ok(None);
            };
            if self.phase == Phase::Stream {
                self.stanza_bytes += tok.len();
            }
            let inner = self.lexer.inner(&tok);
            let event = match tok.kind {
                Kind::Decl => {
                    syntax::parse_decl(syntax::utf8(inner)?, &self.limits)?;
                    None
                }
                Kind::Start => {
                    let raw = syntax::parse_start_tag(syntax::utf8(inner)?, &self.limits)?;
                    self.start_element(raw)?
                }
                Kind::End => {
                    let name = syntax::parse_end_tag(syntax::utf8(inner)?, &self.limits)?;
                    let expected = match (self.phase, self.stack.last()) {
                        (Phase::Prolog, _) => {
                            return Err(XmlError::NotWellFormed(
                                "end tag before the stream header".into(),
                            ))
                        }
                        (_, Some(open)) => &open.qname,
                        (_, None) => &self.root_qname,
                    };
                    if name != expected {
                        return Err(XmlError::NotWellFormed("mismatched end tag".into()));
                    }
                    self.end_element()
                }
                Kind::Text | Kind::Cdata => {
                    let mode = if tok.kind == Kind::Text {
                        Mode::Text
                    } else {
                        Mode::Cdata
                    };
                    let mut text = String::new();
                    syntax::decode(syntax::utf8(inner)?, &mut text, mode)?;
                    if let Some(open) = self.stack.last_mut() {
                        open.el.push_text(text);
                    }
                    None
                }
            };
            if event.is_some() {
                return Ok(event);
            }
        }
    }

    fn start_element(&mut self, raw: RawTag) -> Result<Option<StreamEvent>, XmlError> {
        if self.phase == Phase::Prolog {
            let Resolved {
                el, default_decl, ..
            } = self.resolve(&raw)?;
            self.root_qname = raw.qname;
            let header = StreamHeader {
                name: el.name,
                ns: el.ns,
                default_ns: default_decl,
                attrs: el.attrs,
            };
            if raw.empty {
                self.phase = Phase::Closed;
                self.scopes.clear();
                self.queued = Some(StreamEvent::Close);
            } else {
                self.phase = Phase::Stream;
            }
            return Ok(Some(StreamEvent::Open(header)));
        }
        if self.stack.len() >= self.limits.max_depth {
            return Err(XmlError::LimitExceeded("depth"));
        }
        let Resolved { el, decls, .. } = self.resolve(&raw)?;
        if raw.empty {
            self.scopes.truncate(self.scopes.len() - decls);
            return Ok(self.attach(el));
        }
        self.stack.push(Open {
            qname: raw.qname,
            decls,
            el,
        });
        Ok(None)
    }

    /// Closes the innermost open element (or the stream); its name was already checked.
    fn end_element(&mut self) -> Option<StreamEvent> {
        match self.stack.pop() {
            Some(open) => {
                self.scopes.truncate(self.scopes.len() - open.decls);
                self.attach(open.el)
            }
            None => {
                self.phase = Phase::Closed;
                self.scopes.clear();
                self.stanza_bytes = 0;
                Some(StreamEvent::Close)
            }
        }
    }

    /// Adds a finished element to its parent, or hands it out as a stanza.
    fn attach(&mut self, el: Element) -> Option<StreamEvent> {
        match self.stack.last_mut() {
            Some(parent) => {
                parent.el.push_child(el);
                None
            }
            None => {
                self.stanza_bytes = 0;
                Some(StreamEvent::Stanza(el))
            }
        }
    }

    fn lookup(&self, prefix: &str) -> Option<&str> {
        if prefix == "xml" {
            return Some(ns::XML);
        }
        let found = self
            .scopes
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, u)| u.as_str());
        match found {
            None if prefix.is_empty() => Some(""),
            other => other,
        }
    }

    /// Pushes the tag's namespace declarations and resolves its names.
    fn resolve(&mut self, raw: &RawTag) -> Result<Resolved, XmlError> {
        let invalid = |msg: &str| XmlError::InvalidNamespace(msg.to_owned());
        let mut decls = 0;
        let mut default_decl = None;
        let mut plain = Vec::with_capacity(raw.attrs.len());
        for (k, v) in &raw.attrs {
            if k == "xmlns" {
                if v == ns::XML || v == ns::XMLNS {
                    return Err(invalid("reserved namespace as default namespace"));
                }
                default_decl = Some(v.clone());
                self.scopes.push((String::new(), v.clone()));
                decls += 1;
            } else if let Some(prefix) = k.strip_prefix("xmlns:") {
                if prefix == "xmlns" || v == ns::XMLNS {
                    return Err(invalid("the xmlns prefix cannot be declared"));
                }
                if (prefix == "xml") != (v == ns::XML) {
                    return Err(invalid("the xml prefix is bound to the XML namespace only"));
                }
                if v.is_empty() {
                    return Err(invalid("a prefix cannot be undeclared"));
                }
                self.scopes.push((prefix.to_owned(), v.clone()));
                decls += 1;
            } else {
                plain.push((k, v));
            }
        }
        let (prefix, local) = raw.qname.split_once(':').unwrap_or(("", &raw.qname));
        if prefix == "xml" || prefix == "xmlns" {
            return Err(invalid("reserved prefix on an element"));
        }
        let ns = self
            .lookup(prefix)
            .ok_or_else(|| XmlError::InvalidNamespace(format!("undeclared prefix {prefix:?}")))?
            .to_owned();
        let mut attrs: Vec<(String, String)> = Vec::with_capacity(plain.len());
        for (k, v) in plain {
            let name = match k.split_once(':') {
                Some(("xml", _)) | None => k.clone(),
                Some((p, l)) => {
                    let uri = self.lookup(p).ok_or_else(|| {
                        XmlError::InvalidNamespace(format!("undeclared prefix {p:?}"))
                    })?;
                    format!("{{{uri}}}{l}")
                }
            };
            if attrs.iter().any(|(n, _)| *n == name) {
                return Err(XmlError::NotWellFormed("duplicate attribute".into()));
            }
            attrs.push((name, v.clone()));
        }
        let el = Element {
            name: local.to_owned(),
            ns,
            attrs,
            children: Vec::new(),
        };
        Ok(Resolved {
            el,
            decls,
            default_decl,
        })
    }
}
