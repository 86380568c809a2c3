//! One PUBLISH step: publications paced at a rate for a while, then the NOTIFYs they
//! caused counted and timed.

use super::*;

pub(super) struct Step {
    pub(super) rate: f64,
    pub(super) secs: f64,
    pub(super) offered: u64,
    pub(super) sent: u64,
    pub(super) skipped: u64,
    pub(super) ok: u64,
    pub(super) expected: u64,
    pub(super) matched: u64,
    pub(super) dup: u64,
    pub(super) unknown_seq: u64,
    pub(super) pub_lat: Histogram,
    pub(super) notify_lat: Histogram,
    pub(super) server_cpu_ms: u64,
    pub(super) generator_cpu_ms: u64,
    pub(super) server_rss_kib: u64,
    pub(super) retransmits: u64,
    pub(super) timeouts: u64,
    pub(super) udp_drops: u64,
}

impl Step {
    pub(super) fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.matched)
    }

    pub(super) fn loss_ratio(&self) -> f64 {
        let notify = self.lost() as f64 / self.expected.max(1) as f64;
        let publish = (self.offered - self.ok) as f64 / self.offered.max(1) as f64;
        notify.max(publish)
    }

    pub(super) fn passed(&self, args: &SipArgs) -> bool {
        self.ok > 0
            && self.loss_ratio() <= args.stop_loss
            && (self.notify_lat.quantile(0.99) as f64) <= args.stop_p99_ms * 1000.0
    }
}

pub(super) async fn publish_step(ctx: &Arc<Ctx>, rate: f64, seq0: &mut u64) -> Step {
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
