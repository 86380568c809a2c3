//! Counters shared by every session of one generator process, a bounded latency
//! histogram, and the final report (human text or one JSON line).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Log-linear histogram of microsecond values: exact below 512 µs, then 256 buckets per
/// power of two (relative error below 0.4 %). Memory is fixed (about 60 KiB).
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

const SUB_BITS: u32 = 8;
const SUB: u64 = 1 << SUB_BITS;
/// Values are clamped to 2^36 µs (about 19 hours).
const MAX_VALUE: u64 = 1 << 36;
const BUCKETS: usize = (2 * SUB + (36 - SUB_BITS as u64) * SUB) as usize;

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn bucket_index(v: u64) -> usize {
    let v = v.min(MAX_VALUE - 1);
    if v < 2 * SUB {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    (2 * SUB + u64::from(shift - 1) * SUB + ((v >> shift) - SUB)) as usize
}

/// A representative value (the middle) of a bucket.
fn bucket_value(idx: usize) -> u64 {
    let idx = idx as u64;
    if idx < 2 * SUB {
        return idx;
    }
    let k = idx - 2 * SUB;
    let shift = k / SUB + 1;
    let mantissa = k % SUB + SUB;
    (mantissa << shift) + (1 << shift) / 2
}

impl Histogram {
    pub(crate) fn record(&mut self, micros: u64) {
        self.counts[bucket_index(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    pub(crate) fn count(&self) -> u64 {
        self.total
    }

    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1), in microseconds; 0 when empty.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_value(i).min(self.max);
            }
        }
        self.max
    }

    /// Non-empty buckets as (representative value, count), for merging across processes.
    pub(crate) fn sparse(&self) -> Vec<(u64, u64)> {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (bucket_value(i).min(self.max), *c))
            .collect()
    }
}

/// Counters updated by the session tasks.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Set while the traffic phase (and its drain) runs: presence is only counted then.
    pub(crate) counting: AtomicBool,
    pub(crate) next_seq: AtomicU64,
    pub(crate) msgs_sent: AtomicU64,
    pub(crate) msgs_received: AtomicU64,
    pub(crate) msgs_duplicate: AtomicU64,
    /// Benchmark messages from another run (e.g. offline messages delivered at login).
    pub(crate) msgs_stale: AtomicU64,
    pub(crate) msgs_error: AtomicU64,
    pub(crate) msgs_send_skipped: AtomicU64,
    pub(crate) presence_sent: AtomicU64,
    pub(crate) presence_received: AtomicU64,
    pub(crate) subscribe_sent: AtomicU64,
    pub(crate) subscribe_approved: AtomicU64,
    pub(crate) roster_pushes: AtomicU64,
    /// Every stanza received after login (to tell when the server has gone quiet).
    pub(crate) stanzas_in: AtomicU64,
    pub(crate) latency: Mutex<Histogram>,
    /// Which message sequence numbers have arrived, to spot duplicates (bounded).
    pub(crate) seen: Mutex<Vec<u64>>,
}

/// Bits kept for duplicate detection; sequence numbers beyond it are not checked.
pub(crate) const SEEN_BITS: u64 = 64 * 1024 * 1024;

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Records one received benchmark message; returns false for a duplicate.
    pub(crate) fn message_received(&self, seq: u64, latency: Duration) -> bool {
        if seq < SEEN_BITS {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            let word = (seq / 64) as usize;
            if seen.len() <= word {
                seen.resize(word + 1, 0);
            }
            let bit = 1u64 << (seq % 64);
            if seen[word] & bit != 0 {
                Self::add(&self.msgs_duplicate, 1);
                return false;
            }
            seen[word] |= bit;
        }
        Self::add(&self.msgs_received, 1);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(micros);
        true
    }
}

