//! Tests of the registrar binding logic: pure, no IO.

use herald_translate::sip::{parse_datagram, HeaderName, Limits, NameAddr, Uri};
use proptest::prelude::*;

use super::{
    apply_register, contact_header_values, uri_eq, Applied, RegisterLimits, RegisterRefusal,
    RegisterRequest,
};
use crate::store::SipBinding;

const NOW: i64 = 1_700_000_000_000;
const SOURCE: &str = "udp:192.0.2.7:5062";

fn limits() -> RegisterLimits {
    RegisterLimits::default()
}

/// A request with `contacts` (each a Contact value: an address with its parameters).
fn req<'a>(
    call_id: &'a str,
    cseq: u32,
    expires: Option<u32>,
    contacts: &[&str],
) -> RegisterRequest<'a> {
    RegisterRequest {
        call_id,
        cseq,
        expires_header: expires,
        wildcard: false,
        contacts: contacts
            .iter()
            .map(|c| NameAddr::parse(c).expect("contact"))
            .collect(),
        source: SOURCE,
        user_agent: Some("test-ua"),
    }
}

fn wildcard<'a>(call_id: &'a str, cseq: u32, expires: Option<u32>) -> RegisterRequest<'a> {
    RegisterRequest {
        wildcard: true,
        ..req(call_id, cseq, expires, &[])
    }
}

fn apply(current: &[SipBinding], r: &RegisterRequest<'_>) -> Result<Applied, RegisterRefusal> {
    apply_register(current, "alice", r, NOW, &limits())
}

/// Applies and expects success; returns the new set.
#[track_caller]
fn ok(current: &[SipBinding], r: &RegisterRequest<'_>) -> Vec<SipBinding> {
    apply(current, r).expect("accepted").bindings
}

fn contacts(set: &[SipBinding]) -> Vec<&str> {
    set.iter().map(|b| b.contact.as_str()).collect()
}

fn secs(b: &SipBinding) -> i64 {
    (b.expires_at_ms - NOW) / 1000
}

fn uri(s: &str) -> Uri {
    Uri::parse(s).expect("uri")
}

// ----- reading a REGISTER -----

#[test]
fn from_message_reads_the_binding_headers() {
    let text = "REGISTER sip:example.org SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK1\r\n\
        From: <sip:alice@example.org>;tag=1\r\nTo: <sip:alice@example.org>\r\n\
        Call-ID: abc@host\r\nCSeq: 42 REGISTER\r\nMax-Forwards: 70\r\n\
        Contact: <sip:alice@192.0.2.7:5062>;expires=120, <sip:alice@pc>;q=0.5\r\n\
        m: <sip:alice@[2001:db8::1]>\r\n\
        Expires: 300\r\nUser-Agent: Softphone 1.0\r\nContent-Length: 0\r\n\r\n";
    let msg = parse_datagram(text.as_bytes(), &Limits::default()).expect("parse");
    let r = RegisterRequest::from_message(&msg, SOURCE).expect("read");
    assert_eq!(r.call_id, "abc@host");
    assert_eq!(r.cseq, 42);
    assert_eq!(r.expires_header, Some(300));
    assert!(!r.wildcard);
    assert_eq!(r.contacts.len(), 3);
    assert_eq!(r.user_agent, Some("Softphone 1.0"));
    let set = ok(&[], &r);
    assert_eq!(
        contacts(&set),
        [
            "sip:alice@192.0.2.7:5062",
            "sip:alice@[2001:db8::1]",
            "sip:alice@pc"
        ]
    );
    assert_eq!(secs(&set[0]), 120);
    assert_eq!(secs(&set[1]), 300);
    assert_eq!(set[2].q, Some(500));
    assert!(set.iter().all(|b| b.user == "alice"
        && b.call_id == "abc@host"
        && b.cseq == 42
        && b.source == SOURCE
        && b.user_agent.as_deref() == Some("Softphone 1.0")));
}

fn message(extra: &str) -> herald_translate::sip::Message {
    let text = format!(
        "REGISTER sip:example.org SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK1\r\n\
         From: <sip:alice@example.org>;tag=1\r\nTo: <sip:alice@example.org>\r\n\
         Call-ID: abc\r\nCSeq: 1 REGISTER\r\n{extra}Content-Length: 0\r\n\r\n"
    );
    parse_datagram(text.as_bytes(), &Limits::default()).expect("parse")
}

