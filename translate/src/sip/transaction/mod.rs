//! SIP transactions (RFC 3261 §17) as sans-IO machines, gathered in a
//! [`TransactionTable`].
//!
//! The driver feeds the table events and drains its actions, in the shape of the s2s
//! machines (`crate::s2s`):
//!
//! - in: [`TransactionTable::receive`] (a parsed message and where it came from),
//!   [`TransactionTable::respond`] (the TU's response), [`TransactionTable::send_request`]
//!   (the TU's request), [`TransactionTable::transport_error`],
//!   [`TransactionTable::handle_timeout`];
//! - out: [`TransactionTable::poll_action`] ([`Action`]: send this message there, this
//!   request or response is for the TU, this INVITE was cancelled, this transaction
//!   ended) and [`TransactionTable::poll_timeout`], the earliest deadline of every timer
//!   of every transaction. Time is always an input (`now`); timers are deadlines, never
//!   sleeps, so tests run on virtual time. There are no separate timer set/cancel
//!   actions: each transaction's timers (E, F, K, G, H, I, J, the 100 Trying) are
//!   deadlines the table keeps in one ordered set, so setting or cancelling one moves
//!   `poll_timeout`, and no deadline is ever earlier than the `now` of the last input.
//!
//! [`Event`] and [`TransactionTable::handle`] offer the same inputs as one enum.
//!
//! The machines, each following its RFC 3261 figure:
//!
//! - non-INVITE client (§17.1.2, figure 6): timers E, F, K;
//! - non-INVITE server (§17.2.2, figure 8): timer J;
//! - INVITE server (§17.2.1, figure 7, without the 2xx path: Herald places and accepts
//!   no calls, it answers INVITE with a final error): timers G, H, I, the 100 Trying
//!   after 200 ms, ACK absorption, and CANCEL (§9.2) handled by the table.
//!
//! Matching (§17.1.3, §17.2.3) is in [`key`]. The TU is the core; this module never
//! decides what a request means.
//!
//! Deliberately left out: INVITE client transactions and the 2xx-to-INVITE path
//! (Herald places and accepts no calls); CANCEL of a non-INVITE request is answered
//! 481 (RFC 3261 §9.1 says not to send one); the §18.1.2 check that a response's top
//! Via is ours belongs to the driver, which knows its own sent-by.

mod client;
mod invite_server;
pub mod key;
mod server;
mod table;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::Duration;

use rand::RngCore;

use super::error::SipError;
use super::essentials::{response_for, RequestEssentials};
use super::header::HeaderName;
use super::message::Message;
use super::method::Method;

pub use key::{SentBy, TransactionKey};
pub use table::{held_bytes, TableConfig, TransactionTable};

/// The magic cookie that starts every RFC 3261 branch (§8.1.1.7).
pub const BRANCH_COOKIE: &str = "z9hG4bK";

/// A transport (RFC 3261 §18): what matters here is whether it is reliable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP: unreliable, so requests and final responses are retransmitted.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// WebSocket (RFC 7118), plain or secure.
    Ws,
}

impl Transport {
    /// Whether the transport delivers reliably (everything but UDP).
    pub fn is_reliable(self) -> bool {
        self != Self::Udp
    }

    /// The transport's name in a Via (`UDP`, `TCP`, `TLS`, `WS`).
    pub fn via_name(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
            Self::Ws => "WS",
        }
    }
}

/// The other end of a message: an address and the transport it arrived or leaves on.
/// Responses of a server transaction go back to where its request came from (the
/// source address and port, as RFC 3581 `rport` asks and as NATs need); the driver may
/// map a reliable transport's address back to its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Remote {
    /// The address and port.
    pub addr: SocketAddr,
    /// The transport.
    pub transport: Transport,
}

/// The RFC 3261 timer values (§17.1.1.1, table 4). The defaults are the RFC's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// T1, the round-trip estimate: 500 ms.
    pub t1: Duration,
    /// T2, the longest retransmit interval of non-INVITE requests and INVITE
    /// responses: 4 s.
    pub t2: Duration,
    /// T4, how long a message may stay in the network: 5 s.
    pub t4: Duration,
}

impl Timers {
    /// RFC 3261's values.
    pub const RFC3261: Self = Self {
        t1: Duration::from_millis(500),
        t2: Duration::from_secs(4),
        t4: Duration::from_secs(5),
    };

    /// 64*T1: timers B, F, H and J on unreliable transports.
    pub fn t1_x64(&self) -> Duration {
        self.t1 * 64
    }
}

impl Default for Timers {
    fn default() -> Self {
        Self::RFC3261
    }
}

/// A transaction's handle, unique for the life of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(pub u64);

/// Which machine a transaction is, and its state (the RFC's state names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Non-INVITE client (§17.1.2.2).
    Client(ClientState),
    /// Non-INVITE server (§17.2.2).
    Server(ServerState),
    /// INVITE server (§17.2.1).
    Invite(InviteState),
}

/// The states of a non-INVITE client transaction (RFC 3261 figure 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// Sent, nothing heard: retransmit on E, doubling up to T2.
    Trying,
    /// A provisional response came: retransmit every T2.
    Proceeding,
    /// A final response came: absorb its retransmissions until K.
    Completed,
    /// Gone.
    Terminated,
}

/// The states of a non-INVITE server transaction (RFC 3261 figure 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// The request went to the TU; retransmissions are absorbed silently.
    Trying,
    /// A provisional response was sent; retransmissions get it again.
    Proceeding,
    /// The final response was sent; retransmissions get it again until J.
    Completed,
    /// Gone.
    Terminated,
}