/// Everything one generator run reports.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) label: String,
    pub(crate) server: String,
    pub(crate) users: u64,
    pub(crate) offset: u64,
    pub(crate) attempted: u64,
    pub(crate) established: u64,
    pub(crate) failed: u64,
    pub(crate) failures: BTreeMap<String, u64>,
    pub(crate) dropped: u64,
    pub(crate) drops: BTreeMap<String, u64>,
    pub(crate) held: u64,
    pub(crate) connect_rate_target: f64,
    pub(crate) establish_secs: f64,
    pub(crate) login: Histogram,
    pub(crate) rss_before_kib: Option<u64>,
    pub(crate) rss_up_kib: Option<u64>,
    pub(crate) rss_end_kib: Option<u64>,
    /// Server CPU time used during the connect phase and during the traffic phase.
    pub(crate) cpu_connect: Option<Duration>,
    pub(crate) cpu_traffic: Option<Duration>,
    /// This generator process: CPU time during the traffic phase, memory with all up.
    pub(crate) own_cpu_traffic: Option<Duration>,
    /// Federated mode: the peer server's CPU time in the traffic phase and its RSS.
    pub(crate) peer_cpu_traffic: Option<Duration>,
    pub(crate) peer_rss_before_kib: Option<u64>,
    pub(crate) peer_rss_up_kib: Option<u64>,
    pub(crate) peer_rss_end_kib: Option<u64>,
    pub(crate) own_rss_up_kib: Option<u64>,
    pub(crate) rosters_complete: Option<(u64, u64)>,
    pub(crate) setup_secs: Option<f64>,
    /// Repair rounds the roster setup needed (requests resent for missing contacts).
    pub(crate) setup_repairs: u64,
    pub(crate) traffic_secs: f64,
    pub(crate) msg_rate_target: f64,
    pub(crate) msgs_sent: u64,
    pub(crate) msgs_received: u64,
    pub(crate) msgs_duplicate: u64,
    pub(crate) msgs_stale: u64,
    pub(crate) msgs_error: u64,
    pub(crate) msgs_send_skipped: u64,
    pub(crate) latency: Histogram,
    pub(crate) presence_rate_target: f64,
    pub(crate) presence_sent: u64,
    pub(crate) presence_expected: u64,
    pub(crate) presence_received: u64,
    pub(crate) subscribe_sent: u64,
    pub(crate) subscribe_approved: u64,
    pub(crate) total_secs: f64,
}

impl Report {
    pub(crate) fn lost(&self) -> u64 {
        self.msgs_sent.saturating_sub(self.msgs_received)
    }

    fn rss_per_session(&self) -> Option<f64> {
        let (before, up) = (self.rss_before_kib?, self.rss_up_kib?);
        (self.established > 0).then(|| (up as f64 - before as f64) / self.established as f64)
    }

    fn per_sec(n: u64, secs: f64) -> f64 {
        if secs > 0.0 {
            n as f64 / secs
        } else {
            0.0
        }
    }

