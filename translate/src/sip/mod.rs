//! SIP messages (RFC 3261): a sans-IO codec.
//!
//! - [`parse_datagram`]: one UDP datagram, one message.
//! - [`StreamFramer`]: TCP/TLS bytes in any chunking, whole messages out by
//!   Content-Length, and CRLF keep-alives ([`Frame::Ping`], answered with [`PONG`]).
//! - [`Message`]: the model (start line, headers in order with raw values, body), its
//!   typed header views (`vias`, `from`, `cseq`, `contacts`...), and
//!   [`Message::to_bytes`], the canonical serializer.
//! - [`SipError`]: why a message was refused and the status that answers it (400 with
//!   the reason, 505, 416, 420, 421, 414, 513), with what a response needs when the
//!   message was a request; [`error_response`] builds that response (RFC 3261 §8.2.6).
//! - [`check_request`]: the RFC 3261 §8.2 checks that need a policy (required and
//!   single headers, Request-URI scheme, Require).
//!
//! The grammar is Herald's own (see DECISIONS.md), checked against RFC 4475 and
//! RFC 5118. Every limit is in [`Limits`].

mod error;
mod essentials;
mod framing;
mod grammar;
pub mod header;
mod limits;
mod message;
mod method;
mod parse;
pub mod publication;
mod serialize;
pub mod subscription;
pub mod transaction;
mod uri;
mod validate;

pub use error::{SipError, SipErrorKind};
pub use essentials::{error_response, response_for, RequestEssentials};
pub use framing::{Frame, StreamFramer, PONG};
pub use grammar::unescape;
pub use header::{CSeq, Contact, Event, HeaderName, MediaType, NameAddr, SubscriptionState, Via};
pub use limits::Limits;
pub use message::{Header, Message, RequestLine, StartLine, StatusLine};
pub use method::Method;
pub use parse::parse_datagram;
pub use uri::{find_param, Host, Param, SipUri, TelUri, Uri};
pub use validate::{check_request, unsupported, Policy};

#[cfg(test)]
mod framing_tests;
#[cfg(test)]
mod parse_tests;
