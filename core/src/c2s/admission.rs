//! Who may hold a connection slot, decided before any byte is parsed, and the guard that
//! gives every slot back on every way out of a connection, a panic included.
//!
//! - A per-IP connection rate (governor).
//! - A server-wide cap, kept below the open-files limit.
//! - Unauthenticated connections are capped twice more: server-wide, so that a flood
//!   that never logs in cannot take the slots of authenticated users (they keep the
//!   rest), and per source address, so that one address cannot take all of those.
//!
//! The guard holds the permits and the connection gauge; a connection that
//! authenticates hands back its unauthenticated share and keeps its slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::clock::{keyed_limiter, KeyedLimiter};

/// The limits admission enforces (from the settings, after clamping).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdmissionLimits {
    pub(crate) max_connections: usize,
    pub(crate) max_unauthenticated: usize,
    pub(crate) max_unauthenticated_per_ip: usize,
    pub(crate) per_ip_per_sec: u32,
    pub(crate) per_ip_burst: u32,
}

/// Why a connection was refused; the label of the refusal counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    RateLimited,
    MaxConnections,
    MaxUnauthenticated,
    PerIpUnauthenticated,
}

impl Refusal {
    /// Every refusal: the refusal counter has a series for each from the start.
    pub(crate) const ALL: [Self; 4] = [
        Self::RateLimited,
        Self::MaxConnections,
        Self::MaxUnauthenticated,
        Self::PerIpUnauthenticated,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::MaxConnections => "max_connections",
            Self::MaxUnauthenticated => "max_unauthenticated",
            Self::PerIpUnauthenticated => "per_ip_unauthenticated",
        }
    }
}

/// The admission state shared by all listeners.
#[derive(Debug)]
pub(crate) struct Admission {
    limits: AdmissionLimits,
    rate: KeyedLimiter<IpAddr>,
    slots: Arc<Semaphore>,
    unauthenticated: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    gauge: Gauge,
}

impl Admission {
    pub(crate) fn new(limits: AdmissionLimits, gauge: Gauge) -> Arc<Self> {
        Arc::new(Self {
            rate: keyed_limiter(
                limits.per_ip_per_sec.saturating_mul(60),
                limits.per_ip_burst,
            ),
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            unauthenticated: Arc::new(Semaphore::new(limits.max_unauthenticated)),
            per_ip: Mutex::new(HashMap::new()),
            limits,
            gauge,
        })
    }

    /// Admit a new connection from `ip`, or say why not.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnGuard, Refusal> {
        if self.rate.check_key(&ip).is_err() {
            return Err(Refusal::RateLimited);
        }
        let slot = Arc::clone(&self.slots)
            .try_acquire_owned()
            .map_err(|_| Refusal::MaxConnections)?;
        let unauth = Arc::clone(&self.unauthenticated)
            .try_acquire_owned()
            .map_err(|_| Refusal::MaxUnauthenticated)?;
        {
            let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let n = per_ip.entry(ip).or_insert(0);
            if *n >= self.limits.max_unauthenticated_per_ip {
                return Err(Refusal::PerIpUnauthenticated);
            }
            *n += 1;
        }
        self.gauge.inc();
        Ok(ConnGuard {
            _slot: slot,
            unauthenticated: Some(Unauthenticated {
                _permit: unauth,
                ip,
                admission: Arc::clone(self),
            }),
            gauge: self.gauge.clone(),
        })
    }

    /// Forget per-IP rate state that no longer limits anyone (bounded memory).
    pub(crate) fn prune(&self) {
        self.rate.retain_recent();
        self.rate.shrink_to_fit();
    }

    /// Unauthenticated connections currently held by `ip`.
    #[cfg(test)]
    pub(crate) fn unauthenticated_from(&self, ip: IpAddr) -> usize {
        self.per_ip
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&ip)
            .copied()
            .unwrap_or(0)
    }

    /// Connection slots in use.
    #[cfg(test)]
    pub(crate) fn in_use(&self) -> usize {
        self.limits.max_connections - self.slots.available_permits()
    }
}