    pub(crate) fn text(&self) -> String {
        let mut s = String::new();
        let ms = |us: u64| us as f64 / 1000.0;
        let _ = writeln!(
            s,
            "== herald-loadgen: {} against {} ==",
            self.label, self.server
        );
        let _ = writeln!(
            s,
            "sessions: attempted {} established {} failed {} dropped later {} held at end {}",
            self.attempted, self.established, self.failed, self.dropped, self.held
        );
        for (why, n) in &self.failures {
            let _ = writeln!(s, "  failed {n}: {why}");
        }
        for (why, n) in &self.drops {
            let _ = writeln!(s, "  dropped {n}: {why}");
        }
        let _ = writeln!(
            s,
            "establish: {:.2} s for all (target {:.0}/s, achieved {:.1}/s); login p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
            self.establish_secs,
            self.connect_rate_target,
            Self::per_sec(self.established, self.establish_secs),
            ms(self.login.quantile(0.5)),
            ms(self.login.quantile(0.99)),
            ms(self.login.max())
        );
        match (self.rss_before_kib, self.rss_up_kib) {
            (Some(b), Some(u)) => {
                let _ = writeln!(
                    s,
                    "server RSS: before {b} KiB, all up {u} KiB, end {} KiB, per session {:.1} KiB",
                    self.rss_end_kib.unwrap_or(0),
                    self.rss_per_session().unwrap_or(0.0)
                );
            }
            _ => {
                let _ = writeln!(s, "server RSS: not measured (no --server-pid)");
            }
        }
        if let (Some(c), Some(t)) = (self.cpu_connect, self.cpu_traffic) {
            let _ = writeln!(
                s,
                "server CPU: {:.2} ms per login, {:.1} % of a core during traffic",
                c.as_secs_f64() * 1000.0 / (self.established.max(1) as f64),
                t.as_secs_f64() * 100.0 / self.traffic_secs.max(1e-9)
            );
        }
        if let Some(t) = self.peer_cpu_traffic {
            let _ = writeln!(
                s,
                "peer server: {:.1} % of a core during traffic; RSS before {} KiB, all up {} KiB, end {} KiB",
                t.as_secs_f64() * 100.0 / self.traffic_secs.max(1e-9),
                self.peer_rss_before_kib.unwrap_or(0),
                self.peer_rss_up_kib.unwrap_or(0),
                self.peer_rss_end_kib.unwrap_or(0)
            );
        }
        if let Some(r) = self.own_rss_up_kib {
            let cpu = match self.own_cpu_traffic {
                Some(c) if self.traffic_secs >= 1.0 => format!(
                    "{:.1} % of a core during traffic, ",
                    c.as_secs_f64() * 100.0 / self.traffic_secs
                ),
                _ => String::new(),
            };
            let _ = writeln!(s, "generator: {cpu}{r} KiB RSS with all sessions up");
        }
        if let Some((done, of)) = self.rosters_complete {
            let _ = writeln!(
                s,
                "roster setup: {done}/{of} users with the full contact set in {:.1} s ({} repair rounds); subscribe sent {} approved {}",
                self.setup_secs.unwrap_or(0.0),
                self.setup_repairs,
                self.subscribe_sent,
                self.subscribe_approved
            );
        }
        let _ = writeln!(
            s,
            "messages ({:.1} s, target {:.0}/s): sent {} received {} lost {} duplicate {} errors {} stale {} skipped {}; {:.1} msg/s received",
            self.traffic_secs,
            self.msg_rate_target,
            self.msgs_sent,
            self.msgs_received,
            self.lost(),
            self.msgs_duplicate,
            self.msgs_error,
            self.msgs_stale,
            self.msgs_send_skipped,
            Self::per_sec(self.msgs_received, self.traffic_secs)
        );
        let _ = writeln!(
            s,
            "latency: p50 {:.2} ms p90 {:.2} ms p99 {:.2} ms max {:.2} ms ({} samples)",
            ms(self.latency.quantile(0.5)),
            ms(self.latency.quantile(0.9)),
            ms(self.latency.quantile(0.99)),
            ms(self.latency.max()),
            self.latency.count()
        );
        let _ = writeln!(
            s,
            "presence (target {:.0}/s): changes sent {} deliveries expected {} received {}",
            self.presence_rate_target,
            self.presence_sent,
            self.presence_expected,
            self.presence_received
        );
        let _ = writeln!(s, "total run time {:.1} s", self.total_secs);
        s
    }

    pub(crate) fn json(&self) -> String {
        let mut j = Json::default();
        j.str("label", &self.label);
        j.str("server", &self.server);
        j.num("users", self.users);
        j.num("offset", self.offset);
        j.num("attempted", self.attempted);
        j.num("established", self.established);
        j.num("failed", self.failed);
        j.map("failures", &self.failures);
        j.num("dropped", self.dropped);
        j.map("drops", &self.drops);
        j.num("held", self.held);
        j.float("connect_rate_target", self.connect_rate_target);
        j.float("establish_secs", self.establish_secs);
        j.float(
            "connect_rate_achieved",
            Self::per_sec(self.established, self.establish_secs),
        );
        j.num("login_p50_us", self.login.quantile(0.5));
        j.num("login_p99_us", self.login.quantile(0.99));
        j.num("login_max_us", self.login.max());
        j.opt("rss_before_kib", self.rss_before_kib);
        j.opt("rss_up_kib", self.rss_up_kib);
        j.opt("rss_end_kib", self.rss_end_kib);
        match self.rss_per_session() {
            Some(v) => j.float("rss_per_session_kib", v),
            None => j.raw("rss_per_session_kib", "null"),
        }
        let ms = |d: Option<Duration>| d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        j.opt("server_cpu_connect_ms", ms(self.cpu_connect));
        j.opt("server_cpu_traffic_ms", ms(self.cpu_traffic));
        j.opt("generator_cpu_traffic_ms", ms(self.own_cpu_traffic));
        j.opt("peer_cpu_traffic_ms", ms(self.peer_cpu_traffic));
        j.opt("peer_rss_before_kib", self.peer_rss_before_kib);
        j.opt("peer_rss_up_kib", self.peer_rss_up_kib);
        j.opt("peer_rss_end_kib", self.peer_rss_end_kib);
        j.opt("generator_rss_up_kib", self.own_rss_up_kib);
        if let Some((done, of)) = self.rosters_complete {
            j.num("rosters_complete", done);
            j.num("rosters_total", of);
            j.float("setup_secs", self.setup_secs.unwrap_or(0.0));
            j.num("setup_repairs", self.setup_repairs);
        }
        j.float("traffic_secs", self.traffic_secs);
        j.float("msg_rate_target", self.msg_rate_target);
        j.num("msgs_sent", self.msgs_sent);
        j.num("msgs_received", self.msgs_received);
        j.num("msgs_lost", self.lost());
        j.num("msgs_duplicate", self.msgs_duplicate);
        j.num("msgs_error", self.msgs_error);
        j.num("msgs_stale", self.msgs_stale);
        j.num("msgs_send_skipped", self.msgs_send_skipped);
        j.float(
            "msgs_per_sec",
            Self::per_sec(self.msgs_received, self.traffic_secs),
        );
        j.num("lat_p50_us", self.latency.quantile(0.5));
        j.num("lat_p90_us", self.latency.quantile(0.9));
        j.num("lat_p99_us", self.latency.quantile(0.99));
        j.num("lat_max_us", self.latency.max());
        j.pairs("lat_hist", &self.latency.sparse());
        j.pairs("login_hist", &self.login.sparse());
        j.float("presence_rate_target", self.presence_rate_target);
        j.num("presence_sent", self.presence_sent);
        j.num("presence_expected", self.presence_expected);
        j.num("presence_received", self.presence_received);
        j.num("subscribe_sent", self.subscribe_sent);
        j.num("subscribe_approved", self.subscribe_approved);
        j.float("total_secs", self.total_secs);
        j.finish()
    }
}

