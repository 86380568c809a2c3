//! Route lookup: the precedence rules on examples, and the index checked against the
//! plain definition ("the matching route of greatest specificity, first in the list")
//! on random tables.

use proptest::prelude::*;

use super::*;

fn route(p: &str, target: Option<&str>) -> Route {
    let mut r = Route::new(DomainPattern::parse(p).expect("pattern"));
    r.target = target.map(|t| Target::parse(t).expect("target"));
    r
}

fn table(ps: &[&str]) -> RouteTable {
    RouteTable::new(ps.iter().map(|p| route(p, None)).collect())
}

fn chosen(t: &RouteTable, d: &str) -> Option<String> {
    t.lookup(d).route().map(|r| r.pattern.to_string())
}

#[test]
fn exact_beats_wildcards_which_beat_the_default() {
    let t = table(&["*", "*.example", "*.partner.example", "partner.example"]);
    assert_eq!(
        chosen(&t, "partner.example").as_deref(),
        Some("partner.example")
    );
    assert_eq!(
        chosen(&t, "a.partner.example").as_deref(),
        Some("*.partner.example")
    );
    assert_eq!(
        chosen(&t, "x.y.partner.example").as_deref(),
        Some("*.partner.example")
    );
    assert_eq!(chosen(&t, "other.example").as_deref(), Some("*.example"));
    assert_eq!(chosen(&t, "example").as_deref(), Some("*"));
    assert_eq!(chosen(&t, "elsewhere.org").as_deref(), Some("*"));
}

#[test]
fn no_route_means_dns_and_says_which_records() {
    let t = table(&["partner.example"]);
    let d = t.lookup("remote.example");
    assert!(d.route().is_none());
    assert!(d.target().is_none());
    assert!(
        d.reason()
            .contains("_xmpps-server._tcp.remote.example and _xmpp-server._tcp.remote.example"),
        "{}",
        d.reason()
    );
}

#[test]
fn reasons_name_the_entry_and_the_destination() {
    let t = RouteTable::new(vec![
        route("*", Some("edge.internal:5269")),
        route("partner.example", None),
    ]);
    let d = t.lookup("partner.example");
    assert!(d.reason().contains("entry 2"), "{}", d.reason());
    assert!(d.reason().contains("only sets policy"), "{}", d.reason());
    let d = t.lookup("far.example");
    assert_eq!(
        d.target().map(ToString::to_string).as_deref(),
        Some("edge.internal:5269")
    );
    assert!(d.reason().contains("default route"), "{}", d.reason());
}

#[test]
fn the_first_of_two_equal_patterns_is_used_and_reported() {
    let routes = vec![
        route("a.example", Some("10.0.0.1:5269")),
        route("*.b.example", None),
        route("A.example", Some("10.0.0.2:5269")),
    ];
    assert_eq!(RouteTable::duplicates(&routes), vec![(2, 0)]);
    let t = RouteTable::new(routes);
    assert_eq!(
        t.lookup("a.example").target().map(|t| t.host.as_str()),
        Some("10.0.0.1")
    );
}

#[test]
fn targets_parse_with_a_port() {
    let t = Target::parse("Edge.Example:5270").expect("target");
    assert_eq!((t.host.as_str(), t.port), ("edge.example", 5270));
    let t = Target::parse("[2001:db8::7]:5269").expect("v6");
    assert_eq!(t.host, "2001:db8::7");
    assert_eq!(t.to_string(), "[2001:db8::7]:5269");
    assert_eq!(
        Target::parse("10.0.0.7:5269").expect("v4").to_string(),
        "10.0.0.7:5269"
    );
    for (s, why) in [
        ("10.0.0.7", "has no port: write `10.0.0.7:5269`"),
        ("[::1]", "has no port"),
        ("2001:db8::7:5269", "in brackets"),
        ("host:0", "1 to 65535"),
        ("host:70000", "1 to 65535"),
        ("bad host:5269", "neither"),
        ("[zz]:5269", "bad IPv6"),
    ] {
        let e = Target::parse(s).expect_err(s).to_string();
        assert!(e.contains(why), "{s}: {e}");
    }
}

#[test]
fn pins_are_64_hex_digits_with_optional_colons() {
    let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
    let p = parse_pin(hex).expect("pin");
    assert_eq!(p[1], 0x11);
    assert_eq!(p[31], 0xff);
    let colons: Vec<String> = hex
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    assert_eq!(parse_pin(&colons.join(":")), Ok(p));
    assert!(parse_pin("abcd").is_err());
    assert!(parse_pin(&"g".repeat(64)).is_err());
}

/// Patterns over a small alphabet of labels, so random domains often match.
fn pattern() -> impl Strategy<Value = String> {
    let domain = prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..4)
        .prop_map(|ls| ls.join("."));
    prop_oneof![
        3 => domain.clone(),
        3 => domain.prop_map(|d| format!("*.{d}")),
        1 => Just("*".to_string()),
    ]
}

fn domain() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..5)
        .prop_map(|ls| ls.join("."))
}

proptest! {
    #[test]
    fn the_index_agrees_with_the_definition(
        patterns in prop::collection::vec(pattern(), 0..8),
        d in domain(),
    ) {
        let routes: Vec<Route> = patterns.iter().map(|p| route(p, None)).collect();
        let t = RouteTable::new(routes.clone());
        // The definition: greatest specificity among matching routes, earliest first.
        let expected = routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.pattern.matches(&d))
            .max_by_key(|(i, r)| (r.pattern.specificity(), std::cmp::Reverse(*i)))
            .map(|(i, _)| i);
        let got = match t.lookup(&d) {
            RouteDecision::Static { index, route, .. } => {
                prop_assert!(route.pattern.matches(&d));
                Some(index)
            }
            RouteDecision::Dns { .. } => None,
        };
        prop_assert_eq!(got, expected);
    }
}
