//! A SIP body by its `Content-Type`: which presence document it is.

use super::dialog::DialogInfo;
use super::document::DocLimits;
use super::error::PidfError;
use super::presence::Pidf;
use super::winfo::WatcherInfo;

/// `Content-Type` of PIDF (RFC 3863 §4.1; `application/cpim-pidf+xml` is its older
/// name and is read the same).
pub const PIDF_CONTENT_TYPE: &str = "application/pidf+xml";
/// `Content-Type` of dialog-info (RFC 4235).
pub const DIALOG_INFO_CONTENT_TYPE: &str = "application/dialog-info+xml";
/// `Content-Type` of watcherinfo (RFC 3858).
pub const WATCHERINFO_CONTENT_TYPE: &str = "application/watcherinfo+xml";

/// A presence-related SIP body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceBody {
    Pidf(Pidf),
    DialogInfo(DialogInfo),
    WatcherInfo(WatcherInfo),
}

impl PresenceBody {
    /// Parses `body` as the document its `Content-Type` names (parameters such as
    /// `charset` are ignored; the documents are UTF-8).
    pub fn parse(content_type: &str, body: &[u8], limits: &DocLimits) -> Result<Self, PidfError> {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            PIDF_CONTENT_TYPE | "application/cpim-pidf+xml" => {
                Ok(Self::Pidf(Pidf::parse(body, limits)?))
            }
            DIALOG_INFO_CONTENT_TYPE => Ok(Self::DialogInfo(DialogInfo::parse(body, limits)?)),
            WATCHERINFO_CONTENT_TYPE => Ok(Self::WatcherInfo(WatcherInfo::parse(body, limits)?)),
            _ => Err(PidfError::UnsupportedContentType(content_type.to_owned())),
        }
    }

    /// The `Content-Type` to send this body with.
    pub fn content_type(&self) -> &'static str {
        match self {
            Self::Pidf(_) => PIDF_CONTENT_TYPE,
            Self::DialogInfo(_) => DIALOG_INFO_CONTENT_TYPE,
            Self::WatcherInfo(_) => WATCHERINFO_CONTENT_TYPE,
        }
    }

    /// The document text.
    pub fn to_xml(&self) -> Result<String, PidfError> {
        match self {
            Self::Pidf(d) => d.to_xml(),
            Self::DialogInfo(d) => d.to_xml(),
            Self::WatcherInfo(d) => d.to_xml(),
        }
    }
}
