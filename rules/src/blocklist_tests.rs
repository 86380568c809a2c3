//! The XEP-0016 §2.1 matching rules, for the linear definition and the index alike,
//! and the index checked against the definition on random lists.

use proptest::prelude::*;

use super::*;

fn j(s: &str) -> Jid {
    Jid::parse(s).expect("jid")
}

fn list(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Both implementations, which must agree.
fn check(items: &[&str], addr: &str) -> Option<BlockMatch> {
    let items = list(items);
    let addr = j(addr);
    let linear = blocks(&items, &addr);
    let indexed = BlockList::new(items).matches(&addr);
    assert_eq!(linear, indexed, "{addr}");
    indexed
}

fn rule(items: &[&str], addr: &str) -> Option<&'static str> {
    check(items, addr).map(|m| m.rule)
}

#[test]
fn matching_rules() {
    let bare = ["romeo@montague.example"];
    assert_eq!(
        rule(&bare, "romeo@montague.example/phone"),
        Some("bare JID")
    );
    assert_eq!(rule(&bare, "romeo@montague.example"), Some("bare JID"));
    assert_eq!(rule(&bare, "juliet@capulet.example"), None);
    assert_eq!(rule(&bare, "juliet@montague.example"), None);
    assert_eq!(rule(&bare, "montague.example"), None);

    let full = ["romeo@montague.example/phone"];
    assert_eq!(
        rule(&full, "romeo@montague.example/phone"),
        Some("full JID")
    );
    assert_eq!(rule(&full, "romeo@montague.example/desk"), None);
    assert_eq!(rule(&full, "romeo@montague.example"), None);

    let domain = ["spam.example"];
    assert_eq!(rule(&domain, "anyone@spam.example/x"), Some("domain"));
    assert_eq!(rule(&domain, "spam.example"), Some("domain"));
    assert_eq!(rule(&domain, "spam.example/bot"), Some("domain"));
    assert_eq!(rule(&domain, "anyone@ham.example"), None);
    assert_eq!(rule(&domain, "sub.spam.example"), None);

    let domain_resource = ["spam.example/bot"];
    assert_eq!(
        rule(&domain_resource, "spam.example/bot"),
        Some("domain/resource")
    );
    assert_eq!(rule(&domain_resource, "user@spam.example/bot"), None);
    assert_eq!(rule(&domain_resource, "spam.example"), None);
    assert_eq!(rule(&domain_resource, "spam.example/other"), None);
}

#[test]
fn items_and_addresses_compare_normalized() {
    assert_eq!(
        rule(&["Romeo@MONTAGUE.example"], "romeo@montague.example/x"),
        Some("bare JID")
    );
    let m = check(&["ROMEO@montague.example"], "romeo@montague.example");
    assert_eq!(
        m.map(|m| m.item).as_deref(),
        Some("ROMEO@montague.example"),
        "the item as given"
    );
    // Resourceparts are case-sensitive.
    assert_eq!(
        rule(
            &["romeo@montague.example/Phone"],
            "romeo@montague.example/phone"
        ),
        None
    );
}

#[test]
fn the_first_matching_item_in_list_order_is_reported() {
    let items = ["spam.example", "bob@spam.example", "bob@spam.example/x"];
    assert_eq!(rule(&items, "bob@spam.example/x"), Some("domain"));
    let items = ["bob@spam.example/x", "bob@spam.example", "spam.example"];
    assert_eq!(rule(&items, "bob@spam.example/x"), Some("full JID"));
    assert_eq!(rule(&items, "bob@spam.example/y"), Some("bare JID"));
    assert_eq!(rule(&items, "eve@spam.example"), Some("domain"));
    // Two spellings of one item: the first one is reported.
    let m = check(
        &["Bob@spam.example", "bob@spam.example"],
        "bob@spam.example",
    );
    assert_eq!(m.map(|m| m.item).as_deref(), Some("Bob@spam.example"));
}

#[test]
fn malformed_items_never_match_and_are_reported() {
    let items = ["@@", "", "a@b", "x/", "@example.org"];
    assert_eq!(
        check(&items, "a@b"),
        Some(BlockMatch {
            item: "a@b".into(),
            rule: "bare JID"
        })
    );
    assert_eq!(check(&items, "example.org"), None);
    let l = BlockList::new(list(&items));
    assert_eq!(l.malformed_count(), 4);
    assert_eq!(
        l.malformed().collect::<Vec<_>>(),
        vec!["@@", "", "x/", "@example.org"]
    );
    assert_eq!(l.len(), 5);
    assert_eq!(l.items(), list(&items).as_slice());
    assert!(!l.is_empty());
    assert!(BlockList::default().is_empty());
    assert!(!BlockList::default().blocks(&j("a@b")));
    let collected: BlockList = list(&["a@b"]).into_iter().collect();
    assert!(collected.blocks(&j("a@b/c")));
}

/// Item and address pieces from small alphabets, so that lists and addresses collide
/// often; a few spellings differ only in case, and some pieces make items malformed.
fn piece(options: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    proptest::sample::select(options)
}

const LOCALS: &[&str] = &["romeo", "Romeo", "juliet", "bot", ""];
const DOMAINS: &[&str] = &[
    "montague.example",
    "MONTAGUE.example",
    "capulet.example",
    "spam.example",
    "bad domain",
    "",
];
const RESOURCES: &[&str] = &["phone", "Phone", "desk", "bot", ""];

fn jid_string() -> impl Strategy<Value = String> {
    (
        proptest::option::of(piece(LOCALS)),
        piece(DOMAINS),
        proptest::option::of(piece(RESOURCES)),
    )
        .prop_map(|(l, d, r)| {
            let mut s = String::new();
            if let Some(l) = l {
                s.push_str(l);
                s.push('@');
            }
            s.push_str(d);
            if let Some(r) = r {
                s.push('/');
                s.push_str(r);
            }
            s
        })
}

fn address() -> impl Strategy<Value = Jid> {
    jid_string().prop_filter_map("a valid JID", |s| Jid::parse(&s).ok())
}

proptest! {
    #[test]
    fn the_index_agrees_with_the_definition(
        items in proptest::collection::vec(jid_string(), 0..24),
        addrs in proptest::collection::vec(address(), 1..8),
    ) {
        let index = BlockList::new(items.clone());
        for addr in &addrs {
            prop_assert_eq!(index.matches(addr), blocks(&items, addr), "{}", addr);
        }
        let bad = items.iter().filter(|i| Jid::parse(i).is_err()).count();
        prop_assert_eq!(index.malformed_count(), bad);
    }
}
