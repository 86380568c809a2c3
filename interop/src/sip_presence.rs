//! `herald-loadgen sip-presence`: a SIP presence load generator, plain RFC 3261 over
//! UDP, against any registrar + SIMPLE presence server (Herald, Kamailio).
//!
//! Phase 1 REGISTERs every user (digest: the 401/407 challenge is answered, then reused
//! with a growing nonce count). Phase 2 has every watcher SUBSCRIBE (Event: presence)
//! to K presentities and answers every NOTIFY with 200. Phase 3 PUBLISHes PIDF
//! documents at stepped rates, each carrying a note `hb-seq=S t=MICROS`; a NOTIFY whose
//! body holds that note is matched to publication S, giving the publish → NOTIFY
//! latency and the NOTIFYs lost. Requests are formatted by hand; messages received are
//! parsed with `herald_translate::sip::parse_datagram`; digest responses come from
//! `herald_translate::digest`. Every loop is bounded in count and time.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_translate::digest::{self, Algorithm, Challenge, Credentials, Qop};
use herald_translate::sip::{parse_datagram, HeaderName, Limits, Message};
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinHandle;

use crate::sip_cli::SipArgs;
use crate::stats::Histogram;
use crate::util::{cpu_time, rss_kib};

/// RFC 3261 T1 and the largest retransmission interval used (T2).
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// Marker of the sequence number in the PIDF note.
const SEQ_MARK: &[u8] = b"hb-seq=";
/// Most digest round trips for one request.
const AUTH_ATTEMPTS: usize = 3;

/// A digest challenge learnt from a 401/407, answered with a growing nonce count.
struct AuthSlot {
    challenge: Challenge,
    proxy: bool,
    ha1: String,
    nc: u32,
}

struct User {
    name: String,
    pass: String,
    sock: usize,
    /// Slot 0: REGISTER (401 from a proxy-registrar); slot 1: everything else (407).
    auth: Mutex<[Option<AuthSlot>; 2]>,
    etag: Mutex<Option<String>>,
    /// A PUBLISH of this presentity is in progress (one at a time, for SIP-If-Match).
    busy: AtomicBool,
    /// CSeq of the PUBLISHes (one Call-ID per presentity).
    pub_cseq: AtomicU32,
}

struct Sub {
    watcher: u32,
    presentity: u32,
    call_id: String,
}

/// A PUBLISH whose NOTIFYs are awaited.
struct PubRec {
    sent: Instant,
    presentity: u32,
    /// Answered 2xx.
    done: bool,
    /// Subscriptions (indexes) that received its note.
    seen: Vec<u32>,
}

