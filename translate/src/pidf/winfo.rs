//! The watcher information document (RFC 3858), body of `presence.winfo` notifications
//! (RFC 3857): who watches a resource and the state of each subscription.

use super::dialog::DocState;
use super::document::{
    expect_root, read_document, required_attr, room_for, token_text, write_document, DocLimits,
};
use super::error::PidfError;
use super::WATCHERINFO_NS;
use crate::xml::Element;

/// `<watcherinfo/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherInfo {
    pub version: u64,
    pub state: DocState,
    pub lists: Vec<WatcherList>,
}

/// `<watcher-list/>`: the watchers of one resource for one event package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherList {
    /// The watched resource's URI.
    pub resource: String,
    /// The event package watched (`presence`).
    pub package: String,
    pub watchers: Vec<WatcherRecord>,
}

/// `<watcher/>`: one subscription to the resource (RFC 3858; states of RFC 3857).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherRecord {
    /// The subscription's id, unique within the list.
    pub id: String,
    pub status: WatcherStatus,
    /// What caused the last change of status.
    pub event: WatcherEvent,
    /// The watcher's URI (for Herald's XMPP watchers, their `xmpp:` or `sip:` form).
    pub uri: String,
    pub display_name: Option<String>,
    pub lang: Option<String>,
    /// Seconds until the subscription expires.
    pub expiration: Option<u64>,
    /// Seconds the subscription has been in place.
    pub duration_subscribed: Option<u64>,
}

/// The subscription state of a watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatcherStatus {
    Pending,
    Active,
    Waiting,
    Terminated,
}

/// The event that moved a watcher's subscription to its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatcherEvent {
    Subscribe,
    Approved,
    Deactivated,
    Probation,
    Rejected,
    Timeout,
    Giveup,
    Noresource,
}

impl WatcherStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Waiting => "waiting",
            Self::Terminated => "terminated",
        }
    }

    fn parse(s: &str) -> Result<Self, PidfError> {
        Ok(match s {
            "pending" => Self::Pending,
            "active" => Self::Active,
            "waiting" => Self::Waiting,
            "terminated" => Self::Terminated,
            other => return Err(PidfError::invalid("watcher status", other)),
        })
    }
}

impl WatcherEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subscribe => "subscribe",
            Self::Approved => "approved",
            Self::Deactivated => "deactivated",
            Self::Probation => "probation",
            Self::Rejected => "rejected",
            Self::Timeout => "timeout",
            Self::Giveup => "giveup",
            Self::Noresource => "noresource",
        }
    }

    fn parse(s: &str) -> Result<Self, PidfError> {
        Ok(match s {
            "subscribe" => Self::Subscribe,
            "approved" => Self::Approved,
            "deactivated" => Self::Deactivated,
            "probation" => Self::Probation,
            "rejected" => Self::Rejected,
            "timeout" => Self::Timeout,
            "giveup" => Self::Giveup,
            "noresource" => Self::Noresource,
            other => return Err(PidfError::invalid("watcher event", other)),
        })
    }
}

impl WatcherInfo {
    pub fn new(version: u64, state: DocState) -> Self {
        Self {
            version,
            state,
            lists: Vec::new(),
        }
    }

    /// Parses an `application/watcherinfo+xml` document. Elements of other namespaces
    /// are skipped (the schema allows them; Herald has no use for them).
    pub fn parse(xml: &[u8], limits: &DocLimits) -> Result<Self, PidfError> {
        let root = read_document(xml, limits)?;
        expect_root(&root, "watcherinfo", WATCHERINFO_NS)?;
        let version = required_attr(&root, "version", "watcherinfo version")?;
        let version = version
            .trim()
            .parse()
            .map_err(|_| PidfError::invalid("watcherinfo version", version.clone()))?;
        let state = DocState::parse(&required_attr(&root, "state", "watcherinfo state")?)?;
        let mut info = Self::new(version, state);
        for child in root
            .elements()
            .filter(|c| c.is("watcher-list", WATCHERINFO_NS))
        {
            room_for(info.lists.len(), limits.max_items, "watcher lists")?;
            info.lists.push(WatcherList::from_element(child, limits)?);
        }
        Ok(info)
    }

    pub fn to_element(&self) -> Element {
        let mut root = Element::new("watcherinfo", WATCHERINFO_NS)
            .with_attr("version", self.version.to_string())
            .with_attr("state", self.state.as_str());
        for list in &self.lists {
            root.push_child(list.to_element());
        }
        root
    }

    pub fn to_xml(&self) -> Result<String, PidfError> {
        write_document(&self.to_element())
    }
}

impl WatcherList {
    pub fn new(resource: impl Into<String>, package: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            package: package.into(),
            watchers: Vec::new(),
        }
    }

    fn from_element(el: &Element, limits: &DocLimits) -> Result<Self, PidfError> {
        let mut list = Self::new(
            required_attr(el, "resource", "watcher-list resource")?,
            required_attr(el, "package", "watcher-list package")?,
        );
        for child in el.elements().filter(|c| c.is("watcher", WATCHERINFO_NS)) {
            room_for(list.watchers.len(), limits.max_items, "watchers")?;
            list.watchers.push(WatcherRecord::from_element(child)?);
        }
        Ok(list)
    }

    fn to_element(&self) -> Element {
        let mut el = Element::new("watcher-list", WATCHERINFO_NS)
            .with_attr("resource", self.resource.clone())
            .with_attr("package", self.package.clone());
        for watcher in &self.watchers {
            el.push_child(watcher.to_element());
        }
        el
    }
}

impl WatcherRecord {
    pub fn new(
        id: impl Into<String>,
        uri: impl Into<String>,
        status: WatcherStatus,
        event: WatcherEvent,
    ) -> Self {
        Self {
            id: id.into(),
            status,
            event,
            uri: uri.into(),
            display_name: None,
            lang: None,
            expiration: None,
            duration_subscribed: None,
        }
    }

    fn from_element(el: &Element) -> Result<Self, PidfError> {
        let seconds = |k: &str, what: &'static str| {
            el.attr(k)
                .map(|v| v.trim().parse().map_err(|_| PidfError::invalid(what, v)))
                .transpose()
        };
        let mut w = Self::new(
            required_attr(el, "id", "watcher id")?,
            token_text(el),
            WatcherStatus::parse(&required_attr(el, "status", "watcher status")?)?,
            WatcherEvent::parse(&required_attr(el, "event", "watcher event")?)?,
        );
        w.display_name = el.attr("display-name").map(str::to_owned);
        w.lang = el.attr("xml:lang").map(str::to_owned);
        w.expiration = seconds("expiration", "watcher expiration")?;
        w.duration_subscribed = seconds("duration-subscribed", "watcher duration-subscribed")?;
        Ok(w)
    }

    fn to_element(&self) -> Element {
        let mut el = Element::new("watcher", WATCHERINFO_NS)
            .with_attr("id", self.id.clone())
            .with_attr("status", self.status.as_str())
            .with_attr("event", self.event.as_str());
        if let Some(name) = &self.display_name {
            el.set_attr("display-name", name.clone());
        }
        if let Some(lang) = &self.lang {
            el.set_attr("xml:lang", lang.clone());
        }
        if let Some(s) = self.expiration {
            el.set_attr("expiration", s.to_string());
        }
        if let Some(s) = self.duration_subscribed {
            el.set_attr("duration-subscribed", s.to_string());
        }
        el.with_text(self.uri.clone())
    }
}
