//! One presentity across protocols: a SIP user with a live registration is a session
//! of the core, `user@domain/sip`, like any XMPP resource. Routing, multi-device
//! delivery, offline storage, carbons' choice of targets and presence broadcast then
//! treat SIP devices and XMPP clients alike:
//!
//! - messages routed to that session go out as SIP MESSAGE to the user's bindings
//!   (best q first); one that no device accepts is stored offline, so nothing
//!   acknowledged is lost;
//! - its presence is what the user's SIP devices PUBLISHed (composed), or plain
//!   available while registered, broadcast to the user's XMPP contacts;
//! - when it starts, stored offline messages are sent to the devices and deleted
//!   once a device accepted them (2xx).

use std::sync::Arc;
use std::time::Duration;

use herald_translate::interwork::XmppChat;
use herald_translate::sip::{HeaderName, Message, Method, Uri};
use herald_translate::{ns, Element, Envelope, Jid};
use tokio::sync::Notify;

use super::service::{SipService, PRODUCT};
use crate::router::{ConnInfo, Outbound, QueueLimits, SessionHandle};

/// The resource of a user's SIP side.
pub(crate) const RESOURCE: &str = "sip";
/// How long to wait for a device to accept a MESSAGE.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(40);

/// A running gateway session: dropping `stop` ends it.
#[derive(Debug)]
pub(crate) struct Gateway {
    pub(crate) stop: Arc<Notify>,
    pub(crate) handle: Arc<SessionHandle>,
}

/// Start `user`'s SIP-side session (on their first registration), available with
/// `presence`.
pub(crate) fn start(svc: &Arc<SipService>, user: &Jid, presence: Element) -> Option<Gateway> {
    let server = &svc.server;
    let s = server.settings();
    let conn_id = server.router.next_conn_id();
    let info = ConnInfo {
        no_presence: true,
        ip: None,
        direct_tls: false,
        since_unix_ms: crate::time::now_unix_ms(),
    };
    let limits = QueueLimits {
        stanzas: s.send_queue,
        bytes: s.send_queue_bytes,
    };
    let bound = match server.router.bind(
        &user.bare(),
        Some(RESOURCE.to_owned()),
        conn_id,
        info,
        limits,
        s.max_sessions_per_account.saturating_add(1),
    ) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(user = %user, error = ?e, "SIP session not bound");
            return None;
        }
    };
    drop(s);
    server.metrics.sessions.inc();
    if let Some(old) = &bound.replaced {
        old.close(herald_translate::StreamError::new(
            herald_translate::StreamErrorCondition::Conflict,
        ));
    }
    let stop = Arc::new(Notify::new());
    let handle = Arc::clone(&bound.handle);
    let (svc2, stop2) = (Arc::clone(svc), Arc::clone(&stop));
    server.spawn_tracked(async move {
        run(svc2, bound.handle, bound.queue, stop2, presence).await;
    });
    Some(Gateway { stop, handle })
}

async fn run(
    svc: Arc<SipService>,
    handle: Arc<SessionHandle>,
    mut queue: crate::router::SessionQueue,
    stop: Arc<Notify>,
    presence: Element,
) {
    let server = Arc::clone(&svc.server);
    let jid = handle.jid.clone();
    let broadcast = server
        .presence_broadcast(&jid, handle.conn_id, presence, &[])
        .await;
    if broadcast.wants_offline {
        deliver_offline(&svc, &jid).await;
    }
    let mut shutdown = server.shutdown_signal();
    loop {
        tokio::select! {
            biased;
            () = crate::server::stopping(&mut shutdown) => break,
            () = stop.notified() => break,
            out = queue.recv() => match out {
                None | Some(Outbound::Close(_)) => break,
                Some(Outbound::Takeover(done)) => { let _ = done.send(()); break; }
                Some(Outbound::Stanza { el, .. }) => {
                    if el.name == "message" {
                        to_devices(&svc, &jid, &el).await;
                    }
                }
            },
        }
    }
    server
        .end_session(&handle, Some(queue), Vec::new(), &[])
        .await;
}

