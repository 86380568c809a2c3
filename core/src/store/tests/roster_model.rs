//! The roster model of the property test: random puts and removals applied to a
//! store and to a map must agree, and the roster version must move as it should.

use super::*;

#[derive(Debug, Clone)]
pub(super) enum RosterOp {
    Put(RosterItem),
    Remove(String),
}

pub(super) fn roster_op() -> impl Strategy<Value = RosterOp> {
    let jid = prop::sample::select(vec!["a@x", "b@x", "c@y", "d@y", "e@z", "é@z"]);
    let subscription = prop::sample::select(vec![
        Subscription::None,
        Subscription::To,
        Subscription::From,
        Subscription::Both,
    ]);
    let groups = prop::collection::vec(
        prop::sample::select(vec!["g1", "g2", "Friends", "ü", ""]),
        0..4,
    );
    let put = (
        jid.clone(),
        prop::option::of("[a-zé ]{0,6}"),
        subscription,
        any::<(bool, bool)>(),
        groups,
    )
        .prop_map(|(jid, name, subscription, (ask, approved), groups)| {
            RosterOp::Put(RosterItem {
                jid: jid.to_owned(),
                name,
                subscription,
                ask,
                approved,
                groups: strings(&groups),
            })
        });
    prop_oneof![3 => put, 2 => jid.prop_map(|j| RosterOp::Remove(j.to_owned()))]
}

/// Applies `ops` to the roster of "alice" (existing, empty) and to a map,
/// checking after each step that both agree and the version moves correctly.
pub(super) fn check_roster_ops(s: &dyn Store, ops: &[RosterOp]) -> Result<(), TestCaseError> {
    let mut model: BTreeMap<String, RosterItem> = BTreeMap::new();
    let mut version = s.roster_version("alice").unwrap();
    for op in ops {
        match op {
            RosterOp::Put(item) => {
                let new = s.roster_put("alice", item).unwrap();
                prop_assert!(new > version, "put: {new} <= {version}");
                version = new;
                let mut stored = item.clone();
                let mut seen = std::collections::HashSet::new();
                stored.groups.retain(|g| seen.insert(g.clone()));
                model.insert(item.jid.clone(), stored);
            }
            RosterOp::Remove(jid) => {
                let removed = s.roster_remove("alice", jid).unwrap();
                match (removed, model.remove(jid)) {
                    (Some(new), Some(_)) => {
                        prop_assert!(new > version, "remove: {new} <= {version}");
                        version = new;
                    }
                    (None, None) => {}
                    (got, expected) => {
                        prop_assert!(false, "remove {jid}: got {got:?}, model had {expected:?}");
                    }
                }
            }
        }
        let (v, items) = s.roster("alice").unwrap();
        prop_assert_eq!(v, version);
        prop_assert_eq!(s.roster_version("alice").unwrap(), version);
        prop_assert_eq!(&items, &model.values().cloned().collect::<Vec<_>>());
        prop_assert_eq!(s.roster_len("alice").unwrap(), model.len());
        for jid in ["a@x", "é@z"] {
            prop_assert_eq!(
                s.roster_item("alice", jid).unwrap(),
                model.get(jid).cloned()
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        // Regression files would land outside the store module.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn roster_matches_model(ops in prop::collection::vec(roster_op(), 0..40)) {
        let store = SqliteStore::open_in_memory().unwrap();
        store.create_user("alice", &none()).unwrap();
        check_roster_ops(&store, &ops)?;
    }
}
