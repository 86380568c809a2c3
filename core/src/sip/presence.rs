//! SIMPLE presence: PUBLISH (RFC 3903) and SUBSCRIBE/NOTIFY (RFC 6665) for the
//! `presence` (RFC 3856) and `presence.winfo` (RFC 3857) packages, over the same
//! presentity as XMPP.
//!
//! - A watcher's authorization is the presentity's roster: a contact with a `from` or
//!   `both` subscription (or the user themself) is `active`. Anyone else is `pending`,
//!   and Herald asks the presentity on the watcher's behalf with an ordinary XMPP
//!   subscription request; when the user approves (from any client), the roster
//!   changes and the subscription becomes active.
//! - What a watcher sees is composed from the presentity's XMPP sessions and the
//!   documents its SIP devices published (`herald_translate::interwork::compose`).
//! - What SIP devices publish becomes the presence of the user's `sip` session
//!   (`gateway.rs`), which XMPP contacts receive like any resource's.
//!
//! Any change to a presentity (an XMPP broadcast, a session ending, a PUBLISH or its
//! expiry) reaches [`PresenceAgent::presentity_changed`], which NOTIFYs its watchers.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use herald_translate::interwork::compose::{compose_pidf, sip_side_xmpp_presence};
use herald_translate::interwork::{ResourcePresence, XmppPresence};
use herald_translate::pidf::{
    DocState, WatcherEvent, WatcherInfo, WatcherList, WatcherRecord, WatcherStatus,
};
use herald_translate::sip::publication::{PublicationConfig, Publications};
use herald_translate::sip::subscription::{
    Authorization, Body, NotifierConfig, Reason, SubState, Subscription,
};
use herald_translate::sip::transaction::{Remote, Transport};
use herald_translate::sip::{HeaderName, Message};
use herald_translate::{ns, Element, Jid};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::service::{reply, SipService, ALLOW_EVENTS};
use super::settings::SipSettings;
use crate::clock;

/// The sender and the local presentity of a PUBLISH or a new SUBSCRIBE to
/// `request_uri`, or the answer: 403 for another domain, the digest challenge (407), 404
/// for no such address.
async fn authenticated_for(
    svc: &Arc<SipService>,
    request: &Message,
    request_uri: &herald_translate::sip::Uri,
    from: Remote,
) -> Result<(super::auth::Principal, Jid), Message> {
    if !svc.is_local_uri(request_uri) {
        return Err(reply(
            request,
            403,
            "Forbidden: not a presence server for this domain",
        ));
    }
    let principal = svc.authenticate(request, true, from).await?;
    let presentity = svc
        .local_user(request_uri)
        .ok_or_else(|| reply(request, 404, "Not Found"))?;
    Ok((principal, presentity))
}

/// The packages a SUBSCRIBE may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Package {
    Presence,
    Winfo,
}

/// (Call-ID, our tag): a subscription dialog.
type DialogKey = (String, String);

#[derive(Debug)]
struct Sub {
    sub: Subscription,
    package: Package,
    presentity: Jid,
    watcher: Jid,
    /// The flow the SUBSCRIBE came over: NOTIFYs go back the same way.
    remote: Remote,
}

#[derive(Debug)]
struct State {
    subs: HashMap<DialogKey, Sub>,
    by_presentity: HashMap<Jid, HashSet<DialogKey>>,
    per_watcher: HashMap<Jid, usize>,
    publications: Publications,
    rng: StdRng,
    winfo_version: HashMap<DialogKey, u64>,
}

/// The presence agent.
#[derive(Debug)]
pub(crate) struct PresenceAgent {
    state: Mutex<State>,
    presence_config: NotifierConfig,
    winfo_config: NotifierConfig,
    /// Our Contact per transport: a UA sends in-dialog requests over the transport
    /// our Contact names, so it must be the one it subscribed over.
    contacts: HashMap<Transport, String>,
    max_per_watcher: usize,
    max_total: usize,
}

