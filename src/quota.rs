//! The AWS control-plane quota, on our side: one token bucket per account and Region, shared by
//! every caller (every reconcile, every lookup, every page of a listing), so that the operator
//! neither throttles itself nor eats the whole account's API Gateway quota (AWS: 10 requests per
//! second, burst 40, for all management calls of an account in a Region together).
//!
//! One [`Quota`] is one bucket: it refills `rps` tokens per second up to `burst`, and every HTTP
//! request to AWS takes one token. [`Quota::acquire`] waits (asynchronously) for a token.
//!
//! **Priority.** Spec changes ([`Priority::Change`]) go before drift checks
//! ([`Priority::Drift`]) when tokens are short. Two rules do it:
//!
//! 1. a `Drift` caller does not take a token while any `Change` caller is waiting for one;
//! 2. a `Drift` caller takes a token only when, after taking it, at least `reserve` tokens remain
//!    (default: a quarter of the burst, rounded down, so 10 of 40). A burst of drift reads can
//!    therefore never empty the bucket: spec changes that arrive right after it still go out at
//!    once, up to the reserve, without waiting for a refill.
//!
//! Without `Change` callers, drift reads still get the full refill rate (they only leave the
//! reserve in the bucket). With them, drift is slowed, never starved: a `Drift` caller that has
//! waited [`DRIFT_STARVES_AFTER`] ignores both rules, at most [`DRIFT_SHARE`] of the refill
//! rate, so during a rollout that keeps the bucket empty for 1,000 s drift checks still get a
//! tenth of the quota and each object its check within about a resync period. Callers of one priority are served
//! in FIFO order.
//!
//! **Retries.** The AWS SDK retries a failed request by itself (a bounded number of attempts).
//! Those extra HTTP requests also count against AWS's quota, so [`Quota::charge`] takes one token
//! without waiting, even into debt: the debt delays the next callers instead.
//!
//! **Limits.** `rps <= 0` (or not finite) means "no limit" (every acquire returns at once);
//! `burst` is at least 1.
//!
//! **Adaptation** (opt-in, [`Quota::with_adaptation`]). The account's quota is shared with every
//! other tool on it. A 429 that AWS answers to a request the bucket allowed means someone else
//! is drawing on it: [`Quota::throttled`] halves the refill rate ([`DECREASE_FACTOR`]), once per
//! [`DECREASE_COOLDOWN`] (the requests already in flight when AWS started refusing all come
//! back 429 and are one signal), never below [`MIN_SHARE`] of the configured rate. Clean answers
//! ([`Quota::answered`]) bring it back linearly, [`RECOVERY_PER_SECOND`] of the configured rate
//! for each second since the last change, never above it: the additive-increase /
//! multiplicative-decrease rule that lets several senders share one bottleneck fairly.
//!
//! Time is `tokio::time`, so tests can pause it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

pub use crate::aws::Priority;

/// A token bucket with two priorities. See the module documentation.
#[derive(Debug)]
pub struct Quota {
    rps: f64,
    burst: f64,
    reserve: f64,
    bucket: Mutex<Bucket>,
    /// FIFO order among `Change` callers.
    change_queue: tokio::sync::Mutex<()>,
    /// FIFO order among `Drift` callers.
    drift_queue: tokio::sync::Mutex<()>,
    change_waiting: AtomicUsize,
    drift_waiting: AtomicUsize,
    /// Woken when the last waiting `Change` caller got its token (or gave up).
    changes_done: Notify,
    /// When a starving `Drift` caller last took a token.
    last_starved_drift: Mutex<Option<Instant>>,
    /// Whether 429s lower the rate (see the module documentation).
    adaptive: bool,
    rate: Mutex<Rate>,
    /// The bucket's name in metrics (`account`, `get_resources`, `deployment`).
    name: &'static str,
    /// Told how long each acquire waited.
    on_wait: OnWait,
}

#[derive(Default)]
struct OnWait(Option<WaitObserver>);

impl std::fmt::Debug for OnWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Some(..)" } else { "None" })
    }
}

