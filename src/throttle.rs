//! Slowing down secret guessing at the token endpoint. Failed client authentications are
//! counted per (client id, source address) and per client id, in fixed windows:
//!
//! * a source with `failures_per_source` failures for a client id is refused (429) for that
//!   client id until its window ends, whatever it sends — the right secret included;
//! * once a client id has `failures_per_client` failures from anywhere (a distributed guess),
//!   every source that has failed for it at least once is refused too, while a source with no
//!   failure — the real client calling from elsewhere — still gets its tokens.
//!
//! A source is an IPv4 address, or an IPv6 /64: one host is routinely given a whole /64 (SLAAC,
//! privacy addresses), so counting single IPv6 addresses would let a caller rotate past the
//! throttle.
//!
//! A success clears its source's count. Counters are bounded in number and forgotten after
//! an hour, so a flood of made-up client ids cannot grow memory without bound.
//!
//! With a cluster store, every failure and success is announced to the other replicas, which
//! count it as their own (`apply_shared`): a guess spread over replicas is throttled as one.
//! Nothing waits for this; a replica started later knows only what happened since.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Longest window a counter is kept for (`throttle.window_secs` is at most this).
pub const MAX_WINDOW: Duration = Duration::from_secs(3600);
/// Counters kept at most, each kind.
pub const MAX_TRACKED: u64 = 100_000;
/// Attempts waiting to be shared with the other replicas, at most.
const OUTBOX_CAPACITY: usize = 10_000;

/// The limits, from the configuration (live).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_source: u32,
    pub per_client: u32,
    pub window: Duration,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    failures: u32,
}

impl Window {
    /// Failures in the window current at `now`, and when it ends.
    fn current(&self, now: Instant, window: Duration) -> (u32, Instant) {
        let end = self.start + window;
        if now < end {
            (self.failures, end)
        } else {
            (0, now + window)
        }
    }

    fn fail(&mut self, now: Instant, window: Duration) {
        if now >= self.start + window {
            self.start = now;
            self.failures = 0;
        }
        self.failures += 1;
    }
}

type Counter = Arc<Mutex<Window>>;

/// A failed or successful authentication, as replicas share it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attempt {
    pub client: String,
    pub source: IpAddr,
    pub ok: bool,
}

/// The failure counters of the process (they outlive configuration reloads).
pub struct Throttle {
    by_source: moka::sync::Cache<(String, IpAddr), Counter>,
    by_client: moka::sync::Cache<String, Counter>,
    /// Where attempts made here go to be shared (the cluster store), once one follows.
    /// Bounded: while the store is away, a flood of failures must not grow memory.
    outbox: std::sync::OnceLock<tokio::sync::mpsc::Sender<Attempt>>,
}

fn counters<K: std::hash::Hash + Eq + Send + Sync + 'static>() -> moka::sync::Cache<K, Counter> {
    moka::sync::Cache::builder()
        .max_capacity(MAX_TRACKED)
        .time_to_live(MAX_WINDOW)
        .build()
}

impl Default for Throttle {
    fn default() -> Throttle {
        Throttle {
            by_source: counters(),
            by_client: counters(),
            outbox: std::sync::OnceLock::new(),
        }
    }
}

fn read(counter: Option<Counter>, now: Instant, window: Duration) -> (u32, Instant) {
    counter.map_or((0, now + window), |c| {
        c.lock()
            .unwrap_or_else(|p| p.into_inner())
            .current(now, window)
    })
}

impl Throttle {
    /// `Err(retry after)` when `client_id` is throttled for `source`.
    pub fn check(&self, client_id: &str, source: IpAddr, l: Limits) -> Result<(), Duration> {
        let source = source_of(source);
        let now = Instant::now();
        let pair = (client_id.to_owned(), source);
        let (mine, my_end) = read(self.by_source.get(&pair), now, l.window);
        if mine >= l.per_source {
            return Err(my_end - now);
        }
        let (all, all_end) = read(self.by_client.get(client_id), now, l.window);
        if all >= l.per_client && mine > 0 {
            return Err(all_end.max(my_end) - now);
        }
        Ok(())
    }