#[test]
fn from_message_keeps_a_wildcard_beside_addresses() {
    let msg = message("Contact: *\r\nContact: <sip:alice@pc>\r\nExpires: 0\r\n");
    let r = RegisterRequest::from_message(&msg, SOURCE).expect("read");
    assert!(r.wildcard);
    assert_eq!(r.contacts.len(), 1);
    assert_eq!(
        apply(&[], &r),
        Err(RegisterRefusal::BadRequest(
            "Wildcard Contact with other contacts"
        ))
    );

    let msg = message("Contact: *\r\nExpires: 0\r\n");
    let r = RegisterRequest::from_message(&msg, SOURCE).expect("read");
    assert!(r.wildcard && r.contacts.is_empty());
    assert!(ok(&[], &r).is_empty());

    let msg = message("");
    let r = RegisterRequest::from_message(&msg, SOURCE).expect("read");
    assert!(!r.wildcard && r.contacts.is_empty() && r.expires_header.is_none());
    assert_eq!(r.user_agent, None);
}

#[test]
fn from_message_refuses_malformed_headers() {
    // The parser refuses these already; a message built in code goes through the views.
    for (name, value) in [
        (HeaderName::Expires, "soon"),
        (HeaderName::Contact, "<sip:alice@pc>;expires=x"),
        (HeaderName::Contact, "<sip:alice@pc>;q=2"),
        (HeaderName::Contact, "<not a uri>"),
        (HeaderName::CallId, "two words"),
    ] {
        let mut msg = message("");
        msg.headers.retain(|h| h.name != name);
        msg.push_header(name, value);
        let err = RegisterRequest::from_message(&msg, SOURCE).expect_err(value);
        assert_eq!(err.status(), 400, "{value}");
    }
}

// ----- registering, refreshing, removing -----

#[test]
fn new_binding_takes_contact_then_header_then_default_interval() {
    let set = ok(
        &[],
        &req("c", 1, Some(600), &["<sip:a@h1>;expires=120", "<sip:a@h2>"]),
    );
    assert_eq!(contacts(&set), ["sip:a@h1", "sip:a@h2"]);
    assert_eq!((secs(&set[0]), secs(&set[1])), (120, 600));
    let set = ok(&[], &req("c", 1, None, &["<sip:a@h1>"]));
    assert_eq!(secs(&set[0]), 3600);
    assert_eq!(set[0].expires_at_ms, NOW + 3_600_000);
}

#[test]
fn refresh_with_a_higher_cseq_updates_the_binding() {
    let first = ok(&[], &req("c", 1, Some(600), &["<sip:a@h1>"]));
    let applied = apply(&first, &req("c", 2, Some(900), &["<sip:a@h1>;q=0.7"])).unwrap();
    assert!(applied.changed);
    assert_eq!(applied.bindings.len(), 1);
    let b = &applied.bindings[0];
    assert_eq!((b.cseq, secs(b), b.q), (2, 900, Some(700)));
}

#[test]
fn same_call_id_with_a_cseq_not_higher_is_refused() {
    let first = ok(&[], &req("c", 5, Some(600), &["<sip:a@h1>"]));
    for cseq in [5, 4, 0] {
        assert_eq!(
            apply(&first, &req("c", cseq, Some(600), &["<sip:a@h1>"])),
            Err(RegisterRefusal::OutOfOrder),
            "cseq {cseq}"
        );
        // Removal obeys the same rule.
        assert_eq!(
            apply(&first, &req("c", cseq, Some(0), &["<sip:a@h1>"])),
            Err(RegisterRefusal::OutOfOrder)
        );
    }
    // The rule applies only to the matching binding: another contact is fine.
    let set = ok(&first, &req("c", 5, Some(600), &["<sip:a@h2>"]));
    assert_eq!(contacts(&set), ["sip:a@h1", "sip:a@h2"]);
}

