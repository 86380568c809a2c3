//! Fuzzes the SIP codec.
//!
//! The first input byte seeds the chunk sizes; the rest is one datagram, and also a
//! stream fed in chunks of varying size. Checks: no panic; whatever parses serializes
//! and re-parses to the same model, and its typed views accept what the parser
//! checked; the error response never panics; a stream gives the same frames whole and chunked.

#![no_main]

use herald_translate::sip::{
    error_response, parse_datagram, Frame, HeaderName, Limits, Message, SipError, StreamFramer,
};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_message_size: 8192,
    max_head_size: 4096,
    max_headers: 64,
    max_header_line: 2048,
    max_uri_len: 1024,
};

fn round_trip(msg: &Message) {
    let bytes = msg.to_bytes();
    let again = parse_datagram(&bytes, &Limits::DEFAULT).unwrap_or_else(|e| {
        panic!(
            "a serialized message must parse: {e}\n{}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(&again, msg, "serialize then parse gives the same model");
    // What the parser checked, the typed views read.
    let has = |n: HeaderName| msg.count(&n) > 0;
    assert!(msg.vias().is_ok());
    assert!(!has(HeaderName::From) || msg.from().is_ok());
    assert!(!has(HeaderName::To) || msg.to().is_ok());
    assert!(!has(HeaderName::CSeq) || msg.cseq().is_ok());
    assert!(!has(HeaderName::CallId) || msg.call_id().is_ok());
    assert!(msg.contacts().is_ok());
    assert!(msg.routes().is_ok() && msg.record_routes().is_ok());
    assert!(msg.content_type().is_ok() && msg.max_forwards().is_ok());
    assert!(msg.event().is_ok() && msg.subscription_state().is_ok());
    assert!(msg.expires().is_ok() && msg.supported().is_ok());
}

fn answer(e: &SipError) {
    if let Some(req) = e.request.as_deref() {
        let resp = error_response(req, &e.kind, "fuzz");
        let _ = resp.to_bytes();
    }
}

/// Feeds `chunks` and drains frames after each push, up to the first error.
fn frames<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> (Vec<Frame>, bool) {
    let mut framer = StreamFramer::new(LIMITS);
    let mut out = Vec::new();
    for chunk in chunks {
        if framer.push(chunk).is_err() {
            return (out, true);
        }
        loop {
            match framer.next_frame() {
                Ok(Some(f)) => out.push(f),
                Ok(None) => break,
                Err(e) => {
                    answer(&e);
                    if framer.is_broken() {
                        assert_eq!(framer.next_frame(), Err(e), "a broken framer stays broken");
                        return (out, true);
                    }
                }
            }
        }
        assert!(framer.buffered() <= 2 * LIMITS.max_message_size + 4);
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, data)) = data.split_first() else {
        return;
    };
    match parse_datagram(data, &LIMITS) {
        Ok(msg) => round_trip(&msg),
        Err(e) => answer(&e),
    }

    let (whole, _) = frames(std::iter::once(data));
    let mut sizes = Sizes {
        base: seed as usize % 31 + 1,
        step: 0,
    };
    let mut rest = data;
    let chunks = std::iter::from_fn(|| {
        if rest.is_empty() {
            return None;
        }
        let n = sizes.next_size().min(rest.len());
        let (a, b) = rest.split_at(n);
        rest = b;
        Some(a)
    });
    let (chunked, _) = frames(chunks);
    for f in &chunked {
        if let Frame::Message(m) = f {
            round_trip(m);
        }
    }
    // Framing errors that depend on how much was buffered (push limits) cut a run
    // short, so compare the frames both runs produced.
    let n = whole.len().min(chunked.len());
    assert_eq!(whole[..n], chunked[..n], "chunking changes nothing");
});

/// Chunk sizes cycling through a few values derived from the seed.
struct Sizes {
    base: usize,
    step: usize,
}

impl Sizes {
    fn next_size(&mut self) -> usize {
        self.step = (self.step + 1) % 7;
        1 + (self.base * (self.step + 1)) % 97
    }
}