/// Called after every [`Quota::acquire`] with the bucket's name, the caller's priority and how
/// long it waited for its token (zero included).
pub type WaitObserver = std::sync::Arc<dyn Fn(&'static str, Priority, Duration) + Send + Sync>;

/// A `Drift` caller waiting this long stops yielding to `Change` callers.
pub const DRIFT_STARVES_AFTER: Duration = Duration::from_secs(10);

/// The share of the refill rate starving `Drift` callers may take.
pub const DRIFT_SHARE: f64 = 0.1;

/// The refill rate is multiplied by this on a 429 the bucket allowed.
pub const DECREASE_FACTOR: f64 = 0.5;
/// 429s closer together than this lower the rate once.
pub const DECREASE_COOLDOWN: Duration = Duration::from_secs(1);
/// The rate never drops below this share of the configured one (progress goes on).
pub const MIN_SHARE: f64 = 0.1;
/// Clean answers restore this share of the configured rate per second: from the floor to the
/// full rate in 18 s.
pub const RECOVERY_PER_SECOND: f64 = 0.05;

/// The adapted refill rate and when it last changed.
#[derive(Debug)]
struct Rate {
    current: f64,
    changed: Instant,
    last_decrease: Option<Instant>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Decrements a waiter count when the acquire finishes or is cancelled.
struct Waiting<'a> {
    count: &'a AtomicUsize,
    on_last: Option<&'a Notify>,
}

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize, on_last: Option<&'a Notify>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Waiting { count, on_last }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            if let Some(notify) = self.on_last {
                notify.notify_waiters();
            }
        }
    }
}

impl Quota {
    /// A full bucket of `burst` tokens refilled at `rps` tokens per second, with the default
    /// drift reserve (a quarter of the burst, rounded down).
    pub fn new(rps: f64, burst: u32) -> Self {
        let burst = burst.max(1);
        Self::with_reserve(rps, burst, burst / 4)
    }

    /// Like [`Quota::new`], with an explicit number of tokens that `Drift` callers leave in the
    /// bucket (clamped below the burst).
    pub fn with_reserve(rps: f64, burst: u32, reserve: u32) -> Self {
        let burst = f64::from(burst.max(1));
        let rps = if rps.is_finite() && rps > 0.0 {
            rps
        } else {
            0.0
        };
        Quota {
            rps,
            burst,
            reserve: f64::from(reserve).min(burst - 1.0),
            bucket: Mutex::new(Bucket {
                tokens: burst,
                last: Instant::now(),
            }),
            change_queue: tokio::sync::Mutex::new(()),
            drift_queue: tokio::sync::Mutex::new(()),
            change_waiting: AtomicUsize::new(0),
            drift_waiting: AtomicUsize::new(0),
            changes_done: Notify::new(),
            last_starved_drift: Mutex::new(None),
            adaptive: false,
            rate: Mutex::new(Rate {
                current: rps,
                changed: Instant::now(),
                last_decrease: None,
            }),
            name: "account",
            on_wait: OnWait(None),
        }
    }

    /// This bucket, named `name` in metrics.
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// This bucket, telling `observer` how long every acquire waited.
    pub fn observed(mut self, observer: Option<WaitObserver>) -> Self {
        self.on_wait = OnWait(observer);
        self
    }

    /// The bucket's name in metrics.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// This bucket, lowering its rate on 429s it allowed when `on` (see the module
    /// documentation).
    pub fn with_adaptation(mut self, on: bool) -> Self {
        self.adaptive = on;
        self
    }

    /// The refill rate now: the configured one, or lower after 429s.
    pub fn current_rps(&self) -> f64 {
        self.rate.lock().unwrap().current
    }

    /// AWS answered 429 to a request this bucket allowed.
    pub fn throttled(&self) {
        if !self.adaptive || self.unlimited() {
            return;
        }
        let mut bucket = self.bucket.lock().unwrap();
        // Tokens so far accrued at the old rate.
        self.refill(&mut bucket);
        let mut rate = self.rate.lock().unwrap();
        let now = Instant::now();
        if rate
            .last_decrease
            .is_some_and(|at| now.saturating_duration_since(at) < DECREASE_COOLDOWN)
        {
            return;
        }
        rate.current = (rate.current * DECREASE_FACTOR).max(self.rps * MIN_SHARE);
        rate.changed = now;
        rate.last_decrease = Some(now);
    }