    /// Counts a failed authentication of `client_id` from `source`.
    pub fn failed(&self, client_id: &str, source: IpAddr, l: Limits) {
        let source = source_of(source);
        self.count_failure(client_id, source, l);
        self.share(client_id, source, false);
    }

    /// The attempts made here from now on, to share them (called once, by the cluster store).
    pub fn follow(&self) -> tokio::sync::mpsc::Receiver<Attempt> {
        let (tx, rx) = tokio::sync::mpsc::channel(OUTBOX_CAPACITY);
        let _ = self.outbox.set(tx);
        rx
    }

    /// Counts an attempt made on another replica, as if made here (not shared again).
    pub fn apply_shared(&self, a: &Attempt, l: Limits) {
        let source = source_of(a.source);
        if a.ok {
            self.by_source.invalidate(&(a.client.clone(), source));
        } else {
            self.count_failure(&a.client, source, l);
        }
    }

    fn share(&self, client_id: &str, source: IpAddr, ok: bool) {
        if let Some(outbox) = self.outbox.get() {
            // Full (the store away, or a flood): this attempt stays counted here only.
            let _ = outbox.try_send(Attempt {
                client: client_id.to_owned(),
                source,
                ok,
            });
        }
    }

    fn count_failure(&self, client_id: &str, source: IpAddr, l: Limits) {
        let now = Instant::now();
        let fresh = || {
            Arc::new(Mutex::new(Window {
                start: now,
                failures: 0,
            }))
        };
        let pair = self
            .by_source
            .get_with((client_id.to_owned(), source), fresh);
        let all = self.by_client.get_with(client_id.to_owned(), fresh);
        for c in [pair, all] {
            c.lock()
                .unwrap_or_else(|p| p.into_inner())
                .fail(now, l.window);
        }
    }

    /// A successful authentication clears its source's count.
    pub fn succeeded(&self, client_id: &str, source: IpAddr) {
        let source = source_of(source);
        let pair = (client_id.to_owned(), source);
        // Only a source with failures has anything to clear (here or elsewhere).
        if self.by_source.contains_key(&pair) {
            self.by_source.invalidate(&pair);
            self.share(client_id, source, true);
        }
    }
}

/// The source an address counts as: an IPv4 address (an IPv4-mapped IPv6 one included) as it
/// is, an IPv6 address as its /64.
pub fn source_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(
            u128::from(v6) & !((1u128 << 64) - 1),
        )),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        per_source: 3,
        per_client: 5,
        window: Duration::from_secs(60),
    };

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn an_ipv6_source_is_its_64_and_a_mapped_one_its_ipv4_address() {
        let t = Throttle::default();
        let host = |s: &str| s.parse::<IpAddr>().unwrap();
        // Three failures from three addresses of one /64 are one source's.
        for a in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"] {
            t.failed("c", host(a), L);
        }
        assert!(t.check("c", host("2001:db8:1:2::99"), L).is_err());
        assert!(
            t.check("c", host("2001:db8:1:3::1"), L).is_ok(),
            "another /64"
        );
        assert_eq!(source_of(host("::ffff:192.0.2.7")), ip(7));
        assert_eq!(source_of(ip(7)), ip(7));
    }

    #[test]
    fn a_source_is_throttled_after_its_failures_and_a_success_clears_it() {
        let t = Throttle::default();
        for _ in 0..3 {
            assert!(t.check("c", ip(1), L).is_ok());
            t.failed("c", ip(1), L);
        }
        let wait = t.check("c", ip(1), L).unwrap_err();
        assert!(wait > Duration::from_secs(55) && wait <= Duration::from_secs(60));
        assert!(t.check("c", ip(2), L).is_ok(), "another source is not");
        assert!(t.check("d", ip(1), L).is_ok(), "another client id is not");
        t.succeeded("c", ip(1));
        assert!(t.check("c", ip(1), L).is_ok());
    }

    #[test]
    fn past_the_client_ceiling_only_sources_that_failed_are_throttled() {
        let t = Throttle::default();
        for last in 1..=5 {
            t.failed("c", ip(last), L);
        }
        assert!(
            t.check("c", ip(1), L).is_err(),
            "it failed once, past the ceiling"
        );
        assert!(
            t.check("c", ip(9), L).is_ok(),
            "a clean source still passes"
        );
    }
}