/// A flat JSON object writer (keys and labels are ours; strings are escaped anyway).
#[derive(Default)]
struct Json {
    out: String,
}

impl Json {
    fn key(&mut self, k: &str) {
        self.out.push(if self.out.is_empty() { '{' } else { ',' });
        push_json_str(&mut self.out, k);
        self.out.push(':');
    }

    fn raw(&mut self, k: &str, v: &str) {
        self.key(k);
        self.out.push_str(v);
    }

    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        push_json_str(&mut self.out, v);
    }

    fn num(&mut self, k: &str, v: u64) {
        self.raw(k, &v.to_string());
    }

    fn opt(&mut self, k: &str, v: Option<u64>) {
        match v {
            Some(v) => self.num(k, v),
            None => self.raw(k, "null"),
        }
    }

    fn float(&mut self, k: &str, v: f64) {
        if v.is_finite() {
            self.raw(k, &format!("{v:.3}"));
        } else {
            self.raw(k, "null");
        }
    }

    fn map(&mut self, k: &str, m: &BTreeMap<String, u64>) {
        self.key(k);
        self.out.push('{');
        for (i, (name, n)) in m.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            push_json_str(&mut self.out, name);
            let _ = write!(self.out, ":{n}");
        }
        self.out.push('}');
    }

    fn pairs(&mut self, k: &str, v: &[(u64, u64)]) {
        self.key(k);
        self.out.push('[');
        for (i, (a, b)) in v.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let _ = write!(self.out, "[{a},{b}]");
        }
        self.out.push(']');
    }

    fn finish(mut self) -> String {
        if self.out.is_empty() {
            self.out.push('{');
        }
        self.out.push('}');
        self.out
    }
}

fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip_within_precision() {
        for v in [
            0u64, 1, 511, 512, 513, 1000, 1023, 1024, 5000, 123_456, 9_999_999,
        ] {
            let back = bucket_value(bucket_index(v));
            let err = (back as f64 - v as f64).abs() / (v.max(1) as f64);
            assert!(err < 0.005, "{v} -> {back}");
        }
        let mut last = 0;
        for v in (0..2_000_000u64).step_by(97) {
            let i = bucket_index(v);
            assert!(i >= last && i < BUCKETS);
            last = i;
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for v in 1..=1000u64 {
            h.record(v * 10);
        }
        let p50 = h.quantile(0.5) as f64;
        assert!((p50 - 5000.0).abs() / 5000.0 < 0.01, "{p50}");
        assert_eq!(h.quantile(1.0), 10_000);
        assert_eq!(h.max(), 10_000);
        assert_eq!(h.count(), 1000);
    }

    #[test]
    fn json_escapes() {
        let mut j = Json::default();
        j.str("a\"b", "x\ny");
        j.num("n", 3);
        assert_eq!(j.finish(), "{\"a\\\"b\":\"x\\ny\",\"n\":3}");
    }
}
