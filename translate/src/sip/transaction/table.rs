//! [`TransactionTable`]: every live transaction, found by its key (RFC 3261 §17.1.3,
//! §17.2.3), bounded in number, with their timers in one ordered set so the driver
//! sleeps until [`TransactionTable::poll_timeout`].

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use rand::rngs::StdRng;

use super::super::essentials::RequestEssentials;
use super::super::header::HeaderName;
use super::super::message::Message;
use super::super::method::Method;
use super::client::NonInviteClient;
use super::invite_server::InviteServer;
use super::key::TransactionKey;
use super::server::NonInviteServer;
use super::{
    local_response, new_branch, new_tag, Action, Event, Remote, State, Timers, TransactionError,
    TransactionId,
};

/// How a table behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableConfig {
    /// T1, T2, T4.
    pub timers: Timers,
    /// The most transactions alive at once, client and server together. A new request
    /// beyond it is answered 503 statelessly; a new client request is refused.
    pub max_transactions: usize,
    /// The most bytes the transactions may hold at once, client and server together:
    /// the requests client transactions retransmit and the responses server
    /// transactions answer retransmissions with (approximately, as [`held_bytes`]
    /// counts them). Beyond it new transactions are refused as beyond
    /// `max_transactions`.
    pub max_bytes: usize,
    /// The Retry-After of that 503, in seconds.
    pub retry_after_secs: u32,
}

impl Default for TableConfig {
    /// RFC timers, 10 000 transactions, 64 MiB, Retry-After: 5.
    fn default() -> Self {
        Self {
            timers: Timers::RFC3261,
            max_transactions: 10_000,
            max_bytes: 64 * 1024 * 1024,
            retry_after_secs: 5,
        }
    }
}

#[derive(Debug)]
enum Machine {
    Client(NonInviteClient),
    Server(NonInviteServer),
    Invite(InviteServer),
}

impl Machine {
    fn state(&self) -> State {
        match self {
            Self::Client(m) => State::Client(m.state()),
            Self::Server(m) => State::Server(m.state()),
            Self::Invite(m) => State::Invite(m.state()),
        }
    }

    fn is_terminated(&self) -> bool {
        use super::{ClientState as C, InviteState as I, ServerState as S};
        matches!(
            self.state(),
            State::Client(C::Terminated)
                | State::Server(S::Terminated)
                | State::Invite(I::Terminated)
        )
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Self::Client(m) => m.poll_timeout(),
            Self::Server(m) => m.poll_timeout(),
            Self::Invite(m) => m.poll_timeout(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    key: TransactionKey,
    machine: Machine,
    /// The deadline this entry has in the table's timer set.
    scheduled: Option<Instant>,
    /// What it holds, counted in the table's `bytes`.
    bytes: usize,
}

/// The transaction layer of one SIP endpoint: see the [module](super) documentation.
#[derive(Debug)]
pub struct TransactionTable {
    config: TableConfig,
    rng: StdRng,
    next_id: u64,
    /// Boxed: when the map grows, rehashing moves pointers, not every transaction's
    /// messages (tens of thousands of them under load: a stall of milliseconds).
    entries: HashMap<TransactionId, Box<Entry>>,
    /// Boxed for the same reason (a key holds several strings).
    keys: HashMap<Box<TransactionKey>, TransactionId>,
    timers: BTreeSet<(Instant, TransactionId)>,
    actions: VecDeque<Action>,
    /// The sum of the entries' `bytes`.
    bytes: usize,
}

impl TransactionTable {
    /// An empty table. Tags and branches it makes come from `rng` (seed it for
    /// reproducible tests).
    pub fn new(config: TableConfig, rng: StdRng) -> Self {
        Self {
            config,
            rng,
            next_id: 0,
            entries: HashMap::new(),
            keys: HashMap::new(),
            timers: BTreeSet::new(),
            actions: VecDeque::new(),
            bytes: 0,
        }
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest timer of any transaction; call [`Self::handle_timeout`] then.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|&(at, _)| at)
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            if let Some(entry) = self.entries.get_mut(&id) {
                entry.scheduled = None;
                let out = &mut self.actions;
                match &mut entry.machine {
                    Machine::Client(m) => m.handle_timeout(now, out),
                    Machine::Server(m) => m.handle_timeout(now, out),
                    Machine::Invite(m) => m.handle_timeout(now, out),
                }
            }
            self.settle(id);
        }
    }

