//! The run, phase by phase: connect (paced), optional roster setup, hold, traffic
//! (messages and presence at fixed rates), drain, close. Every phase has a deadline.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};
use tokio::time::MissedTickBehavior;

use crate::cli::Args;
use crate::session::{self, Cmd, Event, Shared};
use crate::stats::{Histogram, Report, Stats};
use crate::util::{cpu_time, rss_kib, wait_for_file, write_atomic, Rng};
use crate::xmpp::{LoginParams, RosterItem};

/// Pacing tick of the traffic and setup phases.
const TICK: Duration = Duration::from_millis(2);
/// How long the close phase waits for sessions to finish.
const CLOSE_PHASE: Duration = Duration::from_secs(10);
/// Roster setup is over once nothing moved for this long.
const SETUP_QUIET: Duration = Duration::from_secs(3);

#[derive(Debug, Default)]
struct Slot {
    tx: Option<mpsc::Sender<Cmd>>,
    /// Local indices of this user's mutual ('both') contacts.
    contacts: Vec<u32>,
    away: bool,
    roster_reported: bool,
}

struct Coord {
    args: Args,
    slots: Vec<Slot>,
    up: u32,
    resolved: u32,
    closing: bool,
    events: mpsc::UnboundedReceiver<Event>,
    stats: Arc<Stats>,
    rng: Rng,
    report: Report,
    login: Histogram,
    last_up: Option<Instant>,
}

impl Coord {
    fn is_up(&self, i: u32) -> bool {
        self.slots[i as usize].tx.is_some()
    }

