//! Parser details not covered by the RFC 4475 files: limits, compact names, folding,
//! start-line errors, the serializer's canonical form.

use super::{
    check_request, error_response, parse_datagram, HeaderName, Limits, Message, Method, Policy,
    SipErrorKind, Uri,
};

fn parse(s: &str) -> Result<Message, super::SipError> {
    parse_datagram(s.as_bytes(), &Limits::DEFAULT)
}

const BASE: &str = "SUBSCRIBE sip:bob@example.com SIP/2.0\r\n\
v: SIP/2.0/UDP pc33.example.com;branch=z9hG4bKnashds7;rport\r\n\
f: \"Alice\" <sip:alice@example.com>;tag=456248\r\n\
t: <sip:bob@example.com>\r\n\
i: 843817637684230@998sdasdh09\r\n\
CSeq: 1826 SUBSCRIBE\r\n\
Max-Forwards: 70\r\n\
o: presence;id=7\r\n\
k: eventlist, path\r\n\
u: presence, dialog\r\n\
m: <sip:alice@pc33.example.com>;expires=3600;q=0.5\r\n\
Expires: 3600\r\n\
c: application/pidf+xml;charset=utf-8\r\n\
l: 0\r\n\r\n";

#[test]
fn compact_names_map_to_full_names() {
    let m = parse(BASE).unwrap();
    let names: Vec<&str> = m.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Via",
            "From",
            "To",
            "Call-ID",
            "CSeq",
            "Max-Forwards",
            "Event",
            "Supported",
            "Allow-Events",
            "Contact",
            "Expires",
            "Content-Type"
        ]
    );
    assert_eq!(m.event().unwrap().unwrap().id(), Some("7"));
    assert_eq!(m.supported().unwrap(), ["eventlist", "path"]);
    assert_eq!(m.top_via().unwrap().rport(), Some(None));
    assert_eq!(m.expires().unwrap(), Some(3600));
    let out = String::from_utf8(m.to_bytes()).unwrap();
    assert!(out.contains("\r\nCall-ID: 843817637684230@998sdasdh09\r\n"));
    assert!(out.ends_with("Content-Length: 0\r\n\r\n"));
}

#[test]
fn header_names_ignore_case_methods_do_not() {
    let m = parse(&BASE.replace("CSeq: 1826", "cSEQ: 1826")).unwrap();
    assert_eq!(m.cseq().unwrap().seq, 1826);
    let e = parse(&BASE.replace("SUBSCRIBE sip", "subscribe sip")).unwrap_err();
    assert_eq!(
        e.kind.reason_phrase(),
        "CSeq method does not match the request"
    );
    let m = parse(&BASE.replace("SUBSCRIBE", "subscribe")).unwrap();
    assert_eq!(
        m.request_line().unwrap().method,
        Method::Extension("subscribe".into())
    );
}

#[test]
fn folds_become_one_space() {
    let m = parse(&BASE.replace("k: eventlist, path", "k: eventlist,\r\n \t path")).unwrap();
    assert_eq!(m.header(&HeaderName::Supported), Some("eventlist, path"));
}

#[test]
fn start_line_errors() {
    let status = |s: &str| parse(s).unwrap_err().status();
    assert_eq!(status(&BASE.replace("SIP/2.0\r\nv", "SIP/3.0\r\nv")), 505);
    assert_eq!(status(&BASE.replace("SIP/2.0\r\nv", "SIP/2.0 \r\nv")), 400);
    assert_eq!(status(&BASE.replace("SIP/2.0\r\nv", "HTTP/1.1\r\nv")), 400);
    assert_eq!(
        status(&BASE.replace("sip:bob@example.com SIP", "<sip:bob@example.com> SIP")),
        400
    );
    let long = format!("sip:{}@example.com", "a".repeat(5000));
    let e = parse(&BASE.replace("sip:bob@example.com SIP", &format!("{long} SIP"))).unwrap_err();
    assert_eq!(e.kind, SipErrorKind::UriTooLong);
    assert_eq!(status("SIP/2.0 99 Low\r\n\r\n"), 400);
    assert_eq!(status("SIP/2.0 700 High\r\n\r\n"), 400);
    assert_eq!(status("SIP/2.0 2000 Long\r\n\r\n"), 400);
    assert_eq!(status("\u{0}\r\n\r\n"), 400);
    assert_eq!(status(""), 400);
}

