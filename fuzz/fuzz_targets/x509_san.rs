#![no_main]
//! Reading a certificate's subjectAltName identifiers (DNS-ID, SRV-ID,
//! XmppAddr) never panics, stays bounded, and a match is only ever reported
//! for a name the certificate presents.

use herald_certs::verify::{check_identity, presented_ids, PresentedId, MAX_PRESENTED_IDS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks how much of the input is a reference domain.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(rest.len()).min(64);
    let (domain, der) = rest.split_at(split);
    let domain = String::from_utf8_lossy(domain);

    let names = presented_ids(der);
    let check = check_identity(der, &domain);
    assert!(check.names.len() <= MAX_PRESENTED_IDS);
    match names {
        Ok(names) => {
            assert_eq!(names, check.names);
            assert!(check.unreadable.is_none());
            if check.matched.is_some() {
                assert!(names
                    .iter()
                    .any(|name| !matches!(name, PresentedId::Unusable { .. })));
            }
        }
        Err(_) => {
            assert!(check.unreadable.is_some());
            assert!(check.matched.is_none());
        }
    }
    for name in &check.names {
        let _ = name.to_string();
    }
});