    /// AWS answered a request this bucket allowed without a 429.
    pub fn answered(&self) {
        if !self.adaptive || self.unlimited() {
            return;
        }
        let mut bucket = self.bucket.lock().unwrap();
        self.refill(&mut bucket);
        let mut rate = self.rate.lock().unwrap();
        if rate.current >= self.rps {
            return;
        }
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(rate.changed).as_secs_f64();
        rate.current = (rate.current + self.rps * RECOVERY_PER_SECOND * elapsed).min(self.rps);
        rate.changed = now;
    }

    /// The refill rate in tokens per second (0: unlimited).
    pub fn rps(&self) -> f64 {
        self.rps
    }

    /// The bucket size.
    pub fn burst(&self) -> u32 {
        self.burst as u32
    }

    /// The tokens `Drift` callers leave for `Change` callers.
    pub fn reserve(&self) -> u32 {
        self.reserve as u32
    }

    fn unlimited(&self) -> bool {
        self.rps <= 0.0
    }

    /// Tokens in the bucket now (negative while retries are being paid back).
    pub fn available(&self) -> f64 {
        if self.unlimited() {
            return self.burst;
        }
        let mut bucket = self.bucket.lock().unwrap();
        self.refill(&mut bucket);
        bucket.tokens
    }

    /// Callers of this priority waiting for a token now.
    pub fn waiting(&self, priority: Priority) -> usize {
        match priority {
            Priority::Change => self.change_waiting.load(Ordering::SeqCst),
            Priority::Drift => self.drift_waiting.load(Ordering::SeqCst),
        }
    }

    fn refill(&self, bucket: &mut Bucket) {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.current_rps()).min(self.burst);
        bucket.last = now;
    }

    /// Takes a token if at least `1 + keep` are there; else how long until they are.
    fn try_take(&self, keep: f64) -> Result<(), Duration> {
        let mut bucket = self.bucket.lock().unwrap();
        self.refill(&mut bucket);
        let need = 1.0 + keep;
        // A little slack for float rounding: 0.1 s at 10 rps is one token.
        if bucket.tokens >= need - 1e-9 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let secs = (need - bucket.tokens) / self.current_rps();
            // Whole milliseconds, rounded up: tokio's timer has 1 ms resolution.
            Err(Duration::from_millis(
                (secs * 1e3 - 1e-6).ceil().max(1.0) as u64
            ))
        }
    }

    /// Waits for a token, `Change` callers first. Cancel-safe: dropping the future gives up its
    /// place.
    pub async fn acquire(&self, priority: Priority) {
        if self.unlimited() {
            return;
        }
        let started = Instant::now();
        self.wait_for_token(priority).await;
        if let Some(observe) = &self.on_wait.0 {
            observe(self.name, priority, started.elapsed());
        }
    }

    async fn wait_for_token(&self, priority: Priority) {
        match priority {
            Priority::Change => {
                let _waiting = Waiting::new(&self.change_waiting, Some(&self.changes_done));
                let _turn = self.change_queue.lock().await;
                while let Err(wait) = self.try_take(0.0) {
                    tokio::time::sleep(wait).await;
                }
            }
            Priority::Drift => {
                // A caller ages from its call, queued behind other drift callers or not.
                let starving_at = Instant::now() + DRIFT_STARVES_AFTER;
                let _waiting = Waiting::new(&self.drift_waiting, None);
                let _turn = self.drift_queue.lock().await;
                loop {
                    if Instant::now() >= starving_at {
                        match self.try_take_starving() {
                            Ok(()) => return,
                            Err(wait) => tokio::time::sleep(wait).await,
                        }
                        continue;
                    }
                    let done = self.changes_done.notified();
                    tokio::pin!(done);
                    done.as_mut().enable();
                    if self.change_waiting.load(Ordering::SeqCst) > 0 {
                        tokio::select! {
                            _ = done => {}
                            _ = tokio::time::sleep_until(starving_at) => {}
                        }
                        continue;
                    }
                    match self.try_take(self.reserve) {
                        Ok(()) => return,
                        Err(wait) => {
                            tokio::time::sleep(wait.min(starving_at - Instant::now())).await
                        }
                    }
                }
            }
        }
    }

    /// A token for a starving `Drift` caller: any token, at most [`DRIFT_SHARE`] of the rate.
    fn try_take_starving(&self) -> Result<(), Duration> {
        let spacing = Duration::from_secs_f64(1.0 / (self.current_rps() * DRIFT_SHARE));
        let mut last = self.last_starved_drift.lock().unwrap();
        if let Some(at) = *last {
            let next = at + spacing;
            if Instant::now() < next {
                return Err(next - Instant::now());
            }
        }
        self.try_take(0.0)?;
        *last = Some(Instant::now());
        Ok(())
    }

    /// Takes a token now without waiting, into debt if the bucket is empty (an SDK retry that is
    /// already being sent). The debt is at most one burst.
    pub fn charge(&self) {
        if self.unlimited() {
            return;
        }
        let mut bucket = self.bucket.lock().unwrap();
        self.refill(&mut bucket);
        bucket.tokens = (bucket.tokens - 1.0).max(-self.burst);
    }
}

