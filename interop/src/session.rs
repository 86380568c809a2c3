//! One simulated user: logs in, then answers the server (pings, roster pushes,
//! subscription requests), sends what the coordinator asks and measures what arrives.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_translate::{ns, Element, StreamEvent};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use crate::stats::Stats;
use crate::xmpp::{login, roster_items, stream_error_condition, LoginParams, RosterItem};

/// Commands queued per session before the coordinator's sends are skipped.
pub(crate) const CMD_QUEUE: usize = 256;
/// How long a closing session waits for the server's `</stream:stream>`.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// What the coordinator asks a session to do.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// A chat message to this bare JID, stamped with the send time.
    Chat { to: String },
    /// A presence change: available or away.
    Presence { away: bool },
    /// Subscription requests to these bare JIDs.
    Subscribe { to: Vec<String> },
    /// A fresh roster get, answered with [`Event::Roster`].
    RosterGet,
    /// Close the stream.
    Close,
}

/// What a session tells the coordinator.
#[derive(Debug)]
pub(crate) enum Event {
    Up {
        idx: u32,
        tx: mpsc::Sender<Cmd>,
        roster: Vec<RosterItem>,
        login: Duration,
    },
    Failed {
        why: String,
    },
    Dropped {
        idx: u32,
        why: String,
    },
    Roster {
        idx: u32,
        items: Vec<RosterItem>,
    },
    Closed {
        idx: u32,
    },
}

/// Read-only state shared by every session of the process.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) stats: Arc<Stats>,
    /// Send and receive times are measured from here (same process, monotonic clock).
    pub(crate) epoch: Instant,
    /// Marks this run's messages, so older ones (e.g. offline messages) are not counted.
    pub(crate) run_id: String,
    pub(crate) padding: String,
}

/// Logs in and runs the session until it is closed or dropped; every outcome is reported.
pub(crate) async fn run(
    idx: u32,
    params: LoginParams,
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<Event>,
    login_timeout: Duration,
    permit: OwnedSemaphorePermit,
) {
    let started = Instant::now();
    let result = tokio::time::timeout(login_timeout, login(&params)).await;
    drop(permit);
    let session = match result {
        Err(_) => {
            let _ = events.send(Event::Failed {
                why: "timeout: login not complete".into(),
            });
            return;
        }
        Ok(Err(e)) => {
            let _ = events.send(Event::Failed {
                why: format!("{}: {}", e.stage.name(), e.reason),
            });
            return;
        }
        Ok(Ok(s)) => s,
    };
    let (tx, rx) = mpsc::channel(CMD_QUEUE);
    let _ = events.send(Event::Up {
        idx,
        tx,
        roster: session.roster,
        login: started.elapsed(),
    });
    let mut live = Live {
        idx,
        own_bare: bare(&session.jid).to_string(),
        shared,
        events: events.clone(),
        out: String::with_capacity(1024),
        roster_queries: 0,
    };
    let outcome = live.run(session.conn, rx).await;
    let _ = events.send(match outcome {
        Ok(()) => Event::Closed { idx },
        Err(why) => Event::Dropped { idx, why },
    });
}

fn bare(jid: &str) -> &str {
    jid.split('/').next().unwrap_or(jid)
}

/// Escapes text for an attribute value or character data.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    herald_translate::xml::escape(&mut out, s, true);
    out
}

struct Live {
    idx: u32,
    own_bare: String,
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<Event>,
    out: String,
    roster_queries: u64,
}

type TlsConn = crate::xmpp::Conn<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

impl Live {
    async fn run(&mut self, mut conn: TlsConn, mut rx: mpsc::Receiver<Cmd>) -> Result<(), String> {
        let mut closing: Option<tokio::time::Instant> = None;
        let result = loop {
            let close_at = closing.unwrap_or_else(|| tokio::time::Instant::now() + CLOSE_WAIT);
            tokio::select! {
                cmd = rx.recv(), if closing.is_none() => {
                    let mut next = cmd;
                    // Batch whatever is queued into one write.
                    loop {
                        match next {
                            None | Some(Cmd::Close) => {
                                self.out.push_str("</stream:stream>");
                                closing = Some(tokio::time::Instant::now() + CLOSE_WAIT);
                                break;
                            }
                            Some(c) => self.command(c),
                        }
                        match rx.try_recv() {
                            Ok(c) => next = Some(c),
                            Err(_) => break,
                        }
                    }
                }
                r = conn.read_some() => {
                    match r {
                        Ok(0) => break if closing.is_some() { Ok(()) } else {
                            Err("connection closed by server".to_string())
                        },
                        Err(e) => break if closing.is_some() { Ok(()) } else {
                            Err(format!("read: {}", e.kind()))
                        },
                        Ok(_) => {}
                    }
                    match self.drain_events(&mut conn, closing.is_some()) {
                        Ok(true) => {}
                        Ok(false) => break Ok(()),
                        Err(e) => break Err(e),
                    }
                }
                () = tokio::time::sleep_until(close_at), if closing.is_some() => break Ok(()),
            }
            if !self.out.is_empty() {
                if let Err(e) = conn.io.write_all(self.out.as_bytes()).await {
                    break if closing.is_some() {
                        Ok(())
                    } else {
                        Err(format!("write: {}", e.kind()))
                    };
                }
                self.out.clear();
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), conn.io.shutdown()).await;
        result
    }

