//! A bound client session: reads stanzas from the client, checks their `from`, parses
//! their `to` once into an [`Envelope`], hands them to the core, and writes what the core
//! queues for it. Offline messages are written page by page, each page only once the
//! client has taken the previous one.

use std::sync::Arc;

use herald_translate::negotiation::random_id;
use herald_translate::{
    ns, Element, Envelope, Jid, StanzaError, StanzaErrorCondition, StanzaKind, StreamError,
    StreamErrorCondition as Cond, StreamEvent,
};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::io::Conn;
use crate::router::{Bound, Kick, Outbound, SessionHandle, SessionQueue};
use crate::server::Server;
use crate::services::offline;
use crate::services::stream_mgmt::{Detached, SmState};
use crate::services::subscription::SubKind;

/// Stanzas written per wake-up before the socket is flushed...
const WRITE_BATCH: usize = 64;
/// ...or fewer, once this many bytes are waiting.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// Why the session loop ended.
#[derive(Debug)]
enum Exit {
    /// The client closed the stream.
    Closed,
    /// The connection dropped without a close: resumable if stream management allows.
    Lost,
    /// We closed the stream with an error.
    Error,
    /// The server closed the stream on request (a newer session took this resource):
    /// what was queued for it is rescued like on any other end.
    Replaced,
    /// Another connection resumes this stream (XEP-0198): detach, then signal it.
    TakenOver(oneshot::Sender<()>),
}

/// Keeps the session registered in the router for as long as it lives. On the normal
/// way out the session ends through `end_session`; if the task unwinds instead, the
/// drop unregisters it and gives back any offline messages it had claimed.
struct Registration {
    server: Arc<Server>,
    handle: Arc<SessionHandle>,
    armed: bool,
    claimed_offline: bool,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        tracing::error!(jid = %self.handle.jid, "session task ended abnormally");
        self.server.unregister(&self.handle);
        if self.claimed_offline {
            let server = Arc::clone(&self.server);
            let handle = Arc::clone(&self.handle);
            self.server.spawn_tracked(async move {
                offline::release(&server, &handle.jid, claim_id(&handle)).await;
            });
        }
    }
}

fn claim_id(handle: &SessionHandle) -> i64 {
    i64::try_from(handle.conn_id).unwrap_or(i64::MAX)
}

pub(crate) struct Session {
    server: Arc<Server>,
    conn: Conn,
    jid: Jid,
    reg: Registration,
    queue: Option<SessionQueue>,
    sm: Option<SmState>,
    /// Entities that received directed presence from this session.
    directed: Vec<Jid>,
    /// Resumption: the client's `h`, applied before anything else.
    resume_h: Option<u32>,
    last_input: Instant,
    ping_sent: bool,
    /// Initial presence was sent: stored messages are to be written.
    offline_wanted: bool,
}

impl Session {
    pub(crate) fn new(server: Arc<Server>, conn: Conn, bound: Bound) -> Box<Self> {
        let Bound { handle, queue, .. } = bound;
        Self::build(server, conn, handle, queue, None, Vec::new(), None)
    }

    pub(crate) fn resume(server: Arc<Server>, conn: Conn, d: Detached, h: u32) -> Box<Self> {
        let Detached {
            handle,
            queue,
            sm,
            directed,
        } = d;
        Self::build(server, conn, handle, queue, Some(sm), directed, Some(h))
    }

    fn build(
        server: Arc<Server>,
        conn: Conn,
        handle: Arc<SessionHandle>,
        queue: SessionQueue,
        sm: Option<SmState>,
        directed: Vec<Jid>,
        resume_h: Option<u32>,
    ) -> Box<Self> {
        Box::new(Self {
            jid: handle.jid.clone(),
            reg: Registration {
                server: Arc::clone(&server),
                handle,
                armed: true,
                claimed_offline: false,
            },
            server,
            conn,
            queue: Some(queue),
            sm,
            directed,
            resume_h,
            last_input: Instant::now(),
            ping_sent: false,
            offline_wanted: false,
        })
    }

    /// Serve the session to its end. The session lives on the heap and the end of it
    /// runs in a boxed future of its own, so an idle session's task holds only the
    /// session loop's state and a pointer.
    pub(crate) async fn run(mut self: Box<Self>) {
        let exit = self.serve().await;
        Box::pin(self.finish(exit)).await;
    }