#[test]
fn another_call_id_replaces_whatever_its_cseq() {
    let first = ok(&[], &req("c1", 50, Some(600), &["<sip:a@h1>"]));
    let set = ok(&first, &req("c2", 1, Some(300), &["<sip:a@h1>"]));
    assert_eq!(set.len(), 1);
    assert_eq!(
        (set[0].call_id.as_str(), set[0].cseq, secs(&set[0])),
        ("c2", 1, 300)
    );
}

#[test]
fn expires_zero_removes_the_binding() {
    let first = ok(&[], &req("c", 1, Some(600), &["<sip:a@h1>", "<sip:a@h2>"]));
    // By parameter, the header saying otherwise.
    let set = ok(&first, &req("c", 2, Some(600), &["<sip:a@h1>;expires=0"]));
    assert_eq!(contacts(&set), ["sip:a@h2"]);
    // By header.
    let applied = apply(&set, &req("c", 3, Some(0), &["<sip:a@h2>"])).unwrap();
    assert!(applied.bindings.is_empty() && applied.changed);
    // Removing what is not bound changes nothing.
    let applied = apply(&first, &req("c", 4, Some(0), &["<sip:a@h9>"])).unwrap();
    assert_eq!(applied.bindings, first);
    assert!(!applied.changed);
}

#[test]
fn wildcard_removes_every_binding() {
    let first = ok(&[], &req("c", 1, Some(600), &["<sip:a@h1>", "<sip:a@h2>"]));
    let first = ok(&first, &req("other", 1, Some(600), &["<sip:a@h3>"]));
    let applied = apply(&first, &wildcard("c", 2, Some(0))).unwrap();
    assert!(applied.bindings.is_empty() && applied.changed);
    // From a new Call-ID too.
    assert!(ok(&first, &wildcard("new", 1, Some(0))).is_empty());
    // But not out of order for any binding.
    assert_eq!(
        apply(&first, &wildcard("c", 1, Some(0))),
        Err(RegisterRefusal::OutOfOrder)
    );
}

#[test]
fn wildcard_needs_expires_zero_and_no_other_contact() {
    for expires in [None, Some(1), Some(3600)] {
        assert_eq!(
            apply(&[], &wildcard("c", 1, expires)),
            Err(RegisterRefusal::BadRequest(
                "Wildcard Contact without Expires: 0"
            ))
        );
    }
    let mut r = wildcard("c", 1, Some(0));
    r.contacts.push(NameAddr::parse("<sip:a@h1>").unwrap());
    assert_eq!(
        apply(&[], &r),
        Err(RegisterRefusal::BadRequest(
            "Wildcard Contact with other contacts"
        ))
    );
}

#[test]
fn query_returns_the_live_set() {
    let first = ok(&[], &req("c", 1, Some(600), &["<sip:a@h1>"]));
    let applied = apply(&first, &req("c", 1, None, &[])).unwrap();
    assert_eq!(applied.bindings, first);
    assert!(!applied.changed);
}

// ----- intervals -----

#[test]
fn interval_below_the_minimum_is_too_brief() {
    let too_brief = Err(RegisterRefusal::IntervalTooBrief { min_expires: 60 });
    assert_eq!(
        apply(&[], &req("c", 1, Some(59), &["<sip:a@h1>"])),
        too_brief
    );
    assert_eq!(
        apply(&[], &req("c", 1, Some(1), &["<sip:a@h1>"])),
        too_brief
    );
    assert_eq!(
        apply(
            &[],
            &req("c", 1, Some(600), &["<sip:a@h1>", "<sip:a@h2>;expires=30"])
        ),
        too_brief,
        "one brief contact refuses the whole request"
    );
    assert_eq!(
        secs(&ok(&[], &req("c", 1, Some(60), &["<sip:a@h1>"]))[0]),
        60
    );
    // Zero is a removal, not an interval.
    assert!(ok(&[], &req("c", 1, Some(0), &["<sip:a@h1>"])).is_empty());
    let refusal = RegisterRefusal::IntervalTooBrief { min_expires: 60 };
    assert_eq!(
        (refusal.status(), refusal.reason()),
        (423, "Interval Too Brief")
    );

    // RFC 3261 §10.3: only intervals under one hour may be refused.
    let strict = RegisterLimits {
        min_expires: 7200,
        max_expires: 86_400,
        ..limits()
    };
    let r = req("c", 1, Some(3600), &["<sip:a@h1>"]);
    let set = apply_register(&[], "alice", &r, NOW, &strict)
        .unwrap()
        .bindings;
    assert_eq!(secs(&set[0]), 3600);
    let r = req("c", 1, Some(3599), &["<sip:a@h1>"]);
    assert_eq!(
        apply_register(&[], "alice", &r, NOW, &strict),
        Err(RegisterRefusal::IntervalTooBrief { min_expires: 7200 })
    );
}

