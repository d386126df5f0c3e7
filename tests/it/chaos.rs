//! Chaos: many users' events through the direct-then-queue path while Attio is down for a
//! stretch and rate-limited at 25 writes/s throughout. Four webhook containers answer shuffled
//! deliveries (each user's versions out of order, one in ten redelivered, every non-2xx retried on
//! a compressed Svix schedule); two workers (the template's `MaximumConcurrency`) drain moto's
//! FIFO queue the way Lambda's SQS event source feeds them. Checks that nothing is lost,
//! duplicated, stale or dead-lettered, and measures how long the queue takes to drain.
//!
//! The short run is part of the suite. The long one, whose figures RELIABILITY.md quotes:
//! `./scripts/chaos-test.sh` (2,000 events from 300 users, a 20 s outage; `CHAOS_EVENTS`,
//! `CHAOS_USERS`, `CHAOS_OUTAGE_SECONDS` to change).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use attio_user_sync::App;
use attio_user_sync::worker::Worker;
use serde_json::Value;

use crate::support::queue::Queues;
use crate::support::*;

const CONTAINERS: usize = 4;
const WORKERS: usize = 2;

#[derive(Default)]
struct Counts {
    deliveries: AtomicU32,
    synced: AtomicU32,
    queued: AtomicU32,
    retried: AtomicU32,
    lost: AtomicU32,
    handed_to_workers: AtomicU32,
    worker_failures: AtomicU32,
    /// Other answers, by status and error code.
    refused: std::sync::Mutex<std::collections::BTreeMap<String, u32>>,
}

async fn run_chaos(events: usize, users: usize, outage: Duration) {
    let attio = AttioStandIn::start(TOKEN).await;
    attio.limit_rates(25, 100);
    attio.set_down(true);
    // Many receives before a message would be dead-lettered: the outage must not cost any.
    let queues = Arc::new(Queues::create(Duration::from_secs(1), 100).await);
    let secret_id = create_secret(&default_secret()).await;
    let env = queues.env();
    let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.push(("ATTIO_USER_EVENT_TIME_ATTRIBUTE", "last_event_at"));
    // The direct-then-queue path (with the attribute and a queue the default is to queue all).
    vars.push(("DELIVERY_MODE", "direct"));
    let mut containers = Vec::new();
    for _ in 0..CONTAINERS {
        containers.push(Arc::new(app_for(&secret_id, &attio.url(), &vars).await));
    }
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        workers.push(Arc::new(worker_for(&secret_id, &attio.url(), &vars).await));
    }

    let (plans, latest) = plans(events, users);
    let total: usize = plans.iter().map(Vec::len).sum();
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let attio = Arc::new(attio);
    let recovery = {
        let attio = attio.clone();
        tokio::spawn(async move {
            tokio::time::sleep(outage).await;
            attio.set_down(false);
            Instant::now()
        })
    };
    let senders_done = Arc::new(AtomicBool::new(false));
    let mut pollers = Vec::new();
    for worker in &workers {
        let (worker, queues, counts, done) = (
            worker.clone(),
            queues.clone(),
            counts.clone(),
            senders_done.clone(),
        );
        pollers.push(tokio::spawn(async move {
            poll_until_drained(&worker, &queues, &counts, &done).await
        }));
    }
    let mut senders = Vec::new();
    let mut rng = fastrand::Rng::with_seed(11);
    let mut order: Vec<usize> = (0..users).collect();
    rng.shuffle(&mut order);
    for user in order {
        let plan = plans[user].clone();
        // Any container may answer any delivery, as Lambda routes them.
        let apps: Vec<Arc<App>> = containers.clone();
        let counts = counts.clone();
        let seed = user as u64;
        senders.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(seed);
            for version in plan {
                let app = &apps[rng.usize(..apps.len())];
                deliver(app, user, version, &counts).await;
            }
        }));
    }
    for sender in senders {
        sender.await.expect("sender");
    }
    let sent_by = started.elapsed();
    senders_done.store(true, Ordering::SeqCst);
    let recovered_at = recovery.await.expect("recovery");
    let mut drained_at = Instant::now();
    for poller in pollers {
        drained_at = drained_at.max(poller.await.expect("poller"));
    }

    let (missing, duplicated, stale) = missing_duplicated_stale(&attio, "user_chaos_", &latest);
    let dead_lettered = queues.dead_letters().await.len();
    let attio_429s = attio.requests().iter().filter(|r| r.status == 429).count();
    let drain = drained_at.saturating_duration_since(recovered_at.max(started + sent_by));
    println!(
        "chaos: {total} events from {users} users, Attio down for the first {:.0} s then limited to 25 writes/s: \
         {} deliveries, {} answered 200, {} answered 202 queued, others {:?}, {} retried by the sender, lost {}; \
         workers were handed {} messages, {} left for another attempt; Attio answered 429 {attio_429s} times; \
         missing {missing}, duplicated {duplicated}, stale {stale}, dead-lettered {dead_lettered}; \
         senders done after {:.1} s, the queue drained {:.1} s after that and Attio's recovery",
        outage.as_secs_f64(),
        counts.deliveries.load(Ordering::SeqCst),
        counts.synced.load(Ordering::SeqCst),
        counts.queued.load(Ordering::SeqCst),
        counts.refused.lock().unwrap(),
        counts.retried.load(Ordering::SeqCst),
        counts.lost.load(Ordering::SeqCst),
        counts.handed_to_workers.load(Ordering::SeqCst),
        counts.worker_failures.load(Ordering::SeqCst),
        sent_by.as_secs_f64(),
        drain.as_secs_f64(),
    );
    assert_eq!(counts.lost.load(Ordering::SeqCst), 0, "events lost");
    assert_eq!((missing, duplicated, stale), (0, 0, 0));
    assert_eq!(dead_lettered, 0);
    assert!(
        counts.queued.load(Ordering::SeqCst) > 0,
        "nothing was queued, so the run proved nothing about the queue"
    );
    assert_eq!(queues.depth().await, 0);
}

