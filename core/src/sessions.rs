//! What a client session asks of the core besides routing: its own IQs (roster, block
//! list, carbons), presence broadcast, and the end of a session — unregistered, its
//! undelivered messages rescued, its contacts told — or its detachment for XEP-0198
//! resumption.

use std::sync::Arc;
use std::time::Duration;

use herald_translate::negotiation::random_id;
use herald_translate::stanza::iq_result;
use herald_translate::{ns, Element, Envelope, Jid};

use crate::router::{SessionHandle, SessionQueue};
use crate::server::Server;
use crate::services::presence::Broadcast;
use crate::services::roster::Removed;
use crate::services::stream_mgmt::{rescuable, Detached};
use crate::services::{blocking, iq, Outbox};

impl Server {
    /// An IQ from a session to itself (no `to`, or its own bare JID).
    pub(crate) async fn own_iq(
        &self,
        iq: &Element,
        session: &Jid,
        conn_id: u64,
    ) -> Option<Element> {
        let payload = match iq::request_payload(iq)? {
            Ok(p) => p,
            Err(reply) => return Some(reply),
        };
        let set = iq.attr("type") == Some("set");
        let mut out = Outbox::new();
        let reply = match (payload.name.as_str(), payload.ns.as_str()) {
            ("query", ns::ROSTER) => {
                let (reply, removed) = self.rosters.handle_iq(iq, payload, session, conn_id).await;
                if let Some((contact, removed)) = removed {
                    self.cancel_subscriptions(session, &contact, removed, &mut out);
                }
                reply
            }
            ("blocklist" | "block" | "unblock", ns::BLOCKING) => {
                let (reply, change) = blocking::handle_iq(
                    self,
                    iq,
                    payload,
                    session,
                    format!("block-{}", random_id()),
                )
                .await;
                if let Some(change) = change {
                    let user = session.bare();
                    for contact in &change.jids {
                        // XEP-0191 §3.3: a blocked subscriber sees the user go offline; an
                        // unblocked one sees the user's presence again.
                        if !self.rosters.is_subscriber(&user, contact).await {
                            continue;
                        }
                        if change.blocked {
                            self.presence.unavailable_to(&user, contact, &mut out);
                        } else {
                            self.presence.current_to(&user, contact, &mut out);
                        }
                    }
                }
                reply
            }
            ("enable" | "disable", ns::CARBONS) if set => {
                let on = payload.name == "enable";
                self.router.update(session, conn_id, |s| s.carbons = on);
                iq_result(iq, None, None)
            }
            ("session", ns::SESSION) if set => iq_result(iq, None, None),
            ("ping", ns::PING) => iq_result(iq, None, None),
            _ => iq::account_iq(iq).unwrap_or_else(|| iq::unavailable(iq)),
        };
        self.route_all(out).await;
        Some(reply)
    }

    /// RFC 6121 §2.5.2: removing a contact cancels the subscriptions both ways.
    fn cancel_subscriptions(
        &self,
        session: &Jid,
        contact: &Jid,
        removed: Removed,
        out: &mut Outbox,
    ) {
        let user = session.bare();
        let presence = |t: &str| {
            let el = Element::new("presence", ns::CLIENT).with_attr("type", t);
            Envelope::new(user.clone(), contact.clone(), el).ok()
        };
        if removed.unsubscribe {
            out.extend(presence("unsubscribe"));
        }
        if removed.unsubscribed {
            out.extend(presence("unsubscribed"));
            self.presence.unavailable_to(&user, contact, out);
        }
    }

    /// A session sent presence without `to`.
    pub(crate) async fn presence_broadcast(
        &self,
        session: &Jid,
        conn_id: u64,
        presence: Element,
        directed: &[Jid],
    ) -> Broadcast {
        let mut out = Outbox::new();
        let done = self
            .presence
            .broadcast(session, conn_id, presence, directed, &mut out)
            .await;
        self.route_all(out).await;
        done
    }

    /// A session sent a subscription stanza.
    pub(crate) async fn outbound_subscription(
        &self,
        env: Envelope,
        kind: crate::services::subscription::SubKind,
    ) {
        let mut out = Outbox::new();
        self.subscriptions.outbound(env, kind, &mut out).await;
        self.route_all(out).await;
    }

    /// Keep a dropped session for resumption; it ends for good after the timeout.
    pub(crate) fn detach(self: &Arc<Self>, d: Detached) {
        let id = d.sm.id.clone();
        tracing::info!(jid = %d.handle.jid, "session detached, resumable");
        self.detached.insert(d);
        let server = Arc::clone(self);
        let wait = Duration::from_secs(self.settings().sm_resume_timeout_secs);
        let mut shutdown = self.shutdown_signal();
        self.spawn_tracked(async move {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = crate::server::stopping(&mut shutdown) => {}
            }
            if let Some(d) = server.detached.take(&id) {
                tracing::info!(jid = %d.handle.jid, "resumable session expired");
                server.finish_detached(d).await;
            }
        });
    }

    /// End a detached session for good.
    pub(crate) async fn finish_detached(&self, d: Detached) {
        let Detached {
            handle,
            queue,
            sm,
            directed,
        } = d;
        self.end_session(&handle, Some(queue), sm.into_unacked(), &directed)
            .await;
    }

    /// Remove a session from the router; counted in the sessions gauge once, whoever
    /// calls it first (the session's end, or its guard when the task unwound).
    pub(crate) fn unregister(&self, handle: &SessionHandle) -> Option<crate::router::SessionView> {
        let gone = self.router.unbind(&handle.jid, handle.conn_id);
        if gone.is_some() {
            self.metrics.sessions.dec();
        }
        gone
    }

    /// A session is over: unregister it, rescue undelivered messages, and tell the
    /// contacts that saw it. `queue` is `None` when a replacing session took over the
    /// resource (what was queued stays for it).
    pub(crate) async fn end_session(
        &self,
        handle: &SessionHandle,
        queue: Option<SessionQueue>,
        unacked: Vec<Arc<Element>>,
        directed: &[Jid],
    ) {
        let jid = &handle.jid;
        let info = self.unregister(handle);
        let mut pending = unacked;
        if let Some(queue) = queue {
            pending.extend(queue.close_and_drain());
        }
        let bare = jid.bare();
        for el in pending {
            if !rescuable(&el) {
                continue;
            }
            let el = Arc::unwrap_or_clone(el).with_attr("to", bare.to_string());
            match Envelope::parse(el) {
                Ok(env) => self.route(env).await,
                Err(e) => tracing::warn!(error = %e, "unroutable stanza dropped at session end"),
            }
        }
        if let Some(info) = info {
            let mut out = Outbox::new();
            self.presence
                .session_ended(jid, info.available, directed, &mut out)
                .await;
            self.route_all(out).await;
        }
    }
}
