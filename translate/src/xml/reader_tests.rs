//! Unit tests of the stream reader: one per rule of the module's contract.

use super::{Element, Node, StreamEvent, StreamHeader, StreamReader, XmlError, XmlLimits};
use crate::ns;

const HEAD: &str = "<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
    to='example.com' version='1.0' xml:lang='en'>";

/// Feeds `chunks` one after the other, draining events after each; stops at the first
/// error.
fn run_chunks<'a>(
    limits: XmlLimits,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<StreamEvent>, Option<XmlError>) {
    let mut r = StreamReader::new(limits);
    let mut out = Vec::new();
    for chunk in chunks {
        r.feed(chunk);
        loop {
            match r.next_event() {
                Ok(Some(ev)) => out.push(ev),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

fn run(doc: &str) -> (Vec<StreamEvent>, Option<XmlError>) {
    run_chunks(XmlLimits::default(), [doc.as_bytes()])
}

/// The stanzas of `HEAD` + `body`, which must parse without error.
fn stanzas(body: &str) -> Vec<Element> {
    let (evs, err) = run(&format!("{HEAD}{body}"));
    assert_eq!(err, None, "{body}");
    evs.into_iter()
        .filter_map(|e| match e {
            StreamEvent::Stanza(s) => Some(s),
            _ => None,
        })
        .collect()
}

fn one(body: &str) -> Element {
    let mut v = stanzas(body);
    assert_eq!(v.len(), 1, "{body}");
    v.remove(0)
}

/// The error that `HEAD` + `body` ends with.
fn err(body: &str) -> XmlError {
    err_doc(&format!("{HEAD}{body}"))
}

fn err_doc(doc: &str) -> XmlError {
    run(doc).1.unwrap_or_else(|| panic!("no error for {doc}"))
}

fn nwf(e: XmlError) -> bool {
    matches!(e, XmlError::NotWellFormed(_))
}

#[test]
fn header_is_reported_when_its_tag_completes() {
    let mut r = StreamReader::default();
    r.feed(b"<?xml version='1.0' encoding='UTF-8'?>\n");
    assert_eq!(r.next_event(), Ok(None));
    r.feed(&HEAD.as_bytes()[..HEAD.len() - 1]);
    assert_eq!(r.next_event(), Ok(None));
    r.feed(b">");
    let Ok(Some(StreamEvent::Open(h))) = r.next_event() else {
        panic!()
    };
    assert_eq!(
        h,
        StreamHeader {
            name: "stream".into(),
            ns: ns::STREAM.into(),
            default_ns: Some("jabber:client".into()),
            attrs: vec![
                ("to".into(), "example.com".into()),
                ("version".into(), "1.0".into()),
                ("xml:lang".into(), "en".into()),
            ],
        }
    );
    assert_eq!(h.attr("xml:lang"), Some("en"));
    assert_eq!(h.attr("from"), None);
    assert_eq!(r.next_event(), Ok(None));
    r.feed(b"</stream:stream>");
    assert_eq!(r.next_event(), Ok(Some(StreamEvent::Close)));
    r.feed(b" \r\n");
    assert_eq!(r.next_event(), Ok(None));
}

#[test]
fn header_any_prefix_bom_and_decl_forms() {
    let (evs, e) =
        run("\u{FEFF}<?xml version=\"1.0\"?><s:x xmlns:s='http://etherx.jabber.org/streams'>");
    assert_eq!(e, None);
    let StreamEvent::Open(h) = &evs[0] else {
        panic!()
    };
    assert_eq!(
        (h.name.as_str(), h.ns.as_str(), h.default_ns.as_deref()),
        ("x", ns::STREAM, None)
    );
    // The root is not checked here: the caller decides what a wrong root means.
    let (evs, e) = run("<foo xmlns='bar'>");
    assert_eq!(e, None);
    assert!(matches!(&evs[0], StreamEvent::Open(h) if h.name == "foo" && h.ns == "bar"));
}

#[test]
fn self_closed_root_opens_and_closes() {
    let (evs, e) = run("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>");
    assert_eq!(e, None);
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[1], StreamEvent::Close);
}

#[test]
fn namespaces_resolve_from_the_root() {
    let v = stanzas(
        "<message><body>x</body></message>\
         <stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>\
         <db:result from='a' to='b'>key</db:result>\
         <iq xmlns='jabber:server'><q xmlns='urn:q'><r/><s xmlns=''/></q><p:t xmlns:p='urn:p'/></iq>",
    );
    assert!(v[0].is("message", "jabber:client"));
    assert!(v[0].has_child("body", "jabber:client"));
    assert!(v[1].is("features", ns::STREAM));
    assert!(v[1].has_child("bind", ns::BIND));
    assert!(v[2].is("result", "jabber:server:dialback"));
    assert_eq!(
        v[2].attrs,
        vec![("from".into(), "a".into()), ("to".into(), "b".into())]
    );
    assert!(v[3].is("iq", "jabber:server"));
    let q = v[3].child("q", "urn:q").unwrap();
    assert!(q.has_child("r", "urn:q"));
    assert!(q.has_child("s", ""));
    assert!(v[3].has_child("t", "urn:p"));
    // A declaration on a stanza does not leak into the next one.
    assert_eq!(
        err("<iq xmlns:p='urn:p'/><p:x/>"),
        XmlError::InvalidNamespace("undeclared prefix \"p\"".into())
    );
}

#[test]
fn attributes_prefixed_and_declarations() {
    let e = one("<m xmlns:p='urn:p' a='1' xml:lang='de' p:b='2'/>");
    assert_eq!(
        e.attrs,
        vec![
            ("a".into(), "1".into()),
            ("xml:lang".into(), "de".into()),
            ("{urn:p}b".into(), "2".into()),
        ]
    );
    assert!(matches!(err("<m p:b='2'/>"), XmlError::InvalidNamespace(_)));
    assert!(matches!(err("<p:m/>"), XmlError::InvalidNamespace(_)));
    assert!(matches!(
        err("<m xmlns:p=''/>"),
        XmlError::InvalidNamespace(_)
    ));
    assert!(matches!(
        err("<m xmlns:xml='urn:x'/>"),
        XmlError::InvalidNamespace(_)
    ));
    assert!(matches!(
        err("<m xmlns:xmlns='urn:x'/>"),
        XmlError::InvalidNamespace(_)
    ));
    assert!(matches!(err("<xml:m/>"), XmlError::InvalidNamespace(_)));
    // Same expanded name through two prefixes.
    assert!(nwf(err(
        "<m xmlns:p='urn:p' xmlns:q='urn:p' p:a='1' q:a='2'/>"
    )));
}

#[test]
fn whitespace_between_stanzas_is_ignored() {
    let v = stanzas(" \n<a/>\t \r\n <b/>  ");
    assert_eq!(v.len(), 2);
    assert_eq!(
        err("<a/> x"),
        XmlError::BadFormat("non-whitespace text at stream level".into())
    );
    assert!(matches!(err("x"), XmlError::BadFormat(_)));
    assert!(matches!(err("&#32;"), XmlError::BadFormat(_)));
    assert!(matches!(err("<![CDATA[ ]]>"), XmlError::BadFormat(_)));
}

#[test]
fn text_is_preserved_and_decoded() {
    let e = one("<m> a &lt;&gt;&amp;&quot;&apos; &#65;&#x42;&#x1F600; é\t\n </m>");
    assert_eq!(e.text(), " a <>&\"' AB😀 é\t\n ");
    let e = one("<m>a<![CDATA[<b>&amp;]]]]>c</m>");
    assert_eq!(e.children, vec![Node::Text("a<b>&amp;]]c".into())]);
    let e = one("<m>a\r\nb\rc&#13;</m>");
    assert_eq!(e.text(), "a\nb\nc\r");
    let e = one("<m>1<x/>2</m>");
    assert_eq!(e.children.len(), 3);
    assert_eq!(e.text(), "12");
    assert!(one("<m></m>").children.is_empty());
}

#[test]
fn attribute_values_are_decoded_and_normalized() {
    let e = one("<m a='x&amp;y&#x9;&lt;>' b=\"it's\" c='1\t2\r\n3'/>");
    assert_eq!(e.attr("a"), Some("x&y\t<>"));
    assert_eq!(e.attr("b"), Some("it's"));
    assert_eq!(e.attr("c"), Some("1 2 3"));
}

#[test]
fn malformed_references() {
    assert_eq!(
        err("<m>&nbsp;</m>"),
        XmlError::RestrictedXml("entity reference")
    );
    assert_eq!(
        err("<m a='&foo;'/>"),
        XmlError::RestrictedXml("entity reference")
    );
    for bad in [
        "<m>&</m>",
        "<m>& x;</m>",
        "<m>&#;</m>",
        "<m>&#xZ;</m>",
        "<m>&#+5;</m>",
        "<m>&#0;</m>",
        "<m>&#xD800;</m>",
        "<m>&#x110000;</m>",
        "<m>&#99999999999;</m>",
        "<m a='&'/>",
    ] {
        assert!(nwf(err(bad)), "{bad}");
    }
}

#[test]
fn well_formedness_errors() {
    for bad in [
        "<m></n>",
        "<m><n></m></n>",
        "<m a='1' a='2'/>",
        "<m a=1/>",
        "<m a/>",
        "<m a='1'b='2'/>",
        "<m a='<'/>",
        "<m <n/>",
        "<1m/>",
        "<m\u{B7}/><-x/>",
        "<m:n:o/>",
        "< m/>",
        "</ m>",
        "<m></m x>",
        "<m>\u{1}</m>",
        "<m>\u{FFFE}</m>",
        "<m>]]></m>",
        "<m><![CDXTA[x]]></m>",
    ] {
        assert!(nwf(err(bad)), "{bad}");
    }
    assert!(nwf(err("</stream:foo>")));
    assert!(nwf(err_doc("<a:b xmlns:a='x'></a:c>")));
}

#[test]
fn restricted_xml_is_refused() {
    let r = |s: &'static str| XmlError::RestrictedXml(s);
    assert_eq!(err("<!-- c -->"), r("comment"));
    assert_eq!(err("<m><!-- c --></m>"), r("comment"));
    assert_eq!(err_doc("<!-- c -->"), r("comment"));
    assert_eq!(err("<?foo bar?>"), r("processing instruction"));
    assert_eq!(err("<m><?foo?></m>"), r("processing instruction"));
    assert_eq!(err("<?xml version='1.0'?>"), r("processing instruction"));
    assert_eq!(
        err_doc(" <?xml version='1.0'?>"),
        r("processing instruction")
    );
    assert_eq!(
        err_doc("<?xml-stylesheet href='x'?>"),
        r("processing instruction")
    );
    assert_eq!(
        err_doc("<?xml version='1.0'?><?xml version='1.0'?>"),
        r("processing instruction")
    );
    assert_eq!(err_doc("<!DOCTYPE stream>"), r("DOCTYPE"));
    assert_eq!(
        err_doc("<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]>"),
        r("DOCTYPE")
    );
    assert_eq!(err("<m><!ENTITY a 'b'></m>"), r("entity declaration"));
    // Refused as soon as recognizable, without waiting for the end.
    assert_eq!(err("<m><!-"), r("comment"));
}

#[test]
fn xml_declaration_is_checked() {
    assert_eq!(
        err_doc("<?xml version='1.0' encoding='ISO-8859-1'?>"),
        XmlError::UnsupportedEncoding
    );
    assert_eq!(
        run("<?xml version='1.0' encoding='utf-8' standalone='yes' ?>").1,
        None
    );
    assert!(nwf(err_doc("<?xml encoding='UTF-8'?>")));
    assert!(nwf(err_doc("<?xml version='2.0'?>")));
    assert!(nwf(err_doc("<?xml version='1.0' foo='bar'?>")));
}

#[test]
fn encoding_errors() {
    let (_, e) = run_chunks(XmlLimits::default(), [HEAD.as_bytes(), b"<m>\xC3\x28</m>"]);
    assert_eq!(e, Some(XmlError::UnsupportedEncoding));
    let (_, e) = run_chunks(XmlLimits::default(), [HEAD.as_bytes(), b"<m a='\xFF'/>"]);
    assert_eq!(e, Some(XmlError::UnsupportedEncoding));
    let (_, e) = run_chunks(XmlLimits::default(), [&b"\xFF\xFE<\x00"[..]]);
    assert_eq!(e, Some(XmlError::UnsupportedEncoding));
}

#[test]
fn stream_structure_errors() {
    assert!(nwf(err_doc("hello")));
    assert!(nwf(err_doc("</stream:stream>")));
    assert!(nwf(err_doc("<![CDATA[x]]>")));
    assert!(nwf(err("</stream:stream><m/>")));
    assert!(nwf(err("</stream:stream>x")));
    assert!(nwf(err("</stream:stream><!-- c -->")));
    assert!(nwf(err_doc("<s xmlns='x'/><t/>")));
}

fn limits() -> XmlLimits {
    // The header needs 6 attributes and a 13-byte name.
    XmlLimits {
        max_stanza_bytes: 100,
        max_depth: 3,
        max_attrs: 6,
        max_name_len: 16,
        max_header_bytes: 300,
    }
}

fn err_limited(body: &str) -> Option<XmlError> {
    run_chunks(limits(), [HEAD.as_bytes(), body.as_bytes()]).1
}

#[test]
fn default_limits() {
    let l = XmlLimits::default();
    assert_eq!(
        (
            l.max_stanza_bytes,
            l.max_depth,
            l.max_attrs,
            l.max_name_len,
            l.max_header_bytes
        ),
        (262_144, 32, 64, 256, 8192)
    );
}

#[test]
fn stanza_size_limit() {
    let exact = format!("<m>{}</m>", "x".repeat(100 - 7));
    assert_eq!(err_limited(&exact), None);
    let over = format!("<m>{}</m>", "x".repeat(100 - 6));
    assert_eq!(
        err_limited(&over),
        Some(XmlError::LimitExceeded("stanza size"))
    );
    // Several stanzas within the limit each, more than it together.
    assert_eq!(err_limited(&exact.repeat(5)), None);
    let tag = format!("<m a='{}'/>", "v".repeat(100 - 9));
    assert_eq!(err_limited(&tag), None);
    let tag = format!("<m a='{}'/>", "v".repeat(100 - 8));
    assert_eq!(
        err_limited(&tag),
        Some(XmlError::LimitExceeded("stanza size"))
    );
}

#[test]
fn endless_stanza_is_stopped_without_its_end() {
    for start in ["<m a='", "<m>", "<m><![CDATA[", "<m", "<m></m", "<m><n>"] {
        let mut r = StreamReader::new(limits());
        r.feed(HEAD.as_bytes());
        assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Open(_)))));
        r.feed(start.as_bytes());
        let mut fed = start.len();
        let e = loop {
            match r.next_event() {
                Ok(None) => {}
                other => break other,
            }
            assert!(r.buffered_len() <= 100, "{start}");
            r.feed(b"aaaaaaa");
            fed += 7;
            assert!(fed < 200, "{start}: not stopped");
        };
        assert_eq!(e, Err(XmlError::LimitExceeded("stanza size")), "{start}");
    }
}

