//! The dialog event package document (RFC 4235): the calls of a user, read to tell
//! whether they are on the phone.

use super::document::{
    expect_root, read_document, required_attr, room_for, set_once, text_element, token_text,
    write_document, DocLimits,
};
use super::error::PidfError;
use super::DIALOG_INFO_NS;
use crate::xml::Element;

/// `<dialog-info/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogInfo {
    /// Incremented by the notifier with each document (RFC 4235).
    pub version: u64,
    pub state: DocState,
    /// The user whose dialogs these are.
    pub entity: String,
    pub dialogs: Vec<Dialog>,
    /// Other children of the root, as read.
    pub extensions: Vec<Element>,
}

/// Whether a document is the whole state or a change to it (`state`, RFC 4235;
/// the watcherinfo document uses the same values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocState {
    Full,
    Partial,
}

impl DocState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Partial => "partial",
        }
    }

    pub(super) fn parse(s: &str) -> Result<Self, PidfError> {
        match s {
            "full" => Ok(Self::Full),
            "partial" => Ok(Self::Partial),
            other => Err(PidfError::invalid("document state", other)),
        }
    }
}

/// The state of one dialog (RFC 4235).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DialogState {
    Trying,
    Proceeding,
    Early,
    Confirmed,
    Terminated,
}

impl DialogState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trying => "trying",
            Self::Proceeding => "proceeding",
            Self::Early => "early",
            Self::Confirmed => "confirmed",
            Self::Terminated => "terminated",
        }
    }

    fn parse(s: &str) -> Result<Self, PidfError> {
        Ok(match s {
            "trying" => Self::Trying,
            "proceeding" => Self::Proceeding,
            "early" => Self::Early,
            "confirmed" => Self::Confirmed,
            "terminated" => Self::Terminated,
            other => return Err(PidfError::invalid("dialog state", other)),
        })
    }
}

/// What [`DialogInfo::apply`] did with a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Applied {
    /// The view now includes the notification.
    Updated,
    /// An old or repeated version: nothing changed.
    Ignored,
    /// A partial notification after a missed version: the view cannot be trusted;
    /// refresh the subscription to get a full document (RFC 4235).
    Gap,
}

/// Which side created the dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DialogDirection {
    Initiator,
    Recipient,
}

impl DialogDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initiator => "initiator",
            Self::Recipient => "recipient",
        }
    }

    fn parse(s: &str) -> Result<Self, PidfError> {
        match s {
            "initiator" => Ok(Self::Initiator),
            "recipient" => Ok(Self::Recipient),
            other => Err(PidfError::invalid("dialog direction", other)),
        }
    }
}

/// `<dialog/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    pub id: String,
    pub call_id: Option<String>,
    pub local_tag: Option<String>,
    pub remote_tag: Option<String>,
    pub direction: Option<DialogDirection>,
    pub state: DialogState,
    /// The `event` attribute of `<state/>` (`rejected`, `remote-bye`, ...).
    pub state_event: Option<String>,
    /// The `code` attribute of `<state/>`: the SIP response that caused the change.
    pub state_code: Option<u16>,
    /// `<duration/>`, seconds.
    pub duration: Option<u64>,
    pub local: Option<Participant>,
    pub remote: Option<Participant>,
    /// Other children (`replaces`, `referred-by`, `route-set`, ...), as read.
    pub extensions: Vec<Element>,
}

/// `<local/>` or `<remote/>` of a dialog (RFC 4235).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Participant {
    /// `<identity/>`: the participant's URI.
    pub identity: Option<String>,
    /// The `display` attribute of `<identity/>`.
    pub display: Option<String>,
    /// The `uri` attribute of `<target/>`.
    pub target: Option<String>,
    /// Other children (`session-description`, `cseq`, target parameters...), as read.
    pub extensions: Vec<Element>,
}

impl DialogInfo {
    pub fn new(entity: impl Into<String>, version: u64, state: DocState) -> Self {
        Self {
            version,
            state,
            entity: entity.into(),
            dialogs: Vec::new(),
            extensions: Vec::new(),
        }
    }