#[test]
fn interval_above_the_maximum_is_shortened() {
    let set = ok(
        &[],
        &req(
            "c",
            1,
            Some(7200),
            &["<sip:a@h1>", "<sip:a@h2>;expires=4294967295"],
        ),
    );
    assert_eq!((secs(&set[0]), secs(&set[1])), (3600, 3600));
}

#[test]
fn expired_bindings_are_dropped() {
    let first = ok(&[], &req("c", 9, Some(600), &["<sip:a@h1>", "<sip:a@h2>"]));
    let mut current = first.clone();
    current[0].expires_at_ms = NOW; // expired at NOW exactly
    let applied = apply(&current, &req("c", 9, None, &[])).unwrap();
    assert_eq!(contacts(&applied.bindings), ["sip:a@h2"]);
    assert!(applied.changed, "dropping an expired binding is a change");
    // An expired binding does not hold back its Call-ID and CSeq.
    let set = ok(&current, &req("c", 1, Some(600), &["<sip:a@h1>"]));
    assert_eq!(
        set.iter().find(|b| b.contact == "sip:a@h1").unwrap().cseq,
        1
    );
    // The 200 answer omits it too.
    assert_eq!(
        contact_header_values(&current, NOW),
        ["<sip:a@h2>;expires=600"]
    );
}

// ----- matching contacts -----

#[test]
fn equal_uris_name_the_same_binding() {
    let first = ok(
        &[],
        &req(
            "c",
            1,
            Some(600),
            &["<sip:alice@Host.Example.org:5062;transport=tcp>"],
        ),
    );
    // Scheme and host case, escapes, parameter case.
    let set = ok(
        &first,
        &req(
            "d",
            1,
            Some(300),
            &["<SIP:%61lice@host.example.ORG:5062;Transport=TCP>"],
        ),
    );
    assert_eq!(set.len(), 1, "{set:?}");
    // Stored as the codec writes it back: the scheme in lowercase, the rest as sent.
    assert_eq!(
        set[0].contact,
        "sip:%61lice@host.example.ORG:5062;Transport=TCP"
    );
    assert_eq!(secs(&set[0]), 300);
}

#[test]
fn uri_equality_follows_rfc_3261() {
    let same = [
        ("sip:a@h", "sip:a@H"),
        ("sip:a@h", "sip:a@h;transport=tcp"),
        ("sip:a@h;lr", "sip:a@h"),
        ("sip:%61@h", "sip:a@h"),
        ("sip:a@h;maddr=X", "sip:a@h;maddr=x"),
        (
            "sip:a@h?subject=x&priority=urgent",
            "sip:a@h?Priority=urgent&subject=x",
        ),
        ("tel:+1-201-555-0123", "tel:+12015550123"),
        ("urn:x:y", "URN:x:y"),
    ];
    for (a, b) in same {
        assert!(uri_eq(&uri(a), &uri(b)), "{a} == {b}");
        assert!(uri_eq(&uri(b), &uri(a)), "{b} == {a}");
    }
    let different = [
        ("sip:a@h", "sips:a@h"),
        ("sip:a@h", "sip:A@h"),
        ("sip:a@h", "sip:a@h:5060"),
        ("sip:a@h:5060", "sip:a@h:5061"),
        ("sip:a@h", "sip:h"),
        ("sip:a:pw@h", "sip:a@h"),
        ("sip:a@h;transport=tcp", "sip:a@h;transport=udp"),
        ("sip:a@h;user=phone", "sip:a@h"),
        ("sip:a@h;maddr=x", "sip:a@h"),
        ("sip:a@h;method=INVITE", "sip:a@h"),
        ("sip:a@h;ttl=1", "sip:a@h"),
        ("sip:a@h?subject=x", "sip:a@h"),
        ("sip:a@192.0.2.1", "sip:a@192.0.2.2"),
        ("sip:a@h", "tel:+1"),
        ("urn:x:y", "urn:x:Y"),
    ];
    for (a, b) in different {
        assert!(!uri_eq(&uri(a), &uri(b)), "{a} != {b}");
        assert!(!uri_eq(&uri(b), &uri(a)), "{b} != {a}");
    }
}

