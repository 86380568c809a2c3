//! The one narrow interface between the core and federation. The core hands stanzas for
//! domains it does not host to a [`Federation`]; the edge implements it with s2s and SIP
//! connections. Until a federation front is configured, [`NoFederation`] refuses them and
//! the sender gets `remote-server-not-found`.

use herald_translate::{Envelope, StanzaError, StanzaErrorCondition};

/// A stanza the federation front would not take, and the error its sender gets.
#[derive(Debug)]
pub struct Refused {
    pub envelope: Envelope,
    pub error: StanzaError,
}

/// Outbound federation: "deliver this stanza to the remote domain in its `to`".
pub trait Federation: Send + Sync + 'static {
    /// Accept the stanza for delivery, or refuse it with the error the sender gets.
    /// Asynchronous failures later come back as error stanzas through the core's inbound
    /// path, like any stanza from that domain.
    fn send(&self, envelope: Envelope) -> Result<(), Box<Refused>>;
}

/// No federation front: every remote stanza bounces.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoFederation;

impl Federation for NoFederation {
    fn send(&self, envelope: Envelope) -> Result<(), Box<Refused>> {
        Err(Box::new(Refused {
            envelope,
            error: StanzaError::new(StanzaErrorCondition::RemoteServerNotFound)
                .with_text("federation is not enabled on this server"),
        }))
    }
}
