//! Pacing writes to Attio's limit (25 writes a second per workspace): a limiter shared by every
//! request in flight, so a client that writes as fast as it can (the backfill) stays under the
//! limit instead of discovering it through `429`s. Writes start evenly spaced (no burst at the
//! start) and never more than `per_second` in any one-second window; a `429`'s `Retry-After`
//! holds every write until it has passed.
//!
//! The webhook path does not use it: one invocation writes a few records, and Lambda's
//! concurrency, not one process, is what meets Attio's limit there (the queue's worker
//! concurrency is the lever; see the README).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(1);

/// Starts writes at most `per_second` a second, evenly spaced.
#[derive(Debug)]
pub struct WriteLimiter {
    /// Most starts in any one second: `per_second` rounded up.
    cap: usize,
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

impl WriteLimiter {
    /// A limiter for `per_second` writes a second (at least 1): one write every
    /// `1 / per_second` s, and never more than `per_second` rounded up in any one second. A
    /// fractional rate under a whole limit (24.5 under Attio's 25) leaves room for the jitter
    /// between a write's start and its arrival: with writes 40.8 ms apart, no span of 1.02 s
    /// holds more than 25 of them.
    pub fn new(per_second: f64) -> Self {
        let per_second = if per_second.is_finite() {
            per_second.max(1.0)
        } else {
            1.0
        };
        Self {
            cap: per_second.ceil() as usize,
            interval: WINDOW.div_f64(per_second),
            state: Mutex::new(State::default()),
        }
    }

    /// Waits until a write may start, and counts it as started.
    pub async fn acquire(&self) {
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
                let mut ready = now;
                if let Some(until) = state.held_until {
                    ready = ready.max(until);
                }
                if let Some(last) = state.started.back() {
                    ready = ready.max(*last + self.interval);
                }
                if state.started.len() >= self.cap
                    && let Some(oldest) = state.started.front()
                {
                    ready = ready.max(*oldest + WINDOW);
                }
                if ready <= now {
                    state.started.push_back(now);
                    return;
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
    async fn a_retry_after_holds_every_write_until_it_has_passed() {
        let limiter = Arc::new(WriteLimiter::new(25.0));
        limiter.acquire().await;
        limiter.hold_for(Duration::from_secs(2));
        let began = Instant::now();

        limiter.acquire().await;

        assert!(began.elapsed() >= Duration::from_secs(2));
    }
}