#[test]
fn depth_attribute_and_name_limits() {
    assert_eq!(err_limited("<a><b><c/></b></a>"), None);
    assert_eq!(
        err_limited("<a><b><c><d/></c></b></a>"),
        Some(XmlError::LimitExceeded("depth"))
    );
    assert_eq!(err_limited("<a a='' b='' c='' d='' e='' f=''/>"), None);
    assert_eq!(
        err_limited("<a a='' b='' c='' d='' e='' f='' g=''/>"),
        Some(XmlError::LimitExceeded("attributes"))
    );
    assert_eq!(
        err_limited("<a xmlns:a='x' xmlns:b='x' xmlns:c='x' xmlns:d='x' xmlns:e='x' f='' g=''/>"),
        Some(XmlError::LimitExceeded("attributes"))
    );
    assert_eq!(err_limited("<abcdefghijklmnop/>"), None);
    assert_eq!(
        err_limited("<abcdefghijklmnopq/>"),
        Some(XmlError::LimitExceeded("name length"))
    );
    assert_eq!(
        err_limited("<a abcdefghijklmnopq=''/>"),
        Some(XmlError::LimitExceeded("name length"))
    );
    assert_eq!(
        err_limited("<a></abcdefghijklmnopq>"),
        Some(XmlError::LimitExceeded("name length"))
    );
}

