//! The s2s machines on virtual time: an initiating machine wired to a receiving machine
//! in memory, TLS modelled as the pair of `StartTls` actions and `tls_established` calls.

mod flows;
mod receiving;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::xml::Element;

pub(super) const A: &str = "a.example";
pub(super) const B: &str = "b.example";

/// How the fake authoritative server answers `VerifyDialbackKey`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Authority {
    /// Check the key with A's real secret.
    Check,
    /// Always this outcome.
    Say(DialbackOutcome),
    /// Never answer (the driver is slow).
    Silent,
}

pub(super) struct Pair {
    pub out: Initiating,
    pub inb: Receiving,
    pub now: Instant,
    /// B's policy for A and what A's certificate shows B.
    pub b_policy: S2sPolicy,
    pub b_sees_cert: CertFacts,
    pub authority: Authority,
    pub a_secret: DialbackSecret,
    /// B's own secret, for `<db:verify/>` requests B answers as authoritative server.
    pub b_secret: DialbackSecret,
    /// Feed bytes one at a time.
    pub bytewise: bool,
    pub out_actions: Vec<InitiatingAction>,
    pub in_actions: Vec<ReceivingAction>,
    /// Every byte each side wrote.
    pub a_wire: String,
    pub b_wire: String,
    out_tls: bool,
    in_tls: bool,
}

pub(super) fn a_config() -> InitiatingConfig {
    InitiatingConfig::new(DialbackSecret::new(b"secret of a"))
}

pub(super) fn b_config() -> ReceivingConfig {
    ReceivingConfig {
        hosted: vec![B.into(), "chat.b.example".into()],
        ..ReceivingConfig::default()
    }
}

impl Pair {
    pub(super) fn new(a_policy: S2sPolicy, transport: Transport) -> Self {
        Self::with(a_config(), b_config(), a_policy, transport)
    }

    /// A pair whose outbound side is `out` (e.g. a verify-mode machine).
    pub(super) fn around(out: Initiating) -> Self {
        let mut pair = Self::new(S2sPolicy::default(), Transport::Plain);
        pair.out = out;
        pair
    }

    pub(super) fn with(
        a: InitiatingConfig,
        b: ReceivingConfig,
        a_policy: S2sPolicy,
        transport: Transport,
    ) -> Self {
        let now = Instant::now();
        let a_secret = a.secret.clone();
        let direct = matches!(transport, Transport::DirectTls(_));
        Self {
            out: Initiating::new(Arc::new(a), A, B, a_policy, transport, now),
            inb: Receiving::new(Arc::new(b), direct, now, StdRng::seed_from_u64(5)),
            now,
            b_policy: S2sPolicy::default(),
            b_sees_cert: CertFacts::VALID,
            authority: Authority::Check,
            a_secret,
            b_secret: DialbackSecret::new(b"secret of b"),
            bytewise: false,
            out_actions: Vec::new(),
            in_actions: Vec::new(),
            a_wire: String::new(),
            b_wire: String::new(),
            out_tls: false,
            in_tls: false,
        }
    }

    /// Moves bytes and answers requests until both machines are quiet.
    pub(super) fn run(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(action) = self.out.poll_action() {
                progressed = true;
                if let InitiatingAction::Send(s) = &action {
                    self.a_wire.push_str(s);
                    if self.bytewise {
                        for b in s.as_bytes() {
                            self.inb.receive(std::slice::from_ref(b), self.now);
                        }
                    } else {
                        self.inb.receive(s.as_bytes(), self.now);
                    }
                }
                if action == InitiatingAction::StartTls {
                    self.out_tls = true;
                }
                self.out_actions.push(action);
            }
            while let Some(action) = self.inb.poll_action() {
                progressed = true;
                self.on_receiving_action(&action);
                self.in_actions.push(action);
            }
            if self.out_tls && self.in_tls {
                self.out_tls = false;
                self.in_tls = false;
                self.inb.tls_established();
                self.out.tls_established(CertFacts::VALID);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
    }

    fn on_receiving_action(&mut self, action: &ReceivingAction) {
        match action {
            ReceivingAction::Send(s) => {
                self.b_wire.push_str(s);
                self.out.receive(s.as_bytes(), self.now);
            }
            ReceivingAction::StartTls => self.in_tls = true,
            ReceivingAction::CheckPeer { .. } => {
                self.inb
                    .peer_checked(self.b_policy, self.b_sees_cert, self.now);
            }
            ReceivingAction::VerifyDialbackKey {
                remote,
                hosted,
                stream_id,
                key,
            } => {
                let outcome = match self.authority {
                    Authority::Check => DialbackOutcome::from_bool(
                        self.a_secret.verify(hosted, remote, stream_id, key),
                    ),
                    Authority::Say(outcome) => outcome,
                    Authority::Silent => return,
                };
                self.inb.dialback_verified(remote, hosted, outcome);
            }
            ReceivingAction::CheckDialbackKey {
                receiving,
                originating,
                stream_id,
                key,
            } => {
                let valid = self.b_secret.verify(receiving, originating, stream_id, key);
                self.inb
                    .dialback_key_checked(receiving, originating, stream_id, valid);
            }
            ReceivingAction::Authenticated { .. }
            | ReceivingAction::Stanza { .. }
            | ReceivingAction::Close => {}
        }
    }

    pub(super) fn advance(&mut self, d: Duration) {
        self.now += d;
        self.out.handle_timeout(self.now);
        self.inb.handle_timeout(self.now);
        self.run();
    }

    pub(super) fn established(&self) -> Vec<(String, AuthMethod)> {
        (self.out_actions.iter())
            .filter_map(|a| match a {
                InitiatingAction::Established { local, method } => Some((local.clone(), *method)),
                _ => None,
            })
            .collect()
    }

    pub(super) fn failed(&self) -> Option<(FailReason, Vec<Element>)> {
        self.out_actions.iter().find_map(|a| match a {
            InitiatingAction::Failed {
                reason,
                undelivered,
            } => Some((*reason, undelivered.clone())),
            _ => None,
        })
    }

    /// Stanzas B handed to its driver.
    pub(super) fn delivered(&self) -> Vec<Element> {
        (self.in_actions.iter())
            .filter_map(|a| match a {
                ReceivingAction::Stanza { element } => Some(element.clone()),
                _ => None,
            })
            .collect()
    }
}

pub(super) fn message(from: &str, to: &str, body: &str) -> Element {
    Element::new("message", crate::ns::SERVER)
        .with_attr("from", from)
        .with_attr("to", to)
        .with_child(Element::new("body", crate::ns::SERVER).with_text(body))
}

/// PKIX only, TLS required.
pub(super) fn pkix_only() -> S2sPolicy {
    S2sPolicy {
        dialback: false,
        ..S2sPolicy::default()
    }
}

/// Dialback only, TLS required.
pub(super) fn dialback_only() -> S2sPolicy {
    S2sPolicy {
        pkix: false,
        ..S2sPolicy::default()
    }
}
