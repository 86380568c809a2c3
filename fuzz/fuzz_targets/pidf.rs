#![no_main]
//! The presence document readers never panic on any bytes, and a PIDF document that
//! parses is written back to a document that parses to the same model.

use herald_translate::pidf::{DialogInfo, DocLimits, Pidf, WatcherInfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = DocLimits::default();
    if let Ok(doc) = Pidf::parse(data, &limits) {
        let xml = doc.to_xml().expect("a parsed document serializes");
        let again = Pidf::parse(xml.as_bytes(), &limits).expect("a written document parses");
        assert_eq!(again, doc);
    }
    if let Ok(info) = DialogInfo::parse(data, &limits) {
        let xml = info.to_xml().expect("a parsed dialog-info serializes");
        assert_eq!(DialogInfo::parse(xml.as_bytes(), &limits).as_ref(), Ok(&info));
    }
    if let Ok(info) = WatcherInfo::parse(data, &limits) {
        let xml = info.to_xml().expect("a parsed watcherinfo serializes");
        assert_eq!(WatcherInfo::parse(xml.as_bytes(), &limits).as_ref(), Ok(&info));
    }
});
