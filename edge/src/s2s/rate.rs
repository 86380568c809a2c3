//! The inbound rate limits of a remote domain (`stanzas_per_sec`, `bytes_per_sec`):
//! two token buckets holding one second's worth each. A stream over budget is not
//! cut: its task stops reading for as long as the debt takes to repay, so TCP
//! pushes back on the peer.

use std::time::{Duration, Instant};

/// The longest single pause (a huge stanza does not stall a stream for minutes).
pub const MAX_PAUSE: Duration = Duration::from_secs(5);

/// One domain's buckets.
#[derive(Debug, Clone)]
pub struct Bucket {
    stanzas: f64,
    bytes: f64,
    last: Instant,
}

impl Bucket {
    /// Full buckets at `now`.
    pub fn new(stanzas_per_sec: u32, bytes_per_sec: u32, now: Instant) -> Self {
        Self {
            stanzas: f64::from(stanzas_per_sec),
            bytes: f64::from(bytes_per_sec),
            last: now,
        }
    }

    /// Take one stanza of `size` bytes at `now`; how long the reader should pause
    /// (zero when within budget, at most [`MAX_PAUSE`]).
    pub fn charge(
        &mut self,
        stanzas_per_sec: u32,
        bytes_per_sec: u32,
        size: usize,
        now: Instant,
    ) -> Duration {
        let (sps, bps) = (
            f64::from(stanzas_per_sec.max(1)),
            f64::from(bytes_per_sec.max(1)),
        );
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.stanzas = (self.stanzas + elapsed * sps).min(sps) - 1.0;
        self.bytes = (self.bytes + elapsed * bps).min(bps) - size as f64;
        let wait = (-self.stanzas / sps).max(-self.bytes / bps).max(0.0);
        Duration::from_secs_f64(wait).min(MAX_PAUSE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_one_seconds_worth_passes_then_the_reader_pauses() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10, 1_000_000, t0);
        for _ in 0..10 {
            assert_eq!(b.charge(10, 1_000_000, 100, t0), Duration::ZERO);
        }
        let wait = b.charge(10, 1_000_000, 100, t0);
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100));
        // A second later the bucket is full again.
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(b.charge(10, 1_000_000, 100, t1), Duration::ZERO);
    }

    #[test]
    fn bytes_count_too_and_a_pause_is_bounded() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1000, 1024, t0);
        assert_eq!(b.charge(1000, 1024, 1024, t0), Duration::ZERO);
        let wait = b.charge(1000, 1024, 512, t0);
        assert!(wait >= Duration::from_millis(490), "{wait:?}");
        assert_eq!(b.charge(1000, 1024, 1 << 30, t0), MAX_PAUSE);
    }
}
