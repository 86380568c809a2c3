//! Herald's wire layer for XMPP: an incremental, bounded, namespace-aware XML stream
//! reader, the element tree and its serializer, JIDs (RFC 7622), stanza helpers, stream
//! and stanza error conditions, the stream negotiation state machine and the SASL
//! mechanisms (SCRAM-SHA-1, SCRAM-SHA-256, PLAIN), and the server-to-server negotiation
//! machines with dialback keys (`s2s`), and the SIP message codec (`sip`).
//!
//! Nothing in this crate performs I/O, reads a clock or spawns a task: every input is
//! bytes or an event, every output is bytes, an event or a deadline the caller keeps.

pub mod digest;
pub mod envelope;
pub mod interwork;
pub mod jid;
pub mod negotiation;
pub mod ns;
pub mod pidf;
pub mod s2s;
pub mod sasl;
pub mod sip;
pub mod stanza;
pub mod stream_error;
pub mod xml;

pub use envelope::{Envelope, EnvelopeError};
pub use jid::{Jid, JidError};
pub use stanza::{StanzaError, StanzaErrorCondition, StanzaKind};
pub use stream_error::{StreamError, StreamErrorCondition};
pub use xml::{
    Element, Node, SerializeError, StreamEvent, StreamHeader, StreamReader, XmlError, XmlLimits,
};
