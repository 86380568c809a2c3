#![no_main]
//! JID parsing never panics, and a parsed JID is stable under display and re-parse.

use herald_translate::Jid;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(jid) = Jid::parse(s) {
        let again = Jid::parse(&jid.to_string()).expect("a displayed JID parses");
        assert_eq!(again, jid);
        assert_eq!(jid.bare().resource(), None);
    }
});