impl PresenceAgent {
    pub(crate) fn new(
        settings: &SipSettings,
        contacts: HashMap<Transport, String>,
        sent_by: String,
    ) -> Self {
        let contact = contacts
            .get(&Transport::Udp)
            .or_else(|| contacts.values().next())
            .cloned()
            .unwrap_or_default();
        let mut presence_config = NotifierConfig::presence(contact, Transport::Udp, sent_by);
        presence_config.min_expires = settings.subscribe_min_expires;
        presence_config.max_expires = settings.subscribe_max_expires;
        presence_config.default_expires = settings.subscribe_default_expires;
        let mut winfo_config = presence_config.clone();
        winfo_config.event = "presence.winfo".into();
        let publications = Publications::new(PublicationConfig {
            min_expires: settings.publish_min_expires,
            max_expires: settings.publish_max_expires,
            default_expires: settings.publish_default_expires,
            max_per_presentity: settings.max_publications_per_user,
            max_total: settings.max_publications,
            ..PublicationConfig::default()
        });
        Self {
            state: Mutex::new(State {
                subs: HashMap::new(),
                by_presentity: HashMap::new(),
                per_watcher: HashMap::new(),
                publications,
                rng: StdRng::from_os_rng(),
                winfo_version: HashMap::new(),
            }),
            presence_config,
            winfo_config,
            contacts,
            max_per_watcher: settings.max_subscriptions_per_user,
            max_total: settings.max_subscriptions,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// (subscriptions, publications) held.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let st = self.lock();
        (st.subs.len(), st.publications.len())
    }

    /// A PUBLISH: authenticated, for the sender's own presentity only.
    pub(crate) async fn publish(
        &self,
        svc: &Arc<SipService>,
        request: &Message,
        from: Remote,
    ) -> Message {
        let Some(line) = request.request_line() else {
            return reply(request, 400, "Bad Request");
        };
        let (principal, presentity) = match authenticated_for(svc, request, &line.uri, from).await {
            Ok(found) => found,
            Err(answer) => return answer,
        };
        if presentity != principal.jid {
            return reply(
                request,
                403,
                "Forbidden: a user publishes only their own presence",
            );
        }
        let outcome = {
            let mut st = self.lock();
            let State {
                publications, rng, ..
            } = &mut *st;
            publications.on_publish(&presentity.to_string(), request, clock::now(), rng)
        };
        if !outcome.changes.is_empty() {
            svc.sip_side_changed(&presentity).await;
        }
        outcome.response
    }

    /// The presence the user's SIP side shows XMPP contacts: what was published, or
    /// `None` when nothing is.
    pub(crate) fn sip_side_presence(&self, user: &Jid) -> Option<Element> {
        let st = self.lock();
        let key = user.to_string();
        let docs = st.publications.pidfs(&key);
        let on_call = st.publications.on_call(&key);
        if docs.is_empty() {
            if !on_call {
                return None;
            }
            // Only dialog state was published (a phone that publishes no PIDF): the SIP
            // side is available, so a call makes it On the phone.
            // `sip_side_xmpp_presence` needs a PIDF document to start from.
            let state = herald_translate::interwork::PresenceState::Available.with_call(true);
            let (available, show) = state.to_xmpp();
            let presence = XmppPresence {
                available,
                show,
                statuses: vec![herald_translate::pidf::Note::new(state.label())],
                priority: 0,
            };
            return Some(presence.to_element(ns::CLIENT));
        }
        sip_side_xmpp_presence(&docs, on_call).map(|p| p.to_element(ns::CLIENT))
    }

    /// Whether `user` has live publications.
    pub(crate) fn has_publications(&self, user: &Jid) -> bool {
        self.lock().publications.count(&user.to_string()) > 0
    }

    /// A SUBSCRIBE, new or in a dialog.
    pub(crate) async fn subscribe(
        &self,
        svc: &Arc<SipService>,
        request: &Message,
        from: Remote,
    ) -> Message {
        let Some(line) = request.request_line() else {
            return reply(request, 400, "Bad Request");
        };
        let package = match request.event() {
            Ok(Some(e)) if e.package.eq_ignore_ascii_case("presence") => Package::Presence,
            Ok(Some(e)) if e.package.eq_ignore_ascii_case("presence.winfo") => Package::Winfo,
            Ok(_) => {
                let mut r = reply(request, 489, "Bad Event");
                r.push_header(HeaderName::AllowEvents, ALLOW_EVENTS);
                return r;
            }
            Err(e) => return reply(request, 400, &e.kind.reason_phrase()),
        };
        // A SUBSCRIBE in a dialog (refresh, unsubscribe) is known by its dialog
        // identifiers; its Request-URI is our Contact, not the presentity.
        if let Some(tag) = request.to().ok().and_then(|t| t.tag().map(str::to_owned)) {
            return self.resubscribe(svc, request, tag).await;
        }
        let (principal, presentity) = match authenticated_for(svc, request, &line.uri, from).await {
            Ok(found) => found,
            Err(answer) => return answer,
        };
        if !svc.server.user_exists(&presentity).await {
            return reply(request, 404, "Not Found");
        }
        let watcher = principal.jid.clone();
        let auth = match package {
            Package::Winfo if watcher != presentity => {
                return reply(
                    request,
                    403,
                    "Forbidden: only the user may watch their watchers",
                );
            }
            Package::Winfo => Authorization::Active,
            Package::Presence => self.decide(svc, &presentity, &watcher).await,
        };
        let accepted = {
            let mut st = self.lock();
            if st.subs.len() >= self.max_total {
                let mut r = reply(request, 503, "Service Unavailable: too many subscriptions");
                r.push_header(HeaderName::Other("Retry-After".into()), "60");
                return r;
            }
            if st.per_watcher.get(&watcher).copied().unwrap_or(0) >= self.max_per_watcher {
                return reply(
                    request,
                    403,
                    "Forbidden: too many subscriptions for this user",
                );
            }
            let mut config = if package == Package::Winfo {
                self.winfo_config.clone()
            } else {
                self.presence_config.clone()
            };
            if let Some(c) = self.contacts.get(&from.transport) {
                config.contact.clone_from(c);
            }
            let (response, sub) =
                Subscription::accept(request, &config, auth, clock::now(), &mut st.rng);
            match sub {
                None => Err(response),
                Some(sub) => {
                    let id = sub.dialog_id();
                    let key = (id.call_id.clone(), id.local_tag.clone());
                    st.by_presentity
                        .entry(presentity.clone())
                        .or_default()
                        .insert(key.clone());
                    *st.per_watcher.entry(watcher.clone()).or_default() += 1;
                    st.subs.insert(
                        key.clone(),
                        Sub {
                            sub,
                            package,
                            presentity: presentity.clone(),
                            watcher: watcher.clone(),
                            remote: from,
                        },
                    );
                    Ok((response, key))
                }
            }
        };
        let (response, key) = match accepted {
            Ok(v) => v,
            Err(response) => return response,
        };
        let svc2 = Arc::clone(svc);
        tokio::spawn(async move { svc2.presence.notify(&svc2, &key).await });
        if package == Package::Presence {
            if auth == Authorization::Pending {
                svc.ask_presentity(&watcher, &presentity).await;
            }
            self.winfo_changed(svc, &presentity);
        }
        response
    }

    async fn resubscribe(&self, svc: &Arc<SipService>, request: &Message, tag: String) -> Message {
        let Ok(call_id) = request.call_id() else {
            return reply(request, 400, "Missing Call-ID");
        };
        let key = (call_id.to_owned(), tag);
        let (response, presentity) = {
            let mut st = self.lock();
            let Some(s) = st.subs.get_mut(&key) else {
                return reply(request, 481, "Subscription Does Not Exist");
            };
            let from_tag = request.from().ok().and_then(|f| f.tag().map(str::to_owned));
            if from_tag.as_deref() != Some(s.sub.dialog_id().remote_tag.as_str()) {
                return reply(request, 481, "Subscription Does Not Exist");
            }
            (
                s.sub.on_subscribe(request, clock::now()),
                s.presentity.clone(),
            )
        };
        if response.status_line().is_some_and(|s| s.code == 200) {
            let svc2 = Arc::clone(svc);
            tokio::spawn(async move { svc2.presence.notify(&svc2, &key).await });
            self.winfo_changed(svc, &presentity);
        }
        response
    }

    /// Whether `watcher` may see `presentity`: the presentity's roster decides.
    async fn decide(
        &self,
        svc: &Arc<SipService>,
        presentity: &Jid,
        watcher: &Jid,
    ) -> Authorization {
        if presentity == watcher {
            return Authorization::Active;
        }
        if svc.server.blocks.has_blocked(presentity, watcher).await {
            // Polite blocking (RFC 3856 §5.1.1 allows it): never told no, never told yes.
            return Authorization::Pending;
        }
        if svc.server.rosters.is_subscriber(presentity, watcher).await {
            Authorization::Active
        } else {
            Authorization::Pending
        }
    }

    /// The roster of `presentity` changed for `contact`: re-decide their subscriptions.
    pub(crate) async fn roster_changed(
        &self,
        svc: &Arc<SipService>,
        presentity: &Jid,
        contact: &Jid,
    ) {
        let watcher = contact.bare();
        let keys = self.dialogs_of(&presentity.bare(), |s| {
            s.watcher == watcher && s.package == Package::Presence
        });
        if keys.is_empty() {
            return;
        }
        let auth = self.decide(svc, &presentity.bare(), &contact.bare()).await;
        let mut changed = Vec::new();
        {
            let mut st = self.lock();
            for k in keys {
                if let Some(s) = st.subs.get_mut(&k) {
                    let before = s.sub.state().clone();
                    s.sub.authorize(auth);
                    if *s.sub.state() != before {
                        changed.push(k);
                    }
                }
            }
        }
        if !changed.is_empty() {
            for k in changed {
                self.notify(svc, &k).await;
            }
            self.winfo_changed(svc, &presentity.bare());
        }
    }

    /// The dialogs watching `presentity` whose subscription passes `keep`.
    fn dialogs_of(&self, presentity: &Jid, keep: impl Fn(&Sub) -> bool) -> Vec<DialogKey> {
        let st = self.lock();
        st.by_presentity
            .get(presentity)
            .map(|set| {
                set.iter()
                    .filter(|k| st.subs.get(*k).is_some_and(&keep))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `presentity`'s presence changed: NOTIFY its presence watchers.
    pub(crate) fn presentity_changed(&self, svc: &Arc<SipService>, presentity: &Jid) {
        let keys = self.dialogs_of(&presentity.bare(), |s| s.package == Package::Presence);
        if keys.is_empty() {
            return;
        }
        // One document for every watcher, taken now: each change is notified with the
        // state it made, however late a NOTIFY task runs.
        let body = self.presence_body(svc, &presentity.bare());
        for k in keys {
            let svc2 = Arc::clone(svc);
            let body = body.clone();
            tokio::spawn(async move { svc2.presence.notify_with(&svc2, &k, body).await });
        }
    }

    fn winfo_changed(&self, svc: &Arc<SipService>, presentity: &Jid) {
        let keys = self.dialogs_of(presentity, |s| s.package == Package::Winfo);
        for k in keys {
            let svc2 = Arc::clone(svc);
            tokio::spawn(async move { svc2.presence.notify(&svc2, &k).await });
        }
    }

    /// Send subscription `key` a NOTIFY with the current state.
    pub(crate) async fn notify(&self, svc: &Arc<SipService>, key: &DialogKey) {
        let body = self.body_for(svc, key);
        self.notify_with(svc, key, body).await;
    }

    /// [`notify`](Self::notify) with the body already made.
    async fn notify_with(&self, svc: &Arc<SipService>, key: &DialogKey, body: Option<Body>) {
        let built = {
            let mut st = self.lock();
            let State { subs, rng, .. } = &mut *st;
            let Some(s) = subs.get_mut(key) else { return };
            let body = if matches!(s.sub.state(), SubState::Active) {
                body
            } else {
                None
            };
            s.sub
                .notify(body, clock::now(), rng)
                .ok()
                .map(|m| (m, s.remote))
        };
        let Some((mut notify, remote)) = built else {
            return;
        };
        notify.headers.retain(|h| h.name != HeaderName::Via);
        let remote = match notify.request_line() {
            Some(line) => svc.route_to(&line.uri, remote),
            None => remote,
        };
        let response = svc
            .send_request_message(notify, remote, std::time::Duration::from_secs(32))
            .await;
        let over = {
            let mut st = self.lock();
            match st.subs.get_mut(key) {
                Some(s) => match &response {
                    Some(r) => s.sub.on_notify_response(r),
                    None => s.sub.is_over(),
                },
                None => false,
            }
        };
        if over {
            self.remove(svc, key);
        }
    }

    fn remove(&self, svc: &Arc<SipService>, key: &DialogKey) {
        let removed = {
            let mut st = self.lock();
            let removed = st.subs.remove(key);
            st.winfo_version.remove(key);
            if let Some(s) = &removed {
                if let Some(set) = st.by_presentity.get_mut(&s.presentity) {
                    set.remove(key);
                    if set.is_empty() {
                        st.by_presentity.remove(&s.presentity);
                    }
                }
                if let Some(n) = st.per_watcher.get_mut(&s.watcher) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        st.per_watcher.remove(&s.watcher);
                    }
                }
            }
            removed
        };
        if let Some(s) = removed {
            if s.package == Package::Presence {
                self.winfo_changed(svc, &s.presentity);
            }
        }
    }

    /// The composed PIDF document of `presentity`, as its watchers get it.
    fn presence_body(&self, svc: &Arc<SipService>, presentity: &Jid) -> Option<Body> {
        let sessions = svc.server.router.sessions(presentity);
        let mut xmpp: Vec<(String, XmppPresence)> = Vec::new();
        for s in sessions.iter() {
            if s.jid.resource() == Some(super::gateway::RESOURCE) {
                continue; // the SIP side is in the publications themselves
            }
            if let (true, Some(p)) = (s.available, &s.presence) {
                if let Some(x) = XmppPresence::from_element(p) {
                    xmpp.push((s.jid.resource().unwrap_or_default().to_owned(), x));
                }
            }
        }
        let resources: Vec<ResourcePresence<'_>> = xmpp
            .iter()
            .map(|(r, p)| ResourcePresence {
                resource: Some(r.as_str()),
                presence: p,
                contact: None,
            })
            .collect();
        let st = self.lock();
        let key = presentity.to_string();
        let docs = st.publications.pidfs(&key);
        let doc = compose_pidf(
            &format!("pres:{presentity}"),
            &resources,
            &docs,
            st.publications.on_call(&key),
        );
        let xml = doc.to_xml().ok()?;
        Some(Body {
            content_type: "application/pidf+xml".into(),
            bytes: xml.into_bytes(),
        })
    }

    /// The body of the next NOTIFY of `key` (composed presence, or watcher info).
    fn body_for(&self, svc: &Arc<SipService>, key: &DialogKey) -> Option<Body> {
        let (package, presentity) = {
            let st = self.lock();
            let s = st.subs.get(key)?;
            (s.package, s.presentity.clone())
        };
        match package {
            Package::Presence => self.presence_body(svc, &presentity),
            Package::Winfo => {
                let mut st = self.lock();
                let version = {
                    let v = st.winfo_version.entry(key.clone()).or_insert(0);
                    let current = *v;
                    *v += 1;
                    current
                };
                let mut info = WatcherInfo::new(version, DocState::Full);
                let mut list = WatcherList::new(format!("sip:{presentity}"), "presence");
                if let Some(set) = st.by_presentity.get(&presentity) {
                    for k in set {
                        let Some(s) = st.subs.get(k) else { continue };
                        if s.package != Package::Presence {
                            continue;
                        }
                        let (status, event) = match s.sub.state() {
                            SubState::Active => (WatcherStatus::Active, WatcherEvent::Approved),
                            SubState::Pending => (WatcherStatus::Pending, WatcherEvent::Subscribe),
                            SubState::Terminated(_) => {
                                (WatcherStatus::Terminated, WatcherEvent::Timeout)
                            }
                        };
                        list.watchers.push(WatcherRecord::new(
                            format!("{}-{}", k.0.len(), &k.1),
                            format!("sip:{}", s.watcher),
                            status,
                            event,
                        ));
                    }
                }
                info.lists.push(list);
                drop(st);
                let xml = info.to_xml().ok()?;
                Some(Body {
                    content_type: "application/watcherinfo+xml".into(),
                    bytes: xml.into_bytes(),
                })
            }
        }
    }

    /// The earliest deadline of any subscription or publication.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let st = self.lock();
        let subs = st.subs.values().filter_map(|s| s.sub.poll_timeout()).min();
        let pubs = st.publications.poll_timeout();
        match (subs, pubs) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Expire what is due: final NOTIFYs of expired subscriptions, presentities
    /// whose publications expired.
    pub(crate) async fn expire(&self, svc: &Arc<SipService>) {
        let now = clock::now();
        let (due, changes) = {
            let mut st = self.lock();
            let due: Vec<DialogKey> = st
                .subs
                .iter()
                .filter(|(_, s)| s.sub.poll_timeout().is_some_and(|at| at <= now))
                .map(|(k, _)| k.clone())
                .collect();
            for k in &due {
                if let Some(s) = st.subs.get_mut(k) {
                    s.sub.terminate(Reason::Timeout);
                }
            }
            (due, st.publications.handle_timeout(now))
        };
        for k in due {
            self.notify(svc, &k).await;
            self.remove(svc, &k);
        }
        let mut seen = HashSet::new();
        for c in changes {
            if seen.insert(c.presentity.clone()) {
                if let Ok(jid) = Jid::parse(&c.presentity) {
                    svc.sip_side_changed(&jid).await;
                }
            }
        }
    }
}
