//! Property tests of the XML stream reader and the element serializer.

use herald_translate::{Element, Node, StreamEvent, StreamReader, XmlError, XmlLimits};
use proptest::prelude::*;

const HEAD: &str = "<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Characters for text and attribute values: anything XML can carry, with the ones that
/// need escaping or normalization well represented.
fn xml_string() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        3 => any::<char>().prop_filter("XML Char", |&c| is_xml_char(c)),
        2 => prop::sample::select(vec!['<', '>', '&', '\'', '"', '\r', '\n', '\t', ' ', ']', ';', '#']),
        1 => prop::sample::select(vec!['é', 'ß', '中', '😀', '\u{FFFD}', '\u{E000}']),
    ];
    prop::collection::vec(ch, 0..12).prop_map(|v| v.into_iter().collect())
}

fn ncname() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_.-]{0,7}",
        "[a-z\u{e0}-\u{f6}\u{4e00}-\u{4e20}][a-z0-9\u{b7}\u{300}-\u{302}\u{e0}-\u{f6}]{0,5}",
    ]
}

fn namespace() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "",
        "jabber:client",
        "urn:x",
        "urn:y&'<\"",
        "http://jabber.org/protocol/disco#info",
    ])
    .prop_map(str::to_owned)
}

fn attr_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => ncname().prop_filter("not a declaration", |n| n != "xmlns"),
        1 => Just("xml:lang".to_owned()),
        1 => (namespace().prop_filter("namespaced", |n| !n.is_empty()), ncname())
            .prop_map(|(ns, l)| format!("{{{ns}}}{l}")),
    ]
}

fn leaf() -> impl Strategy<Value = Element> {
    (
        ncname(),
        namespace(),
        prop::collection::vec((attr_name(), xml_string()), 0..4),
    )
        .prop_map(|(name, ns, attrs)| {
            attrs
                .into_iter()
                .fold(Element::new(name, ns), |e, (k, v)| e.with_attr(k, v))
        })
}

#[derive(Debug, Clone)]
enum Part {
    Child(Element),
    Text(String),
}

fn element() -> impl Strategy<Value = Element> {
    leaf().prop_recursive(4, 40, 5, |inner| {
        let part = prop_oneof![
            inner.prop_map(Part::Child),
            xml_string().prop_map(Part::Text)
        ];
        (leaf(), prop::collection::vec(part, 0..5)).prop_map(|(mut e, parts)| {
            for p in parts {
                match p {
                    Part::Child(c) => e.push_child(c),
                    Part::Text(t) => e.push_text(t),
                }
            }
            e
        })
    })
}

/// Feeds the chunks, draining after each; stops at the first error. Also checks that the
/// reader never holds much more than its limits.
fn run<'a>(
    limits: XmlLimits,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<StreamEvent>, Option<XmlError>) {
    let bound = limits.max_stanza_bytes.max(limits.max_header_bytes) + 16;
    let mut r = StreamReader::new(limits);
    let mut out = Vec::new();
    for chunk in chunks {
        r.feed(chunk);
        loop {
            match r.next_event() {
                Ok(Some(ev)) => out.push(ev),
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(r.buffered_len(), 0);
                    assert_eq!(r.next_event(), Err(e.clone()));
                    return (out, Some(e));
                }
            }
        }
        assert!(
            r.buffered_len() <= bound,
            "holding {} bytes",
            r.buffered_len()
        );
    }
    (out, None)
}

fn chunked(doc: &[u8], sizes: &[usize]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = doc;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(1)
            .clamp(1, rest.len());
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
        i += 1;
    }
    out
}

