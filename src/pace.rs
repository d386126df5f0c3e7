//! Pacing writes to Attio's limit (25 writes a second per workspace): a limiter shared by every
//! request in flight, so a client that writes as fast as it can (the backfill) stays under the
//! limit instead of discovering it through `429`s. Writes start evenly spaced (no burst at the
//! start) and never more than `per_second` in any one-second window; a `429`'s `Retry-After`
//! holds every write until it has passed.
//!
//! Two shapes: [`WriteLimiter::new`] spaces writes evenly (the backfill, which writes as fast
//! as Attio allows for minutes on end); [`WriteLimiter::bursting`] lets a process's first writes
//! of a second go at once and holds only what would pass the second's share (the functions:
//! a single event's two writes are never delayed, a batch or a worker's users are paced). The
//! queue's workers each take an equal share of Attio's limit (`ATTIO_WRITES_PER_SECOND`, which
//! the template derives from the event source's concurrency); `429`s hold the rest.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(1);

/// Reads a second a run that reads as fast as it can (reconcile's snapshot) asks for: under
/// Attio's 100, with the same room for jitter as 24.5 writes under 25.
pub const READS_PER_SECOND: f64 = 98.0;

/// How late a timer may wake an evenly spaced write and still have it counted at its slot.
const TIMER_SLACK: Duration = Duration::from_millis(5);

/// Starts writes at most `per_second` a second, evenly spaced or in bursts.
#[derive(Debug)]
pub struct WriteLimiter {
    /// Most starts in any one second.
    cap: usize,
    /// Least time between two starts (zero when bursting).
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Start times of the writes of the last second, oldest first.
    started: VecDeque<Instant>,
    /// No write starts before this (a `Retry-After`).
    held_until: Option<Instant>,
}

/// `per_second` if it is a number of at least 1, else 1.
fn at_least_one(per_second: f64) -> f64 {
    if per_second.is_finite() {
        per_second.max(1.0)
    } else {
        1.0
    }
}

impl WriteLimiter {
    /// A limiter for `per_second` writes a second (at least 1): one write every
    /// `1 / per_second` s, and never more than `per_second` rounded up in any one second. A
    /// fractional rate under a whole limit (24.5 under Attio's 25) leaves room for the jitter
    /// between a write's start and its arrival: with writes 40.8 ms apart, no span of 1.02 s
    /// holds more than 25 of them.
    pub fn new(per_second: f64) -> Self {
        let per_second = at_least_one(per_second);
        Self {
            cap: per_second.ceil() as usize,
            interval: WINDOW.div_f64(per_second),
            state: Mutex::new(State::default()),
        }
    }

    /// A limiter that starts up to `per_second` (rounded down, at least 1) writes in any one
    /// second, as soon as they come: no write waits while the last second had room.
    pub fn bursting(per_second: f64) -> Self {
        let per_second = at_least_one(per_second);
        Self {
            cap: per_second.floor() as usize,
            interval: Duration::ZERO,
            state: Mutex::new(State::default()),
        }
    }

    /// Waits until a write may start, and counts it as started.
    pub async fn acquire(&self) {
        self.acquire_until(None).await;
    }

    /// [`acquire`](Self::acquire), unless the write could not start before `deadline`: then
    /// `false` at once, and nothing counted.
    pub async fn acquire_before(&self, deadline: Instant) -> bool {
        self.acquire_until(Some(deadline)).await
    }