#[test]
fn header_size_limit() {
    let mut l = limits();
    l.max_header_bytes = HEAD.len();
    assert_eq!(run_chunks(l, [HEAD.as_bytes()]).1, None);
    l.max_header_bytes = HEAD.len() - 1;
    assert_eq!(
        run_chunks(l, [HEAD.as_bytes()]).1,
        Some(XmlError::LimitExceeded("header size"))
    );
    // An endless header tag is stopped.
    let mut r = StreamReader::new(limits());
    r.feed(b"<stream:stream to='");
    let mut n = 0;
    let e = loop {
        match r.next_event() {
            Ok(None) => {}
            other => break other,
        }
        r.feed(b"xxxxxxxxxx");
        n += 1;
        assert!(n < 40);
    };
    assert_eq!(e, Err(XmlError::LimitExceeded("header size")));
}

#[test]
fn errors_poison_the_reader() {
    let mut r = StreamReader::default();
    r.feed(format!("{HEAD}<m><!-- x --></m><n/>").as_bytes());
    assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Open(_)))));
    let e = r.next_event();
    assert_eq!(e, Err(XmlError::RestrictedXml("comment")));
    assert_eq!(r.buffered_len(), 0);
    r.feed(b"<ok/>");
    assert_eq!(r.buffered_len(), 0);
    assert_eq!(r.next_event(), e);
    assert_eq!(r.next_event(), e);
}