/// GetResources' own quota (AWS: 5 requests every 2 seconds per account and Region, inside the
/// account's rate): 2.5 tokens a second less 5 %, and the burst of 5 less the delivery-jitter
/// margin, so a start-up resolving many `resourcePath`s waits here instead of meeting 429s.
pub const GET_RESOURCES_RPS: f64 = 2.5;
pub const GET_RESOURCES_BURST: u32 = 5;

/// The buckets of one account in one Region: every call takes a token of `account`; some
/// operations also take one of their own sub-bucket first ([`AccountBuckets::sub_bucket`]),
/// so a long wait there does not hold a token of the account's bucket.
#[derive(Clone, Debug)]
pub struct AccountBuckets {
    pub account: std::sync::Arc<Quota>,
    /// GetResources (see [`GET_RESOURCES_RPS`]).
    pub get_resources: std::sync::Arc<Quota>,
    /// CreateDeployment: taken by the stage layer itself, right before it stamps the
    /// deployment's time (see [`deployment_quota`]).
    pub deployments: std::sync::Arc<Quota>,
}

impl AccountBuckets {
    /// The account's bucket at `rps`/`burst` (less the jitter margin), adapting when
    /// `adaptive`; the sub-buckets at AWS's own figures divided by `shards` (operators that
    /// split the account: `rps` and `burst` are already this shard's). `rps` 0 switches every
    /// bucket off (as for tests against an emulator without quotas), except CreateDeployment's,
    /// which has its own switch (`deployment_interval` 0).
    pub fn new(
        rps: f64,
        burst: u32,
        adaptive: bool,
        shards: u32,
        deployment_interval: Duration,
        on_wait: Option<WaitObserver>,
    ) -> Self {
        let limited = rps.is_finite() && rps > 0.0;
        let shards = shards.max(1);
        let get_resources = if limited {
            let share = GET_RESOURCES_RPS / f64::from(shards);
            Quota::new(
                share * 0.95,
                burst_after_jitter_margin(share, (GET_RESOURCES_BURST / shards).max(1)),
            )
        } else {
            Quota::new(0.0, 1)
        };
        AccountBuckets {
            account: std::sync::Arc::new(
                Quota::new(rps, burst_after_jitter_margin(rps, burst))
                    .with_adaptation(adaptive)
                    .named("account")
                    .observed(on_wait.clone()),
            ),
            get_resources: std::sync::Arc::new(
                get_resources
                    .with_adaptation(adaptive)
                    .named("get_resources")
                    .observed(on_wait.clone()),
            ),
            deployments: std::sync::Arc::new(
                deployment_quota(deployment_interval * shards)
                    .named("deployment")
                    .observed(on_wait),
            ),
        }
    }

    /// The sub-bucket `operation` takes a token of before the account's, if it has one.
    pub fn sub_bucket(&self, operation: &str) -> Option<&std::sync::Arc<Quota>> {
        (operation == "GetResources").then_some(&self.get_resources)
    }

    /// Every bucket, for metrics.
    pub fn all(&self) -> [&std::sync::Arc<Quota>; 3] {
        [&self.account, &self.get_resources, &self.deployments]
    }
}

