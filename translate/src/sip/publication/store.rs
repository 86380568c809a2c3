//! [`Publications`]: the store and the PUBLISH procedure of RFC 3903 §6.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use rand::RngCore;

use super::super::essentials::{response_for, RequestEssentials};
use super::super::header::HeaderName;
use super::super::message::Message;
use super::super::method::Method;
use super::super::transaction::new_tag;
use super::{Change, Package, PublicationConfig, PublishOutcome, Published, PublishedDoc};
use crate::pidf::{DialogInfo, Pidf};

/// One stored publication.
#[derive(Debug, Clone)]
struct Entry {
    package: Package,
    etag: String,
    published: Published,
    expires_at: Instant,
}

/// Every presentity's published event state (see the [module](super) for the
/// procedure and its responses).
#[derive(Debug, Clone)]
pub struct Publications {
    config: PublicationConfig,
    by_presentity: HashMap<String, Vec<Entry>>,
    /// (expiry, presentity, entity-tag) of every stored publication.
    deadlines: BTreeSet<(Instant, String, String)>,
    total: usize,
    /// Entity-tags issued so far: the suffix that keeps each one unique.
    issued: u64,
}

/// A refused PUBLISH: the status, the reason phrase and the header that goes with it.
#[derive(Debug)]
struct Refusal {
    code: u16,
    reason: String,
    header: Option<(HeaderName, String)>,
}

impl Refusal {
    fn new(code: u16, reason: &str) -> Self {
        Self {
            code,
            reason: reason.to_owned(),
            header: None,
        }
    }

    fn with(mut self, name: HeaderName, value: String) -> Self {
        self.header = Some((name, value));
        self
    }

    fn response(self, ess: &RequestEssentials, tag: &str) -> Message {
        let mut r = response_for(ess, self.code, &self.reason, tag);
        if let Some((name, value)) = self.header {
            r.push_header(name, value);
        }
        r
    }
}

/// How a PUBLISH that passed the checks acts (RFC 3903 Table 1).
enum Operation {
    Initial(Published),
    Refresh(String),
    Modify(String, Published),
    Remove(String),
}

