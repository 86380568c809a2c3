//! Time as the core reads it: tokio's clock, so tests run on virtual time
//! (`#[tokio::test(start_paused = true)]`) and everything — deadlines of the sans-IO
//! machines, rate limiters, expiries — moves with it.

/// Now, on tokio's clock, as a `std` instant (what the sans-IO machines take).
pub fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// tokio's clock for governor's rate limiters.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl governor::clock::Clock for TokioClock {
    type Instant = std::time::Instant;

    fn now(&self) -> std::time::Instant {
        now()
    }
}

/// A keyed rate limiter on tokio's clock.
pub type KeyedLimiter<K> = governor::RateLimiter<
    K,
    governor::state::keyed::DashMapStateStore<K>,
    TokioClock,
    governor::middleware::NoOpMiddleware<std::time::Instant>,
>;

/// A keyed limiter allowing `per_minute` on average and `burst` at once (both at least 1).
pub fn keyed_limiter<K>(per_minute: u32, burst: u32) -> KeyedLimiter<K>
where
    K: std::hash::Hash + Eq + Clone,
{
    let per = std::time::Duration::from_secs(60) / per_minute.max(1);
    let quota = governor::Quota::with_period(per)
        .unwrap_or_else(|| governor::Quota::per_second(std::num::NonZeroU32::MIN))
        .allow_burst(std::num::NonZeroU32::new(burst).unwrap_or(std::num::NonZeroU32::MIN));
    governor::RateLimiter::dashmap_with_clock(quota, TokioClock)
}
