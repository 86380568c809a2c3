//! The subscriber side of one SUBSCRIBE (RFC 6665 §4.1), forking-safe: every NOTIFY
//! with a new From tag creates a dialog of its own (RFC 6665 §4.1.2.4, §5.4.9), up to
//! a bound.
//!
//! ```text
//! NOTIFY (our Call-ID, To tag = our From tag, our Event)
//!   new From tag, state active|pending ──> new dialog (200)
//!   new From tag, state terminated ──> 200, no dialog
//!   known From tag, CSeq higher ──> state and expiry updated; terminated: dialog removed
//!   known From tag, CSeq not higher (reordered or old) ──> 500, ignored
//!   another Call-ID or To tag ──> 481; another Event ──> 489;
//!   no Subscription-State ──> 400
//! dialog not refreshed before its expires ──> removed by handle_timeout
//! 2xx to the SUBSCRIBE and no NOTIFY within 64*T1 ──> NoNotify (RFC 6665 §4.1.2.4)
//! refresh(remote tag, expires) ──> an in-dialog SUBSCRIBE (Expires: 0 unsubscribes)
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::super::error::SipError;
use super::super::essentials::{response_for, RequestEssentials};
use super::super::header::{Contact, HeaderName};
use super::super::message::Message;
use super::super::method::Method;
use super::super::uri::Param;
use super::super::uri::Uri;
use super::{after, Reason, SubState};

/// One dialog a NOTIFY created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteDialog {
    /// The notifier's tag.
    pub remote_tag: String,
    /// The state its last NOTIFY gave.
    pub state: SubState,
    /// When the subscription expires, per its last NOTIFY.
    pub expires_at: Option<Instant>,
    /// The notifier's Contact: where refreshes go.
    pub target: Option<Uri>,
    /// The NOTIFY's Record-Route values, in order (RFC 3261 §12.1.1).
    pub route_set: Vec<String>,
    remote_cseq: u32,
}

/// What a subscriber's deadline brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriberTimeout {
    /// The dialog with this remote tag expired without a refresh; it is removed.
    DialogExpired(String),
    /// The SUBSCRIBE was accepted but no NOTIFY came within 64*T1: the subscription
    /// failed (RFC 6665 §4.1.2.4).
    NoNotify,
}

/// What a received NOTIFY did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyOutcome {
    /// The response to send.
    pub response: Message,
    /// The dialog (remote tag) the NOTIFY was for, when it was accepted.
    pub dialog: Option<String>,
    /// Whether it created that dialog.
    pub created: bool,
    /// The state it announced, when accepted.
    pub state: Option<SubState>,
}

/// What the final response to our SUBSCRIBE says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscribeAnswer {
    /// A 1xx: wait.
    Provisional,
    /// 2xx: accepted for `expires` seconds (NOTIFYs create the dialogs).
    Accepted {
        /// The granted expiry.
        expires: Option<u32>,
    },
    /// 423: subscribe again with at least `min_expires`.
    IntervalTooBrief {
        /// The notifier's Min-Expires.
        min_expires: Option<u32>,
    },
    /// Any other final response.
    Refused {
        /// Its status.
        code: u16,
    },
}

/// The dialogs of one SUBSCRIBE we sent.
#[derive(Debug, Clone)]
pub struct Subscriber {
    call_id: String,
    local_tag: String,
    package: String,
    event_id: Option<String>,
    max_dialogs: usize,
    dialogs: BTreeMap<String, RemoteDialog>,
    /// The SUBSCRIBE we sent: refreshes copy its From, To, Contact and Via.
    subscribe: Message,
    local_cseq: u32,
    /// Set by a 2xx while no NOTIFY has come.
    notify_deadline: Option<Instant>,
}