    /// How many transactions are alive.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The bytes the live transactions hold (see [`TableConfig::max_bytes`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether a new transaction must be refused.
    fn full(&self) -> bool {
        self.entries.len() >= self.config.max_transactions || self.bytes >= self.config.max_bytes
    }

    /// The state of transaction `id`; `None` once it has terminated.
    pub fn state(&self, id: TransactionId) -> Option<State> {
        self.entries.get(&id).map(|e| e.machine.state())
    }

    /// The To tag an INVITE server transaction uses in the responses it makes (100
    /// Trying excepted); a TU's final response should carry the same.
    pub fn local_tag(&self, id: TransactionId) -> Option<&str> {
        match &self.entries.get(&id)?.machine {
            Machine::Invite(m) => Some(m.to_tag()),
            _ => None,
        }
    }

    /// A fresh branch for a request the TU is about to send.
    pub fn new_branch(&mut self) -> String {
        new_branch(&mut self.rng)
    }

    /// A fresh tag.
    pub fn new_tag(&mut self) -> String {
        new_tag(&mut self.rng)
    }

    /// A message arrived from `from`.
    ///
    /// A new request opens a server transaction and goes to the TU
    /// ([`Action::Request`]); a retransmission is absorbed or answered again; an ACK
    /// goes to its INVITE transaction; a CANCEL is answered here (§9.2); a response
    /// goes to its client transaction. An error means the request lacks what matching
    /// needs; answer it statelessly with the codec's `error_response`.
    pub fn receive(
        &mut self,
        msg: Message,
        from: Remote,
        now: Instant,
    ) -> Result<(), TransactionError> {
        let Some(line) = msg.request_line() else {
            self.on_response(msg, from, now);
            return Ok(());
        };
        let method = line.method.clone();
        let key = TransactionKey::server(&msg)?;
        let found = self.keys.get(&key).copied();
        if method == Method::Ack {
            match found {
                Some(id) => {
                    if let Some(Machine::Invite(m)) = machine_of(&mut self.entries, id) {
                        m.on_ack(&msg, now, &mut self.actions);
                    }
                    self.settle(id);
                }
                None => self.actions.push_back(Action::Stray { from, message: msg }),
            }
            return Ok(());
        }
        if let Some(id) = found {
            match machine_of(&mut self.entries, id) {
                Some(Machine::Server(m)) => m.on_retransmission(&mut self.actions),
                Some(Machine::Invite(m)) => m.on_retransmission(&mut self.actions),
                _ => {}
            }
            return Ok(());
        }
        // The headers every response copies must be readable before a transaction
        // takes the request.
        msg.call_id()?;
        msg.cseq()?;
        msg.from()?;
        msg.to()?;
        if self.full() {
            self.refuse(&msg, from);
            return Ok(());
        }
        let invite_key = if method == Method::Cancel {
            Some(TransactionKey::server_with(&msg, Method::Invite)?)
        } else {
            None
        };
        let id = self.alloc();
        let timers = self.config.timers;
        match (&method, invite_key) {
            (Method::Cancel, Some(invite_key)) => {
                let server = NonInviteServer::new(id, from, timers, now);
                self.insert(id, key, Machine::Server(server));
                self.on_cancel(id, &msg, &invite_key, now);
            }
            (Method::Invite, _) => {
                let tag = self.new_tag();
                let m = InviteServer::new(id, from, &msg, tag, timers, now);
                self.insert(id, key, Machine::Invite(m));
                self.actions.push_back(Action::Request {
                    id,
                    from,
                    request: msg,
                });
            }
            _ => {
                let m = NonInviteServer::new(id, from, timers, now);
                self.insert(id, key, Machine::Server(m));
                self.actions.push_back(Action::Request {
                    id,
                    from,
                    request: msg,
                });
            }
        }
        self.settle(id);
        Ok(())
    }

