//! Message delivery to local users (RFC 6121 §8.5) with the multi-device rule, carbons
//! and offline storage.

use std::sync::Arc;

use herald_rules::{
    carbon_eligible, route_message, worth_storing, Addressed, Candidate, MessageAction,
    MessageFacts,
};
use herald_translate::{ns, Envelope, StanzaError, StanzaErrorCondition};

use super::{carbons, offline, Outbox};
use crate::ctx::Ctx;
use crate::router::{approx_size, SessionView};

/// The message service.
#[derive(Debug)]
pub(crate) struct Messages {
    ctx: Arc<Ctx>,
}

fn bounce(env: &Envelope, err: StanzaError, out: &mut Outbox) {
    out.extend(env.error_reply(&err));
}

impl Messages {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    /// A message for a local user: the RFC 6121 §8.5 rules in `rules` decide, this
    /// carries the decision out.
    pub(crate) async fn deliver(&self, mut env: Envelope, out: &mut Outbox) {
        let ctx = &self.ctx;
        let facts = MessageFacts::of(env.stanza());
        let (mut addressee, sessions) = ctx.addressee(&env).await;
        loop {
            let candidates: Vec<Candidate> = sessions
                .iter()
                .map(|s| Candidate {
                    available: s.available,
                    priority: s.priority,
                })
                .collect();
            let route = route_message(&facts, &addressee, ctx.settings().delivery, &candidates);
            match route.action {
                MessageAction::ToResource => {
                    if let Some(i) = sessions.iter().position(|s| s.jid == *env.to()) {
                        match self.send(env, &facts, &sessions, &[i]) {
                            None => return,
                            Some(back) => env = back,
                        }
                    }
                    // Its queue is full or it just left: decide again as for a resource
                    // that is not connected.
                    addressee.to = Addressed::Full { connected: false };
                }
                MessageAction::ToSessions(targets) => {
                    if let Some(env) = self.send(env, &facts, &sessions, &targets) {
                        if storable(&facts) {
                            self.store_offline(env, out).await;
                        }
                    }
                    return;
                }
                MessageAction::StoreOffline => {
                    self.store_offline(env, out).await;
                    return;
                }
                MessageAction::Bounce(condition) => {
                    bounce(&env, StanzaError::new(condition), out);
                    return;
                }
                MessageAction::Drop => {
                    tracing::trace!(reason = route.reason, "message dropped");
                    return;
                }
            }
        }
    }

    /// Give the message to the chosen sessions (one shared copy, the envelope's own
    /// element) and carbon copies to the user's other carbon-enabled sessions. The
    /// envelope comes back when none took it.
    fn send(
        &self,
        env: Envelope,
        facts: &MessageFacts,
        sessions: &[SessionView],
        targets: &[usize],
    ) -> Option<Envelope> {
        let (from, to, mut el) = env.into_parts();
        if facts.private {
            // XEP-0280 §7: the recipient gets it without the marker.
            el.remove_children("private", ns::CARBONS);
        }
        let el = Arc::new(el);
        let size = approx_size(&el);
        let delivered: Vec<u64> = targets
            .iter()
            .filter_map(|&i| sessions.get(i))
            .filter(|s| self.ctx.deliver_shared(s, Arc::clone(&el), size))
            .map(|s| s.conn_id)
            .collect();
        if delivered.is_empty() {
            return Envelope::new(from, to, Arc::unwrap_or_clone(el))
                .inspect_err(|e| tracing::error!(error = %e, "message lost its envelope"))
                .ok();
        }
        if carbon_eligible(facts).copy {
            carbons::received(&self.ctx, &el, sessions, &delivered);
        }
        None
    }

    /// Keep a message for a user with no available session (XEP-0160). Messages
    /// without content worth storing (chat states, receipts only) are dropped; a full
    /// quota bounces with an error to the sender.
    pub(crate) async fn store_offline(&self, env: Envelope, out: &mut Outbox) {
        if !storable(&MessageFacts::of(env.stanza())) {
            return;
        }
        match offline::push(&self.ctx, &env).await {
            Ok(true) => {}
            Ok(false) => {
                let err = StanzaError::new(StanzaErrorCondition::ServiceUnavailable)
                    .with_type(herald_translate::stanza::ErrorType::Wait)
                    .with_text("the recipient's offline storage is full");
                bounce(&env, err, out);
            }
            Err(e) => {
                tracing::error!(error = %e, "offline storage failed");
                bounce(
                    &env,
                    StanzaError::new(StanzaErrorCondition::InternalServerError),
                    out,
                );
            }
        }
    }

    /// Copies of a message a user sent, for the user's other carbon-enabled sessions.
    pub(crate) fn carbon_sent(&self, env: &Envelope) {
        if carbon_eligible(&MessageFacts::of(env.stanza())).copy {
            carbons::sent(&self.ctx, env.stanza(), env.from());
        }
    }
}

/// XEP-0160/XEP-0334: whether a message is kept for an offline user (the rule is in
/// `rules`).
pub(crate) fn storable(facts: &MessageFacts) -> bool {
    worth_storing(facts).store
}
