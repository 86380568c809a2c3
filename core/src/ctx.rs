//! What every service of the core shares: hosted domains, settings, storage, the live
//! session table, metrics and the block-list cache. Services hold an `Arc<Ctx>`; none of
//! them reaches another service through it.

use std::sync::Arc;

use arc_swap::ArcSwap;

use herald_rules::{Addressed, Addressee};
use herald_translate::{Element, Jid, StanzaKind};

use crate::blocklists::BlockLists;
use crate::c2s::throttle::AuthThrottle;
pub use crate::db::Db;
use crate::metrics::Metrics;
use crate::router::{approx_size, Router, SessionView, Sessions};
use crate::settings::C2sSettings;
use crate::store::Store;

/// The core's shared state.
#[derive(Debug)]
pub struct Ctx {
    /// Hosted domains, normalized; the first is the default.
    pub domains: Vec<String>,
    /// Replaced whole by a reload; readers take the current one per use.
    settings: ArcSwap<C2sSettings>,
    pub db: Db,
    pub router: Router,
    pub metrics: Metrics,
    pub(crate) blocks: BlockLists,
    /// Failed-authentication throttling, shared by XMPP logins and SIP digest: a
    /// password guesser gets one budget whichever protocol it uses.
    pub(crate) auth_throttle: AuthThrottle,
    /// Who else wants to hear of presence and roster changes (the SIP presence agent).
    listener: std::sync::OnceLock<Arc<dyn ChangeListener>>,
}

/// Told of every change to a user's presence or roster, after the XMPP side handled
/// it. Calls must return at once (spawn what takes time).
pub(crate) trait ChangeListener: Send + Sync + std::fmt::Debug {
    /// `user`'s presence changed (a session's broadcast, or its end).
    fn presence_changed(&self, user: &Jid);
    /// `user`'s roster item for `contact` changed or went.
    fn roster_changed(&self, user: &Jid, contact: &Jid);
    /// The account `user` (a normalized localpart) was removed.
    fn account_removed(&self, user: &str);
}

impl Ctx {
    pub(crate) fn new(domains: Vec<String>, settings: C2sSettings, store: Arc<dyn Store>) -> Self {
        let db = Db::new(store);
        let auth_throttle = AuthThrottle::new(&settings);
        Self {
            domains,
            settings: ArcSwap::from_pointee(settings),
            blocks: BlockLists::new(db.clone()),
            auth_throttle,
            db,
            router: Router::new(),
            metrics: Metrics::new(),
            listener: std::sync::OnceLock::new(),
        }
    }

    /// Install the change listener (once).
    pub(crate) fn set_listener(&self, listener: Arc<dyn ChangeListener>) {
        let _ = self.listener.set(listener);
    }

    pub(crate) fn presence_changed(&self, user: &Jid) {
        if let Some(l) = self.listener.get() {
            l.presence_changed(user);
        }
    }

    pub(crate) fn roster_changed(&self, user: &Jid, contact: &Jid) {
        if let Some(l) = self.listener.get() {
            l.roster_changed(user, contact);
        }
    }

    pub(crate) fn account_removed(&self, user: &str) {
        if let Some(l) = self.listener.get() {
            l.account_removed(user);
        }
    }

    /// Whether presence addressed to `contact` could reach anyone. A local bare JID
    /// without an available session that reads presence could not: presence to an
    /// account with no available resource is ignored on arrival (RFC 6121), so a
    /// broadcast skips routing it.
    /// Remote JIDs and full JIDs (directed presence) always could.
    pub(crate) fn may_hear_presence(&self, contact: &Jid) -> bool {
        if contact.resource().is_some() || !self.is_local_domain(contact.domain()) {
            return true;
        }
        self.router
            .sessions(contact)
            .iter()
            .any(|s| s.available && !s.info.no_presence)
    }

    /// The settings in force. Hold the guard only for a moment (never across an
    /// await): a reload replaces them.
    pub fn settings(&self) -> arc_swap::Guard<Arc<C2sSettings>> {
        self.settings.load()
    }

    /// Put new settings in force; returns the old ones.
    pub(crate) fn replace_settings(&self, settings: C2sSettings) -> Arc<C2sSettings> {
        self.settings.swap(Arc::new(settings))
    }

    pub fn default_domain(&self) -> &str {
        self.domains
            .first()
            .map(String::as_str)
            .unwrap_or("localhost")
    }