impl Publications {
    /// An empty store.
    pub fn new(config: PublicationConfig) -> Self {
        Self {
            config,
            by_presentity: HashMap::new(),
            deadlines: BTreeSet::new(),
            total: 0,
            issued: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PublicationConfig {
        &self.config
    }

    /// A PUBLISH for `presentity`, already authenticated and authorized by the
    /// caller. Returns the response and what changed.
    pub fn on_publish(
        &mut self,
        presentity: &str,
        request: &Message,
        now: Instant,
        rng: &mut (impl RngCore + ?Sized),
    ) -> PublishOutcome {
        let changes = self.reap_presentity(presentity, now);
        let ess = RequestEssentials::from_message(request);
        let tag = new_tag(rng);
        match self.decide(presentity, request, now) {
            Err(refusal) => PublishOutcome {
                response: refusal.response(&ess, &tag),
                changes,
            },
            Ok((package, granted, op)) => {
                let (response, change) =
                    self.apply(presentity, package, granted, op, &ess, &tag, now, rng);
                let mut changes = changes;
                if let Some(change) = change {
                    if !changes.contains(&change) {
                        changes.push(change);
                    }
                }
                PublishOutcome { response, changes }
            }
        }
    }

    /// Steps 3 to 6 of RFC 3903 §6: the package, the granted expiry and the operation,
    /// or the refusal.
    fn decide(
        &self,
        presentity: &str,
        request: &Message,
        now: Instant,
    ) -> Result<(Package, u32, Operation), Refusal> {
        let refuse = Refusal::new;
        let is_publish = request
            .request_line()
            .is_some_and(|l| l.method == Method::Publish);
        if !is_publish {
            return Err(refuse(400, "Not A PUBLISH"));
        }
        // Step 3.
        let package = match request.event() {
            Ok(Some(e)) if request.count(&HeaderName::Event) == 1 => {
                self.config.package(&e.package)
            }
            _ => None,
        };
        let Some(package) = package else {
            let allowed: Vec<&str> = self.config.packages.iter().map(|p| p.event()).collect();
            return Err(refuse(489, "Bad Event").with(HeaderName::AllowEvents, allowed.join(", ")));
        };
        // Step 4.
        if request.count(&HeaderName::SipIfMatch) > 1 {
            return Err(refuse(400, "More Than One SIP-If-Match"));
        }
        let if_match = request
            .sip_if_match()
            .map_err(|_| refuse(400, "Malformed SIP-If-Match"))?;
        if let Some(etag) = if_match {
            if self.find(presentity, package, etag, now).is_none() {
                return Err(refuse(412, "Conditional Request Failed"));
            }
        }
        // Step 5.
        let requested = request
            .expires()
            .map_err(|_| refuse(400, "Malformed Expires"))?;
        let granted = match self.config.negotiate(requested) {
            Ok(granted) => granted,
            Err(min) => {
                return Err(
                    refuse(423, "Interval Too Brief").with(HeaderName::MinExpires, min.to_string())
                );
            }
        };
        // Step 6.
        if let (Some(etag), 0) = (if_match, granted) {
            return Ok((package, 0, Operation::Remove(etag.to_owned())));
        }
        let body = if request.body.is_empty() {
            None
        } else {
            Some(self.read_body(package, request)?)
        };
        let op = match (if_match, body) {
            (None, None) => return Err(refuse(400, "Missing Body")),
            (None, Some(published)) => Operation::Initial(published),
            (Some(etag), None) => Operation::Refresh(etag.to_owned()),
            (Some(etag), Some(published)) => Operation::Modify(etag.to_owned(), published),
        };
        if let Operation::Initial(_) = op {
            if granted > 0 {
                self.room_for(presentity)?;
            }
        }
        Ok((package, granted, op))
    }

    /// Checks and parses a PUBLISH body of `package`.
    fn read_body(&self, package: Package, request: &Message) -> Result<Published, Refusal> {
        let refuse = Refusal::new;
        let unsupported = || {
            refuse(415, "Unsupported Media Type")
                .with(HeaderName::Accept, package.content_types().join(", "))
        };
        let media = match request.content_type() {
            Ok(Some(media)) => media,
            Ok(None) => return Err(unsupported()),
            Err(_) => return Err(refuse(400, "Malformed Content-Type")),
        };
        let supported = package.content_types().iter().any(|t| {
            t.split_once('/')
                .is_some_and(|(mtype, subtype)| media.is(mtype, subtype))
        });
        if !supported {
            return Err(unsupported());
        }
        if request.body.len() > self.config.max_document_bytes {
            return Err(refuse(413, "Request Entity Too Large"));
        }
        let limits = &self.config.doc_limits;
        let doc = match package {
            Package::Presence => Pidf::parse(&request.body, limits).map(PublishedDoc::Presence),
            Package::Dialog => DialogInfo::parse(&request.body, limits).map(PublishedDoc::Dialog),
        }
        .map_err(|e| refuse(400, &format!("Bad Body: {e}")))?;
        Ok(Published {
            doc,
            body: request.body.clone(),
            content_type: request
                .header(&HeaderName::ContentType)
                .unwrap_or_default()
                .to_owned(),
        })
    }

    /// Refuses a new publication when the presentity or the store is full.
    fn room_for(&self, presentity: &str) -> Result<(), Refusal> {
        let refuse = Refusal::new;
        let held = self.by_presentity.get(presentity).map_or(0, Vec::len);
        if held >= self.config.max_per_presentity {
            return Err(refuse(403, "Too Many Publications"));
        }
        if self.total >= self.config.max_total {
            return Err(refuse(503, "Service Unavailable").with(
                HeaderName::Other("Retry-After".into()),
                self.config.retry_after.to_string(),
            ));
        }
        Ok(())
    }

    /// Carries out a checked operation: step 7's 200 and the change.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        presentity: &str,
        package: Package,
        granted: u32,
        op: Operation,
        ess: &RequestEssentials,
        tag: &str,
        now: Instant,
        rng: &mut (impl RngCore + ?Sized),
    ) -> (Message, Option<Change>) {
        let etag = self.new_etag(rng);
        // u32 seconds fit every platform's Instant; should one not hold them, the
        // state expires at the next timeout instead of panicking.
        let expires_at = now
            .checked_add(Duration::from_secs(u64::from(granted)))
            .unwrap_or(now);
        let change = Change {
            presentity: presentity.to_owned(),
            package,
        };
        let changed = match op {
            Operation::Initial(_) if granted == 0 => false,
            Operation::Initial(published) => {
                self.insert(
                    presentity,
                    Entry {
                        package,
                        etag: etag.clone(),
                        published,
                        expires_at,
                    },
                );
                true
            }
            Operation::Remove(old) => self.remove(presentity, &old).is_some(),
            Operation::Refresh(old) => {
                if let Some(mut entry) = self.remove(presentity, &old) {
                    entry.etag = etag.clone();
                    entry.expires_at = expires_at;
                    self.insert(presentity, entry);
                }
                false
            }
            Operation::Modify(old, published) => {
                if self.remove(presentity, &old).is_some() {
                    self.insert(
                        presentity,
                        Entry {
                            package,
                            etag: etag.clone(),
                            published,
                            expires_at,
                        },
                    );
                }
                true
            }
        };
        let mut r = response_for(ess, 200, "OK", tag);
        r.push_header(HeaderName::SipETag, etag);
        r.push_header(HeaderName::Expires, granted.to_string());
        (r, changed.then_some(change))
    }

    /// A new entity-tag: 16 random hex digits and the issue counter.
    fn new_etag(&mut self, rng: &mut (impl RngCore + ?Sized)) -> String {
        self.issued += 1;
        format!("{:016x}{:x}", rng.next_u64(), self.issued)
    }

    fn insert(&mut self, presentity: &str, entry: Entry) {
        self.deadlines
            .insert((entry.expires_at, presentity.to_owned(), entry.etag.clone()));
        self.by_presentity
            .entry(presentity.to_owned())
            .or_default()
            .push(entry);
        self.total += 1;
    }

    fn remove(&mut self, presentity: &str, etag: &str) -> Option<Entry> {
        let list = self.by_presentity.get_mut(presentity)?;
        let at = list.iter().position(|e| e.etag == etag)?;
        let entry = list.swap_remove(at);
        if list.is_empty() {
            self.by_presentity.remove(presentity);
        }
        self.deadlines
            .remove(&(entry.expires_at, presentity.to_owned(), entry.etag.clone()));
        self.total -= 1;
        Some(entry)
    }

    /// The live publication of `presentity` and `package` with this entity-tag.
    fn find(&self, presentity: &str, package: Package, etag: &str, now: Instant) -> Option<&Entry> {
        self.by_presentity
            .get(presentity)?
            .iter()
            .find(|e| e.etag == etag && e.package == package && e.expires_at > now)
    }

    /// Removes the expired publications of one presentity.
    fn reap_presentity(&mut self, presentity: &str, now: Instant) -> Vec<Change> {
        let expired: Vec<String> = self
            .by_presentity
            .get(presentity)
            .into_iter()
            .flatten()
            .filter(|e| e.expires_at <= now)
            .map(|e| e.etag.clone())
            .collect();
        let mut changes = Vec::new();
        for etag in expired {
            if let Some(entry) = self.remove(presentity, &etag) {
                push_once(&mut changes, presentity, entry.package);
            }
        }
        changes
    }

    /// When the next publication expires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _, _)| *at)
    }