#[test]
fn limits() {
    let tight = Limits {
        max_headers: 5,
        ..Limits::DEFAULT
    };
    let e = parse_datagram(BASE.as_bytes(), &tight).unwrap_err();
    assert_eq!(e.kind, SipErrorKind::TooLarge("header count"));
    let line = Limits {
        max_header_line: 40,
        ..Limits::DEFAULT
    };
    let e = parse_datagram(BASE.as_bytes(), &line).unwrap_err();
    assert_eq!(e.status(), 513);
    let e = parse(&BASE.replace("l: 0", "l: 99999999999999999999")).unwrap_err();
    assert_eq!(e.status(), 513);
    assert!(e.request.is_some());
}

#[test]
fn bare_line_ends_are_refused() {
    assert_eq!(
        parse(&BASE.replace("\r\nt:", "\nt:")).unwrap_err().status(),
        400
    );
    assert_eq!(
        parse(&BASE.replace("\r\nt:", "\rt:")).unwrap_err().status(),
        400
    );
}

#[test]
fn content_length_on_datagrams() {
    let m = parse(
        &BASE
            .replace("l: 0", "l: 3")
            .replace("\r\n\r\n", "\r\n\r\nabcdef"),
    )
    .unwrap();
    assert_eq!(m.body, b"abc");
    let m = parse(
        &BASE
            .replace("l: 0\r\n", "")
            .replace("\r\n\r\n", "\r\n\r\nabcdef"),
    )
    .unwrap();
    assert_eq!(m.body, b"abcdef");
    let e = parse(&BASE.replace("l: 0", "l: 30")).unwrap_err();
    assert_eq!(
        e.kind.reason_phrase(),
        "Content-Length larger than the body"
    );
}

#[test]
fn lists_split_only_outside_quotes_and_brackets() {
    let m = parse(&BASE.replace(
        "m: <sip:alice@pc33.example.com>;expires=3600;q=0.5",
        "m: \"a, b\" <sip:a@h;x=1?y=2>, <sip:c@h>;q=1",
    ))
    .unwrap();
    let Some(super::Contact::Addresses(c)) = m.contacts().unwrap() else {
        panic!("contacts")
    };
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].display_name().as_deref(), Some("a, b"));
    assert_eq!(c[1].q(), Some(1000));
    let m =
        parse(&BASE.replace("m: <sip:alice@pc33.example.com>;expires=3600;q=0.5", "m: *")).unwrap();
    assert_eq!(m.contacts().unwrap(), Some(super::Contact::Star));
}

#[test]
fn tel_and_opaque_uris() {
    let m =
        parse(&BASE.replace("t: <sip:bob@example.com>", "t: <tel:+1-201-555-0123;ext=1>")).unwrap();
    let Uri::Tel(tel) = m.to().unwrap().uri else {
        panic!("tel")
    };
    assert_eq!(tel.number, "+1-201-555-0123");
    let m = parse(&BASE.replace("t: <sip:bob@example.com>", "t: <urn:service:sos>")).unwrap();
    assert_eq!(m.to().unwrap().uri, Uri::Other("urn:service:sos".into()));
}

#[test]
fn error_response_for_a_request() {
    let m = parse(&BASE.replace("k: eventlist, path", "Require: foo")).unwrap();
    let policy = Policy {
        schemes: &["sip"],
        extensions: &["path"],
        proxy: false,
    };
    let e = check_request(&m, &policy).unwrap_err();
    let resp = error_response(e.request.as_deref().unwrap(), &e.kind, "x9");
    let text = String::from_utf8(resp.to_bytes()).unwrap();
    assert!(text.starts_with("SIP/2.0 420 Bad Extension\r\nVia: SIP/2.0/UDP pc33"));
    assert!(text.contains("\r\nTo: <sip:bob@example.com>;tag=x9\r\n"));
    assert!(text.contains("\r\nUnsupported: foo\r\n"));
    let required = SipErrorKind::ExtensionRequired(vec!["100rel".into()]);
    let resp = error_response(e.request.as_deref().unwrap(), &required, "x9");
    assert_eq!(resp.status_line().unwrap().code, 421);
    assert_eq!(resp.header(&HeaderName::Require), Some("100rel"));
}

#[test]
fn serializer_does_not_let_values_inject_lines() {
    let mut m = parse(BASE).unwrap();
    m.push_header(HeaderName::Subject, "hi\r\nVia: evil");
    let again = parse_datagram(&m.to_bytes(), &Limits::DEFAULT).unwrap();
    assert_eq!(again.header(&HeaderName::Subject), Some("hi  Via: evil"));
    assert_eq!(again.count(&HeaderName::Via), 1);
}