/// A stream document: optional declaration, header, stanzas with keepalives, optional
/// close.
fn document() -> impl Strategy<Value = (Vec<Element>, String)> {
    (
        any::<bool>(),
        prop::collection::vec((element(), "[ \t\r\n]{0,3}"), 0..4),
        any::<bool>(),
    )
        .prop_map(|(decl, stanzas, close)| {
            let mut doc = String::new();
            if decl {
                doc.push_str("<?xml version='1.0' encoding='UTF-8'?>\n");
            }
            doc.push_str(HEAD);
            let mut els = Vec::new();
            for (el, ws) in stanzas {
                el.write_to(&mut doc, "jabber:client").unwrap();
                doc.push_str(&ws);
                els.push(el);
            }
            if close {
                doc.push_str("</stream:stream>");
            }
            (els, doc)
        })
}

/// A document, possibly damaged: bytes inserted at one place and/or cut short.
fn damaged() -> impl Strategy<Value = Vec<u8>> {
    let junk = prop_oneof![
        prop::collection::vec(any::<u8>(), 1..6),
        prop::sample::select(vec![
            "<!--",
            "<?pi?>",
            "&foo;",
            "<a>",
            "</b>",
            "<![CDATA[",
            "]]>",
            "x",
            "'",
            "<",
            "&#0;",
            "\u{e9}",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ];
    (
        document(),
        any::<prop::sample::Index>(),
        prop::option::of(junk),
        any::<prop::sample::Index>(),
    )
        .prop_map(|((_, doc), at, junk, cut)| {
            let mut bytes = doc.into_bytes();
            if let Some(j) = junk {
                let i = at.index(bytes.len() + 1);
                bytes.splice(i..i, j);
            }
            let keep = bytes.len() - cut.index(bytes.len() + 1) / 4;
            bytes.truncate(keep);
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Serialize → parse gives the same element.
    #[test]
    fn serialize_then_parse_round_trips(el in element()) {
        let doc = format!("{HEAD}{}", el.to_xml("jabber:client").unwrap());
        let (evs, e) = run(XmlLimits::default(), [doc.as_bytes()]);
        prop_assert_eq!(e, None);
        prop_assert_eq!(evs.len(), 2);
        prop_assert_eq!(&evs[1], &StreamEvent::Stanza(el.clone()));
        // And in a stream without default namespace.
        let doc = format!("<s:stream xmlns:s='http://etherx.jabber.org/streams'>{}", el.to_xml("").unwrap());
        let (evs, _) = run(XmlLimits::default(), [doc.as_bytes()]);
        prop_assert_eq!(&evs[1], &StreamEvent::Stanza(el));
    }

    /// The stanzas of a generated document come out as written, however it is chunked.
    #[test]
    fn documents_parse_the_same_in_any_chunking((els, doc) in document(), sizes in prop::collection::vec(1usize..40, 1..8)) {
        let whole = run(XmlLimits::default(), [doc.as_bytes()]);
        prop_assert_eq!(&whole.1, &None);
        let got: Vec<&Element> = whole.0.iter().filter_map(|e| match e {
            StreamEvent::Stanza(s) => Some(s),
            _ => None,
        }).collect();
        prop_assert_eq!(got, els.iter().collect::<Vec<_>>());
        let chunks = chunked(doc.as_bytes(), &sizes);
        prop_assert_eq!(run(XmlLimits::default(), chunks.iter().map(Vec::as_slice)), whole);
    }

    /// Damaged documents too: the same events and the same error in any chunking.
    #[test]
    fn damaged_documents_fail_the_same_in_any_chunking(doc in damaged(), sizes in prop::collection::vec(1usize..20, 1..8)) {
        let limits = XmlLimits { max_stanza_bytes: 300, max_depth: 3, max_attrs: 5, max_name_len: 20, max_header_bytes: 200 };
        let whole = run(limits, [doc.as_slice()]);
        let chunks = chunked(&doc, &sizes);
        prop_assert_eq!(run(limits, chunks.iter().map(Vec::as_slice)), whole.clone());
        prop_assert_eq!(run(limits, doc.chunks(1)), whole);
    }

    /// Arbitrary bytes, alone or after a valid header, never panic and never make the
    /// reader hold more than its limits allow.
    #[test]
    fn arbitrary_bytes_are_safe(bytes in prop::collection::vec(any::<u8>(), 0..600), header in any::<bool>(), sizes in prop::collection::vec(1usize..64, 1..4)) {
        let limits = XmlLimits { max_stanza_bytes: 128, max_depth: 4, max_attrs: 4, max_name_len: 16, max_header_bytes: 200 };
        let mut doc = if header { HEAD.as_bytes().to_vec() } else { Vec::new() };
        doc.extend_from_slice(&bytes);
        let whole = run(limits, [doc.as_slice()]);
        let chunks = chunked(&doc, &sizes);
        prop_assert_eq!(run(limits, chunks.iter().map(Vec::as_slice)), whole);
    }
}

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

/// XML 1.0 `NameStartChar` / `NameChar` minus the colon, written out from the spec
/// independently of the crate's own tables.
fn ncname_ok(s: &str) -> bool {
    let start = |c: char| {
        c.is_ascii_alphabetic()
            || c == '_'
            || [
                (0xC0, 0xD6),
                (0xD8, 0xF6),
                (0xF8, 0x2FF),
                (0x370, 0x37D),
                (0x37F, 0x1FFF),
                (0x200C, 0x200D),
                (0x2070, 0x218F),
                (0x2C00, 0x2FEF),
                (0x3001, 0xD7FF),
                (0xF900, 0xFDCF),
                (0xFDF0, 0xFFFD),
                (0x10000, 0xEFFFF),
            ]
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&u32::from(c)))
    };
    let rest = |c: char| {
        start(c)
            || c.is_ascii_digit()
            || c == '-'
            || c == '.'
            || c == '\u{B7}'
            || ('\u{300}'..='\u{36F}').contains(&c)
            || ('\u{203F}'..='\u{2040}').contains(&c)
    };
    let mut chars = s.chars();
    chars.next().is_some_and(start) && chars.all(rest)
}

/// An attribute name as (namespace, local name): `Ok(None)` for declarations (never
/// written), `Err` for a name the serializer must refuse.
fn attr_key(k: &str) -> Result<Option<(String, String)>, ()> {
    if k == "xmlns" || k.starts_with("xmlns:") {
        return Ok(None);
    }
    if let Some(rest) = k.strip_prefix('{') {
        let (uri, local) = rest.rsplit_once('}').ok_or(())?;
        if uri.is_empty() || uri == XMLNS_NS || !ncname_ok(local) {
            return Err(());
        }
        return Ok(Some((uri.to_owned(), local.to_owned())));
    }
    if let Some(local) = k.strip_prefix("xml:") {
        return if ncname_ok(local) {
            Ok(Some((XML_NS.to_owned(), local.to_owned())))
        } else {
            Err(())
        };
    }
    if ncname_ok(k) {
        Ok(Some((String::new(), k.to_owned())))
    } else {
        Err(())
    }
}

/// Whether the serializer must accept `el`.
fn serializable(el: &Element) -> bool {
    if !ncname_ok(&el.name) || el.ns == XML_NS || el.ns == XMLNS_NS {
        return false;
    }
    let mut seen = Vec::new();
    for (k, _) in &el.attrs {
        match attr_key(k) {
            Err(()) => return false,
            Ok(None) => {}
            Ok(Some(key)) if seen.contains(&key) => return false,
            Ok(Some(key)) => seen.push(key),
        }
    }
    el.elements().all(serializable)
}

/// `el` as the reader gives it back: declarations dropped, `{XML}x` spelled `xml:x`.
fn as_parsed(el: &Element) -> Element {
    let mut out = Element::new(el.name.clone(), el.ns.clone());
    for (k, v) in &el.attrs {
        match attr_key(k) {
            Ok(Some((ns, local))) if ns == XML_NS => {
                out.attrs.push((format!("xml:{local}"), v.clone()))
            }
            Ok(Some(_)) => out.attrs.push((k.clone(), v.clone())),
            _ => {}
        }
    }
    for child in &el.children {
        match child {
            Node::Element(e) => out.push_child(as_parsed(e)),
            Node::Text(t) => out.push_text(t.clone()),
        }
    }
    out
}

/// Any string, valid names, and names made to break out of a tag.
fn any_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => ncname(),
        2 => "\\PC{0,6}",
        2 => prop::sample::select(vec![
            "", "a b", "a>", "a/", "p:a", "1a", "-a", ".a", "a'", "a=", "a\u{0}",
            "message to='x'><body", "xml:lang", "xml:", "xml:a b", "xmlns", "xmlns:p",
            "{urn:x}a", "{urn:x}p:a", "{}a", "{http://www.w3.org/2000/xmlns/}a",
            "{http://www.w3.org/XML/1998/namespace}lang", "{urn:x", "a\u{B7}", "\u{B7}a",
        ]).prop_map(str::to_owned),
    ]
}