/// The states of an INVITE server transaction (RFC 3261 figure 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteState {
    /// The INVITE went to the TU; 100 Trying after 200 ms without an answer.
    Proceeding,
    /// A final error was sent: retransmitted on G until an ACK, or H.
    Completed,
    /// The ACK came: absorb ACK retransmissions until I.
    Confirmed,
    /// Gone.
    Terminated,
}

/// An input to the table, for drivers that prefer one entry point
/// ([`TransactionTable::handle`]) to the methods it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A parsed message arrived ([`TransactionTable::receive`]).
    Received {
        /// The message.
        message: Message,
        /// Where it came from.
        from: Remote,
    },
    /// The deadline given by `poll_timeout` has come ([`TransactionTable::handle_timeout`]).
    TimerFired,
    /// The transport failed for transaction `id` ([`TransactionTable::transport_error`]).
    TransportError {
        /// The transaction.
        id: TransactionId,
    },
    /// The TU answers server transaction `id` ([`TransactionTable::respond`]).
    Respond {
        /// The transaction.
        id: TransactionId,
        /// The response.
        response: Message,
    },
    /// The TU sends a non-INVITE request ([`TransactionTable::send_request`]).
    SendRequest {
        /// The request, its top Via carrying a fresh branch.
        request: Message,
        /// Where to.
        to: Remote,
    },
}

/// What the table asks of the driver and the TU, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send `message` to `to`. `id` is `None` for a stateless answer (the 503 of a full
    /// table).
    Send {
        /// The transaction, if any.
        id: Option<TransactionId>,
        /// Where.
        to: Remote,
        /// What.
        message: Message,
    },
    /// A new request for the TU, which answers it with [`TransactionTable::respond`].
    Request {
        /// The server transaction created for it.
        id: TransactionId,
        /// Where it came from.
        from: Remote,
        /// The request.
        request: Message,
    },
    /// A response to the TU's request `id`. A timeout (timer F) is a 408 and a
    /// transport error a 503, both made here (RFC 3261 §8.1.3.1).
    Response {
        /// The client transaction.
        id: TransactionId,
        /// The response.
        response: Message,
    },
    /// The INVITE of transaction `id` was cancelled (§9.2): the 487 is already sent.
    Cancelled {
        /// The INVITE server transaction.
        id: TransactionId,
    },
    /// A message that belongs to no transaction: a response nobody waits for, or an ACK
    /// for no INVITE transaction (a 2xx ACK goes to the TU, RFC 3261 §17.2.3). The TU
    /// may drop it.
    Stray {
        /// Where it came from.
        from: Remote,
        /// The message.
        message: Message,
    },
    /// Transaction `id` reached Terminated and left the table.
    Terminated {
        /// The transaction.
        id: TransactionId,
    },
}

/// Why the table refused an input. Malformed messages carry the codec's [`SipError`],
/// whose status says how to answer them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// A header the transaction layer reads (Via, CSeq, From, To, Call-ID) is missing
    /// or malformed.
    #[error(transparent)]
    Malformed(#[from] SipError),
    /// No live transaction has this id (it may have terminated).
    #[error("no such transaction")]
    Unknown,
    /// The table holds its maximum number of transactions.
    #[error("transaction table full")]
    Full,
    /// The call does not fit the transaction's state or kind (a response where a
    /// request was expected, a 2xx to an INVITE, a second final response...).
    #[error("{0}")]
    Invalid(&'static str),
}

/// A fresh RFC 3261 branch: the magic cookie and 16 random hex digits.
pub fn new_branch(rng: &mut (impl RngCore + ?Sized)) -> String {
    format!("{BRANCH_COOKIE}{:016x}", rng.next_u64())
}

/// A fresh tag for a From or To header (RFC 3261 §19.3): 16 random hex digits.
pub fn new_tag(rng: &mut (impl RngCore + ?Sized)) -> String {
    format!("{:016x}", rng.next_u64())
}

/// A final error for a request (RFC 3261 §8.2.6) with the `Allow` header listing
/// `allow`, as a 405, 488 or 501 to an INVITE should carry (§8.2.1, §20.5).
pub fn reject(
    request: &Message,
    code: u16,
    reason: &str,
    allow: &[Method],
    to_tag: &str,
) -> Message {
    let mut response = response_for(
        &RequestEssentials::from_message(request),
        code,
        reason,
        to_tag,
    );
    if !allow.is_empty() {
        let list: Vec<&str> = allow.iter().map(Method::as_str).collect();
        response.push_header(HeaderName::Allow, list.join(", "));
    }
    response
}

/// The status code of a response; `None` for a request.
fn status(msg: &Message) -> Option<u16> {
    msg.status_line().map(|s| s.code)
}

/// The earliest of some deadlines.
fn earliest(deadlines: &[Option<std::time::Instant>]) -> Option<std::time::Instant> {
    deadlines.iter().flatten().min().copied()
}

/// Whether `deadline` is set and has come.
fn due(deadline: Option<std::time::Instant>, now: std::time::Instant) -> bool {
    deadline.is_some_and(|d| d <= now)
}

/// A response the transaction layer makes for a request it holds (RFC 3261 §8.1.3.1
/// timeouts and transport errors, §9.2 CANCEL answers, the 100 Trying).
fn local_response(request: &RequestEssentials, code: u16, reason: &str, to_tag: &str) -> Message {
    response_for(request, code, reason, to_tag)
}
