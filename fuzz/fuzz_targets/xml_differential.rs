//! Differential fuzzing of Herald's XMPP stream reader against `rxml`, an independent
//! restricted XML 1.0 + Namespaces parser.
//!
//! The first input byte holds flags (bit 0: prepend an XML declaration, bit 1: prepend a
//! client stream header); the rest is the stream. Both parsers get the whole document
//! without an end-of-file (an XMPP stream has none). rxml's events are assembled into
//! the shape of Herald's: the root's start tag is the stream header, each complete
//! top-level child a stanza, the root's end tag the close.
//!
//! Checks, on the events both produced:
//! - the common prefix of events is equal (names, namespaces, attributes as sets, text);
//! - an event one parser completed while the other refused the document is a
//!   disagreement, as is an event one parser completed while the other still waits;
//! - when both produced the same events and one refused while the other waits (Herald
//!   judges a token once it is complete, rxml byte by byte), the document is continued
//!   in a few ways that finish the pending token and close the open elements: an error
//!   is final (no continuation of a refused prefix is well-formed), so the waiting
//!   parser must not complete another event with any of them.
//!
//! Differences by design, normalized here:
//! - XMPP forbids character data at stream level (RFC 6120 §11.1) but whitespace:
//!   rxml accepts it, so non-whitespace text between stanzas counts as a refusal on
//!   rxml's side too. Herald takes only literal whitespace there: a character reference
//!   or a CDATA section at stream level is refused even when it stands for whitespace,
//!   so rxml's whitespace text that was not read literally (its byte count differs from
//!   its length; rxml gets line ends already read) counts as a refusal as well.
//! - Herald's limits: all are set beyond what a fuzz input can reach except depth, and
//!   past a depth-limit error nothing more is compared.
//! - Elements in the XML namespace (`<xml:x>`) are namespace-well-formed, but Herald
//!   refuses them with `invalid-namespace`: its serializer writes names without prefixes,
//!   and no default namespace declaration may name the XML namespace, so it could not
//!   pass such an element on.
//! - A start tag that declares one prefix, or the default namespace, twice is not
//!   well-formed (an attribute appears twice, XML 1.0 §3.1); rxml 0.14 lets it pass.
//! - Character references may have any number of digits (XML 1.0 §4.1); rxml 0.14
//!   reads at most 8 and refuses longer ones such as `&#0000000065;`.
//! - Line ends. XML reads CR LF and a lone CR as LF before anything else (§2.11).
//!   rxml 0.14 refuses a lone CR in an attribute value and keeps CR LF after a `]` in
//!   a CDATA section, so rxml gets the document with its line ends already read; Herald
//!   gets the raw bytes, so its own line-end handling is still compared.
//! - The prolog. XML allows a byte order mark and whitespace before the root (XML 1.0
//!   §2.8, §4.3.3) and Herald accepts both; rxml 0.14 refuses both (for the whitespace,
//!   against its own grammar), so rxml gets the document without them. The XML
//!   declaration is judged on its own first: Herald accepts any `1.x` version (XML 1.0
//!   §2.8 asks 1.0 processors to) and `standalone='no'`, rxml neither; where only
//!   those set them apart, rxml gets a plain declaration instead.
//! - rxml's name character tables (rxml_validation 0.12) lack U+FDF0-U+FFFD, which XML
//!   1.0 (fifth edition) §2.3 allows in names; an rxml refusal of such a character ends
//!   the comparison.

#![no_main]

use herald_translate::{Element, Node, StreamEvent, StreamReader, XmlError, XmlLimits};
use libfuzzer_sys::fuzz_target;
use rxml::error::EndOrError;
use rxml::{Event, Options, Parse, Parser, RawEvent, RawParser, WithOptions};

const DECL: &[u8] = b"<?xml version='1.0' encoding='UTF-8'?>";
const HEAD: &[u8] = b"<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

const MAX_DEPTH: usize = 64;
const LIMITS: XmlLimits = XmlLimits {
    max_stanza_bytes: 1 << 24,
    max_depth: MAX_DEPTH,
    max_attrs: 1 << 24,
    max_name_len: 1 << 24,
    max_header_bytes: 1 << 24,
};

/// A stream event in a form both parsers' output converts to.
#[derive(Debug, PartialEq)]
enum Ev {
    /// The root's name, namespace and attributes (declarations excluded).
    Open(String, String, Vec<(String, String)>),
    Stanza(Element),
    Close,
}

