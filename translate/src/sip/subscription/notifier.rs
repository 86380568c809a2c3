//! The notifier side of one subscription dialog (RFC 6665 §4.2).
//!
//! ```text
//! SUBSCRIBE (no To tag) ──accept──> 200 (To tag, Expires, Contact) + Pending|Active
//!   Event not ours: 489 + Allow-Events; Expires < min: 423 + Min-Expires;
//!   no Contact: 400; Authorization::Rejected: 403
//! Pending|Active ──SUBSCRIBE in dialog──> 200 (refresh) | 423 | Expires 0: Terminated(timeout)
//! Pending|Active ──authorize / terminate──> Active | Pending | Terminated(reason)
//! Pending|Active ──expiry deadline──> NOTIFY terminated;reason=timeout
//! every change ──notify(body)──> NOTIFY (Subscription-State, next CSeq); after the
//!   NOTIFY that says terminated, the subscription is over.
//! NOTIFY answered 481 (or 408, its transaction timed out) ──> over, no NOTIFY
//! ```
//!
//! After every accepted SUBSCRIBE (initial or refresh) RFC 6665 §4.2.1.2 wants a
//! NOTIFY at once: the caller calls [`Subscription::notify`] with the current state.

use std::time::Instant;

use rand::RngCore;

use super::super::essentials::{response_for, RequestEssentials};
use super::super::header::{Contact, HeaderName, NameAddr};
use super::super::message::Message;
use super::super::method::Method;
use super::super::transaction::{new_branch, new_tag, TransactionError, Transport};
use super::super::uri::{Param, Uri};
use super::{after, secs_until, Authorization, Body, DialogId, Reason, SubState};

/// What one event package's notifier accepts, and how it writes its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifierConfig {
    /// The event package (`presence`).
    pub event: String,
    /// Below this, a SUBSCRIBE gets 423 Interval Too Brief (RFC 6665 §4.2.1.1).
    pub min_expires: u32,
    /// Above this, the granted expiry is shortened to it.
    pub max_expires: u32,
    /// The package's default when a SUBSCRIBE has no Expires (presence: 3600,
    /// RFC 3856 §6.4).
    pub default_expires: u32,
    /// Our Contact value, in 200s and NOTIFYs (`<sip:herald.example;transport=tcp>`).
    pub contact: String,
    /// The transport written in our Via.
    pub transport: Transport,
    /// The sent-by written in our Via (`herald.example:5060`).
    pub sent_by: String,
}

