//! Property: whatever the network does to the messages (drop, duplicate, delay and so
//! reorder, up to T4; or, one run in five, a reliable transport that does none of
//! that) and whenever timers are fired, the tables never panic, never
//! return a deadline in the past, and every transaction terminates within 64*T1 + T4
//! of the last input to its table. The simulated TU answers every request within
//! 10 s (a TU that never answers is covered by the guards' own tests).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Op {
    /// A's TU sends a non-INVITE request to B.
    Request,
    /// The raw UA P sends an INVITE to B.
    Invite,
    /// P ACKs the last final response it got.
    Ack,
    /// P cancels its last INVITE.
    Cancel,
    /// Time passes (ms).
    Advance(u32),
    /// A transport error on some live transaction.
    TransportError(usize),
    /// B's TU answers its oldest pending request.
    Answer,
}

#[derive(Debug, Clone, Copy)]
enum Fate {
    Deliver(u32),
    Drop,
    Twice(u32, u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Request),
        2 => Just(Op::Invite),
        1 => Just(Op::Ack),
        1 => Just(Op::Cancel),
        4 => (0u32..40_000).prop_map(Op::Advance),
        1 => any::<usize>().prop_map(Op::TransportError),
        2 => Just(Op::Answer),
    ]
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        3 => (0u32..5000).prop_map(Fate::Deliver),
        1 => Just(Fate::Drop),
        1 => (0u32..5000, 0u32..5000).prop_map(|(a, b)| Fate::Twice(a, b)),
    ]
}

const TU_LATENCY: Duration = Duration::from_secs(10);

fn addr(last: u8, reliable: bool) -> Remote {
    Remote {
        addr: SocketAddr::from(([192, 0, 2, last], 5060)),
        transport: if reliable {
            Transport::Tcp
        } else {
            Transport::Udp
        },
    }
}

struct Sim {
    a: TransactionTable,
    b: TransactionTable,
    now: Instant,
    wire: Vec<(Instant, u64, Remote, Remote, Message)>,
    seq: u64,
    fates: Vec<Fate>,
    pending: VecDeque<(Instant, TransactionId, Message)>,
    live: Vec<(bool, TransactionId)>,
    last_input: Instant,
    p_invites: Vec<Message>,
    p_finals: Vec<(Message, Message)>,
    n: u32,
    bound: Duration,
    /// TCP everywhere: the wire neither drops nor duplicates nor reorders.
    reliable: bool,
}

const A: u8 = 10;
const B: u8 = 1;
const P: u8 = 20;

impl Sim {
    fn new(fates: Vec<Fate>, reliable: bool) -> Self {
        let now = Instant::now();
        let t = Timers::RFC3261;
        Self {
            a: table(),
            b: table(),
            now,
            wire: Vec::new(),
            seq: 0,
            fates,
            pending: VecDeque::new(),
            live: Vec::new(),
            last_input: now,
            p_invites: Vec::new(),
            p_finals: Vec::new(),
            n: 0,
            bound: t.t1_x64() + t.t4,
            reliable,
        }
    }

    fn put(&mut self, from: Remote, to: Remote, msg: Message) {
        let fate = if self.reliable {
            Fate::Deliver(10)
        } else {
            self.fates[self.seq as usize % self.fates.len()]
        };
        let delays = match fate {
            Fate::Deliver(d) => vec![d],
            Fate::Drop => vec![],
            Fate::Twice(x, y) => vec![x, y],
        };
        for d in delays {
            self.seq += 1;
            let at = self.now + ms(u64::from(d));
            self.wire.push((at, self.seq, from, to, msg.clone()));
        }
        self.seq += 1;
    }

    /// Moves the actions of table A (`a`) or B into the world, and checks deadlines.
    fn drain(&mut self, a: bool) {
        loop {
            let t = if a { &mut self.a } else { &mut self.b };
            let Some(action) = t.poll_action() else { break };
            let me = addr(if a { A } else { B }, self.reliable);
            match action {
                Action::Send { to, message, .. } => self.put(me, to, message),
                Action::Request { id, request, .. } => {
                    self.pending.push_back((self.now, id, request));
                    self.live.push((a, id));
                }
                Action::Terminated { id } => {
                    let idle = self.now - self.last_input;
                    assert!(
                        idle <= self.bound,
                        "{id:?} ended {idle:?} after the last input"
                    );
                    self.live.retain(|&(s, i)| !(s == a && i == id));
                }
                Action::Response { .. } | Action::Cancelled { .. } | Action::Stray { .. } => {}
            }
        }
        for t in [&self.a, &self.b] {
            if let Some(at) = t.poll_timeout() {
                assert!(at >= self.now, "a deadline in the past");
            }
        }
    }

    fn input(&mut self) {
        self.last_input = self.now;
        self.drain(true);
        self.drain(false);
    }