/// How a run ended.
#[derive(Debug, PartialEq)]
enum End {
    /// All input used, more is needed.
    Waiting,
    Refused(String),
    /// Herald's depth limit: nothing after it is compared.
    Limit,
    /// A construct where rxml departs from XML 1.0: nothing after it is compared.
    RxmlDeviation,
}

/// Attributes in a canonical order: Herald keeps document order, rxml a map.
fn sorted(mut attrs: Vec<(String, String)>) -> Vec<(String, String)> {
    attrs.sort();
    attrs
}

fn canonical(el: &Element) -> Element {
    let mut out = Element::new(el.name.clone(), el.ns.clone());
    out.attrs = sorted(el.attrs.clone());
    for child in &el.children {
        match child {
            Node::Element(e) => out.push_child(canonical(e)),
            Node::Text(t) => out.push_text(t.clone()),
        }
    }
    out
}

fn herald(doc: &[u8]) -> (Vec<Ev>, End) {
    let mut reader = StreamReader::new(LIMITS);
    reader.feed(doc);
    let mut events = Vec::new();
    loop {
        match reader.next_event() {
            Ok(Some(StreamEvent::Open(h))) => events.push(Ev::Open(h.name, h.ns, sorted(h.attrs))),
            Ok(Some(StreamEvent::Stanza(el))) => events.push(Ev::Stanza(canonical(&el))),
            Ok(Some(StreamEvent::Close)) => events.push(Ev::Close),
            Ok(None) => return (events, End::Waiting),
            Err(XmlError::LimitExceeded("depth")) => return (events, End::Limit),
            Err(e) => return (events, End::Refused(format!("{e:?}"))),
        }
    }
}

/// Herald's spelling of an attribute name.
fn attr_name(ns: &str, local: &str) -> String {
    match ns {
        "" => local.to_owned(),
        XML_NS => format!("xml:{local}"),
        _ => format!("{{{ns}}}{local}"),
    }
}