impl NotifierConfig {
    /// The presence package (RFC 3856): default 3600 s, at least 60, at most 3600.
    pub fn presence(
        contact: impl Into<String>,
        transport: Transport,
        sent_by: impl Into<String>,
    ) -> Self {
        Self {
            event: "presence".into(),
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            contact: contact.into(),
            transport,
            sent_by: sent_by.into(),
        }
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

/// One subscription dialog, notifier side.
#[derive(Debug, Clone)]
pub struct Subscription {
    config: NotifierConfig,
    id: DialogId,
    /// Our address (the SUBSCRIBE's To, with our tag): the From of NOTIFYs.
    local: NameAddr,
    /// The subscriber (the SUBSCRIBE's From): the To of NOTIFYs.
    remote: NameAddr,
    /// The subscriber's Contact: the Request-URI of NOTIFYs.
    target: Uri,
    /// Record-Route values, in order (loose routing; RFC 3261 §12.1.1).
    route_set: Vec<String>,
    /// The Event value as the subscriber wrote it (package and `id`).
    event: String,
    event_id: Option<String>,
    local_cseq: u32,
    remote_cseq: u32,
    state: SubState,
    expires_at: Instant,
    /// The NOTIFY that says terminated was made, or the subscriber is gone.
    over: bool,
}

fn refusal(ess: &RequestEssentials, code: u16, reason: &str, tag: &str) -> Message {
    response_for(ess, code, reason, tag)
}

impl Subscription {
    /// A SUBSCRIBE outside any dialog. Returns the response to send and, when it is a
    /// 200, the new subscription; the caller then sends its first NOTIFY.
    pub fn accept(
        request: &Message,
        config: &NotifierConfig,
        auth: Authorization,
        now: Instant,
        rng: &mut (impl RngCore + ?Sized),
    ) -> (Message, Option<Self>) {
        let ess = RequestEssentials::from_message(request);
        let tag = new_tag(rng);
        let is_subscribe = request
            .request_line()
            .is_some_and(|l| l.method == Method::Subscribe);
        let (Ok(cseq), Ok(from), Ok(to), Ok(call_id), true) = (
            request.cseq(),
            request.from(),
            request.to(),
            request.call_id(),
            is_subscribe,
        ) else {
            return (refusal(&ess, 400, "Bad SUBSCRIBE", &tag), None);
        };
        if to.tag().is_some() {
            return (
                refusal(&ess, 481, "Subscription Does Not Exist", &tag),
                None,
            );
        }
        let Some(from_tag) = from.tag().map(str::to_owned) else {
            return (refusal(&ess, 400, "Missing From tag", &tag), None);
        };
        let event = match request.event() {
            Ok(Some(e)) if e.package.eq_ignore_ascii_case(&config.event) => e,
            _ => return (bad_event(&ess, config, &tag), None),
        };
        let target = match request.contacts() {
            Ok(Some(Contact::Addresses(list))) if !list.is_empty() => list[0].uri.clone(),
            _ => return (refusal(&ess, 400, "Missing Contact", &tag), None),
        };
        let granted = match request.expires().map(|e| config.negotiate(e)) {
            Ok(Ok(granted)) => granted,
            Ok(Err(min)) => return (too_brief(&ess, min, &tag), None),
            Err(_) => return (refusal(&ess, 400, "Malformed Expires", &tag), None),
        };
        let state = match auth {
            Authorization::Rejected => return (refusal(&ess, 403, "Forbidden", &tag), None),
            _ if granted == 0 => SubState::Terminated(Reason::Timeout),
            Authorization::Pending => SubState::Pending,
            Authorization::Active => SubState::Active,
        };
        let mut local = to;
        local.params.push(Param::new("tag", Some(&tag)));
        let sub = Self {
            config: config.clone(),
            id: DialogId {
                call_id: call_id.to_owned(),
                local_tag: tag.clone(),
                remote_tag: from_tag,
            },
            local,
            remote: from,
            target,
            route_set: request
                .header_values(&HeaderName::RecordRoute)
                .map(str::to_owned)
                .collect(),
            event: request
                .header(&HeaderName::Event)
                .unwrap_or_default()
                .to_owned(),
            event_id: event.id().map(str::to_owned),
            local_cseq: 0,
            remote_cseq: cseq.seq,
            state,
            expires_at: after(now, granted),
            over: false,
        };
        (sub.ok(&ess, granted), Some(sub))
    }

    /// A SUBSCRIBE inside this dialog: a refresh, or an unsubscribe (Expires: 0). The
    /// caller then sends a NOTIFY (the final one after an unsubscribe).
    pub fn on_subscribe(&mut self, request: &Message, now: Instant) -> Message {
        let ess = RequestEssentials::from_message(request);
        let tag = self.id.local_tag.clone();
        if self.over || matches!(self.state, SubState::Terminated(_)) {
            return refusal(&ess, 481, "Subscription Does Not Exist", &tag);
        }
        let Ok(cseq) = request.cseq() else {
            return refusal(&ess, 400, "Malformed CSeq", &tag);
        };
        if cseq.seq <= self.remote_cseq {
            // RFC 3261 §12.2.2: out of order.
            return refusal(&ess, 500, "CSeq Out Of Order", &tag);
        }
        let same_event = request.event().ok().flatten().is_some_and(|e| {
            e.package.eq_ignore_ascii_case(&self.config.event) && e.id() == self.event_id.as_deref()
        });
        if !same_event {
            return bad_event(&ess, &self.config, &tag);
        }
        let granted = match request.expires().map(|e| self.config.negotiate(e)) {
            Ok(Ok(granted)) => granted,
            Ok(Err(min)) => return too_brief(&ess, min, &tag),
            Err(_) => return refusal(&ess, 400, "Malformed Expires", &tag),
        };
        self.remote_cseq = cseq.seq;
        if let Ok(Some(Contact::Addresses(list))) = request.contacts() {
            if let Some(first) = list.first() {
                self.target = first.uri.clone();
            }
        }
        self.expires_at = after(now, granted);
        if granted == 0 {
            self.state = SubState::Terminated(Reason::Timeout);
        }
        self.ok(&ess, granted)
    }

    /// The core's decision about the watcher changed; send a NOTIFY next.
    pub fn authorize(&mut self, auth: Authorization) {
        if matches!(self.state, SubState::Terminated(_)) {
            return;
        }
        self.state = match auth {
            Authorization::Pending => SubState::Pending,
            Authorization::Active => SubState::Active,
            Authorization::Rejected => SubState::Terminated(Reason::Rejected),
        };
    }

    /// The notifier ends the subscription (`deactivated`, `noresource`, `giveup`...);
    /// the next [`Self::notify`] is the final NOTIFY.
    pub fn terminate(&mut self, reason: Reason) {
        if !matches!(self.state, SubState::Terminated(_)) {
            self.state = SubState::Terminated(reason);
        }
    }

    /// A NOTIFY with the current state and `body`, to send through a client
    /// transaction. Fails once the subscription is over.
    pub fn notify(
        &mut self,
        body: Option<Body>,
        now: Instant,
        rng: &mut (impl RngCore + ?Sized),
    ) -> Result<Message, TransactionError> {
        if self.over {
            return Err(TransactionError::Invalid("subscription terminated"));
        }
        if !matches!(self.state, SubState::Terminated(_)) && self.expires_at <= now {
            self.state = SubState::Terminated(Reason::Timeout);
        }
        let left = secs_until(self.expires_at, now);
        let state = match &self.state {
            SubState::Active => format!("active;expires={left}"),
            SubState::Pending => format!("pending;expires={left}"),
            SubState::Terminated(reason) => {
                self.over = true;
                format!("terminated;{reason}")
            }
        };
        self.local_cseq += 1;
        let mut m = Message::request(Method::Notify, self.target.clone());
        let via = format!(
            "SIP/2.0/{} {};branch={}",
            self.config.transport.via_name(),
            self.config.sent_by,
            new_branch(rng)
        );
        m.push_header(HeaderName::Via, via);
        m.push_header(HeaderName::MaxForwards, "70");
        for route in &self.route_set {
            m.push_header(HeaderName::Route, route.clone());
        }
        m.push_header(HeaderName::From, self.local.to_string());
        m.push_header(HeaderName::To, self.remote.to_string());
        m.push_header(HeaderName::CallId, self.id.call_id.clone());
        m.push_header(HeaderName::CSeq, format!("{} NOTIFY", self.local_cseq));
        m.push_header(HeaderName::Event, self.event.clone());
        m.push_header(HeaderName::SubscriptionState, state);
        m.push_header(HeaderName::Contact, self.config.contact.clone());
        if let Some(body) = body {
            m.push_header(HeaderName::ContentType, body.content_type);
            m.body = body.bytes;
        }
        Ok(m)
    }

    /// When the subscription expires unless refreshed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.over && !matches!(self.state, SubState::Terminated(_))).then_some(self.expires_at)
    }

    /// At expiry: the final NOTIFY (`terminated;reason=timeout`, no body).
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        rng: &mut (impl RngCore + ?Sized),
    ) -> Option<Message> {
        if self.poll_timeout().is_some_and(|at| at <= now) {
            self.state = SubState::Terminated(Reason::Timeout);
            return self.notify(None, now, rng).ok();
        }
        None
    }