    /// Any input as an [`Event`]. Returns the new transaction's id for
    /// [`Event::SendRequest`], `None` otherwise.
    pub fn handle(
        &mut self,
        event: Event,
        now: Instant,
    ) -> Result<Option<TransactionId>, TransactionError> {
        match event {
            Event::Received { message, from } => self.receive(message, from, now)?,
            Event::TimerFired => self.handle_timeout(now),
            Event::TransportError { id } => self.transport_error(id)?,
            Event::Respond { id, response } => self.respond(id, response, now)?,
            Event::SendRequest { request, to } => {
                return self.send_request(request, to, now).map(Some)
            }
        }
        Ok(None)
    }

    /// The TU's response in server transaction `id` (provisional or final).
    pub fn respond(
        &mut self,
        id: TransactionId,
        response: Message,
        now: Instant,
    ) -> Result<(), TransactionError> {
        let out = &mut self.actions;
        let size = held_bytes(&response);
        let result = match self.entries.get_mut(&id).map(|e| &mut e.machine) {
            None => Err(TransactionError::Unknown),
            Some(Machine::Server(m)) => m.respond(response, now, out),
            Some(Machine::Invite(m)) => m.respond(response, now, out),
            Some(Machine::Client(_)) => Err(TransactionError::Invalid(
                "a client transaction takes no response from the TU",
            )),
        };
        if result.is_ok() {
            // The machine keeps the latest response only.
            self.charge(id, size);
        }
        self.settle(id);
        result
    }

    /// The TU sends a non-INVITE request to `to`: a client transaction sends it,
    /// retransmits it, and reports its responses. The top Via must carry a fresh
    /// RFC 3261 branch ([`Self::new_branch`]).
    pub fn send_request(
        &mut self,
        request: Message,
        to: Remote,
        now: Instant,
    ) -> Result<TransactionId, TransactionError> {
        let line = request
            .request_line()
            .ok_or(TransactionError::Invalid("not a request"))?;
        if matches!(line.method, Method::Invite | Method::Ack) {
            return Err(TransactionError::Invalid(
                "Herald sends no INVITE, and ACK has no client transaction",
            ));
        }
        let key = TransactionKey::client_request(&request)?;
        if self.keys.contains_key(&key) {
            return Err(TransactionError::Invalid("branch already in use"));
        }
        if self.full() {
            return Err(TransactionError::Full);
        }
        let id = self.alloc();
        let size = held_bytes(&request);
        let m = NonInviteClient::start(id, to, request, self.config.timers, now, &mut self.actions);
        self.insert(id, key, Machine::Client(m));
        self.charge(id, size);
        self.settle(id);
        Ok(id)
    }

    /// The transport could not deliver a message of transaction `id` (§17.1.4,
    /// §17.2.4).
    pub fn transport_error(&mut self, id: TransactionId) -> Result<(), TransactionError> {
        let out = &mut self.actions;
        match self.entries.get_mut(&id).map(|e| &mut e.machine) {
            None => return Err(TransactionError::Unknown),
            Some(Machine::Client(m)) => m.transport_error(out),
            Some(Machine::Server(m)) => m.transport_error(out),
            Some(Machine::Invite(m)) => m.transport_error(out),
        }
        self.settle(id);
        Ok(())
    }

    fn on_response(&mut self, msg: Message, from: Remote, now: Instant) {
        let found = TransactionKey::client_response(&msg)
            .ok()
            .and_then(|k| self.keys.get(&k).copied());
        match found {
            Some(id) => {
                if let Some(Machine::Client(m)) = machine_of(&mut self.entries, id) {
                    m.on_response(msg, now, &mut self.actions);
                }
                self.settle(id);
            }
            None => self.actions.push_back(Action::Stray { from, message: msg }),
        }
    }