#[test]
fn same_instance_replaces_a_binding_with_a_new_address() {
    let inst = "+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\"";
    let first = ok(
        &[],
        &req("c1", 1, Some(600), &[&format!("<sip:a@192.0.2.1>;{inst}")]),
    );
    assert_eq!(
        first[0].instance.as_deref(),
        Some("<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>")
    );
    // The UA moved (new address, new Call-ID after a reboot): one binding, the new one.
    let upper = inst.replace("f81d4fae", "F81D4FAE");
    let set = ok(
        &first,
        &req("c2", 1, Some(600), &[&format!("<sip:a@192.0.2.9>;{upper}")]),
    );
    assert_eq!(contacts(&set), ["sip:a@192.0.2.9"]);
    // Same instance and Call-ID with an old CSeq is out of order even at a new address.
    assert_eq!(
        apply(
            &set,
            &req("c2", 1, Some(600), &[&format!("<sip:a@192.0.2.5>;{inst}")])
        ),
        Err(RegisterRefusal::OutOfOrder)
    );
    // Removal by instance.
    assert!(ok(
        &set,
        &req("c2", 2, Some(0), &[&format!("<sip:a@192.0.2.5>;{inst}")])
    )
    .is_empty());
}

#[test]
fn outbound_flows_of_one_instance_coexist() {
    let inst = "+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>\"";
    let set = ok(
        &[],
        &req(
            "c1",
            1,
            Some(600),
            &[&format!("<sip:a@192.0.2.1;transport=tcp>;{inst};reg-id=1")],
        ),
    );
    let set = ok(
        &set,
        &req(
            "c2",
            1,
            Some(600),
            &[&format!("<sip:a@192.0.2.2;transport=tcp>;{inst};reg-id=2")],
        ),
    );
    assert_eq!(set.len(), 2);
    assert_eq!(
        set.iter().map(|b| b.reg_id).collect::<Vec<_>>(),
        [Some(1), Some(2)]
    );
    // Flow 1 re-registers from a new address: it replaces flow 1 only.
    let set = ok(
        &set,
        &req(
            "c3",
            1,
            Some(600),
            &[&format!("<sip:a@192.0.2.3;transport=tcp>;{inst};reg-id=1")],
        ),
    );
    assert_eq!(
        contacts(&set),
        [
            "sip:a@192.0.2.2;transport=tcp",
            "sip:a@192.0.2.3;transport=tcp"
        ]
    );

    // Two contacts with a reg-id in one request (RFC 5626 §6), a malformed reg-id.
    let two = [
        format!("<sip:a@192.0.2.1>;{inst};reg-id=1"),
        format!("<sip:a@192.0.2.2>;{inst};reg-id=2"),
    ];
    assert_eq!(
        apply(&[], &req("c", 1, Some(600), &[&two[0], &two[1]])),
        Err(RegisterRefusal::BadRequest(
            "More than one Contact with reg-id"
        ))
    );
    assert_eq!(
        apply(
            &[],
            &req("c", 1, Some(600), &[&format!("<sip:a@h>;{inst};reg-id=x")])
        ),
        Err(RegisterRefusal::BadRequest("Malformed reg-id"))
    );
    // Without an instance a reg-id means nothing and is not kept.
    let set = ok(&[], &req("c", 1, Some(600), &["<sip:a@h>;reg-id=x"]));
    assert_eq!((set[0].instance.as_ref(), set[0].reg_id), (None, None));
}

#[test]
fn a_contact_repeated_in_one_request_is_not_out_of_order() {
    let set = ok(
        &[],
        &req(
            "c",
            1,
            Some(600),
            &["<sip:a@h>;expires=100", "<sip:a@H>;expires=200"],
        ),
    );
    assert_eq!(set.len(), 1);
    assert_eq!(secs(&set[0]), 200, "the later one wins");
}

// ----- limits -----