/// The unauthenticated share of a connection: a server-wide permit and a count for
/// its address.
#[derive(Debug)]
struct Unauthenticated {
    _permit: OwnedSemaphorePermit,
    ip: IpAddr,
    admission: Arc<Admission>,
}

impl Drop for Unauthenticated {
    fn drop(&mut self) {
        let mut per_ip = self
            .admission
            .per_ip
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// Everything one connection holds. Dropping it — at the end of the connection task,
/// whichever way the task ends — gives it all back and lowers the connection gauge.
#[derive(Debug)]
pub(crate) struct ConnGuard {
    _slot: OwnedSemaphorePermit,
    unauthenticated: Option<Unauthenticated>,
    gauge: Gauge,
}

impl ConnGuard {
    /// The connection authenticated: it no longer counts as unauthenticated.
    pub(crate) fn authenticated(&mut self) {
        self.unauthenticated = None;
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> AdmissionLimits {
        AdmissionLimits {
            max_connections: 4,
            max_unauthenticated: 3,
            max_unauthenticated_per_ip: 2,
            per_ip_per_sec: 1000,
            per_ip_burst: 1000,
        }
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
    const C: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));

    #[test]
    fn caps_apply_per_ip_then_server_wide_and_come_back() {
        let gauge = Gauge::default();
        let adm = Admission::new(limits(), gauge.clone());
        let a1 = adm.admit(A).expect("a1");
        let a2 = adm.admit(A).expect("a2");
        assert_eq!(adm.admit(A).err(), Some(Refusal::PerIpUnauthenticated));
        let b1 = adm.admit(B).expect("b1");
        assert_eq!(adm.admit(C).err(), Some(Refusal::MaxUnauthenticated));
        assert_eq!(gauge.get(), 3);
        drop(a1);
        assert_eq!(adm.unauthenticated_from(A), 1);
        assert_eq!(gauge.get(), 2);
        let _c1 = adm.admit(C).expect("c1");
        drop((a2, b1));
        assert_eq!(gauge.get(), 1);
        assert_eq!(adm.in_use(), 1);
    }

    #[test]
    fn authenticated_connections_leave_the_unauthenticated_pool() {
        let gauge = Gauge::default();
        let adm = Admission::new(limits(), gauge.clone());
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut g = adm.admit(A).or_else(|_| adm.admit(B)).expect("admitted");
            g.authenticated();
            held.push(g);
        }
        assert_eq!(adm.unauthenticated_from(A) + adm.unauthenticated_from(B), 0);
        // The fourth slot is the last: then the server-wide cap refuses.
        let _g = adm.admit(A).expect("fourth");
        assert_eq!(adm.admit(B).err(), Some(Refusal::MaxConnections));
        assert_eq!(gauge.get(), 4);
    }

    #[tokio::test]
    async fn the_guard_is_returned_when_a_task_panics() {
        let gauge = Gauge::default();
        let adm = Admission::new(limits(), gauge.clone());
        let guard = adm.admit(A).expect("admitted");
        let task = tokio::spawn(async move {
            let _guard = guard;
            panic!("a connection task panics");
        });
        assert!(task.await.is_err());
        assert_eq!(gauge.get(), 0);
        assert_eq!(adm.unauthenticated_from(A), 0);
        assert_eq!(adm.in_use(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_limit_runs_on_tokio_time() {
        let adm = Admission::new(
            AdmissionLimits {
                per_ip_per_sec: 1,
                per_ip_burst: 2,
                ..limits()
            },
            Gauge::default(),
        );
        drop(adm.admit(A).expect("1"));
        drop(adm.admit(A).expect("2"));
        assert_eq!(adm.admit(A).err(), Some(Refusal::RateLimited));
        tokio::time::advance(std::time::Duration::from_millis(1001)).await;
        drop(
            adm.admit(A)
                .expect("refilled after a second of virtual time"),
        );
        assert_eq!(adm.admit(A).err(), Some(Refusal::RateLimited));
    }
}
