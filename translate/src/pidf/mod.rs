//! Presence documents of SIP/SIMPLE, parsed with Herald's bounded XML reader and written
//! with its escaping serializer.
//!
//! - [`Pidf`]: a PIDF document (RFC 3863) with the data-model elements of RFC 4479
//!   ([`Person`], [`Device`]) and the RPID extensions of RFC 4480 ([`Activities`],
//!   [`Mood`]).
//! - [`DialogInfo`]: the `dialog-info` document of the SIP dialog event package
//!   (RFC 4235), read to tell whether a user is on the phone.
//! - [`WatcherInfo`]: the `watcherinfo` document of the `presence.winfo` package
//!   (RFC 3857, RFC 3858).
//!
//! [`PresenceBody`] picks the document by the SIP body's `Content-Type`.
//!
//! Every reader is bounded by [`DocLimits`] (document bytes, depth, item and note
//! counts) and fails with one typed [`PidfError`]. Elements a model does not know are
//! kept as [`Element`](crate::xml::Element)s in an `extensions` list and written back,
//! so a document passes through Herald without losing what other parties put in it.

mod body;
mod data_model;
mod dialog;
mod document;
mod error;
mod note;
mod presence;
mod rpid;
mod winfo;

#[cfg(test)]
mod tests;

pub use body::{
    PresenceBody, DIALOG_INFO_CONTENT_TYPE, PIDF_CONTENT_TYPE, WATCHERINFO_CONTENT_TYPE,
};
pub use data_model::{Device, Person};
pub use dialog::{
    Applied, Dialog, DialogDirection, DialogInfo, DialogState, DocState, Participant,
};
pub use document::DocLimits;
pub use error::PidfError;
pub use note::Note;
pub use presence::{Basic, Contact, Pidf, Priority, Status, Tuple};
pub use rpid::{Activities, Activity, Mood};
pub use winfo::{WatcherEvent, WatcherInfo, WatcherList, WatcherRecord, WatcherStatus};

/// The PIDF namespace (RFC 3863 §4.1).
pub const PIDF_NS: &str = "urn:ietf:params:xml:ns:pidf";
/// The RPID namespace (RFC 4480).
pub const RPID_NS: &str = "urn:ietf:params:xml:ns:pidf:rpid";
/// The presence data-model namespace (RFC 4479): `person`, `device`, `deviceID`.
pub const DATA_MODEL_NS: &str = "urn:ietf:params:xml:ns:pidf:data-model";
/// The dialog event package namespace (RFC 4235).
pub const DIALOG_INFO_NS: &str = "urn:ietf:params:xml:ns:dialog-info";
/// The watcher information namespace (RFC 3858).
pub const WATCHERINFO_NS: &str = "urn:ietf:params:xml:ns:watcherinfo";
