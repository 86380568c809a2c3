//! The INVITE server transaction (RFC 3261 §17.2.1, figure 7), for a UAS that answers
//! every INVITE with a final error: the 2xx path (Accepted, RFC 6026) is refused.
//!
//! ```text
//!              INVITE to the TU; after 200 ms without a response: 100 Trying
//! Proceeding ──TU 300-699 (or 487 on CANCEL)──> Completed ──ACK──> Confirmed ──I──> Terminated
//!   │ retransmission: resend the      │ G: resend the final,         │ absorb ACKs;
//!   │ last provisional                │ G = min(2G, T2) (unreliable) │ I = T4 (0 if
//!   │                                 │ retransmission: resend it    │ reliable)
//!   │                                 └──H (64*T1): Terminated (no ACK came)
//!   transport error: Terminated
//! ```
//!
//! Herald's guard, not in the RFC: a TU that has not answered after 64*T1 gets a 500
//! sent for it, so no INVITE holds a table slot (or a caller who saw 100 Trying)
//! forever.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::super::essentials::RequestEssentials;
use super::super::message::Message;
use super::{
    earliest, local_response, status, Action, InviteState, Remote, Timers, TransactionError,
    TransactionId,
};

/// How long the TU has before the transaction sends 100 Trying itself (§17.2.1).
pub(super) const TRYING_AFTER: Duration = Duration::from_millis(200);

/// One INVITE server transaction.
#[derive(Debug)]
pub(super) struct InviteServer {
    id: TransactionId,
    from: Remote,
    timers: Timers,
    state: InviteState,
    essentials: RequestEssentials,
    /// The To tag of our responses (generated, or the TU's if it wrote one).
    to_tag: String,
    /// The last response sent.
    last: Option<Message>,
    trying: Option<Instant>,
    g: Option<Instant>,
    g_interval: Duration,
    h: Option<Instant>,
    i: Option<Instant>,
    guard: Option<Instant>,
}

impl InviteServer {
    /// A transaction for an INVITE that just arrived from `from`.
    pub(super) fn new(
        id: TransactionId,
        from: Remote,
        request: &Message,
        to_tag: String,
        timers: Timers,
        now: Instant,
    ) -> Self {
        Self {
            id,
            from,
            timers,
            state: InviteState::Proceeding,
            essentials: RequestEssentials::from_message(request),
            to_tag,
            last: None,
            trying: Some(now + TRYING_AFTER),
            g: None,
            g_interval: timers.t1,
            h: None,
            i: None,
            guard: Some(now + timers.t1_x64()),
        }
    }

    pub(super) fn state(&self) -> InviteState {
        self.state
    }

    pub(super) fn to_tag(&self) -> &str {
        &self.to_tag
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.trying, self.g, self.h, self.i, self.guard])
    }

    /// The INVITE arrived again: resend the last response (a provisional while
    /// Proceeding, the final while Completed); absorbed once Confirmed.
    pub(super) fn on_retransmission(&mut self, out: &mut VecDeque<Action>) {
        if matches!(self.state, InviteState::Proceeding | InviteState::Completed) {
            self.resend(out);
        }
    }

    /// An ACK matched the INVITE (§17.2.1). Only an ACK in Completed changes anything;
    /// an ACK whose To tag is not ours acknowledges some other response and is ignored.
    pub(super) fn on_ack(&mut self, ack: &Message, now: Instant, out: &mut VecDeque<Action>) {
        if self.state != InviteState::Completed {
            return;
        }
        let tag_ok = match ack.to() {
            Ok(to) => to.tag().is_none_or(|t| t == self.to_tag),
            Err(_) => false,
        };
        if !tag_ok {
            return;
        }
        self.state = InviteState::Confirmed;
        self.g = None;
        self.h = None;
        if self.from.transport.is_reliable() {
            self.terminate(out);
        } else {
            self.i = Some(now + self.timers.t4);
        }
    }

    /// The TU's response: a provisional, or a final error (300-699).
    pub(super) fn respond(
        &mut self,
        response: Message,
        now: Instant,
        out: &mut VecDeque<Action>,
    ) -> Result<(), TransactionError> {
        let code = status(&response).ok_or(TransactionError::Invalid("not a response"))?;
        if self.state != InviteState::Proceeding {
            return Err(TransactionError::Invalid("final response already sent"));
        }
        if (200..300).contains(&code) {
            return Err(TransactionError::Invalid(
                "a 2xx to INVITE is not supported: Herald answers INVITE with errors",
            ));
        }
        if let Some(tag) = response.to().ok().and_then(|t| t.tag().map(str::to_owned)) {
            self.to_tag = tag;
        }
        self.trying = None;
        self.last = Some(response);
        self.resend(out);
        if code >= 300 {
            self.complete(now);
        }
        Ok(())
    }

    /// A CANCEL matched this INVITE (§9.2): while no final response was sent, a 487
    /// goes out and the TU is told. Returns whether the INVITE was still pending.
    pub(super) fn cancel(&mut self, now: Instant, out: &mut VecDeque<Action>) -> bool {
        if self.state != InviteState::Proceeding {
            return false;
        }
        self.final_response(487, "Request Terminated", now, out);
        out.push_back(Action::Cancelled { id: self.id });
        true
    }

    fn final_response(
        &mut self,
        code: u16,
        reason: &str,
        now: Instant,
        out: &mut VecDeque<Action>,
    ) {
        self.last = Some(local_response(&self.essentials, code, reason, &self.to_tag));
        self.trying = None;
        self.resend(out);
        self.complete(now);
    }

    fn complete(&mut self, now: Instant) {
        self.state = InviteState::Completed;
        self.guard = None;
        if !self.from.transport.is_reliable() {
            self.g_interval = self.timers.t1;
            self.g = Some(now + self.g_interval);
        }
        self.h = Some(now + self.timers.t1_x64());
    }

    /// Fires every timer due at `now`, earliest first.
    pub(super) fn handle_timeout(&mut self, now: Instant, out: &mut VecDeque<Action>) {
        while let Some(at) = self.poll_timeout().filter(|&at| at <= now) {
            if self.h == Some(at) || self.i == Some(at) {
                // H: the ACK never came; I: ACK retransmissions are over.
                self.terminate(out);
            } else if self.guard == Some(at) {
                self.guard = None;
                self.final_response(500, "Server Internal Error", now, out);
            } else if self.trying == Some(at) {
                self.trying = None;
                if self.last.is_none() {
                    self.last = Some(local_response(&self.essentials, 100, "Trying", ""));
                    self.resend(out);
                }
            } else {
                // Timer G.
                self.resend(out);
                self.g_interval = (self.g_interval * 2).min(self.timers.t2);
                // A zero interval (T1 configured to 0) would never leave this loop.
                self.g = (!self.g_interval.is_zero()).then(|| now + self.g_interval);
            }
        }
    }

    /// The transport failed (§17.2.4): the transaction ends.
    pub(super) fn transport_error(&mut self, out: &mut VecDeque<Action>) {
        if self.state != InviteState::Terminated {
            self.terminate(out);
        }
    }

    fn resend(&self, out: &mut VecDeque<Action>) {
        if let Some(last) = &self.last {
            out.push_back(Action::Send {
                id: Some(self.id),
                to: self.from,
                message: last.clone(),
            });
        }
    }

    fn terminate(&mut self, out: &mut VecDeque<Action>) {
        self.state = InviteState::Terminated;
        self.trying = None;
        self.g = None;
        self.h = None;
        self.i = None;
        self.guard = None;
        out.push_back(Action::Terminated { id: self.id });
    }
}
