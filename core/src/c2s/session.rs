//! A bound client session: reads stanzas from the client, stamps and checks their
//! addresses, hands them to the IM layer, and writes what the core queues for it.

use std::sync::Arc;

use herald_translate::{
    ns, Element, Jid, StanzaError, StanzaErrorCondition, StanzaKind, StreamError,
    StreamErrorCondition as Cond, StreamEvent,
};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

use super::conn::Conn;
use super::sm::{Detached, SmState};
use crate::im::subscription::SubKind;
use crate::router::Outbound;
use crate::server::Server;

/// Stanzas written per wake-up before the socket is flushed.
const WRITE_BATCH: usize = 64;

/// Why the session loop ended.
#[derive(Debug)]
enum Exit {
    /// The client closed the stream.
    Closed,
    /// The connection dropped without a close: resumable if stream management allows.
    Lost,
    /// We closed the stream with an error.
    Error,
    /// Another connection took over this resource.
    Replaced,
    /// Another connection resumes this stream (XEP-0198): detach, then signal it.
    TakenOver(oneshot::Sender<()>),
}

pub(crate) struct Session {
    server: Arc<Server>,
    conn: Conn,
    jid: Jid,
    conn_id: u64,
    rx: mpsc::Receiver<Outbound>,
    kick: Arc<Notify>,
    sm: Option<SmState>,
    /// Entities that received directed presence from this session.
    directed: Vec<Jid>,
    /// Resumption: the client's `h`, applied before anything else.
    resume_h: Option<u32>,
    last_input: Instant,
    ping_sent: bool,
}

impl Session {
    pub(crate) fn new(
        server: Arc<Server>,
        conn: Conn,
        jid: Jid,
        conn_id: u64,
        rx: mpsc::Receiver<Outbound>,
        kick: Arc<Notify>,
    ) -> Self {
        Self {
            server,
            conn,
            jid,
            conn_id,
            rx,
            kick,
            sm: None,
            directed: Vec::new(),
            resume_h: None,
            last_input: Instant::now(),
            ping_sent: false,
        }
    }

    pub(crate) fn resume(server: Arc<Server>, conn: Conn, d: Detached, h: u32) -> Self {
        Self {
            server,
            conn,
            jid: d.jid,
            conn_id: d.conn_id,
            rx: d.rx,
            kick: d.kick,
            sm: Some(d.sm),
            directed: d.directed,
            resume_h: Some(h),
            last_input: Instant::now(),
            ping_sent: false,
        }
    }

    pub(crate) async fn run(mut self) {
        let exit = self.serve().await;
        tracing::debug!(?exit, jid = %self.jid, "session loop ended");
        self.conn.close().await;
        let resumable = self.sm.as_ref().is_some_and(|s| s.resumable);
        let replaced = matches!(exit, Exit::Replaced);
        let (keep, taken_over) = match exit {
            Exit::TakenOver(done) => (resumable, Some(done)),
            Exit::Lost => (resumable && !self.server.is_shutting_down(), None),
            _ => (false, None),
        };
        if keep {
            let Self {
                server,
                jid,
                conn_id,
                rx,
                kick,
                sm,
                directed,
                ..
            } = self;
            if let Some(sm) = sm {
                server.detach(Detached {
                    jid,
                    conn_id,
                    rx,
                    kick,
                    sm,
                    directed,
                });
            }
            if let Some(done) = taken_over {
                let _ = done.send(());
            }
            return;
        }
        let unacked = self.sm.take().map(|s| s.unacked).unwrap_or_default();
        let rx = (!replaced).then_some(self.rx);
        Box::pin(
            self.server
                .end_session(&self.jid, self.conn_id, rx, unacked, &self.directed),
        )
        .await;
    }