    async fn acquire_until(&self, deadline: Option<Instant>) -> bool {
        loop {
            let wait = {
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                while state
                    .started
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= WINDOW)
                {
                    state.started.pop_front();
                }
                // The earliest this write may start: its slot.
                let mut ready = state.held_until;
                if let Some(last) = state.started.back() {
                    ready = ready.max(Some(*last + self.interval));
                }
                if state.started.len() >= self.cap
                    && let Some(oldest) = state.started.front()
                {
                    ready = ready.max(Some(*oldest + WINDOW));
                }
                let ready = ready.unwrap_or(now);
                if ready <= now {
                    // Evenly spaced writes are counted at their slot when the timer woke a
                    // little late, so its lateness (about a millisecond a wake) does not add
                    // up write after write; never earlier than TIMER_SLACK ago, so an idle
                    // limiter does not let a burst through to catch up.
                    let at = match now.checked_sub(TIMER_SLACK) {
                        Some(earliest) if !self.interval.is_zero() => ready.max(earliest),
                        _ => now,
                    };
                    state.started.push_back(at);
                    return true;
                }
                if deadline.is_some_and(|d| ready > d) {
                    return false;
                }
                ready - now
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Holds every write until `wait` has passed (Attio answered `429` with `Retry-After`).
    pub fn hold_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.held_until = Some(state.held_until.map_or(until, |held| held.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Starts of `n` writes through `limiter` by `tasks` concurrent tasks, in order.
    async fn starts(limiter: Arc<WriteLimiter>, n: usize, tasks: usize) -> Vec<Duration> {
        let began = Instant::now();
        let times = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for t in 0..tasks {
            let (limiter, times) = (limiter.clone(), times.clone());
            handles.push(tokio::spawn(async move {
                for _ in (t..n).step_by(tasks) {
                    limiter.acquire().await;
                    times.lock().unwrap().push(began.elapsed());
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let mut times = times.lock().unwrap().clone();
        times.sort();
        times
    }

    #[tokio::test(start_paused = true)]
    async fn writes_are_evenly_spaced_and_never_more_than_the_rate_in_any_second() {
        let times = starts(Arc::new(WriteLimiter::new(25.0)), 100, 8).await;

        assert_eq!(times.len(), 100);
        // No burst: consecutive starts are at least 1/25 s apart.
        for pair in times.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(40), "{pair:?}");
        }
        // Any one-second window holds at most 25 starts.
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().take_while(|u| **u - *t < WINDOW).count();
            assert!(
                in_window <= 25,
                "{in_window} starts in the second from {t:?}"
            );
        }
        // And it keeps the pace: 100 writes take just under 4 s, not much more.
        assert!(times[99] < Duration::from_millis(4000), "{:?}", times[99]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fractional_rate_keeps_its_pace_and_the_whole_limit_in_any_second() {
        let times = starts(Arc::new(WriteLimiter::new(24.5)), 100, 8).await;

        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| **u - *t < Duration::from_millis(1020))
                .count();
            assert!(in_window <= 25, "{in_window} starts in 1.02 s from {t:?}");
        }
        // 99 intervals of 1/24.5 s.
        assert!(
            times[99] >= Duration::from_millis(4040) && times[99] < Duration::from_millis(4100)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_bursting_limiter_starts_a_seconds_share_at_once_and_no_more_in_any_second() {
        let limiter = Arc::new(WriteLimiter::bursting(12.25));
        let times = starts(limiter, 50, 8).await;

        assert!(
            times[..12].iter().all(|t| *t < Duration::from_millis(5)),
            "{times:?}"
        );
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().take_while(|u| **u - *t < WINDOW).count();
            assert!(
                in_window <= 12,
                "{in_window} starts in the second from {t:?}"
            );
        }
        // 50 writes at 12 a second: the last in the fifth second.
        assert!(times[49] >= Duration::from_secs(4) && times[49] < Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_cannot_start_before_the_deadline_is_refused_at_once_and_not_counted() {
        let limiter = WriteLimiter::bursting(2.0);
        let began = Instant::now();
        assert!(limiter.acquire_before(began + Duration::from_secs(5)).await);
        assert!(limiter.acquire_before(began + Duration::from_secs(5)).await);

        let third = limiter
            .acquire_before(began + Duration::from_millis(500))
            .await;

        assert!(!third, "the second's share is spent until 1 s");
        assert!(began.elapsed() < Duration::from_millis(1));
        assert!(limiter.acquire_before(began + Duration::from_secs(5)).await);
        assert!(began.elapsed() >= WINDOW, "a refused write took no slot");
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_holds_every_write_until_it_has_passed() {
        let limiter = Arc::new(WriteLimiter::new(25.0));
        limiter.acquire().await;
        limiter.hold_for(Duration::from_secs(2));
        let began = Instant::now();

        limiter.acquire().await;

        assert!(began.elapsed() >= Duration::from_secs(2));
    }
}
