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

mod report;
mod steps;
mod ua;

use report::{own_cpu, sample, step_json, udp_drops, Obj};
use steps::{publish_step, Step};
use ua::{paced, receiver};

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