    fn command(&mut self, cmd: Cmd) {
        let stats = &self.shared.stats;
        match cmd {
            Cmd::Chat { to } => {
                let seq = stats.next_seq.fetch_add(1, Ordering::Relaxed);
                let t_us = self.shared.epoch.elapsed().as_micros();
                let _ = write!(
                    self.out,
                    "<message type='chat' to='{to}' id='m{seq}'><body>lg1 {} {seq} {t_us}{}</body></message>",
                    self.shared.run_id, self.shared.padding
                );
                Stats::add(&stats.msgs_sent, 1);
            }
            Cmd::Presence { away } => {
                if away {
                    self.out.push_str(
                        "<presence><show>away</show><status>benchmark</status></presence>",
                    );
                } else {
                    self.out.push_str("<presence/>");
                }
                Stats::add(&stats.presence_sent, 1);
            }
            Cmd::Subscribe { to } => {
                for jid in to {
                    let _ = write!(self.out, "<presence type='subscribe' to='{jid}'/>");
                    Stats::add(&stats.subscribe_sent, 1);
                }
            }
            Cmd::RosterGet => {
                self.roster_queries += 1;
                let _ = write!(
                    self.out,
                    "<iq type='get' id='rq{}'><query xmlns='{}'/></iq>",
                    self.roster_queries,
                    ns::ROSTER
                );
            }
            Cmd::Close => {}
        }
    }

    /// Handles every complete event; false once the server closed the stream.
    fn drain_events(&mut self, conn: &mut TlsConn, closing: bool) -> Result<bool, String> {
        loop {
            match conn.reader.next_event() {
                Ok(None) => return Ok(true),
                Ok(Some(StreamEvent::Stanza(el))) => self.stanza(&el)?,
                Ok(Some(StreamEvent::Close)) => {
                    return if closing {
                        Ok(false)
                    } else {
                        Err("stream closed by server".into())
                    }
                }
                Ok(Some(StreamEvent::Open(_))) => return Err("unexpected stream header".into()),
                Err(e) => return Err(format!("xml: {e}")),
            }
        }
    }

    fn stanza(&mut self, el: &Element) -> Result<(), String> {
        Stats::add(&self.shared.stats.stanzas_in, 1);
        if el.is("error", ns::STREAM) {
            return Err(format!("stream error: {}", stream_error_condition(el)));
        }
        if el.ns != ns::CLIENT {
            return Ok(());
        }
        match el.name.as_str() {
            "message" => self.message(el),
            "presence" => self.presence(el),
            "iq" => self.iq(el),
            _ => {}
        }
        Ok(())
    }

    fn message(&mut self, el: &Element) {
        let stats = &self.shared.stats;
        if el.attr("type") == Some("error") {
            Stats::add(&stats.msgs_error, 1);
            return;
        }
        let Some(body) = el.child("body", ns::CLIENT) else {
            return;
        };
        let text = body.text();
        let mut parts = text.split(' ');
        if parts.next() != Some("lg1") {
            return;
        }
        let (Some(run), Some(seq), Some(t_us)) = (parts.next(), parts.next(), parts.next()) else {
            return;
        };
        if run != self.shared.run_id {
            Stats::add(&stats.msgs_stale, 1);
            return;
        }
        let (Ok(seq), Ok(t_us)) = (seq.parse::<u64>(), t_us.parse::<u64>()) else {
            return;
        };
        let sent = Duration::from_micros(t_us);
        let latency = self.shared.epoch.elapsed().saturating_sub(sent);
        stats.message_received(seq, latency);
    }

    fn presence(&mut self, el: &Element) {
        let stats = &self.shared.stats;
        let from = el.attr("from").unwrap_or_default();
        let from_bare = bare(from);
        match el.attr("type") {
            None | Some("unavailable")
                if !from_bare.is_empty()
                    && from_bare != self.own_bare
                    && stats.counting.load(Ordering::Relaxed) =>
            {
                Stats::add(&stats.presence_received, 1);
            }
            Some("subscribe") if !from_bare.is_empty() => {
                let _ = write!(
                    self.out,
                    "<presence type='subscribed' to='{}'/>",
                    esc(from_bare)
                );
                Stats::add(&stats.subscribe_approved, 1);
            }
            _ => {}
        }
    }

    fn iq(&mut self, el: &Element) {
        let id = esc(el.attr("id").unwrap_or_default());
        let to = el
            .attr("from")
            .map(|f| format!(" to='{}'", esc(f)))
            .unwrap_or_default();
        match el.attr("type") {
            Some("set") if el.has_child("query", ns::ROSTER) => {
                Stats::add(&self.shared.stats.roster_pushes, 1);
                let _ = write!(self.out, "<iq type='result' id='{id}'{to}/>");
            }
            Some("get") if el.has_child("ping", ns::PING) => {
                let _ = write!(self.out, "<iq type='result' id='{id}'{to}/>");
            }
            Some("get" | "set") => {
                let _ = write!(
                    self.out,
                    "<iq type='error' id='{id}'{to}><error type='cancel'><service-unavailable xmlns='{}'/></error></iq>",
                    ns::STANZA_ERRORS
                );
            }
            Some("result") if el.attr("id").is_some_and(|i| i.starts_with("rq")) => {
                let items = el
                    .child("query", ns::ROSTER)
                    .map(roster_items)
                    .unwrap_or_default();
                let _ = self.events.send(Event::Roster {
                    idx: self.idx,
                    items,
                });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_bare() {
        assert_eq!(esc("a'b<c>&\""), "a&apos;b&lt;c&gt;&amp;&quot;");
        assert_eq!(bare("u@d/r"), "u@d");
        assert_eq!(bare("u@d"), "u@d");
    }
}