    /// Removes every publication expired at `now`; one change per presentity and
    /// package, in expiry order.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Change> {
        let mut changes = Vec::new();
        while let Some((at, presentity, etag)) = self.deadlines.first().cloned() {
            if at > now {
                break;
            }
            match self.remove(&presentity, &etag) {
                Some(entry) => push_once(&mut changes, &presentity, entry.package),
                // Not reachable while the index is in step; never loop on it.
                None => {
                    self.deadlines.remove(&(at, presentity, etag));
                }
            }
        }
        changes
    }

    /// The documents `presentity` published for `package`, with their entity-tags
    /// (expired ones included until [`Self::handle_timeout`] removes them).
    pub fn documents<'a>(
        &'a self,
        presentity: &str,
        package: Package,
    ) -> impl Iterator<Item = (&'a str, &'a Published)> + use<'a> {
        self.by_presentity
            .get(presentity)
            .into_iter()
            .flatten()
            .filter(move |e| e.package == package)
            .map(|e| (e.etag.as_str(), &e.published))
    }

    /// The PIDF documents `presentity` published, for composition.
    pub fn pidfs(&self, presentity: &str) -> Vec<&Pidf> {
        let mut docs: Vec<&Pidf> = self
            .documents(presentity, Package::Presence)
            .filter_map(|(_, p)| match &p.doc {
                PublishedDoc::Presence(doc) => Some(doc),
                PublishedDoc::Dialog(_) => None,
            })
            .collect();
        // Newest first: a publication goes to the end when it is made, modified or
        // refreshed, and watchers that read one tuple read the first.
        docs.reverse();
        docs
    }

    /// Whether a published dialog-info document of `presentity` shows a call
    /// ([`DialogInfo::is_on_call`]).
    pub fn on_call(&self, presentity: &str) -> bool {
        self.documents(presentity, Package::Dialog)
            .any(|(_, p)| matches!(&p.doc, PublishedDoc::Dialog(d) if d.is_on_call()))
    }

    /// When the publication with this entity-tag expires.
    pub fn expires_at(&self, presentity: &str, etag: &str) -> Option<Instant> {
        self.by_presentity
            .get(presentity)?
            .iter()
            .find(|e| e.etag == etag)
            .map(|e| e.expires_at)
    }

    /// Drops every publication of `presentity` (its account was deleted); returns
    /// the packages that had state.
    pub fn remove_presentity(&mut self, presentity: &str) -> Vec<Change> {
        let etags: Vec<String> = self
            .by_presentity
            .get(presentity)
            .into_iter()
            .flatten()
            .map(|e| e.etag.clone())
            .collect();
        let mut changes = Vec::new();
        for etag in etags {
            if let Some(entry) = self.remove(presentity, &etag) {
                push_once(&mut changes, presentity, entry.package);
            }
        }
        changes
    }

    /// How many publications `presentity` holds.
    pub fn count(&self, presentity: &str) -> usize {
        self.by_presentity.get(presentity).map_or(0, Vec::len)
    }

    /// How many publications the store holds.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Every stored (presentity, entity-tag), for invariant checks.
    #[cfg(test)]
    pub(super) fn all_etags(&self) -> Vec<(&str, &str)> {
        self.by_presentity
            .iter()
            .flat_map(|(p, list)| list.iter().map(move |e| (p.as_str(), e.etag.as_str())))
            .collect()
    }

    /// Whether the deadline index matches the entries.
    #[cfg(test)]
    pub(super) fn index_consistent(&self) -> bool {
        self.deadlines.len() == self.total
            && self.by_presentity.values().map(Vec::len).sum::<usize>() == self.total
            && self.by_presentity.iter().all(|(p, list)| {
                list.iter().all(|e| {
                    self.deadlines
                        .contains(&(e.expires_at, p.clone(), e.etag.clone()))
                })
            })
    }
}

fn push_once(changes: &mut Vec<Change>, presentity: &str, package: Package) {
    let change = Change {
        presentity: presentity.to_owned(),
        package,
    };
    if !changes.contains(&change) {
        changes.push(change);
    }
}