#[derive(Default)]
struct Counters {
    notify_rx: AtomicU64,
    notify_matched: AtomicU64,
    notify_dup: AtomicU64,
    notify_no_seq: AtomicU64,
    notify_unknown_seq: AtomicU64,
    notify_unknown_dialog: AtomicU64,
    notify_terminated: AtomicU64,
    other_requests: AtomicU64,
    parse_errors: AtomicU64,
    stray_responses: AtomicU64,
    retransmits: AtomicU64,
    timeouts: AtomicU64,
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

struct Ctx {
    args: SipArgs,
    run: u64,
    limits: Limits,
    algorithm: Option<Algorithm>,
    sockets: Vec<Arc<UdpSocket>>,
    locals: Vec<SocketAddr>,
    pending: Vec<Mutex<HashMap<String, oneshot::Sender<Message>>>>,
    users: Vec<User>,
    subs: Vec<Sub>,
    sub_by_call: HashMap<String, u32>,
    sub_active: Vec<AtomicBool>,
    watchers_of: Vec<AtomicU32>,
    pubs: Mutex<HashMap<u64, PubRec>>,
    notify_lat: Mutex<Histogram>,
    publish_lat: Mutex<Histogram>,
    counters: Counters,
    errors: Mutex<BTreeMap<String, u64>>,
    next_id: AtomicU64,
    epoch: Instant,
}

enum Fail {
    Timeout,
    Status(u16),
}

fn code_of(m: &Message) -> u16 {
    m.status_line().map_or(0, |s| s.code)
}

fn branch_of(m: &Message) -> Option<&str> {
    let via = m.header(&HeaderName::Via)?;
    let first = via.split(',').next()?;
    first
        .split(';')
        .find_map(|p| p.trim().strip_prefix("branch="))
        .map(str::trim)
}

/// The sequence number after `hb-seq=` in a body.
fn seq_in(body: &[u8]) -> Option<u64> {
    let at = body.windows(SEQ_MARK.len()).position(|w| w == SEQ_MARK)? + SEQ_MARK.len();
    let digits: Vec<u8> = body[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// Sums of the server processes' VmRSS, PSS (KiB) and CPU time.
#[derive(Debug, Clone, Copy, Default)]
struct ServerSample {
    rss_kib: u64,
    pss_kib: u64,
    cpu: Duration,
}

fn pss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn sample(pids: &[u32]) -> ServerSample {
    let mut s = ServerSample::default();
    for &pid in pids {
        s.rss_kib += rss_kib(pid).unwrap_or(0);
        s.pss_kib += pss_kib(pid).unwrap_or(0);
        s.cpu += cpu_time(pid).unwrap_or_default();
    }
    s
}

/// The kernel's UDP `RcvbufErrors` and `InErrors` counters (/proc/net/snmp), for the
/// whole machine: datagrams dropped because a socket's receive buffer was full.
fn udp_drops() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/net/snmp") else {
        return 0;
    };
    let mut lines = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn own_cpu() -> Duration {
    cpu_time(std::process::id()).unwrap_or_default()
}

impl Ctx {
    fn aor(&self, u: u32) -> String {
        format!("sip:{}@{}", self.users[u as usize].name, self.args.domain)
    }

    fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn error(&self, what: String) {
        *self.errors.lock().unwrap().entry(what).or_insert(0) += 1;
    }

    /// Learns the challenge of a 401/407 for `user`'s slot; false if none is usable.
    fn learn(&self, user: u32, slot: usize, resp: &Message) -> bool {
        let proxy = code_of(resp) == 407;
        let name = if proxy {
            HeaderName::ProxyAuthenticate
        } else {
            HeaderName::WwwAuthenticate
        };
        let challenges: Vec<Challenge> = resp
            .header_values(&name)
            .filter_map(|v| Challenge::parse(v).ok())
            .collect();
        let chosen = match self.algorithm {
            Some(a) => challenges.into_iter().find(|c| c.algorithm == a),
            None => challenges.into_iter().next(),
        };
        let Some(challenge) = chosen else {
            return false;
        };
        let u = &self.users[user as usize];
        let ha1 = digest::ha1(
            challenge.algorithm.base(),
            &u.name,
            &challenge.realm,
            &u.pass,
        );
        u.auth.lock().unwrap()[slot] = Some(AuthSlot {
            challenge,
            proxy,
            ha1,
            nc: 0,
        });
        true
    }

    /// The Authorization (or Proxy-Authorization) header line for a request, if a
    /// challenge is known.
    fn authorization(&self, user: u32, slot: usize, method: &str, uri: &str) -> String {
        let u = &self.users[user as usize];
        let mut slots = u.auth.lock().unwrap();
        let Some(s) = slots[slot].as_mut() else {
            return String::new();
        };
        s.nc += 1;
        let qop = s.challenge.qop_auth.then_some(Qop::Auth);
        let mut c = Credentials {
            username: u.name.clone(),
            realm: s.challenge.realm.clone(),
            nonce: s.challenge.nonce.clone(),
            uri: uri.to_owned(),
            response: String::new(),
            algorithm: s.challenge.algorithm,
            cnonce: qop.map(|_| format!("{:x}{:08x}", self.run, self.id())),
            opaque: s.challenge.opaque.clone(),
            qop,
            nc: qop.map(|_| s.nc),
        };
        match digest::expected_response(&c, method, &s.ha1) {
            Ok(r) => c.response = r,
            Err(_) => return String::new(),
        }
        let name = if s.proxy {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        format!("{name}: {c}\r\n")
    }

    /// Sends one request and waits for its final response, retransmitting at T1,
    /// 2·T1... (at most T2 apart) until --transaction-timeout.
    async fn transact(&self, sock: usize, branch: String, bytes: &[u8]) -> Option<Message> {
        let (tx, mut rx) = oneshot::channel();
        self.pending[sock]
            .lock()
            .unwrap()
            .insert(branch.clone(), tx);
        let socket = &self.sockets[sock];
        let deadline = Instant::now() + Duration::from_secs_f64(self.args.transaction_timeout);
        let mut interval = T1;
        let _ = socket.send_to(bytes, self.args.server).await;
        loop {
            let now = Instant::now();
            if now >= deadline {
                self.pending[sock].lock().unwrap().remove(&branch);
                inc(&self.counters.timeouts);
                return None;
            }
            match tokio::time::timeout(interval.min(deadline - now), &mut rx).await {
                Ok(Ok(m)) => return Some(m),
                Ok(Err(_)) => return None,
                Err(_) => {
                    if Instant::now() < deadline {
                        inc(&self.counters.retransmits);
                        let _ = socket.send_to(bytes, self.args.server).await;
                        interval = (interval * 2).min(T2);
                    }
                }
            }
        }
    }

    /// Sends `method` from `user`, answering 401/407 challenges (bounded); returns the
    /// final response that is not a challenge.
    #[allow(clippy::too_many_arguments)]
    async fn request(
        &self,
        user: u32,
        method: &str,
        ruri: &str,
        to: &str,
        call_id: &str,
        from_tag: &str,
        cseq: &mut u32,
        extra: &str,
        body: &[u8],
    ) -> Result<Message, Fail> {
        let slot = usize::from(method != "REGISTER");
        let u = &self.users[user as usize];
        let local = self.locals[u.sock];
        let mut last = 0;
        for _ in 0..AUTH_ATTEMPTS {
            *cseq += 1;
            let branch = format!("z9hG4bK{:x}.{:x}", self.run, self.id());
            let auth = self.authorization(user, slot, method, ruri);
            let mut msg = String::with_capacity(600 + body.len());
            let _ = write!(
                msg,
                "{method} {ruri} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
                 Max-Forwards: 70\r\n\
                 From: <sip:{name}@{domain}>;tag={from_tag}\r\n\
                 To: <{to}>\r\n\
                 Call-ID: {call_id}\r\n\
                 CSeq: {cseq} {method}\r\n\
                 Contact: <sip:{name}@{local}>\r\n\
                 User-Agent: herald-loadgen\r\n\
                 {extra}{auth}Content-Length: {len}\r\n\r\n",
                name = u.name,
                domain = self.args.domain,
                len = body.len(),
            );
            let mut bytes = msg.into_bytes();
            bytes.extend_from_slice(body);
            let Some(resp) = self.transact(u.sock, branch, &bytes).await else {
                return Err(Fail::Timeout);
            };
            last = code_of(&resp);
            if last == 401 || last == 407 {
                if !self.learn(user, slot, &resp) {
                    return Err(Fail::Status(last));
                }
                continue;
            }
            return Ok(resp);
        }
        Err(Fail::Status(last))
    }

    fn fail(&self, method: &str, f: &Fail) {
        match f {
            Fail::Timeout => self.error(format!("{method} timeout")),
            Fail::Status(c) => self.error(format!("{method} {c}")),
        }
    }

    async fn register(&self, u: u32) -> bool {
        let ruri = format!("sip:{}", self.args.domain);
        let aor = self.aor(u);
        let call_id = format!("r{u}.{:x}@herald-loadgen", self.run);
        let extra = format!("Expires: {}\r\n", self.args.expires);
        let mut cseq = 0;
        match self
            .request(
                u,
                "REGISTER",
                &ruri,
                &aor,
                &call_id,
                &format!("r{u}"),
                &mut cseq,
                &extra,
                b"",
            )
            .await
        {
            Ok(r) if (200..300).contains(&code_of(&r)) => true,
            Ok(r) => {
                self.fail("REGISTER", &Fail::Status(code_of(&r)));
                false
            }
            Err(f) => {
                self.fail("REGISTER", &f);
                false
            }
        }
    }

    /// Watcher `w`'s K SUBSCRIBEs, one after the other (one nonce count sequence).
    async fn subscribe(&self, w: u32) -> u32 {
        let k = self.args.watch;
        let extra = format!(
            "Event: presence\r\nAccept: application/pidf+xml\r\nExpires: {}\r\n",
            self.args.expires
        );
        let mut ok = 0;
        for j in 0..k {
            let idx = w * k + j;
            let sub = &self.subs[idx as usize];
            let target = self.aor(sub.presentity);
            let mut cseq = 0;
            let res = self
                .request(
                    w,
                    "SUBSCRIBE",
                    &target,
                    &target,
                    &sub.call_id,
                    &format!("s{idx}"),
                    &mut cseq,
                    &extra,
                    b"",
                )
                .await;
            match res {
                Ok(r) if (200..300).contains(&code_of(&r)) => {
                    self.sub_active[idx as usize].store(true, Ordering::Relaxed);
                    self.watchers_of[sub.presentity as usize].fetch_add(1, Ordering::Relaxed);
                    ok += 1;
                }
                Ok(r) => self.fail("SUBSCRIBE", &Fail::Status(code_of(&r))),
                Err(f) => self.fail("SUBSCRIBE", &f),
            }
        }
        ok
    }

    fn pidf(&self, p: u32, seq: u64) -> Vec<u8> {
        let basic = if seq.is_multiple_of(2) {
            "open"
        } else {
            "closed"
        };
        let t = self.epoch.elapsed().as_micros();
        let note = format!("hb-seq={seq} t={t}");
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"{entity}\">\n\
             <tuple id=\"t{p}\"><status><basic>{basic}</basic></status><note>{note}</note></tuple>\n\
             <note>{note}</note>\n\
             </presence>\n",
            entity = self.aor(p),
        )
        .into_bytes()
    }

    /// One PUBLISH of presentity `p` carrying sequence number `seq`. Returns whether it
    /// was answered 2xx. Clears the presentity's busy flag.
    async fn publish(&self, p: u32, seq: u64) -> bool {
        let u = &self.users[p as usize];
        let aor = self.aor(p);
        let call_id = format!("p{p}.{:x}@herald-loadgen", self.run);
        let body = self.pidf(p, seq);
        let mut ok = false;
        for _ in 0..2 {
            let etag = u.etag.lock().unwrap().clone();
            let mut extra = format!(
                "Event: presence\r\nExpires: {}\r\nContent-Type: application/pidf+xml\r\n",
                self.args.publish_expires
            );
            if let Some(e) = &etag {
                let _ = write!(extra, "SIP-If-Match: {e}\r\n");
            }
            let started = Instant::now();
            self.pubs.lock().unwrap().insert(
                seq,
                PubRec {
                    sent: started,
                    presentity: p,
                    done: false,
                    seen: Vec::new(),
                },
            );
            let mut cseq = u.pub_cseq.load(Ordering::Relaxed);
            let res = self
                .request(
                    p,
                    "PUBLISH",
                    &aor,
                    &aor,
                    &call_id,
                    &format!("p{p}"),
                    &mut cseq,
                    &extra,
                    &body,
                )
                .await;
            u.pub_cseq.store(cseq, Ordering::Relaxed);
            match res {
                Ok(r) if (200..300).contains(&code_of(&r)) => {
                    let elapsed = started.elapsed();
                    *u.etag.lock().unwrap() = r.header(&HeaderName::SipETag).map(str::to_owned);
                    if let Some(rec) = self.pubs.lock().unwrap().get_mut(&seq) {
                        rec.done = true;
                    }
                    self.publish_lat
                        .lock()
                        .unwrap()
                        .record(elapsed.as_micros() as u64);
                    ok = true;
                    break;
                }
                Ok(r) if code_of(&r) == 412 && etag.is_some() => {
                    self.error("PUBLISH 412".into());
                    *u.etag.lock().unwrap() = None;
                }
                Ok(r) => {
                    self.fail("PUBLISH", &Fail::Status(code_of(&r)));
                    break;
                }
                Err(f) => {
                    self.fail("PUBLISH", &f);
                    break;
                }
            }
        }
        u.busy.store(false, Ordering::Release);
        ok
    }

    /// Answers a request (NOTIFY: 200) and accounts for a NOTIFY's note.
    async fn on_request(&self, sock: usize, msg: Message, from: SocketAddr) {
        let is_notify = msg
            .request_line()
            .is_some_and(|r| r.method.as_str() == "NOTIFY");
        let mut out = String::with_capacity(400);
        out.push_str(if is_notify {
            "SIP/2.0 200 OK\r\n"
        } else {
            "SIP/2.0 501 Not Implemented\r\n"
        });
        for v in msg.header_values(&HeaderName::Via) {
            let _ = write!(out, "Via: {v}\r\n");
        }
        for (name, label) in [
            (HeaderName::From, "From"),
            (HeaderName::To, "To"),
            (HeaderName::CallId, "Call-ID"),
            (HeaderName::CSeq, "CSeq"),
        ] {
            if let Some(v) = msg.header(&name) {
                let _ = write!(out, "{label}: {v}\r\n");
            }
        }
        out.push_str("Content-Length: 0\r\n\r\n");
        let _ = self.sockets[sock].send_to(out.as_bytes(), from).await;
        if !is_notify {
            inc(&self.counters.other_requests);
            return;
        }
        let now = Instant::now();
        let c = &self.counters;
        inc(&c.notify_rx);
        if msg.header(&HeaderName::SubscriptionState).is_some_and(|s| {
            s.trim_start()
                .to_ascii_lowercase()
                .starts_with("terminated")
        }) {
            inc(&c.notify_terminated);
        }
        let Some(&sub) = msg
            .header(&HeaderName::CallId)
            .and_then(|id| self.sub_by_call.get(id))
        else {
            inc(&c.notify_unknown_dialog);
            return;
        };
        let Some(seq) = seq_in(&msg.body) else {
            inc(&c.notify_no_seq);
            return;
        };
        let latency = {
            let mut pubs = self.pubs.lock().unwrap();
            match pubs.get_mut(&seq) {
                None => None,
                Some(rec) if rec.seen.contains(&sub) => Some(None),
                Some(rec) => {
                    rec.seen.push(sub);
                    Some(Some(now.saturating_duration_since(rec.sent)))
                }
            }
        };
        match latency {
            None => inc(&c.notify_unknown_seq),
            Some(None) => inc(&c.notify_dup),
            Some(Some(l)) => {
                inc(&c.notify_matched);
                self.notify_lat.lock().unwrap().record(l.as_micros() as u64);
            }
        }
    }

    fn on_response(&self, sock: usize, msg: Message) {
        if code_of(&msg) < 200 {
            return;
        }
        let tx = branch_of(&msg).and_then(|b| self.pending[sock].lock().unwrap().remove(b));
        match tx {
            Some(tx) => {
                let _ = tx.send(msg);
            }
            None => inc(&self.counters.stray_responses),
        }
    }
}

async fn receiver(ctx: Arc<Ctx>, sock: usize) {
    let socket = ctx.sockets[sock].clone();
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let data = &buf[..n];
        if data.iter().all(u8::is_ascii_whitespace) {
            continue; // keep-alive
        }
        match parse_datagram(data, &ctx.limits) {
            Ok(msg) if msg.is_request() => ctx.on_request(sock, msg, from).await,
            Ok(msg) => ctx.on_response(sock, msg),
            Err(e) => {
                if get(&ctx.counters.parse_errors) < 5 {
                    eprintln!("herald-loadgen sip-presence: unparsable datagram from {from}: {e}");
                }
                inc(&ctx.counters.parse_errors);
            }
        }
    }
}

/// Runs `n` tasks started at `rate` per second with at most --max-pending at once;
/// returns the sum of their results.
async fn paced<F, Fut>(ctx: &Arc<Ctx>, n: u32, rate: f64, f: F) -> u64
where
    F: Fn(Arc<Ctx>, u32) -> Fut,
    Fut: std::future::Future<Output = u64> + Send + 'static,
{
    let sem = Arc::new(Semaphore::new(ctx.args.max_pending));
    let start = tokio::time::Instant::now();
    let mut handles: Vec<JoinHandle<u64>> = Vec::with_capacity(n as usize);
    for i in 0..n {
        tokio::time::sleep_until(start + Duration::from_secs_f64(f64::from(i) / rate)).await;
        let Ok(permit) = sem.clone().acquire_owned().await else {
            break;
        };
        let fut = f(ctx.clone(), i);
        handles.push(tokio::spawn(async move {
            let r = fut.await;
            drop(permit);
            r
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap_or(0);
    }
    total
}

struct Step {
    rate: f64,
    secs: f64,
    offered: u64,
    sent: u64,
    skipped: u64,
    ok: u64,
    expected: u64,
    matched: u64,
    dup: u64,
    unknown_seq: u64,
    pub_lat: Histogram,
    notify_lat: Histogram,
    server_cpu_ms: u64,
    generator_cpu_ms: u64,
    server_rss_kib: u64,
    retransmits: u64,
    timeouts: u64,
    udp_drops: u64,
}

impl Step {
    fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.matched)
    }

    fn loss_ratio(&self) -> f64 {
        let notify = self.lost() as f64 / self.expected.max(1) as f64;
        let publish = (self.offered - self.ok) as f64 / self.offered.max(1) as f64;
        notify.max(publish)
    }

    fn passed(&self, args: &SipArgs) -> bool {
        self.ok > 0
            && self.loss_ratio() <= args.stop_loss
            && (self.notify_lat.quantile(0.99) as f64) <= args.stop_p99_ms * 1000.0
    }
}

async fn publish_step(ctx: &Arc<Ctx>, rate: f64, seq0: &mut u64) -> Step {
    let a = &ctx.args;
    let c = &ctx.counters;
    ctx.pubs.lock().unwrap().clear();
    *ctx.notify_lat.lock().unwrap() = Histogram::default();
    *ctx.publish_lat.lock().unwrap() = Histogram::default();
    let (m0, d0, u0, r0, t0) = (
        get(&c.notify_matched),
        get(&c.notify_dup),
        get(&c.notify_unknown_seq),
        get(&c.retransmits),
        get(&c.timeouts),
    );
    let s0 = sample(&a.server_pids);
    let g0 = own_cpu();
    let drops0 = udp_drops();
    let n = (rate * a.duration).round().max(1.0) as u64;
    let sem = Arc::new(Semaphore::new(a.max_pending));
    let start = tokio::time::Instant::now();
    let mut handles: Vec<JoinHandle<bool>> = Vec::with_capacity(n as usize);
    let mut next_p: u32 = 0;
    let mut skipped = 0;
    for i in 0..n {
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
        // The next presentity without a PUBLISH in progress (bounded scan).
        let mut chosen = None;
        for _ in 0..a.users {
            let p = next_p;
            next_p = (next_p + 1) % a.users;
            if ctx.users[p as usize]
                .busy
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                chosen = Some(p);
                break;
            }
        }
        let Some(p) = chosen else {
            skipped += 1;
            continue;
        };
        let Ok(permit) = sem.clone().try_acquire_owned() else {
            ctx.users[p as usize].busy.store(false, Ordering::Release);
            skipped += 1;
            continue;
        };
        *seq0 += 1;
        let seq = *seq0;
        let ctx2 = ctx.clone();
        handles.push(tokio::spawn(async move {
            let ok = ctx2.publish(p, seq).await;
            drop(permit);
            ok
        }));
    }
    let sent = handles.len() as u64;
    let mut ok = 0;
    for h in handles {
        ok += u64::from(h.await.unwrap_or(false));
    }
    let drain_until = tokio::time::Instant::now() + Duration::from_secs_f64(a.drain);
    tokio::time::sleep_until(drain_until).await;
    let secs = start.elapsed().as_secs_f64() - a.drain;
    let s1 = sample(&a.server_pids);
    let g1 = own_cpu();
    let expected = {
        let pubs = ctx.pubs.lock().unwrap();
        pubs.values()
            .filter(|r| r.done)
            .map(|r| u64::from(ctx.watchers_of[r.presentity as usize].load(Ordering::Relaxed)))
            .sum()
    };
    Step {
        rate,
        secs: secs.max(a.duration),
        offered: n,
        sent,
        skipped,
        ok,
        expected,
        matched: get(&c.notify_matched) - m0,
        dup: get(&c.notify_dup) - d0,
        unknown_seq: get(&c.notify_unknown_seq) - u0,
        pub_lat: ctx.publish_lat.lock().unwrap().clone(),
        notify_lat: ctx.notify_lat.lock().unwrap().clone(),
        server_cpu_ms: (s1.cpu.saturating_sub(s0.cpu)).as_millis() as u64,
        generator_cpu_ms: (g1.saturating_sub(g0)).as_millis() as u64,
        server_rss_kib: s1.rss_kib,
        retransmits: get(&c.retransmits) - r0,
        timeouts: get(&c.timeouts) - t0,
        udp_drops: udp_drops().saturating_sub(drops0),
    }
}

/// A tiny JSON object writer.
struct Obj(String);

impl Obj {
    fn new() -> Self {
        Self(String::from("{"))
    }
    fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        let _ = write!(self.0, "\"{k}\":");
    }
    fn num(&mut self, k: &str, v: u64) -> &mut Self {
        self.key(k);
        let _ = write!(self.0, "{v}");
        self
    }
    fn float(&mut self, k: &str, v: f64) -> &mut Self {
        self.key(k);
        if v.is_finite() {
            let _ = write!(self.0, "{v:.3}");
        } else {
            self.0.push_str("null");
        }
        self
    }
    fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        self.0.push('"');
        for ch in v.chars() {
            match ch {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self.0, "\\u{:04x}", c as u32);
                }
                c => self.0.push(c),
            }
        }
        self.0.push('"');
        self
    }
    fn raw(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        self.0.push_str(v);
        self
    }
    fn finish(&mut self) -> String {
        self.0.push('}');
        std::mem::take(&mut self.0)
    }
}