    /// Close the connection, then detach the session for resumption or end it.
    async fn finish(mut self: Box<Self>, exit: Exit) {
        tracing::debug!(?exit, jid = %self.jid, "session loop ended");
        self.conn.close().await;
        let server = Arc::clone(&self.server);
        let handle = Arc::clone(&self.reg.handle);
        if self.reg.claimed_offline {
            offline::release(&server, &self.jid, claim_id(&handle)).await;
        }
        let resumable = self.sm.as_ref().is_some_and(|s| s.resumable);
        let (keep, taken_over) = match exit {
            Exit::TakenOver(done) => (resumable, Some(done)),
            Exit::Lost => (resumable && !server.is_shutting_down(), None),
            _ => (false, None),
        };
        self.reg.armed = false;
        let queue = self.queue.take();
        match (keep, self.sm.take(), queue) {
            (true, Some(sm), Some(queue)) => {
                server.detach(Detached {
                    handle,
                    queue,
                    sm,
                    directed: std::mem::take(&mut self.directed),
                });
                if let Some(done) = taken_over {
                    let _ = done.send(());
                }
            }
            (_, sm, queue) => {
                let unacked = sm.map(SmState::into_unacked).unwrap_or_default();
                server
                    .end_session(&handle, queue, unacked, &self.directed)
                    .await;
            }
        }
    }

