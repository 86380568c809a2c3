//! Fuzzes the XMPP stream reader.
//!
//! The first input byte picks the chunk size; the rest is fed in chunks of that size.
//! Checks: no panic; the reader holds no more than its limits allow; an error poisons the
//! reader; chunked and whole input give the same events; every stanza, serialized and
//! re-parsed inside a fresh stream, comes back equal.

#![no_main]

use herald_translate::{Element, StreamEvent, StreamReader, XmlError, XmlLimits};
use libfuzzer_sys::fuzz_target;

const LIMITS: XmlLimits = XmlLimits {
    max_stanza_bytes: 4096,
    max_depth: 16,
    max_attrs: 16,
    max_name_len: 64,
    max_header_bytes: 1024,
};

/// Feeds `chunks`, draining events after each, up to the first error.
fn run<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> (Vec<StreamEvent>, Option<XmlError>) {
    // Budgets plus the few bytes of lookahead used to recognize `<?xml ` and `<![CDATA[`.
    let bound = LIMITS.max_stanza_bytes.max(LIMITS.max_header_bytes) + 16;
    let mut reader = StreamReader::new(LIMITS);
    let mut events = Vec::new();
    for chunk in chunks {
        reader.feed(chunk);
        loop {
            match reader.next_event() {
                Ok(Some(ev)) => events.push(ev),
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(reader.next_event(), Err(e.clone()), "not poisoned");
                    assert_eq!(reader.buffered_len(), 0);
                    return (events, Some(e));
                }
            }
        }
        assert!(
            reader.buffered_len() <= bound,
            "holding {} bytes",
            reader.buffered_len()
        );
    }
    (events, None)
}

/// Serializes `stanza` into a stream without default namespace and parses it back.
fn check_round_trip(stanza: &Element) {
    let xml = stanza.to_xml("").expect("a parsed stanza serializes");
    let doc = format!("<s:stream xmlns:s='http://etherx.jabber.org/streams'>{xml}");
    let mut reader = StreamReader::new(XmlLimits::default());
    reader.feed(doc.as_bytes());
    assert!(matches!(
        reader.next_event(),
        Ok(Some(StreamEvent::Open(_)))
    ));
    match reader.next_event() {
        Ok(Some(StreamEvent::Stanza(back))) => assert_eq!(&back, stanza, "{doc}"),
        other => panic!("re-parse of {doc:?} gave {other:?}"),
    }
    assert_eq!(reader.buffered_len(), 0);
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first % 64) + 1;
    let chunked = run(input.chunks(chunk));
    let whole = run(std::iter::once(input));
    assert_eq!(chunked, whole, "chunking changed the outcome");
    for ev in &chunked.0 {
        if let StreamEvent::Stanza(stanza) = ev {
            check_round_trip(stanza);
        }
    }
});