/// A message for the user's SIP devices: as a SIP MESSAGE to each binding until one
/// accepts; stored offline when none does.
async fn to_devices(svc: &Arc<SipService>, session: &Jid, el: &Element) -> bool {
    let Some(from) = el.attr("from").and_then(|f| Jid::parse(f).ok()) else {
        return true;
    };
    let Some(chat) = XmppChat::from_stanza(from, session.bare(), el) else {
        return true; // nothing a SIP device shows (receipts, chat states, errors)
    };
    if send_chat(svc, session, &chat).await {
        return true;
    }
    // No device took it: keep it for later, as the XMPP side would.
    match Envelope::new(chat.from.clone(), session.bare(), el.clone()) {
        Ok(env) => matches!(
            crate::services::offline::push(&svc.server, &env).await,
            Ok(true)
        ),
        Err(_) => false,
    }
}

/// Send `chat` to the devices of `session`'s user; true when one accepted it.
async fn send_chat(svc: &Arc<SipService>, session: &Jid, chat: &XmppChat) -> bool {
    let Ok(im) = chat.to_sip(false, None) else {
        return false;
    };
    let user = session.local().unwrap_or_default();
    for target in svc.registrar.targets(user) {
        let Some(uri) = Uri::parse(&target.contact) else {
            continue;
        };
        let mut req = Message::request(Method::Message, uri);
        req.push_header(HeaderName::MaxForwards, "70");
        req.push_header(
            HeaderName::From,
            format!("<{}>;tag={}", im.from, super::new_tag()),
        );
        req.push_header(HeaderName::To, format!("<{}>", im.to));
        req.push_header(HeaderName::CallId, super::new_call_id());
        req.push_header(HeaderName::CSeq, "1 MESSAGE");
        req.push_header(HeaderName::UserAgent, PRODUCT);
        if let Some(subject) = &im.subject {
            req.push_header(HeaderName::Subject, subject.clone());
        }
        req.push_header(HeaderName::ContentType, im.content_type.clone());
        req.body = im.body.clone();
        let to = svc.route_to(&req_uri(&req), target.remote);
        match svc.send_request(req, to, DELIVERY_TIMEOUT).await {
            Some(code) if (200..300).contains(&code) => return true,
            Some(code) => {
                tracing::debug!(code, contact = %target.contact, "SIP device refused a MESSAGE")
            }
            None => {
                tracing::debug!(contact = %target.contact, "SIP device did not answer a MESSAGE")
            }
        }
    }
    false
}

/// A registration started while `user`'s SIP session was already running (it began
/// with a PUBLISH, when there was no device to send the stored messages to): send
/// them now that there is one.
pub(crate) async fn registration_started(svc: &Arc<SipService>, user: &Jid) {
    if let Ok(session) = user.bare().with_resource(RESOURCE) {
        deliver_offline(svc, &session).await;
    }
}

/// Send the user's stored messages to their devices, a page at a time; delete what a
/// device accepted, give back the rest.
async fn deliver_offline(svc: &Arc<SipService>, session: &Jid) {
    let server = &svc.server;
    let claim = i64::try_from(server.router.next_conn_id()).unwrap_or(i64::MAX);
    loop {
        let page = match crate::services::offline::claim(server, session, claim).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read offline messages for a SIP session");
                return;
            }
        };
        if page.ids.is_empty() {
            return;
        }
        let mut done = Vec::new();
        let mut failed = false;
        for (id, el) in page.ids.iter().zip(page.messages.iter()) {
            let from = el.attr("from").and_then(|f| Jid::parse(f).ok());
            let chat = from.and_then(|f| XmppChat::from_stanza(f, session.bare(), el));
            match chat {
                // Not something a SIP device shows: it stays for an XMPP client.
                None => continue,
                Some(chat) => {
                    if send_chat(svc, session, &chat).await {
                        done.push(*id);
                    } else {
                        failed = true;
                        break;
                    }
                }
            }
        }
        let progressed = !done.is_empty();
        if progressed {
            crate::services::offline::delivered(server, session, done).await;
        }
        crate::services::offline::release(server, session, claim).await;
        if failed || !progressed {
            return;
        }
    }
}

fn req_uri(req: &Message) -> Uri {
    req.request_line()
        .map(|l| l.uri.clone())
        .unwrap_or_else(|| Uri::Other("sip:invalid".into()))
}

/// The presence a registered SIP user shows before any PUBLISH: available.
pub(crate) fn plain_available() -> Element {
    Element::new("presence", ns::CLIENT)
}