#[test]
fn reset_expects_a_new_header() {
    let mut r = StreamReader::default();
    r.feed(format!("{HEAD}<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><junk").as_bytes());
    assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Open(_)))));
    assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Stanza(_)))));
    assert_eq!(r.buffered_len(), 5);
    r.reset();
    assert_eq!(r.buffered_len(), 0);
    assert_eq!(r.next_event(), Ok(None));
    r.feed(format!("<?xml version='1.0'?>{HEAD}<iq/>").as_bytes());
    assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Open(_)))));
    assert!(
        matches!(r.next_event(), Ok(Some(StreamEvent::Stanza(e))) if e.is("iq", "jabber:client"))
    );
    // Reset also clears a poisoned reader.
    r.feed(b"<!--");
    assert!(r.next_event().is_err());
    r.reset();
    r.feed(HEAD.as_bytes());
    assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Open(_)))));
}

#[test]
fn buffered_len_reveals_pipelined_data() {
    let mut r = StreamReader::default();
    r.feed(format!("{HEAD}<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").as_bytes());
    assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Open(_)))));
    assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Stanza(_)))));
    assert_eq!(r.buffered_len(), 0);
    r.feed(b"<iq");
    assert_eq!(r.buffered_len(), 3);
    // A partial stanza counts too, once parsed into the tree.
    r.feed(b"><query>");
    assert_eq!(r.next_event(), Ok(None));
    assert_eq!(r.buffered_len(), 11);
}