    fn answer(&mut self, id: TransactionId, request: &Message) {
        let resp = if request.request_line().unwrap().method == Method::Invite {
            match self.b.local_tag(id) {
                Some(tag) => reject(request, 488, "Not Acceptable Here", &[Method::Options], tag),
                None => return,
            }
        } else {
            response(request, 200)
        };
        // Refused when a CANCEL or a guard got there first: that is fine.
        let _ = self.b.respond(id, resp, self.now);
        self.input();
    }

    fn p_receive(&mut self, msg: Message) {
        if msg.status_line().is_some_and(|s| s.code >= 300)
            && msg.cseq().unwrap().method == Method::Invite
        {
            let branch = msg.top_via().unwrap().branch().unwrap().to_owned();
            if let Some(inv) = self
                .p_invites
                .iter()
                .find(|i| i.top_via().unwrap().branch() == Some(&branch))
            {
                self.p_finals.push((inv.clone(), msg));
            }
        }
    }

    fn step_to(&mut self, target: Instant) {
        loop {
            let next = [
                self.wire.iter().map(|w| w.0).min(),
                self.a.poll_timeout(),
                self.b.poll_timeout(),
                self.pending.front().map(|p| p.0 + TU_LATENCY),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next.filter(|&n| n <= target) else {
                break;
            };
            self.now = next;
            self.wire.sort_by_key(|w| (w.0, w.1));
            while self.wire.first().is_some_and(|w| w.0 <= self.now) {
                let (_, _, from, to, msg) = self.wire.remove(0);
                if to == addr(A, self.reliable) {
                    let _ = self.a.receive(msg, from, self.now);
                } else if to == addr(B, self.reliable) {
                    let _ = self.b.receive(msg, from, self.now);
                } else {
                    self.p_receive(msg);
                }
                self.input();
            }
            while self
                .pending
                .front()
                .is_some_and(|p| p.0 + TU_LATENCY <= self.now)
            {
                let (_, id, req) = self.pending.pop_front().unwrap();
                self.answer(id, &req);
            }
            self.a.handle_timeout(self.now);
            self.b.handle_timeout(self.now);
            for t in [&self.a, &self.b] {
                if let Some(at) = t.poll_timeout() {
                    assert!(at > self.now, "a due timer survived handle_timeout");
                }
            }
            self.drain(true);
            self.drain(false);
        }
        self.now = target.max(self.now);
    }

    fn via(&self, who: u8, branch: &str) -> String {
        format!("SIP/2.0/UDP 192.0.2.{who}:5060;branch={branch}")
    }

    fn run(&mut self, op: &Op) {
        match *op {
            Op::Request => {
                self.n += 1;
                let branch = self.a.new_branch();
                let req = request_via("MESSAGE", &self.via(A, &branch), &format!("a{}", self.n));
                if let Ok(id) = self.a.send_request(req, addr(B, self.reliable), self.now) {
                    self.live.push((true, id));
                }
                self.input();
            }
            Op::Invite => {
                self.n += 1;
                let branch = format!("z9hG4bKp{}", self.n);
                let inv = request_via("INVITE", &self.via(P, &branch), &format!("p{}", self.n));
                self.p_invites.push(inv.clone());
                self.put(addr(P, self.reliable), addr(B, self.reliable), inv);
            }
            Op::Ack => {
                if let Some((inv, fin)) = self.p_finals.last().cloned() {
                    self.put(
                        addr(P, self.reliable),
                        addr(B, self.reliable),
                        ack_for(&inv, &fin),
                    );
                }
            }
            Op::Cancel => {
                if let Some(inv) = self.p_invites.last().cloned() {
                    self.put(
                        addr(P, self.reliable),
                        addr(B, self.reliable),
                        cancel_for(&inv),
                    );
                }
            }
            Op::Advance(d) => self.step_to(self.now + ms(u64::from(d))),
            Op::TransportError(k) => {
                if !self.live.is_empty() {
                    let (a, id) = self.live[k % self.live.len()];
                    let t = if a { &mut self.a } else { &mut self.b };
                    let _ = t.transport_error(id);
                    self.input();
                }
            }
            Op::Answer => {
                if let Some((_, id, req)) = self.pending.pop_front() {
                    self.answer(id, &req);
                }
            }
        }
    }

    fn finish(&mut self) {
        while let Some((_, id, req)) = self.pending.pop_front() {
            self.answer(id, &req);
        }
        self.step_to(self.now + Duration::from_secs(24 * 3600));
        assert!(self.wire.is_empty());
        assert!(self.a.is_empty(), "A: {:?}", self.a);
        assert!(self.b.is_empty(), "B: {:?}", self.b);
        assert_eq!((self.a.poll_timeout(), self.b.poll_timeout()), (None, None));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn lossy_udp_never_panics_and_always_terminates(
        ops in prop::collection::vec(op(), 1..60),
        fates in prop::collection::vec(fate(), 1..16),
        reliable in prop::bool::weighted(0.2),
    ) {
        let mut sim = Sim::new(fates, reliable);
        for op in &ops {
            sim.run(op);
        }
        sim.finish();
    }
}