fn is_xml_ws(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// Builds stream events from rxml's SAX-like events.
#[derive(Default)]
struct Builder {
    /// Open elements below the root.
    stack: Vec<Element>,
    root_open: bool,
    events: Vec<Ev>,
}

impl Builder {
    /// Takes one event; `Err` ends the run.
    fn take(&mut self, ev: Event) -> Result<(), End> {
        match ev {
            Event::XmlDeclaration(..) => {}
            Event::StartElement(_, (ns, local), attrs) => {
                let attrs: Vec<(String, String)> = attrs
                    .into_iter()
                    .map(|((ans, alocal), v)| (attr_name(ans.as_str(), alocal.as_str()), v))
                    .collect();
                let (ns, local) = (ns.as_str().to_owned(), local.as_str().to_owned());
                if !self.root_open {
                    self.root_open = true;
                    self.events.push(Ev::Open(local, ns, sorted(attrs)));
                } else {
                    if self.stack.len() >= MAX_DEPTH {
                        return Err(End::Limit);
                    }
                    let mut el = Element::new(local, ns);
                    el.attrs = sorted(attrs);
                    self.stack.push(el);
                }
            }
            Event::EndElement(_) => match self.stack.pop() {
                None => self.events.push(Ev::Close),
                Some(el) => match self.stack.last_mut() {
                    Some(parent) => parent.push_child(el),
                    None => self.events.push(Ev::Stanza(el)),
                },
            },
            Event::Text(metrics, text) => match self.stack.last_mut() {
                Some(el) => el.push_text(text),
                // XMPP's rule and Herald's, not XML's: see the module comment.
                None if !is_xml_ws(&text) => {
                    return Err(End::Refused("text at stream level".into()))
                }
                None if metrics.len() != text.len() => {
                    return Err(End::Refused("reference or CDATA at stream level".into()))
                }
                None => {}
            },
        }
        Ok(())
    }
}

fn rxml(doc: &[u8]) -> (Vec<Ev>, End) {
    let options = Options {
        // No token is longer than the document; rxml reserves this much up front.
        max_token_length: doc.len() + 16,
        ..Options::default()
    };
    let mut parser = Parser::with_options(options);
    // Text is reported as soon as it is read, as Herald judges stream-level text.
    parser.set_text_buffering(false);
    let mut builder = Builder::default();
    let mut rest = doc;
    let end = loop {
        match parser.parse(&mut rest, false) {
            Ok(Some(ev)) => {
                if let Err(end) = builder.take(ev) {
                    break end;
                }
            }
            Ok(None) | Err(EndOrError::NeedMoreData) => break End::Waiting,
            Err(EndOrError::Error(rxml::Error::UnexpectedChar(_, c, _)))
                if ('\u{FDF0}'..='\u{FFFD}').contains(&c) =>
            {
                break End::RxmlDeviation
            }
            Err(EndOrError::Error(rxml::Error::UndeclaredEntity))
                if long_char_ref(doc, doc.len() - rest.len()) =>
            {
                break End::RxmlDeviation
            }
            Err(EndOrError::Error(e)) => break End::Refused(format!("{e:?}")),
        }
    };
    (builder.events, end)
}

/// Whether the reference that ends before `pos` (where rxml stopped) is a character
/// reference with more than 8 digits, e.g. `&#0000000065;`.
fn long_char_ref(doc: &[u8], pos: usize) -> bool {
    let Some(amp) = doc[..pos].iter().rposition(|&b| b == b'&') else {
        return false;
    };
    let Some(reference) = doc[amp..].strip_prefix(b"&#") else {
        return false;
    };
    let (digits, hex) = match reference.strip_prefix(b"x") {
        Some(hex) => (hex, true),
        None => (reference, false),
    };
    let n = digits
        .iter()
        .take_while(|b| {
            if hex {
                b.is_ascii_hexdigit()
            } else {
                b.is_ascii_digit()
            }
        })
        .count();
    n > 8 && digits.get(n) == Some(&b';')
}

/// The qualified names of the elements open where rxml stops reading `doc`, innermost
/// last.
fn open_elements(doc: &[u8]) -> Vec<String> {
    let mut parser = RawParser::new();
    let mut rest = doc;
    let mut open = Vec::new();
    while let Ok(Some(ev)) = parser.parse(&mut rest, false) {
        match ev {
            RawEvent::ElementHeadOpen(_, (Some(prefix), local)) => {
                open.push(format!("{prefix}:{local}"))
            }
            RawEvent::ElementHeadOpen(_, (None, local)) => open.push(local.to_string()),
            RawEvent::ElementFoot(_) => {
                open.pop();
            }
            _ => {}
        }
    }
    open
}

/// Both parsers completed the same `events`, one refused the rest and the other wants
/// more. Errors are final (no continuation of a refused prefix is well-formed), so the
/// waiting parser must not complete another event whatever follows. Tries a few
/// continuations that finish the token in progress and close every open element.
fn check_undecided(doc: &[u8], events: usize, h_end: &End, r_end: &End) {
    let herald_waits = match (h_end, r_end) {
        (End::Waiting, End::Refused(_)) => true,
        (End::Refused(_), End::Waiting) => false,
        _ => return,
    };
    let closers: String = open_elements(&for_rxml(doc))
        .iter()
        .rev()
        .map(|name| format!("</{name}>"))
        .collect();
    for finish in ["", ">", "'>", "\">", "]]>", "?>", "<"] {
        let extended = [doc, finish.as_bytes(), closers.as_bytes()].concat();
        let (more, end) = if herald_waits {
            herald(&extended)
        } else {
            rxml(&for_rxml(&extended))
        };
        if matches!(end, End::Limit | End::RxmlDeviation) {
            continue;
        }
        let by_design = |ev: &Ev| {
            !herald_waits && herald_refuses_by_design(h_end, Some(ev), &for_rxml(&extended))
        };
        if let Some(ev) = more.get(events).filter(|ev| !by_design(ev)) {
            panic!(
                "{} completed an event the other refused:\nherald: {h_end:?}\nrxml:   {r_end:?}\n\
                 continued with {finish:?}{closers:?}: {ev:?}",
                if herald_waits { "herald" } else { "rxml" }
            );
        }
    }
}

/// Whether the event holds an element in the XML namespace (`<xml:x>`).
fn has_xml_namespace_element(ev: &Ev) -> bool {
    fn walk(el: &Element) -> bool {
        el.ns == XML_NS || el.elements().any(walk)
    }
    match ev {
        Ev::Open(_, ns, _) => ns == XML_NS,
        Ev::Stanza(el) => walk(el),
        Ev::Close => false,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Line ends as XML reads them (XML 1.0 §2.11): CR LF and a lone CR become LF.
fn lf(doc: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(doc.len());
    for (i, &b) in doc.iter().enumerate() {
        match b {
            b'\r' if doc.get(i + 1) == Some(&b'\n') => {}
            b'\r' => out.push(b'\n'),
            b => out.push(b),
        }
    }
    out
}

/// The document as rxml gets it: see "line ends" and "the prolog" in the module
/// comment.
fn for_rxml(doc: &[u8]) -> Vec<u8> {
    let doc = &lf(doc);
    let doc = doc.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(doc);
    if !doc.starts_with(b"<?xml") {
        // XML's whitespace (`S`), which is not Rust's ASCII whitespace (no form feed).
        let ws = doc
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .count();
        let body = &doc[ws..];
        // Whitespace before a declaration is an error for both; keep it.
        return if body.starts_with(b"<?") { doc } else { body }.to_vec();
    }
    let Some(end) = doc.windows(2).position(|w| w == b"?>").map(|i| i + 2) else {
        return doc.to_vec();
    };
    let (decl, rest) = doc.split_at(end);
    let probe = |decl: &[u8]| [decl, b"<a/>"].concat();
    let herald_ok = herald(&probe(decl)).0.len() == 2;
    let rxml_ok = rxml(&probe(decl)).0.len() == 2;
    if herald_ok == rxml_ok {
        return doc.to_vec();
    }
    let known = herald_ok
        && (contains(decl, b"standalone")
            || !(contains(decl, b"version='1.0'") || contains(decl, b"version=\"1.0\"")));
    assert!(
        known,
        "XML declaration judged differently: herald {herald_ok}, rxml {rxml_ok}"
    );
    [DECL, rest].concat()
}

/// Whether some start tag declares the same namespace prefix (or the default namespace)
/// twice, which rxml 0.14 lets pass (the last declaration wins).
fn duplicate_declaration(doc: &[u8]) -> bool {
    let mut parser = RawParser::new();
    let mut rest = doc;
    let mut seen: Vec<String> = Vec::new();
    while let Ok(Some(ev)) = parser.parse(&mut rest, false) {
        match ev {
            RawEvent::ElementHeadOpen(..) => seen.clear(),
            RawEvent::Attribute(_, (prefix, local), _) => {
                let name = match prefix {
                    Some(p) if p.as_str() == "xmlns" => format!("xmlns:{local}"),
                    None if local.as_str() == "xmlns" => "xmlns".to_owned(),
                    _ => continue,
                };
                if seen.contains(&name) {
                    return true;
                }
                seen.push(name);
            }
            _ => {}
        }
    }
    false
}

/// Whether Herald refusing what rxml accepted (`next`, rxml's next event, if any) is
/// one of the differences by design in the module comment.
fn herald_refuses_by_design(h_end: &End, next: Option<&Ev>, rdoc: &[u8]) -> bool {
    let End::Refused(e) = h_end else {
        return false;
    };
    e == "BadFormat(\"CDATA section at stream level\")"
        || (e.starts_with("InvalidNamespace") && next.is_some_and(has_xml_namespace_element))
        || (e == "NotWellFormed(\"duplicate attribute\")" && duplicate_declaration(rdoc))
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let mut doc = Vec::with_capacity(DECL.len() + HEAD.len() + body.len());
    if flags & 1 != 0 {
        doc.extend_from_slice(DECL);
    }
    if flags & 2 != 0 {
        doc.extend_from_slice(HEAD);
    }
    doc.extend_from_slice(body);
    let rdoc = for_rxml(&doc);

    let (h, h_end) = herald(&doc);
    let (r, r_end) = rxml(&rdoc);
    let common = h.len().min(r.len());
    assert_eq!(h[..common], r[..common], "events differ");
    if [&h_end, &r_end]
        .iter()
        .any(|e| matches!(e, End::Limit | End::RxmlDeviation))
    {
        return;
    }
    if h.len() == r.len() {
        check_undecided(&doc, common, &h_end, &r_end);
        return;
    }
    if h.len() < r.len() && herald_refuses_by_design(&h_end, r.get(common), &rdoc) {
        return;
    }
    panic!(
        "one parser completed an event the other did not:\n\
         herald: {h_end:?} after {} events\nrxml:   {r_end:?} after {} events\n\
         next: {:?}",
        h.len(),
        r.len(),
        if h.len() > r.len() {
            &h[common]
        } else {
            &r[common]
        }
    );
});
