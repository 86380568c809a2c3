//! Outbound federation, per remote domain, as a sans-IO machine: stanzas for a domain
//! with no stream yet wait in a queue bounded in count and bytes while the driver
//! connects; on success they go out in order, on failure or timeout every one of them
//! is bounced to its local sender with the matching error. Nothing handed to the
//! machine vanishes: it is sent, or bounced (error stanzas excepted: RFC 6120 §8.3.1
//! forbids answering them, so they are dropped and counted).
//!
//! A failed domain is not retried on every stanza: for a back-off period (doubling up
//! to a cap) new stanzas bounce at once with the last failure's condition. An idle
//! stream is closed after `idle_timeout`. The driver feeds events and the clock, and
//! carries out the actions; time is whatever `Instant` it passes (tests use virtual
//! time).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use herald_translate::{Envelope, StanzaError, StanzaErrorCondition};

/// Bounds and timers of the outbound side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLimits {
    /// Stanzas waiting for one domain's stream.
    pub max_stanzas: usize,
    /// Bytes waiting for one domain's stream.
    pub max_bytes: usize,
    /// From the first queued stanza to an established stream.
    pub connect_timeout: Duration,
    /// A stream with no outbound stanza for this long is closed.
    pub idle_timeout: Duration,
    /// First back-off after a failure; doubles per consecutive failure.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            max_stanzas: 1000,
            max_bytes: 4 << 20,
            connect_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(600),
            backoff_initial: Duration::from_secs(5),
            backoff_max: Duration::from_secs(300),
        }
    }
}

/// Why a stream to a domain could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// DNS found no server, or nothing answered at any address.
    NotFound(String),
    /// Setting the stream up took longer than `connect_timeout`.
    Timeout,
    /// TLS, authentication or the peer's policy refused us.
    Refused(String),
}

impl Failure {
    fn error(&self, domain: &str) -> StanzaError {
        match self {
            Self::NotFound(why) => StanzaError::new(StanzaErrorCondition::RemoteServerNotFound)
                .with_text(format!("{domain}: {why}")),
            Self::Timeout => StanzaError::new(StanzaErrorCondition::RemoteServerTimeout)
                .with_text(format!("{domain}: no stream within the connection timeout")),
            Self::Refused(why) => StanzaError::new(StanzaErrorCondition::RemoteServerNotFound)
                .with_text(format!("{domain}: {why}")),
        }
    }
}

/// What the driver must do.
#[derive(Debug)]
pub enum Action {
    /// Start connecting to the domain (discovery, TCP, TLS, authentication).
    Connect(String),
    /// Give up the attempt under way (it timed out).
    Abort(String),
    /// Send the stanza on the domain's established stream.
    Send(String, Envelope),
    /// Route this error reply to the local sender of a stanza that cannot go out.
    Bounce(Envelope, StanzaErrorCondition),
    /// Close the domain's stream (idle).
    Close(String),
}

#[derive(Debug)]
enum State {
    Connecting {
        queue: VecDeque<(Envelope, usize)>,
        bytes: usize,
        deadline: Instant,
        failures: u32,
    },
    Up {
        last_used: Instant,
    },
    /// Failed recently: stanzas bounce until `until`; after it the next stanza tries
    /// again with a longer back-off if that fails too. Forgotten at `forget_at`, so
    /// the table stays bounded under open federation.
    BackingOff {
        until: Instant,
        forget_at: Instant,
        failures: u32,
        failure: Failure,
    },
}

/// Outbound streams and queues by remote domain.
#[derive(Debug)]
pub struct OutboundQueues {
    limits: QueueLimits,
    domains: HashMap<String, State>,
    actions: VecDeque<Action>,
    /// Error stanzas that could not be delivered (never bounced).
    pub dropped_errors: u64,
}