fn step_json(s: &Step, args: &SipArgs) -> String {
    let mut o = Obj::new();
    o.float("rate", s.rate)
        .float("secs", s.secs)
        .num("publish_offered", s.offered)
        .num("publish_sent", s.sent)
        .num("publish_skipped", s.skipped)
        .num("publish_ok", s.ok)
        .num("publish_failed", s.sent - s.ok)
        .float("publish_per_sec", s.ok as f64 / s.secs)
        .num("publish_p50_us", s.pub_lat.quantile(0.5))
        .num("publish_p99_us", s.pub_lat.quantile(0.99))
        .num("publish_max_us", s.pub_lat.max())
        .num("notify_expected", s.expected)
        .num("notify_matched", s.matched)
        .num("notify_lost", s.lost())
        .num("notify_dup", s.dup)
        .num("notify_unknown_seq", s.unknown_seq)
        .float("notify_per_sec", s.matched as f64 / s.secs)
        .num("notify_p50_us", s.notify_lat.quantile(0.5))
        .num("notify_p99_us", s.notify_lat.quantile(0.99))
        .num("notify_max_us", s.notify_lat.max())
        .float("loss_ratio", s.loss_ratio())
        .num("retransmits", s.retransmits)
        .num("timeouts", s.timeouts)
        .num("udp_rcvbuf_errors", s.udp_drops)
        .num("server_cpu_ms", s.server_cpu_ms)
        .num("generator_cpu_ms", s.generator_cpu_ms)
        .num("server_rss_kib", s.server_rss_kib)
        .raw("passed", if s.passed(args) { "true" } else { "false" });
    o.finish()
}