    pub fn is_local_domain(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| d == domain)
    }

    /// The server's own address for a local user's domain (the default domain for
    /// anything else).
    pub fn server_jid(&self, for_jid: &Jid) -> Jid {
        let domain = if self.is_local_domain(for_jid.domain()) {
            for_jid.domain()
        } else {
            self.default_domain()
        };
        Jid::domain_jid(domain).unwrap_or_else(|_| for_jid.bare())
    }

    /// Whether the local account exists (online sessions answer without the database).
    pub async fn user_exists(&self, user: &Jid) -> bool {
        let Some(local) = user.local() else {
            return false;
        };
        if !self.is_local_domain(user.domain()) {
            return false;
        }
        if self.router.is_online(user) {
            return true;
        }
        let local = local.to_string();
        self.db
            .run(move |s| s.user_exists(&local))
            .await
            .unwrap_or(false)
    }

    /// What routing needs to know about the local recipient of `env`, and the
    /// recipient's sessions.
    pub(crate) async fn addressee(
        &self,
        env: &herald_translate::Envelope,
    ) -> (Addressee, Sessions) {
        let (from, to) = (env.from(), env.to());
        let exists = self.user_exists(to).await;
        let blocks_sender = exists && self.blocks.has_blocked(to, from).await;
        let sessions = self.router.sessions(to);
        let addressed = if to.resource().is_some() {
            Addressed::Full {
                connected: sessions.iter().any(|s| s.jid == *to),
            }
        } else {
            Addressed::Bare
        };
        (
            Addressee {
                exists,
                blocks_sender,
                to: addressed,
            },
            sessions,
        )
    }

    /// Queue a stanza for one session and count it. False when the session is gone or
    /// its queue is full.
    pub(crate) fn deliver(&self, session: &SessionView, el: Element) -> bool {
        let size = approx_size(&el);
        self.deliver_shared(session, Arc::new(el), size)
    }

    /// [`deliver`](Self::deliver) for a stanza several sessions get unchanged.
    pub(crate) fn deliver_shared(
        &self,
        session: &SessionView,
        el: Arc<Element>,
        size: usize,
    ) -> bool {
        if session.info.no_presence && el.name == "presence" {
            return true;
        }
        if let Some(k) = StanzaKind::of(&el) {
            self.metrics.stanza_out(k);
        }
        session.send(el, size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::{ConnInfo, Outbound, QueueLimits};
    use crate::store::SqliteStore;
    use herald_translate::ns;

    fn test_ctx() -> Ctx {
        let store = SqliteStore::open_in_memory().expect("store");
        Ctx::new(
            vec!["localhost".into()],
            C2sSettings::default(),
            Arc::new(store),
        )
    }

    /// Binds `user/resource` on `ctx`'s router, reading presence unless `no_presence`.
    fn bind(
        ctx: &Ctx,
        user: &Jid,
        resource: &str,
        conn_id: u64,
        no_presence: bool,
    ) -> crate::router::Bound {
        let info = ConnInfo {
            no_presence,
            ..ConnInfo::default()
        };
        let limits = QueueLimits {
            stanzas: 8,
            bytes: 1 << 20,
        };
        ctx.router
            .bind(user, Some(resource.into()), conn_id, info, limits, 5)
            .expect("bound")
    }

    #[test]
    fn a_no_presence_session_is_sent_messages_but_no_presence() {
        let ctx = test_ctx();
        let user = Jid::parse("alice@localhost").expect("jid");
        let bind =
            |resource, conn_id, no_presence| bind(&ctx, &user, resource, conn_id, no_presence);
        let mut gateway = bind("sip", 1, true);
        let mut client = bind("laptop", 2, false);
        let views = ctx.router.sessions(&user);
        for view in views.iter() {
            assert!(ctx.deliver(view, Element::new("presence", ns::CLIENT)));
            assert!(ctx.deliver(view, Element::new("message", ns::CLIENT)));
        }
        let names = |q: &mut crate::router::SessionQueue| {
            std::iter::from_fn(|| q.try_recv())
                .map(|o| match o {
                    Outbound::Stanza { el, .. } => el.name.clone(),
                    _ => "other".into(),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&mut gateway.queue), ["message"]);
        assert_eq!(names(&mut client.queue), ["presence", "message"]);
    }

    #[test]
    fn presence_may_be_heard_by_available_sessions_that_read_it() {
        let ctx = test_ctx();
        let bob = Jid::parse("bob@localhost").expect("jid");
        let bind =
            |resource, conn_id, no_presence| bind(&ctx, &bob, resource, conn_id, no_presence);
        let jid = |s: &str| Jid::parse(s).expect("jid");
        assert!(!ctx.may_hear_presence(&bob), "offline");
        assert!(
            ctx.may_hear_presence(&jid("bob@localhost/phone")),
            "directed: always"
        );
        assert!(
            ctx.may_hear_presence(&jid("bob@remote.example")),
            "remote: always"
        );
        let sip = bind("sip", 1, true);
        ctx.router
            .update(&sip.handle.jid, 1, |s| s.available = true);
        assert!(
            !ctx.may_hear_presence(&bob),
            "only a session that reads no presence"
        );
        let laptop = bind("laptop", 2, false);
        assert!(!ctx.may_hear_presence(&bob), "not available yet");
        ctx.router
            .update(&laptop.handle.jid, 2, |s| s.available = true);
        assert!(ctx.may_hear_presence(&bob));
    }
}