    /// The final response to one of our NOTIFYs. A 481 (the subscriber has no such
    /// subscription, RFC 6665 §4.2.2) or a 408 (the NOTIFY's transaction timed out)
    /// ends the subscription at once; returns whether it is over.
    pub fn on_notify_response(&mut self, response: &Message) -> bool {
        if let Some(code) = response.status_line().map(|s| s.code) {
            if code == 481 || code == 408 {
                self.over = true;
                if !matches!(self.state, SubState::Terminated(_)) {
                    self.state = SubState::Terminated(Reason::Noresource);
                }
            }
        }
        self.over
    }

    /// The dialog's identity.
    pub fn dialog_id(&self) -> &DialogId {
        &self.id
    }

    /// The current state.
    pub fn state(&self) -> &SubState {
        &self.state
    }

    /// Whether the subscription is over (its final NOTIFY made, or the subscriber
    /// gone): drop it.
    pub fn is_over(&self) -> bool {
        self.over
    }

    fn ok(&self, ess: &RequestEssentials, granted: u32) -> Message {
        let mut r = response_for(ess, 200, "OK", &self.id.local_tag);
        r.push_header(HeaderName::Expires, granted.to_string());
        r.push_header(HeaderName::Contact, self.config.contact.clone());
        r
    }
}

/// 489 Bad Event with the package we do serve (RFC 6665 §8.3.2).
fn bad_event(ess: &RequestEssentials, config: &NotifierConfig, tag: &str) -> Message {
    let mut r = response_for(ess, 489, "Bad Event", tag);
    r.push_header(HeaderName::AllowEvents, config.event.clone());
    r
}

/// 423 Interval Too Brief with Min-Expires (RFC 6665 §4.2.1.1, RFC 3261 §21.4.17).
fn too_brief(ess: &RequestEssentials, min: u32, tag: &str) -> Message {
    let mut r = response_for(ess, 423, "Interval Too Brief", tag);
    r.push_header(HeaderName::MinExpires, min.to_string());
    r
}
