//! Stream framer: chunking, keep-alives, limits, recovery after a refused message.

use super::{Frame, Limits, SipErrorKind, StreamFramer, PONG};

const OPTIONS: &str = "OPTIONS sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP client.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: <sip:bob@example.com>\r\n\
From: <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 63104 OPTIONS\r\n\
Content-Length: 5\r\n\r\nhello";

fn drain(f: &mut StreamFramer) -> Vec<Frame> {
    let mut out = Vec::new();
    while let Some(frame) = f.next_frame().expect("no error") {
        out.push(frame);
    }
    out
}

#[test]
fn any_chunking_gives_the_same_frames() {
    let stream = format!("\r\n\r\n{OPTIONS}{OPTIONS}\r\n\r\n{OPTIONS}");
    let bytes = stream.as_bytes();
    let mut whole = StreamFramer::new(Limits::DEFAULT);
    whole.push(bytes).unwrap();
    let expected = drain(&mut whole);
    assert_eq!(expected.len(), 5);
    assert_eq!(expected[0], Frame::Ping);
    assert_eq!(expected[3], Frame::Ping);
    for chunk in [1, 2, 3, 7, 64, 333] {
        let mut f = StreamFramer::new(Limits::DEFAULT);
        let mut got = Vec::new();
        for part in bytes.chunks(chunk) {
            f.push(part).unwrap();
            got.extend(drain(&mut f));
        }
        assert_eq!(got, expected, "chunk size {chunk}");
        assert_eq!(f.buffered(), 0);
    }
    let Frame::Message(m) = &expected[1] else {
        panic!("a message")
    };
    assert_eq!(m.body, b"hello");
}

#[test]
fn keepalives() {
    assert_eq!(PONG, b"\r\n");
    let mut f = StreamFramer::new(Limits::DEFAULT);
    f.push(b"\r\n").unwrap();
    assert_eq!(
        f.next_frame().unwrap(),
        None,
        "a ping may still be arriving"
    );
    f.push(b"\r\n").unwrap();
    assert_eq!(f.next_frame().unwrap(), Some(Frame::Ping));
    f.push(b"\r\nOPTIONS").unwrap();
    assert_eq!(f.next_frame().unwrap(), Some(Frame::Pong));
    assert_eq!(f.next_frame().unwrap(), None);
}

#[test]
fn a_refused_message_with_a_length_is_skipped() {
    let bad = OPTIONS.replace("CSeq: 63104 OPTIONS", "CSeq: 63104 INVITE");
    let mut f = StreamFramer::new(Limits::DEFAULT);
    f.push(format!("{bad}{OPTIONS}").as_bytes()).unwrap();
    let e = f.next_frame().unwrap_err();
    assert_eq!(e.status(), 400);
    let req = e.request.expect("essentials");
    assert_eq!(req.call_id.as_deref(), Some("a84b4c76e66710"));
    assert!(!f.is_broken());
    assert!(matches!(f.next_frame().unwrap(), Some(Frame::Message(_))));
    // A head that does not parse but has a Content-Length is skipped too.
    let garbled = OPTIONS.replace("To: <sip:bob@example.com>", "To <sip:bob@example.com>");
    f.push(format!("{garbled}{OPTIONS}").as_bytes()).unwrap();
    assert_eq!(
        f.next_frame().unwrap_err().kind.reason_phrase(),
        "Malformed header line"
    );
    assert!(matches!(f.next_frame().unwrap(), Some(Frame::Message(_))));
}

#[test]
fn no_content_length_breaks_the_stream() {
    let bad = OPTIONS.replace("Content-Length: 5\r\n\r\nhello", "\r\n");
    let mut f = StreamFramer::new(Limits::DEFAULT);
    f.push(bad.as_bytes()).unwrap();
    let e = f.next_frame().unwrap_err();
    assert_eq!(e.kind.reason_phrase(), "Missing Content-Length");
    assert!(f.is_broken());
    assert_eq!(f.next_frame().unwrap_err(), e);
}

#[test]
fn limits_hold_without_buffering_more() {
    let limits = Limits {
        max_head_size: 256,
        max_message_size: 1024,
        ..Limits::DEFAULT
    };
    let mut f = StreamFramer::new(limits);
    f.push(b"OPTIONS sip:a@b SIP/2.0\r\nX: ").unwrap();
    f.push(&[b'a'; 300]).unwrap();
    let e = f.next_frame().unwrap_err();
    assert_eq!(e.kind, SipErrorKind::TooLarge("head size"));
    assert!(f.is_broken());

    let mut f = StreamFramer::new(limits);
    let big = OPTIONS.replace("Content-Length: 5", "Content-Length: 5000");
    f.push(big.as_bytes()).unwrap();
    assert_eq!(f.next_frame().unwrap_err().status(), 513);

    let mut f = StreamFramer::new(limits);
    assert!(f.push(&[b'x'; 4000]).is_err());
}

#[test]
fn head_end_split_across_pushes() {
    let (a, b) = OPTIONS.split_at(OPTIONS.find("\r\n\r\n").unwrap() + 2);
    let mut f = StreamFramer::new(Limits::DEFAULT);
    f.push(a.as_bytes()).unwrap();
    assert_eq!(f.next_frame().unwrap(), None);
    f.push(&b.as_bytes()[..1]).unwrap();
    assert_eq!(f.next_frame().unwrap(), None);
    f.push(&b.as_bytes()[1..]).unwrap();
    assert!(matches!(f.next_frame().unwrap(), Some(Frame::Message(_))));
}