fn any_namespace() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => namespace(),
        1 => prop::sample::select(vec![XML_NS, XMLNS_NS, "urn:x' a='b'><c", "\u{e9}"]).prop_map(str::to_owned),
    ]
}

fn any_leaf() -> impl Strategy<Value = Element> {
    (
        any_name(),
        any_namespace(),
        prop::collection::vec((any_name(), xml_string()), 0..4),
    )
        .prop_map(|(name, ns, attrs)| {
            attrs
                .into_iter()
                .fold(Element::new(name, ns), |e, (k, v)| e.with_attr(k, v))
        })
}

/// Trees with arbitrary names: mostly valid, some not, at any depth.
fn any_element() -> impl Strategy<Value = Element> {
    any_leaf().prop_recursive(3, 20, 4, |inner| {
        let part = prop_oneof![
            inner.prop_map(Part::Child),
            xml_string().prop_map(Part::Text)
        ];
        (any_leaf(), prop::collection::vec(part, 0..4)).prop_map(|(mut e, parts)| {
            for p in parts {
                match p {
                    Part::Child(c) => e.push_child(c),
                    Part::Text(t) => e.push_text(t),
                }
            }
            e
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The serializer accepts exactly the trees whose names are XML names, and what it
    /// accepts parses back to the same tree; what it refuses leaves the output alone.
    #[test]
    fn serializer_accepts_only_what_parses_back(el in any_element()) {
        let mut out = String::from(HEAD);
        match el.write_to(&mut out, "jabber:client") {
            Ok(()) => {
                prop_assert!(serializable(&el), "accepted {:?}", el);
                let (evs, e) = run(XmlLimits::default(), [out.as_bytes()]);
                prop_assert_eq!(e, None, "{}", out);
                prop_assert_eq!(evs.len(), 2, "{}", out);
                prop_assert_eq!(&evs[1], &StreamEvent::Stanza(as_parsed(&el)));
            }
            Err(_) => {
                prop_assert!(!serializable(&el), "refused {:?}", el);
                prop_assert_eq!(out, HEAD);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Every two-way split of a document gives the events of the whole.
    #[test]
    fn every_byte_boundary(doc in damaged()) {
        let limits = XmlLimits { max_stanza_bytes: 300, ..XmlLimits::default() };
        let whole = run(limits, [doc.as_slice()]);
        for i in 0..=doc.len() {
            prop_assert_eq!(run(limits, [&doc[..i], &doc[i..]]), whole.clone(), "split at {}", i);
        }
    }
}

#[test]
fn text_children_stay_merged_through_cdata() {
    let doc = format!("{HEAD}<m>a<![CDATA[b]]>c</m>");
    let (evs, _) = run(XmlLimits::default(), [doc.as_bytes()]);
    let StreamEvent::Stanza(m) = &evs[1] else {
        panic!()
    };
    assert_eq!(m.children, vec![Node::Text("abc".into())]);
}