#[test]
fn too_many_bindings_is_forbidden() {
    let ten: Vec<String> = (0..10).map(|i| format!("<sip:a@192.0.2.{i}>")).collect();
    let refs: Vec<&str> = ten.iter().map(String::as_str).collect();
    let full = ok(&[], &req("c", 1, Some(600), &refs));
    assert_eq!(full.len(), 10);
    assert_eq!(
        apply(&full, &req("d", 1, Some(600), &["<sip:a@192.0.2.99>"])),
        Err(RegisterRefusal::TooManyBindings)
    );
    let refusal = RegisterRefusal::TooManyBindings;
    assert_eq!(
        (refusal.status(), refusal.reason()),
        (403, "Too many registrations")
    );
    // Replacing one while adding one keeps the count: accepted.
    let set = ok(
        &full,
        &req(
            "d",
            1,
            Some(600),
            &["<sip:a@192.0.2.0>;expires=0", "<sip:a@192.0.2.99>"],
        ),
    );
    assert_eq!(set.len(), 10);
    // Over a lowered limit, refreshing and removing still work; adding does not.
    let low = RegisterLimits {
        max_bindings: 3,
        ..limits()
    };
    let r = req("c", 2, Some(600), &["<sip:a@192.0.2.1>"]);
    assert_eq!(
        apply_register(&full, "alice", &r, NOW, &low)
            .unwrap()
            .bindings
            .len(),
        10
    );
    let r = req("c", 3, Some(0), &["<sip:a@192.0.2.1>"]);
    assert_eq!(
        apply_register(&full, "alice", &r, NOW, &low)
            .unwrap()
            .bindings
            .len(),
        9
    );
    let r = req("c", 4, Some(600), &["<sip:a@192.0.2.100>"]);
    assert_eq!(
        apply_register(&full, "alice", &r, NOW, &low),
        Err(RegisterRefusal::TooManyBindings)
    );
}

#[test]
fn refusals_name_their_response() {
    assert_eq!(RegisterRefusal::OutOfOrder.status(), 500);
    let bad = RegisterRefusal::BadRequest("Malformed reg-id");
    assert_eq!((bad.status(), bad.reason()), (400, "Malformed reg-id"));
}

// ----- the 200 answer -----

#[test]
fn q_values_are_kept_and_written_back() {
    let set = ok(
        &[],
        &req(
            "c",
            1,
            Some(600),
            &[
                "<sip:a@h1>;q=1",
                "<sip:a@h2>;q=0.5",
                "<sip:a@h3>;q=0",
                "<sip:a@h4>;q=0.025",
                "<sip:a@h5>",
            ],
        ),
    );
    assert_eq!(
        set.iter().map(|b| b.q).collect::<Vec<_>>(),
        [Some(1000), Some(500), Some(0), Some(25), None]
    );
    assert_eq!(
        contact_header_values(&set, NOW),
        [
            "<sip:a@h1>;expires=600;q=1",
            "<sip:a@h2>;expires=600;q=0.5",
            "<sip:a@h3>;expires=600;q=0",
            "<sip:a@h4>;expires=600;q=0.025",
            "<sip:a@h5>;expires=600",
        ]
    );
}

#[test]
fn contact_values_count_the_seconds_left() {
    let inst = "+sip.instance=\"<urn:uuid:1>\";reg-id=3";
    let set = ok(
        &[],
        &req(
            "c",
            1,
            Some(600),
            &[&format!("<sip:a@h;transport=tcp>;{inst}")],
        ),
    );
    assert_eq!(
        contact_header_values(&set, NOW + 100_000),
        ["<sip:a@h;transport=tcp>;expires=500;+sip.instance=\"<urn:uuid:1>\";reg-id=3"]
    );
    // Rounded up: a binding with a few milliseconds left is not announced as removed.
    assert_eq!(
        contact_header_values(&set, NOW + 599_999),
        ["<sip:a@h;transport=tcp>;expires=1;+sip.instance=\"<urn:uuid:1>\";reg-id=3"]
    );
    assert!(contact_header_values(&set, NOW + 600_000).is_empty());
    // Quotes and backslashes in an instance are escaped again.
    let mut odd = set[0].clone();
    odd.instance = Some("a\"b\\c".to_owned());
    odd.reg_id = None;
    assert_eq!(
        contact_header_values(&[odd], NOW),
        ["<sip:a@h;transport=tcp>;expires=600;+sip.instance=\"a\\\"b\\\\c\""]
    );
    // The values parse back as Contact addresses.
    for v in contact_header_values(&set, NOW) {
        let a = NameAddr::parse(&v).expect("parses");
        assert_eq!(a.expires(), Some(600));
    }
}