    async fn serve(&mut self) -> Exit {
        if let Some(h) = self.resume_h.take() {
            if let Some(exit) = self.resumed(h) {
                return exit;
            }
        }
        let mut shutdown = self.server.shutdown_signal();
        let idle = self.server.settings.idle_timeout();
        loop {
            // Stanzas the client pipelined behind the bind request are already buffered.
            if let Some(exit) = self.drain_reader().await {
                return exit;
            }
            if let Err(exit) = self.flush(&mut shutdown).await {
                return exit;
            }
            let deadline = self.last_input + idle;
            tokio::select! {
                r = self.conn.read() => match r {
                    Ok(true) => {
                        self.last_input = Instant::now();
                        self.ping_sent = false;
                    }
                    Ok(false) | Err(_) => return Exit::Lost,
                },
                out = self.rx.recv() => {
                    let Some(out) = out else { return Exit::Lost };
                    if let Some(exit) = self.write_outbound(out) {
                        return exit;
                    }
                    for _ in 1..WRITE_BATCH {
                        match self.rx.try_recv() {
                            Ok(out) => {
                                if let Some(exit) = self.write_outbound(out) {
                                    return exit;
                                }
                            }
                            Err(_) => break,
                        }
                    }
                    self.request_ack();
                }
                () = self.kick.notified() => {
                    // A full queue means the client fell behind: close it (what is queued
                    // is rescued when the session ends). Otherwise the kick announced a
                    // replacement, whose `conflict` is queued for the branch above.
                    if self.rx.capacity() == 0 {
                        return self.fail(StreamError::with_text(
                            Cond::PolicyViolation,
                            "too many stanzas queued for this session",
                        ));
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    if self.ping_sent {
                        return self.fail(StreamError::new(Cond::ConnectionTimeout));
                    }
                    self.ping_sent = true;
                    self.last_input = Instant::now();
                    let ping = Element::new("iq", ns::CLIENT)
                        .with_attr("type", "get")
                        .with_attr("id", format!("ping-{}", herald_translate::negotiation::random_id()))
                        .with_attr("from", self.jid.domain())
                        .with_attr("to", self.jid.to_string())
                        .with_child(Element::new("ping", ns::PING));
                    self.write(&ping);
                }
                () = crate::server::stopping(&mut shutdown) => {
                    return self.fail(StreamError::new(Cond::SystemShutdown));
                }
            }
        }
    }

    /// Write what is queued. A client that stops reading must not park this task: the
    /// write races the overflow signal, shutdown and the idle timeout, and losing the
    /// race closes the connection (the unwritten stanzas are rescued at session end).
    async fn flush(
        &mut self,
        shutdown: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), Exit> {
        let idle = self.server.settings.idle_timeout();
        let stuck = tokio::select! {
            r = self.conn.flush() => return r.map_err(|_| Exit::Lost),
            () = self.kick.notified() => "its queue overflowed",
            () = crate::server::stopping(shutdown) => "shutdown",
            () = tokio::time::sleep(idle) => "write timeout",
        };
        tracing::info!(jid = %self.jid, reason = stuck, "client is not reading; closing");
        self.server.metrics.stream_error("write-stalled");
        Err(Exit::Error)
    }

    /// Close the stream with an error.
    fn fail(&mut self, err: StreamError) -> Exit {
        self.server.metrics.stream_error(err.condition.name());
        self.conn.out.push_str(&err.to_xml());
        Exit::Error
    }

    /// Write a stanza to the client, counting it for stream management.
    fn write(&mut self, el: &Element) {
        if let Some(sm) = &mut self.sm {
            sm.sent(el);
        }
        el.write_to(&mut self.conn.out, ns::CLIENT);
    }

    fn write_outbound(&mut self, out: Outbound) -> Option<Exit> {
        match out {
            Outbound::Stanza(el) => {
                self.write(&el);
                let max = self.server.settings.sm_max_unacked;
                if self.sm.as_ref().is_some_and(|s| s.unacked.len() > max) {
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
            if !sm.unacked.is_empty() && !sm.ack_requested {
                sm.ack_requested = true;
                Element::new("r", ns::SM).write_to(&mut self.conn.out, ns::CLIENT);
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
        confirm.write_to(&mut self.conn.out, ns::CLIENT);
        for el in &sm.unacked {
            el.write_to(&mut self.conn.out, ns::CLIENT);
        }
        if !sm.unacked.is_empty() {
            sm.ack_requested = true;
            Element::new("r", ns::SM).write_to(&mut self.conn.out, ns::CLIENT);
        }
        None
    }

    async fn drain_reader(&mut self) -> Option<Exit> {
        loop {
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
        self.server.metrics.stanza_in(kind.name());
        if let Some(sm) = &mut self.sm {
            sm.received();
        }
        let el = self.stamp(el)?;
        match kind {
            StanzaKind::Iq => self.on_iq(el).await,
            StanzaKind::Message => self.on_message(el).await,
            StanzaKind::Presence => self.on_presence(el).await,
        }
        Ok(())
    }

    /// RFC 6120 §8.1.2.1: the server stamps `from` with the full JID; a client claiming
    /// another address gets `invalid-from`.
    fn stamp(&self, mut el: Element) -> Result<Element, StreamError> {
        if let Some(from) = el.attr("from") {
            let ok = Jid::parse(from)
                .map(|f| f == self.jid || f == self.jid.bare())
                .unwrap_or(false);
            if !ok {
                return Err(StreamError::with_text(
                    Cond::InvalidFrom,
                    "from does not match the session",
                ));
            }
        }
        el.set_attr("from", self.jid.to_string());
        Ok(el)
    }

    fn on_sm(&mut self, el: &Element) -> Result<(), StreamError> {
        match el.name.as_str() {
            "enable" => {
                if self.sm.is_some() {
                    let failed = Element::new("failed", ns::SM)
                        .with_child(Element::new("unexpected-request", ns::STANZA_ERRORS));
                    failed.write_to(&mut self.conn.out, ns::CLIENT);
                    return Ok(());
                }
                let timeout = self.server.settings.sm_resume_timeout_secs;
                let wants = matches!(el.attr("resume"), Some("true" | "1"));
                let sm = SmState::new(wants && timeout > 0);
                sm.enabled_element(timeout)
                    .write_to(&mut self.conn.out, ns::CLIENT);
                if sm.resumable {
                    let id = sm.id.clone();
                    self.server
                        .router
                        .update(&self.jid, self.conn_id, |s| s.sm_id = Some(id));
                }
                self.sm = Some(sm);
                Ok(())
            }
            "r" => {
                if let Some(sm) = &self.sm {
                    Element::new("a", ns::SM)
                        .with_attr("h", sm.inbound.to_string())
                        .write_to(&mut self.conn.out, ns::CLIENT);
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
        self.server.count_out(&el);
        self.write(&el);
    }

    fn parse_to(&mut self, el: &Element) -> Result<Option<Jid>, ()> {
        match el.attr("to").map(Jid::parse) {
            None => Ok(None),
            Some(Ok(j)) => Ok(Some(j)),
            Some(Err(_)) => {
                if el.attr("type") != Some("error") && el.name != "presence" {
                    let err = StanzaError::new(StanzaErrorCondition::JidMalformed);
                    let reply = herald_translate::stanza::error_reply(el, &err, None);
                    self.reply(reply);
                }
                Err(())
            }
        }
    }

    async fn on_iq(&mut self, iq: Element) {
        let Ok(to) = self.parse_to(&iq) else { return };
        let own = to.as_ref().is_none_or(|t| *t == self.jid.bare());
        if own {
            let server = Arc::clone(&self.server);
            if let Some(mut reply) = server.own_iq(&iq, &self.jid, self.conn_id).await {
                reply.remove_attr("from");
                self.reply(reply);
            }
            return;
        }
        let is_request = matches!(iq.attr("type"), Some("get" | "set"));
        if let Some(to) = to {
            if is_request && self.server.has_blocked(&self.jid, &to).await {
                self.refuse_blocked(&iq);
                return;
            }
        }
        self.server.route(iq).await;
    }

    /// XEP-0191 §3.3: stanzas to an entity the user blocked are refused, not routed.
    fn refuse_blocked(&mut self, stanza: &Element) {
        let err = StanzaError::new(StanzaErrorCondition::NotAcceptable)
            .with_app(Element::new("blocked", ns::BLOCKING_ERRORS));
        let reply = herald_translate::stanza::error_reply(stanza, &err, None);
        self.reply(reply);
    }

    async fn on_message(&mut self, mut msg: Element) {
        let Ok(to) = self.parse_to(&msg) else { return };
        let to = to.unwrap_or_else(|| self.jid.bare());
        msg.set_attr("to", to.to_string());
        if msg.attr("type") != Some("error") && self.server.has_blocked(&self.jid, &to).await {
            self.refuse_blocked(&msg);
            return;
        }
        self.server.carbon_sent(&msg, &self.jid);
        self.server.route(msg).await;
    }

    async fn on_presence(&mut self, p: Element) {
        let Ok(to) = self.parse_to(&p) else { return };
        let ptype = p.attr("type").map(str::to_string);
        match (to, ptype.as_deref()) {
            (None, None | Some("unavailable")) => {
                let server = Arc::clone(&self.server);
                server
                    .presence_broadcast(&self.jid, self.conn_id, p, &self.directed)
                    .await;
                if ptype.is_some() {
                    self.directed.clear();
                }
            }
            (Some(to), Some(t)) if SubKind::parse(t).is_some() => {
                let kind = SubKind::parse(t).unwrap_or(SubKind::Subscribe);
                let server = Arc::clone(&self.server);
                server.outbound_subscription(p, kind, &self.jid, &to).await;
            }
            (Some(to), None | Some("unavailable")) => {
                if self.server.has_blocked(&self.jid, &to).await {
                    return;
                }
                if ptype.is_none() {
                    if !self.directed.contains(&to) && self.directed.len() < 1000 {
                        self.directed.push(to);
                    }
                } else {
                    self.directed.retain(|d| *d != to);
                }
                self.server.route(p).await;
            }
            (Some(_), Some("error")) => self.server.route(p).await,
            _ => {}
        }
    }
}