/// Each user: created, then updates, shuffled; one event in ten redelivered. Returns the plans
/// and each user's newest version.
fn plans(events: usize, users: usize) -> (Vec<Vec<u32>>, Vec<u32>) {
    let per_user = (events / users).max(1);
    let mut rng = fastrand::Rng::with_seed(5);
    let plans: Vec<Vec<u32>> = (0..users)
        .map(|_| {
            let mut plan: Vec<u32> = (0..per_user as u32).collect();
            rng.shuffle(&mut plan);
            let mut with_duplicates = Vec::new();
            for v in plan {
                with_duplicates.push(v);
                if rng.u8(..10) == 0 {
                    with_duplicates.push(v);
                }
            }
            with_duplicates
        })
        .collect();
    let latest = plans.iter().map(|p| *p.iter().max().unwrap()).collect();
    (plans, latest)
}

/// Sends one version until a 2xx or the schedule runs out.
async fn deliver(app: &App, user: usize, version: u32, counts: &Counts) {
    for (attempt, wait) in SVIX_RETRIES_COMPRESSED.into_iter().enumerate() {
        tokio::time::sleep(wait).await;
        let event = versioned_clerk_event("user_chaos_", user, version);
        let request = lambda_http::request::from_str(&event.to_string()).expect("event parses");
        let response = app.handle(request).await;
        counts.deliveries.fetch_add(1, Ordering::SeqCst);
        if attempt > 0 {
            counts.retried.fetch_add(1, Ordering::SeqCst);
        }
        match response.status().as_u16() {
            200 => {
                counts.synced.fetch_add(1, Ordering::SeqCst);
                return;
            }
            202 => {
                counts.queued.fetch_add(1, Ordering::SeqCst);
                return;
            }
            status => {
                let body: Value =
                    serde_json::from_slice(response.body().as_ref()).unwrap_or_default();
                let code = body["error"]["code"].as_str().unwrap_or("?").to_owned();
                *counts
                    .refused
                    .lock()
                    .unwrap()
                    .entry(format!("{status} {code}"))
                    .or_default() += 1;
            }
        }
    }
    counts.lost.fetch_add(1, Ordering::SeqCst);
}

/// One worker's event source: polls until the senders are done and the queue is empty.
async fn poll_until_drained(
    worker: &Worker,
    queues: &Queues,
    counts: &Counts,
    senders_done: &AtomicBool,
) -> Instant {
    loop {
        let (handed, failed) = queues.poll_once(worker, 10).await;
        counts
            .handed_to_workers
            .fetch_add(handed as u32, Ordering::SeqCst);
        counts
            .worker_failures
            .fetch_add(failed as u32, Ordering::SeqCst);
        if handed == 0 {
            if senders_done.load(Ordering::SeqCst) && queues.depth().await == 0 {
                return Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_chaos_run_loses_nothing_through_an_outage_and_the_rate_limit() {
    run_chaos(150, 30, Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "takes minutes; run with ./scripts/chaos-test.sh"]
async fn long_chaos_run() {
    let var = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    run_chaos(
        var("CHAOS_EVENTS", 2000) as usize,
        var("CHAOS_USERS", 300) as usize,
        Duration::from_secs(var("CHAOS_OUTAGE_SECONDS", 20)),
    )
    .await;
}