    async fn serve(&mut self) -> Exit {
        if let Some(h) = self.resume_h.take() {
            if let Some(exit) = self.resumed(h) {
                return exit;
            }
        }
        let mut shutdown = self.server.shutdown_signal();
        let idle = self.server.settings().idle_timeout();
        let Some(mut queue) = self.queue.take() else {
            return Exit::Error;
        };
        let kick = queue.kick();
        let exit = loop {
            // Stanzas the client pipelined (behind the bind request, or in one read) are
            // buffered: handle them, but only while what we owe the client fits (the
            // answers to them go into this queue).
            if let Some(exit) = self.drain_reader(&queue).await {
                break exit;
            }
            if let Err(exit) = self.flush(&kick, &mut shutdown).await {
                break exit;
            }
            let deadline = self.last_input + idle;
            // Stored messages go before live ones (they are older), a page at a time.
            let offline_ready = self.offline_wanted && !self.sm_backlogged();
            // Input waits while this session owes its client half a queue of output.
            let reading = !queue.backlogged();
            tokio::select! {
                biased;
                () = crate::server::stopping(&mut shutdown) => {
                    break self.fail(StreamError::new(Cond::SystemShutdown));
                }
                r = self.conn.read(), if reading => match r {
                    Ok(true) => {
                        self.last_input = Instant::now();
                        self.ping_sent = false;
                    }
                    Ok(false) | Err(_) => break Exit::Lost,
                },
                () = std::future::ready(()), if offline_ready => {
                    // Boxed: a page's state exists only while it is written, not in every
                    // idle session's task.
                    if let Err(exit) = Box::pin(self.offline_page(&kick, &mut shutdown)).await {
                        break exit;
                    }
                }
                out = queue.recv() => {
                    let Some(out) = out else { break Exit::Lost };
                    if let Some(exit) = self.write_outbound(out) {
                        break exit;
                    }
                    let mut n = 1;
                    while n < WRITE_BATCH && self.conn.out.len() < WRITE_BATCH_BYTES {
                        let Some(out) = queue.try_recv() else { break };
                        if let Some(exit) = self.write_outbound(out) {
                            self.queue = Some(queue);
                            return exit;
                        }
                        n += 1;
                    }
                    self.request_ack();
                }
                () = kick.kicked() => {
                    // A full queue means the client fell behind: close it (what is queued
                    // is rescued when the session ends). Otherwise a close or takeover is
                    // queued for the branch above.
                    if kick.overflowed() {
                        break self.fail(StreamError::with_text(
                            Cond::PolicyViolation,
                            "too many stanzas queued for this session",
                        ));
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    if self.ping_sent {
                        break self.fail(StreamError::new(Cond::ConnectionTimeout));
                    }
                    self.ping_sent = true;
                    self.last_input = Instant::now();
                    let ping = Element::new("iq", ns::CLIENT)
                        .with_attr("type", "get")
                        .with_attr("id", format!("ping-{}", random_id()))
                        .with_attr("from", self.jid.domain())
                        .with_attr("to", self.jid.to_string())
                        .with_child(Element::new("ping", ns::PING));
                    self.write(Arc::new(ping));
                }
            }
        };
        self.queue = Some(queue);
        exit
    }

    /// Write what is queued. A client that stops reading must not park this task: the
    /// write races the overflow signal, shutdown and the write timeout, and losing the
    /// race closes the connection (the unwritten stanzas are rescued at session end).
    async fn flush(
        &mut self,
        kick: &Kick,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Exit> {
        if self.conn.is_drained() {
            return Ok(());
        }
        let stall = tokio::time::sleep(self.server.settings().write_timeout());
        tokio::pin!(stall);
        let stuck = loop {
            tokio::select! {
                r = self.conn.flush() => return r.map_err(|_| Exit::Lost),
                () = kick.kicked() => {
                    if kick.overflowed() {
                        break "its queue overflowed";
                    }
                }
                () = crate::server::stopping(shutdown) => break "shutdown",
                () = &mut stall => break "write timeout",
            }
        };
        tracing::info!(jid = %self.jid, reason = stuck, "client is not reading; closing");
        self.server.metrics.stream_error("write-stalled");
        Err(Exit::Error)
    }

    /// Too many stanzas await acknowledgement: hold back optional output (offline pages)
    /// until the client acknowledges.
    fn sm_backlogged(&self) -> bool {
        let s = self.server.settings();
        self.sm.as_ref().is_some_and(|sm| {
            sm.unacked_len() * 2 > s.sm_max_unacked
                || sm.unacked_bytes() * 2 > s.sm_max_unacked_bytes
        })
    }

    /// Write one page of offline messages, wait until the client took it, delete it.
    async fn offline_page(
        &mut self,
        kick: &Kick,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Exit> {
        let page = match offline::claim(&self.server, &self.jid, claim_id(&self.reg.handle)).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot read offline messages");
                self.offline_wanted = false;
                return Ok(());
            }
        };
        if page.ids.is_empty() {
            self.offline_wanted = false;
            return Ok(());
        }
        self.reg.claimed_offline = true;
        for el in page.messages {
            self.server.metrics.stanza_out(StanzaKind::Message);
            self.write(Arc::new(el));
        }
        self.request_ack();
        self.flush(kick, shutdown).await?;
        offline::delivered(&self.server, &self.jid, page.ids).await;
        Ok(())
    }

    /// Close the stream with an error.
    fn fail(&mut self, err: StreamError) -> Exit {
        self.server.metrics.stream_error(err.condition.name());
        self.conn.out.push_str(&err.to_xml());
        Exit::Error
    }

    /// Write a stanza to the client, counting it for stream management.
    fn write(&mut self, el: Arc<Element>) {
        if self.put(&el) {
            if let Some(sm) = &mut self.sm {
                sm.sent(el);
            }
        }
    }

    /// Serialize an element into the output. The serializer refuses elements whose
    /// names are not XML names; none reach here from parsed input, so a refusal is a
    /// fault of the server: logged, and the element is not sent.
    fn put(&mut self, el: &Element) -> bool {
        match el.write_to(&mut self.conn.out, ns::CLIENT) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, element = %el.name.escape_debug(), "element not sent");
                false
            }
        }
    }

    fn write_outbound(&mut self, out: Outbound) -> Option<Exit> {
        match out {
            Outbound::Stanza { el, .. } => {
                self.write(el);
                let s = self.server.settings();
                if self.sm.as_ref().is_some_and(|sm| {
                    sm.unacked_len() > s.sm_max_unacked
                        || sm.unacked_bytes() > s.sm_max_unacked_bytes
                }) {
                    return Some(self.fail(StreamError::with_text(
                        Cond::PolicyViolation,
                        "too many unacknowledged stanzas",
                    )));
                }
                None
            }
            Outbound::Close(err) => {
                self.server.metrics.stream_error(err.condition.name());
                self.conn.out.push_str(&err.to_xml());
                Some(Exit::Replaced)
            }
            Outbound::Takeover(done) => {
                let err =
                    StreamError::with_text(Cond::Conflict, "the stream was resumed elsewhere");
                self.server.metrics.stream_error(err.condition.name());
                self.conn.out.push_str(&err.to_xml());
                Some(Exit::TakenOver(done))
            }
        }
    }

    /// XEP-0198: ask the client to acknowledge what was just written.
    fn request_ack(&mut self) {
        if let Some(sm) = &mut self.sm {
            if sm.unacked_len() > 0 && !sm.ack_requested {
                sm.ack_requested = true;
                self.put(&Element::new("r", ns::SM));
            }
        }
    }

    /// Finish a resumption: apply the client's `h`, confirm, and resend the rest.
    fn resumed(&mut self, h: u32) -> Option<Exit> {
        let sm = self.sm.as_mut()?;
        if sm.acked(h).is_err() {
            return Some(self.fail(StreamError::with_text(
                Cond::UndefinedCondition,
                "handled-count-too-high",
            )));
        }
        let confirm = Element::new("resumed", ns::SM)
            .with_attr("previd", sm.id.clone())
            .with_attr("h", sm.inbound.to_string());
        let resend: Vec<Arc<Element>> = sm.unacked_shared().collect();
        if !resend.is_empty() {
            sm.ack_requested = true;
        }
        self.put(&confirm);
        for el in &resend {
            self.put(el);
        }
        if !resend.is_empty() {
            self.put(&Element::new("r", ns::SM));
        }
        None
    }

    async fn drain_reader(&mut self, queue: &SessionQueue) -> Option<Exit> {
        loop {
            if queue.backlogged() {
                return None;
            }
            match self.conn.reader.next_event() {
                Ok(None) => return None,
                Ok(Some(StreamEvent::Close)) => {
                    self.conn.out.push_str("</stream:stream>");
                    return Some(Exit::Closed);
                }
                Ok(Some(StreamEvent::Open(_))) => {
                    return Some(self.fail(StreamError::new(Cond::BadFormat)));
                }
                Ok(Some(StreamEvent::Stanza(el))) => {
                    // Boxed: the handlers' state exists only while a stanza is handled,
                    // not in every idle session.
                    if let Err(err) = Box::pin(self.on_element(el)).await {
                        return Some(self.fail(err));
                    }
                }
                Err(e) => return Some(self.fail(StreamError::from(&e))),
            }
        }
    }

    async fn on_element(&mut self, el: Element) -> Result<(), StreamError> {
        if el.ns == ns::SM {
            return self.on_sm(&el);
        }
        let Some(kind) = StanzaKind::of(&el) else {
            return Err(StreamError::with_text(
                Cond::UnsupportedStanzaType,
                format!("unexpected element {}", el.name),
            ));
        };
        self.server.metrics.stanza_in(kind);
        if let Some(sm) = &mut self.sm {
            sm.received();
        }
        self.check_from(&el)?;
        let to = match el.attr("to").map(Jid::parse) {
            None => None,
            Some(Ok(j)) => Some(j),
            Some(Err(_)) => {
                if el.attr("type") != Some("error") && kind != StanzaKind::Presence {
                    let err = StanzaError::new(StanzaErrorCondition::JidMalformed);
                    self.reply(herald_translate::stanza::error_reply(&el, &err, None));
                }
                return Ok(());
            }
        };
        match kind {
            StanzaKind::Iq => self.on_iq(el, to).await,
            StanzaKind::Message => self.on_message(el, to).await,
            StanzaKind::Presence => self.on_presence(el, to).await,
        }
        Ok(())
    }

    /// RFC 6120 §8.1.2.1: the server stamps `from` with the full JID; a client claiming
    /// another address gets `invalid-from`.
    fn check_from(&self, el: &Element) -> Result<(), StreamError> {
        if let Some(from) = el.attr("from") {
            let ok = Jid::parse(from)
                .map(|f| f == self.jid || (f.resource().is_none() && f == self.jid.bare()))
                .unwrap_or(false);
            if !ok {
                return Err(StreamError::with_text(
                    Cond::InvalidFrom,
                    "from does not match the session",
                ));
            }
        }
        Ok(())
    }

    fn envelope(&self, to: Jid, el: Element) -> Option<Envelope> {
        Envelope::new(self.jid.clone(), to, el).ok()
    }

    fn on_sm(&mut self, el: &Element) -> Result<(), StreamError> {
        match el.name.as_str() {
            "enable" => {
                if self.sm.is_some() {
                    let failed = Element::new("failed", ns::SM)
                        .with_child(Element::new("unexpected-request", ns::STANZA_ERRORS));
                    self.put(&failed);
                    return Ok(());
                }
                let timeout = self.server.settings().sm_resume_timeout_secs;
                let wants = matches!(el.attr("resume"), Some("true" | "1"));
                let sm = SmState::new(random_id(), wants && timeout > 0);
                self.put(&sm.enabled_element(timeout));
                if sm.resumable {
                    let id: Arc<str> = Arc::from(sm.id.as_str());
                    self.server
                        .router
                        .update(&self.jid, self.reg.handle.conn_id, |s| s.sm_id = Some(id));
                }
                self.sm = Some(sm);
                Ok(())
            }
            "r" => {
                if let Some(h) = self.sm.as_ref().map(|sm| sm.inbound) {
                    self.put(&Element::new("a", ns::SM).with_attr("h", h.to_string()));
                }
                Ok(())
            }
            "a" => {
                let h = el.attr("h").and_then(|h| h.parse::<u32>().ok());
                match (&mut self.sm, h) {
                    (Some(sm), Some(h)) => sm.acked(h).map_err(|_| {
                        StreamError::with_text(Cond::UndefinedCondition, "handled-count-too-high")
                    }),
                    (Some(_), None) => Err(StreamError::new(Cond::BadFormat)),
                    (None, _) => Ok(()),
                }
            }
            _ => Err(StreamError::new(Cond::UnsupportedStanzaType)),
        }
    }

    fn reply(&mut self, el: Element) {
        if let Some(k) = StanzaKind::of(&el) {
            self.server.metrics.stanza_out(k);
        }
        self.write(Arc::new(el));
    }

    async fn on_iq(&mut self, mut iq: Element, to: Option<Jid>) {
        let own = to.as_ref().is_none_or(|t| *t == self.jid.bare());
        if own {
            iq.set_attr("from", self.jid.to_string());
            let server = Arc::clone(&self.server);
            if let Some(mut reply) = server.own_iq(&iq, &self.jid, self.reg.handle.conn_id).await {
                reply.remove_attr("from");
                self.reply(reply);
            }
            return;
        }
        let Some(to) = to else { return };
        let is_request = matches!(iq.attr("type"), Some("get" | "set"));
        if is_request && self.server.blocks.has_blocked(&self.jid, &to).await {
            self.refuse_blocked(&iq);
            return;
        }
        if let Some(env) = self.envelope(to, iq) {
            self.server.route(env).await;
        }
    }

    /// XEP-0191 §3.3: stanzas to an entity the user blocked are refused, not routed.
    fn refuse_blocked(&mut self, stanza: &Element) {
        let err = StanzaError::new(StanzaErrorCondition::NotAcceptable)
            .with_app(Element::new("blocked", ns::BLOCKING_ERRORS));
        let reply = herald_translate::stanza::error_reply(stanza, &err, None);
        self.reply(reply);
    }

    async fn on_message(&mut self, msg: Element, to: Option<Jid>) {
        let to = to.unwrap_or_else(|| self.jid.bare());
        if msg.attr("type") != Some("error") && self.server.blocks.has_blocked(&self.jid, &to).await
        {
            self.refuse_blocked(&msg);
            return;
        }
        let Some(env) = self.envelope(to, msg) else {
            return;
        };
        self.server.messages.carbon_sent(&env);
        self.server.route(env).await;
    }

    async fn on_presence(&mut self, p: Element, to: Option<Jid>) {
        let ptype = p.attr("type").map(str::to_string);
        match (to, ptype.as_deref()) {
            (None, None | Some("unavailable")) => {
                let server = Arc::clone(&self.server);
                let done = server
                    .presence_broadcast(&self.jid, self.reg.handle.conn_id, p, &self.directed)
                    .await;
                if ptype.is_some() {
                    self.directed.clear();
                }
                if done.wants_offline {
                    self.offline_wanted = true;
                }
            }
            (Some(to), Some(t)) if SubKind::parse(t).is_some() => {
                let kind = SubKind::parse(t).unwrap_or(SubKind::Subscribe);
                if let Some(env) = self.envelope(to, p) {
                    let server = Arc::clone(&self.server);
                    server.outbound_subscription(env, kind).await;
                }
            }
            (Some(to), None | Some("unavailable")) => {
                if self.server.blocks.has_blocked(&self.jid, &to).await {
                    return;
                }
                if ptype.is_none() {
                    if !self.directed.contains(&to) && self.directed.len() < 1000 {
                        self.directed.push(to.clone());
                    }
                } else {
                    self.directed.retain(|d| *d != to);
                }
                if let Some(env) = self.envelope(to, p) {
                    self.server.route(env).await;
                }
            }
            (Some(to), Some("error")) => {
                if let Some(env) = self.envelope(to, p) {
                    self.server.route(env).await;
                }
            }
            _ => {}
        }
    }
}
