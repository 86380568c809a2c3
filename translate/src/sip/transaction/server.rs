//! The non-INVITE server transaction (RFC 3261 §17.2.2, figure 8).
//!
//! ```text
//!          request to the TU
//! Trying ──TU 1xx──> Proceeding ──TU 200-699──> Completed ──J──> Terminated
//!   │ absorb            │ retransmission:        │ retransmission: resend the
//!   │ retransmissions   │ resend the 1xx         │ final; J = 64*T1 (0 if reliable)
//!   └──TU 200-699──> Completed
//!   transport error: Terminated
//! ```
//!
//! Herald's own guard, not in the RFC: a TU that has not answered after 64*T1 never
//! will usefully (the client's timer F has fired), so the transaction ends then instead
//! of holding a slot of the bounded table.

use std::collections::VecDeque;
use std::time::Instant;

use super::super::message::Message;
use super::{
    earliest, status, Action, Remote, ServerState, Timers, TransactionError, TransactionId,
};

/// One non-INVITE server transaction.
#[derive(Debug)]
pub(super) struct NonInviteServer {
    id: TransactionId,
    from: Remote,
    timers: Timers,
    state: ServerState,
    /// The last response sent, resent on each retransmitted request.
    last: Option<Message>,
    j: Option<Instant>,
    guard: Option<Instant>,
}

impl NonInviteServer {
    /// A transaction for a request that just arrived from `from`; the table passes the
    /// request to the TU.
    pub(super) fn new(id: TransactionId, from: Remote, timers: Timers, now: Instant) -> Self {
        Self {
            id,
            from,
            timers,
            state: ServerState::Trying,
            last: None,
            j: None,
            guard: Some(now + timers.t1_x64()),
        }
    }

    pub(super) fn state(&self) -> ServerState {
        self.state
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.j, self.guard])
    }

    /// The request arrived again: resend the last response, if any (§17.2.2).
    pub(super) fn on_retransmission(&mut self, out: &mut VecDeque<Action>) {
        if let Some(last) = &self.last {
            out.push_back(Action::Send {
                id: Some(self.id),
                to: self.from,
                message: last.clone(),
            });
        }
    }

    /// The TU's response.
    pub(super) fn respond(
        &mut self,
        response: Message,
        now: Instant,
        out: &mut VecDeque<Action>,
    ) -> Result<(), TransactionError> {
        let code = status(&response).ok_or(TransactionError::Invalid("not a response"))?;
        if !matches!(self.state, ServerState::Trying | ServerState::Proceeding) {
            return Err(TransactionError::Invalid("final response already sent"));
        }
        out.push_back(Action::Send {
            id: Some(self.id),
            to: self.from,
            message: response.clone(),
        });
        self.last = Some(response);
        if code < 200 {
            self.state = ServerState::Proceeding;
            return Ok(());
        }
        self.state = ServerState::Completed;
        self.guard = None;
        if self.from.transport.is_reliable() {
            self.terminate(out);
        } else {
            self.j = Some(now + self.timers.t1_x64());
        }
        Ok(())
    }

    /// Fires timer J or the guard when due.
    pub(super) fn handle_timeout(&mut self, now: Instant, out: &mut VecDeque<Action>) {
        if self.poll_timeout().is_some_and(|at| at <= now) {
            self.terminate(out);
        }
    }

    /// The transport failed to send a response (§17.2.4): the transaction ends.
    pub(super) fn transport_error(&mut self, out: &mut VecDeque<Action>) {
        if self.state != ServerState::Terminated {
            self.terminate(out);
        }
    }

    fn terminate(&mut self, out: &mut VecDeque<Action>) {
        self.state = ServerState::Terminated;
        self.j = None;
        self.guard = None;
        out.push_back(Action::Terminated { id: self.id });
    }
}