/// Receive and send buffer asked for each of the generator's sockets (the kernel caps
/// it at `net.core.rmem_max`/`wmem_max`).
const LOADGEN_UDP_BUFFER: usize = 4 * 1024 * 1024;

/// Runs the three phases and returns the JSON report line.
pub(crate) async fn run(args: SipArgs) -> Result<String, String> {
    let algorithm = match &args.algorithm {
        Some(a) => Some(Algorithm::parse(a).map_err(|e| format!("--algorithm {a}: {e}"))?),
        None => None,
    };
    let nsock = args.sockets() as usize;
    let mut sockets = Vec::with_capacity(nsock);
    let mut locals = Vec::with_capacity(nsock);
    for _ in 0..nsock {
        let s = UdpSocket::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("bind: {e}"))?;
        // The generator must not be where datagrams are dropped: a server that
        // answers in bursts would otherwise lose NOTIFYs in our default-sized buffer.
        let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&s, LOADGEN_UDP_BUFFER);
        let _ = rustix::net::sockopt::set_socket_send_buffer_size(&s, LOADGEN_UDP_BUFFER);
        locals.push(s.local_addr().map_err(|e| e.to_string())?);
        sockets.push(Arc::new(s));
    }
    let run = u64::from(std::process::id()) << 16
        ^ (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
            & 0xffff_ffff);
    let n = args.users;
    let k = args.watch;
    let users = (0..n)
        .map(|u| User {
            name: args.username(u),
            pass: args.password(u),
            sock: (u / args.users_per_socket) as usize,
            auth: Mutex::new([None, None]),
            etag: Mutex::new(None),
            busy: AtomicBool::new(false),
            pub_cseq: AtomicU32::new(0),
        })
        .collect();
    let mut subs = Vec::with_capacity((n * k) as usize);
    let mut sub_by_call = HashMap::with_capacity((n * k) as usize);
    for w in 0..n {
        for j in 0..k {
            let call_id = format!("s{w}.{j}.{run:x}@herald-loadgen");
            sub_by_call.insert(call_id.clone(), w * k + j);
            subs.push(Sub {
                watcher: w,
                presentity: (w + 1 + j) % n,
                call_id,
            });
        }
    }
    let ctx = Arc::new(Ctx {
        run,
        limits: Limits::default(),
        algorithm,
        pending: (0..nsock).map(|_| Mutex::new(HashMap::new())).collect(),
        sockets,
        locals,
        users,
        sub_active: (0..n * k).map(|_| AtomicBool::new(false)).collect(),
        watchers_of: (0..n).map(|_| AtomicU32::new(0)).collect(),
        subs,
        sub_by_call,
        pubs: Mutex::new(HashMap::new()),
        notify_lat: Mutex::new(Histogram::default()),
        publish_lat: Mutex::new(Histogram::default()),
        counters: Counters::default(),
        errors: Mutex::new(BTreeMap::new()),
        next_id: AtomicU64::new(1),
        epoch: Instant::now(),
        args,
    });
    let receivers: Vec<JoinHandle<()>> = (0..nsock)
        .map(|i| tokio::spawn(receiver(ctx.clone(), i)))
        .collect();
    let a = &ctx.args;

    // Phase 1: REGISTER.
    let s_reg0 = sample(&a.server_pids);
    let t = Instant::now();
    let registered = paced(&ctx, n, a.register_rate, |c, u| async move {
        u64::from(c.register(u).await)
    })
    .await;
    let register_secs = t.elapsed().as_secs_f64();
    let s_reg1 = sample(&a.server_pids);

    // Phase 2: SUBSCRIBE, K per watcher, one watcher task started every K/rate s.
    let notify_before = get(&ctx.counters.notify_rx);
    let t = Instant::now();
    let subscribed = paced(
        &ctx,
        n,
        a.subscribe_rate / f64::from(k.max(1)),
        |c, w| async move { u64::from(c.subscribe(w).await) },
    )
    .await;
    let subscribe_secs = t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64(a.settle)).await;
    let s_sub1 = sample(&a.server_pids);
    let initial_notifies = get(&ctx.counters.notify_rx) - notify_before;
    let held_by_watchers = ctx
        .subs
        .iter()
        .enumerate()
        .filter(|(i, s)| ctx.sub_active[*i].load(Ordering::Relaxed) && s.watcher < n)
        .count() as u64;

    // Phase 3: PUBLISH steps, stopping after the first step that fails the bounds.
    let mut steps = Vec::new();
    let mut seq = 0u64;
    for &rate in &a.rates {
        let st = publish_step(&ctx, rate, &mut seq).await;
        let passed = st.passed(a);
        eprintln!(
            "herald-loadgen sip-presence: {rate}/s: PUBLISH ok {}/{} NOTIFY {}/{} p99 {:.1} ms{}",
            st.ok,
            st.offered,
            st.matched,
            st.expected,
            st.notify_lat.quantile(0.99) as f64 / 1000.0,
            if passed {
                ""
            } else {
                " (bound exceeded: stop)"
            }
        );
        steps.push(st);
        if !passed {
            break;
        }
    }
    for r in receivers {
        r.abort();
    }

    let best = steps
        .iter()
        .filter(|s| s.passed(a))
        .max_by(|x, y| x.rate.total_cmp(&y.rate));
    let subs_delta_rss = s_sub1.rss_kib as f64 - s_reg1.rss_kib as f64;
    let subs_delta_pss = s_sub1.pss_kib as f64 - s_reg1.pss_kib as f64;
    let per = |delta: f64| {
        if subscribed == 0 || a.server_pids.is_empty() {
            f64::NAN
        } else {
            delta * 1024.0 / subscribed as f64
        }
    };
    let c = &ctx.counters;
    let mut errors = Obj::new();
    for (kname, v) in ctx.errors.lock().unwrap().iter() {
        errors.num(kname, *v);
    }
    let steps_json: Vec<String> = steps.iter().map(|s| step_json(s, a)).collect();
    let mut o = Obj::new();
    o.str("kind", "sip-presence")
        .str("server", &a.server.to_string())
        .num("users", u64::from(n))
        .num("watch", u64::from(k))
        .num("sockets", nsock as u64)
        .num("registered", registered)
        .float("register_secs", register_secs)
        .num("subscriptions_offered", u64::from(n * k))
        .num("subscriptions_ok", subscribed)
        .num("subscriptions_held", held_by_watchers)
        .float("subscribe_secs", subscribe_secs)
        .num("initial_notifies", initial_notifies)
        .num("server_rss_kib_start", s_reg0.rss_kib)
        .num("server_rss_kib_registered", s_reg1.rss_kib)
        .num("server_rss_kib_subscribed", s_sub1.rss_kib)
        .num("server_pss_kib_registered", s_reg1.pss_kib)
        .num("server_pss_kib_subscribed", s_sub1.pss_kib)
        .float("rss_bytes_per_subscription", per(subs_delta_rss))
        .float("pss_bytes_per_subscription", per(subs_delta_pss))
        .num(
            "server_cpu_ms_register",
            s_reg1.cpu.saturating_sub(s_reg0.cpu).as_millis() as u64,
        )
        .num(
            "server_cpu_ms_subscribe",
            s_sub1.cpu.saturating_sub(s_reg1.cpu).as_millis() as u64,
        )
        .raw("steps", &format!("[{}]", steps_json.join(",")))
        .float("best_rate", best.map_or(0.0, |s| s.rate))
        .float(
            "best_publish_per_sec",
            best.map_or(0.0, |s| s.ok as f64 / s.secs),
        )
        .float(
            "best_notify_per_sec",
            best.map_or(0.0, |s| s.matched as f64 / s.secs),
        )
        .num("notify_total", get(&c.notify_rx))
        .num("notify_no_seq", get(&c.notify_no_seq))
        .num("notify_unknown_dialog", get(&c.notify_unknown_dialog))
        .num("notify_terminated", get(&c.notify_terminated))
        .num("other_requests", get(&c.other_requests))
        .num("parse_errors", get(&c.parse_errors))
        .num("stray_responses", get(&c.stray_responses))
        .num("retransmits", get(&c.retransmits))
        .num("timeouts", get(&c.timeouts))
        .raw("errors", &errors.finish());
    Ok(o.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_is_found_in_a_body() {
        assert_eq!(seq_in(b"<note>hb-seq=42 t=17</note>"), Some(42));
        assert_eq!(seq_in(b"<note>away</note>"), None);
        assert_eq!(seq_in(b"hb-seq="), None);
    }

    #[test]
    fn branch_of_top_via() {
        let m = parse_datagram(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bKab.1;rport=5\r\n\
              From: <sip:a@l>;tag=1\r\nTo: <sip:a@l>;tag=2\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n\
              Content-Length: 0\r\n\r\n",
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(branch_of(&m), Some("z9hG4bKab.1"));
    }
}
