//! The event state compositor's store of publications (RFC 3903), sans-IO.
//!
//! [`Publications`] holds the event state every presentity's user agents published,
//! keyed by presentity (its address of record), event package and entity-tag, and
//! answers each PUBLISH the caller has already authenticated and authorized
//! ([`Publications::on_publish`]) following RFC 3903 §6, checks in this order (a
//! request that is not a PUBLISH gets 400):
//!
//! | Step | Check                                                   | Refusal                                  |
//! |------|---------------------------------------------------------|------------------------------------------|
//! | 3    | one Event, one of [`PublicationConfig::packages`]       | 489 Bad Event + `Allow-Events`          |
//! | 4    | SIP-If-Match: one token naming live state of this presentity and package | 400 (malformed), 412 Conditional Request Failed |
//! | 5    | Expires: absent = package default, below the minimum refused, above the maximum shortened | 400 (malformed), 423 + `Min-Expires` |
//! | 6    | body: supported Content-Type, within the size bound, parses | 415 + `Accept`, 413, 400 with the parser's reason |
//! | 6    | an initial PUBLISH (no SIP-If-Match) has a body         | 400 Missing Body                         |
//! | —    | room: [`PublicationConfig::max_per_presentity`]         | 403 Too Many Publications               |
//! | —    | room: [`PublicationConfig::max_total`]                  | 503 + `Retry-After`                      |
//!
//! The operations of RFC 3903 Table 1, each answered 200 with `SIP-ETag` and
//! `Expires` (step 7: every 2xx carries a new entity-tag, even a removal's, whose tag
//! names nothing):
//!
//! | Operation | Body | SIP-If-Match | Expires | Effect                                   | Change |
//! |-----------|------|--------------|---------|------------------------------------------|--------|
//! | Initial   | yes  | no           | > 0     | new state, new entity-tag                | yes    |
//! | Refresh   | no   | yes          | > 0     | same document, new entity-tag and expiry | no     |
//! | Modify    | yes  | yes          | > 0     | new document, new entity-tag and expiry  | yes    |
//! | Remove    | any  | yes          | 0       | state removed                            | yes    |
//!
//! An initial PUBLISH with `Expires: 0` is checked as any other, then stores nothing
//! (the state would expire at once). The old entity-tag of a refreshed or modified
//! publication is gone: a retransmission or a reordered copy of the PUBLISH that
//! used it gets 412, after which the publisher starts over with an initial PUBLISH
//! (RFC 3903). Before anything else, a PUBLISH removes the presentity's expired
//! publications that [`Publications::handle_timeout`] has not yet removed, and
//! reports them among its changes, so the limits count live state only.
//!
//! Entity-tags are 16 random hex digits (from the caller's RNG) followed by a
//! store-wide counter, so a tag is never issued twice (step 7: unique among the
//! resource's tags, and different from any tag assigned before).
//!
//! Expiry is a deadline: [`Publications::poll_timeout`] gives the next one and
//! [`Publications::handle_timeout`] removes what expired. Each [`Change`] names a
//! presentity and package whose composed state the caller recomputes and sends to
//! watchers.

mod store;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

use crate::pidf::{DialogInfo, DocLimits, Pidf, DIALOG_INFO_CONTENT_TYPE, PIDF_CONTENT_TYPE};

use super::message::Message;

pub use store::Publications;

/// An event package a publication may be for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Package {
    /// `presence` (RFC 3856): PIDF documents.
    Presence,
    /// `dialog` (RFC 4235): dialog-info documents, the user's phone calls.
    Dialog,
}

impl Package {
    /// The Event header's package name.
    pub fn event(self) -> &'static str {
        match self {
            Self::Presence => "presence",
            Self::Dialog => "dialog",
        }
    }

    /// The media types a body of this package may have (the first is the one to
    /// send); `application/cpim-pidf+xml` is PIDF's older name.
    pub fn content_types(self) -> &'static [&'static str] {
        match self {
            Self::Presence => &[PIDF_CONTENT_TYPE, "application/cpim-pidf+xml"],
            Self::Dialog => &[DIALOG_INFO_CONTENT_TYPE],
        }
    }

    /// The package with this Event name (compared ignoring case).
    pub fn from_event(name: &str) -> Option<Self> {
        [Self::Presence, Self::Dialog]
            .into_iter()
            .find(|p| p.event().eq_ignore_ascii_case(name))
    }
}

/// What the store accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicationConfig {
    /// The packages served; any other Event gets 489.
    pub packages: Vec<Package>,
    /// Below this (and above 0), a PUBLISH gets 423 Interval Too Brief.
    pub min_expires: u32,
    /// Above this, the granted expiry is shortened to it.
    pub max_expires: u32,
    /// The expiry when a PUBLISH has no Expires (RFC 3903 §4.1 and RFC 3856: 3600).
    pub default_expires: u32,
    /// Most publications one presentity may hold, all packages together; an initial
    /// PUBLISH beyond it gets 403 (the publisher's own doing: not worth retrying).
    pub max_per_presentity: usize,
    /// Most publications the whole store holds; an initial PUBLISH beyond it gets 503
    /// with `Retry-After` (the server is full: others' publications will expire).
    pub max_total: usize,
    /// Largest body accepted, in bytes; a larger one gets 413.
    pub max_document_bytes: usize,
    /// `Retry-After` of a 503, in seconds.
    pub retry_after: u32,
    /// Bounds of the document parsers.
    pub doc_limits: DocLimits,
}

impl Default for PublicationConfig {
    /// `presence` and `dialog`; expiry default 3600 s, at least 60, at most 3600; 16
    /// publications per presentity, 100 000 in all; 16 KiB documents; 503s say retry
    /// after 60 s.
    fn default() -> Self {
        Self {
            packages: vec![Package::Presence, Package::Dialog],
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_per_presentity: 16,
            max_total: 100_000,
            max_document_bytes: 16 * 1024,
            retry_after: 60,
            doc_limits: DocLimits::default(),
        }
    }
}

impl PublicationConfig {
    /// The served package with this Event name.
    fn package(&self, event: &str) -> Option<Package> {
        Package::from_event(event).filter(|p| self.packages.contains(p))
    }

    /// The granted expiry for a requested one: `Err(min)` when too brief.
    fn negotiate(&self, requested: Option<u32>) -> Result<u32, u32> {
        match requested {
            None => Ok(self.default_expires.min(self.max_expires)),
            Some(0) => Ok(0),
            Some(secs) if secs < self.min_expires => Err(self.min_expires),
            Some(secs) => Ok(secs.min(self.max_expires)),
        }
    }
}

/// A parsed published document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishedDoc {
    /// A PIDF document (package `presence`).
    Presence(Pidf),
    /// A dialog-info document (package `dialog`).
    Dialog(DialogInfo),
}

/// One publication's state: the parsed document and the body as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The parsed document.
    pub doc: PublishedDoc,
    /// The body as received.
    pub body: Vec<u8>,
    /// Its Content-Type value, as received.
    pub content_type: String,
}

/// A presentity whose published state of one package changed: recompose it and
/// notify its watchers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Change {
    /// The presentity (as the caller named it to [`Publications::on_publish`]).
    pub presentity: String,
    /// The package whose state changed.
    pub package: Package,
}

/// The answer to one PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    /// The response to send.
    pub response: Message,
    /// What changed: the request's own change (initial, modify, remove), and any
    /// expired publications of the same presentity the request found and removed
    /// first. Empty for a refresh and for every refusal that found nothing expired.
    pub changes: Vec<Change>,
}