    fn contacts_from(&self, items: &[RosterItem]) -> Vec<u32> {
        let mut v: Vec<u32> = items
            .iter()
            .filter(|it| it.subscription == "both")
            .filter_map(|it| self.args.local_index(&it.jid))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Up {
                idx,
                tx,
                roster,
                login,
            } => {
                let contacts = self.contacts_from(&roster);
                let slot = &mut self.slots[idx as usize];
                slot.tx = Some(tx);
                slot.contacts = contacts;
                self.up += 1;
                self.resolved += 1;
                self.report.established += 1;
                self.login
                    .record(u64::try_from(login.as_micros()).unwrap_or(u64::MAX));
                self.last_up = Some(Instant::now());
            }
            Event::Failed { why } => {
                self.resolved += 1;
                self.report.failed += 1;
                *self.report.failures.entry(why).or_default() += 1;
            }
            Event::Dropped { idx, why } => {
                self.down(idx);
                if !self.closing {
                    self.report.dropped += 1;
                    *self.report.drops.entry(why).or_default() += 1;
                }
            }
            Event::Closed { idx } => self.down(idx),
            Event::Roster { idx, items } => {
                let contacts = self.contacts_from(&items);
                let slot = &mut self.slots[idx as usize];
                slot.contacts = contacts;
                slot.roster_reported = true;
            }
        }
    }

    fn down(&mut self, idx: u32) {
        if self.slots[idx as usize].tx.take().is_some() {
            self.up -= 1;
        }
    }

    /// Handles events until `deadline` or until `done` holds.
    async fn pump_until(&mut self, deadline: tokio::time::Instant, done: impl Fn(&Self) -> bool) {
        while !done(self) {
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Some(ev) => self.on_event(ev),
                    None => return,
                },
                () = tokio::time::sleep_until(deadline) => return,
            }
        }
    }

    /// Handles the events already queued.
    fn pump_ready(&mut self) {
        while let Ok(ev) = self.events.try_recv() {
            self.on_event(ev);
        }
    }

    fn send(&mut self, i: u32, cmd: Cmd) -> bool {
        match &self.slots[i as usize].tx {
            Some(tx) => tx.try_send(cmd).is_ok(),
            None => false,
        }
    }

    /// A random session that is up (a few tries, then a scan from a random point).
    fn random_up(&mut self) -> Option<u32> {
        let n = self.args.users;
        if self.up == 0 {
            return None;
        }
        for _ in 0..16 {
            let i = self.rng.below(n);
            if self.is_up(i) {
                return Some(i);
            }
        }
        let start = self.rng.below(n);
        (0..n).map(|k| (start + k) % n).find(|i| self.is_up(*i))
    }

    fn random_contact(&mut self, s: u32) -> Option<u32> {
        let contacts = &self.slots[s as usize].contacts;
        if !contacts.is_empty() {
            for _ in 0..8 {
                let c = contacts[self.rng.below(contacts.len() as u32) as usize];
                if self.is_up(c) {
                    return Some(c);
                }
            }
            return None;
        }
        // No contacts: any other user of this process.
        for _ in 0..8 {
            let c = self.random_up()?;
            if c != s {
                return Some(c);
            }
        }
        None
    }

    /// Queues one chat message to a random sender; true if it was queued.
    fn issue_message(&mut self) -> bool {
        if self.args.peer_server.is_some() {
            return self.issue_federated_message();
        }
        let target = self
            .random_up()
            .and_then(|s| self.random_contact(s).map(|c| (s, c)));
        let sent = match target {
            Some((s, c)) => {
                let to = self.args.bare_jid(c);
                self.send(s, Cmd::Chat { to })
            }
            None => false,
        };
        if !sent {
            Stats::add(&self.stats.msgs_send_skipped, 1);
        }
        sent
    }

    /// Federated mode: a random sender on the server writes to the same account on
    /// the peer (when that session is up).
    fn issue_federated_message(&mut self) -> bool {
        let sent = match self.random_up() {
            Some(s) if self.is_up(self.args.users + s) => match self.args.peer_bare_jid(s) {
                Some(to) => self.send(s, Cmd::Chat { to }),
                None => false,
            },
            _ => false,
        };
        if !sent {
            Stats::add(&self.stats.msgs_send_skipped, 1);
        }
        sent
    }

    fn issue_presence(&mut self) {
        let Some(s) = self.random_up() else {
            return;
        };
        let away = !self.slots[s as usize].away;
        if self.send(s, Cmd::Presence { away }) {
            self.slots[s as usize].away = away;
            let online = self.slots[s as usize]
                .contacts
                .iter()
                .filter(|c| self.is_up(**c))
                .count();
            self.report.presence_expected += online as u64;
        }
    }

    async fn connect_phase(
        &mut self,
        shared: &Arc<Shared>,
        events: mpsc::UnboundedSender<Event>,
        tls: Arc<rustls::ClientConfig>,
    ) {
        let a = self.args.clone();
        let n = a.sessions();
        let start = tokio::time::Instant::now();
        // Bounded: pacing (a server may log users in at a quarter of the target rate
        // and still finish) plus the slowest possible tail of logins.
        let phase_secs = f64::from(n) / a.connect_rate * 4.0 + a.login_timeout * 2.0 + 10.0;
        let deadline = start + Duration::from_secs_f64(phase_secs.min(4.0 * 3600.0));
        let sem = Arc::new(Semaphore::new(a.max_pending));
        let shared = Arc::clone(shared);
        let login_timeout = Duration::from_secs_f64(a.login_timeout);
        let launcher = tokio::spawn(async move {
            let mut launched = 0u32;
            for i in 0..n {
                let at = start + Duration::from_secs_f64(f64::from(i) / a.connect_rate);
                tokio::time::sleep_until(at).await;
                let permit = tokio::select! {
                    p = Arc::clone(&sem).acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    () = tokio::time::sleep_until(deadline) => break,
                };
                let ip = a.source_ips[i as usize % a.source_ips.len()];
                let (server, domain, account) = a.home(i);
                let params = LoginParams {
                    server,
                    source: Some(SocketAddr::new(ip, 0)),
                    domain: domain.to_string(),
                    username: a.username(account),
                    password: a.password(account),
                    resource: a.resource.clone(),
                    mechanism: a.mechanism,
                    tls: Arc::clone(&tls),
                };
                tokio::spawn(session::run(
                    i,
                    params,
                    Arc::clone(&shared),
                    events.clone(),
                    login_timeout,
                    permit,
                ));
                launched += 1;
            }
            launched
        });
        self.pump_until(deadline, |c| c.resolved >= n).await;
        let launched = if launcher.is_finished() {
            launcher.await.unwrap_or(0)
        } else {
            launcher.abort();
            let _ = launcher.await;
            self.pump_ready();
            self.resolved
        };
        self.report.attempted = u64::from(launched.max(self.resolved));
        let unresolved = n - self.resolved.min(n);
        if unresolved > 0 {
            self.report.failed += u64::from(unresolved);
            *self
                .report
                .failures
                .entry("not finished before the connect phase deadline".into())
                .or_default() += u64::from(unresolved);
        }
        let end = self
            .last_up
            .map_or(Duration::ZERO, |t| t.duration_since(start.into_std()));
        self.report.establish_secs = end.as_secs_f64();
    }

    /// Sends subscription requests, paced, from every user that is up: to its ring
    /// neighbours on one side, both sides, or (repair) to those still missing.
    async fn send_subscriptions(
        &mut self,
        pick: impl Fn(&Self, u32) -> Vec<u32>,
        deadline: tokio::time::Instant,
    ) -> bool {
        let per_sec = self.args.connect_rate.max(50.0);
        let mut any = false;
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let t0 = tokio::time::Instant::now();
        let mut next = 0u32;
        while next < self.args.users && tokio::time::Instant::now() < deadline {
            tokio::select! {
                ev = self.events.recv() => if let Some(ev) = ev { self.on_event(ev) },
                _ = interval.tick() => {
                    let due = ((t0.elapsed().as_secs_f64() * per_sec) as u32 + 1).min(self.args.users);
                    while next < due {
                        let i = next;
                        next += 1;
                        if !self.is_up(i) {
                            continue;
                        }
                        let to: Vec<String> = pick(self, i)
                            .into_iter()
                            .map(|j| self.args.bare_jid(j))
                            .collect();
                        if !to.is_empty() {
                            any = true;
                            self.send(i, Cmd::Subscribe { to });
                        }
                    }
                }
            }
        }
        any
    }

    /// Waits until the subscription traffic settles (nothing moved for a while).
    async fn wait_quiet(&mut self, deadline: tokio::time::Instant) {
        let activity = |s: &Stats| Stats::get(&s.stanzas_in);
        let mut last = activity(&self.stats);
        let mut quiet_since = tokio::time::Instant::now();
        while tokio::time::Instant::now() < deadline {
            let step = tokio::time::Instant::now() + Duration::from_millis(250);
            self.pump_until(step.min(deadline), |_| false).await;
            let now_activity = activity(&self.stats);
            if now_activity != last {
                last = now_activity;
                quiet_since = tokio::time::Instant::now();
            } else if quiet_since.elapsed() >= SETUP_QUIET {
                break;
            }
        }
    }

    /// Fresh rosters from the server: returns how many users have every ring neighbour
    /// as a mutual contact.
    async fn collect_rosters(&mut self) -> u64 {
        let n = self.args.users;
        for i in 0..n {
            self.slots[i as usize].roster_reported = false;
            self.send(i, Cmd::RosterGet);
        }
        // A loaded server answers thousands of roster gets slowly (Prosody with 19,000
        // users took minutes): allow time in proportion to the users.
        let report_deadline = tokio::time::Instant::now()
            + Duration::from_secs(30)
            + Duration::from_secs_f64(f64::from(n) / 25.0);
        self.pump_until(report_deadline, |c| {
            (0..n).all(|i| !c.is_up(i) || c.slots[i as usize].roster_reported)
        })
        .await;
        (0..n).filter(|i| self.missing(*i).is_empty()).count() as u64
    }

    /// Ring neighbours not (yet) mutual contacts of `i`; all of them if no roster came.
    fn missing(&self, i: u32) -> Vec<u32> {
        let slot = &self.slots[i as usize];
        let ring = self.args.ring_neighbours(i);
        if !slot.roster_reported {
            return ring;
        }
        ring.into_iter()
            .filter(|j| !slot.contacts.contains(j))
            .collect()
    }

    /// Builds the roster ring. By default in two ordered passes (subscriptions to the
    /// neighbours after each user, then to those before), then repair rounds for what is
    /// still missing, so no two requests of one pair cross on the wire.
    async fn setup_phase(&mut self) {
        const REPAIR_ROUNDS: u32 = 3;
        let started = Instant::now();
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs_f64(self.args.setup_timeout);
        let have = |c: &Self, i: u32, j: &u32| c.slots[i as usize].contacts.contains(j);
        // One pass over both sides at once (simultaneous mode), or the side after each
        // user, then the side before it.
        let passes: &[Option<bool>] = if self.args.setup_simultaneous {
            &[None]
        } else {
            &[Some(true), Some(false)]
        };
        for &side in passes {
            let sent = self
                .send_subscriptions(
                    |c, i| {
                        let ring = match side {
                            None => c.args.ring_neighbours(i),
                            Some(after) => c.args.ring_side(i, after),
                        };
                        ring.into_iter().filter(|j| !have(c, i, j)).collect()
                    },
                    deadline,
                )
                .await;
            if sent {
                self.wait_quiet(deadline).await;
            }
        }
        let mut complete = self.collect_rosters().await;
        let mut round = 0;
        while !self.args.setup_simultaneous
            && complete < u64::from(self.up)
            && round < REPAIR_ROUNDS
            && tokio::time::Instant::now() < deadline
        {
            // The server may still be working through the requests: let it settle and
            // look again before asking anything twice.
            self.wait_quiet(deadline).await;
            complete = self.collect_rosters().await;
            if complete >= u64::from(self.up) {
                break;
            }
            round += 1;
            self.report.setup_repairs += 1;
            if self.send_subscriptions(|c, i| c.missing(i), deadline).await {
                self.wait_quiet(deadline).await;
            }
            complete = self.collect_rosters().await;
        }
        self.report.rosters_complete = Some((complete, u64::from(self.args.users)));
        self.report.setup_secs = Some(started.elapsed().as_secs_f64());
    }

    async fn traffic_phase(&mut self) {
        let a = &self.args;
        let (msg_rate, pres_rate, duration) = (a.msg_rate, a.presence_rate, a.duration);
        self.stats.counting.store(true, Ordering::Relaxed);
        let pid = self.args.server_pid;
        let cpu0 = pid.and_then(cpu_time);
        let peer = self.args.peer_pid;
        let peer_cpu0 = peer.and_then(cpu_time);
        let own0 = cpu_time(std::process::id());
        let start = tokio::time::Instant::now();
        let end = start + Duration::from_secs_f64(duration);
        let mut msgs = 0u64;
        // Messages handed to sessions: the drain waits for these, not only for those
        // the sessions already wrote (the last ones may still be in their queues).
        let mut queued = 0u64;
        let mut pres = 0u64;
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        if msg_rate > 0.0 || pres_rate > 0.0 {
            loop {
                tokio::select! {
                    ev = self.events.recv() => if let Some(ev) = ev { self.on_event(ev) },
                    _ = interval.tick() => {
                        let now = tokio::time::Instant::now();
                        let el = now.min(end).duration_since(start).as_secs_f64();
                        let due_m = (el * msg_rate) as u64;
                        while msgs < due_m {
                            queued += u64::from(self.issue_message());
                            msgs += 1;
                        }
                        let due_p = (el * pres_rate) as u64;
                        while pres < due_p {
                            self.issue_presence();
                            pres += 1;
                        }
                        if now >= end {
                            break;
                        }
                    }
                }
            }
        } else {
            self.pump_until(end, |_| false).await;
        }
        self.report.traffic_secs = start.elapsed().as_secs_f64();
        self.report.cpu_traffic = pid
            .and_then(cpu_time)
            .zip(cpu0)
            .map(|(b, a)| b.saturating_sub(a));
        self.report.peer_cpu_traffic = peer
            .and_then(cpu_time)
            .zip(peer_cpu0)
            .map(|(b, a)| b.saturating_sub(a));
        self.report.own_cpu_traffic = cpu_time(std::process::id())
            .zip(own0)
            .map(|(b, a)| b.saturating_sub(a));
        // Drain: wait (bounded) for what is still in flight.
        let drain_end = tokio::time::Instant::now() + Duration::from_secs_f64(self.args.drain);
        let expected_presence = self.report.presence_expected;
        while tokio::time::Instant::now() < drain_end {
            let sent = Stats::get(&self.stats.msgs_sent).max(queued);
            let done = Stats::get(&self.stats.msgs_received) + Stats::get(&self.stats.msgs_error);
            if done >= sent && Stats::get(&self.stats.presence_received) >= expected_presence {
                break;
            }
            let step = (tokio::time::Instant::now() + Duration::from_millis(20)).min(drain_end);
            self.pump_until(step, |_| false).await;
        }
        self.stats.counting.store(false, Ordering::Relaxed);
    }

    async fn close_phase(&mut self) {
        self.closing = true;
        for i in 0..self.args.sessions() {
            if let Some(tx) = &self.slots[i as usize].tx {
                if tx.try_send(Cmd::Close).is_err() {
                    // Queue full: dropping the sender closes the session as well.
                    self.down(i);
                }
            }
        }
        let deadline = tokio::time::Instant::now() + CLOSE_PHASE;
        self.pump_until(deadline, |c| c.up == 0).await;
        for slot in &mut self.slots {
            slot.tx = None;
        }
    }
}