    /// Parses an `application/dialog-info+xml` document.
    pub fn parse(xml: &[u8], limits: &DocLimits) -> Result<Self, PidfError> {
        let root = read_document(xml, limits)?;
        expect_root(&root, "dialog-info", DIALOG_INFO_NS)?;
        let version = required_attr(&root, "version", "dialog-info version")?;
        let mut info = Self::new(
            required_attr(&root, "entity", "dialog-info entity")?,
            parse_u64(&version, "dialog-info version")?,
            DocState::parse(&required_attr(&root, "state", "dialog-info state")?)?,
        );
        for child in root.elements() {
            if child.is("dialog", DIALOG_INFO_NS) {
                room_for(info.dialogs.len(), limits.max_items, "dialogs")?;
                info.dialogs.push(Dialog::from_element(child, limits)?);
            } else {
                room_for(info.extensions.len(), limits.max_items, "extensions")?;
                info.extensions.push(child.clone());
            }
        }
        Ok(info)
    }

    pub fn to_element(&self) -> Element {
        let mut root = Element::new("dialog-info", DIALOG_INFO_NS)
            .with_attr("version", self.version.to_string())
            .with_attr("state", self.state.as_str())
            .with_attr("entity", self.entity.clone());
        for dialog in &self.dialogs {
            root.push_child(dialog.to_element());
        }
        for ext in &self.extensions {
            root.push_child(ext.clone());
        }
        root
    }

    pub fn to_xml(&self) -> Result<String, PidfError> {
        write_document(&self.to_element())
    }

    /// Brings this view (built from a full document) up to date with the next
    /// notification of the same subscription (RFC 4235): a version not above
    /// the held one is ignored; a full document replaces the view; a partial one,
    /// exactly one version on, replaces its dialogs by id and drops the terminated
    /// ones; a partial one after a gap is [`Applied::Gap`]. A view belongs to one
    /// subscription and starts as its first (full) document; versions restart with a
    /// new subscription, and so does the view.
    pub fn apply(&mut self, update: Self) -> Applied {
        if update.version <= self.version {
            return Applied::Ignored;
        }
        match update.state {
            DocState::Full => {
                *self = update;
                self.dialogs.retain(|d| d.state != DialogState::Terminated);
            }
            DocState::Partial if update.version == self.version + 1 => {
                self.version = update.version;
                for dialog in update.dialogs {
                    self.dialogs.retain(|d| d.id != dialog.id);
                    if dialog.state != DialogState::Terminated {
                        self.dialogs.push(dialog);
                    }
                }
            }
            DocState::Partial => return Applied::Gap,
        }
        Applied::Updated
    }

    /// Whether the user is on a call: a dialog is `confirmed` (talking) or `early`
    /// (ringing or being answered).
    pub fn is_on_call(&self) -> bool {
        self.dialogs
            .iter()
            .any(|d| matches!(d.state, DialogState::Confirmed | DialogState::Early))
    }

    /// Whether the user is talking: a dialog is `confirmed`.
    pub fn is_talking(&self) -> bool {
        self.dialogs
            .iter()
            .any(|d| d.state == DialogState::Confirmed)
    }
}

impl Dialog {
    pub fn new(id: impl Into<String>, state: DialogState) -> Self {
        Self {
            id: id.into(),
            call_id: None,
            local_tag: None,
            remote_tag: None,
            direction: None,
            state,
            state_event: None,
            state_code: None,
            duration: None,
            local: None,
            remote: None,
            extensions: Vec::new(),
        }
    }