    /// CANCEL (§9.2): 200 and a 487 to the INVITE while it is pending, 200 alone after
    /// its final response, 481 when there is no such INVITE. The response to the CANCEL
    /// carries the INVITE's To tag.
    fn on_cancel(
        &mut self,
        id: TransactionId,
        cancel: &Message,
        invite_key: &TransactionKey,
        now: Instant,
    ) {
        let essentials = RequestEssentials::from_message(cancel);
        let invite = self.keys.get(invite_key).copied();
        let tag = match invite.and_then(|i| machine_of(&mut self.entries, i)) {
            Some(Machine::Invite(m)) => Some(m.to_tag().to_owned()),
            _ => None,
        };
        let response = match &tag {
            Some(tag) => local_response(&essentials, 200, "OK", tag),
            None => {
                let tag = self.new_tag();
                local_response(&essentials, 481, "Call/Transaction Does Not Exist", &tag)
            }
        };
        let size = held_bytes(&response);
        if let Some(Machine::Server(m)) = machine_of(&mut self.entries, id) {
            // Infallible: the transaction was just made.
            let _ = m.respond(response, now, &mut self.actions);
        }
        self.charge(id, size);
        if let Some(invite) = invite {
            if let Some(Machine::Invite(m)) = machine_of(&mut self.entries, invite) {
                m.cancel(now, &mut self.actions);
            }
            self.settle(invite);
        }
    }

    /// The stateless 503 of a full table (RFC 3261 §21.5.4, §20.33).
    fn refuse(&mut self, request: &Message, from: Remote) {
        let tag = self.new_tag();
        let essentials = RequestEssentials::from_message(request);
        let mut response = local_response(&essentials, 503, "Service Unavailable", &tag);
        response.push_header(
            HeaderName::from_wire("Retry-After"),
            self.config.retry_after_secs.to_string(),
        );
        self.actions.push_back(Action::Send {
            id: None,
            to: from,
            message: response,
        });
    }

    fn alloc(&mut self) -> TransactionId {
        self.next_id += 1;
        TransactionId(self.next_id)
    }

    fn insert(&mut self, id: TransactionId, key: TransactionKey, machine: Machine) {
        self.keys.insert(Box::new(key.clone()), id);
        self.entries.insert(
            id,
            Box::new(Entry {
                key,
                machine,
                scheduled: None,
                bytes: 0,
            }),
        );
    }

    /// Transaction `id` now holds `size` bytes (instead of what it held before).
    fn charge(&mut self, id: TransactionId, size: usize) {
        if let Some(entry) = self.entries.get_mut(&id) {
            self.bytes = self.bytes - entry.bytes + size;
            entry.bytes = size;
        }
    }

    /// After any event of transaction `id`: moves its deadline in the timer set, or
    /// removes it if it terminated.
    fn settle(&mut self, id: TransactionId) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        if let Some(old) = entry.scheduled.take() {
            self.timers.remove(&(old, id));
        }
        if entry.machine.is_terminated() {
            if let Some(entry) = self.entries.remove(&id) {
                self.keys.remove(&entry.key);
                self.bytes -= entry.bytes;
            }
            return;
        }
        entry.scheduled = entry.machine.poll_timeout();
        if let Some(at) = entry.scheduled {
            self.timers.insert((at, id));
        }
    }
}

/// About what `message` takes in memory: its header names and values, its body, and
/// a fixed allowance for the start line and the structures around them.
pub fn held_bytes(message: &Message) -> usize {
    const OVERHEAD: usize = 128;
    message
        .headers
        .iter()
        .map(|h| h.name.as_str().len() + h.value.len() + 4)
        .sum::<usize>()
        + message.body.len()
        + OVERHEAD
}

fn machine_of(
    entries: &mut HashMap<TransactionId, Box<Entry>>,
    id: TransactionId,
) -> Option<&mut Machine> {
    entries.get_mut(&id).map(|e| &mut e.machine)
}