#[test]
fn whitespace_after_starttls_is_not_pipelined_data() {
    let starttls = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
    // What go-sendxmpp writes: the element and a newline, in one write.
    for tail in ["", "\n", "\r\n", " \t \r\n "] {
        let mut r = StreamReader::default();
        r.feed(format!("{HEAD}{starttls}{tail}").as_bytes());
        assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Open(_)))));
        assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Stanza(_)))));
        assert_eq!(r.buffered_len(), tail.len());
        assert!(r.only_whitespace_buffered(), "tail {tail:?}");
    }
    // Anything else is pipelined data: markup, text, a TLS record, a partial stanza.
    for tail in [
        &b"\n<auth"[..],
        b"x",
        b" \n\x16\x03\x01",
        b"\x0b",
        b"\xc2\xa0",
        b"<iq><query>",
    ] {
        let mut r = StreamReader::default();
        r.feed(format!("{HEAD}{starttls}").as_bytes());
        r.feed(tail);
        assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Open(_)))));
        assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Stanza(_)))));
        assert!(!r.only_whitespace_buffered(), "tail {tail:?}");
    }
    // A stanza in progress whose bytes are all parsed still counts.
    let mut r = StreamReader::default();
    r.feed(format!("{HEAD}<iq><query>").as_bytes());
    assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Open(_)))));
    assert_eq!(r.next_event(), Ok(None));
    assert!(!r.only_whitespace_buffered());
    // A failed reader holds nothing but is not a clean stream.
    let mut r = StreamReader::default();
    r.feed(b"<!--");
    assert!(r.next_event().is_err());
    assert!(!r.only_whitespace_buffered());
}

#[test]
fn limits_can_be_raised() {
    let mut r = StreamReader::new(limits());
    assert_eq!(r.limits(), limits());
    r.feed(HEAD.as_bytes());
    assert!(r.next_event().unwrap().is_some());
    let big = format!("<m>{}</m>", "x".repeat(500));
    r.set_limits(XmlLimits::default());
    r.feed(big.as_bytes());
    assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Stanza(_)))));
    r.set_limits(limits());
    r.feed(big.as_bytes());
    assert_eq!(r.next_event(), Err(XmlError::LimitExceeded("stanza size")));
}

