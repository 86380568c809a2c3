//! The transaction layer on virtual time: messages written by hand or carried between
//! two tables by a wire that drops, duplicates and delays, timers fired by moving
//! `now` to `poll_timeout`.

mod client;
mod invite;
mod props;
mod server;
mod table;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::sip::{parse_datagram, response_for, Limits, RequestEssentials, RequestLine, StartLine};

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(super) fn remote(port: u16, transport: Transport) -> Remote {
    Remote {
        addr: SocketAddr::from(([192, 0, 2, 1], port)),
        transport,
    }
}

pub(super) fn udp() -> Remote {
    remote(5060, Transport::Udp)
}

pub(super) fn tcp() -> Remote {
    remote(5060, Transport::Tcp)
}

pub(super) fn table() -> TransactionTable {
    table_with(TableConfig::default())
}

pub(super) fn table_with(config: TableConfig) -> TransactionTable {
    TransactionTable::new(config, StdRng::seed_from_u64(7))
}

pub(super) fn parse(text: &str) -> Message {
    parse_datagram(text.as_bytes(), &Limits::DEFAULT).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A request from alice's UA at 192.0.2.1, transport and branch as given.
pub(super) fn request_via(method: &str, via: &str, call: &str) -> Message {
    parse(&format!(
        "{method} sip:bob@herald.example SIP/2.0\r\n\
         Via: {via}\r\n\
         From: <sip:alice@example.org>;tag=a1\r\n\
         To: <sip:bob@herald.example>\r\n\
         Call-ID: {call}@example.org\r\n\
         CSeq: 1 {method}\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

pub(super) fn request(method: &str, branch: &str) -> Message {
    request_via(
        method,
        &format!("SIP/2.0/UDP 192.0.2.1:5060;branch={branch}"),
        "c1",
    )
}

/// The ACK a UA sends for a non-2xx final response (RFC 3261 §17.1.1.3): the INVITE's
/// top Via, From, Call-ID and CSeq number, the response's To.
pub(super) fn ack_for(invite: &Message, response: &Message) -> Message {
    let mut ack = invite.clone();
    ack.start = StartLine::Request(RequestLine {
        method: Method::Ack,
        uri: invite.request_line().unwrap().uri.clone(),
    });
    for h in &mut ack.headers {
        if h.name == HeaderName::To {
            h.value = response.header(&HeaderName::To).unwrap().to_owned();
        }
        if h.name == HeaderName::CSeq {
            h.value = h.value.replace("INVITE", "ACK");
        }
    }
    ack
}

/// A CANCEL for `invite` (RFC 3261 §9.1): same Request-URI, top Via, From, To,
/// Call-ID and CSeq number.
pub(super) fn cancel_for(invite: &Message) -> Message {
    let mut cancel = invite.clone();
    cancel.start = StartLine::Request(RequestLine {
        method: Method::Cancel,
        uri: invite.request_line().unwrap().uri.clone(),
    });
    for h in &mut cancel.headers {
        if h.name == HeaderName::CSeq {
            h.value = h.value.replace("INVITE", "CANCEL");
        }
    }
    cancel
}

pub(super) fn response(req: &Message, code: u16) -> Message {
    response_for(&RequestEssentials::from_message(req), code, "Reason", "b1")
}

pub(super) fn code(msg: &Message) -> u16 {
    msg.status_line().expect("a response").code
}

pub(super) fn drain(t: &mut TransactionTable) -> Vec<Action> {
    std::iter::from_fn(|| t.poll_action()).collect()
}

/// The messages sent among `actions`.
pub(super) fn sent(actions: &[Action]) -> Vec<&Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { message, .. } => Some(message),
            _ => None,
        })
        .collect()
}

/// The id of the one `Request` among `actions`.
pub(super) fn request_id(actions: &[Action]) -> TransactionId {
    let ids: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Request { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 1, "{actions:?}");
    ids[0]
}

/// Runs the table's timers up to `until`, returning (time, action) for each action.
pub(super) fn run_until(
    t: &mut TransactionTable,
    now: &mut Instant,
    until: Instant,
) -> Vec<(Instant, Action)> {
    let mut out = Vec::new();
    while let Some(at) = t.poll_timeout().filter(|&at| at <= until) {
        assert!(at >= *now, "a timer in the past");
        *now = at;
        t.handle_timeout(at);
        out.extend(drain(t).into_iter().map(|a| (at, a)));
    }
    *now = until;
    out
}
