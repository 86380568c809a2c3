//! Property tests of the SIP codec: for generated messages, parse(serialize(msg)) ==
//! msg, as a datagram and through the stream framer in any chunking.

use std::net::{Ipv4Addr, Ipv6Addr};

use herald_translate::sip::{
    parse_datagram, CSeq, Frame, HeaderName, Host, Limits, Message, Method, NameAddr, Param,
    SipUri, StreamFramer, Uri, Via,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

fn host() -> impl Strategy<Value = Host> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,6}[a-z0-9](\\.[a-z][a-z0-9]{0,5}){0,2}".prop_map(Host::Name),
        any::<u32>().prop_map(|a| Host::V4(Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| Host::V6(Ipv6Addr::from(a))),
    ]
}

fn params(name: &'static str) -> impl Strategy<Value = Vec<Param>> {
    vec(
        (name, option::of("[a-zA-Z0-9.!*_+~-]{1,8}"))
            .prop_map(|(n, v)| Param { name: n, value: v }),
        0..3,
    )
}

fn sip_uri() -> impl Strategy<Value = SipUri> {
    (
        any::<bool>(),
        option::of("[a-zA-Z0-9._~+-]{1,8}(%[0-9A-F]{2})?"),
        option::of("[a-z0-9]{1,6}"),
        host(),
        option::of(any::<u16>()),
        params("[a-z]{1,6}"),
        vec(("[A-Za-z]{1,6}", "[a-z0-9]{0,4}(%[0-9a-f]{2})?"), 0..2),
    )
        .prop_map(
            |(secure, user, password, host, port, params, headers)| SipUri {
                secure,
                password: password.filter(|_| user.is_some()),
                user,
                host,
                port,
                params,
                headers,
            },
        )
}

fn uri() -> impl Strategy<Value = Uri> {
    prop_oneof![
        4 => sip_uri().prop_map(Uri::Sip),
        1 => "[a-z][a-z0-9+.-]{0,5}:[a-zA-Z0-9/?:@&=+$,;._~-]{1,12}".prop_filter_map(
            "not sip, sips or tel",
            |s| Uri::parse(&s).filter(|u| matches!(u, Uri::Other(_)))
        ),
        1 => "tel:\\+[0-9]{1,10}(;[a-z]{1,4}=[a-z0-9]{1,4})?".prop_filter_map("tel", |s| Uri::parse(&s)),
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Invite),
        Just(Method::Register),
        Just(Method::Subscribe),
        Just(Method::Notify),
        Just(Method::Publish),
        Just(Method::Message),
        "[A-Za-z][A-Za-z0-9.!%*_+`'~-]{0,8}".prop_map(|m| Method::parse(&m).unwrap()),
    ]
}

fn name_addr() -> impl Strategy<Value = String> {
    (
        option::of(prop_oneof![
            "\"[ a-zA-Z0-9,;:<>@!]{0,10}\"",
            "[A-Za-z]{1,6}( [A-Za-z]{1,6})?",
        ]),
        sip_uri(),
        params("tag|x-[a-z]{1,4}"),
    )
        .prop_map(|(display, uri, params)| {
            NameAddr {
                display,
                uri: Uri::Sip(uri),
                angle: true,
                params,
            }
            .to_string()
        })
}

fn via() -> impl Strategy<Value = String> {
    (
        "UDP|TCP|TLS|SCTP|WS",
        host(),
        option::of(1u16..),
        params("branch|received|x[a-z]{0,4}"),
    )
        .prop_map(|(transport, host, port, params)| {
            let params = params
                .into_iter()
                .filter(|p| p.name != "received" && (p.name != "branch" || p.value.is_some()))
                .collect();
            Via {
                protocol: "SIP".into(),
                version: "2.0".into(),
                transport,
                host,
                port,
                params,
            }
            .to_string()
        })
}

/// A value for an unknown header: no CR or LF, no white space at either end.
fn free_value() -> impl Strategy<Value = String> {
    "[ -~\u{a0}-\u{2fff}]{0,30}".prop_map(|s| s.trim_matches([' ', '\t']).to_owned())
}

fn header() -> impl Strategy<Value = (HeaderName, String)> {
    prop_oneof![
        via().prop_map(|v| (HeaderName::Via, v)),
        name_addr().prop_map(|v| (HeaderName::From, v)),
        name_addr().prop_map(|v| (HeaderName::To, v)),
        name_addr().prop_map(|v| (HeaderName::Contact, v)),
        "[a-zA-Z0-9.!%*_+~-]{1,12}(@[a-z0-9.]{1,8})?".prop_map(|v| (HeaderName::CallId, v)),
        (0u16..=255).prop_map(|v| (HeaderName::MaxForwards, v.to_string())),
        (0u32..).prop_map(|v| (HeaderName::Expires, v.to_string())),
        "[a-z]{1,6}/[a-z+.-]{1,8}(;charset=[a-z0-9-]{1,6})?"
            .prop_map(|v| (HeaderName::ContentType, v)),
        "[a-z]{1,6}(, ?[a-z]{1,6}){0,2}".prop_map(|v| (HeaderName::Supported, v)),
        free_value().prop_map(|v| (HeaderName::Subject, v)),
        ("X-[A-Za-z0-9-]{1,10}", free_value()).prop_map(|(n, v)| (HeaderName::from_wire(&n), v)),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    let start = prop_oneof![
        // A Request-URI carries no headers (RFC 3261 §19.1.1).
        (method(), uri()).prop_map(|(m, mut u)| {
            if let Uri::Sip(s) = &mut u {
                s.headers.clear();
            }
            Message::request(m, u)
        }),
        (100u16..700, "[ -~\u{a0}-\u{2fff}]{0,20}").prop_map(|(c, r)| Message::response(c, r)),
    ];
    (
        start,
        vec(header(), 0..12),
        option::of(1u32..(1 << 31)),
        vec(any::<u8>(), 0..200),
    )
        .prop_map(|(mut msg, headers, cseq, body)| {
            for (name, value) in headers {
                msg.push_header(name, value);
            }
            if let Some(seq) = cseq {
                let method = match msg.request_line() {
                    Some(r) => r.method.clone(),
                    None => Method::Invite,
                };
                msg.push_header(HeaderName::CSeq, CSeq { seq, method }.to_string());
            }
            msg.body = body;
            msg
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn datagram_round_trip(msg in message()) {
        let bytes = msg.to_bytes();
        let parsed = parse_datagram(&bytes, &Limits::DEFAULT);
        prop_assert_eq!(parsed.as_ref().ok(), Some(&msg), "{:?}\n{}", parsed, String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn stream_round_trip(msgs in vec(message(), 1..4), chunk in 1usize..200) {
        let mut bytes = Vec::new();
        for m in &msgs {
            m.write_to(&mut bytes);
        }
        let mut framer = StreamFramer::new(Limits::DEFAULT);
        let mut got = Vec::new();
        for part in bytes.chunks(chunk) {
            prop_assert!(framer.push(part).is_ok());
            loop {
                let frame = framer.next_frame();
                prop_assert!(frame.is_ok(), "{:?}", frame);
                let Ok(Some(frame)) = frame else { break };
                match frame {
                    Frame::Message(m) => got.push(m),
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
        }
        prop_assert_eq!(got, msgs);
    }
}
