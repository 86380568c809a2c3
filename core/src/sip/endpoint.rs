//! The SIP endpoint: one task that owns the sans-IO `TransactionTable` and drives it
//! with what the transports received, what the services answer and send, and its
//! timers. It is the only place transactions change; services talk to it through
//! [`EndpointTx`] and never see a socket.
//!
//! Before a new request reaches a service the endpoint stamps its top Via with
//! `received`/`rport` (RFC 3261 §18.2.1, RFC 3581), applies the §8.2 checks
//! (`check_request`: 400, 416, 420), Max-Forwards (483) and the per-IP request rate
//! (503 with Retry-After).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use herald_translate::sip::transaction::{
    Action, Remote, TableConfig, TransactionId, TransactionKey, TransactionTable,
};
use herald_translate::sip::{
    check_request, error_response, response_for, HeaderName, Message, Method, Policy,
    RequestEssentials, Via,
};
use rand::SeedableRng;
use tokio::sync::{mpsc, oneshot, watch};

use super::transport::Transports;
use crate::clock::{self, KeyedLimiter};
use crate::server::stopping;

/// What the endpoint is told.
#[derive(Debug)]
pub(crate) enum Input {
    /// A parsed message from a transport.
    Received { message: Message, from: Remote },
    /// A service's final (or provisional) response to server transaction `id`.
    Respond {
        id: TransactionId,
        response: Message,
    },
    /// A service sends a request (no Via yet: the endpoint adds ours). The final
    /// response, or the 408/503 the transaction makes up, comes back on `reply`.
    Request {
        request: Message,
        to: Remote,
        reply: Option<oneshot::Sender<Message>>,
    },
    /// The transport could not carry transaction `id`'s message.
    TransportError { id: TransactionId },
}

/// The endpoint's inbox.
pub(crate) type EndpointTx = mpsc::Sender<Input>;

/// The transaction user: what the endpoint hands new requests to. It answers each
/// with [`Input::Respond`], from wherever it likes (usually a task of its own).
pub(crate) trait Tu: Send + Sync + 'static {
    fn request(&self, id: TransactionId, from: Remote, request: Message);
}

/// Option tags Herald supports (none it would require of a UA).
pub(crate) const SUPPORTED: &[&str] = &[];
/// Request-URI schemes handled.
const SCHEMES: &[&str] = &["sip", "sips"];

/// Inbox capacity: beyond it UDP datagrams are dropped (the sender retransmits) and
/// stream readers wait.
pub(crate) const INBOX: usize = 8192;

/// Inputs taken from the inbox at once.
const BATCH: usize = 64;

/// Run the endpoint until shutdown.
pub(crate) async fn run(
    mut inbox: mpsc::Receiver<Input>,
    me: EndpointTx,
    transports: Arc<Transports>,
    tu: Arc<dyn Tu>,
    config: TableConfig,
    rate: Arc<KeyedLimiter<IpAddr>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut table = TransactionTable::new(config, rand::rngs::StdRng::from_os_rng());
    let mut waiting: HashMap<TransactionId, oneshot::Sender<Message>> = HashMap::new();
    // Under load many inputs wait at once: take them together, one wake-up for all.
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let deadline = table.poll_timeout().map(tokio::time::Instant::from_std);
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = stopping(&mut shutdown) => return,
            () = timer => table.handle_timeout(clock::now()),
            n = inbox.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    return;
                }
                for input in batch.drain(..) {
                    on_input(&mut table, &mut waiting, &transports, &me, input);
                }
            }
        }
        while let Some(action) = table.poll_action() {
            match action {
                Action::Send { id, to, message } => {
                    if transports.send(to, message.to_bytes(), id, &me).is_err() {
                        if let Some(id) = id {
                            let _ = table.transport_error(id);
                        }
                    }
                }
                Action::Request { id, from, request } => {
                    if let Some(answer) = precheck(&request, from, &rate) {
                        let _ = table.respond(id, answer, clock::now());
                    } else {
                        tu.request(id, from, request);
                    }
                }
                Action::Response { id, response } => {
                    let is_final = response.status_line().is_some_and(|s| s.code >= 200);
                    if is_final {
                        if let Some(reply) = waiting.remove(&id) {
                            let _ = reply.send(response);
                        }
                    }
                }
                Action::Terminated { id } => {
                    waiting.remove(&id);
                }
                Action::Cancelled { .. } | Action::Stray { .. } => {}
            }
        }
    }
}