    fn from_element(el: &Element, limits: &DocLimits) -> Result<Self, PidfError> {
        let attr = |k: &str| el.attr(k).map(str::to_owned);
        let mut state = None;
        let mut dialog = Self::new(
            required_attr(el, "id", "dialog id")?,
            DialogState::Terminated,
        );
        dialog.call_id = attr("call-id");
        dialog.local_tag = attr("local-tag");
        dialog.remote_tag = attr("remote-tag");
        dialog.direction = el
            .attr("direction")
            .map(DialogDirection::parse)
            .transpose()?;
        for child in el.elements() {
            if child.is("state", DIALOG_INFO_NS) {
                set_once(&mut state, DialogState::parse(&token_text(child))?, "state")?;
                dialog.state_event = child.attr("event").map(str::to_owned);
                dialog.state_code = child
                    .attr("code")
                    .map(|c| {
                        c.trim()
                            .parse::<u16>()
                            .map_err(|_| PidfError::invalid("dialog state code", c))
                    })
                    .transpose()?;
            } else if child.is("duration", DIALOG_INFO_NS) {
                let secs = parse_u64(&token_text(child), "dialog duration")?;
                set_once(&mut dialog.duration, secs, "duration")?;
            } else if child.is("local", DIALOG_INFO_NS) {
                let local = Participant::from_element(child, limits)?;
                set_once(&mut dialog.local, local, "local")?;
            } else if child.is("remote", DIALOG_INFO_NS) {
                let remote = Participant::from_element(child, limits)?;
                set_once(&mut dialog.remote, remote, "remote")?;
            } else {
                room_for(dialog.extensions.len(), limits.max_items, "extensions")?;
                dialog.extensions.push(child.clone());
            }
        }
        dialog.state = state.ok_or(PidfError::Missing("dialog state"))?;
        Ok(dialog)
    }

    fn to_element(&self) -> Element {
        let mut el = Element::new("dialog", DIALOG_INFO_NS).with_attr("id", self.id.clone());
        for (k, v) in [
            ("call-id", &self.call_id),
            ("local-tag", &self.local_tag),
            ("remote-tag", &self.remote_tag),
        ] {
            if let Some(v) = v {
                el.set_attr(k, v.clone());
            }
        }
        if let Some(direction) = self.direction {
            el.set_attr("direction", direction.as_str());
        }
        let mut state = text_element("state", DIALOG_INFO_NS, self.state.as_str());
        if let Some(event) = &self.state_event {
            state.set_attr("event", event.clone());
        }
        if let Some(code) = self.state_code {
            state.set_attr("code", code.to_string());
        }
        el.push_child(state);
        if let Some(duration) = self.duration {
            el.push_child(text_element(
                "duration",
                DIALOG_INFO_NS,
                &duration.to_string(),
            ));
        }
        for ext in &self.extensions {
            el.push_child(ext.clone());
        }
        if let Some(local) = &self.local {
            el.push_child(local.to_element("local"));
        }
        if let Some(remote) = &self.remote {
            el.push_child(remote.to_element("remote"));
        }
        el
    }
}

impl Participant {
    fn from_element(el: &Element, limits: &DocLimits) -> Result<Self, PidfError> {
        let mut p = Self::default();
        let mut seen_identity = false;
        let mut seen_target = false;
        for child in el.elements() {
            if child.is("identity", DIALOG_INFO_NS) && !seen_identity {
                seen_identity = true;
                p.identity = Some(token_text(child));
                p.display = child.attr("display").map(str::to_owned);
            } else if child.is("target", DIALOG_INFO_NS)
                && !seen_target
                && child.children.is_empty()
            {
                seen_target = true;
                p.target = Some(required_attr(child, "uri", "target uri")?);
            } else {
                room_for(p.extensions.len(), limits.max_items, "extensions")?;
                p.extensions.push(child.clone());
            }
        }
        Ok(p)
    }

    fn to_element(&self, name: &str) -> Element {
        let mut el = Element::new(name, DIALOG_INFO_NS);
        if let Some(identity) = &self.identity {
            let mut id = text_element("identity", DIALOG_INFO_NS, identity);
            if let Some(display) = &self.display {
                id.set_attr("display", display.clone());
            }
            el.push_child(id);
        }
        if let Some(target) = &self.target {
            el.push_child(Element::new("target", DIALOG_INFO_NS).with_attr("uri", target.clone()));
        }
        for ext in &self.extensions {
            el.push_child(ext.clone());
        }
        el
    }
}

fn parse_u64(s: &str, what: &'static str) -> Result<u64, PidfError> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PidfError::invalid(what, s));
    }
    s.parse().map_err(|_| PidfError::invalid(what, s))
}