const RICH: &str = "\u{FEFF}<?xml version='1.0' encoding='UTF-8'?>\n\
    <stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
    to='ex\u{e9}mple.com' version='1.0'>\n \
    <message to='j\u{fc}rgen@ex' xml:lang='de'><body>caf\u{e9} &amp; \u{1F600} &#x1F600;&#233;\r\n\
    <![CDATA[<raw> ]] ]>]]></body><x xmlns='urn:x' a=\"&quot;'>\"/></message> \
    <stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
    <mechanism>PLAIN</mechanism></mechanisms></stream:features>\
    <iq/></stream:stream>\n";

#[test]
fn every_split_gives_the_same_events() {
    let whole = run(RICH);
    assert_eq!(whole.1, None);
    assert_eq!(whole.0.len(), 5);
    let bytes = RICH.as_bytes();
    for i in 0..=bytes.len() {
        assert_eq!(
            run_chunks(XmlLimits::default(), [&bytes[..i], &bytes[i..]]),
            whole,
            "split at {i}"
        );
    }
    assert_eq!(run_chunks(XmlLimits::default(), bytes.chunks(1)), whole);
    assert_eq!(run_chunks(XmlLimits::default(), bytes.chunks(3)), whole);
}

#[test]
fn large_stanza_byte_by_byte_is_linear() {
    // 256 KiB of text arriving one byte at a time: with re-scanning this would take
    // ~3.4e10 steps; linear it is instant.
    let body = format!(
        "<m a='{}'>{}</m>",
        "v".repeat(1000),
        "t&amp;".repeat(43_000)
    );
    assert!(body.len() < 262_144);
    let start = std::time::Instant::now();
    let (evs, e) = run_chunks(
        XmlLimits::default(),
        std::iter::once(HEAD.as_bytes()).chain(body.as_bytes().chunks(1)),
    );
    assert_eq!(e, None);
    assert_eq!(evs.len(), 2);
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
}

/// Where the differential fuzz target (`fuzz/fuzz_targets/xml_differential.rs`) found
/// rxml departing from XML 1.0, Herald follows the specification; these pin it.
#[test]
fn constructs_another_restricted_parser_refuses() {
    // XML 1.0 (fifth edition) §2.3: U+FDF0-U+FFFD may start and continue names.
    let e = one("<a\u{FEFF} b\u{FDF0}='1'/>");
    assert_eq!(
        (e.name.as_str(), e.attrs[0].0.as_str()),
        ("a\u{FEFF}", "b\u{FDF0}")
    );
    // §4.1: a character reference may have any number of digits.
    assert_eq!(one("<m>&#0000000065;&#x00000000042;</m>").text(), "AB");
    // §2.11: a lone CR is a line end, in attribute values too (then a space, §3.3.3).
    assert_eq!(one("<m a='x\ry\r\rz'/>").attr("a"), Some("x y  z"));
    // ... and in CDATA sections, after a ']' as anywhere else.
    assert_eq!(one("<m><![CDATA[x]\r\ny]\rz]]></m>").text(), "x]\ny]\nz");
    // §2.8: whitespace (and a byte order mark, §4.3.3) may precede the root.
    assert_eq!(run("\u{FEFF} \r\n<s:stream xmlns:s='urn:s'>").1, None);
    // §2.8: a 1.0 processor reads a 1.x document as 1.0; standalone may be 'no'.
    assert_eq!(run("<?xml version='1.1' standalone='no'?><a>").1, None);
}

/// The other way round: namespace-well-formed constructs Herald refuses on purpose, and
/// one it must refuse that rxml lets pass.
#[test]
fn constructs_refused_by_design() {
    // Declaring the default namespace (or a prefix) twice repeats an attribute.
    assert!(nwf(err("<m xmlns='urn:a' xmlns='urn:b'/>")));
    assert!(nwf(err("<m xmlns:p='urn:a' xmlns:p='urn:b'/>")));
    // Only literal whitespace between stanzas: a reference or CDATA standing for
    // whitespace is still character data at stream level.
    assert!(matches!(err("&#32;"), XmlError::BadFormat(_)));
    assert!(matches!(err("<![CDATA[ ]]>"), XmlError::BadFormat(_)));
    // An element in the XML namespace could not be written back (names are never
    // prefixed, and no default namespace declaration may name it).
    assert!(matches!(
        err("<m><xml:x/></m>"),
        XmlError::InvalidNamespace(_)
    ));
}
