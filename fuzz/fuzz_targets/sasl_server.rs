#![no_main]
//! The SCRAM and PLAIN server steps never panic on arbitrary client messages.

use herald_translate::sasl::{plain_parse, DecoySecret, ScramHash, ScramRecord, ScramServer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = plain_parse(data);
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let (first, last) = data.split_at(split);
    let hash = if split.is_multiple_of(2) {
        ScramHash::Sha1
    } else {
        ScramHash::Sha256
    };
    let mut server = ScramServer::with_nonce(hash, "fuzznonce");
    if let Ok(client) = server.client_first(first) {
        let record = ScramRecord::derive(hash, "pencil", b"saltsaltsaltsalt", 1).ok();
        let decoy = DecoySecret::from_bytes([0; 32]).record(hash, &client.username);
        // Odd lengths: answer as for an unknown user.
        let record = record.filter(|_| data.len().is_multiple_of(2));
        let _ = server.server_first(record.as_ref(), &decoy);
        let _ = server.client_final(last);
    }
});