impl OutboundQueues {
    pub fn new(limits: QueueLimits) -> Self {
        Self {
            limits,
            domains: HashMap::new(),
            actions: VecDeque::new(),
            dropped_errors: 0,
        }
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Stanzas waiting for `domain`'s stream.
    pub fn queued(&self, domain: &str) -> usize {
        match self.domains.get(domain) {
            Some(State::Connecting { queue, .. }) => queue.len(),
            _ => 0,
        }
    }

    /// Stanzas waiting for any domain's stream.
    pub fn total_queued(&self) -> usize {
        self.domains
            .values()
            .map(|s| match s {
                State::Connecting { queue, .. } => queue.len(),
                _ => 0,
            })
            .sum()
    }

    /// Whether the domain's stream is established.
    pub fn is_up(&self, domain: &str) -> bool {
        matches!(self.domains.get(domain), Some(State::Up { .. }))
    }

    fn bounce(&mut self, env: &Envelope, err: &StanzaError) {
        match env.error_reply(err) {
            Some(reply) => self.actions.push_back(Action::Bounce(reply, err.condition)),
            None => self.dropped_errors += 1,
        }
    }

    /// A stanza of about `size` bytes for the remote domain in its `to`.
    pub fn send(&mut self, env: Envelope, size: usize, now: Instant) {
        let domain = env.to().domain().to_string();
        let limits = &self.limits;
        match self.domains.get_mut(&domain) {
            Some(State::Up { last_used }) => {
                *last_used = now;
                self.actions.push_back(Action::Send(domain, env));
            }
            Some(State::Connecting { queue, bytes, .. }) => {
                if queue.len() >= limits.max_stanzas || *bytes + size > limits.max_bytes {
                    let err = StanzaError::new(StanzaErrorCondition::ResourceConstraint)
                        .with_text(format!("too many stanzas waiting for {domain}"));
                    self.bounce(&env, &err);
                } else {
                    *bytes += size;
                    queue.push_back((env, size));
                }
            }
            Some(State::BackingOff {
                until,
                failures,
                failure,
                ..
            }) => {
                if now < *until {
                    let err = failure.error(&domain);
                    self.bounce(&env, &err);
                } else {
                    let failures = *failures;
                    self.start(domain, env, size, now, failures);
                }
            }
            None => self.start(domain, env, size, now, 0),
        }
    }

    fn start(&mut self, domain: String, env: Envelope, size: usize, now: Instant, failures: u32) {
        if size > self.limits.max_bytes {
            let err = StanzaError::new(StanzaErrorCondition::ResourceConstraint)
                .with_text("stanza too large for the outbound queue");
            self.bounce(&env, &err);
            return;
        }
        let mut queue = VecDeque::new();
        queue.push_back((env, size));
        self.domains.insert(
            domain.clone(),
            State::Connecting {
                queue,
                bytes: size,
                deadline: now + self.limits.connect_timeout,
                failures,
            },
        );
        self.actions.push_back(Action::Connect(domain));
    }

    /// The domain's stream is established: what waited goes out, in order. False
    /// when no attempt was expected any more (it timed out): the driver closes the
    /// stream.
    pub fn connected(&mut self, domain: &str, now: Instant) -> bool {
        if !matches!(self.domains.get(domain), Some(State::Connecting { .. })) {
            return false;
        }
        let Some(State::Connecting { queue, .. }) = self.domains.remove(domain) else {
            return false;
        };
        for (env, _) in queue {
            self.actions
                .push_back(Action::Send(domain.to_string(), env));
        }
        self.domains
            .insert(domain.to_string(), State::Up { last_used: now });
        true
    }

    /// The attempt failed: everything waiting bounces, and the domain backs off.
    pub fn failed(&mut self, domain: &str, failure: Failure, now: Instant) {
        let failures = match self.domains.remove(domain) {
            Some(State::Connecting {
                queue, failures, ..
            }) => {
                let err = failure.error(domain);
                for (env, _) in &queue {
                    self.bounce(env, &err);
                }
                failures
            }
            Some(State::BackingOff { failures, .. }) => failures,
            Some(State::Up { .. }) | None => 0,
        };
        let failures = failures.saturating_add(1);
        let backoff = self
            .limits
            .backoff_initial
            .saturating_mul(1 << (failures - 1).min(16))
            .min(self.limits.backoff_max);
        self.domains.insert(
            domain.to_string(),
            State::BackingOff {
                until: now + backoff,
                forget_at: now + backoff + self.limits.backoff_max,
                failures,
                failure,
            },
        );
    }

    /// The domain's established stream ended; the next stanza connects again.
    pub fn closed(&mut self, domain: &str) {
        if matches!(self.domains.get(domain), Some(State::Up { .. })) {
            self.domains.remove(domain);
        }
    }

    /// The earliest deadline the driver must call [`handle_timeout`](Self::handle_timeout) at.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.domains
            .values()
            .map(|s| match s {
                State::Connecting { deadline, .. } => *deadline,
                State::Up { last_used } => *last_used + self.limits.idle_timeout,
                State::BackingOff { forget_at, .. } => *forget_at,
            })
            .min()
    }

    /// Expire what is due at `now`: attempts that took too long fail (and are
    /// aborted), idle streams close, old failures are forgotten.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<(String, bool)> = self
            .domains
            .iter()
            .filter_map(|(d, s)| match s {
                State::Connecting { deadline, .. } if *deadline <= now => Some((d.clone(), true)),
                State::Up { last_used } if *last_used + self.limits.idle_timeout <= now => {
                    Some((d.clone(), false))
                }
                State::BackingOff { forget_at, .. } if *forget_at <= now => {
                    Some((d.clone(), false))
                }
                _ => None,
            })
            .collect();
        for (domain, connecting) in due {
            if connecting {
                self.actions.push_back(Action::Abort(domain.clone()));
                self.failed(&domain, Failure::Timeout, now);
            } else if let Some(State::Up { .. }) = self.domains.remove(&domain) {
                self.actions.push_back(Action::Close(domain));
            }
        }
    }
}

#[cfg(test)]
#[path = "outbound_queue_tests.rs"]
mod tests;