fn on_input(
    table: &mut TransactionTable,
    waiting: &mut HashMap<TransactionId, oneshot::Sender<Message>>,
    transports: &Arc<Transports>,
    me: &EndpointTx,
    input: Input,
) {
    let now = clock::now();
    match input {
        Input::Received { mut message, from } => {
            if message.is_request() {
                stamp_received(&mut message, from);
            }
            // A request whose transaction key cannot be read is answered here,
            // statelessly; everything else moves into the table without a copy.
            if message.is_request() {
                if let Err(err) = receivable(&message) {
                    tracing::debug!(error = %err, peer = %from.addr, "SIP request refused by the transaction layer");
                    let is_ack = message
                        .request_line()
                        .is_some_and(|l| l.method == Method::Ack);
                    if !is_ack {
                        let req = err
                            .request
                            .as_deref()
                            .cloned()
                            .unwrap_or_else(|| RequestEssentials::from_message(&message));
                        let answer = error_response(&req, &err.kind, "");
                        let _ = transports.send(from, answer.to_bytes(), None, me);
                    }
                    return;
                }
            }
            if let Err(e) = table.receive(message, from, now) {
                tracing::debug!(error = %e, peer = %from.addr, "SIP message refused by the transaction layer");
            }
        }
        Input::Respond { id, response } => {
            if let Err(e) = table.respond(id, response, now) {
                tracing::debug!(error = %e, ?id, "SIP response not sent");
            }
        }
        Input::Request {
            mut request,
            to,
            reply,
        } => {
            let branch = table.new_branch();
            let Some(local) = transports.local_addr(to.transport) else {
                return;
            };
            let via = format!(
                "SIP/2.0/{} {};branch={branch};rport",
                to.transport.via_name(),
                host_port(local)
            );
            request
                .headers
                .insert(0, herald_translate::sip::Header::new(HeaderName::Via, via));
            match table.send_request(request, to, now) {
                Ok(id) => {
                    if let Some(reply) = reply {
                        waiting.insert(id, reply);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "SIP request not sent"),
            }
        }
        Input::TransportError { id } => {
            let _ = table.transport_error(id);
        }
    }
}

/// What the transaction table needs to read in a request before it takes it: its key
/// (and, for a CANCEL, its INVITE's), and the headers every response copies.
fn receivable(request: &Message) -> Result<(), herald_translate::sip::SipError> {
    TransactionKey::server(request)?;
    request.call_id()?;
    request.cseq()?;
    request.from()?;
    request.to()?;
    if request
        .request_line()
        .is_some_and(|l| l.method == Method::Cancel)
    {
        TransactionKey::server_with(request, Method::Invite)?;
    }
    Ok(())
}

/// `host:port` with IPv6 in brackets.
pub(crate) fn host_port(addr: std::net::SocketAddr) -> String {
    match addr {
        std::net::SocketAddr::V4(a) => a.to_string(),
        std::net::SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// RFC 3261 §18.2.1 and RFC 3581 §4: the top Via gets `received` when its sent-by is
/// not the source address, and an empty `rport` gets the source port.
pub(crate) fn stamp_received(message: &mut Message, from: Remote) {
    let Some(header) = message
        .headers
        .iter_mut()
        .find(|h| h.name == HeaderName::Via)
    else {
        return;
    };
    let Ok(mut vias) = Via::parse_list(&header.value) else {
        return;
    };
    let Some(top) = vias.first_mut() else { return };
    let src_ip = from.addr.ip();
    let wants_rport = matches!(top.rport(), Some(None));
    let sent_by_ip = top
        .host
        .to_string()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    let needs_received = wants_rport || sent_by_ip != Some(src_ip);
    if !needs_received {
        return;
    }
    top.params.retain(|p| {
        !(p.name.eq_ignore_ascii_case("received")
            || wants_rport && p.name.eq_ignore_ascii_case("rport"))
    });
    top.params.push(herald_translate::sip::Param::new(
        "received",
        Some(&src_ip.to_string()),
    ));
    if wants_rport {
        top.params.push(herald_translate::sip::Param::new(
            "rport",
            Some(&from.addr.port().to_string()),
        ));
    }
    header.value = vias
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
}

/// Answers a new request gets before any service sees it, if any.
fn precheck(request: &Message, from: Remote, rate: &KeyedLimiter<IpAddr>) -> Option<Message> {
    let req = RequestEssentials::from_message(request);
    if rate.check_key(&from.addr.ip()).is_err() {
        let mut answer = response_for(
            &req,
            503,
            "Service Unavailable: request rate from this address",
            "",
        );
        answer.push_header(HeaderName::Other("Retry-After".into()), "5");
        return Some(answer);
    }
    let policy = Policy {
        schemes: SCHEMES,
        extensions: SUPPORTED,
        proxy: false,
    };
    if let Err(e) = check_request(request, &policy) {
        return Some(error_response(&req, &e.kind, ""));
    }
    if let Err(e) = request.cseq().and_then(|c| {
        let method = request.request_line().map(|l| &l.method);
        if Some(&c.method) == method {
            Ok(())
        } else {
            Err(herald_translate::sip::SipError::bad(
                "CSeq method does not match the request",
            ))
        }
    }) {
        return Some(error_response(&req, &e.kind, ""));
    }
    match request.max_forwards() {
        Ok(Some(0))
            if request
                .request_line()
                .is_some_and(|l| l.method != Method::Options) =>
        {
            Some(response_for(&req, 483, "Too Many Hops", ""))
        }
        Err(e) => Some(error_response(&req, &e.kind, "")),
        _ => None,
    }
}