/// CreateDeployment's own bucket: burst 1, a token every `interval` plus a margin; zero means
/// no limit. With burst 1 there is no burst to shave (as the main bucket does), so the margin
/// goes on the interval: a request that waited its token here and then left a little sooner
/// than the one before it (scheduling, a connection) must still reach AWS after AWS's bucket
/// refilled. 5 % or 100 ms, whichever is more: 5.25 s for AWS's 5 s.
pub fn deployment_quota(interval: Duration) -> Quota {
    if interval.is_zero() {
        return Quota::new(0.0, 1);
    }
    let margin = (interval.as_secs_f64() * 0.05).max(0.1);
    Quota::new(1.0 / (interval.as_secs_f64() + margin), 1)
}

/// How much delivery jitter the bucket allows for: requests reach AWS a variable time after
/// they take their token, so AWS sees a burstier stream than the operator sends; over a window
/// AWS can count up to `rps × jitter` more calls than the bucket allowed. Leaving that many
/// tokens of the burst unused keeps the operator from causing 429s itself.
pub const DELIVERY_JITTER: Duration = Duration::from_millis(300);

/// The burst the operator uses for an account quota of `rps` and `burst`: the burst less
/// `rps × DELIVERY_JITTER` (rounded up), at least one.
pub fn burst_after_jitter_margin(rps: f64, burst: u32) -> u32 {
    if rps <= 0.0 {
        return burst;
    }
    let margin = (rps * DELIVERY_JITTER.as_secs_f64()).ceil() as u32;
    burst.saturating_sub(margin).max(1)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn ms(start: Instant) -> u128 {
        start.elapsed().as_millis()
    }

    #[tokio::test(start_paused = true)]
    async fn burst_is_served_at_once_then_the_rate() {
        let quota = Quota::new(10.0, 40);
        let start = Instant::now();
        for _ in 0..40 {
            quota.acquire(Priority::Change).await;
        }
        assert_eq!(ms(start), 0, "the burst needs no waiting");
        quota.acquire(Priority::Change).await;
        assert_eq!(ms(start), 100, "the 41st token comes after 1/rps");
    }

    #[tokio::test(start_paused = true)]
    async fn rate_is_rps_in_the_long_run() {
        let quota = Quota::new(10.0, 40);
        let start = Instant::now();
        for _ in 0..140 {
            quota.acquire(Priority::Change).await;
        }
        // 40 from the burst, 100 more at 10 per second.
        assert_eq!(ms(start), 10_000);
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_refills_up_to_burst_only() {
        let quota = Quota::new(5.0, 4);
        for _ in 0..4 {
            quota.acquire(Priority::Change).await;
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(quota.available(), 4.0);
        let start = Instant::now();
        for _ in 0..5 {
            quota.acquire(Priority::Change).await;
        }
        assert_eq!(ms(start), 200);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_the_rate() {
        let quota = Arc::new(Quota::new(10.0, 10));
        let start = Instant::now();
        let tasks: Vec<_> = (0..30)
            .map(|_| {
                let quota = quota.clone();
                tokio::spawn(async move { quota.acquire(Priority::Change).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(ms(start), 2_000);
    }

    #[tokio::test(start_paused = true)]
    async fn drift_leaves_the_reserve() {
        let quota = Quota::new(10.0, 40);
        assert_eq!(quota.reserve(), 10);
        let start = Instant::now();
        for _ in 0..30 {
            quota.acquire(Priority::Drift).await;
        }
        assert_eq!(ms(start), 0);
        // The reserve is there for changes, immediately.
        for _ in 0..10 {
            quota.acquire(Priority::Change).await;
        }
        assert_eq!(ms(start), 0);
        // Drift goes on at the refill rate once the reserve is back: 10 tokens + 1.
        quota.acquire(Priority::Drift).await;
        assert_eq!(ms(start), 1_100);
    }

    #[tokio::test(start_paused = true)]
    async fn drift_is_never_starved_by_a_long_rollout() {
        // 10 rps, and enough changes to keep the bucket empty for 200 s.
        let quota = Arc::new(Quota::new(10.0, 40));
        let changes: Vec<_> = (0..2_000)
            .map(|_| {
                let quota = quota.clone();
                tokio::spawn(async move { quota.acquire(Priority::Change).await })
            })
            .collect();
        while quota.waiting(Priority::Change) < 1_900 {
            tokio::task::yield_now().await;
        }
        let start = Instant::now();
        let drifts: Vec<_> = (0..20)
            .map(|_| {
                let quota = quota.clone();
                tokio::spawn(async move {
                    quota.acquire(Priority::Drift).await;
                    Instant::now()
                })
            })
            .collect();
        let mut waits = Vec::new();
        for task in drifts {
            waits.push((task.await.unwrap() - start).as_millis() as u64);
        }
        let drift_done = ms(start);
        assert!(
            quota.waiting(Priority::Change) > 0,
            "the rollout was still going when drift was served: {waits:?} {drift_done}"
        );
        // 20 drift checks asked at once: the first after DRIFT_STARVES_AFTER, then one per
        // 1/(DRIFT_SHARE·rps) = 1 s, while changes keep the bucket empty.
        assert_eq!(waits[0], 10_000, "{waits:?}");
        assert!(waits.windows(2).all(|w| w[1] - w[0] <= 1_000), "{waits:?}");
        assert!(drift_done <= 30_000, "{drift_done}");
        for task in changes {
            task.await.unwrap();
        }
        // The rollout lost only the drift tokens: 2,000 - 40 + 20 at 10 rps.
        assert!(ms(start) <= 198_100, "{}", ms(start));
    }

    #[tokio::test(start_paused = true)]
    async fn drift_alone_still_gets_the_full_rate() {
        let quota = Quota::new(10.0, 40);
        for _ in 0..30 {
            quota.acquire(Priority::Drift).await;
        }
        let start = Instant::now();
        for _ in 0..50 {
            quota.acquire(Priority::Drift).await;
        }
        assert_eq!(ms(start), 5_000);
    }

    #[tokio::test(start_paused = true)]
    async fn change_goes_before_drift_when_tokens_are_short() {
        let quota = Arc::new(Quota::with_reserve(10.0, 1, 0));
        quota.acquire(Priority::Change).await; // empty now
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        // Three drift readers queue first ...
        for i in 0..3 {
            let (quota, tx) = (quota.clone(), tx.clone());
            tasks.push(tokio::spawn(async move {
                quota.acquire(Priority::Drift).await;
                tx.send(format!("drift{i}")).unwrap();
            }));
            tokio::task::yield_now().await;
        }
        // ... then two changes arrive; they are still served first.
        for i in 0..2 {
            let (quota, tx) = (quota.clone(), tx.clone());
            tasks.push(tokio::spawn(async move {
                quota.acquire(Priority::Change).await;
                tx.send(format!("change{i}")).unwrap();
            }));
            tokio::task::yield_now().await;
        }
        assert_eq!(quota.waiting(Priority::Change), 2);
        assert_eq!(quota.waiting(Priority::Drift), 3);
        for task in tasks {
            task.await.unwrap();
        }
        drop(tx);
        let mut order = Vec::new();
        while let Some(who) = rx.recv().await {
            order.push(who);
        }
        assert_eq!(
            order,
            ["change0", "change1", "drift0", "drift1", "drift2"],
            "changes first, each priority in FIFO order"
        );
        assert_eq!(quota.waiting(Priority::Change), 0);
        assert_eq!(quota.waiting(Priority::Drift), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_change_does_not_block_drift() {
        let quota = Arc::new(Quota::with_reserve(10.0, 1, 0));
        quota.acquire(Priority::Change).await;
        let change = {
            let quota = quota.clone();
            tokio::spawn(async move { quota.acquire(Priority::Change).await })
        };
        tokio::task::yield_now().await;
        assert_eq!(quota.waiting(Priority::Change), 1);
        change.abort();
        let _ = change.await;
        assert_eq!(quota.waiting(Priority::Change), 0);
        let start = Instant::now();
        quota.acquire(Priority::Drift).await;
        assert_eq!(ms(start), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn charged_retries_delay_later_callers() {
        let quota = Quota::new(10.0, 2);
        quota.acquire(Priority::Change).await;
        quota.charge(); // a retry: bucket at 0
        quota.charge(); // another: bucket at -1
        assert_eq!(quota.available(), -1.0);
        let start = Instant::now();
        quota.acquire(Priority::Change).await;
        assert_eq!(ms(start), 200);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_halves_the_rate_once_per_cooldown_down_to_the_floor() {
        let q = Quota::new(10.0, 1).with_adaptation(true);
        q.throttled();
        q.throttled(); // the same burst of 429s
        assert!((q.current_rps() - 5.0).abs() < 1e-9, "{}", q.current_rps());
        for _ in 0..10 {
            tokio::time::advance(DECREASE_COOLDOWN).await;
            q.throttled();
        }
        assert!(
            (q.current_rps() - 1.0).abs() < 1e-9,
            "floor: {}",
            q.current_rps()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_lowered_rate_paces_the_bucket() {
        let q = Quota::new(10.0, 1).with_adaptation(true);
        q.acquire(Priority::Change).await;
        q.throttled();
        let start = Instant::now();
        for _ in 0..5 {
            q.acquire(Priority::Change).await;
        }
        // 5 tokens at 5 rps: 1 s (at 10 rps it would be 0.5 s).
        assert_eq!(ms(start), 1000);
    }

    #[tokio::test(start_paused = true)]
    async fn clean_answers_recover_linearly_and_never_above_the_configured_rate() {
        let q = Quota::new(10.0, 1).with_adaptation(true);
        q.throttled();
        tokio::time::advance(Duration::from_secs(4)).await;
        q.answered();
        // 5 + 10 × 0.05 × 4 = 7.
        assert!((q.current_rps() - 7.0).abs() < 1e-6, "{}", q.current_rps());
        tokio::time::advance(Duration::from_secs(60)).await;
        q.answered();
        assert!((q.current_rps() - 10.0).abs() < 1e-9, "{}", q.current_rps());
    }

    #[tokio::test(start_paused = true)]
    async fn without_adaptation_a_429_changes_nothing() {
        let q = Quota::new(10.0, 1);
        q.throttled();
        assert_eq!(q.current_rps(), 10.0);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_rps_is_unlimited() {
        let quota = Quota::new(0.0, 1);
        let start = Instant::now();
        for _ in 0..1000 {
            quota.acquire(Priority::Drift).await;
        }
        assert_eq!(ms(start), 0);
    }
}

#[cfg(test)]
mod margin_tests {
    use super::*;

    #[test]
    fn shards_divide_the_sub_buckets_too() {
        let one = AccountBuckets::new(5.0, 20, true, 1, Duration::from_secs(5), None);
        assert!((one.get_resources.rps() - 2.375).abs() < 1e-9);
        assert_eq!(one.get_resources.burst(), 4);
        assert_eq!(one.get_resources.name(), "get_resources");
        assert!(std::ptr::eq(
            one.sub_bucket("GetResources").unwrap().as_ref(),
            one.get_resources.as_ref()
        ));
        assert!(one.sub_bucket("GetIntegration").is_none());
        let third = AccountBuckets::new(5.0 / 3.0, 6, true, 3, Duration::from_secs(5), None);
        assert!((third.get_resources.rps() - 2.375 / 3.0).abs() < 1e-9);
        assert_eq!(third.get_resources.burst(), 1);
        // CreateDeployment: one every 15 s per shard (plus the margin), 5 s for the three.
        assert!((third.deployments.rps() - 1.0 / 15.75).abs() < 1e-9);
        let off = AccountBuckets::new(0.0, 20, true, 1, Duration::from_secs(5), None);
        assert_eq!(
            off.get_resources.rps(),
            0.0,
            "no account quota, no sub-bucket"
        );
    }

    #[test]
    fn the_burst_leaves_room_for_delivery_jitter() {
        assert_eq!(burst_after_jitter_margin(10.0, 40), 37);
        assert_eq!(burst_after_jitter_margin(2.0, 5), 4);
        assert_eq!(burst_after_jitter_margin(100.0, 10), 1);
        assert_eq!(burst_after_jitter_margin(0.0, 40), 40);
    }
}