impl Subscriber {
    /// For a SUBSCRIBE we are sending (its From carries our tag, its Event the
    /// package), accepting at most `max_dialogs` forks.
    pub fn new(subscribe: &Message, max_dialogs: usize) -> Result<Self, SipError> {
        let event = subscribe
            .event()?
            .ok_or_else(|| SipError::bad("Missing Event"))?;
        Ok(Self {
            call_id: subscribe.call_id()?.to_owned(),
            local_tag: subscribe
                .from()?
                .tag()
                .ok_or_else(|| SipError::bad("Missing From tag"))?
                .to_owned(),
            package: event.package.clone(),
            event_id: event.id().map(str::to_owned),
            max_dialogs,
            dialogs: BTreeMap::new(),
            local_cseq: subscribe.cseq()?.seq,
            subscribe: subscribe.clone(),
            notify_deadline: None,
        })
    }

    /// A NOTIFY arrived (after the transaction layer passed it up).
    pub fn on_notify(&mut self, notify: &Message, now: Instant) -> NotifyOutcome {
        let ess = RequestEssentials::from_message(notify);
        let refuse = |code, reason: &str| NotifyOutcome {
            response: response_for(&ess, code, reason, ""),
            dialog: None,
            created: false,
            state: None,
        };
        let ours = notify.call_id().is_ok_and(|c| c == self.call_id)
            && notify
                .to()
                .is_ok_and(|t| t.tag() == Some(self.local_tag.as_str()));
        if !ours {
            return refuse(481, "Subscription Does Not Exist");
        }
        let same_event = notify.event().ok().flatten().is_some_and(|e| {
            e.package.eq_ignore_ascii_case(&self.package) && e.id() == self.event_id.as_deref()
        });
        if !same_event {
            return refuse(489, "Bad Event");
        }
        let (Ok(Some(sub_state)), Ok(cseq), Ok(from)) =
            (notify.subscription_state(), notify.cseq(), notify.from())
        else {
            return refuse(400, "Bad NOTIFY");
        };
        let Some(remote_tag) = from.tag().map(str::to_owned) else {
            return refuse(400, "Missing From tag");
        };
        let state = match sub_state.state.to_ascii_lowercase().as_str() {
            "active" => SubState::Active,
            "terminated" => {
                let retry = super::super::uri::find_param(&sub_state.params, "retry-after")
                    .flatten()
                    .and_then(|v| v.parse().ok());
                SubState::Terminated(Reason::parse(sub_state.reason().unwrap_or(""), retry))
            }
            // `pending`, and extension states, which promise nothing (RFC 6665 §4.1.3).
            _ => SubState::Pending,
        };
        let target = match notify.contacts() {
            Ok(Some(Contact::Addresses(list))) => list.first().map(|a| a.uri.clone()),
            _ => None,
        };
        let created = !self.dialogs.contains_key(&remote_tag);
        if created {
            if self.dialogs.len() >= self.max_dialogs {
                return refuse(481, "Too Many Dialogs");
            }
        } else if self.dialogs[&remote_tag].remote_cseq >= cseq.seq {
            // Reordered behind a newer NOTIFY (RFC 3261 §12.2.2).
            return refuse(500, "CSeq Out Of Order");
        }
        let response = response_for(&ess, 200, "OK", "");
        if matches!(state, SubState::Terminated(_)) {
            self.dialogs.remove(&remote_tag);
            self.notify_deadline = None;
        } else {
            let dialog = self
                .dialogs
                .entry(remote_tag.clone())
                .or_insert_with(|| RemoteDialog {
                    remote_tag: remote_tag.clone(),
                    state: SubState::Pending,
                    expires_at: None,
                    target: None,
                    route_set: notify
                        .header_values(&HeaderName::RecordRoute)
                        .map(str::to_owned)
                        .collect(),
                    remote_cseq: 0,
                });
            self.notify_deadline = None;
            dialog.remote_cseq = cseq.seq;
            dialog.state = state.clone();
            if let Some(secs) = sub_state.expires() {
                dialog.expires_at = Some(after(now, secs));
            }
            if target.is_some() {
                dialog.target = target;
            }
        }
        NotifyOutcome {
            response,
            dialog: Some(remote_tag),
            created: created && !matches!(state, SubState::Terminated(_)),
            state: Some(state),
        }
    }