// ----- model (property test) -----

/// One REGISTER of the model: which contact, Call-ID, CSeq and interval.
#[derive(Debug, Clone)]
struct Op {
    contacts: Vec<(usize, Option<u32>)>,
    call_id: usize,
    cseq: u32,
    expires: Option<u32>,
    wildcard: bool,
    advance_ms: i64,
}

const HOSTS: [&str; 4] = ["sip:a@h1", "sip:a@H1", "sip:a@h2", "sip:a@h3:5070"];
const CALL_IDS: [&str; 2] = ["x", "y"];

fn op() -> impl Strategy<Value = Op> {
    let interval = prop_oneof![Just(0_u32), 1_u32..100, 60_u32..5000];
    (
        prop::collection::vec((0..HOSTS.len(), prop::option::of(interval.clone())), 0..4),
        0..CALL_IDS.len(),
        0_u32..6,
        prop::option::of(interval),
        prop::bool::weighted(0.1),
        0_i64..2_000_000,
    )
        .prop_map(
            |(contacts, call_id, cseq, expires, wildcard, advance_ms)| Op {
                contacts,
                call_id,
                cseq,
                expires,
                wildcard,
                advance_ms,
            },
        )
}

proptest! {
    /// Whatever the sequence, the set holds live bindings only, sorted, with no two
    /// equal contacts, within the limit; a refusal leaves it as it was; an accepted
    /// contact with a nonzero interval is bound with the request's Call-ID and CSeq, a
    /// zero one is gone.
    #[test]
    fn register_model(ops in prop::collection::vec(op(), 1..30)) {
        let limits = RegisterLimits { max_bindings: 3, ..RegisterLimits::default() };
        let mut set: Vec<SipBinding> = Vec::new();
        let mut now = NOW;
        for op in &ops {
            now += op.advance_ms;
            let values: Vec<String> = op
                .contacts
                .iter()
                .map(|(h, e)| match e {
                    Some(e) => format!("<{}>;expires={e}", HOSTS[*h]),
                    None => format!("<{}>", HOSTS[*h]),
                })
                .collect();
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            let mut r = req(CALL_IDS[op.call_id], op.cseq, op.expires, &refs);
            r.wildcard = op.wildcard;
            if let Ok(applied) = apply_register(&set, "alice", &r, now, &limits) {
                let b = &applied.bindings;
                prop_assert!(b.iter().all(|x| x.expires_at_ms > now));
                prop_assert!(b.windows(2).all(|w| w[0].contact < w[1].contact));
                for (i, x) in b.iter().enumerate() {
                    for y in &b[i + 1..] {
                        prop_assert!(!uri_eq(&uri(&x.contact), &uri(&y.contact)));
                    }
                }
                prop_assert!(b.len() <= limits.max_bindings);
                if op.wildcard {
                    prop_assert!(b.is_empty());
                }
                // The last mention of each contact in the request decides.
                for (k, contact) in r.contacts.iter().enumerate().rev() {
                    let later = r.contacts[k + 1..]
                        .iter()
                        .any(|c| uri_eq(&c.uri, &contact.uri));
                    if later || op.wildcard {
                        continue;
                    }
                    let found = b.iter().find(|x| uri_eq(&uri(&x.contact), &contact.uri));
                    let interval = contact.expires().or(op.expires).unwrap_or(3600);
                    if interval == 0 {
                        prop_assert!(found.is_none());
                    } else {
                        let found = found.expect("bound");
                        prop_assert_eq!(found.call_id.as_str(), r.call_id);
                        prop_assert_eq!(found.cseq, r.cseq);
                        let secs = (found.expires_at_ms - now) / 1000;
                        prop_assert_eq!(secs, i64::from(interval.min(3600)));
                    }
                }
                prop_assert_eq!(applied.changed, b != &set);
                set = applied.bindings;
            }
        }
    }
}
