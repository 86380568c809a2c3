#![no_main]
//! The SCRAM and PLAIN server steps never panic on arbitrary client messages.

use herald_translate::sasl::{plain_parse, ScramHash, ScramRecord, ScramServer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = plain_parse(data);
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let (first, last) = data.split_at(split);
    let hash = if split % 2 == 0 { ScramHash::Sha1 } else { ScramHash::Sha256 };
    let mut server = ScramServer::new(hash);
    if server.client_first(first).is_ok() {
        let record = ScramRecord::derive(hash, "pencil", b"saltsaltsaltsalt", 1).ok();
        let _ = server.server_first(record.as_ref());
        let _ = server.client_final(last);
    }
});
