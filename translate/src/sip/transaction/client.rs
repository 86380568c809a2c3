//! The non-INVITE client transaction (RFC 3261 §17.1.2, figure 6).
//!
//! ```text
//!            send request; E = T1 (unreliable only), F = 64*T1
//! Trying ──1xx──> Proceeding ──200-699──> Completed ──K──> Terminated
//!   │  E: resend, E = min(2E, T2)  │ E: resend, E = T2     │ absorb retransmitted
//!   └──200-699──> Completed        │                       │ responses; K = T4
//!   F or transport error: 408 / 503 to the TU, Terminated  │ (0 if reliable)
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::super::essentials::RequestEssentials;
use super::super::message::Message;
use super::{
    due, earliest, local_response, status, Action, ClientState, Remote, Timers, TransactionId,
};

/// One non-INVITE client transaction.
#[derive(Debug)]
pub(super) struct NonInviteClient {
    id: TransactionId,
    to: Remote,
    request: Message,
    timers: Timers,
    state: ClientState,
    /// The current retransmit interval (timer E's value).
    interval: Duration,
    e: Option<Instant>,
    f: Option<Instant>,
    k: Option<Instant>,
}

impl NonInviteClient {
    /// Sends `request` to `to` and starts timers E (unreliable transports) and F
    /// (§17.1.2.2).
    pub(super) fn start(
        id: TransactionId,
        to: Remote,
        request: Message,
        timers: Timers,
        now: Instant,
        out: &mut VecDeque<Action>,
    ) -> Self {
        out.push_back(Action::Send {
            id: Some(id),
            to,
            message: request.clone(),
        });
        let reliable = to.transport.is_reliable();
        Self {
            id,
            to,
            request,
            timers,
            state: ClientState::Trying,
            interval: timers.t1,
            e: (!reliable).then(|| now + timers.t1),
            f: Some(now + timers.t1_x64()),
            k: None,
        }
    }

    pub(super) fn state(&self) -> ClientState {
        self.state
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.e, self.f, self.k])
    }

    /// A response matched this transaction (§17.1.2.2).
    pub(super) fn on_response(
        &mut self,
        response: Message,
        now: Instant,
        out: &mut VecDeque<Action>,
    ) {
        let Some(code) = status(&response) else {
            return;
        };
        match self.state {
            ClientState::Trying | ClientState::Proceeding if code < 200 => {
                self.state = ClientState::Proceeding;
                out.push_back(Action::Response {
                    id: self.id,
                    response,
                });
            }
            ClientState::Trying | ClientState::Proceeding => {
                out.push_back(Action::Response {
                    id: self.id,
                    response,
                });
                self.complete(now, out);
            }
            // Retransmissions of the final response, and any 1xx that overtook it
            // late, are absorbed.
            ClientState::Completed | ClientState::Terminated => {}
        }
    }

    fn complete(&mut self, now: Instant, out: &mut VecDeque<Action>) {
        self.state = ClientState::Completed;
        self.e = None;
        self.f = None;
        if self.to.transport.is_reliable() {
            self.terminate(out);
        } else {
            self.k = Some(now + self.timers.t4);
        }
    }

    /// Fires every timer that is due at `now`, earliest first.
    pub(super) fn handle_timeout(&mut self, now: Instant, out: &mut VecDeque<Action>) {
        while let Some(at) = self.poll_timeout().filter(|&at| at <= now) {
            if self.f == Some(at) {
                // Timer F: the TU hears a timeout (§17.1.2.2, §8.1.3.1).
                self.give_up(408, "Request Timeout", out);
            } else if self.k == Some(at) {
                self.terminate(out);
            } else if due(self.e, now) {
                out.push_back(Action::Send {
                    id: Some(self.id),
                    to: self.to,
                    message: self.request.clone(),
                });
                self.interval = match self.state {
                    ClientState::Trying => (self.interval * 2).min(self.timers.t2),
                    _ => self.timers.t2,
                };
                // A zero interval (T1 configured to 0) would never leave this loop.
                self.e = (!self.interval.is_zero()).then(|| now + self.interval);
            }
        }
    }

    /// The transport could not send the request: a 503 to the TU (§8.1.3.1).
    pub(super) fn transport_error(&mut self, out: &mut VecDeque<Action>) {
        if matches!(self.state, ClientState::Trying | ClientState::Proceeding) {
            self.give_up(503, "Service Unavailable", out);
        } else if self.state == ClientState::Completed {
            self.terminate(out);
        }
    }

    fn give_up(&mut self, code: u16, reason: &str, out: &mut VecDeque<Action>) {
        let essentials = RequestEssentials::from_message(&self.request);
        out.push_back(Action::Response {
            id: self.id,
            response: local_response(&essentials, code, reason, ""),
        });
        self.terminate(out);
    }

    fn terminate(&mut self, out: &mut VecDeque<Action>) {
        self.state = ClientState::Terminated;
        self.e = None;
        self.f = None;
        self.k = None;
        out.push_back(Action::Terminated { id: self.id });
    }
}