    /// The final (or provisional) response to our SUBSCRIBE, at `now`: after a 2xx,
    /// a NOTIFY must come within `t1_x64` (64*T1).
    pub fn on_subscribe_response(
        &mut self,
        response: &Message,
        now: Instant,
        t1_x64: Duration,
    ) -> SubscribeAnswer {
        let code = response.status_line().map_or(0, |s| s.code);
        match code {
            100..=199 => SubscribeAnswer::Provisional,
            200..=299 => {
                if self.dialogs.is_empty() {
                    self.notify_deadline = Some(now + t1_x64);
                }
                SubscribeAnswer::Accepted {
                    expires: response.expires().ok().flatten(),
                }
            }
            423 => SubscribeAnswer::IntervalTooBrief {
                min_expires: response.min_expires().ok().flatten(),
            },
            code => SubscribeAnswer::Refused { code },
        }
    }

    /// The live dialogs, by remote tag.
    pub fn dialogs(&self) -> impl Iterator<Item = &RemoteDialog> {
        self.dialogs.values()
    }

    /// The dialog with the notifier tagged `remote_tag`.
    pub fn dialog(&self, remote_tag: &str) -> Option<&RemoteDialog> {
        self.dialogs.get(remote_tag)
    }

    /// The Call-ID shared by every dialog.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The earliest deadline: a dialog's expiry (refresh before it) or the wait for
    /// the first NOTIFY.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.dialogs
            .values()
            .filter_map(|d| d.expires_at)
            .chain(self.notify_deadline)
            .min()
    }

    /// Removes the dialogs whose subscriptions expired by `now`, and reports a
    /// NOTIFY that never came.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<SubscriberTimeout> {
        let mut out: Vec<SubscriberTimeout> = Vec::new();
        if self.notify_deadline.is_some_and(|at| at <= now) {
            self.notify_deadline = None;
            out.push(SubscriberTimeout::NoNotify);
        }
        let gone: Vec<String> = self
            .dialogs
            .values()
            .filter(|d| d.expires_at.is_some_and(|at| at <= now))
            .map(|d| d.remote_tag.clone())
            .collect();
        for tag in gone {
            self.dialogs.remove(&tag);
            out.push(SubscriberTimeout::DialogExpired(tag));
        }
        out
    }

    /// A SUBSCRIBE inside the dialog with `remote_tag` (RFC 6665 §4.1.2.2): a refresh
    /// for `expires` seconds, or an unsubscribe with 0. `branch` is a fresh RFC 3261
    /// branch for its Via. `None` when there is no such dialog.
    pub fn refresh(&mut self, remote_tag: &str, expires: u32, branch: &str) -> Option<Message> {
        let dialog = self.dialogs.get(remote_tag)?;
        let original = &self.subscribe;
        let line = original.request_line()?;
        let target = dialog.target.clone().unwrap_or_else(|| line.uri.clone());
        let mut to = original.to().ok()?;
        to.params.retain(|p| !p.name.eq_ignore_ascii_case("tag"));
        to.params.push(Param::new("tag", Some(remote_tag)));
        let mut via = original.top_via().ok()?;
        via.params
            .retain(|p| !p.name.eq_ignore_ascii_case("branch"));
        via.params.push(Param::new("branch", Some(branch)));
        self.local_cseq += 1;
        let mut m = Message::request(Method::Subscribe, target);
        m.push_header(HeaderName::Via, via.to_string());
        m.push_header(HeaderName::MaxForwards, "70");
        for route in &dialog.route_set {
            m.push_header(HeaderName::Route, route.clone());
        }
        m.push_header(
            HeaderName::From,
            original.header(&HeaderName::From)?.to_owned(),
        );
        m.push_header(HeaderName::To, to.to_string());
        m.push_header(HeaderName::CallId, self.call_id.clone());
        m.push_header(HeaderName::CSeq, format!("{} SUBSCRIBE", self.local_cseq));
        m.push_header(
            HeaderName::Event,
            original.header(&HeaderName::Event)?.to_owned(),
        );
        if let Some(contact) = original.header(&HeaderName::Contact) {
            m.push_header(HeaderName::Contact, contact.to_owned());
        }
        m.push_header(HeaderName::Expires, expires.to_string());
        Some(m)
    }
}
