//! What the generator measures besides latency (the servers' memory and CPU, the
//! kernel's UDP drops) and the JSON it writes.

use super::*;

/// Sums of the server processes' VmRSS, PSS (KiB) and CPU time.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ServerSample {
    pub(super) rss_kib: u64,
    pub(super) pss_kib: u64,
    pub(super) cpu: Duration,
}

pub(super) fn pss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

pub(super) fn sample(pids: &[u32]) -> ServerSample {
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
pub(super) fn udp_drops() -> u64 {
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

pub(super) fn own_cpu() -> Duration {
    cpu_time(std::process::id()).unwrap_or_default()
}

/// A tiny JSON object writer.
pub(super) struct Obj(String);

impl Obj {
    pub(super) fn new() -> Self {
        Self(String::from("{"))
    }
    pub(super) fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        let _ = write!(self.0, "\"{k}\":");
    }
    pub(super) fn num(&mut self, k: &str, v: u64) -> &mut Self {
        self.key(k);
        let _ = write!(self.0, "{v}");
        self
    }
    pub(super) fn float(&mut self, k: &str, v: f64) -> &mut Self {
        self.key(k);
        if v.is_finite() {
            let _ = write!(self.0, "{v:.3}");
        } else {
            self.0.push_str("null");
        }
        self
    }
    pub(super) fn str(&mut self, k: &str, v: &str) -> &mut Self {
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
    pub(super) fn raw(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        self.0.push_str(v);
        self
    }
    pub(super) fn finish(&mut self) -> String {
        self.0.push('}');
        std::mem::take(&mut self.0)
    }
}

pub(super) fn step_json(s: &Step, args: &SipArgs) -> String {
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