/// Runs the whole load and returns the report.
pub(crate) async fn run(args: Args, tls: Arc<rustls::ClientConfig>) -> Report {
    let begun = Instant::now();
    let stats = Arc::new(Stats::default());
    let mut rng = Rng::from_entropy();
    let run_id = format!("{:016x}", rng.next_u64());
    let shared = Arc::new(Shared {
        stats: Arc::clone(&stats),
        epoch: Instant::now(),
        run_id,
        padding: if args.body_padding > 0 {
            format!(" {}", "x".repeat(args.body_padding))
        } else {
            String::new()
        },
    });
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let report = Report {
        label: args.label.clone(),
        server: match (&args.peer_server, &args.peer_domain) {
            (Some(p), Some(d)) => format!("{} ({}) -> {p} ({d})", args.server, args.domain),
            _ => args.server.to_string(),
        },
        users: u64::from(args.users),
        offset: u64::from(args.offset),
        connect_rate_target: args.connect_rate,
        msg_rate_target: args.msg_rate,
        presence_rate_target: args.presence_rate,
        failures: BTreeMap::new(),
        ..Report::default()
    };
    let mut c = Coord {
        slots: (0..args.sessions()).map(|_| Slot::default()).collect(),
        args,
        up: 0,
        resolved: 0,
        closing: false,
        events: ev_rx,
        stats: Arc::clone(&stats),
        rng,
        report,
        login: Histogram::default(),
        last_up: None,
    };
    let pid = c.args.server_pid;
    c.report.rss_before_kib = pid.and_then(rss_kib);
    let peer = c.args.peer_pid;
    c.report.peer_rss_before_kib = peer.and_then(rss_kib);
    let cpu0 = pid.and_then(cpu_time);
    c.connect_phase(&shared, ev_tx, tls).await;
    c.report.rss_up_kib = pid.and_then(rss_kib);
    c.report.peer_rss_up_kib = peer.and_then(rss_kib);
    c.report.own_rss_up_kib = rss_kib(std::process::id());
    c.report.cpu_connect = pid
        .and_then(cpu_time)
        .zip(cpu0)
        .map(|(b, a)| b.saturating_sub(a));
    if let Some(path) = &c.args.ready_file {
        let line = format!("{} {}\n", c.report.established, c.report.failed);
        if let Err(e) = write_atomic(path, &line) {
            eprintln!("herald-loadgen: cannot write {}: {e}", path.display());
        }
    }
    if c.args.setup_rosters > 0 && c.up > 0 {
        c.setup_phase().await;
    }
    let hold_end = tokio::time::Instant::now() + Duration::from_secs_f64(c.args.hold);
    c.pump_until(hold_end, |_| false).await;
    if let Some(go) = c.args.go_file.clone() {
        let timeout = Duration::from_secs_f64(c.args.go_timeout);
        let deadline = tokio::time::Instant::now() + timeout;
        let waiter = wait_for_file(&go, timeout);
        tokio::pin!(waiter);
        loop {
            tokio::select! {
                found = &mut waiter => {
                    if !found {
                        eprintln!("herald-loadgen: {} did not appear; starting anyway", go.display());
                    }
                    break;
                }
                ev = c.events.recv() => if let Some(ev) = ev { c.on_event(ev) },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
    }
    c.traffic_phase().await;
    c.report.held = u64::from(c.up);
    c.report.rss_end_kib = pid.and_then(rss_kib);
    c.report.peer_rss_end_kib = peer.and_then(rss_kib);
    c.close_phase().await;

    let r = &mut c.report;
    r.login = std::mem::take(&mut c.login);
    r.msgs_sent = Stats::get(&stats.msgs_sent);
    r.msgs_received = Stats::get(&stats.msgs_received);
    r.msgs_duplicate = Stats::get(&stats.msgs_duplicate);
    r.msgs_stale = Stats::get(&stats.msgs_stale);
    r.msgs_error = Stats::get(&stats.msgs_error);
    r.msgs_send_skipped = Stats::get(&stats.msgs_send_skipped);
    r.presence_sent = Stats::get(&stats.presence_sent);
    r.presence_received = Stats::get(&stats.presence_received);
    r.subscribe_sent = Stats::get(&stats.subscribe_sent);
    r.subscribe_approved = Stats::get(&stats.subscribe_approved);
    r.latency = stats.latency.lock().map(|h| h.clone()).unwrap_or_default();
    r.total_secs = begun.elapsed().as_secs_f64();
    std::mem::take(&mut c.report)
}
